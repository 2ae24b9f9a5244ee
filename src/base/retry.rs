//! Retry policies: how many attempts a health check makes in one tick, or a notifier
//! makes before it turns to its fallback, and how long each waits between them.
//!
//! The delay before retry `n` grows exponentially from `initial_delay` by `multiplier`,
//! capped at `max_delay`, and is then spread by jitter so that many checks failing
//! together do not retry in lockstep. The jitter modes are those of the AWS
//! architecture blog's "Exponential Backoff And Jitter" (Marc Brooker, 2015), with
//! `base = initial_delay`, `cap = max_delay` and `exp = min(cap, base * multiplier^n)`:
//!
//! | jitter | delay |
//! |---|---|
//! | `none` | `exp` |
//! | `full` | uniform in `[0, exp]` |
//! | `equal` | `exp / 2` + uniform in `[0, exp / 2]` |
//! | `decorrelated` | `min(cap, uniform in [base, previous * 3])`, `previous` starting at `base` |
//!
//! ```yaml
//! retry:
//!   max_attempts: 3        # 1 = no retries (the default)
//!   initial_delay: 200ms
//!   multiplier: 2
//!   max_delay: 5s
//!   jitter: full           # none | full | equal | decorrelated
//! ```

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize};

/// A check's retry policy, as configured.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts per tick, the first included. Default 1: no retries.
    #[serde(default = "default_max_attempts", deserialize_with = "at_least_one")]
    pub max_attempts: u32,
    /// The delay before the first retry, before jitter. Default `200ms`.
    #[serde(default = "default_initial_delay", with = "crate::base::duration")]
    pub initial_delay: Duration,
    /// How much each delay grows over the one before. Default 2; at least 1.
    #[serde(default = "default_multiplier", deserialize_with = "growth_factor")]
    pub multiplier: f64,
    /// No delay is longer than this. Default `5s`.
    #[serde(default = "default_max_delay", with = "crate::base::duration")]
    pub max_delay: Duration,
    /// How delays are spread. Default `full`.
    #[serde(default)]
    pub jitter: Jitter,
}

/// How a delay is randomised; see the module documentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    None,
    #[default]
    Full,
    Equal,
    Decorrelated,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: default_max_attempts(),
            initial_delay: default_initial_delay(),
            multiplier: default_multiplier(),
            max_delay: default_max_delay(),
            jitter: Jitter::default(),
        }
    }
}

/// Delays grow for this many retries at most; later ones repeat the last, which keeps
/// `powi` finite and [`RetryPolicy::delay_bounds`] short.
const GROWTH_STEPS: u32 = 1_000;

fn default_max_attempts() -> u32 {
    1
}

fn default_initial_delay() -> Duration {
    Duration::from_millis(200)
}

fn default_multiplier() -> f64 {
    2.0
}

fn default_max_delay() -> Duration {
    Duration::from_secs(5)
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    match u32::deserialize(deserializer)? {
        0 => Err(serde::de::Error::custom(
            "max_attempts must be at least 1 (1 means no retries)",
        )),
        n => Ok(n),
    }
}

fn growth_factor<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    let factor = f64::deserialize(deserializer)?;
    if factor.is_finite() && (1.0..=100.0).contains(&factor) {
        Ok(factor)
    } else {
        Err(serde::de::Error::custom(format!(
            "multiplier {factor} is out of range; expected a number from 1 to 100"
        )))
    }
}

