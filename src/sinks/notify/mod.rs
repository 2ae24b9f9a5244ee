//! What the notifiers (the `webhook` and `alertmanager` sinks) have in common, and what
//! they share with the `prometheus` sink.
//!
//! [`payload`] writes an alert as Alertmanager does; [`ledger`] is a receiver's
//! durable record of what it was told and what it has yet to be told (the outbox);
//! [`delivery`] sends one notification with retries, backoff and `Retry-After`.
//! [`Deliveries`] holds their delivery metrics: each notifier updates them as it
//! sends, and the `prometheus` sink registers them so that `/metrics` shows them. They
//! live in the pipeline's [`Shared`](crate::base::registry::Shared) state, made by
//! whichever of those sinks is built first.

pub mod delivery;
pub mod ledger;
pub mod payload;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Delivery metrics of every notifier of a pipeline, labelled by `sink` (the
/// receiver's name).
pub struct Deliveries {
    /// `aegis_notifications_total{sink,result}`: notifications by how their delivery
    /// ended (`delivered`, `failed`, ...); a retried attempt counts as `retried`.
    pub notifications: IntCounterVec,
    /// `aegis_notification_delivery_seconds{sink}`: from the alert's change of state
    /// to the receiver's acknowledgement.
    pub latency: HistogramVec,
    /// `aegis_notification_queue_depth{sink}`: notifications waiting to be delivered.
    pub queued: IntGaugeVec,
}

impl Default for Deliveries {
    fn default() -> Self {
        let sink = &["sink"];
        Deliveries {
            notifications: IntCounterVec::new(
                Opts::new(
                    "aegis_notifications_total",
                    "Notifications sent to receivers, by result: delivered, retried (an attempt that will be tried again), failed (refused for good, or handed to the fallback).",
                ),
                &["sink", "result"],
            )
            .expect("a valid metric"),
            latency: HistogramVec::new(
                HistogramOpts::new(
                    "aegis_notification_delivery_seconds",
                    "Time from an alert's change of state to its receiver's acknowledgement.",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                    30.0, 60.0, 300.0,
                ]),
                sink,
            )
            .expect("a valid metric"),
            queued: IntGaugeVec::new(
                Opts::new(
                    "aegis_notification_queue_depth",
                    "Notifications waiting to be delivered, per receiver.",
                ),
                sink,
            )
            .expect("a valid metric"),
        }
    }
}

impl Deliveries {
    /// Adds the metrics to `registry` (the `prometheus` sink's).
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.notifications.clone()))?;
        registry.register(Box::new(self.latency.clone()))?;
        registry.register(Box::new(self.queued.clone()))
    }
}
