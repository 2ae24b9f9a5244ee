//! Annotation templates: text with `{field}` placeholders filled from what an alert's
//! last event said ([`Evidence`]), such as `"{service}: {check} is down"`.
//!
//! A template is parsed once, when the configuration is decoded, against the fields
//! its rule's events have (a probe rule has `detail`, a log rule `line`): an unknown
//! placeholder is a configuration error naming the ones there are, never an empty
//! gap at run time. `{{` and `}}` stand for braces. Text that comes from outside
//! (a check's detail, a log line) is shown with control characters escaped, and a log
//! line is cut to [`LINE_CHARS`] characters.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use super::rules::On;
use crate::base::diagnostics::closest;
use crate::base::event::{FailureReason, Outcome, ProbeKind, ProbeStatus, Severity};
use crate::base::text::{Escaped, list};

/// The most characters of a log line an annotation shows.
pub const LINE_CHARS: usize = 200;

/// What an alert's last telling event said: what its annotations can show.
#[derive(Clone, Debug)]
pub enum Evidence {
    Probe {
        kind: ProbeKind,
        outcome: Outcome,
        detail: String,
        attempts: u32,
        latency: Duration,
        status: Option<ProbeStatus>,
        reason: Option<FailureReason>,
    },
    Log {
        path: Arc<str>,
        /// The line, cut to [`LINE_CHARS`] (unescaped: escaping waits until shown).
        line: String,
        /// The pattern's description.
        description: Arc<str>,
    },
    Anomaly {
        explanation: String,
        observed: f64,
        score: Option<f64>,
    },
    Process {
        restarts: u32,
        within: Duration,
    },
}

/// Everything a template can show about one alert.
pub struct Facts<'a> {
    pub service: &'a str,
    pub alertname: &'a str,
    pub severity: Severity,
    /// Failing results in a row (probe), matches since it began (log).
    pub count: u32,
    pub evidence: &'a Evidence,
}

/// A placeholder's meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Service,
    Alertname,
    Severity,
    Count,
    Check,
    Kind,
    Outcome,
    Detail,
    Attempts,
    Latency,
    Status,
    Reason,
    Pattern,
    Path,
    Line,
    Description,
    Signal,
    Explanation,
    Observed,
    Score,
    Process,
    Restarts,
    Within,
}

/// Every field, by the name a template writes, with the rules whose events have it
/// (`None`: every rule).
const FIELDS: &[(&str, Field, Option<On>)] = &[
    ("service", Field::Service, None),
    ("alertname", Field::Alertname, None),
    ("severity", Field::Severity, None),
    ("count", Field::Count, Some(On::Probe)),
    ("count", Field::Count, Some(On::LogMatch)),
    ("check", Field::Check, Some(On::Probe)),
    ("kind", Field::Kind, Some(On::Probe)),
    ("outcome", Field::Outcome, Some(On::Probe)),
    ("detail", Field::Detail, Some(On::Probe)),
    ("attempts", Field::Attempts, Some(On::Probe)),
    ("latency", Field::Latency, Some(On::Probe)),
    ("status", Field::Status, Some(On::Probe)),
    ("reason", Field::Reason, Some(On::Probe)),
    ("pattern", Field::Pattern, Some(On::LogMatch)),
    ("path", Field::Path, Some(On::LogMatch)),
    ("line", Field::Line, Some(On::LogMatch)),
    ("description", Field::Description, Some(On::LogMatch)),
    ("signal", Field::Signal, Some(On::Anomaly)),
    ("explanation", Field::Explanation, Some(On::Anomaly)),
    ("observed", Field::Observed, Some(On::Anomaly)),
    ("score", Field::Score, Some(On::Anomaly)),
    ("process", Field::Process, Some(On::Process)),
    ("restarts", Field::Restarts, Some(On::Process)),
    ("within", Field::Within, Some(On::Process)),
];

/// The placeholders a rule `on` these events may use.
pub fn fields_of(on: On) -> Vec<&'static str> {
    (FIELDS.iter())
        .filter(|(_, _, of)| of.is_none_or(|of| of == on))
        .map(|(name, _, _)| *name)
        .collect()
}

