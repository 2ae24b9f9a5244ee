//! The `anomaly` stage: per service, signals (latency, error rate, throughput and
//! custom values) cut into slices of `detection_interval`, each closed slice judged
//! against its thresholds and its history, and an [`Anomaly`] event on every change
//! of state, with the evidence in a sentence.
//!
//! Samples come from probe results (latency only: a failed probe is not a failed user
//! request) and from `log_fields` stages (requests, their durations and errors, and
//! custom values). Each (service, signal) is a series: its open [`Slice`], its
//! [`History`] of judged values and its [`Detector`] ([`window`], [`detect`]).
//!
//! Time: while following, slices run on the wall clock (`now`, and a tick closes
//! slices that no sample closes). Under `run --once` a sample is placed by its line's
//! own time when it has one, so a day of log replays as that day; a slice closes when
//! a later sample arrives, and the one cut short by the end of the input is not judged.
//! The first slice of a series is never judged either: it began before its first
//! sample was seen, so its counts are partial.
//!
//! ```yaml
//! stages:
//!   anomalies:
//!     type: anomaly
//!     inputs: [shop.health, shop_requests]
//!     detection_interval: 30s
//!     history_size: 100
//!     thresholds:
//!       latency: [{service: shop, value: 500}]        # ms, at p99
//!       error_rate: [{service: shop, value: 0.05}]
//!       throughput: [{service: shop, value: 10}]      # requests/s, fires below
//! ```

pub mod detect;
mod explain;
pub mod window;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_norway::Value;

use self::detect::{Adaptive, Bounds, Cause, Detector, Direction, Floor, Sensitivity};
use self::window::{Aggregate, History, Reading, Slice};
use crate::base::component::Stage;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{
    Anomaly, Event, EventKind, Measure, Outcome, ProbeResult, Reference, Sample, Samples,
    ServiceName, Signal, SignalSlice, Unjudged,
};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};
use crate::base::text::list;

/// The most slices of history a series keeps: a bound on memory (8 bytes each).
pub const MAX_HISTORY: i64 = 100_000;

/// Configuration of an `anomaly` stage; also the body of the service-centric
/// `anomaly_detection` section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AnomalyConfig {
    /// The length of a slice.
    #[serde(default = "default_interval", with = "crate::base::duration")]
    pub detection_interval: Duration,
    /// How many past slices the adaptive baseline is learned from.
    #[serde(default = "default_history_size")]
    pub history_size: i64,
    /// Below this many requests in a slice, its error rate is not judged.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// The latency percentile judged, unless a threshold names its own.
    #[serde(default = "default_percentile")]
    pub percentile: f64,
    #[serde(default)]
    pub adaptive: AdaptiveConfig,
    /// Per signal (`latency`, `error_rate`, `throughput` or a custom signal's name),
    /// the thresholds of the services that have one.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<ThresholdConfig>>,
    /// How custom signals are read and which way they go wrong.
    #[serde(default)]
    pub signals: BTreeMap<String, SignalConfig>,
}

fn default_interval() -> Duration {
    Duration::from_secs(30)
}

fn default_history_size() -> i64 {
    100
}

fn default_min_requests() -> u64 {
    20
}

fn default_percentile() -> f64 {
    99.0
}

/// The adaptive detector's settings (docs/anomaly.md).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptiveConfig {
    /// Whether signals without a threshold are judged against their history.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub sensitivity: Sensitivity,
    /// Judged slices needed before the baseline may fire.
    #[serde(default = "default_min_history")]
    pub min_history: u32,
    /// Slices in a row back to normal that end an adaptive anomaly.
    #[serde(default = "default_resolve_after")]
    pub resolve_after: u32,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            enabled: true,
            sensitivity: Sensitivity::default(),
            min_history: default_min_history(),
            resolve_after: default_resolve_after(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_min_history() -> u32 {
    20
}

fn default_resolve_after() -> u32 {
    6
}

/// A threshold of one service's signal.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    pub service: String,
    /// The seed's form: the bound in the direction the signal goes wrong (a maximum
    /// for latency and error rate, a minimum for throughput).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Latency only: the percentile this service is judged at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentile: Option<f64>,
    /// Consecutive slices across the bound before it fires.
    #[serde(default = "one", rename = "for")]
    pub for_slices: u32,
    /// Whether the adaptive detector judges this signal too.
    #[serde(default)]
    pub adaptive: bool,
}

