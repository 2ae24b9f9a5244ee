//! Rules: which events raise which alerts, and how long the condition must hold.
//!
//! A rule as written ([`RuleConfig`]) is compiled into a [`Rule`]: its filters, its
//! severity, its timing and its parsed annotation templates. Compiling checks
//! everything that decoding alone cannot (a filter that does not apply to the rule's
//! events, a placeholder its events do not have, a label Aegis sets itself) and
//! reports each [`Problem`] with the key it concerns. The default rules (the issue's
//! "alerts sensibly with no rule written") are [`RuleConfig`]s too, compiled the same
//! way, so that a written rule of the same name replaces one simply.
//!
//! What this module does not do: keep alert state (`state`), or know events beyond
//! what a rule filters on.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::state::{FlapDamping, Timing};
use super::template::{Facts, Template};
use crate::base::diagnostics::closest;
use crate::base::event::{LabelSet, Outcome, Severity};
use crate::base::key_path::Segment;
use crate::base::text::list;

/// Which events a rule reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// Health check results: a failing outcome is a hit, any other one a good result.
    Probe,
    /// Log pattern matches: each match is a hit; a quiet period resolves.
    LogMatch,
    /// Anomalies: an anomalous signal is a hit, a normal one resolves.
    Anomaly,
    /// Supervised processes: a spent restart budget is a hit; a start resolves.
    Process,
}

impl On {
    pub const NAMES: [&'static str; 4] = ["probe", "log_match", "anomaly", "process"];

    pub fn as_str(self) -> &'static str {
        match self {
            On::Probe => "probe",
            On::LogMatch => "log_match",
            On::Anomaly => "anomaly",
            On::Process => "process",
        }
    }

    fn named(name: &str) -> Option<On> {
        [On::Probe, On::LogMatch, On::Anomaly, On::Process]
            .into_iter()
            .find(|on| on.as_str() == name)
    }

    /// "a `probe` rule", for messages.
    pub fn rule(self) -> &'static str {
        match self {
            On::Probe => "a `probe` rule",
            On::LogMatch => "a `log_match` rule",
            On::Anomaly => "an `anomaly` rule",
            On::Process => "a `process` rule",
        }
    }

    /// The label that names the alert's cause: the check, the pattern, the signal, the
    /// process (a service has one: its value is the service's name).
    pub fn cause_label(self) -> &'static str {
        match self {
            On::Probe => "check",
            On::LogMatch => "pattern",
            On::Anomaly => "signal",
            On::Process => "process",
        }
    }

    /// The keys that narrow or tune a rule on these events only.
    fn own_keys(self) -> &'static [&'static str] {
        match self {
            On::Probe => &["checks", "outcomes", "resolve_after"],
            On::LogMatch => &["patterns", "min_severity", "quiet"],
            On::Anomaly => &["signals"],
            On::Process => &[],
        }
    }
}

/// How long a condition must hold before its alert fires: `for:` in a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// This many hits in a row (failing results; matches; anomalous events).
    Events(u32),
    /// Held this long.
    Lasting(Duration),
}

impl Serialize for Hold {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Hold::Events(count) => serializer.serialize_u32(*count),
            Hold::Lasting(duration) => crate::base::duration::serialize(duration, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Hold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HoldVisitor;
        impl Visitor<'_> for HoldVisitor {
            type Value = Hold;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of events in a row (`3`) or a duration (`2m`)")
            }

            fn visit_u64<E: de::Error>(self, count: u64) -> Result<Hold, E> {
                u32::try_from(count)
                    .map(Hold::Events)
                    .map_err(|_| E::custom(format!("`{count}` events is too many")))
            }

            fn visit_i64<E: de::Error>(self, count: i64) -> Result<Hold, E> {
                Err(E::custom(format!(
                    "`{count}` is not a number of events; expected a number of events in a row (`3`) or a duration (`2m`)"
                )))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Hold, E> {
                crate::base::duration::deserialize(de::value::StrDeserializer::<E>::new(text))
                    .map(Hold::Lasting)
            }
        }
        deserializer.deserialize_any(HoldVisitor)
    }
}

/// A duration that may be zero (`keep_firing_for: 0s`, the default, means none).
mod zero_or_duration {
    use std::time::Duration;

    use serde::de::{self, Deserialize};
    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        let text = String::deserialize(deserializer)?;
        if humantime::parse_duration(&text).is_ok_and(|duration| duration.is_zero()) {
            return Ok(Some(Duration::ZERO));
        }
        crate::base::duration::deserialize(de::value::StrDeserializer::<D::Error>::new(&text))
            .map(Some)
    }

    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        crate::base::duration::optional::serialize(duration, serializer)
    }
}

