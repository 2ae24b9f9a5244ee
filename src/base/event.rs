//! The events that flow through a pipeline, and their shared parts.
//!
//! Every source emits [`Event`]s, every stage turns events into events, every sink
//! publishes them. An event carries the service it concerns (an `Arc<str>`, shared by
//! all events of that service rather than cloned) and the wall-clock time it was made.
//! This module owns only the data: how events are batched and moved between nodes is
//! `pipeline`'s business.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A service name, shared by every event of that service.
pub type ServiceName = Arc<str>;

/// One thing that happened, as it moves between nodes.
#[derive(Clone, Debug)]
pub enum Event {
    /// Consecutive complete lines read from one log file.
    LogLines(LogLines),
    /// A log line that matched a named pattern.
    LogMatch(LogMatch),
    /// Lines a pattern could not decide within its limits.
    PatternErrors(PatternErrors),
    /// The result of one scheduled health check, after its retries.
    ProbeResult(ProbeResult),
    /// Requests and values read from log lines (a request log, a custom signal).
    Samples(Samples),
    /// One closed slice of one signal of one service: its value and how it was judged.
    SignalSlice(SignalSlice),
    /// A signal of a service became anomalous, or normal again.
    Anomaly(Anomaly),
    /// An alert changed state, or is told again.
    Alert(Alert),
    /// A supervised service's process started, exited, is restarted or was given up on.
    Lifecycle(Lifecycle),
}

impl Event {
    /// The kind of this event, for checking which node can feed which.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::LogLines(_) => EventKind::LogLines,
            Event::LogMatch(_) => EventKind::LogMatch,
            Event::PatternErrors(_) => EventKind::PatternErrors,
            Event::ProbeResult(_) => EventKind::ProbeResult,
            Event::Samples(_) => EventKind::Samples,
            Event::SignalSlice(_) => EventKind::SignalSlice,
            Event::Anomaly(_) => EventKind::Anomaly,
            Event::Alert(_) => EventKind::Alert,
            Event::Lifecycle(_) => EventKind::Lifecycle,
        }
    }
}

/// The kinds of [`Event`], used when the pipeline graph checks that a node's inputs emit
/// something the node can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    LogLines,
    LogMatch,
    PatternErrors,
    ProbeResult,
    Samples,
    SignalSlice,
    Anomaly,
    Alert,
    Lifecycle,
}

impl EventKind {
    /// Every kind: what a sink that publishes anything takes.
    pub const ALL: &'static [EventKind] = &[
        EventKind::LogLines,
        EventKind::LogMatch,
        EventKind::PatternErrors,
        EventKind::ProbeResult,
        EventKind::Samples,
        EventKind::SignalSlice,
        EventKind::Anomaly,
        EventKind::Alert,
        EventKind::Lifecycle,
    ];

    /// The name users see in configuration errors.
    pub fn describe(self) -> &'static str {
        match self {
            EventKind::LogLines => "log lines",
            EventKind::LogMatch => "log matches",
            EventKind::PatternErrors => "pattern errors",
            EventKind::ProbeResult => "probe results",
            EventKind::Samples => "samples",
            EventKind::SignalSlice => "signal slices",
            EventKind::Anomaly => "anomalies",
            EventKind::Alert => "alerts",
            EventKind::Lifecycle => "service lifecycle events",
        }
    }
}

/// A block of consecutive, complete lines from one file: the batch form of a log line.
///
/// The tail reads files in large blocks, and one event per line would cost an
/// allocation and a channel slot per line; a block costs one of each per read. Stages
/// that look at single lines iterate with [`LogLines::lines`].
///
/// Invariants, established by the tail: `text` is valid UTF-8 (invalid sequences were
/// replaced with U+FFFD and counted in `lossy`) and every line in it ends with `\n`
/// (a final line without one, flushed at end of file, got one added). A line may end
/// in `\r\n`; [`LogLines::lines`] strips both.
#[derive(Clone, Debug)]
pub struct LogLines {
    pub service: ServiceName,
    /// The path the lines were read from, as configured or as a glob expanded it.
    pub path: Arc<str>,
    pub at: SystemTime,
    pub text: Bytes,
    /// How many lines `text` holds.
    pub lines: u32,
    /// Of those, how many were longer than the tail's bound and were cut to it.
    pub cut: u32,
    /// Of those, how many held invalid UTF-8 and were decoded lossily.
    pub lossy: u32,
}

impl LogLines {
    /// The lines of the block, without their line ends (`\n` or `\r\n`).
    pub fn lines(&self) -> impl Iterator<Item = &[u8]> {
        split_lines(&self.text)
    }
}

