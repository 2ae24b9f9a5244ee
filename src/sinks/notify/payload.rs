//! An alert as Alertmanager writes it: the objects of a webhook payload's `alerts`
//! (status, labels, annotations, `startsAt`, `endsAt`, `generatorURL`, fingerprint),
//! whose fields are also those `POST /api/v2/alerts` takes. Times are RFC 3339 in
//! UTC with milliseconds, and a firing alert ends at Go's zero time, as Alertmanager
//! 0.25 writes them (../shared/samples/alertmanager_webhook_firing.json).
//!
//! What wraps the alerts (a webhook's group, an API call's array) is each notifier's.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::base::event::{Alert, AlertState, Fingerprint, LabelSet};

/// The `endsAt` of an alert still firing: Go's zero `time.Time`.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Whether an alert fires or is over, as payloads say it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Firing,
    Resolved,
}

/// One alert, as a webhook payload lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertJson {
    pub status: Status,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: Fingerprint,
}

impl AlertJson {
    /// `alert` as receivers see it; `generator_url` says where to look at it.
    /// A pending alert is shown firing: receivers know no other state, and notifiers
    /// are never asked to tell a pending one.
    pub fn of(alert: &Alert, generator_url: String) -> AlertJson {
        let (status, ends_at) = match alert.state {
            AlertState::Pending | AlertState::Firing => (Status::Firing, ZERO_TIME.to_owned()),
            AlertState::Resolved => (Status::Resolved, time(alert.ended.unwrap_or(alert.at))),
        };
        AlertJson {
            status,
            labels: LabelSet::clone(&alert.labels),
            annotations: LabelSet::clone(&alert.annotations),
            starts_at: time(alert.started),
            ends_at,
            generator_url,
            fingerprint: alert.fingerprint,
        }
    }
}

/// `at` as payloads write it: `2026-11-28T18:03:15.935Z`.
pub fn time(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

/// Milliseconds since the epoch, as ledgers keep times (0 before it).
pub fn millis(at: SystemTime) -> u64 {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

/// The time `ms` milliseconds after the epoch.
pub fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::event::{Notify, Severity};

    #[test]
    fn firing_alerts_end_at_the_zero_time_and_resolved_ones_when_they_ended() {
        let started = UNIX_EPOCH + Duration::from_millis(1_795_888_995_935);
        let mut alert = Alert {
            at: started,
            started,
            ..crate::sinks::testing::alert(
                "shop",
                "Down",
                Severity::Critical,
                AlertState::Firing,
                Notify::Transition,
                0,
            )
        };
        let firing = AlertJson::of(&alert, "http://aegis/".into());
        assert_eq!(firing.status, Status::Firing);
        assert_eq!(firing.starts_at, "2026-11-28T18:03:15.935Z");
        assert_eq!(firing.ends_at, ZERO_TIME);
        alert.state = AlertState::Resolved;
        alert.ended = Some(started + Duration::from_millis(1_243));
        let resolved = AlertJson::of(&alert, "http://aegis/".into());
        assert_eq!(resolved.ends_at, "2026-11-28T18:03:17.178Z");
        let json = serde_json::to_value(&resolved).unwrap();
        assert_eq!(json["status"], "resolved");
        assert_eq!(json["generatorURL"], "http://aegis/");
        assert_eq!(json["fingerprint"], resolved.fingerprint.to_string());
        assert_eq!(from_millis(millis(started)), started);
    }
}
