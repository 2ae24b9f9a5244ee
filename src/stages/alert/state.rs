//! One alert's life: whether its condition holds ([`Condition`], with the rule's
//! hysteresis), where it stands ([`Phase`]: pending, firing, resolved), when receivers
//! are to be told (a change of state, a repeat), and flap damping. Each input (a hit,
//! a good result, the clock) updates the condition, then [`Lifecycle::step`] moves the
//! phase and says what to tell, if anything.
//!
//! Hysteresis comes in three forms: `for` (hits in a row, or a duration held, before
//! it fires), the rule's way of clearing (probe: `resolve_after` good results in a
//! row; log: a quiet period; anomaly: a normal signal), and `keep_firing_for` after
//! the condition clears. Flap damping counts the alert's changes between firing and
//! resolved within a window: a resolve that would pass `max_changes` is withheld, the
//! alert stays firing marked flapping, and it is released once its condition has not
//! changed for `stable_for`.
//!
//! Everything here is plain data over times given by the caller, serialisable as it
//! is, so that the saved state (`store`) is this state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::rules::{Hold, Rule};
use super::store::stamp;
use super::template::{Evidence, Facts};
use crate::base::event::{
    Alert, AlertState, Event, Fingerprint, LabelSet, Notify, ServiceName, Severity,
};

/// How long a resolved alert is kept, and restated after a restart: a receiver that
/// was down when it resolved still hears of it.
pub const RESTATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Flap damping (`flap_damping:`).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FlapDamping {
    /// The window changes are counted over.
    #[serde(default = "default_window", with = "crate::base::duration")]
    pub window: Duration,
    /// Changes (fired, resolved) allowed within the window before a resolve is held.
    #[serde(default = "default_max_changes")]
    pub max_changes: u32,
    /// How long the condition must stay unchanged before a held alert is released.
    #[serde(default = "default_stable_for", with = "crate::base::duration")]
    pub stable_for: Duration,
}

fn default_window() -> Duration {
    Duration::from_secs(3600)
}

fn default_max_changes() -> u32 {
    6
}

fn default_stable_for() -> Duration {
    Duration::from_secs(15 * 60)
}

impl Default for FlapDamping {
    fn default() -> Self {
        FlapDamping {
            window: default_window(),
            max_changes: default_max_changes(),
            stable_for: default_stable_for(),
        }
    }
}

/// The times a rule's alerts live by.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub hold: Hold,
    pub keep_firing_for: Duration,
    pub repeat_interval: Duration,
    pub flap: FlapDamping,
}

/// Whether an alert's condition holds, with the counts that decide it.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Condition {
    /// Holds now, hysteresis applied.
    pub holds: bool,
    /// When it last began to hold.
    #[serde(with = "stamp")]
    pub since: SystemTime,
    /// Hits since it began to hold; for probes, in a row (a good result resets it).
    pub hits: u32,
    /// Good results in a row.
    pub goods: u32,
    #[serde(with = "stamp")]
    pub last_hit: SystemTime,
    /// When `holds` last changed: what flap damping calls stable.
    #[serde(with = "stamp")]
    pub changed: SystemTime,
}

impl Condition {
    fn new(now: SystemTime) -> Condition {
        Condition {
            holds: false,
            since: now,
            hits: 0,
            goods: 0,
            last_hit: now,
            changed: now,
        }
    }

    /// A failing result, a match, an anomalous signal.
    pub fn hit(&mut self, now: SystemTime) {
        if !self.holds {
            self.holds = true;
            self.since = now;
            self.hits = 0;
            self.changed = now;
        }
        self.hits = self.hits.saturating_add(1);
        self.goods = 0;
        self.last_hit = now;
    }

    /// A good result (a probe's) or a normal signal: `resolve_after` in a row clear
    /// the condition.
    pub fn good(&mut self, now: SystemTime, resolve_after: u32) {
        self.hits = 0;
        self.goods = self.goods.saturating_add(1);
        if self.holds && self.goods >= resolve_after {
            self.holds = false;
            self.changed = now;
        }
    }

    /// Clears the condition once `quiet` has passed since the last hit.
    pub fn expire(&mut self, now: SystemTime, quiet: Duration) {
        if self.holds && now >= self.last_hit + quiet {
            self.holds = false;
            self.hits = 0;
            self.changed = now;
        }
    }

    /// Whether it has held as long as `hold` asks.
    fn due(&self, hold: Hold, now: SystemTime) -> bool {
        self.holds
            && match hold {
                Hold::Events(count) => self.hits >= count,
                Hold::Lasting(duration) => now >= self.since + duration,
            }
    }
}

/// Where an alert stands.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Phase {
    /// Neither: its condition does not hold, and it is kept only for its flap
    /// history.
    Quiet,
    Pending {
        #[serde(with = "stamp")]
        since: SystemTime,
    },
    Firing {
        #[serde(with = "stamp")]
        since: SystemTime,
        /// When its condition cleared, while `keep_firing_for` runs.
        #[serde(with = "stamp::option")]
        cleared: Option<SystemTime>,
    },
    Resolved {
        #[serde(with = "stamp")]
        started: SystemTime,
        #[serde(with = "stamp")]
        ended: SystemTime,
    },
}

