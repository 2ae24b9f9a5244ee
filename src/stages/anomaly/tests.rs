//! The stage driven by hand: samples at chosen times, ticks at chosen instants, and
//! labeled synthetic series (fixed seeds) for the adaptive detector.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::*;
use crate::base::event::Sample;
use crate::base::spans::SpanIndex;

fn stage(yaml: &str, once: bool) -> AnomalyStage {
    let spans = SpanIndex::build(yaml);
    let mut diag = Diagnostics::new(&spans);
    let value: Value = serde_norway::from_str(yaml).unwrap();
    let config = AnomalyConfig::decode(&value, &KeyPath::root(), &mut diag);
    let (errors, _) = diag.finish();
    assert!(errors.is_empty(), "{errors:?}");
    AnomalyStage::new(&config.unwrap(), once)
}

/// A time `seconds` after an instant on a whole hour, where slices begin.
fn at(seconds: f64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs_f64(1_699_999_200.0 + seconds)
}

/// `n` requests of `service`, `errors` of them failed, each taking `millis`.
fn requests(n: usize, errors: usize, millis: u64, time: Option<SystemTime>) -> Event {
    let items = (0..n)
        .map(|i| Sample {
            time,
            measure: Measure::Request {
                error: i < errors,
                duration: Some(Duration::from_millis(millis)),
            },
        })
        .collect();
    Event::Samples(Samples {
        service: "shop".into(),
        at: UNIX_EPOCH,
        items,
        unparsed: 0,
    })
}

fn value(name: &Arc<str>, value: f64, time: SystemTime) -> Event {
    Event::Samples(Samples {
        service: "shop".into(),
        at: UNIX_EPOCH,
        items: vec![Sample {
            time: Some(time),
            measure: Measure::Value {
                signal: name.clone(),
                value,
            },
        }],
        unparsed: 0,
    })
}

fn slices<'a>(out: &'a [Event], signal: &str) -> Vec<&'a SignalSlice> {
    (out.iter())
        .filter_map(|event| match event {
            Event::SignalSlice(slice) if slice.signal.as_str() == signal => Some(slice),
            _ => None,
        })
        .collect()
}

fn anomalies(out: &[Event]) -> Vec<&Anomaly> {
    (out.iter())
        .filter_map(|event| match event {
            Event::Anomaly(anomaly) => Some(anomaly),
            _ => None,
        })
        .collect()
}

#[test]
fn a_slice_closes_exactly_at_its_end_on_the_wall_clock() {
    let mut stage = stage("detection_interval: 10s\n", false);
    let mut out = Vec::new();
    // Aligned on multiples of 10 s: the first slice is [0, 10).
    stage.on_event(&requests(5, 0, 20, None), at(3.0), &mut out);
    stage.on_tick(at(9.999), &mut out);
    assert!(out.is_empty(), "{out:?}");
    stage.on_tick(at(10.0), &mut out);
    let closed = slices(&out, "throughput");
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].at, at(10.0));
    assert_eq!(closed[0].value, Some(0.5));
    // The first slice began before the first sample: not judged.
    assert!(closed[0].unjudged.is_some());
    // An empty slice is a throughput of 0, judged.
    out.clear();
    stage.on_tick(at(20.0), &mut out);
    let closed = slices(&out, "throughput");
    assert_eq!((closed[0].value, closed[0].unjudged), (Some(0.0), None));
}

#[test]
fn thresholds_with_for_fire_on_the_right_slice_and_say_why() {
    let yaml =
        "detection_interval: 1s\nthresholds:\n  latency: [{service: shop, value: 500, for: 2}]\n";
    let mut stage = stage(yaml, false);
    let mut out = Vec::new();
    // Slices 0 (partial), 1 fast, 2 and 3 slow, 4 fast.
    for (second, millis) in [(0, 10), (1, 10), (2, 800), (3, 800), (4, 10)] {
        stage.on_event(
            &requests(50, 0, millis, None),
            at(second as f64 + 0.5),
            &mut out,
        );
    }
    stage.on_tick(at(5.0), &mut out);
    let found = anomalies(&out);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].anomalous);
    // Fired when slice 3 closed (the second slow one), dated from its start.
    assert_eq!((found[0].at, found[0].started), (at(4.0), at(3.0)));
    assert_eq!(
        found[0].explanation,
        // The top of the histogram bucket holding 800 ms: HDR's 1 %.
        "shop latency p99 803 ms over 1 s, threshold 500 ms"
    );
    assert_eq!(
        found[0].reference,
        Reference::Threshold {
            min: None,
            max: Some(0.5)
        }
    );
    assert!(!found[1].anomalous);
    assert_eq!(found[1].at, at(5.0));
    assert_eq!(
        found[1].explanation,
        "shop latency p99 10 ms over 1 s, back under the threshold 500 ms"
    );
}

