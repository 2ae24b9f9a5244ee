//! The summary of a `--once` run: lines read per file, matches per pattern and per
//! severity, each check's result, every anomaly from its start to its end (none if
//! it lasted to the end of the input), and every alert that fired, likewise, printed
//! for humans or as JSON when the run ends.
//!
//! Not a sink users configure: `aegis run --once` attaches it to every source and stage
//! of the graph. It counts from the events alone, as every sink does, except for the
//! list of configured patterns, which it is given so that a pattern that matched
//! nothing is listed with 0 rather than left out. Paths are shown from the current
//! folder when they are inside it, as users typed them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::Serialize;

use crate::base::component::{Input, NodeError, Sink};
use crate::base::event::{Alert, AlertState, Event, Fingerprint, ProbeResult, Reference, Severity};
use crate::base::text::Escaped;
use crate::sinks::console::ProbeResultJson;

/// Counts gathered so far; shared with whoever prints them at the end.
#[derive(Debug, Default)]
pub struct Summary {
    files: BTreeMap<(Arc<str>, Arc<str>), FileCounts>,
    patterns: BTreeMap<(Arc<str>, Severity), PatternCounts>,
    /// The last result of each check (a `--once` run has one per check).
    checks: BTreeMap<(Arc<str>, Arc<str>), ProbeResult>,
    /// Anomalies in the order they began; `end` is set when one is over.
    anomalies: Vec<AnomalyReport>,
    /// Alerts in the order they fired; `end` is set when one resolves.
    alerts: Vec<AlertReport>,
}

/// One alert of the run: from when it fired to when it resolved (none if it was
/// still firing at the end of the input). Pending alerts that never fired are left
/// out, as receivers never hear of them.
#[derive(Clone, Debug, Serialize)]
pub struct AlertReport {
    pub fingerprint: Fingerprint,
    pub alertname: String,
    pub service: String,
    pub severity: Severity,
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    #[serde(serialize_with = "rfc3339_or_null")]
    pub end: Option<SystemTime>,
    /// Its `summary` annotation when it fired.
    pub summary: String,
}

impl AlertReport {
    fn new(alert: &Alert) -> AlertReport {
        AlertReport {
            fingerprint: alert.fingerprint,
            alertname: alert.rule.to_string(),
            service: alert.service.to_string(),
            severity: alert.severity,
            start: alert.started,
            end: None,
            summary: alert
                .annotations
                .get("summary")
                .cloned()
                .unwrap_or_default(),
        }
    }
}

/// One anomaly of the run: from its start to its end (none if it lasted to the end of
/// the input), with the value and sentence of the slice that began it.
#[derive(Clone, Debug, Serialize)]
pub struct AnomalyReport {
    pub service: String,
    pub signal: String,
    #[serde(serialize_with = "rfc3339")]
    pub start: SystemTime,
    #[serde(serialize_with = "rfc3339_or_null")]
    pub end: Option<SystemTime>,
    pub observed: f64,
    #[serde(flatten)]
    pub reference: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    pub explanation: String,
}

fn rfc3339<S: serde::Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&humantime::format_rfc3339_seconds(*time))
}

