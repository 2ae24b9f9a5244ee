//! Delivering one notification to one receiver, with retries: what the notifiers
//! share of "how hard to try".
//!
//! An attempt that gets a `2xx` is delivered. One refused for good (a `4xx` other
//! than `408` and `429`, a redirect loop) is not tried again. One that may succeed
//! later (no reply within the timeout, a refused or reset connection, `5xx`, `408`,
//! `429`) is tried again after the receiver's [`RetryPolicy`] delay, or after as long
//! as its `Retry-After` asks if that is longer (up to [`RETRY_AFTER_LIMIT`]). After
//! `max_attempts`, a notification that another receiver can take is given up;
//! otherwise it is never dropped: it is tried every `max_delay` until it goes
//! through. That the receiver is failing is logged once, when its attempts run out,
//! and that it recovered once; single attempts are logged at debug level. No log
//! holds a URL or a header value ([`SendError`] holds neither).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Deliveries;
use crate::base::retry::RetryPolicy;
use crate::http_client::{Reply, SendError};

/// The longest wait a `Retry-After` is granted: a receiver asking for an hour does
/// not hold alerts back for an hour.
pub const RETRY_AFTER_LIMIT: Duration = Duration::from_secs(5 * 60);

/// How long a refusal asked the sender to wait (its `Retry-After`, up to
/// [`RETRY_AFTER_LIMIT`]); zero when it asked nothing.
pub fn asked_wait(error: &SendError) -> Duration {
    match error {
        SendError::Status {
            retry_after: Some(asked),
            ..
        } => (*asked).min(RETRY_AFTER_LIMIT),
        _ => Duration::ZERO,
    }
}

/// How a delivery ended.
#[derive(Debug)]
pub enum Delivery {
    /// The receiver acknowledged it.
    Delivered,
    /// The receiver refused it for good.
    Refused(SendError),
    /// Every attempt of the policy failed, and the caller said another receiver
    /// could take it.
    Exhausted(SendError),
    /// The caller stopped it (a shutdown's grace ran out) before it ended.
    Stopped,
}

/// One receiver's deliveries: its name (in logs and the `sink` label), its retry
/// policy, and whether it is failing.
pub struct Receiver {
    name: Arc<str>,
    policy: RetryPolicy,
    deliveries: Arc<Deliveries>,
    failing: bool,
    rng: fastrand::Rng,
}

impl Receiver {
    pub fn new(name: Arc<str>, policy: RetryPolicy, deliveries: Arc<Deliveries>) -> Receiver {
        Receiver {
            name,
            policy,
            deliveries,
            failing: false,
            rng: fastrand::Rng::new(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Delivers one notification: `attempt` sends it once. `may_give_up` says whether
    /// another receiver would take it once every attempt of the policy failed;
    /// without one, attempts go on until one succeeds. `stop` ends the delivery
    /// wherever it is (mid-attempt or mid-wait).
    pub async fn deliver<F, Fut>(
        &mut self,
        mut attempt: F,
        may_give_up: bool,
        stop: &CancellationToken,
    ) -> Delivery
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Reply, SendError>>,
    {
        let mut delays = self.policy.delays(self.rng.fork());
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            let sent = tokio::select! {
                // Stopping wins a tie: a shutdown does not start another attempt.
                biased;
                () = stop.cancelled() => return Delivery::Stopped,
                sent = attempt() => sent,
            };
            let error = match sent {
                Ok(_) => {
                    self.count("delivered");
                    if std::mem::take(&mut self.failing) {
                        tracing::info!(receiver = %self.name, "Receiver accepts notifications again.");
                    }
                    return Delivery::Delivered;
                }
                Err(error) => error,
            };
            if !error.is_retryable() {
                self.count("failed");
                tracing::warn!(receiver = %self.name, error = %error, "Receiver refused a notification; it is not sent again.");
                return Delivery::Refused(error);
            }
            let exhausted = attempts >= self.policy.max_attempts;
            if exhausted && may_give_up {
                self.count("failed");
                return Delivery::Exhausted(error);
            }
            self.count("retried");
            let delay = if exhausted {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(
                        receiver = %self.name,
                        attempts,
                        error = %error,
                        "Receiver is failing; its notifications wait, and are tried again every {}.",
                        humantime::format_duration(self.policy.max_delay)
                    );
                }
                self.policy.max_delay
            } else {
                tracing::debug!(receiver = %self.name, attempts, error = %error, "Notification attempt failed; it will be tried again.");
                delays.next().unwrap_or(self.policy.max_delay)
            };
            let asked = asked_wait(&error);
            tokio::select! {
                biased;
                () = stop.cancelled() => return Delivery::Stopped,
                () = tokio::time::sleep(delay.max(asked)) => {}
            }
        }
    }

    fn count(&self, result: &str) {
        (self.deliveries.notifications)
            .with_label_values(&[&*self.name, result])
            .inc();
    }
}
