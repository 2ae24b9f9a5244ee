//! Cost of the `anomaly` stage, through its public API, at the seed's defaults
//! (`detection_interval: 30s`, `history_size: 100`, adaptive detection on): the
//! configuration is decoded from YAML as the loader does and built into a stage, and
//! events are fed to `Stage::on_event` and `Stage::on_tick` as the pipeline feeds them.
//! Three figures, each answering one question of the issue:
//!
//! 1. **Samples recorded per second** (`stages::anomaly/record`). One sample is one
//!    request of a `Samples` event, as `log_fields` makes one per access-log line: it
//!    counts into the service's throughput and error-rate slices and its duration
//!    goes into the latency slice's histogram, so one sample is three series updated.
//!    Blocks of 4,096 requests of one service, all inside one open slice, so nothing
//!    closes and the figure is recording alone. Two cases: following (`once = false`,
//!    every sample placed at `now`), and a replay (`once = true`) where each sample
//!    is placed by its line's own time, whole seconds as access logs write them.
//! 2. **Closing a slice for 1,000 services** (`stages::anomaly/close`): 3,000 series,
//!    each with requests in its slice and a full history of 100 judged slices, closed
//!    by one `on_tick` at the slice's end; every series then runs the median and MAD
//!    of its history, and the stage emits 3,000 `SignalSlice` events.
//! 3. **Resident bytes per (service, signal)**, before criterion starts: a counting
//!    global allocator gives the live heap bytes a stage of 1,000 services × 3
//!    signals with full histories holds (and one of 1,000 latency series alone, fed by
//!    probe results), divided per series and compared with `AnomalyStage::heap_bytes`,
//!    which counts the stage's own idea of it.
//!
//! Request durations and errors come from a seeded generator (xorshift), so every run
//! sees the same samples. Run it with `cargo bench --bench anomaly`; add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick look.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, RefCell};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aegis::base::component::Stage;
use aegis::base::diagnostics::Diagnostics;
use aegis::base::event::{Event, Measure, Outcome, ProbeKind, ProbeResult, Sample, Samples};
use aegis::base::key_path::KeyPath;
use aegis::base::registry::ComponentType;
use aegis::base::spans::SpanIndex;
use aegis::stages::anomaly::{AnomalyConfig, AnomalyStage};
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group};

/// The seed's `anomaly_detection` defaults, written out so that a change of default
/// does not silently change what this bench measures.
const CONFIG: &str = "detection_interval: 30s\nhistory_size: 100\nadaptive:\n  enabled: true\n";
const INTERVAL: Duration = Duration::from_secs(30);
const HISTORY: usize = 100;
/// Requests in one `Samples` block of the recording bench.
const BLOCK: usize = 4096;
/// Services of the closing and memory figures.
const SERVICES: usize = 1_000;
/// Requests per service per slice there: above `min_requests` (20), so that the
/// error rate is judged too and every series runs its median and MAD.
const PER_SLICE: usize = 100;
const SEED: u64 = 42;

// ---------------------------------------------------------------------------------
// Live heap bytes: every allocation of the process goes through this, so the memory
// figure is what the stage really holds (hash table slack, histograms, histories,
// the detectors' scratch), not what it believes it holds.
// ---------------------------------------------------------------------------------

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------

/// The start of slice `k`: slices are aligned on multiples of the interval since the
/// epoch, and this instant is one (1,795,000,020 = 59,833,334 × 30).
fn slice_start(k: u32) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_000_020) + INTERVAL * k
}

/// `n` requests of `service`, about 1 % failed, durations spread over three orders
/// of magnitude (a long tail, as real latencies have) so the histogram is written
/// across many buckets. `time(i)` is the line time of request `i`.
fn requests(
    service: &str,
    n: usize,
    rng: &mut fastrand::Rng,
    time: impl Fn(usize) -> SystemTime,
) -> Event {
    let items = (0..n)
        .map(|i| {
            // 2 ms to about 2 s, log-uniform.
            let micros = 2_000.0 * 1000f64.powf(rng.f64().powi(3));
            Sample {
                time: Some(time(i)),
                measure: Measure::Request {
                    error: rng.f64() < 0.01,
                    duration: Some(Duration::from_micros(micros as u64)),
                },
            }
        })
        .collect();
    Event::Samples(Samples {
        service: service.into(),
        at: UNIX_EPOCH,
        items,
        unparsed: 0,
    })
}

fn probe(service: &str, latency: Duration) -> Event {
    Event::ProbeResult(ProbeResult {
        service: service.into(),
        check: "health".into(),
        kind: ProbeKind::Http,
        at: UNIX_EPOCH,
        late: Duration::ZERO,
        outcome: Outcome::Up,
        latency,
        attempts: 1,
        status: None,
        reason: None,
        detail: String::new(),
        perfdata: Vec::new(),
    })
}

/// Builds the stage the way the configuration loader does.
fn stage(once: bool) -> AnomalyStage {
    let spans = SpanIndex::build(CONFIG);
    let mut diag = Diagnostics::new(&spans);
    let value: serde_norway::Value = serde_norway::from_str(CONFIG).expect("valid YAML");
    let config = AnomalyConfig::decode(&value, &KeyPath::root(), &mut diag);
    let (errors, _) = diag.finish();
    assert!(errors.is_empty(), "{errors:?}");
    AnomalyStage::new(&config.expect("the bench's config decodes"), once)
}