/// Splits text made of `\n`-terminated lines into the lines, without `\n` or `\r\n`.
pub fn split_lines(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
        let line = trim_line_end(&rest[..end]);
        rest = &rest[(end + 1).min(rest.len())..];
        Some(line)
    })
}

/// Strips a trailing `\r`, the first half of a CRLF line end.
pub fn trim_line_end(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// A log line that matched a named pattern. A line that matches several patterns gives
/// one `LogMatch` per pattern.
#[derive(Clone, Debug)]
pub struct LogMatch {
    pub service: ServiceName,
    pub path: Arc<str>,
    pub at: SystemTime,
    /// The pattern's name, as configured.
    pub pattern: Arc<str>,
    pub severity: Severity,
    pub description: Arc<str>,
    /// The matching line, without its line end.
    pub line: String,
}

/// Lines of one block that a pattern could not decide within its limits (a
/// backtracking pattern ran out of backtracks or of time): neither matches nor
/// non-matches, so they are counted rather than dropped as "no match".
#[derive(Clone, Debug)]
pub struct PatternErrors {
    pub service: ServiceName,
    pub path: Arc<str>,
    pub at: SystemTime,
    pub pattern: Arc<str>,
    pub reason: PatternErrorReason,
    /// How many lines of the block.
    pub lines: u32,
}

/// Why a pattern could not decide a line: a closed set, fit for a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PatternErrorReason {
    /// Every try hit the backtracking engine's limit.
    BacktrackLimit,
    /// The line's (or the block's) time budget ran out.
    TimeBudget,
}

impl PatternErrorReason {
    /// The name in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            PatternErrorReason::BacktrackLimit => "backtrack_limit",
            PatternErrorReason::TimeBudget => "time_budget",
        }
    }
}

/// The result of one health check tick: the last attempt's outcome, after retries.
#[derive(Clone, Debug)]
pub struct ProbeResult {
    pub service: ServiceName,
    /// The check's name, unique within its service.
    pub check: Arc<str>,
    pub kind: ProbeKind,
    /// When the tick started.
    pub at: SystemTime,
    /// How much later than scheduled the tick started: the scheduler's own lateness.
    pub late: Duration,
    pub outcome: Outcome,
    /// How long the last attempt took.
    pub latency: Duration,
    /// Attempts made in this tick, 1 or more.
    pub attempts: u32,
    /// The HTTP status or gRPC serving status the last attempt got, if it got one.
    pub status: Option<ProbeStatus>,
    /// Why the check is not up; `None` when it is. A degraded script check has
    /// [`FailureReason::ExitCode`].
    pub reason: Option<FailureReason>,
    /// What happened, in words: "status 503", "NOT_SERVING", "exit 2: DISK CRITICAL".
    /// Bounded in length; never used as a metric label.
    pub detail: String,
    /// Performance data a script printed after `|`, Nagios style.
    pub perfdata: Vec<PerfSample>,
}

/// Which protocol a check speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Http,
    Tcp,
    Grpc,
    Script,
}

impl ProbeKind {
    /// The name in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeKind::Http => "http",
            ProbeKind::Tcp => "tcp",
            ProbeKind::Grpc => "grpc",
            ProbeKind::Script => "script",
        }
    }
}

/// How a check went. `Degraded` is Nagios's WARNING: working, but not well.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Up,
    Degraded,
    Down,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Up => "up",
            Outcome::Degraded => "degraded",
            Outcome::Down => "down",
        }
    }
}

/// A protocol-level answer, when the check got as far as one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// An HTTP status code.
    Http(u16),
    /// A gRPC health serving status (`SERVING`, `NOT_SERVING`, `SERVICE_UNKNOWN`) or,
    /// when the call itself failed, the gRPC status code name (`UNIMPLEMENTED`).
    Grpc(&'static str),
}

/// Why a check failed: a small closed set, fit for a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// No answer within the timeout (connect, request, or script run).
    Timeout,
    /// The connection was refused or reset.
    Refused,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (certificate, protocol).
    Tls,
    /// An HTTP status outside the expected ones.
    Status,
    /// The body or reply did not contain or match what was expected.
    Body,
    /// A gRPC health status other than `SERVING`, or a gRPC error status.
    GrpcStatus,
    /// A script exited with a non-zero code.
    ExitCode,
    /// A script could not be started.
    Spawn,
    /// Anything else (a protocol error, an unexpected I/O error).
    Other,
}

