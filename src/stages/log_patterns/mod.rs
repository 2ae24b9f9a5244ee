//! The `log_patterns` stage: named regex patterns over log lines, emitting a
//! [`LogMatch`] for every (line, pattern) that matches.
//!
//! Each pattern has a name, a severity and a description. A line may match several
//! patterns and then gives one match per pattern. The matching is done a block of
//! lines at a time by [`matcher`], which searches the block for the literals the
//! patterns require ([`literals`]) and runs regexes only on lines that hold them; the
//! result is exactly that of testing every line against every pattern. A pattern that
//! needs the backtracking engine may leave a line undecided within its time and
//! backtrack limits ([`pattern`]); such lines are counted in a [`PatternErrors`] event
//! per block, pattern and reason, never taken as "no match" in silence.
//!
//! ```yaml
//! stages:
//!   app_errors:
//!     type: log_patterns
//!     inputs: [app_log]
//!     patterns:
//!       - name: OutOfMemory
//!         pattern: '(?i)(out of memory|java\.lang\.OutOfMemoryError)'
//!         severity: CRITICAL
//!         description: Out of memory error detected
//! ```

pub mod literals;
pub mod matcher;
pub mod pattern;

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use self::matcher::{Found, Matcher, Undecided};
use self::pattern::{BLOCK_BUDGET, CompiledPattern, LINE_BUDGET, catastrophic_shape};
use crate::base::component::Stage;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{Event, EventKind, LogMatch, PatternErrors, Severity};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};

/// One named pattern, as configured.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatternConfig {
    /// What the summary, metrics and alerts call this pattern. Unique per stage.
    pub name: String,
    /// A regular expression (regex crate syntax; lookaround and backreferences are
    /// allowed, through fancy-regex, at some cost in speed).
    pub pattern: String,
    /// `CRITICAL`, `WARNING` or `INFO`, in any case.
    pub severity: Severity,
    /// A sentence for humans, carried on every match.
    #[serde(default)]
    pub description: String,
    /// Where the pattern was written, for errors found when it is compiled.
    #[serde(skip)]
    pub origin: KeyPath,
}

/// Decodes a list of patterns item by item, so that every bad item is reported.
pub fn decode_patterns(
    items: &[Value],
    path: &KeyPath,
    diag: &mut Diagnostics,
) -> Vec<PatternConfig> {
    let mut patterns = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let origin = path.index(i);
        if let Some(mut pattern) = diag.decode::<PatternConfig>(item, &origin) {
            pattern.origin = origin;
            patterns.push(pattern);
        }
    }
    patterns
}

/// Configuration of a `log_patterns` stage.
#[derive(Clone, Debug, Serialize)]
pub struct LogPatternsConfig {
    pub patterns: Vec<PatternConfig>,
}

impl ComponentType for LogPatternsConfig {
    const NAME: &'static str = "log_patterns";
    const ACCEPTS: &'static [EventKind] = &[EventKind::LogLines];
    const EMITS: &'static [EventKind] = &[EventKind::LogMatch, EventKind::PatternErrors];
    type Built = dyn Stage;

    fn decode(body: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<LogPatternsConfig> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            patterns: Vec<Value>,
        }
        let raw: Raw = diag.decode(body, path)?;
        let patterns_path = path.key("patterns");
        if raw.patterns.is_empty() {
            diag.error(
                &patterns_path,
                "no patterns; a log_patterns stage needs at least one",
            );
        }
        Some(LogPatternsConfig {
            patterns: decode_patterns(&raw.patterns, &patterns_path, diag),
        })
    }

    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Stage>> {
        Some(Box::new(self.compile(cx.diag)?))
    }
}

impl LogPatternsConfig {
    /// Compiles the patterns; a bad regex or a repeated name is reported where the
    /// pattern was written.
    pub fn compile(&self, diag: &mut Diagnostics) -> Option<LogPatterns> {
        let mut compiled = Vec::new();
        for (i, config) in self.patterns.iter().enumerate() {
            if let Some(first) = self.patterns[..i]
                .iter()
                .find(|other| other.name == config.name)
            {
                let message = format!(
                    "pattern name `{}` is already used by `{}`; names must be unique",
                    config.name, first.origin
                );
                diag.error(&config.origin.key("name"), message);
            }
            match CompiledPattern::compile(config) {
                Ok(pattern) => compiled.push(pattern),
                Err(message) => diag.error(&config.origin.key("pattern"), message),
            }
            if let Some(shape) = catastrophic_shape(&config.pattern) {
                let message = format!(
                    "pattern `{}` needs the backtracking engine (for its lookaround or backreferences), and {shape}: such a pattern can take seconds on one line. Each line gets at most {} ms of it, each block {} ms; lines it cannot decide in time are counted in aegis_log_pattern_errors_total. Rewrite the repetition (`(a+)+` matches what `a+` does) or make it atomic (`(?>a+)+`)",
                    config.name,
                    LINE_BUDGET.as_millis(),
                    BLOCK_BUDGET.as_millis()
                );
                diag.warn(&config.origin.key("pattern"), message);
            }
        }
        if diag.has_errors() {
            return None;
        }
        match Matcher::new(compiled) {
            Ok(matcher) => Some(LogPatterns {
                matcher,
                found: Found::default(),
            }),
            Err(message) => {
                diag.error(
                    &self.patterns[0].origin.parent().unwrap_or_default(),
                    message,
                );
                None
            }
        }
    }
}