impl RetryPolicy {
    /// The delays of one tick's retries, drawn from `rng`.
    pub fn delays(&self, rng: fastrand::Rng) -> Delays<'_> {
        Delays {
            policy: self,
            rng,
            retry: 0,
            previous: self.initial_delay,
        }
    }

    /// The shortest and the longest that the delays of one tick's retries (all
    /// `max_attempts - 1` of them) can add up to, whatever jitter draws: what a tick
    /// must leave room for besides its attempts.
    pub fn delay_bounds(&self) -> (Duration, Duration) {
        let retries = self.max_attempts.saturating_sub(1);
        let (mut shortest, mut longest) = (Duration::ZERO, Duration::ZERO);
        let mut bounds = (Duration::ZERO, Duration::ZERO);
        // Decorrelated jitter draws up to three times the delay before.
        let mut decorrelated_high = self.initial_delay;
        // Past GROWTH_STEPS the exponential no longer grows, and decorrelated delays
        // reach their cap within 64 triplings: every later delay has these bounds.
        let counted = retries.min(GROWTH_STEPS + 1);
        for retry in 0..counted {
            let exp = self.exponential(retry);
            bounds = match self.jitter {
                Jitter::None => (exp, exp),
                Jitter::Full => (Duration::ZERO, exp),
                Jitter::Equal => (exp / 2, exp),
                Jitter::Decorrelated => {
                    decorrelated_high = (decorrelated_high.saturating_mul(3))
                        .max(self.initial_delay)
                        .min(self.max_delay);
                    (self.initial_delay.min(self.max_delay), decorrelated_high)
                }
            };
            shortest = shortest.saturating_add(bounds.0);
            longest = longest.saturating_add(bounds.1);
        }
        let rest = retries - counted;
        (
            shortest.saturating_add(bounds.0.saturating_mul(rest)),
            longest.saturating_add(bounds.1.saturating_mul(rest)),
        )
    }

    /// The exponential delay before retry `retry` (0 for the first), capped, before
    /// jitter.
    fn exponential(&self, retry: u32) -> Duration {
        let growth = self.multiplier.powi(retry.min(GROWTH_STEPS) as i32);
        let seconds = self.initial_delay.as_secs_f64() * growth;
        if seconds >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(seconds)
        }
    }
}

/// The delays between the attempts of one tick: an endless sequence, the caller stops
/// after `max_attempts - 1`.
pub struct Delays<'a> {
    policy: &'a RetryPolicy,
    rng: fastrand::Rng,
    retry: u32,
    /// The last delay given, for decorrelated jitter.
    previous: Duration,
}

impl Iterator for Delays<'_> {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let policy = self.policy;
        let exp = policy.exponential(self.retry);
        self.retry = self.retry.saturating_add(1);
        let delay = match policy.jitter {
            Jitter::None => exp,
            Jitter::Full => uniform(&mut self.rng, Duration::ZERO, exp),
            Jitter::Equal => exp / 2 + uniform(&mut self.rng, Duration::ZERO, exp / 2),
            Jitter::Decorrelated => {
                let high = self.previous.saturating_mul(3).max(policy.initial_delay);
                uniform(&mut self.rng, policy.initial_delay, high).min(policy.max_delay)
            }
        };
        self.previous = delay;
        Some(delay)
    }
}