fn rfc3339_or_null<S: serde::Serializer>(
    time: &Option<SystemTime>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => rfc3339(time, serializer),
        None => serializer.serialize_none(),
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct PatternCounts {
    matches: u64,
    /// Lines the pattern could not decide.
    errors: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
struct FileCounts {
    lines: u64,
    bytes: u64,
    cut: u64,
    lossy: u64,
}

impl Summary {
    /// A summary that lists every configured pattern (name and severity), matched or
    /// not.
    pub fn expecting<'a>(patterns: impl IntoIterator<Item = (&'a str, Severity)>) -> Summary {
        let patterns = (patterns.into_iter())
            .map(|(name, severity)| ((name.into(), severity), PatternCounts::default()))
            .collect();
        Summary {
            patterns,
            ..Summary::default()
        }
    }

    pub fn record(&mut self, event: &Event) {
        match event {
            Event::LogLines(lines) => {
                let counts = self
                    .files
                    .entry((lines.service.clone(), lines.path.clone()))
                    .or_default();
                counts.lines += u64::from(lines.lines);
                counts.bytes += lines.text.len() as u64;
                counts.cut += u64::from(lines.cut);
                counts.lossy += u64::from(lines.lossy);
            }
            Event::LogMatch(found) => {
                let key = (found.pattern.clone(), found.severity);
                self.patterns.entry(key).or_default().matches += 1;
            }
            Event::PatternErrors(errors) => {
                // Listed under each severity the pattern name has (one, in practice).
                for ((name, _), counts) in &mut self.patterns {
                    if *name == errors.pattern {
                        counts.errors += u64::from(errors.lines);
                    }
                }
            }
            Event::ProbeResult(result) => {
                let key = (result.service.clone(), result.check.clone());
                self.checks.insert(key, result.clone());
            }
            Event::Anomaly(anomaly) if anomaly.anomalous => {
                self.anomalies.push(AnomalyReport {
                    service: anomaly.service.to_string(),
                    signal: anomaly.signal.to_string(),
                    start: anomaly.started,
                    end: None,
                    observed: anomaly.observed,
                    reference: anomaly.reference.clone(),
                    score: anomaly.score,
                    explanation: anomaly.explanation.clone(),
                });
            }
            Event::Anomaly(anomaly) => {
                let open = (self.anomalies.iter_mut().rev()).find(|open| {
                    open.end.is_none()
                        && *open.service == *anomaly.service
                        && open.signal == anomaly.signal.as_str()
                });
                if let Some(open) = open {
                    open.end = Some(anomaly.changed);
                }
            }
            Event::Alert(alert) => self.record_alert(alert),
            // Supervised services are not started by a one-shot run.
            Event::Samples(_) | Event::SignalSlice(_) | Event::Lifecycle(_) => {}
        }
    }

    /// An alert that fires opens a report (a repeat finds it open); one that resolves
    /// closes it.
    fn record_alert(&mut self, alert: &Alert) {
        let open = (self.alerts.iter_mut().rev())
            .find(|open| open.end.is_none() && open.fingerprint == alert.fingerprint);
        match (alert.state, open) {
            (AlertState::Firing, None) => self.alerts.push(AlertReport::new(alert)),
            (AlertState::Resolved, Some(open)) => open.end = Some(alert.ended.unwrap_or(alert.at)),
            _ => {}
        }
    }

    /// The summary as printed, with the run's duration; paths inside `here` (the
    /// current folder) are shown from it.
    pub fn report(&self, elapsed: Duration, here: Option<&Path>) -> Report {
        let shown = |path: &str| match here.and_then(|here| Path::new(path).strip_prefix(here).ok())
        {
            Some(inside) if !inside.as_os_str().is_empty() => inside.to_string_lossy().into_owned(),
            _ => path.to_owned(),
        };
        let files: Vec<FileReport> = self
            .files
            .iter()
            .map(|((service, path), counts)| FileReport {
                service: service.to_string(),
                path: shown(path),
                counts: *counts,
            })
            .collect();
        let patterns: Vec<PatternReport> = self
            .patterns
            .iter()
            .map(|((name, severity), counts)| PatternReport {
                name: name.to_string(),
                severity: *severity,
                matches: counts.matches,
                errors: counts.errors,
            })
            .collect();
        let by_severity = |severity| {
            patterns
                .iter()
                .filter(|p| p.severity == severity)
                .map(|p| p.matches)
                .sum()
        };
        Report {
            lines: files.iter().map(|f| f.counts.lines).sum(),
            bytes: files.iter().map(|f| f.counts.bytes).sum(),
            elapsed_seconds: elapsed.as_secs_f64(),
            severities: Severities {
                critical: by_severity(Severity::Critical),
                warning: by_severity(Severity::Warning),
                info: by_severity(Severity::Info),
            },
            files,
            patterns,
            checks: self.checks.values().cloned().collect(),
            anomalies: self.anomalies.clone(),
            alerts: self.alerts.clone(),
        }
    }
}

/// The end-of-run report; `Display` is the human form, `Serialize` the JSON one.
#[derive(Debug, Serialize)]
pub struct Report {
    pub files: Vec<FileReport>,
    pub patterns: Vec<PatternReport>,
    /// The last result of each check, as the console sink writes them.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "checks_json")]
    pub checks: Vec<ProbeResult>,
    /// Every anomaly the run found, in the order they began.
    pub anomalies: Vec<AnomalyReport>,
    /// Every alert that fired, in the order they fired.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<AlertReport>,
    pub severities: Severities,
    pub lines: u64,
    pub bytes: u64,
    pub elapsed_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub service: String,
    pub path: String,
    #[serde(flatten)]
    counts: FileCounts,
}