/// What to tell of an alert: the fields of its [`Alert`] event that its life decides.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Told {
    pub state: AlertState,
    pub started: SystemTime,
    pub ended: Option<SystemTime>,
    pub notify: Notify,
}

impl Told {
    fn firing(since: SystemTime, notify: Notify) -> Told {
        Told {
            state: AlertState::Firing,
            started: since,
            ended: None,
            notify,
        }
    }

    fn resolved(started: SystemTime, ended: SystemTime, notify: Notify) -> Told {
        Told {
            state: AlertState::Resolved,
            started,
            ended: Some(ended),
            notify,
        }
    }
}

/// An alert's condition, phase, notifications and flap history.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct Lifecycle {
    pub condition: Condition,
    pub phase: Phase,
    /// When receivers were last told that it fires (its firing or a repeat).
    #[serde(with = "stamp::option")]
    pub last_notified: Option<SystemTime>,
    /// Its changes between firing and resolved within the flap window.
    #[serde(with = "stamp::list")]
    pub changes: VecDeque<SystemTime>,
    /// Held firing by flap damping.
    pub flapping: bool,
}

impl Lifecycle {
    pub fn new(now: SystemTime) -> Lifecycle {
        Lifecycle {
            condition: Condition::new(now),
            phase: Phase::Quiet,
            last_notified: None,
            changes: VecDeque::new(),
            flapping: false,
        }
    }

    /// Moves the phase as the condition and the clock say; what to tell, if anything.
    pub fn step(&mut self, timing: &Timing, now: SystemTime) -> Option<Told> {
        if let Some(start) = now.checked_sub(timing.flap.window) {
            while self.changes.front().is_some_and(|&change| change < start) {
                self.changes.pop_front();
            }
        }
        let holds = self.condition.holds;
        let due = self.condition.due(timing.hold, now);
        match self.phase {
            Phase::Quiet | Phase::Resolved { .. } if due => Some(self.fire(now)),
            Phase::Quiet | Phase::Resolved { .. } if holds => {
                let since = self.condition.since;
                self.phase = Phase::Pending { since };
                Some(Told {
                    state: AlertState::Pending,
                    started: since,
                    ended: None,
                    notify: Notify::No,
                })
            }
            Phase::Quiet | Phase::Resolved { .. } => None,
            Phase::Pending { .. } if due => Some(self.fire(now)),
            Phase::Pending { since } if !holds => {
                // It never fired: nobody was told, nobody is told it is over.
                self.phase = Phase::Quiet;
                Some(Told::resolved(since, now, Notify::No))
            }
            Phase::Pending { .. } => None,
            Phase::Firing { since, .. } if self.flapping => {
                if now < self.condition.changed + timing.flap.stable_for {
                    return self.repeat(since, timing, now);
                }
                self.flapping = false;
                if holds {
                    Some(Told::firing(since, Notify::No))
                } else {
                    Some(self.resolve(since, now))
                }
            }
            Phase::Firing { since, .. } if holds => {
                self.phase = Phase::Firing {
                    since,
                    cleared: None,
                };
                self.repeat(since, timing, now)
            }
            Phase::Firing { since, cleared } => {
                let cleared = cleared.unwrap_or(now);
                self.phase = Phase::Firing {
                    since,
                    cleared: Some(cleared),
                };
                if now < cleared + timing.keep_firing_for {
                    return self.repeat(since, timing, now);
                }
                if self.changes.len() >= timing.flap.max_changes as usize {
                    self.flapping = true;
                    return Some(Told::firing(since, Notify::No));
                }
                Some(self.resolve(since, now))
            }
        }
    }

    fn fire(&mut self, now: SystemTime) -> Told {
        self.phase = Phase::Firing {
            since: now,
            cleared: None,
        };
        self.changes.push_back(now);
        self.last_notified = Some(now);
        Told::firing(now, Notify::Transition)
    }

    fn resolve(&mut self, since: SystemTime, now: SystemTime) -> Told {
        self.phase = Phase::Resolved {
            started: since,
            ended: now,
        };
        self.changes.push_back(now);
        Told::resolved(since, now, Notify::Transition)
    }

    fn repeat(&mut self, since: SystemTime, timing: &Timing, now: SystemTime) -> Option<Told> {
        let last = self.last_notified?;
        if now < last + timing.repeat_interval {
            return None;
        }
        self.last_notified = Some(now);
        Some(Told::firing(since, Notify::Repeat))
    }

    /// What a restart tells of it: that it fires, or that it resolved lately.
    pub fn restated(&self, now: SystemTime) -> Option<Told> {
        match self.phase {
            Phase::Firing { since, .. } => Some(Told::firing(since, Notify::Restated)),
            Phase::Resolved { started, ended } if now < ended + RESTATE_WINDOW => {
                Some(Told::resolved(started, ended, Notify::Restated))
            }
            _ => None,
        }
    }

