//! What one signal of one service gathers during a slice, and the history of past
//! slices: the "window" of anomaly detection.
//!
//! The open slice holds what its value needs and no more: a latency slice an HDR
//! histogram (microseconds, two significant digits: 1 % precision from 1 µs to an
//! hour), a request slice two exact counts, a custom slice a running sum, minimum,
//! maximum and last value. When the slice closes its value is computed once and only
//! that number joins the history, so a series costs the same whatever the traffic:
//! one histogram (about 26 KiB, reused from slice to slice) and `history_size` numbers.

use std::collections::VecDeque;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The range and precision of latency histograms, in microseconds.
const LATENCY_LOWEST_US: u64 = 1;
const LATENCY_HIGHEST_US: u64 = 3_600_000_000;
const LATENCY_SIGFIG: u8 = 2;

/// How the values of a custom signal within a slice make the slice's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    #[default]
    Mean,
    Max,
    Min,
    Sum,
    Last,
}

impl Aggregate {
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Mean => "mean",
            Aggregate::Max => "max",
            Aggregate::Min => "min",
            Aggregate::Sum => "sum",
            Aggregate::Last => "last",
        }
    }
}

/// The open slice of one series.
pub enum Slice {
    /// Durations of requests and probes; the value is a percentile, in seconds.
    Latency {
        histogram: Histogram<u64>,
        quantile: f64,
    },
    /// Requests and, of those, errors: throughput and error rate are both read from
    /// them (each series keeps its own copy, so the two close independently).
    Requests { requests: u64, errors: u64 },
    Custom {
        aggregate: Aggregate,
        count: u64,
        sum: f64,
        min: f64,
        max: f64,
        last: f64,
    },
}

/// A closed slice, as detection sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Closed {
    /// Requests per second, error ratio, latency in seconds, or the custom value;
    /// `None` when the slice had nothing to measure (no latency sample, no request for
    /// an error rate, no custom value).
    pub value: Option<f64>,
    /// The samples behind the value: requests, durations or custom values.
    pub count: u64,
    /// Errors, for an error rate's explanation.
    pub errors: u64,
}

impl Slice {
    pub fn latency(percentile: f64) -> Slice {
        let histogram =
            Histogram::new_with_bounds(LATENCY_LOWEST_US, LATENCY_HIGHEST_US, LATENCY_SIGFIG)
                .expect("constant bounds are valid");
        Slice::Latency {
            histogram,
            quantile: percentile / 100.0,
        }
    }

    pub fn requests() -> Slice {
        Slice::Requests {
            requests: 0,
            errors: 0,
        }
    }

    pub fn custom(aggregate: Aggregate) -> Slice {
        Slice::Custom {
            aggregate,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: 0.0,
        }
    }

    /// Records a duration (latency slices only).
    pub fn record_duration(&mut self, duration: Duration) {
        if let Slice::Latency { histogram, .. } = self {
            let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
            // Out of range is clamped to the range: a sub-microsecond answer is 1 µs,
            // one over an hour is an hour; neither is lost from the count.
            histogram.saturating_record(micros.clamp(LATENCY_LOWEST_US, LATENCY_HIGHEST_US));
        }
    }

    /// Records a request (request slices only).
    pub fn record_request(&mut self, error: bool) {
        if let Slice::Requests { requests, errors } = self {
            *requests += 1;
            *errors += u64::from(error);
        }
    }

    /// Records `requests` requests, `errors` of them failed (request slices only): the
    /// same as `record_request` once for each.
    pub fn record_requests(&mut self, requests: u64, errors: u64) {
        if let Slice::Requests {
            requests: count,
            errors: failed,
        } = self
        {
            *count += requests;
            *failed += errors;
        }
    }

    /// Records a custom value (custom slices only).
    pub fn record_value(&mut self, value: f64) {
        if let Slice::Custom {
            count,
            sum,
            min,
            max,
            last,
            ..
        } = self
        {
            *count += 1;
            *sum += value;
            *min = min.min(value);
            *max = max.max(value);
            *last = value;
        }
    }

