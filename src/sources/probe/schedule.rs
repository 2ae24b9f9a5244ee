//! The scheduler: runs a check's [`Probe`] on its interval and turns its attempts into
//! [`ProbeResult`]s, on the checks' own thread. Everything about time lives here:
//!
//! - each check has its own interval, and its first tick falls at a random offset
//!   inside the first interval, so a thousand checks started together do not fire
//!   together;
//! - a tick is one attempt plus retries under the retry policy, each attempt cut at
//!   `timeout`, and the whole tick cut at the interval, so a check never overlaps
//!   itself;
//! - a tick that starts late (a slow downstream, a busy machine) is not followed by a
//!   burst of catch-up ticks: missed ticks are skipped and the check keeps its phase.
//!   How late each tick started is carried on the result (`late`).
//!

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::attempt::{Attempt, MAX_DETAIL_BYTES, Probe, bounded_detail};
use crate::base::component::{NodeError, Output, Source};
use crate::base::dedicated::Dedicated;
use crate::base::event::{Event, FailureReason, Outcome, ProbeKind, ProbeResult, ServiceName};
use crate::base::retry::RetryPolicy;
use crate::sources::supervisor::Supervised;

/// A check with its schedule: the running source.
pub(super) struct Scheduled {
    pub(super) service: ServiceName,
    pub(super) check: Arc<str>,
    pub(super) kind: ProbeKind,
    pub(super) interval: Duration,
    pub(super) timeout: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) probe: Box<dyn Probe>,
    /// `--once`: one tick, at once, then stop.
    pub(super) once: bool,
    /// The pipeline's supervisors that restart on unhealthy results: the service's,
    /// if it is one of them, gets every result.
    pub(super) supervised: Arc<Supervised>,
}

impl Source for Scheduled {
    /// Runs the check on the checks' own thread ([`CHECKS`]).
    fn run(
        self: Box<Self>,
        out: Output,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move { CHECKS.run(self.schedule(out, shutdown)).await })
    }
}

/// Checks' first ticks fall on multiples of this, so that checks whose ticks are close
/// together wake the checks' thread once between them rather than once each.
const TICK_SLOT: Duration = Duration::from_millis(10);

/// Where in its first interval a check's first tick falls: anywhere, at random (so
/// that checks started together do not fire together), rounded down to a
/// [`TICK_SLOT`]. Later ticks keep that phase when the interval is a multiple of the
/// slot, as intervals written in seconds or milliseconds by tens are.
fn first_offset(interval: Duration, rng: &mut fastrand::Rng) -> Duration {
    let slots = (interval.as_nanos() / TICK_SLOT.as_nanos()) as u64;
    if slots < 2 {
        return interval.mul_f64(rng.f64());
    }
    TICK_SLOT * rng.u64(0..slots) as u32
}

/// The thread every check runs on (see [`Dedicated`]).
static CHECKS: Dedicated = Dedicated::new("aegis-checks", true);

