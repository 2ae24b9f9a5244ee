//! The `log_fields` stage: measurements read from log lines, one [`Samples`] event per
//! block of [`LogLines`].
//!
//! Two kinds of measurement, either or both. With `requests`, every line of the log is
//! one request the service served, written in the `combined` (nginx/Apache), `json` or
//! `regex` format: each gives a [`Measure::Request`] with whether its status counts as
//! an error and its duration when the line gives one; a line that is not what the
//! format describes, or whose time does not parse, is counted in `unparsed`. With
//! `signals`, each named pattern whose `value` capture matches a number gives a
//! [`Measure::Value`]; a line may be a request and carry signals too. A sample carries
//! the line's own time when the line has one, so a replay is windowed on it; what is
//! done with samples (windows, baselines) is the `anomaly` stage's business, not this
//! one's. How each format is read is [`request`]; times are [`time`].
//!
//! Options: `requests` (`format`; `duration_unit`, `s`, `ms` or `us`, default `s`;
//! `errors`, the statuses that are errors, default `[5xx]`; `fields`, json only;
//! `pattern`, regex only; `time_format`, default `clf` for combined and automatic for
//! the others) and `signals` (`name`, `pattern`, `time_format`). Outputs: `samples`.
//!
//! ```yaml
//! stages:
//!   shop_requests:
//!     type: log_fields
//!     inputs: [shop_access]
//!     requests:
//!       format: combined
//!       errors: [5xx, 429]
//!     signals:
//!       - name: queue_depth
//!         pattern: 'queue_depth=(?P<value>\d+(?:\.\d+)?)'
//! ```

pub mod request;
pub mod time;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use regex::bytes::{CaptureLocations, Regex};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_norway::Value;

use self::request::{
    CombinedParser, ErrorCodes, JsonParser, RegexParser, RequestParser, StatusMatch, capture_index,
};
use self::time::TimeFormat;
use crate::base::component::Stage;
use crate::base::diagnostics::{Diagnostics, closest};
use crate::base::event::{Event, EventKind, LogLines, Measure, Sample, Samples, Signal};
use crate::base::key_path::KeyPath;
use crate::base::regex::RegexText;
use crate::base::registry::{BuildContext, ComponentType};

/// Configuration of a `log_fields` stage: at least one of its two parts.
#[derive(Clone, Debug, Serialize)]
pub struct LogFieldsConfig {
    /// How each line describes one request; absent if the log is not a request log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<RequestsConfig>,
    /// Custom numeric signals read from the lines, none by default.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signals: Vec<SignalConfig>,
}

/// A request log: one request per line.
#[derive(Clone, Debug, Serialize)]
pub struct RequestsConfig {
    /// How the lines are written.
    pub format: RequestFormat,
    /// The unit of the duration field. Default `s`.
    pub duration_unit: DurationUnit,
    /// The statuses that count as errors. Default `[5xx]`.
    pub errors: Vec<StatusMatch>,
    /// Json only: the names of the fields read. Default `status`, `duration`, `time`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<JsonFields>,
    /// Regex only (and required there): a `status` capture, and optional `duration`
    /// and `time` captures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<RegexText>,
    /// How the time field is written. Default `clf` for combined, `auto` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_format: Option<TimeFormat>,
}

/// The formats of a request log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestFormat {
    /// nginx/Apache combined (or common) log format, optionally with nginx's
    /// `$request_time` last.
    Combined,
    /// One JSON object per line.
    Json,
    /// A regular expression with named captures.
    Regex,
}

impl RequestFormat {
    const NAMES: [&'static str; 3] = ["combined", "json", "regex"];

    fn as_str(self) -> &'static str {
        match self {
            RequestFormat::Combined => "combined",
            RequestFormat::Json => "json",
            RequestFormat::Regex => "regex",
        }
    }
}