/// Follows `slices` slices from slice `first` on: each service's event is fed
/// inside the slice, then a tick at its end closes it. Returns the events of the
/// last close.
fn follow(stage: &mut AnomalyStage, events: &[Event], first: u32, slices: u32) -> Vec<Event> {
    let mut out = Vec::new();
    for k in first..first + slices {
        out.clear();
        let now = slice_start(k) + Duration::from_secs(10);
        for event in events {
            stage.on_event(event, now, &mut out);
        }
        stage.on_tick(slice_start(k + 1), &mut out);
    }
    out
}

/// How many of `out`'s events are slices judged against their history (a score).
fn judged(out: &[Event]) -> usize {
    (out.iter())
        .filter(|event| matches!(event, Event::SignalSlice(slice) if slice.score.is_some()))
        .count()
}

/// One `Samples` event of `PER_SLICE` requests per service.
fn service_blocks() -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    (0..SERVICES)
        .map(|n| {
            requests(&format!("service-{n:04}"), PER_SLICE, &mut rng, |_| {
                UNIX_EPOCH
            })
        })
        .collect()
}

/// Enough slices for a full history: the first is partial and never judged.
const FILL: u32 = HISTORY as u32 + 2;

// ---------------------------------------------------------------------------------
// 3. Resident bytes, printed before criterion runs
// ---------------------------------------------------------------------------------

fn resident_bytes() {
    let blocks = service_blocks();
    let probes: Vec<Event> = (0..SERVICES)
        .map(|n| {
            probe(
                &format!("service-{n:04}"),
                Duration::from_millis(40 + n as u64 % 7),
            )
        })
        .collect();

    for (what, events, series) in [
        (
            "requests (latency, error_rate, throughput)",
            &blocks,
            3 * SERVICES,
        ),
        ("probe results (latency only)", &probes, SERVICES),
    ] {
        let before = live();
        let mut stage = stage(false);
        let out = follow(&mut stage, events, 0, FILL);
        assert_eq!(
            (out.len(), judged(&out)),
            (series, series),
            "one judged SignalSlice per series, no anomaly"
        );
        // The last close's events are the caller's, not the stage's.
        drop(out);
        let held = live() - before;
        let counted = stage.heap_bytes();
        println!(
            "anomaly/resident: {what}: {series} series with {HISTORY} slices of history: \
             {held} live bytes, {:.0} B ({:.1} KiB) per series; \
             heap_bytes() says {counted} ({:.0} B per series, {:.0} % of live)",
            held as f64 / series as f64,
            held as f64 / series as f64 / 1024.0,
            counted as f64 / series as f64,
            100.0 * counted as f64 / held as f64,
        );
        black_box(stage);
    }
}

// ---------------------------------------------------------------------------------
// 1. Recording, 2. closing
// ---------------------------------------------------------------------------------

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages::anomaly/record");
    group.throughput(Throughput::Elements(BLOCK as u64));
    let start = slice_start(0);
    // Following: the line times are there, as `log_fields` gives them, but ignored.
    // Replaying: one line every 7 ms, at whole seconds, all within the slice.
    let cases = [
        ("follow_4096_requests", false),
        ("replay_4096_requests_second_times", true),
    ];
    for (slug, once) in cases {
        let mut rng = fastrand::Rng::with_seed(SEED);
        let block = requests("shop", BLOCK, &mut rng, |i| {
            start + Duration::from_secs(i as u64 * 7 / 1000)
        });
        let mut stage = stage(once);
        let now = start + Duration::from_secs(29);
        let mut out = Vec::new();
        // The first block makes the series and opens their slice; after it no block
        // may close anything, or the figure would time closing too.
        for _ in 0..2 {
            stage.on_event(&block, now, &mut out);
            assert!(out.is_empty(), "{slug}: a block closed a slice");
        }
        group.bench_function(slug, |b| {
            b.iter(|| stage.on_event(black_box(&block), now, &mut out))
        });
        assert!(out.is_empty(), "{slug}: a block closed a slice");
    }
    group.finish();
}

fn close(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages::anomaly/close");
    // One iteration closes 3,000 series (milliseconds) and needs a refill first.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group.throughput(Throughput::Elements(3 * SERVICES as u64));
    let blocks = service_blocks();
    // Setup and routine both need the stage: the setup fills slice `k`, the routine
    // closes it. Per iteration, so that each fill is followed by its own close.
    let stage = RefCell::new(stage(false));
    let next = Cell::new(FILL);
    {
        let out = follow(&mut stage.borrow_mut(), &blocks, 0, FILL);
        let n = 3 * SERVICES;
        assert_eq!(
            (out.len(), judged(&out)),
            (n, n),
            "full histories, no anomaly"
        );
    }
    group.bench_function("1000_services_3_signals", |b| {
        b.iter_batched(
            || {
                let k = next.get();
                next.set(k + 1);
                let now = slice_start(k) + Duration::from_secs(10);
                let mut out = Vec::new();
                let mut stage = stage.borrow_mut();
                for event in &blocks {
                    stage.on_event(event, now, &mut out);
                }
                debug_assert!(out.is_empty());
                (slice_start(k + 1), Vec::with_capacity(4 * SERVICES))
            },
            |(end, mut out)| {
                stage.borrow_mut().on_tick(end, &mut out);
                out
            },
            BatchSize::PerIteration,
        )
    });
    // The last close judged every series and nothing fired.
    let mut out = Vec::new();
    let k = next.get();
    for event in &blocks {
        stage.borrow_mut().on_event(event, slice_start(k), &mut out);
    }
    stage.borrow_mut().on_tick(slice_start(k + 1), &mut out);
    let n = 3 * SERVICES;
    assert_eq!((out.len(), judged(&out)), (n, n), "every series judged");
    group.finish();
}

criterion_group!(benches, record, close);

fn main() {
    resident_bytes();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
