//! The running `webhook` sink: two tasks around one outbox.
//!
//! The **intake** (the sink's own task) takes every batch as it comes and queues its
//! alerts into the [`Ledger`] (never waiting on the receiver, so that a dead one
//! holds up neither the pipeline nor the other receivers), and takes alerts other
//! receivers hand over to this one as their fallback. The **delivery** task
//! composes a notification ([`Grouping::next`]) and delivers it
//! ([`Receiver::deliver`]), one at a time, so that a receiver hears each alert's
//! news in order. The outbox is bounded by the number of alerts (see the ledger), so
//! taking everything at once costs bounded memory.
//!
//! With a state folder, every change of the ledger (queued, composed, acknowledged,
//! given up) is offered to a [`StateWriter`], whose thread encodes the newest state
//! and writes it atomically within milliseconds; the delivery does not wait for the
//! disk (a save takes about 9 ms on this machine's ext4, which would cap a receiver
//! near a hundred notifications a second). What a crash can cost is the last few milliseconds: an
//! acknowledgement not yet written is sent again after the restart, with the same
//! `Idempotency-Key`, so that the receiver can tell.
//!
//! When the input closes, the delivery gets a grace (the timeout, at most 3 s) to
//! send what waits, groups no longer waiting to fill; what is still undelivered
//! stays in the ledger for the next start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha256;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::group::{Grouping, Next, hex};
use crate::base::component::{Input, NodeError, Sink};
use crate::base::event::{Alert, Event, Notify, Severity};
use crate::base::state_file::{StateFile, StateWriter};
use crate::base::text::Escaped;
use crate::http_client::{HttpSender, Payload, SecretText};
use crate::sinks::notify::Deliveries;
use crate::sinks::notify::delivery::{Delivery, Receiver};
use crate::sinks::notify::ledger::{Entry, InFlight, Ledger, Queued};
use crate::sinks::notify::payload::{AlertJson, from_millis};

/// Hand-overs a receiver's channel holds; past that, a receiver keeps what it could
/// not hand over and tries again later.
const HANDOFF_CAPACITY: usize = 64;

/// The header that carries the body's signature.
pub const SIGNATURE_HEADER: &str = "x-aegis-signature";

/// The header that identifies a notification across retries and restarts.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// Alerts a receiver could not deliver, handed to its fallback.
pub struct Handoff {
    /// The receiver that gave them up.
    pub from: Arc<str>,
    pub entries: Vec<Entry>,
}

/// Where each webhook receiver of a pipeline takes hand-overs, by name: what a
/// `fallback` is looked up in. Kept in the pipeline's shared state.
#[derive(Default)]
pub struct Fallbacks(Mutex<HashMap<String, mpsc::Sender<Handoff>>>);

impl Fallbacks {
    /// Registers receiver `name`; its end of the channel, or `None` if the name is
    /// taken.
    pub fn register(&self, name: &str) -> Option<mpsc::Receiver<Handoff>> {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if map.contains_key(name) {
            return None;
        }
        let (sender, receiver) = mpsc::channel(HANDOFF_CAPACITY);
        map.insert(name.to_owned(), sender);
        Some(receiver)
    }

    fn get(&self, name: &str) -> Option<mpsc::Sender<Handoff>> {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(name).cloned()
    }
}

/// A running `webhook` sink (built by [`super::WebhookConfig`]).
pub struct Webhook {
    pub(super) grouping: Grouping,
    pub(super) receiver: Receiver,
    pub(super) sender: HttpSender,
    pub(super) secret: Option<SecretText>,
    pub(super) min_severity: Severity,
    pub(super) fallback: Option<String>,
    pub(super) fallbacks: Arc<Fallbacks>,
    pub(super) handoffs: mpsc::Receiver<Handoff>,
    pub(super) state: Option<StateFile>,
    pub(super) deliveries: Arc<Deliveries>,
    pub(super) grace: Duration,
}

/// The ledger, shared by the intake and the delivery, and how a change of it is
/// saved and told.
struct Outbox {
    ledger: Arc<Mutex<Ledger>>,
    writer: Option<StateWriter>,
    /// Wakes the delivery when something is queued.
    queued: tokio::sync::Notify,
    depth: prometheus::IntGauge,
}