#[derive(Debug, Serialize)]
pub struct PatternReport {
    pub name: String,
    pub severity: Severity,
    pub matches: u64,
    /// Lines the pattern could not decide within its limits.
    pub errors: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub struct Severities {
    pub critical: u64,
    pub warning: u64,
    pub info: u64,
}

impl fmt::Display for Report {
    /// The log part when files were read (or nothing else ran), then the checks; every
    /// line ends with a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.files.is_empty() || self.checks.is_empty() {
            self.fmt_logs(f)?;
        }
        if !self.checks.is_empty() {
            self.fmt_checks(f)?;
        }
        if !self.anomalies.is_empty() {
            self.fmt_anomalies(f)?;
        }
        if !self.alerts.is_empty() {
            self.fmt_alerts(f)?;
        }
        Ok(())
    }
}

impl Report {
    fn fmt_logs(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "files ({})", self.files.len())?;
        writeln!(
            f,
            "{:>12} {:>14} {:>8} {:>8}  {:<16} path",
            "lines", "bytes", "cut", "lossy", "service"
        )?;
        for file in &self.files {
            let c = &file.counts;
            writeln!(
                f,
                "{:>12} {:>14} {:>8} {:>8}  {:<16} {}",
                c.lines,
                c.bytes,
                c.cut,
                c.lossy,
                Escaped(&file.service).to_string(),
                Escaped(&file.path)
            )?;
        }
        writeln!(
            f,
            "(cut: lines longer than max_line_bytes, kept up to it; lossy: lines with invalid UTF-8, read with U+FFFD in its place)"
        )?;
        writeln!(f, "patterns ({})", self.patterns.len())?;
        writeln!(
            f,
            "{:>12} {:>8}  {:<9} pattern",
            "matches", "errors", "severity"
        )?;
        for pattern in &self.patterns {
            writeln!(
                f,
                "{:>12} {:>8}  {:<9} {}",
                pattern.matches,
                pattern.errors,
                pattern.severity.as_str(),
                Escaped(&pattern.name)
            )?;
        }
        if self.patterns.iter().any(|pattern| pattern.errors > 0) {
            writeln!(
                f,
                "(errors: lines a pattern could not decide within its time and backtracking limits; neither matches nor non-matches)"
            )?;
        }
        let s = &self.severities;
        writeln!(
            f,
            "severities: CRITICAL {}, WARNING {}, INFO {}",
            s.critical, s.warning, s.info
        )?;
        let seconds = self.elapsed_seconds.max(1e-9);
        writeln!(
            f,
            "read {} lines, {} bytes in {:.3} s ({:.1} MB/s, {:.0} lines/s)",
            self.lines,
            self.bytes,
            self.elapsed_seconds,
            self.bytes as f64 / seconds / 1e6,
            self.lines as f64 / seconds,
        )
    }

    fn fmt_checks(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "checks ({})", self.checks.len())?;
        writeln!(
            f,
            "{:>9} {:>10} {:>8}  {:<16} {:<16} detail",
            "outcome", "latency", "attempts", "service", "check"
        )?;
        for check in &self.checks {
            writeln!(
                f,
                "{:>9} {:>7.1} ms {:>8}  {:<16} {:<16} {}",
                check.outcome.as_str(),
                check.latency.as_secs_f64() * 1e3,
                check.attempts,
                Escaped(&check.service).to_string(),
                Escaped(&check.check).to_string(),
                Escaped(&check.detail)
            )?;
        }
        Ok(())
    }
}

impl Report {
    fn fmt_anomalies(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "anomalies ({})", self.anomalies.len())?;
        writeln!(f, "{:<20} {:<20} what", "start", "end")?;
        for anomaly in &self.anomalies {
            let end = match anomaly.end {
                Some(end) => humantime::format_rfc3339_seconds(end).to_string(),
                None => "(still at the end)".to_owned(),
            };
            writeln!(
                f,
                "{:<20} {:<20} {}",
                humantime::format_rfc3339_seconds(anomaly.start).to_string(),
                end,
                Escaped(&anomaly.explanation)
            )?;
        }
        Ok(())
    }
}

impl Report {
    fn fmt_alerts(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "alerts ({})", self.alerts.len())?;
        writeln!(
            f,
            "{:<20} {:<20} {:<9} {:<16} {:<16} summary",
            "start", "end", "severity", "service", "alert"
        )?;
        for alert in &self.alerts {
            let end = match alert.end {
                Some(end) => humantime::format_rfc3339_seconds(end).to_string(),
                None => "(still firing)".to_owned(),
            };
            writeln!(
                f,
                "{:<20} {:<20} {:<9} {:<16} {:<16} {}",
                humantime::format_rfc3339_seconds(alert.start).to_string(),
                end,
                alert.severity.as_str(),
                Escaped(&alert.service).to_string(),
                Escaped(&alert.alertname).to_string(),
                Escaped(&alert.summary)
            )?;
        }
        Ok(())
    }
}

