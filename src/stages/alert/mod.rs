//! The `alert` stage: rules turn health check results, log pattern matches and
//! anomalies into alerts, each alert lives through pending, firing and resolved, and
//! an [`Alert`](crate::base::event::Alert) event says each change and whether
//! receivers are to be told ([`Notify`](crate::base::event::Notify)).
//!
//! This stage owns the timing of notifications: a firing alert is told once
//! (`Transition`), again every `repeat_interval` (`Repeat`), and its resolve once;
//! pending alerts and resolves of alerts that never fired are `No`. Delivering them,
//! grouping them and remembering what each receiver was told is the notifiers' work
//! (the `webhook` and `alertmanager` sinks), not this stage's.
//!
//! The rules ([`rules`]) come from the defaults (unless `default_rules: false`) and
//! the configuration; one alert's life is [`state`], its annotations are
//! [`template`]s. With `state_dir`, the alerts are saved in `alerts.json` once a
//! batch that changed them ([`store`]), and what the stage emits waits for that save
//! (a notification sent before it, then a kill, would be sent again after the
//! restart); they are restored when the stage is built: the first tick then
//! restates each firing alert, and each resolved within the last 15 minutes
//! (`Restated`), and they go on where they were.
//!
//! Time: `now` while following, ticked every second (quiet periods, durations held,
//! repeats, flap release). Under `run --once` the events' own times are the clock and
//! no state is read or saved: a replay must not disturb a daemon's state.
//!
//! Anomalies resolve on the anomaly stage's `Anomaly` event that says normal, or on a
//! judged `SignalSlice` that is not anomalous: after a restart, the anomaly stage
//! starts afresh and never says "normal again" of an anomaly it did not see begin.
//!
//! ```yaml
//! stages:
//!   alerts:
//!     type: alert
//!     inputs: [shop.health, shop_patterns, anomaly]
//!     state_dir: state
//!     repeat_interval: 4h
//!     rules:
//!       - name: PaymentsDown
//!         on: probe
//!         services: [shop]
//!         checks: [payments]
//!         for: 2
//!         labels: { team: payments }
//!         annotations:
//!           summary: "{service}: payments are down ({detail})"
//! ```

pub mod rules;
pub mod state;
pub mod store;
pub mod template;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use serde_norway::Value;

use self::rules::{On, Rule, RuleConfig};
use self::state::{Entry, FlapDamping};
use self::store::{FILE_NAME, Saved, SavedAlert};
use self::template::{Evidence, cut_line};
use crate::base::component::Stage;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{
    Anomaly, Change, Event, EventKind, Lifecycle, LogMatch, ProbeResult, ServiceName, Severity,
    Signal,
};
use crate::base::key_path::{KeyPath, Segment};
use crate::base::registry::{BuildContext, ComponentType};
use crate::base::state_file::{StateFile, StateWriter};

/// The stage's option keys: what the service form's `alerting:` section hands it.
pub const KEYS: &[&str] = &[
    "state_dir",
    "repeat_interval",
    "default_rules",
    "rules",
    "flap_damping",
];

/// How often the stage looks at the clock while following.
const TICK_INTERVAL: Duration = Duration::from_secs(1);

/// Configuration of an `alert` stage; also the body of the service form's `alerting:`
/// section (its keys in [`KEYS`]).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertConfig {
    /// Where alert state is saved, to survive restarts; relative to the
    /// configuration's folder. Without it, state lives in memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
    /// A firing alert is told again after this long. Default 4 h.
    #[serde(default = "default_repeat_interval", with = "crate::base::duration")]
    pub repeat_interval: Duration,
    /// Whether the default rules apply (a written rule of the same name replaces one).
    #[serde(default = "yes")]
    pub default_rules: bool,
    /// Rules written in the configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleConfig>,
    #[serde(default)]
    pub flap_damping: FlapDamping,
    /// The rules in force, compiled when decoded.
    #[serde(skip)]
    compiled: Arc<Vec<Rule>>,
    /// Where the options were written, for problems found when building.
    #[serde(skip)]
    origin: KeyPath,
}

fn default_repeat_interval() -> Duration {
    Duration::from_secs(4 * 3600)
}

