//! The options every check has, whatever its protocol (`service`, `check`, `interval`,
//! `timeout`, `retry`), their defaults, and the rule that a tick holds what it is
//! asked: every attempt of the retry policy, with its delays, fits in the interval.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::base::diagnostics::Diagnostics;
use crate::base::key_path::KeyPath;
use crate::base::retry::RetryPolicy;

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

/// A default timeout cut below this to fit the retries is said (a warning): shorter,
/// a slow but healthy service fails its checks.
const SHORT_TIMEOUT: Duration = Duration::from_secs(1);

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
        // How long a tick takes at most when every attempt runs to `timeout`.
        let longest = |timeout: Duration| timeout.saturating_mul(attempts).saturating_add(delays);
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
            Some(timeout) if longest(timeout) > self.interval => {
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
                        show(longest(timeout)),
                        show(self.interval)
                    ),
                );
            }
            // Fits, but only in the tenth of the interval kept for late wake-ups: on
            // a busy machine the last attempt will sometimes not be made.
            Some(timeout) if attempts > 1 && longest(timeout) > self.interval - self.interval / 10 => {
                diag.warn(
                    &path.key("timeout"),
                    format!(
                        "{attempts} attempts of up to `{}` with retry delays of up to `{}` take up to `{}`, more than 90 % of the interval `{}`: when the machine is busy and a timer fires late, the last attempt is skipped rather than cut short; a timeout of `{}` or less leaves that margin",
                        show(timeout),
                        show(delays),
                        show(longest(timeout)),
                        show(self.interval),
                        show(room)
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
            // The default cut to fit the retries: said when it is short enough to
            // fail a slow but healthy service.
            None if attempts > 1 && self.timeout() < SHORT_TIMEOUT => diag.warn(
                &path.key("retry"),
                format!(
                    "with {attempts} attempts and retry delays of up to `{}` in the interval `{}`, each attempt gets a timeout of `{}`; set `timeout` to say so, or lengthen `interval`, or lower `retry.max_attempts`",
                    show(delays),
                    show(self.interval),
                    show(self.timeout())
                ),
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::spans::SpanIndex;

    /// The warnings and errors `check_budget` gives the options `yaml`.
    fn judged(yaml: &str) -> (Vec<String>, Vec<String>) {
        let spans = SpanIndex::build(yaml);
        let mut diag = Diagnostics::new(&spans);
        let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        let config: CheckConfig = diag.decode(&value, &KeyPath::root()).unwrap();
        config.check_budget(&KeyPath::root(), &mut diag);
        let (errors, warnings) = diag.finish();
        let messages = |all: Vec<crate::base::diagnostics::Diagnostic>| {
            all.into_iter().map(|d| d.message).collect::<Vec<_>>()
        };
        (messages(errors), messages(warnings))
    }

    #[test]
    fn a_timeout_that_fits_only_in_the_margin_is_warned_about() {
        let fits = "service: s\ninterval: 10s\ntimeout: 2s\nretry: {max_attempts: 3, initial_delay: 100ms, max_delay: 100ms, jitter: none}\n";
        assert_eq!(judged(fits), (vec![], vec![]));
        // 3 × 3 s + 0.2 s = 9.2 s: in the interval, not in its first nine tenths.
        let tight = fits.replace("timeout: 2s", "timeout: 3s");
        let (errors, warnings) = judged(&tight);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("take up to `9s 200ms`, more than 90 %"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("a timeout of `2s 933ms` or less"),
            "{warnings:?}"
        );
        // 3 × 3.5 s + 0.2 s = 10.7 s: past the interval, an error.
        let over = fits.replace("timeout: 2s", "timeout: 3500ms");
        assert_eq!(judged(&over).0.len(), 1);
    }

    #[test]
    fn a_default_timeout_cut_short_by_the_retries_is_said() {
        let cut = "service: s\ninterval: 10s\nretry: {max_attempts: 10, initial_delay: 500ms, max_delay: 500ms, jitter: none}\n";
        let (errors, warnings) = judged(cut);
        assert_eq!(errors, Vec::<String>::new());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("each attempt gets a timeout of `"),
            "{warnings:?}"
        );
        let roomy = "service: s\ninterval: 10s\nretry: {max_attempts: 3}\n";
        assert_eq!(judged(roomy), (vec![], vec![]));
    }
}
