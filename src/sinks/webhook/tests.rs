//! The webhook sink against real receivers on 127.0.0.1: hyper servers that answer as
//! a test scripts them (refuse, 500, hang, 429, 400, then 200) and record every
//! request. Alerts are made by hand, as the `alert` stage would make them.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::*;
use crate::base::component::{Batch, CHANNEL_CAPACITY, Input, NodeError};
use crate::base::diagnostics::testing::decoded_or_shown;
use crate::base::event::{Alert, AlertState, Event, Fingerprint, LabelSet, Notify};
use crate::base::registry::Shared;
use crate::base::spans::SpanIndex;
use crate::base::stats::StatsHandle;
use crate::sinks::notify::ledger::Ledger;

/// How long a test waits for what should take well under a second.
const PATIENCE: Duration = Duration::from_secs(20);

/// How a scripted receiver answers a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// `429` with `Retry-After: SECONDS`.
    TooMany(u64),
    /// No answer at all.
    Hang,
}

/// One request a receiver got.
#[derive(Clone, Debug)]
struct Received {
    key: String,
    signature: Option<String>,
    body: Bytes,
    at: Instant,
    /// The status answered; 0 for a request left hanging.
    status: u16,
}

impl Received {
    fn json(&self) -> Json {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver on 127.0.0.1, on a runtime of its own: it answers the requests
/// as its script says, then `200`, and records each.
struct Hook {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Hook {
    fn start(script: &[Answer]) -> Hook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        Hook::on(listener, script)
    }

    /// The receiver on a port nothing listens on yet: connections are refused until
    /// [`Hook::on`] binds it.
    fn closed_port() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address")
    }

    fn on(listener: std::net::TcpListener, script: &[Answer]) -> Hook {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("receiver runtime");
        let addr = listener.local_addr().expect("address");
        listener.set_nonblocking(true).expect("non-blocking");
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script.to_vec())));
        let served = Arc::clone(&log);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let (log, script) = (Arc::clone(&served), Arc::clone(&script));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        answer(request, Arc::clone(&log), Arc::clone(&script))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Hook {
            addr,
            log,
            runtime: Some(runtime),
        }
    }

    fn url(&self) -> String {
        format!("http://{}/alerts", self.addr)
    }

    fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// The requests answered `200`, in order.
    fn acks(&self) -> Vec<Received> {
        let requests = self.requests();
        requests.into_iter().filter(|r| r.status == 200).collect()
    }

    /// The alerts acknowledged, in order, as (alertname, status, startsAt).
    fn told(&self) -> Vec<(String, String, String)> {
        (self.acks().iter())
            .flat_map(|ack| ack.json()["alerts"].as_array().unwrap().clone())
            .map(|alert| {
                let field = |name: &str| alert[name].as_str().unwrap().to_owned();
                let name = alert["labels"]["alertname"].as_str().unwrap().to_owned();
                (name, field("status"), field("startsAt"))
            })
            .collect()
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn answer(
    request: hyper::Request<Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let header =
        |name: &str| (request.headers().get(name)).map(|value| value.to_str().unwrap().to_owned());
    let key = header("idempotency-key").unwrap_or_default();
    let signature = header("x-aegis-signature");
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let next = script.lock().unwrap().pop_front();
    let status = match next {
        None => 200,
        Some(Answer::Status(status)) => status,
        Some(Answer::TooMany(_)) => 429,
        Some(Answer::Hang) => 0,
    };
    log.lock().unwrap().push(Received {
        key,
        signature,
        body,
        at,
        status,
    });
    if status == 0 {
        std::future::pending::<()>().await;
    }
    let mut response = hyper::Response::new(Full::new(Bytes::from_static(b"as scripted")));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    if let Some(Answer::TooMany(seconds)) = next {
        (response.headers_mut()).insert("retry-after", seconds.to_string().parse().unwrap());
    }
    Ok(response)
}

/// Decodes the options of sink `id` from a pipeline's YAML, as a configuration is;
/// the errors as users see them.
fn decode(yaml: &str, id: &str) -> Result<WebhookConfig, Vec<String>> {
    decoded_or_shown(yaml, |value, diag| {
        let mut options = value["sinks"][id].clone();
        let mapping = options.as_mapping_mut().unwrap();
        mapping.remove("type");
        mapping.remove("inputs");
        let path = KeyPath::root().key("sinks").key(id);
        WebhookConfig::decode(&options, &path, diag)
    })
}

/// Builds `config` in a pipeline whose shared state is `shared`.
fn build(config: &WebhookConfig, shared: &Shared) -> Result<Box<dyn Sink>, Vec<String>> {
    let spans = SpanIndex::build("");
    let mut diag = Diagnostics::new(&spans);
    let stats = StatsHandle::default();
    let mut cx = BuildContext {
        id: "hook",
        base: Path::new("/"),
        once: false,
        checking: false,
        diag: &mut diag,
        stats: &stats,
        checks: &[],
        shared,
    };
    let sink = config.build(&mut cx);
    let (errors, _) = diag.finish();
    let shown = |e: &crate::base::diagnostics::Diagnostic| e.message.clone();
    sink.ok_or_else(|| errors.iter().map(shown).collect())
}

/// The YAML of a webhook sink `id` to `url`, fast retries, with `more` options.
fn hook_yaml(id: &str, url: &str, more: &str) -> String {
    format!(
        "sinks:\n  {id}:\n    type: webhook\n    inputs: [alerts]\n    url: {url}\n    timeout: 300ms\n    \
         retry: {{ max_attempts: 3, initial_delay: 10ms, max_delay: 50ms, jitter: none }}\n{more}"
    )
}

/// A running sink: its input, and its task.
struct Running {
    input: mpsc::Sender<Batch>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
}

impl Running {
    /// Runs sink `id` of `yaml` in the pipeline whose shared state is `shared`.
    fn start(yaml: &str, id: &str, shared: &Shared) -> Running {
        let sink = build(&decode(yaml, id).unwrap(), shared).unwrap();
        let (input, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let task = tokio::spawn(sink.run(Input::new(receiver, Arc::new(AtomicU64::new(0)))));
        Running { input, task }
    }

    async fn send(&self, alerts: Vec<Alert>) {
        let events = alerts.into_iter().map(Event::Alert).collect();
        self.input
            .send(Arc::new(events))
            .await
            .expect("the sink runs");
    }

    /// Closes the input and waits for the sink to finish.
    async fn close(self) {
        drop(self.input);
        self.task.await.unwrap().unwrap();
    }
}

/// An alert of rule `name` on service `shop`, as the alert stage would emit it now.
fn alert(name: &str, state: AlertState, started: SystemTime, notify: Notify) -> Alert {
    Alert {
        at: SystemTime::now(),
        started,
        ended: (state == AlertState::Resolved).then(SystemTime::now),
        ..crate::sinks::testing::alert("shop", name, Severity::Critical, state, notify, 0)
    }
}

fn firing(name: &str, started: SystemTime) -> Alert {
    alert(name, AlertState::Firing, started, Notify::Transition)
}

fn resolved(name: &str, started: SystemTime) -> Alert {
    alert(name, AlertState::Resolved, started, Notify::Transition)
}

/// A start time `n` seconds into 2026.
fn start(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600 + n)
}

/// Polls `done` until it holds, failing the test after [`PATIENCE`].
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The count `notifications{sink, result}`.
fn count(shared: &Shared, sink: &str, result: &str) -> u64 {
    let deliveries = shared.get::<Deliveries>();
    deliveries
        .notifications
        .with_label_values(&[sink, result])
        .get()
}

#[tokio::test]
async fn every_transition_arrives_once_in_order_through_refusals_errors_hangs_and_429s() {
    let shared = Shared::default();
    let flaky_addr = Hook::closed_port();
    let healthy = Hook::start(&[]);
    let flaky_url = format!("http://{flaky_addr}/alerts");
    let yaml = format!(
        "{}{}",
        hook_yaml("flaky", &flaky_url, ""),
        hook_yaml("healthy", &healthy.url(), "").replacen("sinks:\n", "", 1)
    );
    let flaky_sink = Running::start(&yaml, "flaky", &shared);
    let healthy_sink = Running::start(&yaml, "healthy", &shared);
    let send = async |alerts: Vec<Alert>| {
        flaky_sink.send(alerts.clone()).await;
        healthy_sink.send(alerts).await;
        Instant::now()
    };

    // The first notification meets a closed port, then 500 three times, a hang past
    // the timeout, and a 429 asking for a second.
    let mut sent = vec![send(vec![firing("X", start(1))]).await];
    until("a refused connection", || {
        count(&shared, "flaky", "retried") >= 1
    })
    .await;
    sent.push(send(vec![resolved("X", start(1))]).await);
    sent.push(send(vec![firing("Y", start(2))]).await);
    sent.push(send(vec![firing("Z", start(3))]).await);
    sent.push(send(vec![resolved("Y", start(2))]).await);
    let script = [
        Answer::Status(500),
        Answer::Status(500),
        Answer::Status(500),
        Answer::Hang,
        Answer::TooMany(1),
    ];
    let flaky = Hook::on(std::net::TcpListener::bind(flaky_addr).unwrap(), &script);
    until("every transition at the flaky receiver", || {
        flaky.acks().len() == 5
    })
    .await;
    // The sink counts a delivery, then its latency, once the reply is back: after the
    // receiver noted it.
    until("the deliveries counted", || {
        let deliveries = shared.get::<Deliveries>();
        let counted = |sink: &str| {
            deliveries
                .latency
                .with_label_values(&[sink])
                .get_sample_count()
        };
        counted("flaky") == 5 && counted("healthy") == 5
    })
    .await;

    // The healthy receiver had each within moments, while the other struggled for
    // more than the second its 429 asked for.
    let healthy_acks = healthy.acks();
    assert_eq!(healthy_acks.len(), 5);
    for (ack, sent) in healthy_acks.iter().zip(&sent) {
        let latency = ack.at.duration_since(*sent);
        assert!(latency < Duration::from_millis(900), "{latency:?}");
    }
    assert!(healthy_acks[4].at < flaky.acks()[0].at);

    // Every transition arrived once, in order per alert, each under its own key,
    // which every retry of it carried.
    let told = |name: &str, status: &str, n: u64| {
        let starts_at = crate::sinks::notify::payload::time(start(n));
        (name.to_owned(), status.to_owned(), starts_at)
    };
    let expected = [
        told("X", "firing", 1),
        told("X", "resolved", 1),
        told("Y", "firing", 2),
        told("Z", "firing", 3),
        told("Y", "resolved", 2),
    ];
    assert_eq!(flaky.told(), expected);
    assert_eq!(healthy.told(), expected);
    let keys: std::collections::BTreeSet<String> =
        flaky.acks().iter().map(|ack| ack.key.clone()).collect();
    assert_eq!(keys.len(), 5, "a key per notification");
    let requests = flaky.requests();
    let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 500, 0, 429, 200, 200, 200, 200, 200]);
    assert!(requests[..6].iter().all(|r| r.key == requests[0].key));
    // The hang was cut at the timeout, and the 429's second was waited.
    assert!(requests[4].at - requests[3].at >= Duration::from_millis(300));
    assert!(requests[5].at - requests[4].at >= Duration::from_secs(1));
    // Attempts past `max_attempts` went on at `max_delay`: nothing was dropped.
    assert_eq!(count(&shared, "flaky", "delivered"), 5);
    assert_eq!(count(&shared, "flaky", "failed"), 0);
    assert!(count(&shared, "flaky", "retried") >= 6);
    assert_eq!(count(&shared, "healthy", "retried"), 0);
    let deliveries = shared.get::<Deliveries>();
    assert_eq!(deliveries.queued.with_label_values(&["flaky"]).get(), 0);
    let latency = deliveries.latency.with_label_values(&["flaky"]);
    assert_eq!(latency.get_sample_count(), 5);
    assert!(
        latency.get_sample_sum() > 1.3,
        "the first waited over 1.3 s"
    );
    flaky_sink.close().await;
    healthy_sink.close().await;
}

