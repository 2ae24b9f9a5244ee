//! Health-check sources: the options every check shares, and the scheduler that runs a
//! check on its interval and turns its attempts into [`ProbeResult`]s.
//!
//! A check is one source node (`http_probe`, `tcp_probe`, `grpc_probe`,
//! `script_probe`); each protocol's module only knows how to make one attempt
//! ([`Probe`]). Everything about time lives here:
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
//! ```yaml
//! sources:
//!   shop_health:
//!     type: http_probe
//!     service: shop
//!     check: health          # default: the node id
//!     interval: 10s          # default 10s
//!     timeout: 2s            # per attempt; default 5s, or less to fit the retries
//!     retry: { max_attempts: 3, initial_delay: 200ms, jitter: full }
//!     url: http://127.0.0.1:8080/health
//! ```

pub mod grpc;
pub mod http;
pub mod perfdata;
pub mod script;
pub mod tcp;

use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_norway::{Mapping, Value};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::retry::RetryPolicy;
use crate::base::diagnostics::{Diagnostics, closest};

use crate::base::component::{NodeError, Output, Source};
use crate::base::dedicated::Dedicated;
use crate::base::event::{
    Event, EventKind, FailureReason, Outcome, PerfSample, ProbeKind, ProbeResult, ProbeStatus,
    ServiceName,
};
use crate::base::key_path::KeyPath;
use crate::base::regex::syntax_problem;
use crate::base::registry::{BuildContext, ComponentType};

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
    const KEYS: [&'static str; 5] = ["service", "check", "interval", "timeout", "retry"];

    /// The attempt timeout: as configured, or else [`DEFAULT_TIMEOUT`] cut to the
    /// [room](Self::room_per_attempt) each attempt has, so that every attempt asked
    /// for is made even when each one is cut at its timeout.
    fn timeout(&self) -> Duration {
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
    fn check_budget(&self, path: &KeyPath, diag: &mut Diagnostics) {
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

/// A probe source's configuration: the shared options and the protocol's own, written
/// side by side in one mapping.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeConfig<P> {
    #[serde(flatten)]
    pub check: CheckConfig,
    #[serde(flatten)]
    pub probe: P,
}

/// A protocol's own options.
pub trait ProbeOptions: serde::de::DeserializeOwned + Serialize {
    /// The source's `type:` in configuration.
    const NAME: &'static str;
    /// The protocol, as results name it.
    const KIND: ProbeKind;

    /// Checks what decoding each key on its own cannot (keys that depend on each
    /// other), reporting problems at `path`, the node's options.
    fn check(&self, _path: &KeyPath, _diag: &mut Diagnostics) {}

    /// Makes the protocol's attempt maker.
    fn probe(&self, cx: &mut BuildContext) -> Box<dyn Probe>;
}

impl<P: ProbeOptions> ComponentType for ProbeConfig<P> {
    const NAME: &'static str = P::NAME;
    const ACCEPTS: &'static [EventKind] = &[];
    const EMITS: &'static [EventKind] = &[EventKind::ProbeResult];
    type Built = dyn Source;

    /// Decodes a probe node's options. The mapping is split in two, since serde cannot
    /// both flatten a struct and refuse unknown keys; each half is decoded on its own,
    /// so every bad key of either is reported.
    fn decode(body: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<ProbeConfig<P>> {
        let Some(options) = body.as_mapping() else {
            diag.decode::<CheckConfig>(body, path);
            return None;
        };
        // A misspelt shared key (`intervl`) goes with the shared ones, so that the
        // error suggests the key that was meant.
        let (shared, own): (Mapping, Mapping) =
            options.clone().into_iter().partition(|(key, _)| {
                key.as_str()
                    .is_some_and(|key| closest(key, CheckConfig::KEYS).is_some())
            });
        let check = diag.decode::<CheckConfig>(&Value::Mapping(shared), path);
        let probe = diag.decode::<P>(&Value::Mapping(own), path);
        if let Some(probe) = &probe {
            probe.check(path, diag);
        }
        let mut check = check?;
        if check.check.is_empty() {
            check.check = path.last_key().unwrap_or_default().to_owned();
        }
        check.check_budget(path, diag);
        Some(ProbeConfig {
            check,
            probe: probe?,
        })
    }

    /// The running source: the protocol's probe, which makes single attempts, on a
    /// schedule, with retries.
    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Source>> {
        Some(Box::new(Scheduled {
            service: self.check.service.as_str().into(),
            check: self.check.check.as_str().into(),
            kind: P::KIND,
            interval: self.check.interval,
            timeout: self.check.timeout(),
            retry: self.check.retry.clone(),
            probe: self.probe.probe(cx),
            once: cx.once,
        }))
    }

    fn check(&self) -> Option<(&str, &str)> {
        Some((&self.check.service, &self.check.check))
    }
}

/// A regular expression (regex crate syntax), compiled when decoded; it serialises, and
/// shows, as written.
#[derive(Clone, Debug)]
pub struct RegexText(regex::bytes::Regex);

impl RegexText {
    pub fn regex(&self) -> &regex::bytes::Regex {
        &self.0
    }
}

impl<'de> Deserialize<'de> for RegexText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        regex::bytes::Regex::new(&text)
            .map(RegexText)
            .map_err(|err| {
                let problem = match regex_syntax::Parser::new().parse(&text) {
                    Err(syntax) => syntax_problem(&text, &syntax),
                    Ok(_) => None,
                };
                // Past the syntax, the regex crate's own message (a size limit) is one line.
                let problem = problem.unwrap_or_else(|| err.to_string());
                serde::de::Error::custom(format!(
                    "`{text}` is not a valid regular expression: {problem}"
                ))
            })
    }
}

impl Serialize for RegexText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl fmt::Display for RegexText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// One attempt at a check, in one protocol.
pub trait Probe: Send + Sync + 'static {
    /// Makes one attempt. The scheduler drops the future when the attempt's time is
    /// up, so an attempt must leave nothing running when dropped (a script's process
    /// group is killed, a connection closed).
    fn attempt(&self) -> BoxFuture<'_, Attempt>;
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub outcome: Outcome,
    pub status: Option<ProbeStatus>,
    pub reason: Option<FailureReason>,
    pub detail: String,
    pub perfdata: Vec<PerfSample>,
}