#[test]
fn an_error_rate_on_too_few_requests_is_not_judged() {
    let yaml = "detection_interval: 1s\nmin_requests: 20\nthresholds:\n  error_rate: [{service: shop, value: 0.05}]\n";
    let mut stage = stage(yaml, false);
    let mut out = Vec::new();
    stage.on_event(&requests(30, 0, 1, None), at(0.5), &mut out);
    // 10 errors of 19 requests: too few to judge; 10 of 20: anomalous.
    stage.on_event(&requests(19, 10, 1, None), at(1.5), &mut out);
    stage.on_event(&requests(20, 10, 1, None), at(2.5), &mut out);
    stage.on_tick(at(3.0), &mut out);
    let rates = slices(&out, "error_rate");
    assert_eq!(rates[1].unjudged, Some(Unjudged::TooFewRequests));
    assert!(!rates[1].anomalous);
    assert!(rates[2].anomalous && rates[2].unjudged.is_none());
    let found = anomalies(&out);
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].explanation,
        "shop error rate 0.5 (10 of 20 requests) over 1 s, threshold 0.05"
    );
}

#[test]
fn throughput_falls_below_its_minimum() {
    let yaml = "detection_interval: 1s\nthresholds:\n  throughput: [{service: shop, value: 10}]\n";
    let mut stage = stage(yaml, false);
    let mut out = Vec::new();
    stage.on_event(&requests(30, 0, 1, None), at(0.5), &mut out);
    stage.on_event(&requests(30, 0, 1, None), at(1.5), &mut out);
    stage.on_event(&requests(3, 0, 1, None), at(2.5), &mut out);
    stage.on_tick(at(3.0), &mut out);
    let found = anomalies(&out);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].started, at(2.0));
    assert_eq!(
        found[0].explanation,
        "shop throughput 3 requests/s over 1 s, below the minimum 10 requests/s"
    );
}

#[test]
fn a_replay_runs_on_the_samples_own_time() {
    let yaml = "detection_interval: 1m\nthresholds:\n  throughput: [{service: shop, value: 1}]\n";
    let mut stage = stage(yaml, true);
    // The wall clock says nothing on a replay; the lines' own times do.
    let wall = at(1e6);
    let mut out = Vec::new();
    for minute in 0..3 {
        stage.on_event(
            &requests(120, 0, 5, Some(at(minute as f64 * 60.0))),
            wall,
            &mut out,
        );
    }
    // A line from the past (a clock set back) stays in the open slice.
    stage.on_event(&requests(1, 0, 5, Some(at(-3600.0))), wall, &mut out);
    // Two silent minutes, then traffic again: the silence is a drop, from minute 3.
    stage.on_event(&requests(120, 0, 5, Some(at(300.0))), wall, &mut out);
    let rates: Vec<Option<f64>> = slices(&out, "throughput").iter().map(|s| s.value).collect();
    assert_eq!(
        rates,
        [
            Some(2.0),
            Some(2.0),
            Some(121.0 / 60.0),
            Some(0.0),
            Some(0.0)
        ]
    );
    let found = anomalies(&out);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].started, found[0].at), (at(180.0), at(240.0)));
    // The slice cut short by the end of the input is never closed, so never judged.
    assert!(stage.tick_interval().is_none());
}

/// Standard normal noise from a seeded generator (Box-Muller).
fn normal(rng: &mut fastrand::Rng) -> f64 {
    let u = rng.f64().max(f64::MIN_POSITIVE);
    let v = rng.f64();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Runs a series, one value per one-minute slice, through an adaptive stage; returns
/// the slices at which anomalies started.
fn starts(series: &[f64]) -> Vec<usize> {
    let mut stage = stage("detection_interval: 1m\nhistory_size: 100\n", true);
    let name: Arc<str> = "x".into();
    let mut out = Vec::new();
    for (i, x) in series.iter().enumerate() {
        stage.on_event(&value(&name, *x, at(i as f64 * 60.0)), at(0.0), &mut out);
    }
    anomalies(&out)
        .iter()
        .filter(|a| a.anomalous)
        .map(|a| {
            let since = a.started.duration_since(at(0.0)).unwrap().as_secs();
            (since / 60) as usize
        })
        .collect()
}

fn noise(seed: u64, n: usize) -> Vec<f64> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..n).map(|_| 100.0 + 5.0 * normal(&mut rng)).collect()
}

#[test]
fn a_stable_noisy_series_never_fires() {
    for seed in 1..=5 {
        assert_eq!(
            starts(&noise(seed, 5000)),
            Vec::<usize>::new(),
            "seed {seed}"
        );
    }
}