impl Outbox {
    /// Runs `change` on the ledger; if it says it changed it, saves the ledger and
    /// updates the queue's depth. Returns what `change` said.
    fn change(&self, change: impl FnOnce(&mut Ledger) -> bool) -> bool {
        let mut ledger = self.ledger.lock().unwrap_or_else(PoisonError::into_inner);
        let changed = change(&mut ledger);
        if changed {
            // Encoded by the writer's thread when it writes: a burst of changes
            // (a thousand alerts delivered one by one) costs an encoding per write,
            // not one per change.
            if let Some(writer) = &self.writer {
                writer.offer_shared(&self.ledger);
            }
            self.depth
                .set(i64::try_from(ledger.depth()).unwrap_or(i64::MAX));
        }
        changed
    }
}

impl Sink for Webhook {
    fn run(self: Box<Self>, input: Input) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(self.serve(input))
    }
}

impl Webhook {
    async fn serve(self, mut input: Input) -> Result<(), NodeError> {
        let Webhook {
            grouping,
            receiver,
            sender,
            secret,
            min_severity,
            fallback,
            fallbacks,
            mut handoffs,
            state,
            deliveries,
            grace,
        } = self;
        let name = Arc::clone(&grouping.receiver);
        let (ledger, writer) = match state {
            Some(file) => {
                let ledger = file.load::<Ledger>().unwrap_or_default();
                let writer = file.writer().map_err(|source| NodeError::Io {
                    what: format!("starting the state writer of webhook `{name}`"),
                    source,
                })?;
                (ledger, Some(writer))
            }
            None => (Ledger::default(), None),
        };
        let depth = deliveries.queued.with_label_values(&[&*name]);
        depth.set(i64::try_from(ledger.depth()).unwrap_or(i64::MAX));
        let outbox = Arc::new(Outbox {
            ledger: Arc::new(Mutex::new(ledger)),
            writer,
            queued: tokio::sync::Notify::new(),
            depth,
        });
        let closing = CancellationToken::new();
        let stop = CancellationToken::new();
        let delivery = Delivering {
            outbox: Arc::clone(&outbox),
            grouping: grouping.clone(),
            receiver,
            sender,
            secret,
            fallback,
            fallbacks,
            deliveries: Arc::clone(&deliveries),
            fallback_missing_said: false,
            closing: closing.clone(),
        };
        // A task of its own: the intake below never waits for a delivery.
        let delivering = tokio::spawn(delivery.run(stop.clone()));
        let generator = format!("{}/api/alerts", grouping.external_url);
        let intake = Intake {
            outbox: &outbox,
            name: &name,
            min_severity,
            generator: &generator,
            deliveries: &deliveries,
        };
        loop {
            tokio::select! {
                batch = input.recv() => {
                    let Some(batch) = batch else { break };
                    let mut batches = vec![batch];
                    // Whatever else has arrived goes in the same change (one save).
                    batches.extend(std::iter::from_fn(|| input.try_recv()));
                    let alerts = batches.iter().flat_map(|batch| batch.iter()).filter_map(|event| match event {
                        Event::Alert(alert) => Some(alert),
                        _ => None,
                    });
                    intake.take(alerts);
                }
                // What receivers whose fallback this is could not deliver. (Their
                // senders live in `Fallbacks` while any webhook sink runs; were they
                // gone, `recv` would give `None` and `select!` leave this arm out.)
                Some(handoff) = handoffs.recv() => intake.take_over(handoff),
            }
        }
        // Hand-overs sent before this receiver's input closed are taken; from now on
        // receivers hand nothing over (see `Delivering::hand_over`).
        while let Ok(handoff) = handoffs.try_recv() {
            intake.take_over(handoff);
        }
        closing.cancel();
        let grace_over = {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                stop.cancel();
            })
        };
        let delivered = delivering.await;
        grace_over.abort();
        delivered?;
        let left = outbox
            .ledger
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .depth();
        if left > 0 && outbox.writer.is_some() {
            tracing::warn!(receiver = %name, alerts = left, "Notifications are still undelivered at shutdown; they stay in the ledger for the next start.");
        } else if left > 0 {
            tracing::warn!(receiver = %name, alerts = left, "Notifications are still undelivered at shutdown, and are lost: the receiver has no state_dir.");
        }
        // Dropping the outbox drops its writer, which writes the last state first.
        drop(outbox);
        Ok(())
    }
}

