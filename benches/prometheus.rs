//! The `prometheus` sink's scrape: rendering the metrics of 1,000 services with two
//! checks each (every check with results, so every histogram and counter has its
//! series) in the text exposition format.
//!
//! ```sh
//! cargo bench --bench prometheus
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aegis::base::event::{Event, FailureReason, Outcome, ProbeKind, ProbeResult};
use aegis::sinks::prometheus::metrics::Metrics;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn result(service: &str, check: &str, kind: ProbeKind, outcome: Outcome) -> Event {
    Event::ProbeResult(ProbeResult {
        service: service.into(),
        check: check.into(),
        kind,
        at: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        late: Duration::from_millis(1),
        outcome,
        latency: Duration::from_micros(450),
        attempts: 1,
        status: None,
        reason: (outcome == Outcome::Down).then_some(FailureReason::Refused),
        detail: String::new(),
        perfdata: Vec::new(),
    })
}

fn scrape(c: &mut Criterion) {
    let mut metrics = Metrics::new();
    for n in 0..1_000 {
        let service = format!("service-{n:04}");
        for _ in 0..3 {
            metrics.record(&result(&service, "health", ProbeKind::Http, Outcome::Up));
            metrics.record(&result(&service, "port", ProbeKind::Tcp, Outcome::Down));
        }
    }
    let size = metrics.render(SystemTime::now(), None).len();
    let mut group = c.benchmark_group("prometheus");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("render_1000_services_2_checks", |b| {
        b.iter(|| metrics.render(SystemTime::now(), None))
    });
    group.finish();
}

criterion_group!(benches, scrape);
criterion_main!(benches);