fn yes() -> bool {
    true
}

impl ComponentType for AlertConfig {
    const NAME: &'static str = "alert";
    const ACCEPTS: &'static [EventKind] = &[
        EventKind::ProbeResult,
        EventKind::LogMatch,
        EventKind::Anomaly,
        EventKind::SignalSlice,
        EventKind::Lifecycle,
    ];
    const EMITS: &'static [EventKind] = &[EventKind::Alert];
    type Built = dyn Stage;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        // Rules are decoded one by one, so that a bad rule hides nothing of another.
        let mut options = options.clone();
        let rules = (options.as_mapping_mut()).and_then(|fields| fields.remove("rules"));
        let config: Option<AlertConfig> = diag.decode(&options, path);
        let rules_path = path.key("rules");
        let written = rules
            .map(|value| decode_rules(&value, &rules_path, diag))
            .unwrap_or_default();
        let mut config = config?;
        config.origin = path.clone();
        config.check(path, diag);
        config.compiled = Arc::new(config.compile(&written, &rules_path, diag));
        config.rules = written.into_iter().map(|(_, rule)| rule).collect();
        Some(config)
    }

    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Stage>> {
        let mut stage = AlertStage::new(self, cx.once);
        // A replay has no state to keep; a check must not touch the daemon's.
        if let (Some(dir), false) = (&self.state_dir, cx.once || cx.checking) {
            let file = StateFile::new(&crate::base::paths::resolve(cx.base, dir), FILE_NAME);
            let saved = file.load::<Saved>().unwrap_or_default();
            match file.writer() {
                Ok(writer) => stage.restore(saved, writer),
                Err(err) => {
                    cx.diag.error(
                        &self.origin.key("state_dir"),
                        format!("cannot start the thread that saves alert state: {err}"),
                    );
                    return None;
                }
            }
        }
        Some(Box::new(stage))
    }
}

/// The `rules` list, each entry decoded on its own, with its index; bad entries are
/// reported and left out.
fn decode_rules(value: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Vec<(usize, RuleConfig)> {
    let Some(entries) = diag.decode::<Vec<Value>>(value, path) else {
        return Vec::new();
    };
    (entries.iter().enumerate())
        .filter_map(|(i, entry)| {
            let before = diag.error_count();
            let decoded: Option<RuleConfig> = diag.decode(entry, &path.index(i));
            decoded
                .filter(|_| diag.error_count() == before)
                .map(|rule| (i, rule))
        })
        .collect()
}

impl AlertConfig {
    /// Reports the options out of their range.
    fn check(&self, path: &KeyPath, diag: &mut Diagnostics) {
        if self.flap_damping.max_changes < 2 {
            diag.error(
                &path.key("flap_damping").key("max_changes"),
                format!(
                    "max_changes is {}; expected 2 or more changes (a firing and its resolve are two)",
                    self.flap_damping.max_changes
                ),
            );
        }
    }

    /// The rules in force: the defaults not replaced, then the written ones; each
    /// written rule's problems reported where it was written.
    fn compile(
        &self,
        written: &[(usize, RuleConfig)],
        path: &KeyPath,
        diag: &mut Diagnostics,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        if self.default_rules {
            for default in rules::defaults() {
                if written.iter().any(|(_, rule)| rule.name == default.name) {
                    continue;
                }
                let rule = default
                    .compile(self.repeat_interval, self.flap_damping)
                    .expect("the default rules compile (a unit test checks)");
                rules.push(rule);
            }
        }
        for (n, (i, config)) in written.iter().enumerate() {
            let rule_path = path.index(*i);
            if let Some((first, _)) = written[..n].iter().find(|(_, r)| r.name == config.name) {
                diag.error(
                    &rule_path.key("name"),
                    format!(
                        "rule name `{}` is already used by `{}`; names must be unique",
                        config.name,
                        path.index(*first)
                    ),
                );
            }
            match config.compile(self.repeat_interval, self.flap_damping) {
                Ok(rule) => rules.push(rule),
                Err(problems) => {
                    for problem in problems {
                        let mut at = rule_path.clone();
                        for segment in problem.at {
                            at = match segment {
                                Segment::Key(key) => at.key(key),
                                Segment::Index(index) => at.index(index),
                            };
                        }
                        if problem.at_key {
                            diag.error_at_key(&at, problem.message);
                        } else {
                            diag.error(&at, problem.message);
                        }
                    }
                }
            }
        }
        rules
    }
}

/// What identifies an alert within the stage: its rule, service, cause and severity
/// (from which its labels, and so its fingerprint, follow). Cheaper to hash than the
/// labels, and made from the event's shared names without copying them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct AlertKey {
    rule: usize,
    service: ServiceName,
    cause: Arc<str>,
    severity: Severity,
}