fn checks_json<S: serde::Serializer>(
    checks: &[ProbeResult],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(checks.iter().map(ProbeResultJson::new))
}

/// The sink that fills a shared [`Summary`].
pub struct SummarySink {
    summary: Arc<Mutex<Summary>>,
}

impl SummarySink {
    pub fn new(summary: Arc<Mutex<Summary>>) -> Self {
        SummarySink { summary }
    }
}

impl Sink for SummarySink {
    fn run(self: Box<Self>, mut input: Input) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            while let Some(batch) = input.recv().await {
                let mut summary = self.summary.lock().unwrap_or_else(PoisonError::into_inner);
                batch.iter().for_each(|event| summary.record(event));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::event::{LogLines, LogMatch, Notify};
    use crate::sinks::testing::alert;
    use std::time::UNIX_EPOCH;

    #[test]
    fn alerts_are_listed_from_firing_to_resolved_and_pending_ones_left_out() {
        use AlertState::*;
        let mut summary = Summary::default();
        let critical = Severity::Critical;
        for event in [
            alert("shop", "down", critical, Pending, Notify::No, 10),
            alert("shop", "down", critical, Firing, Notify::Transition, 20),
            alert("shop", "down", critical, Firing, Notify::Repeat, 30),
            alert("shop", "slow", Severity::Warning, Pending, Notify::No, 30),
            alert("cart", "down", critical, Firing, Notify::Transition, 40),
            alert("shop", "down", critical, Resolved, Notify::Transition, 50),
        ] {
            summary.record(&Event::Alert(event));
        }
        let report = summary.report(Duration::from_secs(1), None);
        let json = serde_json::to_value(&report).unwrap();
        let alerts = json["alerts"].as_array().unwrap();
        assert_eq!(alerts.len(), 2, "{alerts:?}");
        assert_eq!(alerts[0]["alertname"], "down");
        assert_eq!(alerts[0]["service"], "shop");
        assert_eq!(alerts[0]["severity"], "CRITICAL");
        assert_eq!(alerts[0]["start"], "1970-01-01T00:00:10Z");
        assert_eq!(alerts[0]["end"], "1970-01-01T00:00:50Z");
        assert_eq!(alerts[0]["summary"], "down on shop");
        assert_eq!(alerts[1]["service"], "cart");
        assert_eq!(alerts[1]["end"], serde_json::Value::Null);
        let human = report.to_string();
        assert!(
            human.contains(
                "alerts (2)\nstart                end                  severity  service          alert            summary\n\
                 1970-01-01T00:00:10Z 1970-01-01T00:00:50Z CRITICAL  shop             down             down on shop\n\
                 1970-01-01T00:00:10Z (still firing)       CRITICAL  cart             down             down on cart\n"
            ),
            "{human}"
        );
    }

    #[test]
    fn counts_lines_per_file_and_matches_per_pattern_and_severity() {
        let mut summary = Summary::default();
        let lines = |path: &str, n: u32| {
            Event::LogLines(LogLines {
                service: "s".into(),
                path: path.into(),
                at: UNIX_EPOCH,
                text: bytes::Bytes::from("x\n".repeat(n as usize)),
                lines: n,
                cut: 1,
                lossy: 0,
            })
        };
        let found = |pattern: &str, severity| {
            Event::LogMatch(LogMatch {
                service: "s".into(),
                path: "a".into(),
                at: UNIX_EPOCH,
                pattern: pattern.into(),
                severity,
                description: "".into(),
                line: "x".into(),
            })
        };
        for event in [
            lines("a", 3),
            lines("b", 2),
            lines("a", 1),
            found("oom", Severity::Critical),
            found("oom", Severity::Critical),
            found("warn", Severity::Warning),
        ] {
            summary.record(&event);
        }
        let report = summary.report(Duration::from_secs(2), None);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["files"][0]["lines"], 4);
        assert_eq!(json["files"][0]["cut"], 2);
        assert_eq!(json["files"][1]["bytes"], 4);
        assert_eq!(json["patterns"][0]["name"], "oom");
        assert_eq!(json["patterns"][0]["matches"], 2);
        assert_eq!(json["severities"]["CRITICAL"], 2);
        assert_eq!(json["severities"]["WARNING"], 1);
        assert_eq!(json["lines"], 6);
        let human = report.to_string();
        assert!(
            human.contains("severities: CRITICAL 2, WARNING 1, INFO 0"),
            "{human}"
        );
    }
}
