//! The alerts the `prometheus` sink knows of now: what `GET /api/alerts` lists and
//! the `aegis_alerts` gauge counts.
//!
//! Each alert is kept as its last event, by fingerprint: pending and firing alerts
//! while they are, resolved ones for [`RESOLVED_SHOWN`] after they resolved (so that
//! "what just recovered" has an answer too), then dropped. Memory is thus bounded by
//! the alerts the configuration can raise. Nothing here is saved: after a restart the
//! `alert` stage restates what fires, and the list fills again from that.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::base::event::{Alert, AlertState, Fingerprint, LabelSet, Notify, Severity};

/// How long a resolved alert stays listed after it resolved.
pub const RESOLVED_SHOWN: Duration = Duration::from_secs(15 * 60);

/// The alerts known now, by fingerprint.
#[derive(Default)]
pub struct CurrentAlerts {
    alerts: HashMap<Fingerprint, Alert>,
}

impl CurrentAlerts {
    /// Takes in an alert event; returns the state the alert entered, if the event
    /// tells a change (a repeat, or a restatement after a restart, tells none).
    pub fn record(&mut self, alert: &Alert) -> Option<AlertState> {
        let previous = self.alerts.insert(alert.fingerprint, alert.clone());
        self.forget_resolved(alert.at);
        let told_again = matches!(alert.notify, Notify::Repeat | Notify::Restated);
        let changed = previous.is_none_or(|previous| {
            (previous.state, previous.started) != (alert.state, alert.started)
        });
        (changed && !told_again).then_some(alert.state)
    }

    /// Drops the alerts resolved [`RESOLVED_SHOWN`] or longer before `now`.
    pub fn forget_resolved(&mut self, now: SystemTime) {
        self.alerts.retain(|_, alert| {
            let resolved = alert.ended.filter(|_| alert.state == AlertState::Resolved);
            resolved
                .is_none_or(|ended| now.duration_since(ended).unwrap_or_default() < RESOLVED_SHOWN)
        });
    }

    /// How many alerts of `service` are in `state` with `severity`.
    pub fn count(&self, service: &str, state: AlertState, severity: Severity) -> usize {
        (self.alerts.values())
            .filter(|alert| {
                *alert.service == *service && alert.state == state && alert.severity == severity
            })
            .count()
    }

    /// The alerts as listed, at `now`: firing first, then pending, then resolved;
    /// within each, the most serious first, then the oldest.
    pub fn listing(&mut self, now: SystemTime) -> Listing {
        self.forget_resolved(now);
        let rank = |state| match state {
            AlertState::Firing => 0,
            AlertState::Pending => 1,
            AlertState::Resolved => 2,
        };
        let mut alerts: Vec<Alert> = self.alerts.values().cloned().collect();
        alerts.sort_by(|a, b| {
            (rank(a.state), b.severity, a.started, a.fingerprint).cmp(&(
                rank(b.state),
                a.severity,
                b.started,
                b.fingerprint,
            ))
        });
        Listing { alerts }
    }
}

/// The alerts as `GET /api/alerts` lists them; made under the metrics' lock, encoded
/// without it.
pub struct Listing {
    alerts: Vec<Alert>,
}

impl Listing {
    /// `{"alerts": [...]}`, each alert with its fingerprint, state, flapping, labels,
    /// annotations and times (RFC 3339, milliseconds, UTC; `endsAt` is `null` until it
    /// resolves).
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Page<'a> {
            alerts: Vec<AlertJson<'a>>,
        }
        let page = Page {
            alerts: self.alerts.iter().map(AlertJson::new).collect(),
        };
        serde_json::to_vec(&page).expect("strings and numbers encode")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertJson<'a> {
    fingerprint: Fingerprint,
    state: &'static str,
    flapping: bool,
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    starts_at: String,
    ends_at: Option<String>,
    /// When its last event was made.
    updated_at: String,
}