fn one() -> u32 {
    1
}

/// How a custom signal is read.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignalConfig {
    /// Which way it goes wrong: `up`, `down` or `both`. Default `up`.
    #[serde(default)]
    pub direction: Direction,
    /// How a slice's values make its value. Default `mean`.
    #[serde(default)]
    pub aggregate: Aggregate,
}

impl ComponentType for AnomalyConfig {
    const NAME: &'static str = "anomaly";
    const ACCEPTS: &'static [EventKind] = &[EventKind::ProbeResult, EventKind::Samples];
    const EMITS: &'static [EventKind] = &[EventKind::SignalSlice, EventKind::Anomaly];
    type Built = dyn Stage;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        // Threshold entries are decoded one by one, so that a bad entry does not hide
        // the others' mistakes.
        let mut options = options.clone();
        let thresholds = (options.as_mapping_mut()).and_then(|fields| fields.remove("thresholds"));
        let config: Option<AnomalyConfig> = diag.decode(&options, path);
        let thresholds = thresholds
            .map(|value| decode_thresholds(&value, &path.key("thresholds"), diag))
            .unwrap_or_default();
        let mut config = config?;
        config.thresholds = thresholds;
        config.check(path, diag);
        Some(config)
    }

    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Stage>> {
        Some(Box::new(AnomalyStage::new(self, cx.once)))
    }
}

/// The `thresholds` map, each entry decoded on its own; bad entries are reported and
/// left out (an entry decoded without its bad key would only draw more errors).
fn decode_thresholds(
    value: &Value,
    path: &KeyPath,
    diag: &mut Diagnostics,
) -> BTreeMap<String, Vec<ThresholdConfig>> {
    let Some(lists) = diag.decode::<BTreeMap<String, Vec<Value>>>(value, path) else {
        return BTreeMap::new();
    };
    (lists.into_iter())
        .map(|(signal, entries)| {
            let signal_path = path.key(signal.as_str());
            let decoded = (entries.iter().enumerate())
                .filter_map(|(i, entry)| {
                    let before = diag.error_count();
                    let decoded = diag.decode(entry, &signal_path.index(i));
                    decoded.filter(|_| diag.error_count() == before)
                })
                .collect();
            (signal, decoded)
        })
        .collect()
}