impl FailureReason {
    /// The name in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Timeout => "timeout",
            FailureReason::Refused => "refused",
            FailureReason::Dns => "dns",
            FailureReason::Tls => "tls",
            FailureReason::Status => "status",
            FailureReason::Body => "body",
            FailureReason::GrpcStatus => "grpc_status",
            FailureReason::ExitCode => "exit_code",
            FailureReason::Spawn => "spawn",
            FailureReason::Other => "other",
        }
    }
}

/// One value of a script's performance data: `'label'=value[UOM];warn;crit;min;max`.
///
/// The unit is kept as written (`s`, `ms`, `%`, `B`, `KB`, `c`, ...); thresholds are
/// Nagios ranges (`10`, `10:`, `~:10`, `@10:20`) and are kept as text.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerfSample {
    pub label: String,
    pub value: f64,
    pub unit: String,
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// Measurements read from the lines of one block of a log: what the `log_fields` stage
/// makes of a request log (one request per line) and of custom signals.
///
/// One event per block, not per line: a busy access log gives thousands of requests a
/// second, and a vector of plain values costs one allocation for all of them.
#[derive(Clone, Debug)]
pub struct Samples {
    pub service: ServiceName,
    /// When the block was read.
    pub at: SystemTime,
    pub items: Vec<Sample>,
    /// Lines of the block that were not what the format describes (counted, not used).
    pub unparsed: u32,
}

/// One measurement, at the time its line says (when it says one).
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The line's own time, if it has one: a replay is windowed on it.
    pub time: Option<SystemTime>,
    pub measure: Measure,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Measure {
    /// One request the service served; `duration` if the line gives it.
    Request {
        error: bool,
        duration: Option<Duration>,
    },
    /// A value of a custom signal (a queue depth, say).
    Value { signal: Arc<str>, value: f64 },
}

/// What anomaly detection watches, per service.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// A percentile of request and probe durations, in seconds.
    Latency,
    /// Failed requests over requests, 0 to 1.
    ErrorRate,
    /// Requests per second.
    Throughput,
    /// A value read from log lines, named in configuration.
    Custom(Arc<str>),
}

impl Signal {
    /// The built-in signals, as configuration and metric labels name them.
    pub const BUILT_IN: [&'static str; 3] = ["latency", "error_rate", "throughput"];

    /// The signal a name stands for: a built-in one or a custom one.
    pub fn named(name: &str) -> Signal {
        match name {
            "latency" => Signal::Latency,
            "error_rate" => Signal::ErrorRate,
            "throughput" => Signal::Throughput,
            custom => Signal::Custom(custom.into()),
        }
    }

    /// Whether `name` may name a custom signal: `[a-z][a-z0-9_]*`, at most 64 bytes,
    /// fit for a metric label and a configuration key (built-in names aside).
    pub fn is_valid_name(name: &str) -> bool {
        let mut bytes = name.bytes();
        name.len() <= 64
            && bytes.next().is_some_and(|first| first.is_ascii_lowercase())
            && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    }

    pub fn as_str(&self) -> &str {
        match self {
            Signal::Latency => "latency",
            Signal::ErrorRate => "error_rate",
            Signal::Throughput => "throughput",
            Signal::Custom(name) => name,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Signal {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A closed slice of a signal: its value (none when the slice had nothing to measure)
/// and what detection made of it. Emitted for every signal at every slice, for metrics.
#[derive(Clone, Debug)]
pub struct SignalSlice {
    pub service: ServiceName,
    pub signal: Signal,
    /// The end of the slice (event time on a replay).
    pub at: SystemTime,
    /// The value in the unit the metrics use: seconds, requests per second, a ratio, or
    /// the custom value.
    pub value: Option<f64>,
    /// The adaptive baseline, where the signal has one yet.
    pub baseline: Option<f64>,
    /// The adaptive score (a robust z-score), where there is one.
    pub score: Option<f64>,
    pub anomalous: bool,
    /// Why the slice was not judged, if it was not; the state it had stays.
    pub unjudged: Option<Unjudged>,
}

/// Why a closed slice with a value was not judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unjudged {
    /// The first slice of a series began before its first sample: its counts are
    /// partial.
    FirstSlice,
    /// An error rate over fewer requests than `min_requests`.
    TooFewRequests,
}

impl Unjudged {
    /// The name in metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Unjudged::FirstSlice => "first_slice",
            Unjudged::TooFewRequests => "too_few_requests",
        }
    }
}

/// A signal's change of state: anomalous from `started`, or normal again at `at`.
#[derive(Clone, Debug)]
pub struct Anomaly {
    pub service: ServiceName,
    pub signal: Signal,
    /// The end of the slice that changed the state (event time on a replay).
    pub at: SystemTime,
    /// When the anomaly began: the start of its first anomalous slice.
    pub started: SystemTime,
    /// The start of the slice that changed the state: `started` for an anomaly that
    /// begins, the anomaly's end for one that is over.
    pub changed: SystemTime,
    pub anomalous: bool,
    /// The value of the slice that changed the state, in the metrics' unit.
    pub observed: f64,
    /// What it was judged against.
    pub reference: Reference,
    /// The adaptive score of the slice, if there is one.
    pub score: Option<f64>,
    /// The whole story in one sentence: "shop latency p99 742 ms over 30 s, threshold
    /// 500 ms".
    pub explanation: String,
}

/// What happened to a supervised service's process.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub service: ServiceName,
    pub at: SystemTime,
    pub change: Change,
}

/// A step in the life of a supervised process.
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// It was started, with this process id (also its process group's).
    Started { pid: u32 },
    /// It ended (or could not be started), after running this long.
    Exited {
        pid: Option<u32>,
        exit: Exit,
        ran: Duration,
    },
    /// It will be started again after `after`; `restarts` counts this one.
    Restarting {
        after: Duration,
        reason: RestartReason,
        restarts: u32,
    },
    /// The restart budget is spent: it is not started again.
    GaveUp { restarts: u32, within: Duration },
}

