//! The sentence an anomaly carries: what was seen, over what, against what.
//!
//! "shop latency p99 742 ms over 30 s, threshold 500 ms";
//! "shop error rate 0.21 (42 of 200 requests) over 30 s vs baseline 0.01 (robust z 9.3)".
//! Values are in the units people read (milliseconds for latency, requests/s), with
//! as many digits as tell something.

use std::time::Duration;

use super::detect::{Cause, Verdict};
use super::window::Closed;
use crate::base::event::{Reference, Signal};

/// What a sentence is made of.
pub struct Facts<'a> {
    pub service: &'a str,
    pub signal: &'a Signal,
    /// A latency's percentile.
    pub percentile: Option<f64>,
    pub closed: &'a Closed,
    pub interval: Duration,
    pub verdict: &'a Verdict,
    pub reference: &'a Reference,
}

pub fn sentence(facts: &Facts) -> String {
    let value = facts.closed.value.unwrap_or_default();
    let mut text = format!(
        "{} {} over {}",
        facts.service,
        observed(facts, value),
        interval(facts.interval)
    );
    let anomalous = facts.verdict.cause.is_some();
    match facts.reference {
        Reference::Threshold { min, max } => {
            let above = max.filter(|max| value > *max);
            let below = min.filter(|min| value < *min);
            let bound = |bound: f64| amount(facts.signal, bound);
            let said = match (anomalous, above, below) {
                (true, Some(max), _) => format!(", threshold {}", bound(max)),
                (true, _, Some(min)) => format!(", below the minimum {}", bound(min)),
                (false, _, _) => match (min, max) {
                    (Some(min), Some(max)) => {
                        format!(", back within {} to {}", bound(*min), bound(*max))
                    }
                    (Some(min), None) => format!(", back above the minimum {}", bound(*min)),
                    (None, Some(max)) => format!(", back under the threshold {}", bound(*max)),
                    (None, None) => ", back to normal".to_owned(),
                },
                (true, None, None) => String::new(),
            };
            text.push_str(&said);
        }
        Reference::Baseline { median, .. } => {
            let z = facts.verdict.score.unwrap_or_default();
            let side = if anomalous { "" } else { ", back to normal" };
            text.push_str(&format!(
                "{side} vs baseline {} (robust z {z:.1}",
                amount(facts.signal, *median)
            ));
            if let Some(Cause::Drift { cumulative }) = facts.verdict.cause {
                text.push_str(&format!(
                    "; a sustained shift, cumulative score {cumulative:.1}"
                ));
            }
            text.push(')');
        }
    }
    text
}

/// "latency p99 742 ms", "error rate 0.21 (42 of 200 requests)", "throughput 3.2
/// requests/s", "queue_depth 512".
fn observed(facts: &Facts, value: f64) -> String {
    match facts.signal {
        Signal::Latency => {
            let percentile = facts.percentile.unwrap_or(99.0);
            format!(
                "latency p{} {}",
                number(percentile),
                amount(facts.signal, value)
            )
        }
        Signal::ErrorRate => format!(
            "error rate {} ({} of {} requests)",
            number(value),
            facts.closed.errors,
            facts.closed.count
        ),
        Signal::Throughput => format!("throughput {}", amount(facts.signal, value)),
        Signal::Custom(name) => format!("{name} {}", number(value)),
    }
}

/// A value of `signal` with its unit, as people read it.
fn amount(signal: &Signal, value: f64) -> String {
    match signal {
        Signal::Latency => format!("{} ms", number(value * 1e3)),
        Signal::Throughput => format!("{} requests/s", number(value)),
        _ => number(value),
    }
}

/// Three significant digits at most, no trailing zeros: 742, 12.5, 0.21, 0.0123.
pub fn number(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return format!("{value}");
    }
    let magnitude = value.abs().log10().floor() as i32;
    let decimals = (2 - magnitude).clamp(0, 9) as usize;
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// "30 s", "5 min", "1 h", "250 ms".
fn interval(interval: Duration) -> String {
    let secs = interval.as_secs();
    if interval.subsec_nanos() != 0 || secs == 0 {
        format!("{} ms", number(interval.as_secs_f64() * 1e3))
    } else if secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_three_significant_digits() {
        let shown: Vec<String> = [742.4, 12.54, 0.21, 0.0123, 1.0, 0.0, 123456.7, -2.5]
            .into_iter()
            .map(number)
            .collect();
        assert_eq!(
            shown,
            ["742", "12.5", "0.21", "0.0123", "1", "0", "123457", "-2.5"]
        );
    }

    #[test]
    fn sentences_say_what_against_what() {
        let closed = Closed {
            value: Some(0.742),
            count: 600,
            errors: 0,
        };
        let verdict = Verdict {
            cause: Some(Cause::Threshold),
            baseline: None,
            score: None,
        };
        let reference = Reference::Threshold {
            min: None,
            max: Some(0.5),
        };
        let facts = Facts {
            service: "checkout",
            signal: &Signal::Latency,
            percentile: Some(99.0),
            closed: &closed,
            interval: Duration::from_secs(30),
            verdict: &verdict,
            reference: &reference,
        };
        assert_eq!(
            sentence(&facts),
            "checkout latency p99 742 ms over 30 s, threshold 500 ms"
        );
        let closed = Closed {
            value: Some(0.21),
            count: 200,
            errors: 42,
        };
        let verdict = Verdict {
            cause: Some(Cause::Score),
            baseline: None,
            score: Some(9.31),
        };
        let reference = Reference::Baseline {
            median: 0.01,
            scale: 0.02,
        };
        let facts = Facts {
            signal: &Signal::ErrorRate,
            closed: &closed,
            verdict: &verdict,
            reference: &reference,
            ..facts
        };
        assert_eq!(
            sentence(&facts),
            "checkout error rate 0.21 (42 of 200 requests) over 30 s vs baseline 0.01 (robust z 9.3)"
        );
    }
}