impl AnomalyConfig {
    /// Reports every value that is out of its range, at its place.
    fn check(&self, path: &KeyPath, diag: &mut Diagnostics) {
        if !(1..=MAX_HISTORY).contains(&self.history_size) {
            diag.error(
                &path.key("history_size"),
                format!(
                    "history_size is {}; expected a positive whole number of slices, at most {MAX_HISTORY}",
                    self.history_size
                ),
            );
        }
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            diag.error(
                &path.key("percentile"),
                format!(
                    "percentile is {}; expected a number above 0 and at most 100 (99 for p99)",
                    self.percentile
                ),
            );
        }
        // A history_size out of range has its own error above; comparing min_history
        // with it would only repeat it, at a key that may not even be written.
        if (1..=MAX_HISTORY).contains(&self.history_size)
            && i64::from(self.adaptive.min_history) > self.history_size
        {
            diag.error(
                &path.key("adaptive").key("min_history"),
                format!(
                    "min_history is {}{} but history_size is {}: the baseline could never be learned; expected a min_history of at most {}",
                    self.adaptive.min_history,
                    // Left out, it is not in the file: say where the number comes from.
                    if self.adaptive.min_history == default_min_history() {
                        " (the default)"
                    } else {
                        ""
                    },
                    self.history_size,
                    self.history_size
                ),
            );
        }
        if self.adaptive.resolve_after == 0 {
            diag.error(
                &path.key("adaptive").key("resolve_after"),
                "resolve_after is 0; expected the number of slices (1 or more) back to normal that end an anomaly",
            );
        }
        for name in self.signals.keys() {
            if Signal::BUILT_IN.contains(&name.as_str()) || !Signal::is_valid_name(name) {
                diag.error_at_key(
                    &path.key("signals").key(name.as_str()),
                    format!(
                        "`{name}` cannot name a custom signal; expected lower case letters, digits and `_`, starting with a letter, and none of {}",
                        list(&Signal::BUILT_IN)
                    ),
                );
            }
        }
        let thresholds_path = path.key("thresholds");
        for (signal, entries) in &self.thresholds {
            let signal_path = thresholds_path.key(signal.as_str());
            if !Signal::BUILT_IN.contains(&signal.as_str()) && !Signal::is_valid_name(signal) {
                diag.error_at_key(
                    &signal_path,
                    format!(
                        "`{signal}` is not a signal; expected {} or the name of a custom signal (lower case letters, digits and `_`)",
                        list(&Signal::BUILT_IN)
                    ),
                );
                continue;
            }
            let direction = self.direction(&Signal::named(signal));
            for (i, entry) in entries.iter().enumerate() {
                let entry_path = signal_path.index(i);
                // Named with the first, so that both places are found.
                if let Some(first) = (entries[..i].iter()).position(|e| e.service == entry.service)
                {
                    diag.error(
                        &entry_path.key("service"),
                        format!(
                            "service `{}` already has a {signal} threshold, at `{}`; give each service one",
                            entry.service,
                            signal_path.index(first)
                        ),
                    );
                }
                entry.check(signal, direction, &entry_path, diag);
            }
        }
    }

    /// Which way `signal` goes wrong.
    fn direction(&self, signal: &Signal) -> Direction {
        match signal {
            Signal::Latency | Signal::ErrorRate => Direction::Up,
            Signal::Throughput => Direction::Down,
            Signal::Custom(name) => self
                .signals
                .get(&**name)
                .map(|custom| custom.direction)
                .unwrap_or_default(),
        }
    }

    /// The services that have a threshold, with where each was written.
    pub fn threshold_services(&self, path: &KeyPath) -> Vec<(&str, &str, KeyPath)> {
        let mut services = Vec::new();
        for (signal, entries) in &self.thresholds {
            for (i, entry) in entries.iter().enumerate() {
                let at = path.key("thresholds").key(signal.as_str()).index(i);
                services.push((signal.as_str(), entry.service.as_str(), at));
            }
        }
        services
    }
}

impl ThresholdConfig {
    fn check(&self, signal: &str, direction: Direction, path: &KeyPath, diag: &mut Diagnostics) {
        let (range, unit): (Option<(f64, f64)>, &str) = match signal {
            "latency" => (Some((0.0, f64::INFINITY)), "milliseconds"),
            "error_rate" => (Some((0.0, 1.0)), "a fraction of requests, 0 to 1"),
            "throughput" => (Some((0.0, f64::INFINITY)), "requests per second"),
            _ => (None, "the signal's own unit"),
        };
        for (key, bound) in [("value", self.value), ("min", self.min), ("max", self.max)] {
            let Some(bound) = bound else { continue };
            let fits = match range {
                Some((low, high)) => bound.is_finite() && bound >= low && bound <= high,
                None => bound.is_finite(),
            };
            if !fits {
                let expected = match (signal, range) {
                    ("error_rate", _) => "between 0 and 1 (0.05 is 5 %)".to_owned(),
                    (_, Some(_)) => format!("a number of {unit}, 0 or more"),
                    _ => "a finite number".to_owned(),
                };
                diag.error(
                    &path.key(key),
                    format!("{signal} threshold is {bound}; expected {expected}"),
                );
            }
        }
        match (self.value, self.min, self.max) {
            (None, None, None) => diag.error(
                path,
                format!(
                    "a threshold needs `value` ({unit}), or `min` and/or `max`; found none of them"
                ),
            ),
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => diag.error(
                &path.key("value"),
                "give either `value` or `min`/`max`, not both",
            ),
            (Some(_), None, None) if direction == Direction::Both => diag.error(
                &path.key("value"),
                format!("`{signal}` goes wrong both ways (`direction: both`), so `value` says neither; give `min` and/or `max`"),
            ),
            (None, Some(min), Some(max)) if min > max => diag.error(
                &path.key("min"),
                format!("min {min} is above max {max}; expected min to be at most max"),
            ),
            _ => {}
        }
        if let Some(percentile) = self.percentile {
            if signal != "latency" {
                diag.error_at_key(
                    &path.key("percentile"),
                    format!("`percentile` applies to latency only, not to {signal}"),
                );
            } else if !(percentile > 0.0 && percentile <= 100.0) {
                diag.error(
                    &path.key("percentile"),
                    format!("percentile is {percentile}; expected a number above 0 and at most 100 (99 for p99)"),
                );
            }
        }
        if self.for_slices == 0 {
            diag.error(
                &path.key("for"),
                "for is 0; expected the number of consecutive slices (1 or more) before it fires",
            );
        }
    }

