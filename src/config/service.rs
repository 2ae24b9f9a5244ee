//! The service-centric form: the seed's own format, expanded into pipeline nodes.
//!
//! ```yaml
//! logs:
//!   enabled: true
//!   scan_interval: "1m"
//!   files:
//!     - service: "example-service"
//!       path: "/path/to/example-service.log"
//!   patterns:
//!     - name: "OutOfMemory"
//!       pattern: "(?i)(out of memory|java\\.lang\\.OutOfMemoryError)"
//!       severity: "CRITICAL"
//!       description: "Out of memory error detected"
//! ```
//!
//! ```yaml
//! services:
//!   - name: shop
//!     health_checks:
//!       - name: health
//!         type: http                 # http | tcp | grpc | script
//!         url: http://127.0.0.1:8080/health
//!         interval: 10s
//!         timeout: 2s
//!         retry: { max_attempts: 3, initial_delay: 200ms, jitter: full }
//! ```
//!
//! Each health check becomes a probe source `{service}.{name}` of the matching type
//! (`http_probe`, ...), with the same options. Each file of `logs.files` becomes a
//! `log_tail` source and a `log_patterns` stage holding the global patterns and the
//! entry's own. Entries naming the same file (compared as normalised paths) are read as
//! one: those of its first service are merged, those of another service add nothing,
//! each with a warning. With no sink configured, all matches and check results go to a
//! `console` sink. The `prometheus` section adds a `prometheus` sink fed by every
//! source and stage. `anomaly_detection` becomes one `anomaly` stage; `alerting` one
//! `alert` stage fed by every check, pattern stage and the anomaly stage, a `webhook`
//! sink per receiver and an `alertmanager` sink.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_norway::{Mapping, Value};

use super::names;
use super::pipeline::{NodeConfig, PipelineConfig, describe};
use crate::base::diagnostics::{Diagnostics, closest};
use crate::base::event::EventKind;
use crate::base::key_path::KeyPath;
use crate::base::paths;
use crate::base::registry::ComponentType;
use crate::base::text::list;
use crate::sinks::SinkConfig;
use crate::sinks::console::ConsoleConfig;
use crate::sinks::prometheus::{self, PrometheusConfig};
use crate::sources::SourceConfig;
use crate::sources::log_tail::{self, LogTailConfig, PathPattern, ReadFrom};
use crate::sources::probe::ProbeOptions;
use crate::sources::probe::grpc::GrpcProbeConfig;
use crate::sources::probe::http::HttpProbeConfig;
use crate::sources::probe::script::ScriptProbeConfig;
use crate::sources::probe::tcp::TcpProbeConfig;
use crate::sources::supervisor::SupervisorConfig;
use crate::stages::StageConfig;
use crate::stages::alert::AlertConfig;
use crate::stages::anomaly::{AnomalyConfig, SignalConfig};
use crate::stages::log_fields::LogFieldsConfig;
use crate::stages::log_patterns::{LogPatternsConfig, PatternConfig, decode_patterns};

/// The sections of the service-centric form.
pub const SECTIONS: [&str; 6] = [
    "logs",
    "services",
    "anomaly_detection",
    "alerting",
    "prometheus",
    "console",
];

/// The `logs:` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogsSection {
    /// `false` turns the whole section off. Default `true`.
    #[serde(default = "enabled")]
    enabled: bool,
    /// How often globs are expanded again and files checked without a notification.
    #[serde(
        default = "log_tail::default_scan_interval",
        with = "crate::base::duration"
    )]
    scan_interval: Duration,
    /// Where to start in files that exist at startup. Default `end`.
    #[serde(default)]
    read_from: ReadFrom,
    #[serde(default = "log_tail::default_max_line_bytes")]
    max_line_bytes: NonZeroUsize,
    files: Vec<Value>,
    /// Patterns applied to every file.
    #[serde(default)]
    patterns: Vec<Value>,
}

fn enabled() -> bool {
    true
}

/// One entry of `logs.files`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogFile {
    service: String,
    /// A path or a glob; checked as a [`PathPattern`] when the entry is expanded, and
    /// kept as written to compare entries.
    path: String,
    /// Overrides the section's `read_from` for this file.
    read_from: Option<ReadFrom>,
    /// Patterns for this file only, in addition to the section's.
    #[serde(default)]
    patterns: Vec<Value>,
    /// The file is a request log in this format (a `log_fields` stage's `requests`).
    requests: Option<Value>,
    /// Custom signals read from its lines (a `log_fields` stage's `signals`, plus how
    /// anomaly detection reads each: `direction`, `aggregate`).
    #[serde(default)]
    signals: Vec<Value>,
}

