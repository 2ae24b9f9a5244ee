//! The `console` sink: events as lines of JSON on standard output.
//!
//! For debugging, tests and piping into `jq`. A block of log lines is written as one
//! object per line; durations are in seconds. Anomalies are written as they change
//! state; what they are made of (samples, each slice of each signal) is left to the
//! metrics, as too much for a console. Batches that arrive while a write is
//! under way go out together in the next; a closed standard output (`aegis run … |
//! head`) ends the sink quietly.
//!
//! ```yaml
//! sinks:
//!   out:
//!     type: console
//!     inputs: [app_errors]
//!     events: [log_match, alert]   # only these; default: every event it is fed
//! ```

use std::io::{self, Write};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_norway::Value;
use tokio::sync::mpsc;

use crate::base::component::{Input, NodeError, Sink};
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{
    Alert, Anomaly, Change, Event, EventKind, FailureReason, Fingerprint, LabelSet, Lifecycle,
    LogLines, LogMatch, Notify, Outcome, PatternErrors, PerfSample, ProbeKind, ProbeResult,
    ProbeStatus, Reference, RestartReason,
};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};

/// Configuration of a `console` sink.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    /// The events printed, by the name the console gives them (`"event"`); default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<ConsoleEvent>>,
}

/// An event as the console names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsoleEvent {
    LogLine,
    LogMatch,
    PatternErrors,
    ProbeResult,
    Anomaly,
    Alert,
    Lifecycle,
}

impl ConsoleEvent {
    fn of(kind: EventKind) -> Option<ConsoleEvent> {
        Some(match kind {
            EventKind::LogLines => ConsoleEvent::LogLine,
            EventKind::LogMatch => ConsoleEvent::LogMatch,
            EventKind::PatternErrors => ConsoleEvent::PatternErrors,
            EventKind::ProbeResult => ConsoleEvent::ProbeResult,
            EventKind::Anomaly => ConsoleEvent::Anomaly,
            EventKind::Alert => ConsoleEvent::Alert,
            EventKind::Lifecycle => ConsoleEvent::Lifecycle,
            EventKind::Samples | EventKind::SignalSlice => return None,
        })
    }
}

impl ComponentType for ConsoleConfig {
    const NAME: &'static str = "console";
    const ACCEPTS: &'static [EventKind] = EventKind::ALL;
    const EMITS: &'static [EventKind] = &[];
    type Built = dyn Sink;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        diag.decode(options, path)
    }

    fn build(&self, _: &mut BuildContext) -> Option<Box<dyn Sink>> {
        Some(Box::new(Console {
            events: self.events.clone(),
        }))
    }
}

pub struct Console {
    /// The events it prints; `None`: all.
    events: Option<Vec<ConsoleEvent>>,
}

impl Console {
    fn write_batch(&self, buffer: &mut Vec<u8>, batch: &[Event]) {
        let shown = |event: &&Event| match &self.events {
            None => true,
            Some(events) => ConsoleEvent::of(event.kind()).is_some_and(|e| events.contains(&e)),
        };
        (batch.iter().filter(shown)).for_each(|event| write_event(buffer, event));
    }
}

/// How much output is gathered into one write, at most.
const WRITE_LIMIT: usize = 256 * 1024;

impl Sink for Console {
    fn run(self: Box<Self>, mut input: Input) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            // Standard output is written by a thread of its own: a write may block (a
            // full pipe), which must not hold up a runtime thread, and one hand-off per
            // write costs less than tokio's stdout, which hands each write and each
            // flush to the blocking pool separately.
            let (to_writer, mut written) = mpsc::channel::<Vec<u8>>(2);
            let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
                let mut stdout = io::stdout().lock();
                while let Some(buffer) = written.blocking_recv() {
                    stdout.write_all(&buffer)?;
                    stdout.flush()?;
                }
                Ok(())
            });
            while let Some(batch) = input.recv().await {
                let mut buffer = Vec::new();
                self.write_batch(&mut buffer, &batch);
                // Batches that arrived meanwhile go out in the same write. (Waiting for
                // more would save writes, but cap a trickle of one-event batches at the
                // channel's capacity per wait.)
                while buffer.len() < WRITE_LIMIT {
                    let Some(batch) = input.try_recv() else { break };
                    self.write_batch(&mut buffer, &batch);
                }
                if buffer.is_empty() {
                    continue;
                }
                if to_writer.send(buffer).await.is_err() {
                    break; // the writer stopped; it says why below
                }
            }
            drop(to_writer);
            match writer.await? {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == io::ErrorKind::BrokenPipe => {
                    tracing::debug!("Standard output is closed; the console sink stops.");
                    Ok(())
                }
                Err(source) => Err(NodeError::Io {
                    what: "writing to standard output".into(),
                    source,
                }),
            }
        })
    }
}