#[derive(Clone, Debug)]
enum Piece {
    Text(String),
    Field(Field),
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text` for a rule `on` these events; the error says what is wrong in
    /// words, for a configuration message.
    pub fn parse(text: &str, on: On) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find(['{', '}']) {
            literal.push_str(&rest[..at]);
            let brace = &rest[at..at + 1];
            rest = &rest[at + 1..];
            if rest.starts_with(brace) {
                literal.push_str(brace);
                rest = &rest[1..];
                continue;
            }
            if brace == "}" {
                return Err(format!(
                    "template `{text}` has a `}}` that closes nothing; write `}}}}` for a brace"
                ));
            }
            let Some(end) = rest.find('}') else {
                return Err(format!(
                    "template `{text}` has a `{{` that is never closed; write `{{{{` for a brace"
                ));
            };
            let name = &rest[..end];
            rest = &rest[end + 1..];
            let field = (FIELDS.iter())
                .find(|(known, _, of)| *known == name && of.is_none_or(|of| of == on))
                .map(|(_, field, _)| *field);
            let Some(field) = field else {
                let available = fields_of(on);
                let rules_of = (FIELDS.iter())
                    .find(|(known, _, _)| *known == name)
                    .and_then(|(_, _, of)| *of);
                let mut message = match rules_of {
                    Some(other) => format!(
                        "placeholder `{{{name}}}` in template `{text}` is {}'s; {} has {}",
                        other.rule(),
                        on.rule(),
                        list(&available)
                    ),
                    None => format!(
                        "unknown placeholder `{{{name}}}` in template `{text}`; {} has {}",
                        on.rule(),
                        list(&available)
                    ),
                };
                if let Some(close) =
                    closest(name, available.iter().copied()).filter(|_| rules_of.is_none())
                {
                    message.push_str(&format!(" (did you mean `{{{close}}}`?)"));
                }
                return Err(message);
            };
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Field(field));
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Text(literal));
        }
        Ok(Template { pieces })
    }

    /// The template filled with `facts`.
    pub fn render(&self, cause: &str, facts: &Facts) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Field(field) => fill(&mut out, *field, cause, facts),
            }
        }
        out
    }
}

/// Writes `field` of `facts`; `cause` is the check, pattern or signal name. A field
/// the evidence does not have (which parsing prevents) writes nothing.
fn fill(out: &mut String, field: Field, cause: &str, facts: &Facts) {
    // Writing to a String cannot fail.
    let _ = match (field, facts.evidence) {
        (Field::Service, _) => write!(out, "{}", Escaped(facts.service)),
        (Field::Alertname, _) => write!(out, "{}", Escaped(facts.alertname)),
        (Field::Severity, _) => write!(out, "{}", facts.severity),
        (Field::Count, _) => write!(out, "{}", facts.count),
        (Field::Check | Field::Pattern | Field::Signal | Field::Process, _) => {
            write!(out, "{}", Escaped(cause))
        }
        (Field::Kind, Evidence::Probe { kind, .. }) => write!(out, "{}", kind.as_str()),
        (Field::Outcome, Evidence::Probe { outcome, .. }) => write!(out, "{}", outcome.as_str()),
        (Field::Detail, Evidence::Probe { detail, .. }) => write!(out, "{}", Escaped(detail)),
        (Field::Attempts, Evidence::Probe { attempts, .. }) => write!(out, "{attempts}"),
        (Field::Latency, Evidence::Probe { latency, .. }) => {
            write!(out, "{} ms", number(latency.as_secs_f64() * 1e3))
        }
        (Field::Status, Evidence::Probe { status, .. }) => match status {
            Some(ProbeStatus::Http(code)) => write!(out, "HTTP {code}"),
            Some(ProbeStatus::Grpc(name)) => write!(out, "{name}"),
            None => Ok(()),
        },
        (Field::Reason, Evidence::Probe { reason, .. }) => {
            write!(out, "{}", reason.map_or("", FailureReason::as_str))
        }
        (Field::Path, Evidence::Log { path, .. }) => write!(out, "{}", Escaped(path)),
        (Field::Line, Evidence::Log { line, .. }) => write!(out, "{}", Escaped(line)),
        (Field::Description, Evidence::Log { description, .. }) => {
            write!(out, "{}", Escaped(description))
        }
        (Field::Explanation, Evidence::Anomaly { explanation, .. }) => {
            write!(out, "{explanation}")
        }
        (Field::Observed, Evidence::Anomaly { observed, .. }) => {
            write!(out, "{}", number(*observed))
        }
        (
            Field::Score,
            Evidence::Anomaly {
                score: Some(score), ..
            },
        ) => write!(out, "{}", number(*score)),
        (Field::Restarts, Evidence::Process { restarts, .. }) => write!(out, "{restarts}"),
        (Field::Within, Evidence::Process { within, .. }) => {
            write!(out, "{}", humantime::format_duration(*within))
        }
        _ => Ok(()),
    };
}

/// A number with at most three decimals and no trailing zeros: `742`, `0.052`.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

/// `line` cut to [`LINE_CHARS`] characters, with `…` where it was cut, into `into`
/// (whose allocation is reused: a busy pattern updates it on every match).
pub fn cut_line(line: &str, into: &mut String) {
    into.clear();
    match line.char_indices().nth(LINE_CHARS) {
        Some((end, _)) => {
            into.push_str(&line[..end]);
            into.push('…');
        }
        None => into.push_str(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_evidence() -> Evidence {
        Evidence::Probe {
            kind: ProbeKind::Http,
            outcome: Outcome::Down,
            detail: "status 503\nretry".into(),
            attempts: 2,
            latency: Duration::from_micros(12_500),
            status: Some(ProbeStatus::Http(503)),
            reason: Some(FailureReason::Status),
        }
    }

    #[test]
    fn placeholders_are_filled_and_braces_escaped() {
        let template = Template::parse(
            "{{{service}}} {check} {outcome} x{count} {detail} {latency} {status} {reason}",
            On::Probe,
        )
        .unwrap();
        let evidence = probe_evidence();
        let facts = Facts {
            service: "shop",
            alertname: "CheckDown",
            severity: Severity::Critical,
            count: 3,
            evidence: &evidence,
        };
        assert_eq!(
            template.render("health", &facts),
            "{shop} health down x3 status 503\\nretry 12.5 ms HTTP 503 status"
        );
    }

    #[test]
    fn unknown_placeholders_name_those_of_the_rule() {
        let err = Template::parse("{service}: {lin}", On::LogMatch).unwrap_err();
        assert_eq!(
            err,
            "unknown placeholder `{lin}` in template `{service}: {lin}`; a `log_match` rule has \
             `service`, `alertname`, `severity`, `count`, `pattern`, `path`, `line`, \
             `description` (did you mean `{line}`?)"
        );
        // A probe's field is not an anomaly rule's.
        assert_eq!(
            Template::parse("{detail}", On::Anomaly).unwrap_err(),
            "placeholder `{detail}` in template `{detail}` is a `probe` rule's; an `anomaly` \
             rule has `service`, `alertname`, `severity`, `signal`, `explanation`, `observed`, `score`"
        );
        assert!(
            Template::parse("{service", On::Probe)
                .unwrap_err()
                .contains("never closed")
        );
        assert!(
            Template::parse("a } b", On::Probe)
                .unwrap_err()
                .contains("closes nothing")
        );
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let mut cut = String::new();
        let line = "é".repeat(LINE_CHARS + 5);
        cut_line(&line, &mut cut);
        assert_eq!(cut.chars().count(), LINE_CHARS + 1);
        assert!(cut.ends_with("é…"));
        cut_line("short", &mut cut);
        assert_eq!(cut, "short");
    }

    #[test]
    fn numbers_lose_trailing_zeros() {
        assert_eq!(number(742.0), "742");
        assert_eq!(number(0.0521), "0.052");
    }
}
