//! Cost of the `alert` stage, through its public API, with the default rules: the
//! configuration is decoded from YAML as the loader does and built into a stage, and
//! events are fed to `Stage::on_event` and `Stage::on_tick` as the pipeline feeds them.
//! Two figures:
//!
//! 1. **Events per second** (`stages::alert/events`): a mix across 1,000 services, as
//!    a busy daemon sees it: one health check result per service (one in ten down,
//!    the rest up) and three log pattern matches per service (critical and warning
//!    patterns). Measured in the steady state the issue cares about, where every
//!    alert already exists and fires, so each event is the rule lookup, the alert's
//!    hash lookup and its condition updated, and nothing is told (no duplicates).
//! 2. **A tick with 10,000 active alerts** (`stages::alert/tick`): 10,000 services
//!    each with a firing log alert; a tick looks at each (quiet period, repeat, flap
//!    release) and, here, tells nothing.
//!
//! Run it with `cargo bench --bench alert`; add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick look.

use std::hint::black_box;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aegis::base::component::Stage;
use aegis::base::diagnostics::Diagnostics;
use aegis::base::event::{Event, LogMatch, Outcome, ProbeKind, ProbeResult, Severity};
use aegis::base::key_path::KeyPath;
use aegis::base::registry::ComponentType;
use aegis::base::spans::SpanIndex;
use aegis::stages::alert::{AlertConfig, AlertStage};
use criterion::{Criterion, Throughput, criterion_group};

/// The defaults, written out so that a change of default does not silently change
/// what this bench measures.
const CONFIG: &str = "repeat_interval: 4h\ndefault_rules: true\n";
const SERVICES: usize = 1_000;
const TICK_ALERTS: usize = 10_000;

fn stage() -> AlertStage {
    let spans = SpanIndex::build(CONFIG);
    let mut diag = Diagnostics::new(&spans);
    let value = serde_norway::from_str(CONFIG).expect("valid YAML");
    let config = AlertConfig::decode(&value, &KeyPath::root(), &mut diag).expect("valid");
    assert!(diag.finish().0.is_empty());
    AlertStage::new(&config, false)
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

fn probe(service: &str, outcome: Outcome) -> Event {
    Event::ProbeResult(ProbeResult {
        service: service.into(),
        check: "health".into(),
        kind: ProbeKind::Http,
        at: at(0),
        late: Duration::ZERO,
        outcome,
        latency: Duration::from_millis(12),
        attempts: 1,
        status: None,
        reason: None,
        detail: "status 503".into(),
        perfdata: Vec::new(),
    })
}

fn log_match(service: &str, pattern: &str, severity: Severity) -> Event {
    Event::LogMatch(LogMatch {
        service: service.into(),
        path: format!("/var/log/{service}/app.log").into(),
        at: at(0),
        pattern: pattern.into(),
        severity,
        description: "Something went wrong".into(),
        line: format!(
            "2026-11-28T18:03:15.935Z ERROR [{service}] java.lang.OutOfMemoryError: Java heap space at com.example.Cache.put(Cache.java:42)"
        ),
    })
}

/// Per service: its check's result and three matches.
fn mixed_events() -> Vec<Event> {
    let patterns = [
        ("out_of_memory", Severity::Critical),
        ("connection_refused", Severity::Warning),
        ("slow_query", Severity::Warning),
    ];
    let mut events = Vec::new();
    for n in 0..SERVICES {
        let service = format!("service-{n:04}");
        let outcome = if n % 10 == 0 {
            Outcome::Down
        } else {
            Outcome::Up
        };
        events.push(probe(&service, outcome));
        for (pattern, severity) in patterns {
            events.push(log_match(&service, pattern, severity));
        }
    }
    events
}

fn events(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages::alert/events");
    let events = mixed_events();
    group.throughput(Throughput::Elements(events.len() as u64));
    let mut stage = stage();
    let mut out = Vec::new();
    // Three rounds fire every CheckDown (3 failures in a row) and every LogPattern.
    for round in 0..3 {
        for event in &events {
            stage.on_event(event, at(round), &mut out);
        }
    }
    let expected = SERVICES / 10 + 3 * SERVICES;
    assert_eq!(stage.len(), expected, "every alert exists");
    out.clear();
    let now = at(10);
    group.bench_function("1000_services_probe_and_3_matches", |b| {
        b.iter(|| {
            for event in &events {
                stage.on_event(black_box(event), now, &mut out);
            }
        })
    });
    assert!(
        out.is_empty(),
        "the steady state tells nothing: {}",
        out.len()
    );
    group.finish();
}

fn tick(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages::alert/tick");
    group.throughput(Throughput::Elements(TICK_ALERTS as u64));
    let mut stage = stage();
    let mut out = Vec::new();
    for n in 0..TICK_ALERTS {
        let event = log_match(&format!("service-{n:05}"), "oom", Severity::Critical);
        stage.on_event(&event, at(0), &mut out);
    }
    assert_eq!(stage.len(), TICK_ALERTS);
    out.clear();
    // A minute on: within the quiet period, long before a repeat.
    let now = at(60);
    group.bench_function("10000_firing_alerts", |b| {
        b.iter(|| stage.on_tick(black_box(now), &mut out))
    });
    assert!(
        out.is_empty(),
        "a tick within the quiet period tells nothing"
    );
    group.finish();
}

criterion_group!(benches, events, tick);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
