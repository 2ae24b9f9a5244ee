//! Events built by hand for the sinks' tests.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use crate::base::event::{Alert, AlertState, Fingerprint, LabelSet, Notify, Severity};

/// An alert event of rule `rule` for `service`, made at `at` seconds after the epoch,
/// which started at second 10 (and, resolved, ended at `at`). Its labels are the ones
/// every alert has (`alertname`, `service`, `severity`); its fingerprint is theirs.
pub fn alert(
    service: &str,
    rule: &str,
    severity: Severity,
    state: AlertState,
    notify: Notify,
    at: u64,
) -> Alert {
    let labels: LabelSet = [
        ("alertname", rule),
        ("service", service),
        ("severity", severity.as_label()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect();
    let annotations: LabelSet = [
        ("summary", format!("{rule} on {service}")),
        ("description", format!("{service} is not well: {rule}")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let time = |seconds| UNIX_EPOCH + Duration::from_secs(seconds);
    Alert {
        service: service.into(),
        at: time(at),
        rule: rule.into(),
        fingerprint: Fingerprint::of(&labels),
        labels: Arc::new(labels),
        annotations: Arc::new(annotations),
        severity,
        state,
        started: time(10),
        ended: (state == AlertState::Resolved).then(|| time(at)),
        notify,
        flapping: false,
    }
}