impl Change {
    /// The change's name, as the console and the metrics write it.
    pub fn name(&self) -> &'static str {
        match self {
            Change::Started { .. } => "started",
            Change::Exited { .. } => "exited",
            Change::Restarting { .. } => "restarting",
            Change::GaveUp { .. } => "gave_up",
        }
    }
}

/// How a process ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    /// It could not be started at all: the reason.
    NotStarted(String),
}

impl Exit {
    /// Whether this is a success (code 0), which `restart: on-failure` leaves be.
    pub fn succeeded(&self) -> bool {
        *self == Exit::Code(0)
    }

    /// The number a shell would give: the code, or 128 + the signal; -1 when it never
    /// ran.
    pub fn as_number(&self) -> i64 {
        match self {
            Exit::Code(code) => i64::from(*code),
            Exit::Signal(signal) => 128 + i64::from(*signal),
            Exit::NotStarted(_) => -1,
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit code {code}"),
            Exit::Signal(signal) => write!(f, "signal {signal}"),
            Exit::NotStarted(reason) => write!(f, "not started: {reason}"),
        }
    }
}

/// Why a supervised process is started again.
#[derive(Clone, Debug, PartialEq)]
pub enum RestartReason {
    /// It exited, and its `restart` policy asks for it.
    Exited,
    /// This check of it was down `restart_on_unhealthy` times in a row.
    Unhealthy { check: Arc<str> },
}

impl RestartReason {
    /// The metrics' `reason` label.
    pub fn as_label(&self) -> &'static str {
        match self {
            RestartReason::Exited => "exited",
            RestartReason::Unhealthy { .. } => "unhealthy",
        }
    }
}

/// What a slice's value was compared with.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// A configured bound: above `max` or below `min` is anomalous.
    Threshold {
        #[serde(skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// The baseline learned from the signal's history.
    Baseline { median: f64, scale: f64 },
}

/// An alert's labels, or its annotations: names to values, kept sorted by name as
/// Alertmanager keeps them (the order its fingerprint hashes them in).
pub type LabelSet = BTreeMap<String, String>;

/// What identifies an alert: a hash of its labels, computed as Prometheus and
/// Alertmanager compute `LabelSet.Fingerprint()` (FNV-1a 64 over each name and value in
/// name order, each followed by the byte 0xFF), so one alert has one id in both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fingerprint(pub u64);

impl Fingerprint {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    const SEPARATOR: u8 = 0xff;

    pub fn of(labels: &LabelSet) -> Fingerprint {
        let mut hash = Self::OFFSET;
        let mut add = |bytes: &[u8]| {
            for &byte in bytes {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(Self::PRIME);
            }
        };
        for (name, value) in labels {
            add(name.as_bytes());
            add(&[Self::SEPARATOR]);
            add(value.as_bytes());
            add(&[Self::SEPARATOR]);
        }
        Fingerprint(hash)
    }
}

/// Sixteen hex digits, as Alertmanager prints it.
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for Fingerprint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fingerprint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16)
            .map(Fingerprint)
            .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a fingerprint")))
    }
}