/// What the sections say about each service, for the anomaly section's checks.
#[derive(Default)]
struct Known {
    /// Every service a check or a log file names.
    services: Vec<String>,
    /// Services with health checks (their latency is probed).
    probed: Vec<String>,
    /// Services with a request log.
    requests: Vec<String>,
    /// Custom signals, by service and name, with how anomaly detection reads them.
    custom: Vec<(String, String, SignalConfig)>,
}

/// Expands the service-centric sections of `top` into pipeline nodes.
pub fn expand(top: &Mapping, diag: &mut Diagnostics) -> PipelineConfig {
    let mut config = PipelineConfig::default();
    let mut metrics = None;
    let mut console = ConsoleConfig::default();
    let mut known = Known::default();
    for section in SECTIONS {
        let Some(value) = top.get(section) else {
            continue;
        };
        let path = KeyPath::root().key(section);
        match section {
            "logs" => expand_logs(value, &path, diag, &mut config, &mut known),
            "services" => expand_services(value, &path, diag, &mut config, &mut known),
            "anomaly_detection" => expand_anomaly(value, &path, diag, &mut config, &known),
            "alerting" => expand_alerting(value, &path, diag, &mut config),
            "console" => console = diag.decode(value, &path).unwrap_or_default(),
            _ => metrics = decode_prometheus(value, &path, diag),
        }
    }
    // Matches, anomalies and check results are what the console shows; raw lines and
    // samples are not.
    let shown = config.ids_emitting(&[
        EventKind::LogMatch,
        EventKind::PatternErrors,
        EventKind::Anomaly,
        EventKind::ProbeResult,
        EventKind::Alert,
        EventKind::Lifecycle,
    ]);
    if !shown.is_empty() {
        config.sinks.push(NodeConfig {
            id: "console".into(),
            inputs: shown,
            config: SinkConfig::Console(console),
            path: KeyPath::root(),
            implicit: true,
        });
    }
    if let Some((prometheus, path)) = metrics {
        // Metrics are derived from everything: lines read, matches, check results.
        let everything = (config.sources.iter().map(|node| node.id.clone()))
            .chain(config.stages.iter().map(|node| node.id.clone()))
            .collect();
        config.sinks.push(NodeConfig {
            id: "prometheus".into(),
            inputs: everything,
            config: SinkConfig::Prometheus(prometheus),
            path,
            // A one-shot run reports by its summary, not by a port scraped meanwhile.
            implicit: true,
        });
    }
    if config.sources.is_empty() && !diag.has_errors() {
        diag.error(
            &KeyPath::root(),
            "nothing to watch: no `services` with health checks and no enabled `logs` section with files",
        );
    }
    config
}

/// The `prometheus:` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrometheusSection {
    /// `false` turns the exporter off. Default `true`.
    #[serde(default = "enabled")]
    enabled: bool,
    #[serde(default = "prometheus::default_listen")]
    listen: prometheus::ListenAddress,
    #[serde(default = "prometheus::default_path")]
    path: prometheus::MetricsPath,
}

/// The exporter's configuration, if the section enables it, with where it was written.
fn decode_prometheus(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
) -> Option<(PrometheusConfig, KeyPath)> {
    let section = diag.decode::<PrometheusSection>(value, path)?;
    section.enabled.then(|| {
        let config = PrometheusConfig {
            listen: section.listen,
            path: section.path,
        };
        (config, path.clone())
    })
}

/// One entry of `services`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceEntry {
    name: String,
    #[serde(default)]
    health_checks: Vec<Value>,
}

/// The keys of a service itself; any other key is about running it (a `supervisor`).
const SERVICE_KEYS: [&str; 2] = ["name", "health_checks"];