/// A rule as written. Every key but `name` and `on` is optional; what a missing one
/// means depends on `on` (docs/alerting.md).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// The alert's `alertname` label; unique among the written rules.
    pub name: String,
    /// Which events: `probe`, `log_match` or `anomaly`.
    pub on: String,
    /// Only these services (all when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// probe: only these checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<String>>,
    /// probe: the outcomes that count as failing (`down`, `degraded`); default `[down]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Vec<String>>,
    /// log_match: only these patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patterns: Option<Vec<String>>,
    /// log_match: only patterns of this severity or above; default `INFO` (all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// anomaly: only these signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals: Option<Vec<String>>,
    /// The alert's severity; default `CRITICAL` (probe), the pattern's own
    /// (log_match), `WARNING` (anomaly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Hits in a row, or a duration, before it fires; default 3 (probe), 1
    /// (log_match), `1m` (anomaly).
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
    /// probe: good results in a row before it resolves; default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_after: Option<u32>,
    /// Stays firing this long after its condition clears; default none.
    #[serde(
        default,
        with = "zero_or_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub keep_firing_for: Option<Duration>,
    /// log_match: resolved after this long without a match; default `5m`.
    #[serde(
        default,
        with = "crate::base::duration::optional",
        skip_serializing_if = "Option::is_none"
    )]
    pub quiet: Option<Duration>,
    /// Labels added to the alert's own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: LabelSet,
    /// Annotation templates; `summary` and `description` default to the rule's kind's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: LabelSet,
}

/// The labels Aegis sets on every alert, which a rule may not set.
pub const OWN_LABELS: [&str; 7] = [
    "alertname",
    "service",
    "severity",
    "check",
    "pattern",
    "signal",
    "process",
];

/// The default rules: see docs/alerting.md for why each is what it is.
pub fn defaults() -> Vec<RuleConfig> {
    let rule = |name: &str, on: On| RuleConfig {
        name: name.into(),
        on: on.as_str().into(),
        ..RuleConfig::default()
    };
    vec![
        RuleConfig {
            outcomes: Some(vec!["down".into()]),
            severity: Some(Severity::Critical),
            hold: Some(Hold::Events(3)),
            ..rule("CheckDown", On::Probe)
        },
        RuleConfig {
            outcomes: Some(vec!["degraded".into()]),
            severity: Some(Severity::Warning),
            hold: Some(Hold::Events(3)),
            ..rule("CheckDegraded", On::Probe)
        },
        RuleConfig {
            min_severity: Some(Severity::Warning),
            quiet: Some(Duration::from_secs(5 * 60)),
            ..rule("LogPattern", On::LogMatch)
        },
        RuleConfig {
            severity: Some(Severity::Warning),
            hold: Some(Hold::Lasting(Duration::from_secs(60))),
            ..rule("Anomaly", On::Anomaly)
        },
        RuleConfig {
            severity: Some(Severity::Critical),
            ..rule("ServiceGaveUp", On::Process)
        },
    ]
}

/// The annotations a rule on these events has unless it writes its own.
fn default_annotations(on: On) -> [(&'static str, &'static str); 2] {
    match on {
        On::Probe => [
            ("summary", "{service}: check {check} is {outcome}"),
            (
                "description",
                "The {kind} check {check} of {service}: {outcome}, {count} in a row \
                 ({attempts} attempts the last time): {detail}",
            ),
        ],
        On::LogMatch => [
            ("summary", "{service}: {description}"),
            (
                "description",
                "Pattern {pattern} matched in {path} (matches so far: {count}); the last line: {line}",
            ),
        ],
        On::Anomaly => [
            ("summary", "{service}: {signal} is anomalous"),
            ("description", "{explanation}"),
        ],
        On::Process => [
            ("summary", "{service}: Aegis stopped restarting it"),
            (
                "description",
                "The process of {service} was restarted {restarts} times within {within} and \
                 exited again; its restart budget is spent, and Aegis no longer restarts it.",
            ),
        ],
    }
}

/// A problem in a rule: the place under the rule it concerns, and what is wrong.
#[derive(Debug, PartialEq)]
pub struct Problem {
    pub at: Vec<Segment>,
    /// Whether it is about the key itself (a key that does not apply) rather than its
    /// value.
    pub at_key: bool,
    pub message: String,
}

impl Problem {
    fn value(keys: &[&str], message: String) -> Problem {
        Problem {
            at: keys
                .iter()
                .map(|key| Segment::Key((*key).to_owned()))
                .collect(),
            at_key: false,
            message,
        }
    }
}

/// An optional list of names: `None` lets everything through.
#[derive(Clone, Debug)]
pub struct Filter(Option<Vec<String>>);

impl Filter {
    pub fn admits(&self, name: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|names| names.iter().any(|n| n == name))
    }
}

