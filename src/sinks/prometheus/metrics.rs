//! The metrics the `prometheus` sink serves, derived from the events it receives.
//!
//! Every metric lives here, next to the event it comes from: [`Metrics::record`] is one
//! `match` over the events, so a new event's metrics are added in one place. Stages
//! and sources never touch the registry. Label values are bounded: names from the
//! configuration (service, check, pattern, path), closed enums (kind, result, reason,
//! severity), never a log line, a URL or an error text.
//!
//! The registry is this sink's own, not the process-wide default: a new pipeline (a
//! reload) gets a new one, so the series of a service that is no longer configured are
//! gone from the output.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

use super::alerts::{CurrentAlerts, Listing};
use crate::base::component::CHANNEL_CAPACITY;
use crate::base::event::{
    Alert, AlertState, Change, Event, FailureReason, Lifecycle, LogLines, LogMatch, Measure,
    Outcome, ProbeResult, Samples, ServiceName, Severity, SignalSlice,
};
use crate::base::stats::PipelineStats;
use crate::sinks::notify::Deliveries;

/// Buckets of the check duration histogram, in seconds: a local probe takes about a
/// millisecond, a slow one seconds. Each bucket is a series per check, and most of a
/// scrape's size: ten of them.
const DURATION_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Buckets of the scheduling delay histogram, in seconds: on time is about a
/// millisecond (the timer's resolution).
const DELAY_BUCKETS: [f64; 8] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5];

/// Every metric the sink serves, and what it needs to derive them.
pub struct Metrics {
    registry: Registry,
    service_up: IntGaugeVec,
    service_uptime: GaugeVec,
    service_transition: GaugeVec,
    process_running: IntGaugeVec,
    process_uptime: GaugeVec,
    process_start: GaugeVec,
    process_exit_code: IntGaugeVec,
    process_given_up: IntGaugeVec,
    restarts: IntCounterVec,
    check_up: IntGaugeVec,
    check_degraded: IntGaugeVec,
    check_duration: HistogramVec,
    checks: IntCounterVec,
    failures: IntCounterVec,
    attempts: IntCounterVec,
    retries: IntCounterVec,
    schedule_delay: Histogram,
    perfdata: GaugeVec,
    log_lines: IntCounterVec,
    log_bytes: IntCounterVec,
    log_cut: IntCounterVec,
    log_lossy: IntCounterVec,
    matches: IntCounterVec,
    pattern_errors: IntCounterVec,
    requests: IntCounterVec,
    unparsed: IntCounterVec,
    signal_value: GaugeVec,
    signal_baseline: GaugeVec,
    anomaly_score: GaugeVec,
    anomaly_active: IntGaugeVec,
    anomaly_transitions: IntCounterVec,
    unjudged: IntCounterVec,
    alerts: IntGaugeVec,
    alert_transitions: IntCounterVec,
    node_received: IntCounterVec,
    reloads: IntCounterVec,
    node_sent: IntCounterVec,
    node_queued: IntGaugeVec,
    render_duration: Gauge,
    services: HashMap<ServiceName, ServiceHealth>,
    /// The perfdata series each check's last output set, (label, unit).
    perfdata_series: HashMap<CheckKey, Vec<PerfSeries>>,
    /// The alerts known now, which `aegis_alerts` counts and `/api/alerts` lists.
    current_alerts: CurrentAlerts,
    /// When each supervised process now running was started, for its uptime.
    process_started: HashMap<ServiceName, SystemTime>,
    /// The services of the pipeline as last rendered: when a reload changes them, the
    /// series of the services and nodes it removed go.
    configured: Option<Arc<[String]>>,
}

/// A check: its service and its name.
type CheckKey = (ServiceName, Arc<str>);