    /// Closes the slice: its value, as `signal` reads it over `interval`; the slice is
    /// empty again afterwards.
    pub fn close(&mut self, reading: Reading, interval: Duration) -> Closed {
        match self {
            Slice::Latency {
                histogram,
                quantile,
            } => {
                let count = histogram.len();
                let value =
                    (count > 0).then(|| histogram.value_at_quantile(*quantile) as f64 / 1e6);
                histogram.reset();
                Closed {
                    value,
                    count,
                    errors: 0,
                }
            }
            Slice::Requests { requests, errors } => {
                let value = match reading {
                    Reading::Throughput => Some(*requests as f64 / interval.as_secs_f64()),
                    _ => (*requests > 0).then(|| *errors as f64 / *requests as f64),
                };
                let closed = Closed {
                    value,
                    count: *requests,
                    errors: *errors,
                };
                (*requests, *errors) = (0, 0);
                closed
            }
            Slice::Custom {
                aggregate,
                count,
                sum,
                min,
                max,
                last,
            } => {
                let value = (*count > 0).then(|| match aggregate {
                    Aggregate::Mean => *sum / *count as f64,
                    Aggregate::Max => *max,
                    Aggregate::Min => *min,
                    Aggregate::Sum => *sum,
                    Aggregate::Last => *last,
                });
                let closed = Closed {
                    value,
                    count: *count,
                    errors: 0,
                };
                *self = Slice::custom(*aggregate);
                closed
            }
        }
    }

    /// The percentile a latency slice reads.
    pub fn percentile(&self) -> Option<f64> {
        match self {
            Slice::Latency { quantile, .. } => Some(quantile * 100.0),
            _ => None,
        }
    }

    /// Bytes this slice holds beyond its own size: the histogram's counts.
    pub fn heap_bytes(&self) -> usize {
        match self {
            Slice::Latency { histogram, .. } => {
                histogram.distinct_values() * std::mem::size_of::<u64>()
            }
            _ => 0,
        }
    }
}

/// Which value a request slice gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    Throughput,
    ErrorRate,
    /// Latency and custom slices have one value only.
    Own,
}

/// The values of the last `capacity` judged slices, oldest first.
pub struct History {
    values: VecDeque<f64>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> History {
        History {
            values: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds the newest value; the oldest leaves once the history is full.
    pub fn push(&mut self, value: f64) {
        if self.values.len() == self.capacity {
            self.values.pop_front();
        }
        self.values.push_back(value);
    }

    /// How many values it holds.
    pub fn count(&self) -> usize {
        self.values.len()
    }

    /// How many it holds at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().copied()
    }

    /// Bytes held for the values.
    pub fn heap_bytes(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_known_latency_distribution_gives_its_percentiles_within_hdr_precision() {
        // 1 ms to 1000 ms, one each: p50 is 500 ms, p99 990 ms, p100 1000 ms.
        for (percentile, expected) in [(50.0, 0.5), (99.0, 0.99), (100.0, 1.0)] {
            let mut slice = Slice::latency(percentile);
            for ms in 1..=1000u64 {
                slice.record_duration(Duration::from_millis(ms));
            }
            let closed = slice.close(Reading::Own, Duration::from_secs(30));
            let value = closed.value.unwrap();
            assert!(
                (value - expected).abs() <= expected * 0.01,
                "p{percentile}: {value} vs {expected}"
            );
            assert_eq!(closed.count, 1000);
            // Closing empties the slice.
            assert_eq!(
                slice.close(Reading::Own, Duration::from_secs(30)).value,
                None
            );
        }
    }

    #[test]
    fn rates_over_a_slice_are_exact() {
        let mut slice = Slice::requests();
        for i in 0..300 {
            slice.record_request(i % 10 == 0);
        }
        let mut copy = Slice::requests();
        for i in 0..300 {
            copy.record_request(i % 10 == 0);
        }
        let interval = Duration::from_secs(30);
        let throughput = slice.close(Reading::Throughput, interval);
        assert_eq!(throughput.value, Some(10.0));
        let errors = copy.close(Reading::ErrorRate, interval);
        assert_eq!(
            (errors.value, errors.count, errors.errors),
            (Some(0.1), 300, 30)
        );
        // An empty slice: no traffic is a throughput of 0, and no error rate at all.
        assert_eq!(slice.close(Reading::Throughput, interval).value, Some(0.0));
        assert_eq!(copy.close(Reading::ErrorRate, interval).value, None);
    }

    #[test]
    fn custom_values_aggregate_as_configured() {
        for (aggregate, expected) in [
            (Aggregate::Mean, 2.0),
            (Aggregate::Max, 4.0),
            (Aggregate::Min, 0.5),
            (Aggregate::Sum, 6.0),
            (Aggregate::Last, 1.5),
        ] {
            let mut slice = Slice::custom(aggregate);
            for value in [4.0, 0.5, 1.5] {
                slice.record_value(value);
            }
            let closed = slice.close(Reading::Own, Duration::from_secs(1));
            assert_eq!(closed.value, Some(expected), "{aggregate:?}");
        }
    }

    #[test]
    fn the_oldest_value_leaves_when_the_history_is_full() {
        let mut history = History::new(3);
        for value in [1.0, 2.0, 3.0, 4.0] {
            history.push(value);
        }
        assert_eq!(history.values().collect::<Vec<_>>(), [2.0, 3.0, 4.0]);
    }
}