    /// The bounds in the metrics' units (latency in seconds).
    fn bounds(&self, signal: &Signal, direction: Direction) -> Bounds {
        let scale = if *signal == Signal::Latency {
            1e-3
        } else {
            1.0
        };
        let (mut min, mut max) = (self.min, self.max);
        if let Some(value) = self.value {
            match direction {
                Direction::Down => min = Some(value),
                _ => max = Some(value),
            }
        }
        Bounds {
            min: min.map(|min| min * scale),
            max: max.map(|max| max * scale),
            for_slices: self.for_slices,
        }
    }
}

/// A running `anomaly` stage.
pub struct AnomalyStage {
    config: AnomalyConfig,
    once: bool,
    interval: Duration,
    series: HashMap<(ServiceName, Signal), Series>,
}

/// One signal of one service.
struct Series {
    service: ServiceName,
    signal: Signal,
    reading: Reading,
    slice: Slice,
    /// The start of the open slice; `None` before the first sample.
    start: Option<SystemTime>,
    /// Whether the open slice is the first, begun before its first sample was seen.
    partial: bool,
    history: History,
    detector: Detector,
    /// The start of the current anomaly.
    anomalous_since: Option<SystemTime>,
}

impl AnomalyStage {
    pub fn new(config: &AnomalyConfig, once: bool) -> AnomalyStage {
        AnomalyStage {
            interval: config.detection_interval,
            config: config.clone(),
            once,
            series: HashMap::new(),
        }
    }

    /// Bytes held by every series (their histograms and histories), for the bench.
    pub fn heap_bytes(&self) -> usize {
        (self.series.values())
            .map(|series| {
                std::mem::size_of::<Series>()
                    + series.slice.heap_bytes()
                    + series.history.heap_bytes()
            })
            .sum()
    }

    /// The series of `signal` of `service`, made on its first sample.
    fn series(&mut self, service: &ServiceName, signal: Signal) -> &mut Series {
        let config = &self.config;
        self.series
            .entry((service.clone(), signal))
            .or_insert_with_key(|(service, signal)| Series::new(config, service, signal))
    }

    /// Places a sample at `time`: closes the slices it has moved past, then hands the
    /// open slice to `record`.
    fn record(
        &mut self,
        service: &ServiceName,
        signal: Signal,
        time: SystemTime,
        out: &mut Vec<Event>,
        record: impl FnOnce(&mut Slice),
    ) {
        let (interval, min_requests, history_size) = self.limits();
        let series = self.series(service, signal);
        series.advance(time, interval, min_requests, history_size, out);
        record(&mut series.slice);
    }

    fn limits(&self) -> (Duration, u64, usize) {
        (
            self.interval,
            self.config.min_requests,
            self.config.history_size as usize,
        )
    }

    fn on_probe(&mut self, result: &ProbeResult, now: SystemTime, out: &mut Vec<Event>) {
        // A refused connection or a script that would not start says nothing of how
        // fast the service answers; a timeout does (it is slow).
        let answered = result.outcome != Outcome::Down
            || result.reason == Some(crate::base::event::FailureReason::Timeout);
        if !answered {
            return;
        }
        let time = if self.once { result.at } else { now };
        let latency = result.latency;
        self.record(&result.service, Signal::Latency, time, out, |slice| {
            slice.record_duration(latency)
        });
    }

    /// Where a sample is placed: its line's time in a replay, `now` while following.
    fn place(&self, sample: &Sample, now: SystemTime) -> SystemTime {
        match sample.time {
            Some(time) if self.once => time,
            _ => now,
        }
    }