/// A perfdata series of a check: its label and unit.
type PerfSeries = (String, &'static str);

/// A service's health as its checks' last results make it.
struct ServiceHealth {
    /// Each check's last result, up (or degraded) or not; `None` until it reports.
    checks: HashMap<Arc<str>, Option<bool>>,
    /// Whether every check has reported, so that the service's health is known.
    known: bool,
    /// Since when every check has been up, while they all are.
    healthy_since: Option<SystemTime>,
    /// When the service last went up or down.
    last_transition: SystemTime,
}

impl ServiceHealth {
    fn new() -> ServiceHealth {
        ServiceHealth {
            checks: HashMap::new(),
            known: false,
            healthy_since: None,
            last_transition: UNIX_EPOCH,
        }
    }
}

/// A metric family with its labels, registered in `registry`.
fn family<M: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("metric names and labels are constants, and valid");
    registry
        .register(Box::new(metric.clone()))
        .expect("each metric is registered once");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// The metrics of a sink fed by these health checks, (service, check): a
    /// service's health is reported once all of its checks have reported.
    pub fn expecting(checks: &[(ServiceName, Arc<str>)]) -> Metrics {
        let mut metrics = Metrics::new();
        for (service, check) in checks {
            (metrics.services.entry(service.clone()))
                .or_insert_with(ServiceHealth::new)
                .checks
                .insert(check.clone(), None);
        }
        metrics
    }

    pub fn new() -> Metrics {
        let r = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(name, help);
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            HistogramOpts::new(name, help).buckets(buckets.to_vec())
        };
        const CHECK: &[&str] = &["service", "check"];
        const FILE: &[&str] = &["service", "path"];
        const SERVICE: &[&str] = &["service"];
        const SIGNAL: &[&str] = &["service", "signal"];
        let metrics = Metrics {
            service_up: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_service_up",
                        "1 if every health check of the service is up (degraded counts as up), else 0.",
                    ),
                    &["service"],
                ),
            ),
            service_uptime: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_service_uptime_seconds",
                        "Seconds since the service last became healthy; 0 while it is down.",
                    ),
                    &["service"],
                ),
            ),
            service_transition: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_service_last_transition_timestamp_seconds",
                        "When the service last went up or down, in seconds since the Unix epoch.",
                    ),
                    &["service"],
                ),
            ),
            process_running: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_process_running",
                        "1 while the supervised process of the service runs, else 0.",
                    ),
                    SERVICE,
                ),
            ),
            process_uptime: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_process_uptime_seconds",
                        "Seconds since the supervised process of the service was last started; 0 while it is not running.",
                    ),
                    SERVICE,
                ),
            ),
            process_start: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_process_start_time_seconds",
                        "When the supervised process of the service was last started, in seconds since the Unix epoch.",
                    ),
                    SERVICE,
                ),
            ),
            process_exit_code: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_process_last_exit_code",
                        "How the supervised process last ended: its exit code, 128 + the signal that killed it, or -1 if it could not be started.",
                    ),
                    SERVICE,
                ),
            ),
            process_given_up: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_process_given_up",
                        "1 once the restart budget of the service is spent and it is no longer restarted, else 0.",
                    ),
                    SERVICE,
                ),
            ),
            restarts: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_service_restarts_total",
                        "Restarts of the supervised process of the service, by reason: exited (its restart policy), unhealthy (restart_on_unhealthy).",
                    ),
                    &["service", "reason"],
                ),
            ),
            check_up: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_health_check_up",
                        "1 if the check's last result was up or degraded, else 0.",
                    ),
                    &["service", "check", "kind"],
                ),
            ),
            check_degraded: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_health_check_degraded",
                        "1 if the check's last result was degraded (a script's WARNING), else 0.",
                    ),
                    CHECK,
                ),
            ),
            check_duration: family(
                &r,
                HistogramVec::new(
                    histogram(
                        "aegis_health_check_duration_seconds",
                        "How long the last attempt of each check tick took.",
                        &DURATION_BUCKETS,
                    ),
                    CHECK,
                ),
            ),
            checks: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_health_checks_total",
                        "Check ticks by result: success, degraded or failure.",
                    ),
                    &["service", "check", "result"],
                ),
            ),
            failures: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_health_check_failures_total",
                        "Failed check ticks by reason.",
                    ),
                    &["service", "check", "reason"],
                ),
            ),
            attempts: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_health_check_attempts_total",
                        "Attempts made, retries included.",
                    ),
                    CHECK,
                ),
            ),
            retries: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_health_check_retries_total",
                        "Attempts made after a tick's first.",
                    ),
                    CHECK,
                ),
            ),
            schedule_delay: family(
                &r,
                Histogram::with_opts(histogram(
                    "aegis_health_check_schedule_delay_seconds",
                    "How long after its scheduled time each check tick started.",
                    &DELAY_BUCKETS,
                )),
            ),
            perfdata: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_health_check_perfdata",
                        "Performance data a script check printed, in base units (seconds, bytes, ratios for %).",
                    ),
                    &["service", "check", "label", "unit"],
                ),
            ),
            log_lines: family(
                &r,
                IntCounterVec::new(opts("aegis_log_lines_total", "Log lines read."), FILE),
            ),
            log_bytes: family(
                &r,
                IntCounterVec::new(
                    opts("aegis_log_bytes_total", "Bytes of the log lines read."),
                    FILE,
                ),
            ),
            log_cut: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_log_lines_cut_total",
                        "Log lines longer than the limit, cut to it.",
                    ),
                    FILE,
                ),
            ),
            log_lossy: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_log_lines_lossy_total",
                        "Log lines with invalid UTF-8, decoded with replacement characters.",
                    ),
                    FILE,
                ),
            ),
            matches: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_log_pattern_matches_total",
                        "Log lines that matched a pattern.",
                    ),
                    &["service", "pattern", "severity"],
                ),
            ),
            pattern_errors: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_log_pattern_errors_total",
                        "Log lines a pattern could not decide within its limits (backtrack limit or time budget): neither matches nor non-matches.",
                    ),
                    &["service", "pattern", "reason"],
                ),
            ),
            requests: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_requests_total",
                        "Requests read from request logs, by result (`ok` or `error`, as the log's `errors` setting says).",
                    ),
                    &["service", "result"],
                ),
            ),
            unparsed: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_request_lines_unparsed_total",
                        "Lines of a request log that were not a request in its format (or had a time that did not parse).",
                    ),
                    SERVICE,
                ),
            ),
            signal_value: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_signal_value",
                        "The value of a signal over its last closed slice: latency in seconds (at its percentile), throughput in requests per second, error rate as a ratio, custom signals in their own unit.",
                    ),
                    SIGNAL,
                ),
            ),
            signal_baseline: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_signal_baseline",
                        "The adaptive baseline of a signal (the median of its history), in the signal's unit.",
                    ),
                    SIGNAL,
                ),
            ),
            anomaly_score: family(
                &r,
                GaugeVec::new(
                    opts(
                        "aegis_anomaly_score",
                        "The robust z-score of a signal's last judged slice against its baseline.",
                    ),
                    SIGNAL,
                ),
            ),
            anomaly_active: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_anomaly_active",
                        "1 while a signal of a service is anomalous, else 0.",
                    ),
                    SIGNAL,
                ),
            ),
            anomaly_transitions: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_anomaly_transitions_total",
                        "Changes of a signal's state, by the state entered (`anomalous` or `normal`).",
                    ),
                    &["service", "signal", "to"],
                ),
            ),
            unjudged: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_signal_slices_unjudged_total",
                        "Closed slices left unjudged, by reason (`too_few_requests`, `first_slice`).",
                    ),
                    &["service", "signal", "reason"],
                ),
            ),
            alerts: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_alerts",
                        "Alerts now pending or firing, by state and severity.",
                    ),
                    &["service", "state", "severity"],
                ),
            ),
            alert_transitions: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_alert_transitions_total",
                        "Changes of an alert's state, by the state entered (`pending`, `firing`, `resolved`).",
                    ),
                    &["service", "alertname", "state"],
                ),
            ),
            reloads: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_config_reloads_total",
                        "Reloads of the configuration on SIGHUP, by result: success (the pipeline was replaced), failure (the file was refused; the pipeline runs on unchanged).",
                    ),
                    &["result"],
                ),
            ),
            node_received: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_pipeline_events_received_total",
                        "Events that arrived at a pipeline node.",
                    ),
                    &["node"],
                ),
            ),
            node_sent: family(
                &r,
                IntCounterVec::new(
                    opts(
                        "aegis_pipeline_events_sent_total",
                        "Events a pipeline node sent on.",
                    ),
                    &["node"],
                ),
            ),
            node_queued: family(
                &r,
                IntGaugeVec::new(
                    opts(
                        "aegis_pipeline_queued_batches",
                        &format!(
                            "Batches waiting in a node's channel (it holds {CHANNEL_CAPACITY})."
                        ),
                    ),
                    &["node"],
                ),
            ),
            render_duration: family(
                &r,
                Gauge::with_opts(opts(
                    "aegis_metrics_render_seconds",
                    "How long the previous rendering of these metrics took.",
                )),
            ),
            services: HashMap::new(),
            perfdata_series: HashMap::new(),
            current_alerts: CurrentAlerts::default(),
            process_started: HashMap::new(),
            configured: None,
            registry: r,
        };
        #[cfg(target_os = "linux")]
        metrics
            .registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("the process collector is registered once");
        metrics
    }

    /// Updates the metrics an event bears on.
    pub fn record(&mut self, event: &Event) {
        match event {
            Event::LogLines(lines) => self.record_lines(lines),
            Event::LogMatch(found) => self.record_match(found),
            Event::PatternErrors(errors) => {
                let labels = [&*errors.service, &*errors.pattern, errors.reason.as_str()];
                (self.pattern_errors.with_label_values(&labels)).inc_by(u64::from(errors.lines));
            }
            Event::ProbeResult(result) => self.record_result(result),
            Event::Samples(samples) => self.record_samples(samples),
            Event::SignalSlice(slice) => self.record_slice(slice),
            Event::Anomaly(anomaly) => {
                let to = if anomaly.anomalous {
                    "anomalous"
                } else {
                    "normal"
                };
                let labels = [&*anomaly.service, anomaly.signal.as_str(), to];
                self.anomaly_transitions.with_label_values(&labels).inc();
            }
            Event::Alert(alert) => self.record_alert(alert),
            Event::Lifecycle(life) => self.record_lifecycle(life),
        }
    }

    /// Adds the notifiers' delivery metrics to those served.
    pub fn publish(&self, deliveries: &Deliveries) {
        deliveries
            .register(&self.registry)
            .expect("a sink's registry has no delivery metrics of its own");
    }

    /// The alerts known at `now`, for `/api/alerts`.
    pub fn alerts(&mut self, now: SystemTime) -> Listing {
        self.current_alerts.listing(now)
    }

    fn record_lifecycle(&mut self, life: &Lifecycle) {
        let service = [&*life.service];
        match &life.change {
            Change::Started { .. } => {
                self.process_running.with_label_values(&service).set(1);
                self.process_given_up.with_label_values(&service).set(0);
                self.process_start
                    .with_label_values(&service)
                    .set(seconds_since_epoch(life.at));
                self.process_started.insert(life.service.clone(), life.at);
            }
            Change::Exited { exit, .. } => {
                self.process_running.with_label_values(&service).set(0);
                self.process_exit_code
                    .with_label_values(&service)
                    .set(exit.as_number());
                self.process_started.remove(&life.service);
                self.process_uptime.with_label_values(&service).set(0.0);
            }
            Change::Restarting { reason, .. } => {
                self.restarts
                    .with_label_values(&[&*life.service, reason.as_label()])
                    .inc();
            }
            Change::GaveUp { .. } => self.process_given_up.with_label_values(&service).set(1),
        }
    }

    fn record_alert(&mut self, alert: &Alert) {
        let service = &*alert.service;
        if let Some(state) = self.current_alerts.record(alert) {
            let labels = [service, &*alert.rule, state.as_str()];
            self.alert_transitions.with_label_values(&labels).inc();
        }
        // Every state and severity of the service, those at 0 included, so that a
        // series that was 1 goes back to 0 rather than away.
        for state in [AlertState::Pending, AlertState::Firing] {
            for severity in Severity::ALL {
                let count = self.current_alerts.count(service, state, severity);
                let labels = [service, state.as_str(), severity.as_str()];
                self.alerts.with_label_values(&labels).set(count as i64);
            }
        }
    }

    fn record_samples(&mut self, samples: &Samples) {
        let (mut ok, mut errors) = (0, 0);
        for sample in &samples.items {
            if let Measure::Request { error, .. } = sample.measure {
                if error {
                    errors += 1;
                } else {
                    ok += 1;
                }
            }
        }
        let service = &*samples.service;
        for (result, count) in [("ok", ok), ("error", errors)] {
            if count > 0 {
                (self.requests.with_label_values(&[service, result])).inc_by(count);
            }
        }
        if samples.unparsed > 0 {
            (self.unparsed.with_label_values(&[service])).inc_by(u64::from(samples.unparsed));
        }
    }

    fn record_slice(&mut self, slice: &SignalSlice) {
        let labels = [&*slice.service, slice.signal.as_str()];
        let gauges = [
            (&self.signal_value, slice.value),
            (&self.signal_baseline, slice.baseline),
            (&self.anomaly_score, slice.score),
        ];
        for (gauge, value) in gauges {
            match value {
                Some(value) => gauge.with_label_values(&labels).set(value),
                // A slice without one (no traffic, no baseline yet) leaves no stale
                // number behind.
                None => {
                    let _ = gauge.remove_label_values(&labels);
                }
            }
        }
        (self.anomaly_active.with_label_values(&labels)).set(i64::from(slice.anomalous));
        if let Some(reason) = slice.unjudged {
            let labels = [&*slice.service, slice.signal.as_str(), reason.label()];
            self.unjudged.with_label_values(&labels).inc();
        }
    }

    fn record_lines(&mut self, lines: &LogLines) {
        let file = [&*lines.service, &*lines.path];
        self.log_lines
            .with_label_values(&file)
            .inc_by(u64::from(lines.lines));
        self.log_bytes
            .with_label_values(&file)
            .inc_by(lines.text.len() as u64);
        self.log_cut
            .with_label_values(&file)
            .inc_by(u64::from(lines.cut));
        self.log_lossy
            .with_label_values(&file)
            .inc_by(u64::from(lines.lossy));
    }

    fn record_match(&mut self, found: &LogMatch) {
        let labels = [&*found.service, &*found.pattern, found.severity.as_str()];
        self.matches.with_label_values(&labels).inc();
    }

    fn record_result(&mut self, result: &ProbeResult) {
        let (service, check) = (&*result.service, &*result.check);
        let kind = result.kind.as_str();
        let up = result.outcome != Outcome::Down;
        self.check_up
            .with_label_values(&[service, check, kind])
            .set(i64::from(up));
        self.check_degraded
            .with_label_values(&[service, check])
            .set(i64::from(result.outcome == Outcome::Degraded));
        self.check_duration
            .with_label_values(&[service, check])
            .observe(result.latency.as_secs_f64());
        let outcome = match result.outcome {
            Outcome::Up => "success",
            Outcome::Degraded => "degraded",
            Outcome::Down => "failure",
        };
        self.checks
            .with_label_values(&[service, check, outcome])
            .inc();
        if result.outcome == Outcome::Down {
            let reason = result.reason.unwrap_or(FailureReason::Other).as_str();
            self.failures
                .with_label_values(&[service, check, reason])
                .inc();
        }
        self.attempts
            .with_label_values(&[service, check])
            .inc_by(u64::from(result.attempts));
        self.retries
            .with_label_values(&[service, check])
            .inc_by(u64::from(result.attempts.saturating_sub(1)));
        self.schedule_delay.observe(result.late.as_secs_f64());
        self.record_perfdata(result);
        self.record_health(result, up);
    }

    /// A script's performance data: the series of its last output only, so that a
    /// script whose labels change does not leave series behind without bound.
    fn record_perfdata(&mut self, result: &ProbeResult) {
        let (service, check) = (&*result.service, &*result.check);
        let current: Vec<(String, &'static str, f64)> = (result.perfdata.iter())
            .map(|sample| {
                let (value, unit) = base_unit(sample.value, &sample.unit);
                (bounded_label(&sample.label), unit, value)
            })
            .collect();
        let key = (result.service.clone(), result.check.clone());
        let previous = self.perfdata_series.remove(&key).unwrap_or_default();
        for (label, unit) in &previous {
            if !current.iter().any(|(l, u, _)| l == label && u == unit) {
                let _ = self
                    .perfdata
                    .remove_label_values(&[service, check, label, unit]);
            }
        }
        for (label, unit, value) in &current {
            self.perfdata
                .with_label_values(&[service, check, label, unit])
                .set(*value);
        }
        if !current.is_empty() {
            let series = current.into_iter().map(|(l, u, _)| (l, u)).collect();
            self.perfdata_series.insert(key, series);
        }
    }

    /// The service's health: up only if every check of it is.
    fn record_health(&mut self, result: &ProbeResult, check_up: bool) {
        let health =
            (self.services.entry(result.service.clone())).or_insert_with(ServiceHealth::new);
        health.checks.insert(result.check.clone(), Some(check_up));
        // Until every check has reported, the service is neither up nor down: a check
        // whose first tick is still to come must not make it look up.
        if health.checks.values().any(Option::is_none) {
            return;
        }
        let up = health.checks.values().all(|up| *up == Some(true));
        if !health.known || up != health.healthy_since.is_some() {
            health.known = true;
            health.last_transition = result.at;
            health.healthy_since = up.then_some(result.at);
        }
        let service = &*result.service;
        self.service_up
            .with_label_values(&[service])
            .set(i64::from(up));
        self.service_transition
            .with_label_values(&[service])
            .set(seconds_since_epoch(health.last_transition));
    }

    /// Brings the metrics that depend on time or on the running pipeline up to `now`
    /// and returns the registry to encode: [`encode`] needs no `&mut`, so a caller
    /// sharing these metrics can encode without holding them.
    pub fn refresh(&mut self, now: SystemTime, pipeline: Option<&PipelineStats>) -> Rendering {
        if let Some(pipeline) = pipeline {
            self.forget_removed(pipeline);
        }
        for (result, count) in pipeline.iter().flat_map(|stats| stats.reloads()) {
            let reloads = self.reloads.with_label_values(&[result]);
            reloads.inc_by(count.saturating_sub(reloads.get()));
        }
        for node in pipeline.into_iter().flat_map(|stats| &stats.nodes) {
            let id = [node.id.as_str()];
            // Counters only go up: add what was counted since the last render.
            if let Some(count) = node.received() {
                let received = self.node_received.with_label_values(&id);
                received.inc_by(count.saturating_sub(received.get()));
            }
            if let Some(count) = node.sent() {
                let sent = self.node_sent.with_label_values(&id);
                sent.inc_by(count.saturating_sub(sent.get()));
            }
            if let Some(queued) = node.queued() {
                self.node_queued.with_label_values(&id).set(queued as i64);
            }
        }
        for (service, health) in self.services.iter().filter(|(_, h)| h.known) {
            let uptime = health.healthy_since.map_or(Duration::ZERO, |since| {
                now.duration_since(since).unwrap_or_default()
            });
            self.service_uptime
                .with_label_values(&[&**service])
                .set(uptime.as_secs_f64());
        }
        for (service, started) in &self.process_started {
            let uptime = now.duration_since(*started).unwrap_or_default();
            self.process_uptime
                .with_label_values(&[&**service])
                .set(uptime.as_secs_f64());
        }
        Rendering {
            registry: self.registry.clone(),
            took: self.render_duration.clone(),
        }
    }

    /// After a reload, drops the series of the services and the nodes it removed, so
    /// that what `/metrics` shows is what runs. (Nothing happens at the first render,
    /// nor at renders between reloads: the services are compared by pointer.)
    fn forget_removed(&mut self, pipeline: &PipelineStats) {
        let same =
            (self.configured.as_ref()).is_some_and(|seen| Arc::ptr_eq(seen, &pipeline.services));
        let first = self.configured.is_none();
        self.configured = Some(Arc::clone(&pipeline.services));
        if same || first {
            return;
        }
        let service_gone = |service: &str| {
            pipeline
                .services
                .binary_search_by(|s| s.as_str().cmp(service))
                .is_err()
        };
        let node_gone = |node: &str| !pipeline.nodes.iter().any(|stats| stats.id == node);
        self.services.retain(|service, _| !service_gone(service));
        self.perfdata_series
            .retain(|(service, _), _| !service_gone(service));
        self.process_started
            .retain(|service, _| !service_gone(service));
        let by_service: [&dyn Forget; 36] = [
            &self.service_up,
            &self.service_uptime,
            &self.service_transition,
            &self.process_running,
            &self.process_uptime,
            &self.process_start,
            &self.process_exit_code,
            &self.process_given_up,
            &self.restarts,
            &self.check_up,
            &self.check_degraded,
            &self.check_duration,
            &self.checks,
            &self.failures,
            &self.attempts,
            &self.retries,
            &self.perfdata,
            &self.log_lines,
            &self.log_bytes,
            &self.log_cut,
            &self.log_lossy,
            &self.matches,
            &self.pattern_errors,
            &self.requests,
            &self.unparsed,
            &self.signal_value,
            &self.signal_baseline,
            &self.anomaly_score,
            &self.anomaly_active,
            &self.anomaly_transitions,
            &self.unjudged,
            &self.alerts,
            &self.alert_transitions,
            &self.node_received,
            &self.node_sent,
            &self.node_queued,
        ];
        for family in by_service {
            family.forget("service", &service_gone);
            family.forget("node", &node_gone);
        }
    }

    /// Refreshes and encodes at once, for callers that hold the metrics anyway.
    pub fn render(&mut self, now: SystemTime, pipeline: Option<&PipelineStats>) -> Vec<u8> {
        self.refresh(now, pipeline).encode()
    }
}