#[tokio::test]
async fn a_refusal_is_not_retried_and_is_counted_failed_and_a_fallback_takes_what_fails() {
    let shared = Shared::default();
    let refusing = Hook::start(&[Answer::Status(400)]);
    let pager = Hook::start(&[]);
    let down = Hook::closed_port();
    let yaml = [
        hook_yaml("strict", &refusing.url(), ""),
        hook_yaml(
            "primary",
            &format!("http://{down}/"),
            "    fallback: pager\n",
        ),
        hook_yaml("pager", &pager.url(), ""),
    ]
    .map(|yaml| yaml.replacen("sinks:\n", "", 1))
    .concat();
    let yaml = format!("sinks:\n{yaml}");
    let strict = Running::start(&yaml, "strict", &shared);
    let primary = Running::start(&yaml, "primary", &shared);
    let _pager = Running::start(&yaml, "pager", &shared);

    strict.send(vec![firing("X", start(1))]).await;
    strict.send(vec![firing("Y", start(2))]).await;
    until("Y", || refusing.acks().len() == 1).await;
    let requests = refusing.requests();
    assert_eq!(requests.len(), 2, "one attempt for X, refused; one for Y");
    assert_eq!(requests[0].status, 400);
    assert_eq!(refusing.told()[0].0, "Y");
    until("Y counted", || count(&shared, "strict", "delivered") == 1).await;
    assert_eq!(count(&shared, "strict", "failed"), 1);
    assert_eq!(count(&shared, "strict", "retried"), 0);

    // Three refused connections, and the fallback gets it, under its own name.
    primary.send(vec![firing("Z", start(3))]).await;
    until("the fallback", || {
        pager.acks().len() == 1 && count(&shared, "pager", "delivered") == 1
    })
    .await;
    let payload = pager.acks()[0].json();
    assert_eq!(payload["receiver"], "pager");
    assert_eq!(payload["alerts"][0]["labels"]["alertname"], "Z");
    assert_eq!(count(&shared, "primary", "retried"), 2);
    assert_eq!(count(&shared, "primary", "failed"), 1);
    assert_eq!(count(&shared, "pager", "delivered"), 1);
    strict.close().await;
    primary.close().await;
}