/// A running `alert` stage.
pub struct AlertStage {
    rules: Arc<Vec<Rule>>,
    flap: FlapDamping,
    once: bool,
    /// A replay's clock: the latest event time seen.
    clock: SystemTime,
    /// A replay's last tick, on its clock.
    ticked: SystemTime,
    alerts: HashMap<AlertKey, Entry>,
    /// Restored alerts whose rule is no longer configured: resolved or restated at
    /// the first tick, then forgotten.
    orphans: Vec<Entry>,
    /// Restored alerts wait to be restated.
    restating: bool,
    /// Something worth saving changed since the last save.
    changed: bool,
    writer: Option<StateWriter>,
}

impl AlertStage {
    pub fn new(config: &AlertConfig, once: bool) -> AlertStage {
        AlertStage {
            rules: Arc::clone(&config.compiled),
            flap: config.flap_damping,
            once,
            clock: UNIX_EPOCH,
            ticked: UNIX_EPOCH,
            alerts: HashMap::new(),
            orphans: Vec::new(),
            restating: false,
            changed: false,
            writer: None,
        }
    }

    /// Takes the saved alerts back, and saves from now on through `writer`.
    fn restore(&mut self, saved: Saved, writer: StateWriter) {
        for alert in saved.alerts {
            let rule = (self.rules.iter()).position(|rule| {
                *rule.name == alert.rule && alert.labels.contains_key(rule.on.cause_label())
            });
            let entry = alert.into_entry();
            match rule {
                Some(rule) => {
                    let key = AlertKey {
                        rule,
                        service: entry.service.clone(),
                        cause: entry.cause.clone(),
                        severity: entry.severity,
                    };
                    self.alerts.insert(key, entry);
                }
                None => self.orphans.push(entry),
            }
        }
        self.restating = !self.alerts.is_empty() || !self.orphans.is_empty();
        self.writer = Some(writer);
    }

    /// How many alerts it holds (pending, firing, resolved lately): for the bench.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// The time to act at: `now` while following, the events' own in a replay.
    fn clock(&mut self, event: &Event, now: SystemTime) -> SystemTime {
        if !self.once {
            return now;
        }
        let at = match event {
            Event::ProbeResult(result) => result.at,
            Event::LogMatch(matched) => matched.at,
            Event::Anomaly(anomaly) => anomaly.at,
            Event::SignalSlice(slice) => slice.at,
            _ => self.clock,
        };
        self.clock = self.clock.max(at);
        self.clock
    }

    /// After a restart, tells what was firing or lately resolved, once.
    fn restate(&mut self, now: SystemTime, out: &mut Vec<Event>) {
        if !std::mem::take(&mut self.restating) {
            return;
        }
        for (key, entry) in &mut self.alerts {
            if let Some(told) = entry.life.restated(now) {
                out.push(entry.event(Some(&self.rules[key.rule]), &self.flap, told, now));
            }
        }
        // Nothing would ever clear an alert whose rule is gone: it resolves.
        for mut entry in std::mem::take(&mut self.orphans) {
            if let Some(told) = entry.life.retire(now) {
                out.push(entry.event(None, &self.flap, told, now));
            }
        }
        self.changed = true;
    }