impl Attempt {
    pub fn up(detail: impl Into<String>) -> Attempt {
        Attempt {
            outcome: Outcome::Up,
            status: None,
            reason: None,
            detail: detail.into(),
            perfdata: Vec::new(),
        }
    }

    pub fn down(reason: FailureReason, detail: impl Into<String>) -> Attempt {
        Attempt {
            outcome: Outcome::Down,
            status: None,
            reason: Some(reason),
            detail: detail.into(),
            perfdata: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: ProbeStatus) -> Attempt {
        self.status = Some(status);
        self
    }

    /// A failure from a connection or request error, its reason read off the error's
    /// causes.
    pub fn failed(error: &(dyn StdError + 'static)) -> Attempt {
        Attempt::down(reason_of(error), describe_error(error))
    }
}

/// The reason for a connection-level error: the first cause that says something
/// definite (TLS, refused, timed out, name not resolved) decides.
pub fn reason_of(error: &(dyn StdError + 'static)) -> FailureReason {
    for err in causes(error) {
        if err.is::<rustls::Error>() {
            return FailureReason::Tls;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {
                    return FailureReason::Refused;
                }
                ErrorKind::TimedOut => return FailureReason::Timeout,
                _ => {}
            }
        }
        // hyper-util reports a failed lookup as a plain error whose message says so;
        // it has no type of its own to test for.
        if err.to_string().starts_with("dns error") {
            return FailureReason::Dns;
        }
    }
    FailureReason::Other
}

/// An error's causes on one line, without the wrappers that say nothing ("error
/// sending request for url (...)", "client error (Connect)") or repeat a cause. The
/// request's URL is left out: its query may hold a secret.
pub fn describe_error(error: &(dyn StdError + 'static)) -> String {
    let all: Vec<&(dyn StdError + 'static)> = causes(error).collect();
    let mut parts: Vec<String> = Vec::new();
    for (i, err) in all.iter().enumerate() {
        let text = err.to_string();
        let wrapper = err.is::<reqwest::Error>() || text.starts_with("client error (");
        let last = i + 1 == all.len();
        if (wrapper && !last) || parts.iter().any(|part| part.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let text = parts.join(": ");
    if reason_of(error) == FailureReason::Tls {
        format!("TLS: {text}")
    } else {
        text
    }
}

/// The error and its causes, outermost first. An I/O error that wraps another error
/// (rustls's, hyper's) hides it from `source`, so the wrapped one is taken from it.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&err| {
        match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => err.source(),
        }
    })
}

/// A TCP connection to `address` (`host:port`): each address it resolves to is tried
/// in turn. The failure is the attempt's result: `dns` when the name does not
/// resolve, else the last connect error's reason.
pub async fn connect(address: &str) -> Result<tokio::net::TcpStream, Attempt> {
    let resolved = tokio::net::lookup_host(address).await.map_err(|err| {
        Attempt::down(
            FailureReason::Dns,
            format!("cannot resolve `{address}`: {err}"),
        )
    })?;
    let mut failure = Attempt::down(
        FailureReason::Dns,
        format!("`{address}` resolves to no address"),
    );
    for target in resolved {
        match tokio::net::TcpStream::connect(target).await {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                failure = Attempt::down(reason_of(&err), format!("connect to {target}: {err}"))
            }
        }
    }
    Err(failure)
}

/// A detail is cut to at most this many bytes, the ellipsis included, so that one
/// chatty server or plugin cannot blow up every event and log line that carries it.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// `text`, or its longest prefix that fits [`MAX_DETAIL_BYTES`] with an ellipsis after
/// it, cut at a char boundary.
pub fn bounded_detail(text: &str) -> String {
    const ELLIPSIS: &str = "…";
    if text.len() <= MAX_DETAIL_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_DETAIL_BYTES - ELLIPSIS.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", text[..end].trim_end())
}

/// A check with its schedule: the running source.
struct Scheduled {
    service: ServiceName,
    check: Arc<str>,
    kind: ProbeKind,
    interval: Duration,
    timeout: Duration,
    retry: RetryPolicy,
    probe: Box<dyn Probe>,
    /// `--once`: one tick, at once, then stop.
    once: bool,
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
    use crate::base::component::Batch;
    use crate::sources::retry::Jitter;

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
        let task = tokio::spawn(
            Box::new(check).schedule(Output::new(vec![sender], Arc::default()), shutdown.clone()),
        );
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

    #[test]
    fn no_protocol_key_is_taken_for_a_misspelt_shared_key() {
        let protocol_keys = [
            "url",
            "method",
            "headers",
            "expect_status",
            "body_contains",
            "body_regex",
            "follow_redirects",
            "tls_verify",
            "keepalive",
            "address",
            "send",
            "expect",
            "grpc_service",
            "tls",
            "command",
            "shell",
            "env",
            "working_dir",
        ];
        for key in protocol_keys {
            assert_eq!(closest(key, CheckConfig::KEYS), None, "{key}");
        }
    }
}