impl fmt::Display for RequestFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RequestFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // By hand rather than derived, for a "did you mean" on a misspelt format.
        let word = String::deserialize(deserializer)?;
        match word.as_str() {
            "combined" => Ok(RequestFormat::Combined),
            "json" => Ok(RequestFormat::Json),
            "regex" => Ok(RequestFormat::Regex),
            _ => {
                let mut message = format!(
                    "unknown format `{word}`; expected one of {}",
                    crate::base::text::list(&RequestFormat::NAMES)
                );
                if let Some(close) = closest(&word, RequestFormat::NAMES) {
                    message.push_str(&format!(" (did you mean `{close}`?)"));
                }
                Err(serde::de::Error::custom(message))
            }
        }
    }
}

impl Serialize for RequestFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// The unit a log writes durations in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DurationUnit {
    /// Seconds, nginx's `$request_time`.
    #[default]
    S,
    /// Milliseconds.
    Ms,
    /// Microseconds, Apache's `%D`.
    Us,
}

impl DurationUnit {
    /// `number` of this unit, to the nearest nanosecond; `None` if it is negative or
    /// not finite.
    pub fn duration(self, number: f64) -> Option<Duration> {
        let nanos_per_unit = match self {
            DurationUnit::S => 1e9,
            DurationUnit::Ms => 1e6,
            DurationUnit::Us => 1e3,
        };
        let nanos = number * nanos_per_unit;
        // `as` saturates; the bound keeps a saturated value from passing as a duration.
        (0.0..1.8e19)
            .contains(&nanos)
            .then(|| Duration::from_nanos(nanos.round() as u64))
    }
}

/// The fields a JSON request log is read from (top-level keys).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct JsonFields {
    /// The HTTP status, a number or a string of digits. Default `status`.
    #[serde(default = "default_status_field")]
    pub status: String,
    /// The duration, in `duration_unit`. Default `duration`.
    #[serde(default = "default_duration_field")]
    pub duration: String,
    /// The time, a string in `time_format` or a number of epoch seconds. Default `time`.
    #[serde(default = "default_time_field")]
    pub time: String,
}

impl Default for JsonFields {
    fn default() -> JsonFields {
        JsonFields {
            status: default_status_field(),
            duration: default_duration_field(),
            time: default_time_field(),
        }
    }
}

fn default_status_field() -> String {
    "status".into()
}

fn default_duration_field() -> String {
    "duration".into()
}

fn default_time_field() -> String {
    "time".into()
}

/// A custom signal: a number read from the lines that match a pattern.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// What metrics and anomalies call it: `[a-z][a-z0-9_]*`, not a built-in signal's
    /// name, unique in the stage.
    pub name: String,
    /// A regular expression (regex crate syntax) with a `value` capture, and an optional
    /// `time` capture.
    pub pattern: RegexText,
    /// How the `time` capture is written. Default `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_format: Option<TimeFormat>,
}

impl ComponentType for LogFieldsConfig {
    const NAME: &'static str = "log_fields";
    const ACCEPTS: &'static [EventKind] = &[EventKind::LogLines];
    const EMITS: &'static [EventKind] = &[EventKind::Samples];
    type Built = dyn Stage;

    fn decode(body: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<LogFieldsConfig> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            requests: Option<Value>,
            #[serde(default)]
            signals: Option<Vec<Value>>,
        }
        let raw: Raw = diag.decode(body, path)?;
        if raw.requests.is_none() && raw.signals.is_none() {
            diag.error(
                path,
                "neither `requests` nor `signals`; a log_fields stage needs at least one of them",
            );
        }
        let signals_path = path.key("signals");
        if raw.signals.as_ref().is_some_and(Vec::is_empty) {
            diag.error(
                &signals_path,
                "no signals; give at least one or leave `signals` out",
            );
        }
        let requests = raw
            .requests
            .and_then(|requests| decode_requests(&requests, &path.key("requests"), diag));
        let signals = decode_signals(raw.signals.as_deref().unwrap_or(&[]), &signals_path, diag);
        Some(LogFieldsConfig { requests, signals })
    }

    fn build(&self, _cx: &mut BuildContext) -> Option<Box<dyn Stage>> {
        Some(Box::new(LogFields::new(self)))
    }
}

