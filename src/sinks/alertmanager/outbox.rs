//! One Alertmanager: the alerts waiting to be posted to it ([`Outbox`]), and the task
//! that posts them ([`Delivery`]).
//!
//! Each Alertmanager has its own outbox and task, so one that refuses or hangs never
//! delays another. The sink fills an outbox without waiting (a lock held for a map
//! insert), so a dead Alertmanager never slows the pipeline either. An outbox holds at
//! most one version of each alert (keyed by fingerprint, the newest wins: Alertmanager
//! wants the latest state of an alert, not its history), so it is bounded by the
//! number of alerts, which the configuration bounds.
//!
//! A post that fails and may succeed later (no reply, `408`, `429`, `5xx`) puts its
//! alerts back and is tried again after a backoff that starts at
//! [`FIRST_RETRY_DELAY`] and grows to the resend interval (or after the reply's
//! `Retry-After`, if longer, up to five minutes); one refused for good (`4xx`)
//! is counted as failed and dropped (the next re-send of the table tries again).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use prometheus::IntGauge;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::table::Posted;
use crate::base::event::{Fingerprint, LabelSet};
use crate::base::retry::{Jitter, RetryPolicy};
use crate::http_client::{HttpSender, Payload, SendError};
use crate::sinks::notify::Deliveries;
use crate::sinks::notify::delivery::asked_wait;

/// Alerts per post, at most: a few hundred kilobytes at worst, which Alertmanager
/// takes in one request (Prometheus posts at most 256).
pub const MAX_BATCH: usize = 64;

/// The delay before the first retry of a failed post.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);

/// The alerts waiting for one Alertmanager.
pub struct Outbox {
    waiting: Mutex<Waiting>,
    /// Told when something is offered. A `Notify` keeps one permit when nobody
    /// waits, so an offer made while the task posts is not missed.
    wake: tokio::sync::Notify,
    /// `aegis_notification_queue_depth` of this Alertmanager.
    depth: IntGauge,
}

#[derive(Default)]
struct Waiting {
    alerts: BTreeMap<Fingerprint, Item>,
    /// Alerts taken by a post that has not ended: still queued, as far as the depth
    /// gauge is concerned.
    in_flight: usize,
}

/// An alert waiting to be posted.
#[derive(Clone)]
struct Item {
    alert: Arc<Posted>,
    /// When the change of state it tells happened, for a transition (its delivery
    /// latency is measured from then); `None` for a re-send.
    changed: Option<SystemTime>,
}

impl Outbox {
    pub fn new(depth: IntGauge) -> Outbox {
        depth.set(0);
        Outbox {
            waiting: Mutex::new(Waiting::default()),
            wake: tokio::sync::Notify::new(),
            depth,
        }
    }

    /// Queues a change of state that happened at `changed`, replacing whatever of the
    /// alert was waiting (it is older).
    pub fn offer_now(&self, alert: Arc<Posted>, changed: SystemTime) {
        self.change(|waiting| {
            let item = Item {
                alert,
                changed: Some(changed),
            };
            waiting.alerts.insert(item.alert.fingerprint, item);
        });
    }

    /// Queues re-sends: each alert that is not waiting already (what waits is at least
    /// as new, and may be a transition whose latency is still to be measured).
    pub fn offer_again(&self, alerts: &[Arc<Posted>]) {
        if alerts.is_empty() {
            return;
        }
        self.change(|waiting| {
            for alert in alerts {
                (waiting.alerts.entry(alert.fingerprint)).or_insert_with(|| Item {
                    alert: Arc::clone(alert),
                    changed: None,
                });
            }
        });
    }

    /// Up to [`MAX_BATCH`] waiting alerts, now in flight.
    fn take(&self) -> Vec<Item> {
        let mut taken = Vec::new();
        self.change(|waiting| {
            while taken.len() < MAX_BATCH {
                let Some((_, item)) = waiting.alerts.pop_first() else {
                    break;
                };
                taken.push(item);
            }
            waiting.in_flight += taken.len();
        });
        taken
    }

    /// The post of `count` alerts ended, delivered or dropped.
    fn done(&self, count: usize) {
        self.change(|waiting| waiting.in_flight -= count);
    }

    /// The post of `items` failed and will be tried again: each goes back, unless a
    /// newer version of it was offered meanwhile (which keeps the transition time of
    /// the one put back if it is the same change, so its latency is still measured).
    fn put_back(&self, items: Vec<Item>) {
        self.change(|waiting| {
            waiting.in_flight -= items.len();
            for item in items {
                let fingerprint = item.alert.fingerprint;
                match waiting.alerts.get_mut(&fingerprint) {
                    Some(newer) => {
                        if newer.changed.is_none() && *newer.alert == *item.alert {
                            newer.changed = item.changed;
                        }
                    }
                    None => {
                        waiting.alerts.insert(fingerprint, item);
                    }
                }
            }
        });
    }

    fn change(&self, change: impl FnOnce(&mut Waiting)) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        let before = waiting.alerts.len();
        change(&mut waiting);
        self.depth
            .set((waiting.alerts.len() + waiting.in_flight) as i64);
        if waiting.alerts.len() > before {
            self.wake.notify_one();
        }
    }
}