impl<'a> AlertJson<'a> {
    fn new(alert: &'a Alert) -> Self {
        let time = |at| humantime::format_rfc3339_millis(at).to_string();
        AlertJson {
            fingerprint: alert.fingerprint,
            state: alert.state.as_str(),
            flapping: alert.flapping,
            labels: &alert.labels,
            annotations: &alert.annotations,
            starts_at: time(alert.started),
            ends_at: alert.ended.map(time),
            updated_at: time(alert.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::sinks::testing::alert;

    #[test]
    fn changes_are_told_apart_from_repeats_and_restatements() {
        use AlertState::*;
        let mut current = CurrentAlerts::default();
        let critical = Severity::Critical;
        let record = |current: &mut CurrentAlerts, state, notify, at| {
            current.record(&alert("shop", "down", critical, state, notify, at))
        };
        assert_eq!(record(&mut current, Pending, Notify::No, 10), Some(Pending));
        assert_eq!(record(&mut current, Pending, Notify::No, 11), None);
        assert_eq!(
            record(&mut current, Firing, Notify::Transition, 12),
            Some(Firing)
        );
        assert_eq!(record(&mut current, Firing, Notify::Repeat, 13), None);
        assert_eq!(
            record(&mut current, Resolved, Notify::Transition, 14),
            Some(Resolved)
        );
        // After a restart, what fired is restated: not a change.
        let mut restarted = CurrentAlerts::default();
        assert_eq!(record(&mut restarted, Firing, Notify::Restated, 20), None);
        assert_eq!(restarted.count("shop", Firing, critical), 1);
    }

    #[test]
    fn the_listing_puts_firing_first_and_drops_what_resolved_long_ago() {
        use AlertState::*;
        let mut current = CurrentAlerts::default();
        let events = [
            alert("shop", "slow", Severity::Warning, Pending, Notify::No, 100),
            alert(
                "shop",
                "gone",
                Severity::Critical,
                Resolved,
                Notify::Transition,
                100,
            ),
            alert(
                "shop",
                "errors",
                Severity::Warning,
                Firing,
                Notify::Transition,
                100,
            ),
            alert(
                "shop",
                "down",
                Severity::Critical,
                Firing,
                Notify::Transition,
                100,
            ),
        ];
        events.iter().for_each(|event| {
            current.record(event);
        });
        let names = |current: &mut CurrentAlerts, seconds| -> Vec<String> {
            let json = current
                .listing(UNIX_EPOCH + Duration::from_secs(seconds))
                .to_json();
            let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
            let alerts = json["alerts"].as_array().unwrap().iter();
            alerts
                .map(|alert| format!("{} {}", alert["state"], alert["labels"]["alertname"]))
                .collect()
        };
        let shown_until = 100 + RESOLVED_SHOWN.as_secs() - 1;
        assert_eq!(
            names(&mut current, shown_until),
            [
                r#""firing" "down""#,
                r#""firing" "errors""#,
                r#""pending" "slow""#,
                r#""resolved" "gone""#
            ]
        );
        assert_eq!(names(&mut current, shown_until + 1).len(), 3);
        assert_eq!(current.count("shop", Firing, Severity::Warning), 1);
        assert_eq!(current.count("shop", Resolved, Severity::Critical), 0);
    }

    #[test]
    fn an_alert_is_listed_with_its_fingerprint_state_and_times() {
        let mut current = CurrentAlerts::default();
        let mut firing = alert(
            "shop",
            "down",
            Severity::Critical,
            AlertState::Firing,
            Notify::Transition,
            20,
        );
        firing.flapping = true;
        current.record(&firing);
        let json = current.listing(UNIX_EPOCH).to_json();
        let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(
            json["alerts"][0],
            serde_json::json!({
                "fingerprint": firing.fingerprint.to_string(),
                "state": "firing",
                "flapping": true,
                "labels": { "alertname": "down", "service": "shop", "severity": "critical" },
                "annotations": { "summary": "down on shop", "description": "shop is not well: down" },
                "startsAt": "1970-01-01T00:00:10.000Z",
                "endsAt": null,
                "updatedAt": "1970-01-01T00:00:20.000Z",
            })
        );
    }
}