/// The keys of a service that say how to run it: the `supervisor` source's, but its
/// `service` (the service's `name`), decoded as that source. Keys without `command`
/// are reported: a service runs only if it says what to run.
fn expand_process(
    service: &ServiceEntry,
    mut run: Mapping,
    path: &KeyPath,
    diag: &mut Diagnostics,
) -> Option<SourceConfig> {
    if !run.contains_key("command") {
        for key in run.keys() {
            let key = key.as_str().unwrap_or("?");
            diag.error_at_key(
                &path.key(key),
                format!(
                    "unknown key `{key}` for a service without `command`; a service has `name` and `health_checks`, and to be run by Aegis, `command` with the supervisor's keys (docs/supervisor.md)"
                ),
            );
        }
        return None;
    }
    if run.contains_key("restart_on_unhealthy") && service.health_checks.is_empty() {
        diag.error(
            &path.key("restart_on_unhealthy"),
            format!(
                "service `{}` has no `health_checks` to say it is unhealthy; add one, or remove `restart_on_unhealthy`",
                service.name
            ),
        );
    }
    run.insert("service".into(), service.name.clone().into());
    SourceConfig::decode(SupervisorConfig::NAME, &Value::Mapping(run), path, diag)
}

/// The check types of `services[].health_checks`, and the source each becomes.
const CHECK_TYPES: [(&str, &str); 4] = [
    ("http", HttpProbeConfig::NAME),
    ("tcp", TcpProbeConfig::NAME),
    ("grpc", GrpcProbeConfig::NAME),
    ("script", ScriptProbeConfig::NAME),
];

fn expand_services(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
    config: &mut PipelineConfig,
    known: &mut Known,
) {
    let Some(services) = diag.decode::<Vec<Value>>(value, path) else {
        return;
    };
    // Where each service name was first given.
    let mut defined: HashMap<String, KeyPath> = HashMap::new();
    for (i, item) in services.iter().enumerate() {
        let service_path = path.index(i);
        // A service's own keys; the rest, if any, say how to run it.
        let (own, run) = match item.as_mapping() {
            Some(fields) => fields
                .iter()
                .map(|(key, value)| (key.clone(), value.clone()))
                .partition::<Mapping, _>(|(key, _)| {
                    key.as_str().is_some_and(|key| SERVICE_KEYS.contains(&key))
                }),
            None => (Mapping::new(), Mapping::new()),
        };
        let entry = if item.is_mapping() {
            Value::Mapping(own)
        } else {
            item.clone()
        };
        let Some(service) = diag.decode::<ServiceEntry>(&entry, &service_path) else {
            continue;
        };
        let process = (!run.is_empty())
            .then(|| expand_process(&service, run, &service_path, diag))
            .flatten();
        let name_path = service_path.key("name");
        names::check(diag, &name_path, "service name", &service.name);
        // A second entry's checks are still decoded, so their own errors show, but
        // not added: their ids would clash with the first entry's.
        let first_line = defined.get(&service.name).map(|first| diag.line_of(first));
        match first_line {
            Some(first) => {
                let message = format!(
                    "service `{}` is defined twice, at lines {first} and {}; give each service one entry, holding all its health checks",
                    service.name,
                    diag.line_of(&name_path)
                );
                diag.error(&name_path, message);
            }
            None => {
                defined.insert(service.name.clone(), name_path);
                known.services.push(service.name.clone());
                if let Some(process) = process {
                    config.sources.push(NodeConfig {
                        id: format!("{}.process", service.name),
                        inputs: Vec::new(),
                        config: process,
                        path: service_path.clone(),
                        implicit: false,
                    });
                }
                if !service.health_checks.is_empty() {
                    known.probed.push(service.name.clone());
                }
            }
        }
        let checks_path = service_path.key("health_checks");
        let mut check_names: Vec<String> = Vec::new();
        for (j, check) in service.health_checks.iter().enumerate() {
            let check_path = checks_path.index(j);
            let Some((name, source)) = expand_check(&service.name, check, &check_path, diag) else {
                continue;
            };
            if check_names.contains(&name) {
                diag.error(
                    &check_path.key("name"),
                    format!(
                        "check name `{name}` is already used in service `{}`; names must be unique within a service",
                        service.name
                    ),
                );
                continue;
            }
            if first_line.is_none() {
                config.sources.push(NodeConfig {
                    id: format!("{}.{name}", service.name),
                    inputs: Vec::new(),
                    config: source,
                    path: check_path,
                    implicit: false,
                });
            }
            check_names.push(name);
        }
    }
}