/// Appends `event` to `buffer` as JSON lines.
pub fn write_event(buffer: &mut Vec<u8>, event: &Event) {
    match event {
        Event::LogLines(lines) => {
            for line in lines.lines() {
                push_json(buffer, &LogLineJson::new(lines, line));
            }
        }
        Event::LogMatch(found) => push_json(buffer, &LogMatchJson::new(found)),
        Event::PatternErrors(errors) => push_json(buffer, &PatternErrorsJson::new(errors)),
        Event::ProbeResult(result) => push_json(buffer, &ProbeResultJson::new(result)),
        Event::Anomaly(anomaly) => push_json(buffer, &AnomalyJson::new(anomaly)),
        Event::Alert(alert) => push_json(buffer, &AlertJson::new(alert)),
        Event::Lifecycle(life) => push_json(buffer, &LifecycleJson::new(life)),
        // What the metrics are made of, slice by slice: too much for a console.
        Event::Samples(_) | Event::SignalSlice(_) => {}
    }
}

/// A signal's change of state, as the console prints it.
#[derive(Serialize)]
struct AnomalyJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    signal: &'a str,
    state: &'static str,
    started: String,
    observed: f64,
    #[serde(flatten)]
    reference: &'a Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    score: Option<f64>,
    explanation: &'a str,
}

impl<'a> AnomalyJson<'a> {
    fn new(anomaly: &'a Anomaly) -> Self {
        AnomalyJson {
            event: "anomaly",
            time: humantime::format_rfc3339_millis(anomaly.at).to_string(),
            service: &anomaly.service,
            signal: anomaly.signal.as_str(),
            state: if anomaly.anomalous {
                "anomalous"
            } else {
                "normal"
            },
            started: humantime::format_rfc3339_millis(anomaly.started).to_string(),
            observed: anomaly.observed,
            reference: &anomaly.reference,
            score: anomaly.score,
            explanation: &anomaly.explanation,
        }
    }
}

/// A supervised process's start, exit, restart or abandon, as the console prints it.
#[derive(Serialize)]
struct LifecycleJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    change: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ran_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    check: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restarts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    within_seconds: Option<f64>,
}

impl<'a> LifecycleJson<'a> {
    fn new(life: &'a Lifecycle) -> Self {
        let mut json = LifecycleJson {
            event: "lifecycle",
            time: humantime::format_rfc3339_millis(life.at).to_string(),
            service: &life.service,
            change: life.change.name(),
            pid: None,
            exit: None,
            exit_code: None,
            ran_seconds: None,
            after_seconds: None,
            reason: None,
            check: None,
            restarts: None,
            within_seconds: None,
        };
        match &life.change {
            Change::Started { pid } => json.pid = Some(*pid),
            Change::Exited { pid, exit, ran } => {
                json.pid = *pid;
                json.exit = Some(exit.to_string());
                json.exit_code = Some(exit.as_number());
                json.ran_seconds = Some(ran.as_secs_f64());
            }
            Change::Restarting {
                after,
                reason,
                restarts,
            } => {
                json.after_seconds = Some(after.as_secs_f64());
                json.reason = Some(reason.as_label());
                if let RestartReason::Unhealthy { check } = reason {
                    json.check = Some(check);
                }
                json.restarts = Some(*restarts);
            }
            Change::GaveUp { restarts, within } => {
                json.restarts = Some(*restarts);
                json.within_seconds = Some(within.as_secs_f64());
            }
        }
        json
    }
}

/// An alert's change of state (or a repeat), as the console prints it.
#[derive(Serialize)]
struct AlertJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    state: &'static str,
    notify: Notify,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    flapping: bool,
    fingerprint: Fingerprint,
    started: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended: Option<String>,
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
}

impl<'a> AlertJson<'a> {
    fn new(alert: &'a Alert) -> Self {
        AlertJson {
            event: "alert",
            time: humantime::format_rfc3339_millis(alert.at).to_string(),
            service: &alert.service,
            state: alert.state.as_str(),
            notify: alert.notify,
            flapping: alert.flapping,
            fingerprint: alert.fingerprint,
            started: humantime::format_rfc3339_millis(alert.started).to_string(),
            ended: (alert.ended).map(|ended| humantime::format_rfc3339_millis(ended).to_string()),
            labels: &alert.labels,
            annotations: &alert.annotations,
        }
    }
}

#[derive(Serialize)]
struct PatternErrorsJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    path: &'a str,
    pattern: &'a str,
    reason: &'static str,
    lines: u32,
}