impl Scheduled {
    /// Runs a tick every interval until shutdown (or, with `once`, one tick at once).
    async fn schedule(self: Box<Self>, out: Output, shutdown: CancellationToken) {
        let mut rng = fastrand::Rng::new();
        let offset = if self.once {
            Duration::ZERO
        } else {
            first_offset(self.interval, &mut rng)
        };
        let mut ticks = tokio::time::interval_at(Instant::now() + offset, self.interval);
        // A late tick is followed by the next one on the original phase, never by a
        // burst of the ticks it missed.
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            let scheduled = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                scheduled = ticks.tick() => scheduled,
            };
            let result = tokio::select! {
                biased;
                () = shutdown.cancelled() => return,
                result = self.tick(scheduled, &mut rng) => result,
            };
            // Looked up each time: a reload may replace the service's supervisor.
            if let Some(supervisor) = self.supervised.reporter(&self.service) {
                supervisor.report(&self.check, result.outcome == Outcome::Down);
            }
            if out.send(vec![Event::ProbeResult(result)]).await.is_err() || self.once {
                return;
            }
        }
    }

    /// One tick: attempts until one is not down, the attempts run out, or the next
    /// attempt could not finish before the tick's budget (its interval) is spent.
    async fn tick(&self, scheduled: Instant, rng: &mut fastrand::Rng) -> ProbeResult {
        let started = Instant::now();
        let at = SystemTime::now();
        let budget_end = started + self.interval;
        let mut delays = self.retry.delays(rng.fork());
        let mut attempts = 0;
        loop {
            attempts += 1;
            let began = Instant::now();
            let attempt = match tokio::time::timeout(self.timeout, self.probe.attempt()).await {
                Ok(attempt) => attempt,
                Err(_) => Attempt::down(
                    FailureReason::Timeout,
                    format!(
                        "timed out after {}",
                        humantime::format_duration(self.timeout)
                    ),
                ),
            };
            let latency = began.elapsed();
            // A retry is made only if it can have its whole timeout before the next
            // tick is due: one cut shorter would hide the real failure behind a timeout.
            let retry_at = delays.next().map(|delay| Instant::now() + delay);
            let retry = attempt.outcome == Outcome::Down
                && attempts < self.retry.max_attempts
                && retry_at.is_some_and(|at| at + self.timeout <= budget_end);
            if !retry {
                return ProbeResult {
                    service: self.service.clone(),
                    check: self.check.clone(),
                    kind: self.kind,
                    at,
                    late: started.saturating_duration_since(scheduled),
                    outcome: attempt.outcome,
                    latency,
                    attempts,
                    status: attempt.status,
                    reason: attempt.reason,
                    detail: if attempt.detail.len() > MAX_DETAIL_BYTES {
                        bounded_detail(&attempt.detail)
                    } else {
                        attempt.detail
                    },
                    perfdata: attempt.perfdata,
                };
            }
            if let Some(at) = retry_at {
                tokio::time::sleep_until(at).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler on tokio's paused clock: time moves only when every task waits,
    //! so intervals, timeouts and retry budgets are exact.

    use std::sync::atomic::{AtomicU32, Ordering};

    use tokio::sync::mpsc;

    use super::*;
    use crate::base::component::{Batch, Wiring};
    use crate::base::retry::Jitter;
    use crate::sources::probe::check::CheckConfig;

    /// A probe that takes `takes` of (virtual) time and then is down, `hangs` forever,
    /// and counts its attempts.
    struct Fake {
        takes: Duration,
        hangs: bool,
        attempts: Arc<AtomicU32>,
    }

    impl Probe for Fake {
        fn attempt(&self) -> BoxFuture<'_, Attempt> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                if self.hangs {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(self.takes).await;
                Attempt::down(FailureReason::Status, "status 503")
            })
        }
    }

    fn check(interval: u64, timeout: u64, retry: RetryPolicy, probe: Fake) -> Scheduled {
        Scheduled {
            service: "s".into(),
            check: "c".into(),
            kind: ProbeKind::Http,
            interval: Duration::from_secs(interval),
            timeout: Duration::from_secs(timeout),
            retry,
            probe: Box::new(probe),
            once: false,
            supervised: Arc::default(),
        }
    }

    fn fake(takes: u64, hangs: bool) -> (Fake, Arc<AtomicU32>) {
        let attempts = Arc::new(AtomicU32::new(0));
        let probe = Fake {
            takes: Duration::from_secs(takes),
            hangs,
            attempts: Arc::clone(&attempts),
        };
        (probe, attempts)
    }

    /// Runs `check` for `run` of virtual time, the downstream channel holding
    /// `capacity` batches and read only after `stall`; returns each result with the
    /// virtual time it was received, from the start.
    async fn run_for(
        check: Scheduled,
        run: Duration,
        capacity: usize,
        stall: Duration,
    ) -> Vec<(Duration, ProbeResult)> {
        let (sender, mut receiver) = mpsc::channel::<Batch>(capacity);
        let shutdown = CancellationToken::new();
        let start = Instant::now();
        let task = tokio::spawn(Box::new(check).schedule(
            Output::new(Arc::new(Wiring::new(vec![sender])), Arc::default()),
            shutdown.clone(),
        ));
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(run).await;
            stop.cancel();
        });
        tokio::time::sleep(stall).await;
        let mut results = Vec::new();
        while let Some(batch) = receiver.recv().await {
            for event in batch.iter() {
                if let Event::ProbeResult(result) = event {
                    results.push((start.elapsed(), result.clone()));
                }
            }
        }
        task.await.unwrap();
        results
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_keep_their_interval_and_a_hung_probe_is_cut_at_its_timeout() {
        let (probe, attempts) = fake(0, true);
        let results = run_for(
            check(10, 4, RetryPolicy::default(), probe),
            Duration::from_secs(100),
            64,
            Duration::ZERO,
        )
        .await;
        // One tick per interval; the first falls somewhere in the first interval, and
        // the last may be cut short by the end of the run.
        assert!(
            (9..=10).contains(&results.len()),
            "{} results",
            results.len()
        );
        assert!(attempts.load(Ordering::SeqCst) <= results.len() as u32 + 1);
        let first = results[0].0;
        assert!(
            first >= Duration::from_secs(4) && first < Duration::from_secs(14),
            "{first:?}"
        );
        for pair in results.windows(2) {
            assert_eq!(
                pair[1].0 - pair[0].0,
                Duration::from_secs(10),
                "ticks drift"
            );
        }
        for (_, result) in &results {
            assert_eq!(result.latency, Duration::from_secs(4));
            assert_eq!(result.reason, Some(FailureReason::Timeout));
            assert_eq!(result.detail, "timed out after 4s");
            // The timer wheel's resolution is a millisecond.
            assert!(result.late < Duration::from_millis(2), "{:?}", result.late);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn first_ticks_are_spread_across_the_interval() {
        let mut firsts = Vec::new();
        for _ in 0..20 {
            let (probe, _) = fake(0, false);
            // Until just before the second tick of a check whose first fell at 0.
            let results = run_for(
                check(10, 1, RetryPolicy::default(), probe),
                Duration::from_millis(9_995),
                64,
                Duration::ZERO,
            )
            .await;
            assert_eq!(results.len(), 1);
            firsts.push(results[0].0.as_millis());
        }
        firsts.sort();
        firsts.dedup();
        assert!(firsts.len() > 15, "first ticks bunch up: {firsts:?}");
        // On 10 ms slots, give or take the timer wheel's millisecond.
        assert!(firsts.iter().all(|ms| ms % 10 <= 1), "{firsts:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_downstream_delays_results_without_a_burst_of_catch_up_ticks() {
        let (probe, attempts) = fake(1, false);
        // The channel holds one batch and is not read for 60 s: the check blocks on
        // its second send, and its missed ticks are skipped rather than made up.
        let results = run_for(
            check(10, 5, RetryPolicy::default(), probe),
            Duration::from_secs(100),
            1,
            Duration::from_secs(60),
        )
        .await;
        let made = attempts.load(Ordering::SeqCst);
        assert!(made <= 8, "{made} attempts: missed ticks were made up");
        assert!(
            made <= results.len() as u32 + 1,
            "{made} attempts, {} results",
            results.len()
        );
        // One tick runs late when the send unblocks, and the next may start a little
        // late behind it (by less than that tick took); the rest keep their phase.
        let late: Vec<Duration> = results.iter().map(|(_, r)| r.late).collect();
        let a_little = late.iter().filter(|l| **l < Duration::from_secs(2)).count();
        assert!(a_little + 1 >= late.len(), "{late:?}");
        let on_time = late
            .iter()
            .filter(|l| **l < Duration::from_millis(2))
            .count();
        assert!(on_time + 2 >= late.len(), "{late:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_tick_budget() {
        // Down at once every time; delays of 1 s, 2 s, 4 s: with a 4 s interval the
        // third attempt (at 3 s) would wait until 7 s, past the budget.
        let (probe, attempts) = fake(0, false);
        let retry = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_secs(1),
            multiplier: 2.0,
            max_delay: Duration::from_secs(60),
            jitter: Jitter::None,
        };
        let results = run_for(
            check(4, 1, retry, probe),
            Duration::from_secs(8),
            64,
            Duration::ZERO,
        )
        .await;
        assert!(!results.is_empty());
        for (_, result) in &results {
            assert_eq!(result.attempts, 3);
        }
        // A tick cut short by the end of the run made attempts but no result.
        assert!(attempts.load(Ordering::SeqCst) >= 3 * results.len() as u32);
    }

    /// Issue 9: with `interval: 5s`, `retry: {max_attempts: 3}` and no `timeout`, the
    /// default timeout was the interval, so no retry ever fitted in a tick. The
    /// default now leaves room for every attempt, even when each one hangs until it is
    /// cut, and for the longest retry delays.
    #[tokio::test(start_paused = true)]
    async fn the_default_timeout_leaves_room_for_every_attempt_asked_for() {
        let config: CheckConfig =
            serde_norway::from_str("{service: s, interval: 5s, retry: {max_attempts: 3}}").unwrap();
        let (probe, attempts) = fake(0, true);
        let scheduled = Scheduled {
            timeout: config.timeout(),
            ..check(5, 0, config.retry.clone(), probe)
        };
        let results = run_for(scheduled, Duration::from_secs(30), 64, Duration::ZERO).await;
        assert!(results.len() >= 4, "{} results", results.len());
        for (_, result) in &results {
            assert_eq!(result.attempts, 3, "{result:?}");
            assert_eq!(result.reason, Some(FailureReason::Timeout));
        }
        assert!(attempts.load(Ordering::SeqCst) >= 3 * results.len() as u32);
    }
}
