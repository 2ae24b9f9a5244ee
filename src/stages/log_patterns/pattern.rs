//! One configured pattern, compiled: its regex, and the literals every match needs.
//!
//! Patterns are written in the regex crate's syntax, extended by fancy-regex for what
//! the regex crate refuses on principle (lookaround, backreferences, atomic groups).
//! A pattern the regex crate accepts is compiled by it, so it runs on its DFA; only
//! the others fall to fancy-regex's backtracker. Either way the literal requirement
//! comes from one walk over a regex-syntax HIR: for a fancy pattern, the HIR of a
//! widened copy in which every fancy construct is replaced by something that matches
//! at least as much.

use std::sync::Arc;

use fancy_regex::Expr;
use regex_syntax::hir::{Hir, HirKind, Repetition};

use super::PatternConfig;
use super::literals::Requirement;
use crate::config::regex::{character, syntax_problem};
use crate::event::Severity;

/// A pattern ready to test lines.
#[derive(Debug)]
pub struct CompiledPattern {
    pub name: Arc<str>,
    pub severity: Severity,
    pub description: Arc<str>,
    regex: LineRegex,
    pub requirement: Requirement,
}

#[derive(Debug)]
enum LineRegex {
    /// Compiled by the regex crate; `scan` is a widened copy for searching whole
    /// blocks (see [`CompiledPattern::scan_source`]).
    Plain {
        regex: regex::bytes::Regex,
        scan: String,
    },
    /// Needs fancy-regex; `warned` makes its first runtime error (backtrack limit)
    /// logged once rather than once per line.
    Fancy {
        regex: fancy_regex::Regex,
        warned: bool,
    },
}

impl CompiledPattern {
    /// Compiles `config`, or explains in one line what is wrong with its regex.
    pub fn compile(config: &PatternConfig) -> Result<CompiledPattern, String> {
        let source = config.pattern.as_str();
        let (regex, hir) = match regex_syntax::parse(source) {
            Ok(hir) => {
                let regex = regex::bytes::Regex::new(source).map_err(|err| {
                    format!("pattern `{}` cannot be compiled: {err}", config.name)
                })?;
                let scan = without_assertions(&hir).to_string();
                (LineRegex::Plain { regex, scan }, Some(hir))
            }
            Err(plain_err) => match fancy_regex::Regex::new(source) {
                Ok(regex) => (
                    LineRegex::Fancy {
                        regex,
                        warned: false,
                    },
                    widened_hir(source),
                ),
                Err(fancy_err) => return Err(describe_error(config, &plain_err, &fancy_err)),
            },
        };
        Ok(CompiledPattern {
            name: config.name.as_str().into(),
            severity: config.severity,
            description: config.description.as_str().into(),
            requirement: hir.as_ref().map(Requirement::of).unwrap_or_default(),
            regex,
        })
    }

    /// Whether `line` (without its line end, valid UTF-8) matches.
    pub fn is_match(&mut self, line: &[u8]) -> bool {
        match &mut self.regex {
            LineRegex::Plain { regex, .. } => regex.is_match(line),
            LineRegex::Fancy { regex, warned } => {
                let text = String::from_utf8_lossy(line);
                regex.is_match(text.as_ref()).unwrap_or_else(|err| {
                    if !std::mem::replace(warned, true) {
                        tracing::warn!(pattern = %self.name, error = %err, "Pattern failed on a line; counting it as no match.");
                    }
                    false
                })
            }
        }
    }

    /// For a pattern the regex crate compiles, a regex to search whole blocks with:
    /// one that matches, somewhere in the block, wherever the pattern matches a line.
    ///
    /// Run over a block, the pattern itself would not do: `\A`, `\z` and (without
    /// multi-line mode) `^` and `$` would hold only at the block's ends, not at each
    /// line's, and CRLF mode (which `$` needs before `\r\n`) keeps `.` from matching a
    /// lone `\r` inside a line. The widened copy drops every assertion (which only ever
    /// removes matches) and its capture groups (whose names could clash in a union),
    /// so it matches at least the same text; lines it hits are then tested with the
    /// pattern itself.
    pub fn scan_source(&self) -> Option<&str> {
        match &self.regex {
            LineRegex::Plain { scan, .. } => Some(scan),
            LineRegex::Fancy { .. } => None,
        }
    }
}

/// `hir` without its assertions (`^`, `$`, `\b`, …) and capture groups: a regex that
/// matches at least everything `hir` matches.
fn without_assertions(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Look(_) => Hir::empty(),
        HirKind::Empty | HirKind::Literal(_) | HirKind::Class(_) => hir.clone(),
        HirKind::Capture(capture) => without_assertions(&capture.sub),
        HirKind::Repetition(repetition) => Hir::repetition(Repetition {
            sub: Box::new(without_assertions(&repetition.sub)),
            ..repetition.clone()
        }),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(without_assertions).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.iter().map(without_assertions).collect())
        }
    }
}