/// Each JSON value's type in place of the value, keys kept: the shape to compare.
fn shape(value: &Json) -> Json {
    match value {
        Json::Object(fields) => (fields.iter())
            .map(|(key, value)| (key.clone(), shape(value)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        Json::Array(items) => items.iter().map(shape).collect::<Vec<_>>().into(),
        Json::String(_) => "string".into(),
        Json::Number(_) => "number".into(),
        Json::Bool(_) => "bool".into(),
        Json::Null => "null".into(),
    }
}

fn sample(name: &str) -> Json {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("the Alertmanager sample")).unwrap()
}

#[tokio::test]
async fn the_payload_is_alertmanagers_key_for_key_type_for_type() {
    let shared = Shared::default();
    let receiver = Hook::start(&[]);
    let yaml = hook_yaml(
        "aegis-webhook",
        &receiver.url(),
        "    external_url: http://127.0.0.1:19093/\n",
    );
    let sink = Running::start(&yaml, "aegis-webhook", &shared);
    // The alerts of tests/fixtures/alertmanager_webhook_firing.json, as Aegis
    // would raise them; one batch, so they wait together and go in one notification.
    let started = UNIX_EPOCH + Duration::from_millis(1_795_888_995_935);
    let ended = UNIX_EPOCH + Duration::from_millis(1_795_888_997_178);
    let instance = |instance: &str, state: AlertState| {
        let labels: LabelSet = [
            ("alertname", "LogPatternCritical"),
            ("instance", instance),
            ("pattern", "p01"),
            ("service", "checkout"),
            ("severity", "critical"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        let annotations: LabelSet = [
            (
                "description",
                "pattern p01 matched 3 times in 60s".to_owned(),
            ),
            (
                "summary",
                format!("OutOfMemoryError in checkout logs on {instance}"),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v))
        .into();
        Alert {
            fingerprint: Fingerprint::of(&labels),
            labels: Arc::new(labels),
            annotations: Arc::new(annotations),
            ended: (state == AlertState::Resolved).then_some(ended),
            ..alert("LogPatternCritical", state, started, Notify::Transition)
        }
    };
    for (state, name) in [
        (AlertState::Firing, "alertmanager_webhook_firing.json"),
        (AlertState::Resolved, "alertmanager_webhook_resolved.json"),
    ] {
        let acked = receiver.acks().len();
        sink.send(vec![instance("web-01", state), instance("web-02", state)])
            .await;
        until("the notification", || receiver.acks().len() == acked + 1).await;
        let mut payload = receiver.acks()[acked].json();
        let expected = sample(name);
        assert_eq!(shape(&payload), shape(&expected), "{name}");
        // The same values too, but where the alerts come from.
        for alert in payload["alerts"].as_array_mut().unwrap() {
            let url = alert["generatorURL"].as_str().unwrap();
            assert!(
                url.starts_with("http://127.0.0.1:19093/api/alerts?fingerprint="),
                "{url}"
            );
            alert["generatorURL"] = expected["alerts"][0]["generatorURL"].clone();
        }
        assert_eq!(payload, expected, "{name}");
    }
    sink.close().await;
}

#[tokio::test]
async fn group_wait_gathers_a_group_and_max_alerts_leaves_the_rest_for_the_next() {
    let shared = Shared::default();
    let receiver = Hook::start(&[]);
    let yaml = hook_yaml(
        "hook",
        &receiver.url(),
        "    group_by: [service]\n    group_wait: 300ms\n    max_alerts: 2\n",
    );
    let sink = Running::start(&yaml, "hook", &shared);
    let sent = Instant::now();
    sink.send(vec![firing("A", start(1))]).await;
    sink.send(vec![firing("B", start(1))]).await;
    sink.send(vec![firing("C", start(1))]).await;
    until("two notifications", || receiver.acks().len() == 2).await;
    let acks = receiver.acks();
    assert!(
        acks[0].at - sent >= Duration::from_millis(300),
        "the group waited"
    );
    let first = acks[0].json();
    assert_eq!(first["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(first["truncatedAlerts"], 1);
    assert_eq!(first["groupKey"], "{}:{service=\"shop\"}");
    assert_eq!(first["commonLabels"]["service"], "shop");
    assert!(first["commonLabels"].get("alertname").is_none());
    let second = acks[1].json();
    assert_eq!(second["alerts"][0]["labels"]["alertname"], "C");
    assert_eq!(second["truncatedAlerts"], 0);
    sink.close().await;
}

/// Captures what is logged on this thread while `body` runs to the end.
fn logged<T>(body: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, body);
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    (result, text)
}

#[test]
fn bodies_are_signed_and_secrets_stay_out_of_logs_debug_and_expand() {
    // SAFETY: this test alone reads or writes these variables.
    unsafe { std::env::set_var("AEGIS_TEST_HOOK_SECRET", "hmac-s3cret-value") };
    unsafe { std::env::set_var("AEGIS_TEST_HOOK_TOKEN", "t0ken-value") };
    let receiver = Hook::start(&[Answer::Status(500)]);
    let yaml = hook_yaml(
        "signed",
        &receiver.url(),
        "    hmac_secret: \"${AEGIS_TEST_HOOK_SECRET}\"\n    headers: { Authorization: \"Bearer ${AEGIS_TEST_HOOK_TOKEN}\" }\n",
    );
    let config = decode(&yaml, "signed").unwrap();
    let printed = serde_norway::to_string(&config).unwrap();
    assert!(
        printed.contains("hmac_secret: ${AEGIS_TEST_HOOK_SECRET}"),
        "{printed}"
    );
    assert!(
        printed.contains("Bearer ${AEGIS_TEST_HOOK_TOKEN}"),
        "{printed}"
    );
    let debug = format!("{config:?}");
    for shown in [&printed, &debug] {
        assert!(
            !shown.contains("s3cret") && !shown.contains("t0ken"),
            "{shown}"
        );
    }

    let ((), logs) = logged(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let shared = Shared::default();
            let sink = Running::start(&yaml, "signed", &shared);
            sink.send(vec![firing("X", start(1))]).await;
            until("the notification", || receiver.acks().len() == 1).await;
            sink.close().await;
        });
    });
    assert!(logs.contains("Notification attempt failed"), "{logs}");
    assert!(
        !logs.contains("s3cret") && !logs.contains("t0ken"),
        "{logs}"
    );
    // Both attempts carried the signature of their body, which the secret verifies.
    for request in receiver.requests() {
        let mut mac = Hmac::<Sha256>::new_from_slice(b"hmac-s3cret-value").unwrap();
        mac.update(&request.body);
        let expected = format!("sha256={}", super::group::hex(&mac.finalize().into_bytes()));
        assert_eq!(request.signature.as_deref(), Some(expected.as_str()));
    }
}

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A pipeline's sink on a runtime of its own, which a test kills as `SIGKILL` would
/// the process: its tasks stop wherever they are.
struct Process {
    runtime: tokio::runtime::Runtime,
    input: mpsc::Sender<Batch>,
}

impl Process {
    fn start(yaml: &str, id: &str) -> Process {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Shared::default();
        let sink = build(&decode(yaml, id).unwrap(), &shared).unwrap();
        let (input, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        runtime.spawn(sink.run(Input::new(receiver, Arc::new(AtomicU64::new(0)))));
        Process { runtime, input }
    }

    fn send(&self, alerts: Vec<Alert>) {
        let events = alerts.into_iter().map(Event::Alert).collect();
        self.input.blocking_send(Arc::new(events)).unwrap();
    }

    fn kill(self) {
        self.runtime.shutdown_background();
    }
}

/// Polls `done` on this thread until it holds, failing after [`PATIENCE`].
fn until_blocking(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The ledger saved in `dir` for receiver `name`.
fn saved(dir: &Path, name: &str) -> Ledger {
    let text = std::fs::read(dir.join(format!("webhook-{name}.json"))).unwrap_or_default();
    serde_json::from_slice(&text).unwrap_or_default()
}

#[test]
fn what_was_queued_survives_a_kill_and_what_was_acknowledged_is_not_told_again() {
    let dir = tempfile::tempdir().unwrap();
    let addr = Hook::closed_port();
    let yaml = hook_yaml(
        "ops",
        &format!("http://{addr}/alerts"),
        &format!("    state_dir: {}\n", dir.path().display()),
    );
    // The receiver is down: the firing waits in the ledger, saved as it was queued.
    let first = Process::start(&yaml, "ops");
    first.send(vec![firing("X", start(1))]);
    until_blocking("the ledger", || {
        saved(dir.path(), "ops").in_flight().is_some()
    });
    let key = saved(dir.path(), "ops").in_flight().unwrap().key.clone();
    first.kill();

    // Restarted with the receiver up: it is delivered; then, restated by the alert
    // stage after the restart, it is not told again, while a new alert is.
    let receiver = Hook::on(std::net::TcpListener::bind(addr).unwrap(), &[]);
    let second = Process::start(&yaml, "ops");
    until_blocking("the delivery", || receiver.acks().len() == 1);
    until_blocking("the acknowledgement saved", || {
        let ledger = saved(dir.path(), "ops");
        ledger.depth() == 0 && ledger.told(firing("X", start(1)).fingerprint).is_some()
    });
    second.kill();
    let third = Process::start(&yaml, "ops");
    third.send(vec![
        alert("X", AlertState::Firing, start(1), Notify::Restated),
        firing("Y", start(2)),
    ]);
    until_blocking("Y", || receiver.told().len() >= 2);
    let told: Vec<String> = receiver.told().into_iter().map(|(name, ..)| name).collect();
    assert_eq!(told, ["X", "Y"]);
    // The restart sent the notification composed before the kill, key and all.
    assert_eq!(receiver.requests().len(), 2);
    assert_eq!(receiver.acks()[0].key, key);
    third.kill();
}

#[test]
fn options_decode_with_webhook_defaults_and_located_errors() {
    let yaml = "sinks:\n  ops:\n    url: http://127.0.0.1:9/\n    retry: { max_attempts: 2 }\n";
    let config = decode(yaml, "ops").unwrap();
    assert_eq!(config.options.name, "ops");
    assert_eq!(config.target.timeout, Duration::from_secs(5));
    assert_eq!(config.options.retry.max_attempts, 2);
    assert_eq!(config.options.retry.initial_delay, Duration::from_secs(1));
    assert_eq!(config.options.retry.max_delay, Duration::from_secs(60));
    assert_eq!(config.options.min_severity, Severity::Info);
    assert_eq!(config.options.group_by, ["alertname", "service"]);
    assert_eq!(config.options.group_wait, Duration::ZERO);
    let printed = serde_norway::to_string(&config).unwrap();
    assert!(
        printed.contains("timeout: 5s") && printed.contains("name: ops"),
        "{printed}"
    );

    let errors = decode(
        "sinks:
  ops:
    url: http://127.0.0.1:9/
    hedaers: { X: y }
    name: \"o p s\"
    fallback: \"o p s\"
    group_by: [service, 'bad-label']
    min_severity: FATAL
    hmac_secret: \"${AEGIS_TEST_HOOK_UNSET}\"
    group_wait: soon
",
        "ops",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        [
            "c.yaml:4:5: sinks.ops.hedaers: unknown key `hedaers`; expected one of `url`, `method`, `headers`, `timeout`, `tls_verify` (did you mean `headers`?)",
            "c.yaml:5:11: sinks.ops.name: invalid receiver name `o p s`; expected letters, digits, `_`, `.` and `-` (it names the ledger file `webhook-NAME.json`), such as `ops`",
            "c.yaml:6:15: sinks.ops.fallback: the fallback of `o p s` is itself; name another webhook sink",
            "c.yaml:7:25: sinks.ops.group_by[1]: invalid label name `bad-label`; expected `[a-zA-Z_][a-zA-Z0-9_]*`, such as `service`, or `...` for every label",
            "c.yaml:8:19: sinks.ops.min_severity: unknown severity `FATAL`; expected one of `CRITICAL`, `WARNING`, `INFO` (any case)",
            "c.yaml:9:18: sinks.ops.hmac_secret: environment variable `AEGIS_TEST_HOOK_UNSET` is not set",
            "c.yaml:10:17: sinks.ops.group_wait: invalid duration `soon`: expected number at 0; expected e.g. `500ms`, `30s`, `1m`",
        ]
    );
}

#[test]
fn a_receiver_in_a_list_must_be_named() {
    let yaml = "alerting:\n  webhooks:\n    - url: http://127.0.0.1:9/\n";
    let spans = SpanIndex::build(yaml);
    let mut diag = Diagnostics::new(&spans);
    let value: Value = serde_norway::from_str(yaml).unwrap();
    let path = KeyPath::root().key("alerting").key("webhooks").index(0);
    WebhookConfig::decode(&value["alerting"]["webhooks"][0], &path, &mut diag);
    let (errors, _) = diag.finish();
    assert_eq!(
        errors[0].display(Path::new("c.yaml")).to_string(),
        "c.yaml:3:7: alerting.webhooks[0]: missing key `name`; a webhook receiver needs a name, such as `name: ops`"
    );
}

#[test]
fn no_option_is_taken_for_a_misspelt_target_key() {
    let options = [
        "name",
        "retry",
        "hmac_secret",
        "min_severity",
        "fallback",
        "group_by",
        "group_wait",
        "max_alerts",
        "external_url",
        "state_dir",
    ];
    for key in options {
        assert_eq!(closest(key, HttpTarget::KEYS), None, "{key}");
    }
}

#[test]
fn two_receivers_may_not_share_a_name() {
    let shared = Shared::default();
    let yaml = "sinks:\n  a:\n    url: http://127.0.0.1:9/\n    name: ops\n  b:\n    url: http://127.0.0.1:9/\n    name: ops\n";
    assert!(build(&decode(yaml, "a").unwrap(), &shared).is_ok());
    let errors = build(&decode(yaml, "b").unwrap(), &shared).err().unwrap();
    assert!(
        errors[0].starts_with("receiver name `ops` is already another webhook sink's"),
        "{errors:?}"
    );
}

#[test]
fn group_keys_quote_values_as_go_does() {
    let labels: LabelSet = [("alertname", "Disk \"full\""), ("service", "a\\b\n")]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
    assert_eq!(
        super::group::go_label_set(&labels),
        r#"{alertname="Disk \"full\"", service="a\\b\n"}"#
    );
    assert_eq!(super::group::go_label_set(&BTreeMap::new()), "{}");
}