    /// Its rule is gone from the configuration, so nothing will clear it: a firing
    /// alert resolves now, one resolved lately is restated.
    pub fn retire(&mut self, now: SystemTime) -> Option<Told> {
        match self.phase {
            Phase::Firing { since, .. } => Some(self.resolve(since, now)),
            _ => self.restated(now),
        }
    }

    /// Whether nothing of it is worth keeping: not pending or firing, not resolved
    /// lately, no flap history in the window (as of the last step).
    pub fn is_spent(&self, now: SystemTime) -> bool {
        self.changes.is_empty()
            && match self.phase {
                Phase::Quiet => true,
                Phase::Resolved { ended, .. } => now >= ended + RESTATE_WINDOW,
                Phase::Pending { .. } | Phase::Firing { .. } => false,
            }
    }
}

/// One alert: who it is, what it says, and its life.
pub struct Entry {
    pub rule: Arc<str>,
    pub service: ServiceName,
    /// The check, pattern or signal.
    pub cause: Arc<str>,
    pub severity: Severity,
    pub fingerprint: Fingerprint,
    pub labels: Arc<LabelSet>,
    /// As last told; rendered anew from `evidence` when it is told again.
    pub annotations: Arc<LabelSet>,
    /// What its last hit said; `None` after a restart until the next hit.
    evidence: Option<Evidence>,
    /// The condition's hits when the evidence came.
    count: u32,
    /// The annotations are older than the evidence.
    stale: bool,
    pub life: Lifecycle,
}

impl Entry {
    pub fn new(
        rule: &Rule,
        service: ServiceName,
        cause: Arc<str>,
        severity: Severity,
        now: SystemTime,
    ) -> Entry {
        let labels = rule.labels(&service, &cause, severity);
        Entry {
            rule: rule.name.clone(),
            fingerprint: Fingerprint::of(&labels),
            labels: Arc::new(labels),
            annotations: Arc::default(),
            service,
            cause,
            severity,
            evidence: None,
            count: 0,
            stale: true,
            life: Lifecycle::new(now),
        }
    }

    /// An entry as saved before a restart.
    pub fn restored(
        rule: Arc<str>,
        service: ServiceName,
        cause: Arc<str>,
        severity: Severity,
        labels: LabelSet,
        annotations: LabelSet,
        life: Lifecycle,
    ) -> Entry {
        Entry {
            rule,
            service,
            cause,
            severity,
            fingerprint: Fingerprint::of(&labels),
            labels: Arc::new(labels),
            annotations: Arc::new(annotations),
            evidence: None,
            count: 0,
            stale: false,
            life,
        }
    }

    /// A hit at `now`: the condition counts it, and `update` keeps what it says
    /// (given the last evidence, to reuse its allocations).
    pub fn hit(&mut self, now: SystemTime, update: impl FnOnce(&mut Option<Evidence>)) {
        self.life.condition.hit(now);
        update(&mut self.evidence);
        self.count = self.life.condition.hits;
        self.stale = true;
    }

    /// The [`Alert`] event that tells `told`. Annotations are rendered here, not on
    /// every hit: a busy pattern hits far more often than its alert is told.
    pub fn event(
        &mut self,
        rule: Option<&Rule>,
        flap: &FlapDamping,
        told: Told,
        now: SystemTime,
    ) -> Event {
        if self.stale || self.life.flapping != self.annotations.contains_key("flapping") {
            self.annotations = Arc::new(self.render(rule, flap));
            self.stale = false;
        }
        Event::Alert(Alert {
            service: self.service.clone(),
            at: now,
            rule: self.rule.clone(),
            fingerprint: self.fingerprint,
            labels: self.labels.clone(),
            annotations: self.annotations.clone(),
            severity: self.severity,
            state: told.state,
            started: told.started,
            ended: told.ended,
            notify: told.notify,
            flapping: self.life.flapping,
        })
    }

    fn render(&self, rule: Option<&Rule>, flap: &FlapDamping) -> LabelSet {
        let mut annotations = match (rule, &self.evidence) {
            (Some(rule), Some(evidence)) => rule.annotate(
                &self.cause,
                &Facts {
                    service: &self.service,
                    alertname: &rule.name,
                    severity: self.severity,
                    count: self.count,
                    evidence,
                },
            ),
            // Restored and not hit since: what it said before the restart.
            _ => (*self.annotations).clone(),
        };
        annotations.remove("flapping");
        if self.life.flapping {
            annotations.insert(
                "flapping".into(),
                format!(
                    "changed state {} times in {}; held firing until stable for {}",
                    self.life.changes.len(),
                    humantime::format_duration(flap.window),
                    humantime::format_duration(flap.stable_for)
                ),
            );
        }
        annotations
    }
}
