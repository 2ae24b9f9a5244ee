//! Judging a closed slice: against a configured threshold, against a baseline learned
//! from the series' history, or both.
//!
//! **Thresholds** are bounds (`min`, `max`); a bound crossed for `for` consecutive
//! slices makes the signal anomalous, and a slice back within bounds makes it normal.
//!
//! **Adaptive detection** scores the slice with a robust z-score: its distance from
//! the median of the history, in units of the history's spread (1.4826 × the median
//! absolute deviation, which is σ for normal data, and is not moved by the outliers it
//! is meant to find). The spread has a floor fit for the signal (sampling noise of an
//! error rate or a request count, 5 % of a latency), so a flat series does not make
//! noise look like news. Two things make a slice anomalous, in the signal's
//! direction only (latency and errors up, throughput down, custom signals as
//! configured):
//!
//! - a **spike or step**: the score reaches the sensitivity's threshold;
//! - a **sustained shift** too small for that (a slow drift, a moderate step): a
//!   CUSUM of the scores in excess of 1.5 (one per side) reaches twice the threshold,
//!   once the history is full.
//!
//! Either way the value must also be beyond everything the history holds (above its
//! maximum, for a signal that goes wrong upwards): what the last slices have seen is
//! not news, however far from the median (an hourly job's spike, met every hour).
//!
//! Once anomalous, a signal stays so until `resolve_after` slices in a row score
//! within 1.5 of the median (hysteresis: a value hovering at the threshold does not
//! flap, an episode with a quiet slice in it is one anomaly), and the sums start again
//! from zero.
//!
//! Every slice's value joins the history, anomalous or not: the median ignores short
//! anomalies, and a lasting change becomes the new normal once it fills half the
//! history. docs/anomaly.md tells the same with examples.

use serde::{Deserialize, Serialize};

use super::window::History;

/// Which way a signal goes wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Up,
    Down,
    Both,
}

/// How readily the adaptive detector fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Sensitivity {
    Low,
    #[default]
    Medium,
    High,
}

impl Sensitivity {
    /// The robust z-score at which a slice is anomalous.
    pub fn z(self) -> f64 {
        match self {
            Sensitivity::Low => 7.0,
            Sensitivity::Medium => 5.0,
            Sensitivity::High => 3.5,
        }
    }
}

/// Scores above this feed the drift detector: noise within 1.5 spreads of the
/// median never accumulates, a daily cycle that the history sees as a slope neither.
const DRIFT_SLACK: f64 = 1.5;

/// The smallest spread a signal is judged with, given the median of its history and
/// the number of samples behind the slice.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Floor {
    /// 5 % of the median, and at least a millisecond: latencies jitter by that much
    /// without anything being wrong.
    Latency,
    /// The binomial noise of a ratio over `count` requests.
    ErrorRate,
    /// The Poisson noise of a count over the slice, as a rate.
    Throughput { slice_seconds: f64 },
    /// 1 % of the median's size.
    Custom,
}

impl Floor {
    fn spread(self, median: f64, count: u64) -> f64 {
        match self {
            Floor::Latency => (0.05 * median).max(0.001),
            Floor::ErrorRate => {
                let n = count.max(1) as f64;
                let p = median.max(0.5 / n).min(0.99);
                (p * (1.0 - p) / n).sqrt()
            }
            Floor::Throughput { slice_seconds } => {
                (median * slice_seconds).max(1.0).sqrt() / slice_seconds
            }
            Floor::Custom => (0.01 * median.abs()).max(1e-9),
        }
    }
}

/// A configured bound, with how many slices in a row must cross it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub for_slices: u32,
}

impl Bounds {
    fn crossed(&self, value: f64) -> bool {
        self.max.is_some_and(|max| value > max) || self.min.is_some_and(|min| value < min)
    }
}

/// The adaptive detector's settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adaptive {
    pub sensitivity: Sensitivity,
    /// Judged slices needed before it may fire.
    pub min_history: usize,
    /// Slices in a row back within the slack that end an anomaly: an episode with a
    /// quiet slice or two in the middle is one anomaly, not several.
    pub resolve_after: u32,
}

/// The baseline a slice was scored against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Baseline {
    pub median: f64,
    /// The spread a score is counted in (robust σ, or its floor).
    pub scale: f64,
}

/// Why a signal is anomalous.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cause {
    Threshold,
    /// The score passed the threshold.
    Score,
    /// The scores' excess has added up: a sustained shift.
    Drift {
        cumulative: f64,
    },
}

/// What a slice was judged to be.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Verdict {
    /// `Some` while anomalous.
    pub cause: Option<Cause>,
    pub baseline: Option<Baseline>,
    /// The robust z-score, signed as the value moved (positive is above the median).
    pub score: Option<f64>,
}

