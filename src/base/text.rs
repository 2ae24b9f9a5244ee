//! Text shown to people (log messages, the `--once` table): names and paths come from
//! configurations and file systems, which allow newlines and other control characters.
//! Written raw, one such name would break a log line or a table row in two, and a
//! terminal would act on an escape sequence; [`Escaped`] shows them as `\n`, `\u{1b}`.

use std::fmt;

/// `text` for display, with control characters escaped as Rust writes them.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(char::is_control) {
            f.write_str(&rest[..at])?;
            let control = rest[at..].chars().next().expect("found at a char boundary");
            write!(f, "{}", control.escape_debug())?;
            rest = &rest[at + control.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `a`, `b`, `c` in backticks, for messages.
pub fn list(items: &[&str]) -> String {
    items
        .iter()
        .map(|item| format!("`{item}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(Escaped("plain/path.log").to_string(), "plain/path.log");
        assert_eq!(
            Escaped("a\nb\tc\u{1b}[31m é").to_string(),
            "a\\nb\\tc\\u{1b}[31m é"
        );
    }
}
