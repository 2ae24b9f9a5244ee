//! One configured pattern, compiled: its regex, and the literals every match needs.
//!
//! Patterns are written in the regex crate's syntax, extended by fancy-regex for what
//! the regex crate refuses on principle (lookaround, backreferences, atomic groups).
//! A pattern the regex crate accepts is compiled by it, so it runs on its DFA in time
//! linear in the line; only the others fall to fancy-regex's backtracker. Either way
//! the literal requirement comes from one walk over a regex-syntax HIR: for a fancy
//! pattern, the HIR of a widened copy in which every fancy construct is replaced by
//! something that matches at least as much.
//!
//! A backtracker can take exponential time on some lines (`(?=a)(a+)+b` took 12 s on
//! one line of 64 KiB), so a fancy pattern is run with care, and never decides a line
//! it could not finish as "no match":
//!
//! - the widened copy runs first, on the regex crate: a line it does not match cannot
//!   match, and a match can only start where one of the copy's does, so the backtracker
//!   starts at the copy's leftmost match;
//! - the backtracker is then tried at one start position at a time, each try bounded
//!   by a backtrack limit, and the time is checked between tries: a line gets at most
//!   [`LINE_BUDGET`], and a pattern at most [`BLOCK_BUDGET`] per block (the lines after
//!   that are not tried);
//! - a line left undecided (a try hit the backtrack limit, or time ran out) is
//!   reported as such ([`Verdict::Undecided`]), counted, and logged once per pattern.
//!
//! This is the one place where the stage looks at a clock: to bound its own CPU time,
//! never to decide anything about events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fancy_regex::{Expr, RegexInput};
use regex_syntax::hir::{Hir, HirKind, Repetition};

use super::PatternConfig;
use super::literals::Requirement;
use crate::base::event::{PatternErrorReason, Severity};
use crate::base::regex::{character, syntax_problem};

/// The most time one line may take a backtracking pattern.
pub const LINE_BUDGET: Duration = Duration::from_millis(25);

/// The most time one block of lines may take a backtracking pattern.
pub const BLOCK_BUDGET: Duration = Duration::from_millis(250);

/// How many times one try of a backtracking pattern, at one start position, may
/// backtrack. Sane patterns need tens on a line; the default (a million) lets one try
/// take a tenth of a second or more.
const BACKTRACK_LIMIT: usize = 100_000;