/// The judge of one series: its settings and what it remembers between slices.
pub struct Detector {
    bounds: Option<Bounds>,
    adaptive: Option<Adaptive>,
    direction: Direction,
    floor: Floor,
    /// Consecutive slices across a bound.
    crossings: u32,
    /// The drift detector's sums, upwards and downwards.
    cumulative: [f64; 2],
    /// Whether the adaptive detector holds the series anomalous.
    adaptive_anomalous: bool,
    /// Slices in a row back within the slack while anomalous.
    calm: u32,
    /// Reused for the median and deviations of the history.
    scratch: Vec<f64>,
}

impl Detector {
    pub fn new(
        bounds: Option<Bounds>,
        adaptive: Option<Adaptive>,
        direction: Direction,
        floor: Floor,
    ) -> Detector {
        Detector {
            bounds,
            adaptive,
            direction,
            floor,
            crossings: 0,
            cumulative: [0.0; 2],
            adaptive_anomalous: false,
            calm: 0,
            scratch: Vec::new(),
        }
    }

    pub fn bounds(&self) -> Option<&Bounds> {
        self.bounds.as_ref()
    }

    /// Judges a slice's `value` (from `count` samples) against the bounds and against
    /// `history` (which does not hold it yet).
    pub fn judge(&mut self, value: f64, count: u64, history: &History) -> Verdict {
        let mut cause = None;
        if let Some(bounds) = &self.bounds {
            self.crossings = if bounds.crossed(value) {
                self.crossings + 1
            } else {
                0
            };
            if self.crossings >= bounds.for_slices {
                cause = Some(Cause::Threshold);
            }
        }
        let mut baseline = None;
        let mut score = None;
        if let Some(adaptive) = self.adaptive
            && history.count() >= adaptive.min_history.max(1)
        {
            let found = self.baseline(history, count);
            let z = (value - found.median) / found.scale;
            let directed = match self.direction {
                Direction::Up => z,
                Direction::Down => -z,
                Direction::Both => z.abs(),
            };
            let enter = adaptive.sensitivity.z();
            // Capped, so that once the shift is over the sum falls below the
            // threshold within a few slices.
            let limit = 2.0 * enter;
            for (sum, side) in self.cumulative.iter_mut().zip([z, -z]) {
                // One slice adds at most what a spike would need: a shift is several
                // slices, and a lone spike is the other rule's business.
                *sum = (*sum + side.min(enter) - DRIFT_SLACK).clamp(0.0, 2.0 * limit);
            }
            let cumulative = match self.direction {
                Direction::Up => self.cumulative[0],
                Direction::Down => self.cumulative[1],
                Direction::Both => self.cumulative[0].max(self.cumulative[1]),
            };
            // A shift is judged against the whole history: while it fills, a part
            // of a cycle would look like one.
            // Only what the history has not seen is news: a value within the range of
            // the last slices (an hourly job's spike, met every hour) is not
            // anomalous however far it is from the median.
            let (lowest, highest) = (history.values())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), v| {
                    (low.min(v), high.max(v))
                });
            // On the side the signal goes wrong, beyond the history's range; a spike
            // must beat it by a spread at least (a maximum beaten by a hair every hour
            // is not news), a shift only has to leave it.
            let wrong_side = match self.direction {
                Direction::Up => z > 0.0,
                Direction::Down => z < 0.0,
                Direction::Both => true,
            };
            let beyond = |margin: f64| {
                wrong_side
                    && if z > 0.0 {
                        value > highest + margin
                    } else {
                        value < lowest - margin
                    }
            };
            let full = history.count() == history.capacity();
            let drifted = beyond(0.0) && directed > DRIFT_SLACK && cumulative >= limit && full;
            let spiked = beyond(found.scale) && directed >= enter;
            // Once anomalous, whatever the cause, it stays so until a slice is back
            // within the slack of the median: hysteresis, so that a value hovering at
            // the threshold does not flap.
            let anomalous = if self.adaptive_anomalous {
                self.calm = if directed > DRIFT_SLACK {
                    0
                } else {
                    self.calm + 1
                };
                self.calm < adaptive.resolve_after
            } else {
                spiked || drifted
            };
            if self.adaptive_anomalous && !anomalous {
                // Over: the next shift is summed from nothing.
                self.cumulative = [0.0; 2];
            }
            self.adaptive_anomalous = anomalous;
            if anomalous && cause.is_none() {
                cause = Some(if drifted && !spiked {
                    Cause::Drift { cumulative }
                } else {
                    Cause::Score
                });
            }
            baseline = Some(found);
            score = Some(z);
        }
        Verdict {
            cause,
            baseline,
            score,
        }
    }

    /// The median of the history and its robust spread, floored.
    fn baseline(&mut self, history: &History, count: u64) -> Baseline {
        self.scratch.clear();
        self.scratch.extend(history.values());
        let middle = median(&mut self.scratch);
        for value in &mut self.scratch {
            *value = (*value - middle).abs();
        }
        let mean_deviation = self.scratch.iter().sum::<f64>() / self.scratch.len() as f64;
        let mad = median(&mut self.scratch);
        // The MAD is 0 when more than half the history is one value (an error rate
        // that is mostly 0); the mean deviation still sees the rest (its factor makes
        // it σ for normal data).
        let robust = if mad > 0.0 {
            1.4826 * mad
        } else {
            1.2533 * mean_deviation
        };
        Baseline {
            median: middle,
            scale: robust.max(self.floor.spread(middle, count)),
        }
    }
}