/// An alert, as the `alert` stage tells it: on each change of state, and again while
/// it fires (every `repeat_interval`, or once after a restart).
#[derive(Clone, Debug)]
pub struct Alert {
    pub service: ServiceName,
    /// When this event was made.
    pub at: SystemTime,
    /// The name of the rule that raised it.
    pub rule: Arc<str>,
    pub fingerprint: Fingerprint,
    /// `alertname`, `service`, `severity` and what identifies the cause (`check`,
    /// `pattern`, `signal`), plus any the rule adds.
    pub labels: Arc<LabelSet>,
    /// `summary` and `description`, in words, with the evidence.
    pub annotations: Arc<LabelSet>,
    pub severity: Severity,
    pub state: AlertState,
    /// When it began to fire (when it became pending, for a pending alert):
    /// Alertmanager's `startsAt`.
    pub started: SystemTime,
    /// When it was resolved: `None` until it is.
    pub ended: Option<SystemTime>,
    /// Whether receivers are to be told, and why.
    pub notify: Notify,
    /// Held firing because it changed state too often (flap damping).
    pub flapping: bool,
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Its condition holds, not yet for as long as its rule asks: nobody is told.
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    /// The name in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// Why an [`Alert`] event is sent, which says what a receiver does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Notify {
    /// Not to be told (a pending alert, a resolve of one that never fired): shown in
    /// metrics and on the console only.
    No,
    /// A change of state: firing, or resolved.
    Transition,
    /// Still firing, and `repeat_interval` has passed since it was told.
    Repeat,
    /// Restored from the state directory after a restart: told only to a receiver
    /// that was not told it before the restart.
    Restated,
}

/// How serious something is: one scale for log patterns, alerts and notifications.
///
/// Ordered from least to most serious, so `severity >= Severity::Warning` reads as it
/// should. Written in configuration in any case (`critical`, `CRITICAL`); shown upper
/// case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Every severity, least serious first.
    pub const ALL: [Severity; 3] = [Severity::Info, Severity::Warning, Severity::Critical];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARNING",
            Severity::Critical => "CRITICAL",
        }
    }

    /// The value of an alert's `severity` label: lower case, as Prometheus rules and
    /// Alertmanager routes write it.
    pub fn as_label(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a word that is not a severity.
#[derive(Debug, thiserror::Error)]
#[error("unknown severity `{0}`; expected one of `CRITICAL`, `WARNING`, `INFO` (any case)")]
pub struct UnknownSeverity(String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::ALL
            .into_iter()
            .find(|severity| severity.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let word = String::deserialize(deserializer)?;
        word.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_parses_in_any_case_and_orders_by_seriousness() {
        assert_eq!("critical".parse::<Severity>().unwrap(), Severity::Critical);
        assert_eq!("Warning".parse::<Severity>().unwrap(), Severity::Warning);
        assert_eq!("INFO".parse::<Severity>().unwrap(), Severity::Info);
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
        let err = "FATAL".parse::<Severity>().unwrap_err().to_string();
        assert!(err.contains("unknown severity `FATAL`"), "{err}");
    }

    #[test]
    fn fingerprints_are_alertmanagers() {
        // The labels and fingerprints of ../shared/samples/alertmanager_webhook_firing.json,
        // as Alertmanager 0.25 reported them.
        let labels = |instance: &str| -> LabelSet {
            [
                ("alertname", "LogPatternCritical"),
                ("instance", instance),
                ("pattern", "p01"),
                ("service", "checkout"),
                ("severity", "critical"),
            ]
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect()
        };
        assert_eq!(
            Fingerprint::of(&labels("web-01")).to_string(),
            "17af67e7ddcc8f16"
        );
        assert_eq!(
            Fingerprint::of(&labels("web-02")).to_string(),
            "871bc61973b71ba7"
        );
        assert_eq!(
            Fingerprint::of(&LabelSet::new()).to_string(),
            "cbf29ce484222325"
        );
        let json = serde_json::to_string(&Fingerprint(0x17af67e7ddcc8f16)).unwrap();
        assert_eq!(
            serde_json::from_str::<Fingerprint>(&json).unwrap().0,
            0x17af67e7ddcc8f16
        );
    }

    #[test]
    fn lines_strip_lf_and_crlf() {
        let lines: Vec<&[u8]> = split_lines(b"a\r\nb\n\nc\n").collect();
        assert_eq!(lines, [&b"a"[..], b"b", b"", b"c"]);
    }
}