impl<'a> PatternErrorsJson<'a> {
    fn new(errors: &'a PatternErrors) -> Self {
        PatternErrorsJson {
            event: "pattern_errors",
            time: humantime::format_rfc3339_millis(errors.at).to_string(),
            service: &errors.service,
            path: &errors.path,
            pattern: &errors.pattern,
            reason: errors.reason.as_str(),
            lines: errors.lines,
        }
    }
}

fn push_json(buffer: &mut Vec<u8>, value: &impl Serialize) {
    serde_json::to_writer(&mut *buffer, value).expect("event JSON has string keys only");
    buffer.push(b'\n');
}

#[derive(Serialize)]
struct LogLineJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    path: &'a str,
    line: std::borrow::Cow<'a, str>,
}

impl<'a> LogLineJson<'a> {
    fn new(lines: &'a LogLines, line: &'a [u8]) -> Self {
        LogLineJson {
            event: "log_line",
            time: humantime::format_rfc3339_millis(lines.at).to_string(),
            service: &lines.service,
            path: &lines.path,
            line: String::from_utf8_lossy(line),
        }
    }
}

#[derive(Serialize)]
struct LogMatchJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    path: &'a str,
    pattern: &'a str,
    severity: crate::base::event::Severity,
    description: &'a str,
    line: &'a str,
}

impl<'a> LogMatchJson<'a> {
    fn new(found: &'a LogMatch) -> Self {
        LogMatchJson {
            event: "log_match",
            time: humantime::format_rfc3339_millis(found.at).to_string(),
            service: &found.service,
            path: &found.path,
            pattern: &found.pattern,
            severity: found.severity,
            description: &found.description,
            line: &found.line,
        }
    }
}

/// A check's result as JSON; the `--once` summary lists its checks the same way.
#[derive(Serialize)]
pub struct ProbeResultJson<'a> {
    event: &'static str,
    time: String,
    service: &'a str,
    check: &'a str,
    kind: ProbeKind,
    outcome: Outcome,
    /// Seconds, as Prometheus would have it.
    latency: f64,
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    grpc_status: Option<&'static str>,
    reason: Option<FailureReason>,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    perfdata: &'a [PerfSample],
    /// How late the tick started, in seconds.
    late: f64,
}

impl<'a> ProbeResultJson<'a> {
    pub fn new(result: &'a ProbeResult) -> Self {
        ProbeResultJson {
            event: "probe_result",
            time: humantime::format_rfc3339_millis(result.at).to_string(),
            service: &result.service,
            check: &result.check,
            kind: result.kind,
            outcome: result.outcome,
            latency: result.latency.as_secs_f64(),
            attempts: result.attempts,
            http_status: match result.status {
                Some(ProbeStatus::Http(code)) => Some(code),
                _ => None,
            },
            grpc_status: match result.status {
                Some(ProbeStatus::Grpc(name)) => Some(name),
                _ => None,
            },
            reason: result.reason,
            detail: &result.detail,
            perfdata: &result.perfdata,
            late: result.late.as_secs_f64(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::event::Severity;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn events_become_json_lines() {
        let at = UNIX_EPOCH + Duration::from_millis(1_795_824_000_123);
        let lines = Event::LogLines(LogLines {
            service: "shop".into(),
            path: "/l/app.log".into(),
            at,
            text: bytes::Bytes::from_static(b"a \"quoted\"\r\nb\n"),
            lines: 2,
            cut: 0,
            lossy: 0,
        });
        let found = Event::LogMatch(LogMatch {
            service: "shop".into(),
            path: "/l/app.log".into(),
            at,
            pattern: "oom".into(),
            severity: Severity::Critical,
            description: "Out of memory".into(),
            line: "b".into(),
        });
        let mut buffer = Vec::new();
        write_event(&mut buffer, &lines);
        write_event(&mut buffer, &found);
        let text = String::from_utf8(buffer).unwrap();
        let expected = concat!(
            r#"{"event":"log_line","time":"2026-11-28T00:00:00.123Z","service":"shop","path":"/l/app.log","line":"a \"quoted\""}"#,
            "\n",
            r#"{"event":"log_line","time":"2026-11-28T00:00:00.123Z","service":"shop","path":"/l/app.log","line":"b"}"#,
            "\n",
            r#"{"event":"log_match","time":"2026-11-28T00:00:00.123Z","service":"shop","path":"/l/app.log","pattern":"oom","severity":"CRITICAL","description":"Out of memory","line":"b"}"#,
            "\n",
        );
        assert_eq!(text, expected);
    }
}