/// Decodes `requests`, reporting every bad entry of `errors` and options that do not
/// fit the format.
fn decode_requests(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
) -> Option<RequestsConfig> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    // Named for serde's "expected struct ..." when `requests` is not a mapping.
    struct RequestsOptions {
        format: RequestFormat,
        #[serde(default)]
        duration_unit: DurationUnit,
        #[serde(default)]
        errors: Option<Vec<Value>>,
        #[serde(default)]
        fields: Option<JsonFields>,
        #[serde(default)]
        pattern: Option<RegexText>,
        #[serde(default)]
        time_format: Option<TimeFormat>,
    }
    let raw: RequestsOptions = diag.decode(value, path)?;
    let errors = match &raw.errors {
        // Item by item, so that every bad entry is reported.
        Some(items) => (items.iter().enumerate())
            .filter_map(|(i, item)| diag.decode::<StatusMatch>(item, &path.key("errors").index(i)))
            .collect(),
        None => vec![StatusMatch::DEFAULT],
    };
    let format = raw.format;
    if raw.fields.is_some() && format != RequestFormat::Json {
        diag.error(
            &path.key("fields"),
            format!("`fields` is for the `json` format, and this one is `{format}`; leave it out"),
        );
    }
    // Looked up in what was written: a pattern that did not compile is reported already.
    let has_pattern = value.get("pattern").is_some();
    match (&raw.pattern, format) {
        (_, RequestFormat::Regex) if !has_pattern => diag.error_at_key(
            path,
            r"missing key `pattern`: the `regex` format needs one, with a `status` capture, e.g. `status=(?P<status>\d{3})`",
        ),
        (Some(pattern), RequestFormat::Regex) if capture_index(pattern.regex(), "status").is_none() => {
            diag.error(
                &path.key("pattern"),
                format!(r"pattern `{pattern}` has no `status` capture; name the status's part, e.g. `status=(?P<status>\d{{3}})`"),
            );
        }
        (_, RequestFormat::Combined | RequestFormat::Json) if has_pattern => diag.error(
            &path.key("pattern"),
            format!("`pattern` is for the `regex` format, and this one is `{format}`; leave it out"),
        ),
        _ => {}
    }
    Some(RequestsConfig {
        format,
        duration_unit: raw.duration_unit,
        errors,
        fields: raw.fields,
        pattern: raw.pattern,
        time_format: raw.time_format,
    })
}

/// Decodes the signals item by item, checking their names and `value` captures.
fn decode_signals(items: &[Value], path: &KeyPath, diag: &mut Diagnostics) -> Vec<SignalConfig> {
    let mut signals: Vec<(KeyPath, SignalConfig)> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let origin = path.index(i);
        let Some(signal) = diag.decode::<SignalConfig>(item, &origin) else {
            continue;
        };
        let name = &signal.name;
        let problem = if !Signal::is_valid_name(name) {
            Some(format!(
                "signal name `{name}` is not a valid name; use lower-case letters, digits and `_`, starting with a letter, e.g. `queue_depth`"
            ))
        } else if Signal::BUILT_IN.contains(&name.as_str()) {
            Some(format!(
                "signal name `{name}` is a built-in signal's ({}); give the custom signal a name of its own, e.g. `queue_depth`",
                crate::base::text::list(&Signal::BUILT_IN)
            ))
        } else {
            (signals.iter())
                .find(|(_, other)| other.name == *name)
                .map(|(first, _)| {
                    format!(
                        "signal name `{name}` is already used by `{first}`; names must be unique"
                    )
                })
        };
        if let Some(problem) = problem {
            diag.error(&origin.key("name"), problem);
        }
        if capture_index(signal.pattern.regex(), "value").is_none() {
            diag.error(
                &origin.key("pattern"),
                format!(r"pattern `{}` has no `value` capture; name the number's part, e.g. `queue_depth=(?P<value>\d+)`", signal.pattern),
            );
        }
        signals.push((origin, signal));
    }
    signals.into_iter().map(|(_, signal)| signal).collect()
}

/// A running `log_fields` stage.
pub struct LogFields {
    requests: Option<Requests>,
    signals: Vec<SignalReader>,
}

/// The request part: how lines are read and which statuses are errors.
struct Requests {
    parser: RequestParser,
    errors: ErrorCodes,
}