/// What the intake needs to queue alerts.
struct Intake<'a> {
    outbox: &'a Outbox,
    name: &'a str,
    min_severity: Severity,
    /// The base of each alert's `generatorURL`.
    generator: &'a str,
    deliveries: &'a Deliveries,
}

impl Intake<'_> {
    /// Queues the alerts this receiver is to be told of, in one change.
    fn take<'e>(&self, alerts: impl Iterator<Item = &'e Alert>) {
        let now = SystemTime::now();
        let mut dropped = Vec::new();
        let changed = self.outbox.change(|ledger| {
            let mut changed = false;
            for alert in alerts {
                if alert.notify == Notify::No || alert.severity < self.min_severity {
                    continue;
                }
                let url = format!("{}?fingerprint={}", self.generator, alert.fingerprint);
                let json = AlertJson::of(alert, url);
                if let Queued::Yes { dropped: older } =
                    ledger.queue(alert.notify, json, alert.at, now, false)
                {
                    changed = true;
                    dropped.extend(older);
                }
            }
            changed
        });
        self.said_dropped(&dropped);
        if changed {
            self.outbox.queued.notify_one();
        }
    }

    /// Queues what another receiver could not deliver. A restated alert is news to
    /// this receiver, whatever its ledger says: it was not told it.
    fn take_over(&self, handoff: Handoff) {
        let now = SystemTime::now();
        let mut dropped = Vec::new();
        let alerts = handoff.entries.len();
        self.outbox.change(|ledger| {
            for entry in handoff.entries {
                let why = match entry.why {
                    Notify::Restated => Notify::Transition,
                    why => why,
                };
                let at = from_millis(entry.at_ms);
                if let Queued::Yes { dropped: older } =
                    ledger.queue(why, entry.alert, at, now, true)
                {
                    dropped.extend(older);
                }
            }
            true
        });
        tracing::info!(receiver = %self.name, from = %handoff.from, alerts, "Receiver takes over notifications as a fallback.");
        self.said_dropped(&dropped);
        self.outbox.queued.notify_one();
    }

    fn said_dropped(&self, dropped: &[Entry]) {
        if dropped.is_empty() {
            return;
        }
        tracing::warn!(
            receiver = %self.name,
            alerts = dropped.len(),
            "Older firings of an alert that changed state again and again were never delivered, and are dropped to keep the queue bounded; the receiver gets the latest."
        );
        (self.deliveries.notifications)
            .with_label_values(&[self.name, "failed"])
            .inc_by(dropped.len() as u64);
    }
}

/// The delivery task's parts.
struct Delivering {
    outbox: Arc<Outbox>,
    grouping: Grouping,
    receiver: Receiver,
    sender: HttpSender,
    secret: Option<SecretText>,
    fallback: Option<String>,
    fallbacks: Arc<Fallbacks>,
    deliveries: Arc<Deliveries>,
    /// Whether an unknown fallback name was logged already.
    fallback_missing_said: bool,
    /// Cancelled when the input closed.
    closing: CancellationToken,
}