/// Posts one Alertmanager's outbox, from a task of its own.
pub struct Delivery {
    pub sender: HttpSender,
    /// The `sink` label of its metrics, and how logs name it: never the URL, whose
    /// query could hold a secret.
    pub name: String,
    pub outbox: Arc<Outbox>,
    pub deliveries: Arc<Deliveries>,
    /// How far in the future a firing alert's `endsAt` is put.
    pub lifetime: Duration,
    /// Where a firing alert comes from (`generatorURL`).
    pub generator_url: Arc<str>,
    /// The backoff between failed posts.
    pub retry: RetryPolicy,
}

impl Delivery {
    /// The backoff of a sink that re-sends every `resend_interval`: from
    /// [`FIRST_RETRY_DELAY`], doubling up to the resend interval, each delay between
    /// half and all of that (equal jitter), so that Aegis instances that lost the same
    /// Alertmanager do not come back to it in step, and a transition waits seconds,
    /// not a whole interval, after a short outage.
    pub fn backoff(resend_interval: Duration) -> RetryPolicy {
        RetryPolicy {
            max_attempts: u32::MAX,
            initial_delay: FIRST_RETRY_DELAY.min(resend_interval),
            multiplier: 2.0,
            max_delay: resend_interval,
            jitter: Jitter::Equal,
        }
    }

    /// Posts what is offered until `stop`, then tries once more to post what waits
    /// (the sink bounds how long it waits for that).
    pub async fn run(self, stop: CancellationToken) {
        let mut delays = self.retry.delays(fastrand::Rng::new());
        let mut failing = false;
        loop {
            tokio::select! {
                // Offers keep coming until the sink stops: stopping goes first.
                biased;
                _ = stop.cancelled() => break,
                _ = self.outbox.wake.notified() => {}
            }
            loop {
                match self.post_waiting().await {
                    Ok(()) => {
                        if failing {
                            tracing::info!(alertmanager = %self.name, "Alertmanager takes alerts again.");
                            failing = false;
                        }
                        delays = self.retry.delays(fastrand::Rng::new());
                        break;
                    }
                    Err(err) => {
                        // Said once per outage, not once per retry; the counts and
                        // the queue depth show the rest.
                        if !failing {
                            tracing::warn!(alertmanager = %self.name, error = %err, "Cannot post alerts to Alertmanager; retrying.");
                            failing = true;
                        }
                        // A `429` or `503` may say how long to wait: never less.
                        let delay =
                            (delays.next().unwrap_or(self.retry.max_delay)).max(asked_wait(&err));
                        tokio::select! {
                            // Stopping while this Alertmanager fails: no last try,
                            // it would most likely fail too.
                            _ = stop.cancelled() => return,
                            // Offers meanwhile wait in the outbox; the retry takes them.
                            _ = tokio::time::sleep(delay) => {}
                        }
                    }
                }
            }
        }
        if let Err(err) = self.post_waiting().await {
            tracing::warn!(alertmanager = %self.name, error = %err, "Alerts left unposted to Alertmanager at shutdown.");
        }
    }

    /// Posts what waits, a batch at a time, until nothing does; the error of a post
    /// that may succeed later (its alerts are back in the outbox). A post refused for
    /// good is counted, logged and dropped, and the rest goes on.
    async fn post_waiting(&self) -> Result<(), SendError> {
        loop {
            let items = self.outbox.take();
            if items.is_empty() {
                return Ok(());
            }
            let count = items.len() as u64;
            let result = self.sender.send(Some(self.payload(&items))).await;
            match result {
                Ok(_) => {
                    let now = SystemTime::now();
                    let latency = self.deliveries.latency.with_label_values(&[&self.name]);
                    for changed in items.iter().filter_map(|item| item.changed) {
                        latency.observe(
                            now.duration_since(changed)
                                .unwrap_or_default()
                                .as_secs_f64(),
                        );
                    }
                    self.count("delivered", count);
                    self.outbox.done(items.len());
                }
                Err(err) if err.is_retryable() => {
                    self.count("retried", count);
                    self.outbox.put_back(items);
                    return Err(err);
                }
                Err(err) => {
                    tracing::warn!(alertmanager = %self.name, error = %err, alerts = count, "Alertmanager refused alerts; they are dropped until the next re-send.");
                    self.count("failed", count);
                    self.outbox.done(items.len());
                }
            }
        }
    }

    fn count(&self, result: &str, alerts: u64) {
        let labels = [self.name.as_str(), result];
        self.deliveries
            .notifications
            .with_label_values(&labels)
            .inc_by(alerts);
    }

    /// The body of a post of `items`, `endsAt` of the firing ones from now.
    fn payload(&self, items: &[Item]) -> Payload {
        let ends_at = SystemTime::now() + self.lifetime;
        let alerts: Vec<PostableAlert> = (items.iter())
            .map(|item| PostableAlert::new(&item.alert, ends_at, &self.generator_url))
            .collect();
        Payload::json(&alerts).expect("strings encode")
    }
}

/// An alert as `POST /api/v2/alerts` takes it (Alertmanager's `postableAlert`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert<'a> {
    labels: &'a LabelSet,
    annotations: &'a LabelSet,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
}

impl<'a> PostableAlert<'a> {
    /// `alert`, ending at its resolution if it is resolved, else at `firing_until`.
    pub fn new(alert: &'a Posted, firing_until: SystemTime, generator_url: &'a str) -> Self {
        let time = |at| humantime::format_rfc3339_millis(at).to_string();
        PostableAlert {
            labels: &alert.labels,
            annotations: &alert.annotations,
            starts_at: time(alert.starts_at),
            ends_at: time(alert.resolved_at.unwrap_or(firing_until)),
            generator_url,
        }
    }
}