/// One custom signal, ready to read lines.
struct SignalReader {
    /// Shared by every sample of the signal.
    name: Arc<str>,
    regex: Regex,
    /// Reused from line to line: the regex writes each line's capture places here.
    locations: CaptureLocations,
    value: usize,
    time: Option<usize>,
    time_format: TimeFormat,
}

impl LogFields {
    /// The stage a decoded configuration describes.
    pub fn new(config: &LogFieldsConfig) -> LogFields {
        let requests = config.requests.as_ref().and_then(|requests| {
            let unit = requests.duration_unit;
            let time_format = |default| requests.time_format.clone().unwrap_or(default);
            let parser = match requests.format {
                RequestFormat::Combined => RequestParser::Combined(CombinedParser {
                    time_format: time_format(TimeFormat::Clf),
                    unit,
                }),
                RequestFormat::Json => RequestParser::Json(JsonParser {
                    fields: requests.fields.clone().unwrap_or_default(),
                    time_format: time_format(TimeFormat::Auto),
                    unit,
                }),
                // Decoding made sure of a pattern with a `status` capture.
                RequestFormat::Regex => RequestParser::Regex(RegexParser::new(
                    requests.pattern.as_ref()?.regex(),
                    time_format(TimeFormat::Auto),
                    unit,
                )?),
            };
            Some(Requests {
                parser,
                errors: ErrorCodes::new(&requests.errors),
            })
        });
        let signals = (config.signals.iter())
            .filter_map(|signal| {
                let regex = signal.pattern.regex();
                Some(SignalReader {
                    name: signal.name.as_str().into(),
                    locations: regex.capture_locations(),
                    value: capture_index(regex, "value")?,
                    time: capture_index(regex, "time"),
                    regex: regex.clone(),
                    time_format: signal.time_format.clone().unwrap_or(TimeFormat::Auto),
                })
            })
            .collect();
        LogFields { requests, signals }
    }

    /// The samples of one block, and how many of its lines are not requests.
    fn read(&mut self, block: &LogLines) -> (Vec<Sample>, u32) {
        // One sample a line is the usual case for a request log: one allocation a block.
        let capacity = if self.requests.is_some() {
            block.lines as usize
        } else {
            0
        };
        let mut items = Vec::with_capacity(capacity);
        let mut unparsed = 0;
        for line in block.lines() {
            if let Some(requests) = &mut self.requests {
                match requests.parser.parse(line) {
                    Some(request) => items.push(Sample {
                        time: request.time,
                        measure: Measure::Request {
                            error: requests.errors.contains(request.status),
                            duration: request.duration,
                        },
                    }),
                    None => unparsed += 1,
                }
            }
            for signal in &mut self.signals {
                items.extend(signal.read(line));
            }
        }
        (items, unparsed)
    }
}

impl SignalReader {
    /// The signal's sample in `line`, if the line matches with a number and (when the
    /// pattern has a `time` capture that took part) a time that parses.
    fn read(&mut self, line: &[u8]) -> Option<Sample> {
        self.regex.captures_read(&mut self.locations, line)?;
        let (start, end) = self.locations.get(self.value)?;
        let value: f64 = std::str::from_utf8(&line[start..end]).ok()?.parse().ok()?;
        // `inf` and `NaN` parse, but are no measurement.
        if !value.is_finite() {
            return None;
        }
        let time = match self.time.and_then(|index| self.locations.get(index)) {
            Some((start, end)) => Some(self.time_format.parse(&line[start..end])?),
            None => None,
        };
        Some(Sample {
            time,
            measure: Measure::Value {
                signal: Arc::clone(&self.name),
                value,
            },
        })
    }
}

impl Stage for LogFields {
    fn on_event(&mut self, event: &Event, _now: SystemTime, out: &mut Vec<Event>) {
        let Event::LogLines(block) = event else {
            return;
        };
        let (items, unparsed) = self.read(block);
        if items.is_empty() && unparsed == 0 {
            return;
        }
        out.push(Event::Samples(Samples {
            service: block.service.clone(),
            at: block.at,
            items,
            unparsed,
        }));
    }
}

#[cfg(test)]
mod tests;