/// A duration drawn uniformly from `[low, high]`, at nanosecond resolution.
fn uniform(rng: &mut fastrand::Rng, low: Duration, high: Duration) -> Duration {
    let (low, high) = (nanos(low), nanos(high));
    Duration::from_nanos(rng.u64(low..=high.max(low)))
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: Jitter) -> RetryPolicy {
        RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(3),
            jitter,
        }
    }

    /// The un-jittered delay before retry `n` of [`policy`]: 100 ms doubling, capped at 3 s.
    fn exp(n: usize) -> Duration {
        Duration::from_millis(100 * (1 << n)).min(Duration::from_secs(3))
    }

    const DRAWS: u64 = 2_000;

    #[test]
    fn no_jitter_is_exponential_and_capped() {
        let delays: Vec<Duration> = policy(Jitter::None)
            .delays(fastrand::Rng::with_seed(1))
            .take(8)
            .collect();
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3000, 3000, 3000]);
    }

    #[test]
    fn full_jitter_stays_within_zero_and_the_exponential() {
        let policy = policy(Jitter::Full);
        let mut seen_low = false;
        for seed in 0..DRAWS {
            for (n, delay) in policy
                .delays(fastrand::Rng::with_seed(seed))
                .take(8)
                .enumerate()
            {
                assert!(delay <= exp(n), "retry {n}: {delay:?} > {:?}", exp(n));
                seen_low |= n == 7 && delay < Duration::from_millis(300);
            }
        }
        assert!(seen_low, "full jitter should reach near zero");
    }

    #[test]
    fn equal_jitter_stays_within_half_and_the_exponential() {
        let policy = policy(Jitter::Equal);
        for seed in 0..DRAWS {
            for (n, delay) in policy
                .delays(fastrand::Rng::with_seed(seed))
                .take(8)
                .enumerate()
            {
                assert!(
                    exp(n) / 2 <= delay && delay <= exp(n),
                    "retry {n}: {delay:?} not in [{:?}, {:?}]",
                    exp(n) / 2,
                    exp(n)
                );
            }
        }
    }

    #[test]
    fn decorrelated_jitter_stays_within_initial_and_max_and_grows_from_the_previous() {
        let policy = policy(Jitter::Decorrelated);
        let mut reached_cap = false;
        for seed in 0..DRAWS {
            let mut previous = policy.initial_delay;
            for delay in policy.delays(fastrand::Rng::with_seed(seed)).take(12) {
                assert!(
                    policy.initial_delay <= delay && delay <= policy.max_delay,
                    "{delay:?}"
                );
                assert!(delay <= previous * 3, "{delay:?} > 3 × {previous:?}");
                reached_cap |= delay == policy.max_delay;
                previous = delay;
            }
        }
        assert!(
            reached_cap,
            "twelve decorrelated draws should sometimes reach the cap"
        );
    }

    #[test]
    fn jitter_spreads_delays() {
        let policy = policy(Jitter::Full);
        let first: std::collections::BTreeSet<Duration> = (0..100)
            .map(|seed| {
                policy
                    .delays(fastrand::Rng::with_seed(seed))
                    .next()
                    .unwrap()
            })
            .collect();
        assert!(
            first.len() > 90,
            "only {} distinct first delays",
            first.len()
        );
    }

    #[test]
    fn huge_retry_counts_and_multipliers_saturate_at_the_cap() {
        let policy = RetryPolicy {
            multiplier: 100.0,
            ..policy(Jitter::None)
        };
        let last = policy
            .delays(fastrand::Rng::with_seed(3))
            .nth(5_000)
            .unwrap();
        assert_eq!(last, policy.max_delay);
    }

    #[test]
    fn delay_bounds_hold_every_draw_and_are_reached() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let policy = RetryPolicy {
                max_attempts: 8,
                ..policy(jitter)
            };
            let (shortest, longest) = policy.delay_bounds();
            let (mut least, mut most) = (Duration::MAX, Duration::ZERO);
            for seed in 0..DRAWS {
                let sum: Duration = policy.delays(fastrand::Rng::with_seed(seed)).take(7).sum();
                assert!(shortest <= sum && sum <= longest, "{jitter:?}: {sum:?}");
                (least, most) = (least.min(sum), most.max(sum));
            }
            // The bounds are tight: draws come within a fifth of each.
            assert!(least - shortest <= (longest - shortest) / 5, "{jitter:?}");
            assert!(longest - most <= (longest - shortest) / 5, "{jitter:?}");
        }
        // 100 ms, 200 ms, ... 1.6 s, then the 3 s cap.
        let (shortest, longest) = RetryPolicy {
            max_attempts: 8,
            ..policy(Jitter::None)
        }
        .delay_bounds();
        assert_eq!(
            (shortest, longest),
            (Duration::from_millis(9_100), Duration::from_millis(9_100))
        );
        assert_eq!(
            RetryPolicy::default().delay_bounds(),
            (Duration::ZERO, Duration::ZERO)
        );
        // Four billion retries are summed in no time: 300 ms, 900 ms, 2.7 s, then 3 s.
        let (_, longest) = RetryPolicy {
            max_attempts: u32::MAX,
            ..policy(Jitter::Decorrelated)
        }
        .delay_bounds();
        assert_eq!(
            longest,
            Duration::from_secs(3) * (u32::MAX - 1) - Duration::from_millis(5_100)
        );
    }

    #[test]
    fn configuration_defaults_and_limits() {
        let policy: RetryPolicy = serde_norway::from_str("{}").unwrap();
        assert_eq!(policy, RetryPolicy::default());
        let err = serde_norway::from_str::<RetryPolicy>("max_attempts: 0").unwrap_err();
        assert!(err.to_string().contains("at least 1"), "{err}");
        let err = serde_norway::from_str::<RetryPolicy>("multiplier: 0.5").unwrap_err();
        assert!(err.to_string().contains("from 1 to 100"), "{err}");
        let err = serde_norway::from_str::<RetryPolicy>("jitter: random").unwrap_err();
        assert!(err.to_string().contains("decorrelated"), "{err}");
    }
}