/// Whether a line matches a pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Match,
    NoMatch,
    /// The pattern could not tell within its limits.
    Undecided(PatternErrorReason),
}

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
    /// Needs fancy-regex. `widened` matches at least wherever `regex` does (see
    /// [`CompiledPattern::scan_source`]); `scan` is its source.
    Fancy {
        regex: fancy_regex::Regex,
        widened: Option<(regex::bytes::Regex, String)>,
        /// Time spent on the current block, against [`BLOCK_BUDGET`].
        spent: Duration,
        /// Whether an undecided line was logged already: once per pattern.
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
            Err(plain_err) => {
                let built = fancy_regex::RegexBuilder::new(source)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .build();
                match built {
                    Ok(regex) => {
                        let hir = widened_hir(source);
                        let widened = hir.as_ref().and_then(|hir| {
                            let scan = without_assertions(hir).to_string();
                            let regex = regex::bytes::Regex::new(&scan).ok()?;
                            Some((regex, scan))
                        });
                        let regex = LineRegex::Fancy {
                            regex,
                            widened,
                            spent: Duration::ZERO,
                            warned: false,
                        };
                        (regex, hir)
                    }
                    Err(fancy_err) => return Err(describe_error(config, &plain_err, &fancy_err)),
                }
            }
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
    pub fn verdict(&mut self, line: &[u8]) -> Verdict {
        match &mut self.regex {
            LineRegex::Plain { regex, .. } => match regex.is_match(line) {
                true => Verdict::Match,
                false => Verdict::NoMatch,
            },
            LineRegex::Fancy {
                regex,
                widened,
                spent,
                warned,
            } => {
                let verdict = run_fancy(regex, widened.as_ref().map(|(w, _)| w), line, spent);
                if let Verdict::Undecided(reason) = verdict
                    && !std::mem::replace(warned, true)
                {
                    tracing::warn!(pattern = %crate::base::text::Escaped(&self.name), reason = reason.as_str(), "Pattern could not decide a line within its limits; such lines are counted in aegis_log_pattern_errors_total, not taken as matches or not.");
                }
                verdict
            }
        }
    }

    /// A new block begins: a backtracking pattern's time budget starts again.
    pub fn start_block(&mut self) {
        if let LineRegex::Fancy { spent, .. } = &mut self.regex {
            *spent = Duration::ZERO;
        }
    }

    /// Whether the pattern runs on the backtracking engine.
    pub fn backtracks(&self) -> bool {
        matches!(self.regex, LineRegex::Fancy { .. })
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
    ///
    /// For a fancy pattern, the widened copy is built the same way from the pattern's
    /// widened HIR, when the regex crate takes it.
    pub fn scan_source(&self) -> Option<&str> {
        match &self.regex {
            LineRegex::Plain { scan, .. } => Some(scan),
            LineRegex::Fancy { widened, .. } => widened.as_ref().map(|(_, scan)| scan.as_str()),
        }
    }
}

/// Runs a backtracking pattern on `line` within its budgets (see the module doc).
fn run_fancy(
    regex: &fancy_regex::Regex,
    widened: Option<&regex::bytes::Regex>,
    line: &[u8],
    spent: &mut Duration,
) -> Verdict {
    // Where a match can start at the earliest: where the widened copy's leftmost match
    // does, since it matches wherever the pattern does, from the same start.
    let first = match widened.map(|widened| widened.find(line)) {
        Some(None) => return Verdict::NoMatch,
        Some(Some(found)) => found.start(),
        None => 0,
    };
    if *spent >= BLOCK_BUDGET {
        return Verdict::Undecided(PatternErrorReason::TimeBudget);
    }
    let text = String::from_utf8_lossy(line);
    let began = Instant::now();
    let deadline = began + LINE_BUDGET.min(BLOCK_BUDGET - *spent);
    let mut verdict = Verdict::NoMatch;
    let mut at = first;
    loop {
        let input = RegexInput::new(text.as_ref()).from_pos(at).anchored(true);
        match regex.find_input(input) {
            Ok(Some(_)) => {
                verdict = Verdict::Match;
                break;
            }
            Ok(None) => {}
            // A later start may still match; if none does, the line is undecided.
            Err(_) => verdict = Verdict::Undecided(PatternErrorReason::BacktrackLimit),
        }
        if at >= text.len() {
            break;
        }
        at += text[at..].chars().next().map_or(1, char::len_utf8);
        if Instant::now() >= deadline {
            verdict = Verdict::Undecided(PatternErrorReason::TimeBudget);
            break;
        }
    }
    *spent += began.elapsed();
    verdict
}

/// Why a fancy pattern's shape is known to be slow on the backtracking engine: an
/// unbounded repetition inside another (`(a+)+`, `(\w+\s?)*`), which can try
/// exponentially many ways to split a line before it fails. `None` for the others.
pub fn catastrophic_shape(source: &str) -> Option<&'static str> {
    if regex_syntax::parse(source).is_ok() {
        return None; // the regex crate runs it, in linear time
    }
    let tree = Expr::parse_tree(source).ok()?;
    nests_repetitions(&tree.expr, false)
        .then_some("it nests one unbounded repetition inside another, as in `(a+)+`")
}