/// A running `log_patterns` stage.
pub struct LogPatterns {
    matcher: Matcher,
    /// What the current block gave, reused between blocks.
    found: Found,
}

impl Stage for LogPatterns {
    fn on_event(&mut self, event: &Event, _now: SystemTime, out: &mut Vec<Event>) {
        let Event::LogLines(lines) = event else {
            return;
        };
        self.found.matches.clear();
        self.found.undecided.clear();
        self.matcher.find(&lines.text, &mut self.found);
        // One event per pattern and reason, with the count of lines.
        self.found
            .undecided
            .sort_unstable_by_key(|u| (u.pattern, u.reason));
        for group in self
            .found
            .undecided
            .chunk_by(|a, b| (a.pattern, a.reason) == (b.pattern, b.reason))
        {
            let Undecided { pattern, reason } = group[0];
            out.push(Event::PatternErrors(PatternErrors {
                service: lines.service.clone(),
                path: lines.path.clone(),
                at: lines.at,
                pattern: self.matcher.patterns()[pattern].name.clone(),
                reason,
                lines: group.len() as u32,
            }));
        }
        for found in &self.found.matches {
            let pattern = &self.matcher.patterns()[found.pattern];
            let line = crate::base::event::trim_line_end(&lines.text[found.start..found.end]);
            out.push(Event::LogMatch(LogMatch {
                service: lines.service.clone(),
                path: lines.path.clone(),
                at: lines.at,
                pattern: pattern.name.clone(),
                severity: pattern.severity,
                description: pattern.description.clone(),
                line: String::from_utf8_lossy(line).into_owned(),
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::event::LogLines;
    use crate::base::spans::SpanIndex;
    use std::time::UNIX_EPOCH;

    fn stage(patterns: &[(&str, &str, Severity)]) -> LogPatterns {
        let config = LogPatternsConfig {
            patterns: patterns
                .iter()
                .map(|(name, pattern, severity)| PatternConfig {
                    name: (*name).into(),
                    pattern: (*pattern).into(),
                    severity: *severity,
                    description: format!("{name} seen"),
                    origin: KeyPath::root(),
                })
                .collect(),
        };
        let spans = SpanIndex::default();
        let mut diag = Diagnostics::new(&spans);
        config.compile(&mut diag).expect("valid patterns")
    }

    fn lines(text: &str) -> Event {
        Event::LogLines(LogLines {
            service: "shop".into(),
            path: "/var/log/shop.log".into(),
            at: UNIX_EPOCH,
            text: bytes::Bytes::copy_from_slice(text.as_bytes()),
            lines: text.lines().count() as u32,
            cut: 0,
            lossy: 0,
        })
    }

    #[test]
    fn emits_one_match_per_line_and_pattern_with_the_pattern_details() {
        let mut stage = stage(&[
            ("oom", "(?i)out of memory", Severity::Critical),
            ("error", r"\bERROR\b", Severity::Warning),
        ]);
        let mut out = Vec::new();
        stage.on_event(
            &lines("INFO ok\r\nERROR Out of memory\r\nERROR disk\n"),
            UNIX_EPOCH,
            &mut out,
        );
        let got: Vec<(String, Severity, String)> = out
            .iter()
            .map(|event| match event {
                Event::LogMatch(m) => (m.pattern.to_string(), m.severity, m.line.clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "oom".into(),
                    Severity::Critical,
                    "ERROR Out of memory".into()
                ),
                (
                    "error".into(),
                    Severity::Warning,
                    "ERROR Out of memory".into()
                ),
                ("error".into(), Severity::Warning, "ERROR disk".into()),
            ]
        );
        let Event::LogMatch(first) = &out[0] else {
            unreachable!()
        };
        assert_eq!((&*first.service, &*first.description), ("shop", "oom seen"));
    }

    #[test]
    fn bad_patterns_and_repeated_names_are_reported_where_written() {
        let text = "patterns:\n  - {name: a, pattern: 'x(', severity: info}\n  - {name: a, pattern: y, severity: info}\n";
        let spans = SpanIndex::build(text);
        let mut diag = Diagnostics::new(&spans);
        let value: Value = serde_norway::from_str(text).unwrap();
        let config = LogPatternsConfig::decode(&value, &KeyPath::root(), &mut diag).unwrap();
        assert!(config.compile(&mut diag).is_none());
        let (errors, _) = diag.finish();
        let shown: Vec<String> = errors
            .iter()
            .map(|e| format!("{}:{} {}", e.mark.line, e.path, e.message))
            .collect();
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert!(shown[0].starts_with("2:patterns[0].pattern pattern `a` is not a valid regular expression: unclosed group"), "{shown:?}");
        assert!(
            shown[1].starts_with(
                "3:patterns[1].name pattern name `a` is already used by `patterns[0]`"
            ),
            "{shown:?}"
        );
    }
}