/// The metrics, ready to encode.
pub struct Rendering {
    registry: Registry,
    took: Gauge,
}

impl Rendering {
    /// The metrics in the text exposition format. The registry's metrics are atomics,
    /// so this runs without the [`Metrics`] they came from.
    pub fn encode(&self) -> Vec<u8> {
        let started = std::time::Instant::now();
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut text)
            .expect("the text encoder writes to memory");
        self.took.set(started.elapsed().as_secs_f64());
        text
    }
}

fn seconds_since_epoch(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A perfdata value in base units, and the unit's name: Nagios units of time, size
/// (powers of 1024, as the monitoring plugins use them) and percent become seconds,
/// bytes and ratios; others (`c` for a counter, none, anything else) stay as they are.
fn base_unit(value: f64, unit: &str) -> (f64, &'static str) {
    match unit {
        "s" => (value, "seconds"),
        "ms" => (value / 1e3, "seconds"),
        "us" | "µs" => (value / 1e6, "seconds"),
        "ns" => (value / 1e9, "seconds"),
        "B" => (value, "bytes"),
        "KB" | "kB" => (value * 1024.0, "bytes"),
        "MB" => (value * 1024.0 * 1024.0, "bytes"),
        "GB" => (value * 1024.0 * 1024.0 * 1024.0, "bytes"),
        "TB" => (value * 1024.0 * 1024.0 * 1024.0 * 1024.0, "bytes"),
        "%" => (value / 100.0, "ratio"),
        "c" => (value, "counter"),
        "" => (value, "none"),
        _ => (value, "other"),
    }
}

/// A perfdata label as a label value: as the script wrote it, cut to 64 characters
/// (a label value may hold any text, but not without bound).
fn bounded_label(label: &str) -> String {
    label.chars().take(64).collect()
}

/// A labelled family whose series of a gone label value can be removed.
trait Forget {
    /// Removes the series whose `label` has a value `gone` says is gone; nothing if the
    /// family has no such label.
    fn forget(&self, label: &str, gone: &dyn Fn(&str) -> bool);
}

impl<T: MetricVecBuilder> Forget for MetricVec<T> {
    fn forget(&self, label: &str, gone: &dyn Fn(&str) -> bool) {
        let names: Vec<String> = (self.desc().iter())
            .flat_map(|desc| desc.variable_labels.iter().cloned())
            .collect();
        if !names.iter().any(|name| name == label) {
            return;
        }
        for family in self.collect() {
            for metric in family.get_metric() {
                let pairs = metric.get_label();
                let value_of = |name: &str| {
                    (pairs.iter().find(|pair| pair.name() == name)).map_or("", |pair| pair.value())
                };
                if gone(value_of(label)) {
                    let values: Vec<&str> = names.iter().map(|name| value_of(name)).collect();
                    let _ = self.remove_label_values(&values);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::event::{PerfSample, ProbeKind};

    /// A result of check `check` of service `service` at `at` seconds.
    fn result(service: &str, check: &str, outcome: Outcome, at: u64) -> Event {
        Event::ProbeResult(ProbeResult {
            service: service.into(),
            check: check.into(),
            kind: ProbeKind::Http,
            at: UNIX_EPOCH + Duration::from_secs(at),
            late: Duration::from_millis(1),
            outcome,
            latency: Duration::from_millis(3),
            attempts: 1,
            status: None,
            reason: (outcome == Outcome::Down).then_some(FailureReason::Refused),
            detail: String::new(),
            perfdata: Vec::new(),
        })
    }

    fn text(metrics: &mut Metrics, now: u64) -> String {
        String::from_utf8(metrics.render(UNIX_EPOCH + Duration::from_secs(now), None)).unwrap()
    }

    fn line<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn a_service_is_up_while_every_check_is_and_its_uptime_counts_from_then() {
        let mut metrics = Metrics::new();
        metrics.record(&result("s", "a", Outcome::Up, 100));
        metrics.record(&result("s", "b", Outcome::Down, 110));
        let down = text(&mut metrics, 120);
        assert_eq!(line(&down, r#"aegis_service_up{service="s"}"#), Some("0"));
        assert_eq!(
            line(&down, r#"aegis_service_uptime_seconds{service="s"}"#),
            Some("0")
        );
        assert_eq!(
            line(
                &down,
                r#"aegis_service_last_transition_timestamp_seconds{service="s"}"#
            ),
            Some("110")
        );
        metrics.record(&result("s", "b", Outcome::Degraded, 130));
        metrics.record(&result("s", "a", Outcome::Up, 140));
        let up = text(&mut metrics, 160);
        assert_eq!(line(&up, r#"aegis_service_up{service="s"}"#), Some("1"));
        assert_eq!(
            line(&up, r#"aegis_service_uptime_seconds{service="s"}"#),
            Some("30")
        );
        assert_eq!(
            line(&up, r#"aegis_health_check_degraded{check="b",service="s"}"#),
            Some("1")
        );
        assert_eq!(
            line(
                &up,
                r#"aegis_health_checks_total{check="b",result="failure",service="s"}"#
            ),
            Some("1")
        );
        assert_eq!(
            line(
                &up,
                r#"aegis_health_check_failures_total{check="b",reason="refused",service="s"}"#
            ),
            Some("1")
        );
    }

    #[test]
    fn a_service_is_neither_up_nor_down_until_every_check_has_reported() {
        let checks = [("s".into(), "a".into()), ("s".into(), "b".into())];
        let mut metrics = Metrics::expecting(&checks);
        metrics.record(&result("s", "a", Outcome::Up, 100));
        let partial = text(&mut metrics, 101);
        assert_eq!(line(&partial, r#"aegis_service_up{service="s"}"#), None);
        assert_eq!(
            line(&partial, r#"aegis_service_uptime_seconds{service="s"}"#),
            None
        );
        metrics.record(&result("s", "b", Outcome::Up, 105));
        let known = text(&mut metrics, 110);
        assert_eq!(line(&known, r#"aegis_service_up{service="s"}"#), Some("1"));
        assert_eq!(
            line(&known, r#"aegis_service_uptime_seconds{service="s"}"#),
            Some("5")
        );
    }

    #[test]
    fn perfdata_series_are_those_of_the_last_output() {
        let mut metrics = Metrics::new();
        let with = |labels: &[&str]| {
            let mut event = result("host", "x", Outcome::Up, 1);
            if let Event::ProbeResult(result) = &mut event {
                result.perfdata = (labels.iter())
                    .map(|label| PerfSample {
                        label: (*label).into(),
                        value: 1.0,
                        unit: String::new(),
                        warn: None,
                        crit: None,
                        min: None,
                        max: None,
                    })
                    .collect();
            }
            event
        };
        metrics.record(&with(&["pid-1", "load"]));
        metrics.record(&with(&["pid-2", "load"]));
        let text = text(&mut metrics, 2);
        assert!(!text.contains("pid-1"), "{text}");
        assert!(text.contains(r#"label="pid-2""#) && text.contains(r#"label="load""#));
    }

    #[test]
    fn perfdata_is_in_base_units() {
        let mut metrics = Metrics::new();
        let mut event = result("host", "disk", Outcome::Up, 1);
        if let Event::ProbeResult(result) = &mut event {
            let sample = |label: &str, value: f64, unit: &str| PerfSample {
                label: label.into(),
                value,
                unit: unit.into(),
                warn: None,
                crit: None,
                min: None,
                max: None,
            };
            result.perfdata = vec![
                sample("time", 250.0, "ms"),
                sample("/", 2.0, "MB"),
                sample("inodes", 12.0, "%"),
                sample("users", 3.0, ""),
            ];
        }
        metrics.record(&event);
        let text = text(&mut metrics, 2);
        let value = |label: &str, unit: &str| {
            let series = format!(
                r#"aegis_health_check_perfdata{{check="disk",label="{label}",service="host",unit="{unit}"}}"#
            );
            line(&text, &series).map(str::to_owned)
        };
        assert_eq!(value("time", "seconds").as_deref(), Some("0.25"));
        assert_eq!(value("/", "bytes").as_deref(), Some("2097152"));
        assert_eq!(value("inodes", "ratio").as_deref(), Some("0.12"));
        assert_eq!(value("users", "none").as_deref(), Some("3"));
    }

    #[test]
    fn alerts_are_counted_by_state_and_severity_and_changes_by_the_state_entered() {
        use crate::base::event::{AlertState::*, Notify};
        use crate::sinks::testing::alert;
        let mut metrics = Metrics::new();
        let deliveries = Deliveries::default();
        metrics.publish(&deliveries);
        (deliveries.notifications)
            .with_label_values(&["am@127.0.0.1:9093", "delivered"])
            .inc();
        let (critical, warning) = (Severity::Critical, Severity::Warning);
        for event in [
            alert("shop", "slow", warning, Pending, Notify::No, 10),
            alert("shop", "down", critical, Pending, Notify::No, 10),
            alert("shop", "down", critical, Firing, Notify::Transition, 20),
            alert("shop", "down", critical, Firing, Notify::Repeat, 30),
            alert("cart", "down", critical, Firing, Notify::Restated, 30),
        ] {
            metrics.record(&Event::Alert(event));
        }
        let text = text(&mut metrics, 40);
        let series = |name: &str| line(&text, name);
        let gauge = |service: &str, severity: &str, state: &str| {
            series(&format!(
                r#"aegis_alerts{{service="{service}",severity="{severity}",state="{state}"}}"#
            ))
        };
        assert_eq!(gauge("shop", "CRITICAL", "firing"), Some("1"));
        assert_eq!(gauge("shop", "CRITICAL", "pending"), Some("0"));
        assert_eq!(gauge("shop", "WARNING", "pending"), Some("1"));
        assert_eq!(gauge("cart", "CRITICAL", "firing"), Some("1"));
        let transitions = |service: &str, state: &str| {
            series(&format!(
                r#"aegis_alert_transitions_total{{alertname="down",service="{service}",state="{state}"}}"#
            ))
        };
        assert_eq!(transitions("shop", "pending"), Some("1"));
        assert_eq!(transitions("shop", "firing"), Some("1"));
        // Restated after a restart: it fired before, and was counted then.
        assert_eq!(transitions("cart", "firing"), None);
        assert_eq!(
            series(r#"aegis_notifications_total{result="delivered",sink="am@127.0.0.1:9093"}"#),
            Some("1")
        );

        metrics.record(&Event::Alert(alert(
            "shop",
            "down",
            critical,
            Resolved,
            Notify::Transition,
            50,
        )));
        let text = self::text(&mut metrics, 60);
        assert_eq!(
            line(
                &text,
                r#"aegis_alerts{service="shop",severity="CRITICAL",state="firing"}"#
            ),
            Some("0")
        );
        assert_eq!(
            line(
                &text,
                r#"aegis_alert_transitions_total{alertname="down",service="shop",state="resolved"}"#
            ),
            Some("1")
        );
        promtool_finds_nothing_to_say(&text);
    }

    /// promtool, from Debian's prometheus package, finds nothing to say of `metrics`
    /// (as tests/prometheus.rs checks the daemon's: the alert and delivery metrics
    /// need alerts, which only this test makes).
    fn promtool_finds_nothing_to_say(metrics: &str) {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut promtool = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("promtool runs (apt-get install prometheus)");
        let mut stdin = promtool.stdin.take().expect("piped");
        stdin
            .write_all(metrics.as_bytes())
            .expect("metrics given to promtool");
        drop(stdin);
        let checked = promtool.wait_with_output().expect("promtool ends");
        let said = String::from_utf8_lossy(&checked.stdout).into_owned()
            + &String::from_utf8_lossy(&checked.stderr);
        assert!(
            checked.status.success() && said.trim().is_empty(),
            "promtool: {said}"
        );
    }

    /// Metrics of `services` services with two checks each, every check with a result.
    fn populated(services: usize) -> Metrics {
        let mut metrics = Metrics::new();
        for n in 0..services {
            let service = format!("service-{n}");
            metrics.record(&result(&service, "http", Outcome::Up, 1));
            metrics.record(&result(&service, "tcp", Outcome::Down, 1));
        }
        metrics
    }

    #[test]
    fn a_thousand_services_render_well_formed() {
        let mut metrics = populated(1000);
        let text = text(&mut metrics, 2);
        let series = regex::Regex::new(
            r#"^[a-z_]+(\{([a-z_]+="[^"\\]*",)*[a-z_]+="[^"\\]*"\})? (-?[0-9.]+(e[+-]?[0-9]+)?|\+Inf|NaN)$"#,
        )
        .unwrap();
        for line in text.lines().filter(|line| !line.starts_with('#')) {
            assert!(series.is_match(line), "not a series: {line}");
        }
        let up = text
            .lines()
            .filter(|l| l.starts_with("aegis_service_up{"))
            .count();
        assert_eq!(up, 1000);
        let checks = text
            .lines()
            .filter(|l| l.starts_with("aegis_health_check_up{"))
            .count();
        assert_eq!(checks, 2000);
    }
}