/// One health check: its `type` and `name` taken out, the service added, decoded as
/// the probe source it stands for.
fn expand_check(
    service: &str,
    check: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
) -> Option<(String, SourceConfig)> {
    let Some(fields) = check.as_mapping() else {
        diag.error(
            path,
            format!(
                "expected a map with `name` and `type`, found {}",
                describe(check)
            ),
        );
        return None;
    };
    let mut options = fields.clone();
    let kind = options.remove("type");
    let name = options.remove("name");
    let types: Vec<&str> = CHECK_TYPES.iter().map(|(check, _)| *check).collect();
    let source_type = match &kind {
        Some(Value::String(kind)) => CHECK_TYPES
            .iter()
            .find(|(check, _)| check == kind)
            .map(|(_, source)| *source),
        _ => None,
    };
    let Some(source_type) = source_type else {
        let found = match &kind {
            Some(Value::String(kind)) => format!("`{kind}`"),
            Some(other) => describe(other).to_owned(),
            None => "nothing".to_owned(),
        };
        let mut message = format!("check type is {found}; expected one of {}", list(&types));
        if let Some(Value::String(kind)) = &kind
            && let Some(close) = closest(kind, types.iter().copied())
        {
            message.push_str(&format!(" (did you mean `{close}`?)"));
        }
        diag.error_at_key(&path.key("type"), message);
        return None;
    };
    let name = match name {
        Some(Value::String(name)) if !name.is_empty() => name,
        _ => {
            diag.error_at_key(&path.key("name"), "each health check needs a `name` (text)");
            return None;
        }
    };
    names::check(diag, &path.key("name"), "check name", &name);
    options.insert("service".into(), service.into());
    options.insert("check".into(), name.clone().into());
    let source = SourceConfig::decode(source_type, &Value::Mapping(options), path, diag)?;
    Some((name, source))
}

fn expand_logs(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
    config: &mut PipelineConfig,
    known: &mut Known,
) {
    let Some(section) = diag.decode::<LogsSection>(value, path) else {
        return;
    };
    if !section.enabled {
        return;
    }
    let global = decode_patterns(&section.patterns, &path.key("patterns"), diag);
    names::check_patterns(diag, &global);
    let files_path = path.key("files");
    if section.files.is_empty() {
        diag.error(
            &files_path,
            "no files; list the log files to watch, each with `service` and `path`",
        );
    }
    let mut watched: Vec<WatchedFile> = Vec::new();
    for (i, item) in section.files.iter().enumerate() {
        let file_path = files_path.index(i);
        let Some(file) = diag.decode::<LogFile>(item, &file_path) else {
            continue;
        };
        names::check(
            diag,
            &file_path.key("service"),
            "service name",
            &file.service,
        );
        let own = decode_patterns(&file.patterns, &file_path.key("patterns"), diag);
        names::check_patterns(diag, &own);
        let pattern = match PathPattern::new(file.path.clone()) {
            Ok(pattern) => pattern,
            Err(message) => {
                diag.error(&file_path.key("path"), message);
                continue;
            }
        };
        let normal = paths::normalize(Path::new(&file.path));
        if let Some(first) = watched.iter_mut().find(|w| w.normal == normal) {
            if file.requests.is_some() || !file.signals.is_empty() {
                diag.warn(
                    &file_path,
                    format!("`requests` and `signals` of a file listed twice are read from its first entry, at line {}; these are ignored", diag.line_of(&first.at)),
                );
            }
            first.add_entry(&file, own, &file_path, diag);
            continue;
        }
        let fields = decode_fields(&file, &file_path, diag, known);
        if fields.is_some() && file.requests.is_some() {
            known.requests.push(file.service.clone());
        }
        known.services.push(file.service.clone());
        let mut patterns: Vec<PatternConfig> = global.clone();
        patterns.extend(own);
        watched.push(WatchedFile {
            fields,
            index: i,
            at: file_path,
            service: file.service,
            pattern,
            normal,
            read_from: file.read_from.unwrap_or(section.read_from),
            patterns,
        });
    }
    for file in watched {
        if file.patterns.is_empty() && file.fields.is_none() {
            diag.warn(&file.at, "no patterns apply to this file (neither `logs.patterns` nor its own `patterns`) and it has no `requests` or `signals`; it is not watched");
            continue;
        }
        let tail_id = format!("{}.log_tail.{}", file.service, file.index);
        let patterns_id = format!("{}.log_patterns.{}", file.service, file.index);
        let fields_id = format!("{}.log_fields.{}", file.service, file.index);
        config.sources.push(NodeConfig {
            id: tail_id.clone(),
            inputs: Vec::new(),
            config: SourceConfig::LogTail(LogTailConfig {
                service: file.service,
                paths: vec![file.pattern],
                read_from: file.read_from,
                max_line_bytes: section.max_line_bytes,
                scan_interval: section.scan_interval,
            }),
            path: file.at.clone(),
            implicit: false,
        });
        if let Some(fields) = file.fields {
            config.stages.push(NodeConfig {
                id: fields_id,
                inputs: vec![tail_id.clone()],
                config: fields,
                path: file.at.clone(),
                implicit: false,
            });
        }
        if !file.patterns.is_empty() {
            config.stages.push(NodeConfig {
                id: patterns_id,
                inputs: vec![tail_id],
                config: StageConfig::LogPatterns(LogPatternsConfig {
                    patterns: file.patterns,
                }),
                path: file.at,
                implicit: false,
            });
        }
    }
}