/// The median of `values` (reordered), which must not be empty.
fn median(values: &mut [f64]) -> f64 {
    let odd = values.len() % 2 == 1;
    let middle = values.len() / 2;
    let (below, upper, _) = values.select_nth_unstable_by(middle, f64::total_cmp);
    let upper = *upper;
    if odd {
        upper
    } else {
        let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lower + upper) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(values: &[f64]) -> History {
        let mut history = History::new(values.len().max(1));
        for value in values {
            history.push(*value);
        }
        history
    }

    #[test]
    fn the_median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn a_threshold_with_for_fires_on_the_right_slice_and_clears_at_once() {
        let bounds = Bounds {
            min: None,
            max: Some(0.5),
            for_slices: 3,
        };
        let mut detector = Detector::new(Some(bounds), None, Direction::Up, Floor::Latency);
        let empty = history(&[]);
        let fired: Vec<bool> = [0.6, 0.7, 0.8, 0.9, 0.4, 0.6]
            .into_iter()
            .map(|value| detector.judge(value, 1, &empty).cause.is_some())
            .collect();
        assert_eq!(fired, [false, false, true, true, false, false]);
    }

    #[test]
    fn a_minimum_fires_below_it() {
        let bounds = Bounds {
            min: Some(10.0),
            max: None,
            for_slices: 1,
        };
        let mut detector = Detector::new(Some(bounds), None, Direction::Down, Floor::Custom);
        let empty = history(&[]);
        assert_eq!(detector.judge(9.0, 1, &empty).cause, Some(Cause::Threshold));
        assert_eq!(detector.judge(10.0, 1, &empty).cause, None);
    }

    #[test]
    fn the_score_is_robust_and_only_fires_in_the_signal_direction() {
        let adaptive = Adaptive {
            sensitivity: Sensitivity::Medium,
            min_history: 5,
            resolve_after: 1,
        };
        // Median 10, deviations 0,1,1,2,2 → MAD 1, scale 1.4826.
        let past = history(&[10.0, 9.0, 11.0, 8.0, 12.0]);
        let mut up = Detector::new(None, Some(adaptive), Direction::Up, Floor::Custom);
        let verdict = up.judge(20.0, 1, &past);
        assert_eq!(verdict.cause, Some(Cause::Score));
        let baseline = verdict.baseline.unwrap();
        assert_eq!((baseline.median, baseline.scale), (10.0, 1.4826));
        assert!((verdict.score.unwrap() - 10.0 / 1.4826).abs() < 1e-9);
        let mut down = Detector::new(None, Some(adaptive), Direction::Down, Floor::Custom);
        assert_eq!(down.judge(20.0, 1, &past).cause, None);
        assert_eq!(down.judge(0.0, 1, &past).cause, Some(Cause::Score));
    }

    #[test]
    fn too_little_history_never_fires() {
        let adaptive = Adaptive {
            sensitivity: Sensitivity::High,
            min_history: 10,
            resolve_after: 1,
        };
        let mut detector = Detector::new(None, Some(adaptive), Direction::Up, Floor::Custom);
        let verdict = detector.judge(1e9, 1, &history(&[1.0; 9]));
        assert_eq!((verdict.cause, verdict.score), (None, None));
    }

    #[test]
    fn an_error_rate_floor_is_its_sampling_noise() {
        // Baseline 0 errors: the floor is that of half an error over the slice's
        // requests, so one error in 200 requests is not news, 42 are.
        let adaptive = Adaptive {
            sensitivity: Sensitivity::Medium,
            min_history: 5,
            resolve_after: 1,
        };
        let past = history(&[0.0; 20]);
        let mut detector = Detector::new(None, Some(adaptive), Direction::Up, Floor::ErrorRate);
        assert_eq!(detector.judge(1.0 / 200.0, 200, &past).cause, None);
        let verdict = detector.judge(42.0 / 200.0, 200, &past);
        assert_eq!(verdict.cause, Some(Cause::Score));
    }
}
