//! The `webhook` sink: what composing a notification costs (the Alertmanager payload
//! of 1 and of 100 alerts, its idempotency key, the ledger's bookkeeping), and how
//! many notifications one receiver gets a second through the whole sink, run by the
//! pipeline's runtime, with and without a state folder.
//!
//! ```sh
//! cargo bench --bench webhook
//! ```
//!
//! The receiver is a hyper server on 127.0.0.1 on a thread of its own, answering 200
//! at once. A delivery case sends 1,000 alerts with distinct names in one batch (each
//! its own group, so 1,000 notifications, delivered one at a time as the sink always
//! does) and ends when the receiver has had them all.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aegis::base::component::{NodeError, Output, Source};
use aegis::base::diagnostics::Diagnostics;
use aegis::base::event::{Alert, AlertState, Event, Fingerprint, LabelSet, Notify, Severity};
use aegis::base::key_path::KeyPath;
use aegis::base::registry::{BuildContext, ComponentType, Shared};
use aegis::base::spans::SpanIndex;
use aegis::base::stats::StatsHandle;
use aegis::pipeline::graph::{Component, Graph, Node};
use aegis::sinks::notify::ledger::Ledger;
use aegis::sinks::notify::payload::AlertJson;
use aegis::sinks::webhook::WebhookConfig;
use aegis::sinks::webhook::group::{GroupBy, Grouping};
use bytes::Bytes;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

/// Alerts per delivery case.
const ALERTS: usize = 1_000;

fn alert(n: usize) -> Alert {
    let name = format!("Alert{n:04}");
    let labels: LabelSet = [
        ("alertname", name.as_str()),
        ("service", "shop"),
        ("severity", "critical"),
        ("check", "health"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .into();
    let annotations: LabelSet = [
        ("summary", format!("shop health check {name} is down")),
        (
            "description",
            "health failed 3 times in a row: status 503, expected 200-299".to_owned(),
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v))
    .into();
    let started = UNIX_EPOCH + Duration::from_secs(1_795_000_000);
    Alert {
        service: "shop".into(),
        at: SystemTime::now(),
        rule: name.as_str().into(),
        fingerprint: Fingerprint::of(&labels),
        labels: Arc::new(labels),
        annotations: Arc::new(annotations),
        severity: Severity::Critical,
        state: AlertState::Firing,
        started,
        ended: None,
        notify: Notify::Transition,
        flapping: false,
    }
}

/// A ledger with `n` alerts of one group waiting.
fn waiting(n: usize) -> Ledger {
    let mut ledger = Ledger::default();
    let now = SystemTime::now();
    for i in 0..n {
        let mut alert = alert(i);
        let mut labels = LabelSet::clone(&alert.labels);
        labels.insert("alertname".into(), "Down".into());
        labels.insert("instance".into(), format!("web-{i:03}"));
        alert.fingerprint = Fingerprint::of(&labels);
        alert.labels = Arc::new(labels);
        let json = AlertJson::of(&alert, "http://aegis:9464/api/alerts".into());
        ledger.queue(Notify::Transition, json, now, now, false);
    }
    ledger
}

fn compose(c: &mut Criterion) {
    let grouping = Grouping {
        receiver: "ops".into(),
        by: GroupBy::new(&["alertname".into(), "service".into()]),
        wait: Duration::ZERO,
        max_alerts: 0,
        external_url: "http://aegis:9464".into(),
    };
    let mut group = c.benchmark_group("sinks::webhook::compose");
    for alerts in [1, 100] {
        group.throughput(Throughput::Elements(alerts as u64));
        group.bench_function(format!("{alerts}_alerts"), |b| {
            b.iter_batched(
                || waiting(alerts),
                |mut ledger| grouping.next(&mut ledger, SystemTime::now(), false),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A receiver answering 200 at once, counting what it got, on a thread of its own.
struct Receiver {
    addr: SocketAddr,
    got: Arc<AtomicUsize>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Receiver {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&got);
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let counted = Arc::clone(&counted);
                            async move {
                                let _ = request.into_body().collect().await;
                                counted.fetch_add(1, Ordering::Relaxed);
                                Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::new())))
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            got,
            _runtime: runtime,
        }
    }
}

/// A source that sends the alerts in one batch, then waits (as a running pipeline
/// does) until the receiver has had them all.
struct Alerts {
    alerts: Vec<Alert>,
    got: Arc<AtomicUsize>,
    target: usize,
}

impl Source for Alerts {
    fn run(
        self: Box<Self>,
        out: Output,
        _: CancellationToken,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let _ = out
                .send(self.alerts.into_iter().map(Event::Alert).collect())
                .await;
            while self.got.load(Ordering::Relaxed) < self.target {
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            Ok(())
        })
    }
}

/// The sink of `yaml`'s options, built as the loader builds it.
fn webhook(yaml: &str, base: &Path) -> Box<dyn aegis::base::component::Sink> {
    let spans = SpanIndex::build(yaml);
    let mut diag = Diagnostics::new(&spans);
    let value: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
    let path = KeyPath::root().key("ops");
    let config = WebhookConfig::decode(&value, &path, &mut diag).expect("a valid sink");
    let (stats, shared) = (StatsHandle::default(), Shared::default());
    let mut cx = BuildContext {
        id: "ops",
        base,
        once: false,
        checking: false,
        diag: &mut diag,
        stats: &stats,
        checks: &[],
        shared: &shared,
    };
    config.build(&mut cx).expect("built")
}

fn deliver(c: &mut Criterion) {
    let receiver = Receiver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut group = c.benchmark_group("sinks::webhook::deliver");
    group.sample_size(10);
    group.throughput(Throughput::Elements(ALERTS as u64));
    for (case, state) in [("in_memory", ""), ("state_dir", "state_dir: state\n")] {
        let yaml = format!(
            "url: http://{}/alerts\ngroup_by: ['...']\n{state}",
            receiver.addr
        );
        group.bench_function(format!("{ALERTS}_notifications_{case}"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    // A fresh folder each time: a ledger left behind would be news to none.
                    let _ = std::fs::remove_dir_all(dir.path().join("state"));
                    let before = receiver.got.load(Ordering::Relaxed);
                    let source = Alerts {
                        alerts: (0..ALERTS).map(alert).collect(),
                        got: Arc::clone(&receiver.got),
                        target: before + ALERTS,
                    };
                    let graph = Graph {
                        nodes: vec![
                            Node {
                                id: "alerts".into(),
                                inputs: Vec::new(),
                                component: Component::Source(Box::new(source)),
                            },
                            Node {
                                id: "ops".into(),
                                inputs: vec![0],
                                component: Component::Sink(webhook(&yaml, dir.path())),
                            },
                        ],
                        stats: StatsHandle::default(),
                        shared: Default::default(),
                        services: Arc::new([]),
                    };
                    let started = Instant::now();
                    runtime
                        .block_on(aegis::pipeline::runtime::run(
                            graph,
                            CancellationToken::new(),
                        ))
                        .unwrap();
                    spent += started.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, compose, deliver);
criterion_main!(benches);