    fn on_samples(&mut self, samples: &Samples, now: SystemTime, out: &mut Vec<Event>) {
        let items = &samples.items;
        let mut i = 0;
        while i < items.len() {
            let time = self.place(&items[i], now);
            if let Measure::Value { signal, value } = &items[i].measure {
                let value = *value;
                let signal = Signal::Custom(signal.clone());
                self.record(&samples.service, signal, time, out, |slice| {
                    slice.record_value(value)
                });
                i += 1;
                continue;
            }
            // The requests placed at the same time as this one, up to the next custom
            // value: the whole block while following, a second's lines in a replay.
            let run = 1
                + (items[i + 1..].iter())
                    .take_while(|sample| {
                        matches!(sample.measure, Measure::Request { .. })
                            && self.place(sample, now) == time
                    })
                    .count();
            self.record_requests(&samples.service, time, &items[i..i + run], out);
            i += run;
        }
    }

    /// Records `run`, requests all placed at `time`, as recording them one by one
    /// would: only the first can move a series to `time` (and close its slice), the
    /// rest land in the same open slice. So each series is looked up and moved once
    /// per run rather than once per request, which is most of the cost of a request
    /// otherwise (hashing the service's name three times). The order of the events
    /// is kept: throughput's and error rate's closes, then latency's.
    fn record_requests(
        &mut self,
        service: &ServiceName,
        time: SystemTime,
        run: &[Sample],
        out: &mut Vec<Event>,
    ) {
        let (mut requests, mut errors, mut durations) = (0, 0, false);
        for sample in run {
            if let Measure::Request { error, duration } = sample.measure {
                requests += 1;
                errors += u64::from(error);
                durations |= duration.is_some();
            }
        }
        for signal in [Signal::Throughput, Signal::ErrorRate] {
            self.record(service, signal, time, out, |slice| {
                slice.record_requests(requests, errors)
            });
        }
        if durations {
            self.record(service, Signal::Latency, time, out, |slice| {
                for sample in run {
                    if let Measure::Request {
                        duration: Some(duration),
                        ..
                    } = sample.measure
                    {
                        slice.record_duration(duration);
                    }
                }
            });
        }
    }
}

impl Stage for AnomalyStage {
    fn on_event(&mut self, event: &Event, now: SystemTime, out: &mut Vec<Event>) {
        match event {
            Event::ProbeResult(result) => self.on_probe(result, now, out),
            Event::Samples(samples) => self.on_samples(samples, now, out),
            _ => {}
        }
    }

    /// While following, closes the slices the clock has moved past.
    fn on_tick(&mut self, now: SystemTime, out: &mut Vec<Event>) {
        let (interval, min_requests, history_size) = self.limits();
        for series in self.series.values_mut() {
            series.advance(now, interval, min_requests, history_size, out);
        }
    }

    /// A replay's clock is its samples' time: it has no ticks.
    fn tick_interval(&self) -> Option<Duration> {
        (!self.once)
            .then(|| (self.interval / 4).clamp(Duration::from_millis(50), Duration::from_secs(1)))
    }
}

impl Series {
    fn new(config: &AnomalyConfig, service: &ServiceName, signal: &Signal) -> Series {
        let direction = config.direction(signal);
        let threshold = (config.thresholds.get(signal.as_str()))
            .and_then(|entries| entries.iter().find(|t| *t.service == **service));
        let bounds = threshold.map(|t| t.bounds(signal, direction));
        let adaptive =
            (config.adaptive.enabled && threshold.is_none_or(|t| t.adaptive)).then_some(Adaptive {
                sensitivity: config.adaptive.sensitivity,
                min_history: config.adaptive.min_history as usize,
                resolve_after: config.adaptive.resolve_after,
            });
        let (slice, reading, floor) = match signal {
            Signal::Latency => {
                let percentile = threshold
                    .and_then(|t| t.percentile)
                    .unwrap_or(config.percentile);
                (Slice::latency(percentile), Reading::Own, Floor::Latency)
            }
            Signal::ErrorRate => (Slice::requests(), Reading::ErrorRate, Floor::ErrorRate),
            Signal::Throughput => (
                Slice::requests(),
                Reading::Throughput,
                Floor::Throughput {
                    slice_seconds: config.detection_interval.as_secs_f64(),
                },
            ),
            Signal::Custom(name) => {
                let aggregate = (config.signals.get(&**name))
                    .map(|custom| custom.aggregate)
                    .unwrap_or_default();
                (Slice::custom(aggregate), Reading::Own, Floor::Custom)
            }
        };
        Series {
            service: service.clone(),
            signal: signal.clone(),
            reading,
            slice,
            start: None,
            partial: true,
            history: History::new(config.history_size.clamp(1, MAX_HISTORY) as usize),
            detector: Detector::new(bounds, adaptive, direction, floor),
            anomalous_since: None,
        }
    }