/// A rule, compiled.
#[derive(Clone, Debug)]
pub struct Rule {
    pub name: Arc<str>,
    pub on: On,
    pub services: Filter,
    /// The check (probe), pattern (log_match) or signal (anomaly) filter.
    pub causes: Filter,
    /// probe: the outcomes that are hits.
    pub outcomes: Vec<Outcome>,
    /// log_match: the least severity of pattern it takes.
    pub min_severity: Severity,
    /// `None`: the pattern's own (log_match).
    pub severity: Option<Severity>,
    /// probe: good results in a row that clear the condition (1 for anomalies).
    pub resolve_after: u32,
    /// log_match: the quiet period that clears the condition.
    pub quiet: Option<Duration>,
    pub timing: Timing,
    pub labels: LabelSet,
    pub annotations: Vec<(String, Template)>,
}

impl Rule {
    /// The labels of the alert this rule raises for `service` and `cause`.
    pub fn labels(&self, service: &str, cause: &str, severity: Severity) -> LabelSet {
        let mut labels = self.labels.clone();
        labels.insert("alertname".into(), self.name.to_string());
        labels.insert("service".into(), service.into());
        labels.insert("severity".into(), severity.as_label().into());
        labels.insert(self.on.cause_label().into(), cause.into());
        labels
    }

    /// Its annotations, filled with what the alert's last event said.
    pub fn annotate(&self, cause: &str, facts: &Facts) -> LabelSet {
        (self.annotations.iter())
            .map(|(name, template)| (name.clone(), template.render(cause, facts)))
            .collect()
    }
}

/// Whether `name` may name a label or an annotation: Prometheus's
/// `[a-zA-Z_][a-zA-Z0-9_]*`, without the `__` reserved for internal use.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

