//! The alerts an `alertmanager` sink keeps telling its Alertmanagers, and which of its
//! events must be told at once.
//!
//! Alertmanager holds alerts in memory only, and takes an alert whose `endsAt` has
//! passed for resolved: a client re-sends its firing alerts with an `endsAt` in the
//! future, so that they stay firing while it lives and resolve themselves if it dies,
//! and re-sends its resolves for a while, so that an Alertmanager that restarted, or
//! missed the first, still learns them (Prometheus does both). This table is what
//! those re-sends are made of: every firing alert, and every alert resolved less than
//! [`RESOLVED_RETENTION`] ago. It is synchronous and takes `now` as an argument; the
//! sink owns the timer, the outboxes the network.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::base::event::{Alert, AlertState, Fingerprint, LabelSet, Notify};

/// How long a resolved alert is re-sent after its resolution: Prometheus's choice
/// (`resolvedRetention`), and what the `alert` stage restates after a restart.
pub const RESOLVED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// An alert as posted to Alertmanager: what it is, and its time span.
#[derive(Debug, PartialEq)]
pub struct Posted {
    pub fingerprint: Fingerprint,
    pub labels: Arc<LabelSet>,
    pub annotations: Arc<LabelSet>,
    pub starts_at: SystemTime,
    /// When it was resolved; `None` while it fires (then `endsAt` is set when it is
    /// sent, in the future).
    pub resolved_at: Option<SystemTime>,
}

/// The alerts to re-send, by fingerprint.
#[derive(Debug, Default)]
pub struct Table {
    alerts: BTreeMap<Fingerprint, Arc<Posted>>,
}

impl Table {
    /// Takes in one alert event; returns the alert to post at once, if the event is
    /// one: a change of state, or a restatement after a restart (Alertmanager drops
    /// what it already has, and may have lost it in a restart of its own). A repeat
    /// only refreshes the table (the re-sends carry it); a pending alert and a resolve
    /// nobody was told of the firing of (`Notify::No`) are not Alertmanager's business.
    pub fn record(&mut self, alert: &Alert) -> Option<Arc<Posted>> {
        if alert.notify == Notify::No || alert.state == AlertState::Pending {
            return None;
        }
        let resolved_at =
            (alert.state == AlertState::Resolved).then(|| alert.ended.unwrap_or(alert.at));
        let posted = Arc::new(Posted {
            fingerprint: alert.fingerprint,
            labels: Arc::clone(&alert.labels),
            annotations: Arc::clone(&alert.annotations),
            starts_at: alert.started,
            resolved_at,
        });
        self.alerts.insert(alert.fingerprint, Arc::clone(&posted));
        matches!(alert.notify, Notify::Transition | Notify::Restated).then_some(posted)
    }

    /// Every alert to re-send at `now`: those firing, and those resolved less than
    /// [`RESOLVED_RETENTION`] ago. Older resolves are forgotten.
    pub fn due(&mut self, now: SystemTime) -> Vec<Arc<Posted>> {
        self.alerts.retain(|_, posted| {
            posted.resolved_at.is_none_or(|resolved| {
                now.duration_since(resolved).unwrap_or_default() < RESOLVED_RETENTION
            })
        });
        self.alerts.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::base::event::Severity;
    use crate::sinks::testing;

    /// An alert of service `shop` at `at` seconds, which started at second 10.
    fn alert(rule: &str, state: AlertState, notify: Notify, at: u64) -> Alert {
        testing::alert("shop", rule, Severity::Critical, state, notify, at)
    }

    fn names(posted: &[Arc<Posted>]) -> Vec<(&str, bool)> {
        (posted.iter())
            .map(|p| (p.labels["alertname"].as_str(), p.resolved_at.is_some()))
            .collect()
    }

    #[test]
    fn transitions_and_restatements_are_posted_at_once_repeats_and_pending_alerts_are_not() {
        let mut table = Table::default();
        use AlertState::*;
        assert_eq!(table.record(&alert("a", Pending, Notify::No, 5)), None);
        let fired = table.record(&alert("a", Firing, Notify::Transition, 10));
        assert_eq!(fired.map(|p| p.resolved_at), Some(None));
        assert_eq!(table.record(&alert("a", Firing, Notify::Repeat, 20)), None);
        let restated = table.record(&alert("b", Firing, Notify::Restated, 20));
        assert!(restated.is_some());
        // A resolve of an alert that never fired was never Alertmanager's.
        assert_eq!(table.record(&alert("c", Resolved, Notify::No, 20)), None);
        let resolved = table.record(&alert("a", Resolved, Notify::Transition, 30));
        let resolved_at = resolved.and_then(|p| p.resolved_at);
        assert_eq!(resolved_at, Some(UNIX_EPOCH + Duration::from_secs(30)));
        let due = table.due(UNIX_EPOCH + Duration::from_secs(40));
        let mut due = names(&due);
        due.sort();
        assert_eq!(due, [("a", true), ("b", false)]);
    }

    #[test]
    fn resolves_are_re_sent_for_fifteen_minutes_then_forgotten_firing_alerts_for_ever() {
        let mut table = Table::default();
        table.record(&alert(
            "gone",
            AlertState::Resolved,
            Notify::Transition,
            100,
        ));
        table.record(&alert("on", AlertState::Firing, Notify::Transition, 100));
        let at = |seconds: u64| UNIX_EPOCH + Duration::from_secs(100 + seconds);
        let last = RESOLVED_RETENTION.as_secs() - 1;
        assert_eq!(names(&table.due(at(last))).len(), 2);
        assert_eq!(names(&table.due(at(last + 1))), [("on", false)]);
        assert_eq!(names(&table.due(at(100 * 24 * 3600))), [("on", false)]);
    }
}