    /// Moves the series to `time`: closes the open slice if `time` is past its end,
    /// and the empty slices between (at most a history's worth: after a longer gap
    /// the series starts over at `time`). A time before the open slice (a clock set
    /// back, lines out of order) stays in it.
    fn advance(
        &mut self,
        time: SystemTime,
        interval: Duration,
        min_requests: u64,
        history_size: usize,
        out: &mut Vec<Event>,
    ) {
        let Some(start) = self.start else {
            self.start = Some(align(time, interval));
            return;
        };
        if time < start + interval {
            return;
        }
        self.close(start, interval, min_requests, out);
        let mut next = start + interval;
        let mut gaps = 0;
        while next + interval <= time && gaps < history_size {
            self.close(next, interval, min_requests, out);
            next += interval;
            gaps += 1;
        }
        self.start = Some(align(time, interval));
    }

    /// Closes the slice that began at `start`: judges it, unless it is partial or
    /// has too little in it, and reports it.
    fn close(
        &mut self,
        start: SystemTime,
        interval: Duration,
        min_requests: u64,
        out: &mut Vec<Event>,
    ) {
        let closed = self.slice.close(self.reading, interval);
        let partial = std::mem::replace(&mut self.partial, false);
        let end = start + interval;
        let mut report = SignalSlice {
            service: self.service.clone(),
            signal: self.signal.clone(),
            at: end,
            value: closed.value,
            baseline: None,
            score: None,
            anomalous: self.anomalous_since.is_some(),
            unjudged: None,
        };
        let Some(value) = closed.value else {
            out.push(Event::SignalSlice(report));
            return;
        };
        if partial {
            report.unjudged = Some(Unjudged::FirstSlice);
            out.push(Event::SignalSlice(report));
            return;
        }
        if self.signal == Signal::ErrorRate && closed.count < min_requests {
            report.unjudged = Some(Unjudged::TooFewRequests);
            out.push(Event::SignalSlice(report));
            return;
        }
        let verdict = self.detector.judge(value, closed.count, &self.history);
        self.history.push(value);
        report.baseline = verdict.baseline.map(|b| b.median);
        report.score = verdict.score;
        report.anomalous = verdict.cause.is_some();
        out.push(Event::SignalSlice(report));
        let change = match (verdict.cause, self.anomalous_since) {
            (Some(_), None) => {
                self.anomalous_since = Some(start);
                true
            }
            (None, Some(_)) => true,
            _ => false,
        };
        if !change {
            return;
        }
        let reference = match (verdict.cause, self.detector.bounds(), verdict.baseline) {
            (Some(Cause::Score | Cause::Drift { .. }), _, Some(baseline))
            | (None, None, Some(baseline)) => Reference::Baseline {
                median: baseline.median,
                scale: baseline.scale,
            },
            (_, bounds, _) => Reference::Threshold {
                min: bounds.and_then(|b| b.min),
                max: bounds.and_then(|b| b.max),
            },
        };
        let started = self.anomalous_since.unwrap_or(start);
        let explanation = explain::sentence(&explain::Facts {
            service: &self.service,
            signal: &self.signal,
            percentile: self.slice.percentile(),
            closed: &closed,
            interval,
            verdict: &verdict,
            reference: &reference,
        });
        out.push(Event::Anomaly(Anomaly {
            service: self.service.clone(),
            signal: self.signal.clone(),
            at: end,
            started,
            changed: start,
            anomalous: verdict.cause.is_some(),
            observed: value,
            reference,
            score: verdict.score,
            explanation,
        }));
        if verdict.cause.is_none() {
            self.anomalous_since = None;
        }
    }
}

/// The start of the slice holding `time`: slices are aligned on multiples of the
/// interval since the epoch, so that every series' slices end together.
fn align(time: SystemTime, interval: Duration) -> SystemTime {
    let since = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let step = interval.as_nanos().max(1);
    let aligned = since - since % step;
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(aligned).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests;