/// The message for a pattern neither engine accepts: the regex crate's own account of
/// the problem, unless it only objects to lookaround or backreferences, in which case
/// fancy-regex (which takes those) says what is really wrong.
fn describe_error(
    config: &PatternConfig,
    plain: &regex_syntax::Error,
    fancy: &fancy_regex::Error,
) -> String {
    let source = &config.pattern;
    let problem = syntax_problem(source, plain).unwrap_or_else(|| match fancy {
        fancy_regex::Error::ParseError(offset, err) => {
            format!("{err} at character {}", character(source, *offset))
        }
        other => other.to_string(),
    });
    format!(
        "pattern `{}` is not a valid regular expression: {problem} of `{source}`",
        config.name
    )
}

/// The HIR of a regex that matches everything `source` matches and more, built from
/// fancy-regex's parse by dropping zero-width assertions and lookarounds and by
/// replacing backreferences and other backtracking-only constructs with `.*`.
fn widened_hir(source: &str) -> Option<Hir> {
    let tree = Expr::parse_tree(source).ok()?;
    let mut widened = String::new();
    widen(&tree.expr, &mut widened);
    regex_syntax::parse(&widened).ok()
}

fn widen(expr: &Expr, out: &mut String) {
    match expr {
        Expr::Empty
        | Expr::Assertion(_)
        | Expr::LookAround(..)
        | Expr::KeepOut
        | Expr::ContinueFromPreviousMatchEnd => {}
        Expr::Any { newline: true, .. } => out.push_str("(?s:.)"),
        Expr::Any { .. } => out.push('.'),
        Expr::Literal { val, casei } => {
            out.push_str(if *casei { "(?i:" } else { "(?:" });
            out.push_str(&regex_syntax::escape(val));
            out.push(')');
        }
        Expr::Delegate { inner, casei } => {
            out.push_str(if *casei { "(?i:" } else { "(?:" });
            out.push_str(inner);
            out.push(')');
        }
        Expr::Concat(children) => {
            out.push_str("(?:");
            children.iter().for_each(|child| widen(child, out));
            out.push(')');
        }
        Expr::Alt(branches) => {
            out.push_str("(?:");
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                widen(branch, out);
            }
            out.push(')');
        }
        Expr::Group(inner) => widen_group(inner, out),
        Expr::AtomicGroup(inner) => widen_group(inner, out),
        Expr::Repeat { child, lo, hi, .. } => {
            widen_group(child, out);
            match *hi {
                usize::MAX => out.push_str(&format!("{{{lo},}}")),
                hi => out.push_str(&format!("{{{lo},{hi}}}")),
            }
        }
        _ => out.push_str("(?s:.*)"),
    }
}

fn widen_group(inner: &Expr, out: &mut String) {
    out.push_str("(?:");
    widen(inner, out);
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pattern: &str) -> PatternConfig {
        PatternConfig {
            name: "p".into(),
            pattern: pattern.into(),
            severity: Severity::Warning,
            description: String::new(),
            origin: Default::default(),
        }
    }

    #[test]
    fn plain_patterns_use_the_regex_crate() {
        let mut p =
            CompiledPattern::compile(&config(r"(?i)(out of memory|java\.lang\.OutOfMemoryError)"))
                .unwrap();
        assert!(p.scan_source().is_some());
        assert!(p.is_match(b"2026 ERROR java.lang.OutOfMemoryError: Java heap space"));
        assert!(p.is_match(b"kernel: Out Of Memory: Killed process 12"));
        assert!(!p.is_match(b"memory is fine"));
    }

    #[test]
    fn lookaround_and_backreferences_use_fancy_regex_and_keep_literals() {
        let mut p = CompiledPattern::compile(&config(r"timeout(?! retried)")).unwrap();
        assert!(p.scan_source().is_none());
        assert!(p.is_match(b"connect timeout after 3s"));
        assert!(!p.is_match(b"connect timeout retried"));
        assert_eq!(p.requirement.primary().unwrap(), &vec![b"timeout".to_vec()]);

        let mut p = CompiledPattern::compile(&config(r"(\w+) failed, \1 again")).unwrap();
        assert!(p.is_match(b"job failed, job again"));
        assert!(!p.is_match(b"job failed, task again"));
        assert_eq!(
            p.requirement.primary().unwrap(),
            &vec![b" failed, ".to_vec()]
        );
    }

    #[test]
    fn bad_patterns_say_what_and_where() {
        let err = CompiledPattern::compile(&config(r"(?i(out of memory")).unwrap_err();
        assert_eq!(
            err,
            "pattern `p` is not a valid regular expression: unrecognized flag at character 4 of `(?i(out of memory`"
        );
        let err = CompiledPattern::compile(&config(r"error: [a-")).unwrap_err();
        assert!(
            err.contains("unclosed character class at character 8"),
            "{err}"
        );
        // The regex crate stops at the lookbehind; fancy-regex finds the real problem.
        let err = CompiledPattern::compile(&config(r"(?<=a)(b")).unwrap_err();
        assert!(err.contains("is not a valid regular expression: Opening parenthesis without closing parenthesis at character 9"), "{err}");
    }
}