    fn on_probe(&mut self, result: &ProbeResult, now: SystemTime, out: &mut Vec<Event>) {
        let rules = Arc::clone(&self.rules);
        for (index, rule) in rules.iter().enumerate() {
            if rule.on != On::Probe
                || !rule.services.admits(&result.service)
                || !rule.causes.admits(&result.check)
            {
                continue;
            }
            let key = AlertKey {
                rule: index,
                service: result.service.clone(),
                cause: result.check.clone(),
                severity: rule.severity.unwrap_or(Severity::Critical),
            };
            if !rule.outcomes.contains(&result.outcome) {
                self.good(&key, rule, now, out);
                continue;
            }
            self.hit(key, rule, now, out, |evidence| {
                *evidence = Some(Evidence::Probe {
                    kind: result.kind,
                    outcome: result.outcome,
                    detail: result.detail.clone(),
                    attempts: result.attempts,
                    latency: result.latency,
                    status: result.status.clone(),
                    reason: result.reason,
                })
            });
        }
    }

    fn on_match(&mut self, matched: &LogMatch, now: SystemTime, out: &mut Vec<Event>) {
        let rules = Arc::clone(&self.rules);
        for (index, rule) in rules.iter().enumerate() {
            if rule.on != On::LogMatch
                || matched.severity < rule.min_severity
                || !rule.services.admits(&matched.service)
                || !rule.causes.admits(&matched.pattern)
            {
                continue;
            }
            let key = AlertKey {
                rule: index,
                service: matched.service.clone(),
                cause: matched.pattern.clone(),
                severity: rule.severity.unwrap_or(matched.severity),
            };
            self.hit(key, rule, now, out, |evidence| match evidence {
                // The usual case, a pattern that matched before: its line's buffer
                // is reused.
                Some(Evidence::Log {
                    path,
                    line,
                    description,
                }) => {
                    path.clone_from(&matched.path);
                    cut_line(&matched.line, line);
                    description.clone_from(&matched.description);
                }
                _ => {
                    let mut line = String::new();
                    cut_line(&matched.line, &mut line);
                    *evidence = Some(Evidence::Log {
                        path: matched.path.clone(),
                        line,
                        description: matched.description.clone(),
                    });
                }
            });
        }
    }

    /// An anomaly begins (`anomaly`), or `signal` is normal again (`None`: an
    /// anomaly that ends, or a judged slice that is not anomalous).
    fn on_signal(
        &mut self,
        service: &ServiceName,
        signal: &Signal,
        anomaly: Option<&Anomaly>,
        now: SystemTime,
        out: &mut Vec<Event>,
    ) {
        let rules = Arc::clone(&self.rules);
        let cause: Arc<str> = match signal {
            Signal::Custom(name) => name.clone(),
            other => other.as_str().into(),
        };
        for (index, rule) in rules.iter().enumerate() {
            if rule.on != On::Anomaly
                || !rule.services.admits(service)
                || !rule.causes.admits(&cause)
            {
                continue;
            }
            let key = AlertKey {
                rule: index,
                service: service.clone(),
                cause: cause.clone(),
                severity: rule.severity.unwrap_or(Severity::Warning),
            };
            let Some(anomaly) = anomaly else {
                self.good(&key, rule, now, out);
                continue;
            };
            self.hit(key, rule, now, out, |evidence| {
                *evidence = Some(Evidence::Anomaly {
                    explanation: anomaly.explanation.clone(),
                    observed: anomaly.observed,
                    score: anomaly.score,
                })
            });
        }
    }

    /// A supervised process given up on is a hit; its start (after a reload or a
    /// restart of Aegis) clears it.
    fn on_lifecycle(&mut self, life: &Lifecycle, now: SystemTime, out: &mut Vec<Event>) {
        let (restarts, within) = match life.change {
            Change::GaveUp { restarts, within } => (restarts, within),
            Change::Started { .. } => (0, Duration::ZERO),
            Change::Exited { .. } | Change::Restarting { .. } => return,
        };
        let rules = Arc::clone(&self.rules);
        for (index, rule) in rules.iter().enumerate() {
            if rule.on != On::Process || !rule.services.admits(&life.service) {
                continue;
            }
            let key = AlertKey {
                rule: index,
                service: life.service.clone(),
                cause: life.service.clone(),
                severity: rule.severity.unwrap_or(Severity::Critical),
            };
            if restarts == 0 {
                self.good(&key, rule, now, out);
                continue;
            }
            self.hit(key, rule, now, out, |evidence| {
                *evidence = Some(Evidence::Process { restarts, within })
            });
        }
    }