/// A file of `logs.files`: its first entry, and the patterns of every entry of its
/// service that names the same file. It becomes one `log_tail` source and one
/// `log_patterns` stage, so that its lines are read, and matched, once.
struct WatchedFile {
    /// The `log_fields` stage of its `requests` and `signals`, if it has them.
    fields: Option<StageConfig>,
    /// The first entry's index in `logs.files` (the node ids end with it) and place.
    index: usize,
    at: KeyPath,
    service: String,
    pattern: PathPattern,
    /// The path as written, normalised: entries compare equal on it.
    normal: PathBuf,
    /// The first entry's.
    read_from: ReadFrom,
    patterns: Vec<PatternConfig>,
}

impl WatchedFile {
    /// Takes `entry`, written at `at` after the first entry for the same file: for the
    /// same service its `own` patterns are added, for another service nothing is (the
    /// tail of a file reads it for one service). Either way, a warning says so.
    fn add_entry(
        &mut self,
        entry: &LogFile,
        own: Vec<PatternConfig>,
        at: &KeyPath,
        diag: &mut Diagnostics,
    ) {
        let first_line = diag.line_of(&self.at);
        if entry.service != self.service {
            let message = format!(
                "file `{}` is already listed for service `{}` at line {first_line} (`{}`); a file is read once, for its first service, so this entry adds nothing for `{}` (its patterns do not apply)",
                entry.path, self.service, self.at, entry.service
            );
            diag.warn(at, message);
            return;
        }
        let message = format!(
            "file `{}` is listed twice for service `{}`, here and at line {first_line} (`{}`); the two entries are read as one, with the patterns of both",
            entry.path, entry.service, self.at
        );
        diag.warn(at, message);
        // A pattern written the same in both entries is kept once; one that shares a
        // name but not its definition is kept too, so that building the stage reports
        // the name used twice rather than one definition being dropped unseen.
        for pattern in own {
            if !self.patterns.iter().any(|p| same_pattern(p, &pattern)) {
                self.patterns.push(pattern);
            }
        }
    }
}

/// The `log_fields` stage a file's `requests` and `signals` make, if it has either.
/// How anomaly detection reads each signal (`direction`, `aggregate`) is taken out of
/// its entry into `known`, for the anomaly stage.
fn decode_fields(
    file: &LogFile,
    at: &KeyPath,
    diag: &mut Diagnostics,
    known: &mut Known,
) -> Option<StageConfig> {
    if file.requests.is_none() && file.signals.is_empty() {
        return None;
    }
    let mut options = Mapping::new();
    if let Some(requests) = &file.requests {
        options.insert("requests".into(), requests.clone());
    }
    let mut signals = Vec::new();
    for (j, entry) in file.signals.iter().enumerate() {
        let mut entry = entry.clone();
        if let Some(fields) = entry.as_mapping_mut() {
            let mut reading = Mapping::new();
            for key in ["direction", "aggregate"] {
                if let Some(value) = fields.remove(key) {
                    reading.insert(key.into(), value);
                }
            }
            let path = at.key("signals").index(j);
            let reading = diag.decode::<SignalConfig>(&Value::Mapping(reading), &path);
            if let (Some(reading), Some(Value::String(name))) = (reading, fields.get("name")) {
                known
                    .custom
                    .push((file.service.clone(), name.clone(), reading));
            }
        }
        signals.push(entry);
    }
    if !signals.is_empty() {
        options.insert("signals".into(), Value::Sequence(signals));
    }
    StageConfig::decode(LogFieldsConfig::NAME, &Value::Mapping(options), at, diag)
}

