//! The names users give things: services, checks, log patterns, pipeline nodes.
//!
//! Names are shown where a line is one record: the text log, the console, the `--once`
//! table, error messages. A control character in a name (a newline written as
//! `"shop\nfront"`, an escape that recolours the terminal) would break those lines, so
//! such a name is refused where it is written. What else a name may hold is up to the
//! part of the configuration that uses it.

use crate::base::diagnostics::Diagnostics;
use crate::base::key_path::KeyPath;
use crate::base::text::Escaped;
use crate::stages::log_patterns::PatternConfig;

/// What is wrong with `name`, if it holds a control character; `what` says what it
/// names (`service name`).
pub fn problem(what: &str, name: &str) -> Option<String> {
    let found = name.chars().find(|c| c.is_control())?;
    let known = match found {
        '\t' => " (tab)",
        '\n' => " (line feed)",
        '\r' => " (carriage return)",
        '\0' => " (NUL)",
        '\u{1b}' => " (escape)",
        _ => "",
    };
    Some(format!(
        "{what} `{}` holds the control character U+{:04X}{known}; names are shown in log lines and tables, which it would break, so they may hold printable characters only",
        Escaped(name),
        u32::from(found)
    ))
}

/// Reports `name`, the value at `path`, if it holds a control character.
pub fn check(diag: &mut Diagnostics, path: &KeyPath, what: &str, name: &str) {
    if let Some(message) = problem(what, name) {
        diag.error(path, message);
    }
}

/// Reports each of `patterns` whose name holds a control character.
pub fn check_patterns(diag: &mut Diagnostics, patterns: &[PatternConfig]) {
    for pattern in patterns {
        check(
            diag,
            &pattern.origin.key("name"),
            "pattern name",
            &pattern.name,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_names_pass_and_the_first_control_character_is_named() {
        assert_eq!(problem("service name", "shop-front é 店"), None);
        let message = problem("check name", "a\u{7}b\nc").expect("refused");
        assert!(
            message.starts_with("check name `a\\u{7}b\\nc` holds the control character U+0007;"),
            "{message}"
        );
    }
}