    /// A hit for the alert `key` (made on its first), then what follows from it.
    fn hit(
        &mut self,
        key: AlertKey,
        rule: &Rule,
        now: SystemTime,
        out: &mut Vec<Event>,
        update: impl FnOnce(&mut Option<Evidence>),
    ) {
        let entry = self.alerts.entry(key).or_insert_with_key(|key| {
            Entry::new(
                rule,
                key.service.clone(),
                key.cause.clone(),
                key.severity,
                now,
            )
        });
        entry.hit(now, update);
        self.changed |= step(entry, rule, &self.flap, now, out);
    }

    /// A good result for the alert `key`, if there is one.
    fn good(&mut self, key: &AlertKey, rule: &Rule, now: SystemTime, out: &mut Vec<Event>) {
        let Some(entry) = self.alerts.get_mut(key) else {
            return;
        };
        entry.life.condition.good(now, rule.resolve_after);
        self.changed |= step(entry, rule, &self.flap, now, out);
        if entry.life.is_spent(now) {
            self.alerts.remove(key);
        }
    }

    /// What the clock alone changes: quiet periods, durations held, repeats, flap
    /// release; alerts with nothing left to keep are forgotten.
    fn advance(&mut self, now: SystemTime, out: &mut Vec<Event>) {
        let (rules, flap, changed) = (&self.rules, &self.flap, &mut self.changed);
        self.alerts.retain(|key, entry| {
            let rule = &rules[key.rule];
            if let Some(quiet) = rule.quiet {
                entry.life.condition.expire(now, quiet);
            }
            *changed |= step(entry, rule, flap, now, out);
            !entry.life.is_spent(now)
        });
    }

    /// Offers the alerts to the writer if something changed.
    fn save(&mut self) {
        if !std::mem::take(&mut self.changed) {
            return;
        }
        if let Some(writer) = &self.writer {
            let alerts = self.alerts.values().map(SavedAlert::of).collect();
            writer.offer(&Saved { alerts });
        }
    }
}

/// Steps `entry`'s life and emits what it tells; whether it told anything.
fn step(
    entry: &mut Entry,
    rule: &Rule,
    flap: &FlapDamping,
    now: SystemTime,
    out: &mut Vec<Event>,
) -> bool {
    let Some(told) = entry.life.step(&rule.timing, now) else {
        return false;
    };
    out.push(entry.event(Some(rule), flap, told, now));
    true
}

impl Stage for AlertStage {
    fn on_event(&mut self, event: &Event, now: SystemTime, out: &mut Vec<Event>) {
        let now = self.clock(event, now);
        self.restate(now, out);
        // A replay ticks on its events' clock, as often as the daemon would: looking
        // at every alert on every event would make a replay quadratic.
        if self.once && now >= self.ticked + TICK_INTERVAL {
            self.ticked = now;
            self.advance(now, out);
        }
        match event {
            Event::ProbeResult(result) => self.on_probe(result, now, out),
            Event::LogMatch(matched) => self.on_match(matched, now, out),
            Event::Anomaly(anomaly) => {
                let begins = anomaly.anomalous.then_some(anomaly);
                self.on_signal(&anomaly.service, &anomaly.signal, begins, now, out)
            }
            Event::SignalSlice(slice) if !slice.anomalous && slice.unjudged.is_none() => {
                self.on_signal(&slice.service, &slice.signal, None, now, out)
            }
            Event::Lifecycle(life) => self.on_lifecycle(life, now, out),
            _ => {}
        }
    }

    fn on_batch_end(&mut self, _now: SystemTime) {
        self.save();
    }

    /// What a receiver is told must already be in the state file: written ahead.
    fn before_sending(&self) -> Option<BoxFuture<'static, ()>> {
        self.writer.as_ref().map(StateWriter::written)
    }

    fn on_tick(&mut self, now: SystemTime, out: &mut Vec<Event>) {
        self.restate(now, out);
        self.advance(now, out);
        self.save();
    }

    /// A replay's clock is its events' time: it has no ticks.
    fn tick_interval(&self) -> Option<Duration> {
        (!self.once).then_some(TICK_INTERVAL)
    }
}

#[cfg(test)]
mod tests;