/// The `anomaly_detection:` section: one `anomaly` stage fed by every health check and
/// every request log, its thresholds checked against the services the other sections
/// name.
fn expand_anomaly(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
    config: &mut PipelineConfig,
    known: &Known,
) {
    let Some(mut options) = diag.decode::<Mapping>(value, path) else {
        return;
    };
    let enabled = take_enabled(&mut options, path, diag);
    let Some(StageConfig::Anomaly(mut anomaly)) =
        StageConfig::decode(AnomalyConfig::NAME, &Value::Mapping(options), path, diag)
    else {
        return;
    };
    let inputs = config.ids_emitting(&[EventKind::ProbeResult, EventKind::Samples]);
    let thresholds = anomaly.threshold_services(path);
    if inputs.is_empty() {
        // One warning says it all; one per threshold would repeat it.
        let unknown = (thresholds.iter())
            .filter(|(_, service, _)| !known.services.iter().any(|name| name == service));
        for (_, service, at) in unknown {
            unknown_service(service, &at.key("service"), known, diag);
        }
        if enabled {
            diag.warn(
                path,
                "nothing to judge yet: no service has health checks, a request log (`logs.files[].requests: {format: combined}`) or signals (`logs.files[].signals`), so no threshold here is ever judged",
            );
        }
        return;
    }
    for (signal, service, at) in &thresholds {
        check_threshold_service(signal, service, at, known, diag);
    }
    if !enabled {
        return;
    }
    for (_, name, reading) in &known.custom {
        anomaly
            .signals
            .entry(name.clone())
            .or_insert_with(|| reading.clone());
    }
    config.stages.push(NodeConfig {
        id: "anomaly".into(),
        inputs,
        config: StageConfig::Anomaly(anomaly),
        path: path.clone(),
        implicit: false,
    });
}

/// A threshold's service must be one the configuration names, and its signal one that
/// service has; an unknown service is an error, a signal that nothing measures a
/// warning (the threshold would never be judged).
fn check_threshold_service(
    signal: &str,
    service: &str,
    at: &KeyPath,
    known: &Known,
    diag: &mut Diagnostics,
) {
    let service_path = at.key("service");
    if !known.services.iter().any(|name| name == service) {
        unknown_service(service, &service_path, known, diag);
        return;
    }
    let has = |names: &[String]| names.iter().any(|name| name == service);
    let missing = match signal {
        "latency" if !has(&known.probed) && !has(&known.requests) => {
            "its latency comes from health checks or a request log (`logs.files[].requests`), and it has neither"
        }
        "error_rate" | "throughput" if !has(&known.requests) => {
            "its requests come from a request log (`logs.files[].requests`), and it has none"
        }
        "latency" | "error_rate" | "throughput" => return,
        custom if (known.custom.iter()).any(|(s, name, _)| s == service && name == custom) => {
            return;
        }
        _ => "no `logs.files[].signals` entry of this service declares that signal",
    };
    diag.warn(
        &service_path,
        format!("this {signal} threshold of `{service}` is never judged: {missing}"),
    );
}

/// Reports a threshold's service that no check or log file names.
fn unknown_service(service: &str, at: &KeyPath, known: &Known, diag: &mut Diagnostics) {
    let mut names: Vec<&str> = known.services.iter().map(String::as_str).collect();
    names.sort_unstable();
    names.dedup();
    let mut message = format!(
        "service `{service}` is not named by any health check or log file; expected one of {}",
        list(&names)
    );
    if let Some(close) = closest(service, names.iter().copied()) {
        message.push_str(&format!(" (did you mean `{close}`?)"));
    }
    diag.error(at, message);
}

/// Whether two patterns are one written twice: where each was written does not count.
fn same_pattern(a: &PatternConfig, b: &PatternConfig) -> bool {
    (&a.name, &a.pattern, a.severity, &a.description)
        == (&b.name, &b.pattern, b.severity, &b.description)
}

/// Takes a section's `enabled` out of its options (default `true`). A wrong value is
/// reported, in the words of the other sections' `enabled`, and the rest is still
/// decoded and checked as if it were left out, so that every error of the section
/// shows at once.
fn take_enabled(options: &mut Mapping, path: &KeyPath, diag: &mut Diagnostics) -> bool {
    match options.remove("enabled") {
        None => true,
        Some(value) => diag
            .decode::<bool>(&value, &path.key("enabled"))
            .unwrap_or(true),
    }
}

/// The id of the `alert` stage the `alerting:` section becomes.
const ALERT_STAGE: &str = "alerting";