/// Whether `expr` holds an unbounded repetition inside another (`inside`: `expr` is
/// already inside one). An atomic group never backtracks into itself: it is safe.
fn nests_repetitions(expr: &Expr, inside: bool) -> bool {
    match expr {
        Expr::Repeat { child, hi, .. } => {
            let unbounded = *hi == usize::MAX;
            (unbounded && inside) || nests_repetitions(child, inside || unbounded)
        }
        Expr::Concat(children) | Expr::Alt(children) => children
            .iter()
            .any(|child| nests_repetitions(child, inside)),
        Expr::Group(child) => nests_repetitions(child, inside),
        Expr::LookAround(child, _) => nests_repetitions(child, inside),
        _ => false,
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

    impl CompiledPattern {
        fn matches(&mut self, line: &[u8]) -> bool {
            self.verdict(line) == Verdict::Match
        }

        /// The time a backtracking pattern spent on the current block.
        fn spent(&self) -> Duration {
            match &self.regex {
                LineRegex::Fancy { spent, .. } => *spent,
                LineRegex::Plain { .. } => panic!("not a backtracking pattern"),
            }
        }
    }

    /// A bound for what must not take the seconds unbounded backtracking takes: far
    /// above what it takes on a loaded machine, so that load alone never fails a test.
    const NOT_UNBOUNDED: Duration = Duration::from_secs(5);

    #[test]
    fn plain_patterns_use_the_regex_crate() {
        let mut p =
            CompiledPattern::compile(&config(r"(?i)(out of memory|java\.lang\.OutOfMemoryError)"))
                .unwrap();
        assert!(p.scan_source().is_some());
        assert!(p.matches(b"2026 ERROR java.lang.OutOfMemoryError: Java heap space"));
        assert!(p.matches(b"kernel: Out Of Memory: Killed process 12"));
        assert!(!p.matches(b"memory is fine"));
    }

    #[test]
    fn lookaround_and_backreferences_use_fancy_regex_and_keep_literals() {
        let mut p = CompiledPattern::compile(&config(r"timeout(?! retried)")).unwrap();
        assert_eq!(
            p.scan_source(),
            Some("(?:timeout)"),
            "widened: the lookahead dropped"
        );
        assert!(p.matches(b"connect timeout after 3s"));
        assert!(!p.matches(b"connect timeout retried"));
        assert_eq!(p.requirement.primary().unwrap(), &vec![b"timeout".to_vec()]);

        let mut p = CompiledPattern::compile(&config(r"(\w+) failed, \1 again")).unwrap();
        assert!(p.matches(b"job failed, job again"));
        assert!(!p.matches(b"job failed, task again"));
        assert_eq!(
            p.requirement.primary().unwrap(),
            &vec![b" failed, ".to_vec()]
        );
    }

    /// See issue 8: a backtracking pattern missed a line that matches (the try from the
    /// line's start hit the backtrack limit) and took 5 s or more on a 64 KiB line.
    #[test]
    fn backtracking_patterns_find_late_matches_and_stay_within_their_budget() {
        let mut p = CompiledPattern::compile(&config(r"((?=[a-z])[a-z]+)+[0-9]")).unwrap();
        let line = format!("{} and then x1", "abcdefghij".repeat(10));
        assert_eq!(p.verdict(line.as_bytes()), Verdict::Match);
        assert_eq!(
            p.verdict("abcdefghij".repeat(10).as_bytes()),
            Verdict::NoMatch
        );

        let mut p = CompiledPattern::compile(&config(r"(?=a)(a+)+b")).unwrap();
        let started = Instant::now();
        assert_eq!(p.verdict("a".repeat(65536).as_bytes()), Verdict::NoMatch);
        assert!(started.elapsed() < NOT_UNBOUNDED, "{:?}", started.elapsed());

        // A pattern whose widened copy matches, but whose backtracking does not end:
        // the line is undecided within the line budget, and the block's budget runs out.
        let mut p = CompiledPattern::compile(&config(r"(x+x+)+y(?!z)")).unwrap();
        let line = format!("{}yz", "x".repeat(40));
        let started = Instant::now();
        let verdict = p.verdict(line.as_bytes());
        assert!(matches!(verdict, Verdict::Undecided(_)), "{verdict:?}");
        // The budget plus one try (bounded by the backtrack limit): not the years it
        // takes unbounded.
        assert!(started.elapsed() < NOT_UNBOUNDED, "{:?}", started.elapsed());
        for _ in 0..BLOCK_BUDGET.as_millis() / LINE_BUDGET.as_millis() + 1 {
            p.verdict(line.as_bytes());
        }
        let spent = p.spent();
        assert_eq!(
            p.verdict(line.as_bytes()),
            Verdict::Undecided(PatternErrorReason::TimeBudget),
            "the block's budget is spent"
        );
        // A try would have added its time; timing the call instead fails on a machine
        // busy enough to pause this thread for a line's budget.
        assert_eq!(p.spent(), spent, "not even tried");
        p.start_block();
        assert_eq!(
            p.verdict(b"xxy"),
            Verdict::Match,
            "a new block, a new budget"
        );
    }

    #[test]
    fn catastrophic_shapes_are_known() {
        assert!(catastrophic_shape(r"(?=a)(a+)+b").is_some());
        assert!(catastrophic_shape(r"((?=[a-z])[a-z]+)+[0-9]").is_some());
        assert!(
            catastrophic_shape(r"(a+)+b").is_none(),
            "the regex crate runs it"
        );
        assert!(catastrophic_shape(r"(?>a+)+(?=b)").is_none(), "atomic");
        assert!(catastrophic_shape(r"timeout(?! retried)").is_none());
        assert!(catastrophic_shape(r"(\w+) failed, \1 again").is_none());
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