impl Delivering {
    /// Delivers until nothing is left once the input closed, or until `stop` (the
    /// grace is over).
    async fn run(mut self, stop: CancellationToken) {
        let closing = self.closing.clone();
        loop {
            let now = SystemTime::now();
            let mut next = Next::Idle;
            self.outbox.change(|ledger| {
                let was_in_flight = ledger.in_flight().is_some();
                next = self.grouping.next(ledger, now, closing.is_cancelled());
                // Composing put a notification in flight: a change to save.
                !was_in_flight && matches!(next, Next::Send(_))
            });
            match next {
                Next::Send(in_flight) => {
                    if !self.send(in_flight, &stop).await {
                        return;
                    }
                }
                Next::At(ready) => {
                    let wait = ready.duration_since(now).unwrap_or(Duration::ZERO);
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.outbox.queued.notified() => {}
                        () = closing.cancelled() => {}
                    }
                }
                Next::Idle if closing.is_cancelled() => return,
                Next::Idle => {
                    tokio::select! {
                        () = self.outbox.queued.notified() => {}
                        () = closing.cancelled() => {}
                    }
                }
            }
        }
    }

    /// Delivers `in_flight` and records how it ended; `false` if `stop` cut it short.
    async fn send(&mut self, in_flight: InFlight, stop: &CancellationToken) -> bool {
        let headers = self.headers(&in_flight);
        let payload = Payload {
            content_type: HeaderValue::from_static("application/json"),
            bytes: Bytes::from(in_flight.body.clone()),
        };
        let handed = in_flight.entries.iter().any(|entry| entry.handed);
        // What was handed over here is never handed on: two receivers that are each
        // other's fallback would pass it back and forth.
        let fallback = if handed { None } else { self.fallback_sender() };
        let sender = &self.sender;
        let delivery = self
            .receiver
            .deliver(
                || sender.send_with(headers.clone(), Some(payload.clone())),
                fallback.is_some(),
                stop,
            )
            .await;
        match delivery {
            Delivery::Delivered => {
                let now = SystemTime::now();
                let mut done = None;
                self.outbox.change(|ledger| {
                    done = ledger.acknowledge(now);
                    true
                });
                let latency = (self.deliveries.latency).with_label_values(&[self.receiver.name()]);
                for entry in done.iter().flat_map(|done| &done.entries) {
                    let at = from_millis(entry.at_ms);
                    latency.observe(now.duration_since(at).unwrap_or_default().as_secs_f64());
                }
            }
            Delivery::Refused(_) | Delivery::Exhausted(_) => {
                let given_up = match fallback {
                    Some(fallback) => self.hand_over(&fallback, &in_flight),
                    None => true, // refused for good, and no one else to take it
                };
                if given_up {
                    self.outbox.change(|ledger| ledger.abandon().is_some());
                }
            }
            Delivery::Stopped => return false,
        }
        true
    }

    /// The request's own headers: its idempotency key, and its signature.
    fn headers(&self, in_flight: &InFlight) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(key) = HeaderValue::from_str(&in_flight.key) {
            headers.insert(HeaderName::from_static(IDEMPOTENCY_HEADER), key);
        }
        if let Some(secret) = &self.secret {
            let signature = format!("sha256={}", sign(secret, in_flight.body.as_bytes()));
            if let Ok(value) = HeaderValue::from_str(&signature) {
                headers.insert(HeaderName::from_static(SIGNATURE_HEADER), value);
            }
        }
        headers
    }

    /// Where the fallback, if there is one, takes hand-overs; said once if it names
    /// no receiver.
    fn fallback_sender(&mut self) -> Option<mpsc::Sender<Handoff>> {
        let name = self.fallback.as_deref()?;
        let found = self.fallbacks.get(name);
        if found.is_none() && !self.fallback_missing_said {
            self.fallback_missing_said = true;
            tracing::error!(
                receiver = %self.receiver.name(),
                fallback = %Escaped(name),
                "The fallback receiver is not a webhook sink of this pipeline; notifications wait for this receiver instead."
            );
        }
        found
    }

    /// Hands `in_flight`'s alerts to `fallback`; `false` if it cannot take them now
    /// (then they stay, and are tried here again). Nothing is handed over once the
    /// input closed: the fallback may have stopped taking hand-overs, and what this
    /// receiver keeps stays in its ledger for the next start.
    fn hand_over(&self, fallback: &mpsc::Sender<Handoff>, in_flight: &InFlight) -> bool {
        if self.closing.is_cancelled() {
            return false;
        }
        let handoff = Handoff {
            from: self.grouping.receiver.clone(),
            entries: in_flight.entries.clone(),
        };
        match fallback.try_send(handoff) {
            Ok(()) => {
                tracing::warn!(
                    receiver = %self.receiver.name(),
                    fallback = %Escaped(self.fallback.as_deref().unwrap_or_default()),
                    alerts = in_flight.entries.len(),
                    "Receiver could not take a notification; its alerts go to the fallback receiver."
                );
                true
            }
            Err(_) => {
                tracing::warn!(
                    receiver = %self.receiver.name(),
                    "The fallback receiver cannot take more now; the notification stays with this receiver."
                );
                false
            }
        }
    }
}

/// The HMAC-SHA256 of `body` with `secret`, in hex.
pub fn sign(secret: &SecretText, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.expose()).expect("HMAC takes keys of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}