impl RuleConfig {
    /// Compiles the rule, with the stage's repeat interval and flap damping; every
    /// problem found, or none.
    pub fn compile(
        &self,
        repeat_interval: Duration,
        flap: FlapDamping,
    ) -> Result<Rule, Vec<Problem>> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push(Problem::value(
                &["name"],
                "the rule's name is empty; expected the alert's name, e.g. `CheckDown`".into(),
            ));
        }
        let Some(on) = On::named(&self.on) else {
            let mut message = format!(
                "unknown value `{}`; expected one of {}",
                self.on,
                list(&On::NAMES)
            );
            if let Some(close) = closest(&self.on, On::NAMES) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            problems.push(Problem::value(&["on"], message));
            return Err(problems);
        };
        self.check_keys_apply(on, &mut problems);
        let outcomes = self.outcomes(&mut problems);
        let hold = self.hold.unwrap_or(match on {
            On::Probe => Hold::Events(3),
            On::LogMatch => Hold::Events(1),
            On::Anomaly => Hold::Lasting(Duration::from_secs(60)),
            On::Process => Hold::Events(1),
        });
        match hold {
            Hold::Events(0) => problems.push(Problem::value(
                &["for"],
                "for is 0; expected a number of events in a row (1 fires on the first) or a duration (`2m`)".into(),
            )),
            Hold::Events(n) if n > 1 && on == On::Anomaly => problems.push(Problem::value(
                &["for"],
                format!("for is {n} events, but an anomaly is one event when it begins; expected 1 or a duration it must last (`2m`)"),
            )),
            _ => {}
        }
        if self.resolve_after == Some(0) {
            problems.push(Problem::value(
                &["resolve_after"],
                "resolve_after is 0; expected the number of good results in a row (1 or more) that resolve the alert".into(),
            ));
        }
        for name in self.labels.keys() {
            if OWN_LABELS.contains(&name.as_str()) {
                problems.push(Problem {
                    at: vec![Segment::Key("labels".into()), Segment::Key(name.clone())],
                    at_key: true,
                    message: format!(
                        "label `{name}` is set by Aegis; the labels it sets are {}",
                        list(&OWN_LABELS)
                    ),
                });
            } else if !is_label_name(name) {
                problems.push(Problem {
                    at: vec![Segment::Key("labels".into()), Segment::Key(name.clone())],
                    at_key: true,
                    message: format!("`{name}` cannot name a label; expected letters, digits and `_`, not starting with a digit or `__`"),
                });
            }
        }
        let mut annotations: BTreeMap<String, Template> = BTreeMap::new();
        for (name, text) in default_annotations(on) {
            let template = Template::parse(text, on).expect("the default templates are valid");
            annotations.insert(name.into(), template);
        }
        for (name, text) in &self.annotations {
            if !is_label_name(name) {
                problems.push(Problem {
                    at: vec![Segment::Key("annotations".into()), Segment::Key(name.clone())],
                    at_key: true,
                    message: format!("`{name}` cannot name an annotation; expected letters, digits and `_`, not starting with a digit or `__`"),
                });
                continue;
            }
            match Template::parse(text, on) {
                Ok(template) => {
                    annotations.insert(name.clone(), template);
                }
                Err(message) => problems.push(Problem::value(&["annotations", name], message)),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let causes = match on {
            On::Probe => &self.checks,
            On::LogMatch => &self.patterns,
            On::Anomaly => &self.signals,
            On::Process => &None,
        };
        Ok(Rule {
            name: self.name.as_str().into(),
            on,
            services: Filter(self.services.clone()),
            causes: Filter(causes.clone()),
            outcomes,
            min_severity: self.min_severity.unwrap_or(Severity::Info),
            severity: self.severity.or(match on {
                On::Probe => Some(Severity::Critical),
                On::LogMatch => None,
                On::Anomaly => Some(Severity::Warning),
                On::Process => Some(Severity::Critical),
            }),
            resolve_after: match on {
                On::Probe => self.resolve_after.unwrap_or(2),
                _ => 1,
            },
            quiet: (on == On::LogMatch).then(|| self.quiet.unwrap_or(Duration::from_secs(5 * 60))),
            timing: Timing {
                hold,
                keep_firing_for: self.keep_firing_for.unwrap_or_default(),
                repeat_interval,
                flap,
            },
            labels: self.labels.clone(),
            annotations: annotations.into_iter().collect(),
        })
    }

    /// Reports the keys written that do not apply to rules on `on`'s events.
    fn check_keys_apply(&self, on: On, problems: &mut Vec<Problem>) {
        let written = [
            ("checks", self.checks.is_some()),
            ("outcomes", self.outcomes.is_some()),
            ("resolve_after", self.resolve_after.is_some()),
            ("patterns", self.patterns.is_some()),
            ("min_severity", self.min_severity.is_some()),
            ("quiet", self.quiet.is_some()),
            ("signals", self.signals.is_some()),
        ];
        for (key, is_written) in written {
            if is_written && !on.own_keys().contains(&key) {
                problems.push(Problem {
                    at: vec![Segment::Key(key.into())],
                    at_key: true,
                    message: match on.own_keys() {
                        [] => format!(
                            "`{key}` does not apply to {}, which has no keys of its own",
                            on.rule()
                        ),
                        own => format!(
                            "`{key}` does not apply to {}; its own keys are {}",
                            on.rule(),
                            list(own)
                        ),
                    },
                });
            }
        }
    }

    /// The outcomes that are hits (probe rules), each checked.
    fn outcomes(&self, problems: &mut Vec<Problem>) -> Vec<Outcome> {
        let Some(names) = &self.outcomes else {
            return vec![Outcome::Down];
        };
        if names.is_empty() {
            problems.push(Problem::value(
                &["outcomes"],
                "outcomes is empty; expected `down`, `degraded` or both".into(),
            ));
        }
        let mut outcomes = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let outcome = match name.as_str() {
                "down" => Outcome::Down,
                "degraded" => Outcome::Degraded,
                other => {
                    let message = if other == "up" {
                        "outcome `up` is never a failure; expected `down` or `degraded`".to_owned()
                    } else {
                        let mut message =
                            format!("unknown outcome `{other}`; expected `down` or `degraded`");
                        if let Some(close) = closest(other, ["down", "degraded"]) {
                            message.push_str(&format!(" (did you mean `{close}`?)"));
                        }
                        message
                    };
                    problems.push(Problem {
                        at: vec![Segment::Key("outcomes".into()), Segment::Index(i)],
                        at_key: false,
                        message,
                    });
                    continue;
                }
            };
            outcomes.push(outcome);
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flap() -> FlapDamping {
        FlapDamping::default()
    }

    #[test]
    fn the_default_rules_compile_with_the_alert_labels() {
        for config in defaults() {
            let rule = config
                .compile(Duration::from_secs(4 * 3600), flap())
                .unwrap();
            let labels = rule.labels("shop", "health", Severity::Critical);
            let names: Vec<&str> = labels.keys().map(String::as_str).collect();
            assert_eq!(
                names,
                ["alertname", "service", "severity", rule.on.cause_label()]
                    .into_iter()
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
            );
            let annotations: Vec<&str> = rule.annotations.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(annotations, ["description", "summary"]);
        }
    }

    #[test]
    fn hold_reads_a_count_or_a_duration() {
        let read = |text: &str| serde_norway::from_str::<Hold>(text).map_err(|e| e.to_string());
        assert_eq!(read("3"), Ok(Hold::Events(3)));
        assert_eq!(read("2m"), Ok(Hold::Lasting(Duration::from_secs(120))));
        assert!(read("-1").unwrap_err().contains("not a number of events"));
        assert!(read("2x").unwrap_err().contains("invalid duration `2x`"));
    }
}