/// The `alerting:` section: the alert stage's keys (`state_dir`, `repeat_interval`,
/// `rules`, ...), plus `enabled`, `webhooks` (a `webhook` sink each, sharing the
/// section's `state_dir`) and `alertmanager` (an `alertmanager` sink). Everything is
/// decoded and checked even when `enabled: false`, so that turning it on holds no
/// surprise.
fn expand_alerting(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
    config: &mut PipelineConfig,
) {
    let Some(mut options) = diag.decode::<Mapping>(value, path) else {
        return;
    };
    let enabled = take_enabled(&mut options, path, diag);
    let webhooks = options.remove("webhooks");
    let alertmanager = options.remove("alertmanager");
    let state_dir = options.get("state_dir").cloned();
    let stage = StageConfig::decode(AlertConfig::NAME, &Value::Mapping(options), path, diag);
    let mut sinks = Vec::new();
    if let Some(webhooks) = webhooks {
        expand_webhooks(
            &webhooks,
            &path.key("webhooks"),
            state_dir.as_ref(),
            diag,
            &mut sinks,
        );
    }
    if let Some(alertmanager) = alertmanager {
        let at = path.key("alertmanager");
        if let Some(sink) = SinkConfig::decode("alertmanager", &alertmanager, &at, diag) {
            sinks.push(("alertmanager".to_owned(), sink, at));
        }
    }
    let Some(stage) = stage else {
        return;
    };
    if !enabled {
        return;
    }
    let inputs = config.ids_emitting(&[
        EventKind::ProbeResult,
        EventKind::LogMatch,
        EventKind::Anomaly,
        EventKind::Lifecycle,
    ]);
    if inputs.is_empty() {
        diag.warn(
            path,
            "nothing to alert on: no health checks, log patterns or anomaly detection feed the alerts",
        );
        return;
    }
    if sinks.is_empty() {
        diag.warn(
            path,
            "no `webhooks` or `alertmanager`: alerts are shown on the console and on /metrics and /api/alerts only",
        );
    }
    config.stages.push(NodeConfig {
        id: ALERT_STAGE.into(),
        inputs,
        config: stage,
        path: path.clone(),
        implicit: false,
    });
    for (id, sink, at) in sinks {
        config.sinks.push(NodeConfig {
            id,
            inputs: vec![ALERT_STAGE.into()],
            config: sink,
            path: at,
            implicit: false,
        });
    }
}

/// `alerting.webhooks`: a `webhook` sink per entry (id `webhook.NAME`), each keeping its
/// ledger in the section's `state_dir` unless it names its own; a `fallback` must name
/// another entry.
fn expand_webhooks(
    value: &Value,
    path: &KeyPath,
    state_dir: Option<&Value>,
    diag: &mut Diagnostics,
    sinks: &mut Vec<(String, SinkConfig, KeyPath)>,
) {
    let Some(entries) = diag.decode::<Vec<Value>>(value, path) else {
        return;
    };
    let text =
        |entry: &Value, key: &str| (entry.get(key).and_then(Value::as_str)).map(str::to_owned);
    let names: Vec<String> = entries
        .iter()
        .filter_map(|entry| text(entry, "name"))
        .collect();
    for (i, entry) in entries.iter().enumerate() {
        let at = path.index(i);
        let mut entry = entry.clone();
        if let (Some(dir), Value::Mapping(options)) = (state_dir, &mut entry) {
            options
                .entry("state_dir".into())
                .or_insert_with(|| dir.clone());
        }
        if let (Some(fallback), Some(name)) = (text(&entry, "fallback"), text(&entry, "name")) {
            let others = names
                .iter()
                .map(String::as_str)
                .filter(|other| *other != name);
            if !others.clone().any(|other| other == fallback) {
                let mut message = format!(
                    "fallback `{fallback}` is not another receiver of `alerting.webhooks`; expected one of {}",
                    list(&others.clone().collect::<Vec<_>>())
                );
                if let Some(close) = closest(&fallback, others) {
                    message.push_str(&format!(" (did you mean `{close}`?)"));
                }
                diag.error(&at.key("fallback"), message);
            }
        }
        let Some(sink) = SinkConfig::decode("webhook", &entry, &at, diag) else {
            continue;
        };
        let name = text(&entry, "name").unwrap_or_default();
        sinks.push((format!("webhook.{name}"), sink, at));
    }
}
