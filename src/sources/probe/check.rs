//! The options every check has, whatever its protocol (`service`, `check`, `interval`,
//! `timeout`, `retry`), their defaults, and the rule that a tick holds what it is
//! asked: every attempt of the retry policy, with its delays, fits in the interval.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::diagnostics::Diagnostics;
use crate::base::key_path::KeyPath;
use crate::sources::retry::RetryPolicy;

/// The options every check has, whatever its protocol.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CheckConfig {
    /// The service this check watches.
    pub service: String,
    /// The check's name, unique within the service. Default: the node's id.
    #[serde(default)]
    pub check: String,
    /// How often the check runs. Default `10s`.
    #[serde(default = "default_interval", with = "crate::base::duration")]
    pub interval: Duration,
    /// How long one attempt may take. Default `5s`, or less when the interval must
    /// hold every retry too (see [`CheckConfig::timeout`]); at most the interval.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::base::duration::optional"
    )]
    pub timeout: Option<Duration>,
    /// Retries within one tick. Default: none.
    #[serde(default)]
    pub retry: RetryPolicy,
}

fn default_interval() -> Duration {
    Duration::from_secs(10)
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

impl CheckConfig {
    /// The keys of [`CheckConfig`]: a probe node's options are split on these into
    /// the shared part and the protocol's own.
    pub(super) const KEYS: [&'static str; 5] = ["service", "check", "interval", "timeout", "retry"];

    /// The attempt timeout: as configured, or else [`DEFAULT_TIMEOUT`] cut to the
    /// [room](Self::room_per_attempt) each attempt has, so that every attempt asked
    /// for is made even when each one is cut at its timeout.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
            .unwrap_or_else(|| DEFAULT_TIMEOUT.min(self.room_per_attempt()))
    }

    /// How long each attempt may take for all `max_attempts` of them to fit in the
    /// interval with the longest retry delays between them, a tenth of the interval
    /// kept free: a retry is made only if it has its whole timeout before the next
    /// tick, and a loaded machine's wake-ups come late. In whole milliseconds, the
    /// timer's resolution; zero when the delays leave no room.
    fn room_per_attempt(&self) -> Duration {
        let (_, delays) = self.retry.delay_bounds();
        let room = (self.interval - self.interval / 10).saturating_sub(delays);
        let each = room / self.retry.max_attempts;
        Duration::from_millis(u64::try_from(each.as_millis()).unwrap_or(u64::MAX))
    }

    /// Checks that a tick can hold what it is asked to: one attempt no longer than
    /// the interval, or every attempt of the retry policy with its delays.
    pub(super) fn check_budget(&self, path: &KeyPath, diag: &mut Diagnostics) {
        let show = |duration: Duration| humantime::format_duration(duration).to_string();
        let attempts = self.retry.max_attempts;
        let (_, delays) = self.retry.delay_bounds();
        let room = self.room_per_attempt();
        let smaller_policy = "lengthen `interval`, or lower `retry.max_attempts`, `retry.initial_delay` or `retry.max_delay`";
        match self.timeout {
            Some(timeout) if attempts == 1 && timeout > self.interval => diag.error(
                &path.key("timeout"),
                format!(
                    "timeout `{}` is longer than the interval `{}`; a check must end before its next tick",
                    show(timeout),
                    show(self.interval)
                ),
            ),
            Some(timeout)
                if timeout
                    .saturating_mul(attempts)
                    .saturating_add(delays)
                    > self.interval =>
            {
                let fix = if room.is_zero() {
                    smaller_policy.to_owned()
                } else {
                    format!(
                        "shorten `timeout` to `{}` or less, lengthen `interval`, or lower `retry.max_attempts`",
                        show(room)
                    )
                };
                diag.error_at_key(
                    &path.key("retry"),
                    format!(
                        "{attempts} attempts of up to `{}` each (the timeout), with retry delays of up to `{}` between them, take up to `{}`, longer than the interval `{}`, so the last attempts would never be made; {fix}",
                        show(timeout),
                        show(delays),
                        show(timeout.saturating_mul(attempts).saturating_add(delays)),
                        show(self.interval)
                    ),
                );
            }
            None if room.is_zero() => diag.error_at_key(
                &path.key("retry"),
                format!(
                    "retry delays of up to `{}` between {attempts} attempts leave no time for the attempts in the interval `{}` (a tenth of which is kept free); {smaller_policy}",
                    show(delays),
                    show(self.interval)
                ),
            ),
            _ => {}
        }
    }
}