#[test]
fn a_daily_cycle_is_not_an_anomaly_but_a_spike_on_it_is() {
    // Minutes over three days: a swing of ±40 % around 100 with noise.
    let mut series = noise(7, 3 * 1440);
    for (i, x) in series.iter_mut().enumerate() {
        *x += 40.0 * (2.0 * std::f64::consts::PI * i as f64 / 1440.0).sin();
    }
    assert_eq!(starts(&series), Vec::<usize>::new());
    series[2000] += 60.0;
    assert_eq!(starts(&series), [2000]);
}

#[test]
fn steps_spikes_and_drifts_are_found_with_their_delay() {
    const ONSET: usize = 1000;
    let onset = ONSET;
    type Shape = Box<dyn Fn(usize) -> f64>;
    let cases: [(&str, Shape); 4] = [
        (
            "step up 6σ",
            Box::new(|i| if i >= ONSET { 30.0 } else { 0.0 }),
        ),
        (
            "spike 10σ",
            Box::new(|i| if i == ONSET { 50.0 } else { 0.0 }),
        ),
        (
            "step up 3σ",
            Box::new(|i| if i >= ONSET { 15.0 } else { 0.0 }),
        ),
        // 10σ over the length of the history: a drift slower than that is, to a
        // baseline of that length, the slope of a cycle (docs/anomaly.md).
        (
            "drift 0.1σ a slice",
            Box::new(|i| {
                if i >= ONSET {
                    0.5 * (i - ONSET) as f64
                } else {
                    0.0
                }
            }),
        ),
    ];
    for (name, shape) in cases {
        for seed in 1..=3 {
            let series: Vec<f64> = (noise(seed, 2000).into_iter().enumerate())
                .map(|(i, x)| x + shape(i))
                .collect();
            let found = starts(&series);
            let first = found.first().copied();
            assert!(
                found.iter().all(|start| *start >= onset),
                "{name}, seed {seed}: false alarm at {found:?}"
            );
            let delay = first.map(|start| start - onset);
            println!("{name}, seed {seed}: found after {delay:?} slices");
            assert!(
                delay.is_some_and(|delay| delay <= 60),
                "{name}, seed {seed}: {found:?}"
            );
        }
    }
}

/// A block is recorded run by run (requests at one time together), not sample by
/// sample: the events must be exactly those of the samples fed one at a time, in the
/// same order, whatever the mix (custom values between requests, requests without a
/// duration, times repeated, set back, or past several slices), following or replaying.
#[test]
fn a_block_gives_the_events_of_its_samples_fed_one_by_one() {
    let yaml = "detection_interval: 10s\nhistory_size: 20\nmin_requests: 3\nadaptive: {min_history: 3}\nthresholds:\n  latency: [{service: shop, value: 200}]\n";
    let name: Arc<str> = "queue".into();
    let mut rng = fastrand::Rng::with_seed(7);
    let mut seconds = 0.0;
    let mut items = Vec::new();
    for i in 0..4000 {
        // Mostly the same second (runs), sometimes later, a jump over slices, or
        // back in time; a spike of slow failing requests mid-way.
        seconds += match rng.u32(0..100) {
            0..=79 => 0.0,
            80..=97 => 1.0,
            98 => 45.0,
            _ => -30.0,
        };
        let spike = (1500..1700).contains(&i);
        let measure = if rng.u32(0..10) == 0 {
            Measure::Value {
                signal: name.clone(),
                value: rng.f64() * 10.0,
            }
        } else {
            Measure::Request {
                error: spike || rng.u32(0..50) == 0,
                duration: (rng.u32(0..5) > 0)
                    .then(|| Duration::from_millis(if spike { 900 } else { rng.u64(5..80) })),
            }
        };
        items.push(Sample {
            time: Some(at(seconds)),
            measure,
        });
    }
    let block = |items: Vec<Sample>| {
        Event::Samples(Samples {
            service: "shop".into(),
            at: UNIX_EPOCH,
            items,
            unparsed: 0,
        })
    };
    for once in [true, false] {
        let (mut whole, mut single) = (stage(yaml, once), stage(yaml, once));
        let (mut from_whole, mut from_single) = (Vec::new(), Vec::new());
        // Following, blocks of 100 at a wall clock that moves 3 s a block.
        for (n, chunk) in items.chunks(100).enumerate() {
            let now = at(n as f64 * 3.0);
            whole.on_event(&block(chunk.to_vec()), now, &mut from_whole);
            for sample in chunk {
                single.on_event(&block(vec![sample.clone()]), now, &mut from_single);
            }
        }
        assert!(anomalies(&from_whole).len() >= 2, "once: {once}");
        assert_eq!(
            format!("{from_whole:?}"),
            format!("{from_single:?}"),
            "once: {once}"
        );
    }
}
