//! Which waiting alerts go together, and the notification they make: Alertmanager's
//! webhook payload, version "4".
//!
//! As in Alertmanager, alerts whose `group_by` labels agree form a group, and a group
//! waits `group_wait` after its first alert before it is sent (0 by default: at
//! once). The notification is the oldest waiting alert's group: every alert of that
//! group waiting then, one per alert (a resolve waiting behind its firing goes in the
//! next notification, so that a receiver hears them in order), at most `max_alerts`
//! of them (`truncatedAlerts` counts the ones left for the next).
//!
//! **Departure from Alertmanager:** a notification holds the alerts that have
//! something to tell, not every alert of the group. Alertmanager repeats the whole
//! group each time one alert changes; here each change of state reaches the
//! receiver once, and a firing alert again only when the alert stage repeats it.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::base::event::{Fingerprint, LabelSet, Notify};
use crate::sinks::notify::ledger::{Entry, InFlight, Ledger};
use crate::sinks::notify::payload::{AlertJson, Status, from_millis};

/// How a receiver's alerts are grouped into notifications, and what those say of it.
#[derive(Clone, Debug)]
pub struct Grouping {
    /// The payload's `receiver`.
    pub receiver: Arc<str>,
    pub by: GroupBy,
    pub wait: Duration,
    /// 0 for no limit.
    pub max_alerts: usize,
    /// The payload's `externalURL`, without a trailing `/`.
    pub external_url: String,
}

/// The labels that make a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// `['...']`: every label, so each alert is its own group.
    All,
    Labels(Vec<String>),
}

impl GroupBy {
    pub fn new(labels: &[String]) -> GroupBy {
        if labels.iter().any(|label| label == "...") {
            GroupBy::All
        } else {
            GroupBy::Labels(labels.to_vec())
        }
    }

    /// Whether alerts with labels `a` and `b` are in one group.
    pub fn together(&self, a: &LabelSet, b: &LabelSet) -> bool {
        match self {
            GroupBy::All => a == b,
            GroupBy::Labels(names) => names.iter().all(|name| a.get(name) == b.get(name)),
        }
    }

    /// The group labels of an alert with `labels`: those named that it has.
    pub fn of(&self, labels: &LabelSet) -> LabelSet {
        match self {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => (names.iter())
                .filter_map(|name| Some((name.clone(), labels.get(name)?.clone())))
                .collect(),
        }
    }
}

/// What the delivery task does next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Deliver this (composed now, or left in flight before).
    Send(InFlight),
    /// Nothing is ready before this time.
    At(SystemTime),
    /// Nothing waits.
    Idle,
}

/// The webhook payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Message<'a> {
    receiver: &'a str,
    status: Status,
    alerts: Vec<&'a AlertJson>,
    group_labels: LabelSet,
    common_labels: LabelSet,
    common_annotations: LabelSet,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: String,
    truncated_alerts: usize,
}

impl Grouping {
    /// The notification to deliver at `now`: the one in flight, or else one composed
    /// of the waiting alerts (and put in flight), if a group is ready. `hurry` sends
    /// without waiting for groups to fill (at shutdown).
    pub fn next(&self, ledger: &mut Ledger, now: SystemTime, hurry: bool) -> Next {
        if let Some(in_flight) = ledger.in_flight() {
            return Next::Send(in_flight.clone());
        }
        let Some(head) = ledger.waiting().front() else {
            return Next::Idle;
        };
        // The head is the oldest of its group, so its group is the first ready.
        let ready = from_millis(head.queued_ms) + self.wait;
        if !hurry && ready > now {
            return Next::At(ready);
        }
        let mut seen: BTreeSet<Fingerprint> = BTreeSet::new();
        let mut taken: Vec<&Entry> = Vec::new();
        let mut truncated = 0;
        for entry in ledger.waiting() {
            let together = self.by.together(&head.alert.labels, &entry.alert.labels);
            if !together || !seen.insert(entry.alert.fingerprint) {
                continue;
            }
            if self.max_alerts == 0 || taken.len() < self.max_alerts {
                taken.push(entry);
            } else {
                truncated += 1;
            }
        }
        let body = self.body(self.by.of(&head.alert.labels), &taken, truncated);
        let key = idempotency_key(&taken);
        let seqs: Vec<u64> = taken.iter().map(|entry| entry.seq).collect();
        ledger.start(&seqs, body, key);
        Next::Send(ledger.in_flight().cloned().expect("just started"))
    }

    fn body(&self, group: LabelSet, entries: &[&Entry], truncated: usize) -> String {
        let alerts: Vec<&AlertJson> = entries.iter().map(|entry| &entry.alert).collect();
        let firing = alerts.iter().any(|alert| alert.status == Status::Firing);
        let message = Message {
            receiver: &self.receiver,
            status: if firing {
                Status::Firing
            } else {
                Status::Resolved
            },
            common_labels: common(alerts.iter().map(|alert| &alert.labels)),
            common_annotations: common(alerts.iter().map(|alert| &alert.annotations)),
            alerts,
            group_key: format!("{{}}:{}", go_label_set(&group)),
            group_labels: group,
            external_url: &self.external_url,
            version: "4",
            truncated_alerts: truncated,
        };
        serde_json::to_string(&message).expect("a message has string keys only")
    }
}

/// The pairs every one of `sets` has.
fn common<'a>(mut sets: impl Iterator<Item = &'a LabelSet>) -> LabelSet {
    let mut common = sets.next().cloned().unwrap_or_default();
    for set in sets {
        common.retain(|name, value| set.get(name) == Some(value));
    }
    common
}

/// `labels` as Go's `model.LabelSet.String()` writes them, as Alertmanager's group
/// keys show them: `{alertname="Down", service="shop"}`, values quoted as Go quotes.
pub fn go_label_set(labels: &LabelSet) -> String {
    let mut text = String::from("{");
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            text.push_str(", ");
        }
        text.push_str(name);
        text.push_str("=\"");
        for c in value.chars() {
            match c {
                '"' => text.push_str("\\\""),
                '\\' => text.push_str("\\\\"),
                '\n' => text.push_str("\\n"),
                '\r' => text.push_str("\\r"),
                '\t' => text.push_str("\\t"),
                '\u{7}' => text.push_str("\\a"),
                '\u{8}' => text.push_str("\\b"),
                '\u{b}' => text.push_str("\\v"),
                '\u{c}' => text.push_str("\\f"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(text, "\\x{:02x}", c as u32);
                }
                c if c.is_control() => {
                    let _ = write!(text, "\\u{:04x}", c as u32);
                }
                c => text.push(c),
            }
        }
        text.push('"');
    }
    text.push('}');
    text
}

/// The `Idempotency-Key` of a notification of `entries`: the same for the same news
/// (each alert's fingerprint, status and `startsAt`, and a repeat's time), however
/// often it is sent. 32 hex digits of a SHA-256.
pub fn idempotency_key(entries: &[&Entry]) -> String {
    let mut hash = Sha256::new();
    for entry in entries {
        let alert = &entry.alert;
        let status = match alert.status {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        };
        hash.update(format!(
            "{} {status} {}",
            alert.fingerprint, alert.starts_at
        ));
        if entry.why == Notify::Repeat {
            hash.update(format!(" repeat {}", entry.at_ms));
        }
        hash.update("\n");
    }
    hex(&hash.finalize()[..16])
}

/// `bytes` in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}
