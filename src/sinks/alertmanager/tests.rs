//! The `alertmanager` sink: its configuration as a file gives it, its posts against
//! local receivers that answer as told, and a real Alertmanager (Debian's
//! `prometheus-alertmanager`, 0.25) that takes an alert, shows it with the fingerprint
//! Aegis computed, and resolves it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value as Json;
use tokio::sync::mpsc;

use super::outbox::PostableAlert;
use super::*;
use crate::base::component::{Batch, CHANNEL_CAPACITY};
use crate::base::diagnostics::testing::decoded_or_shown;
use crate::base::event::{Alert, AlertState, Fingerprint, Notify, Severity};
use crate::base::registry::Shared;
use crate::base::spans::SpanIndex;
use crate::base::stats::StatsHandle;
use crate::sinks::testing;

/// How long a test waits for what must happen, at most: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// Decodes a sink's options from YAML as a configuration file gives them; the errors
/// as they are shown.
fn decode(yaml: &str) -> Result<AlertmanagerConfig, Vec<String>> {
    decoded_or_shown(yaml, |value, diag| {
        AlertmanagerConfig::decode(value, &KeyPath::root(), diag)
    })
}

#[test]
fn options_have_defaults_and_mistakes_are_located() {
    let config = decode("urls: [http://127.0.0.1:9093]\n").unwrap();
    assert_eq!(config.timeout, Duration::from_secs(10));
    assert_eq!(config.resend_interval, Duration::from_secs(60));
    assert!(config.tls_verify && config.headers.is_empty() && config.external_url.is_none());
    let written = serde_norway::to_string(&config).unwrap();
    assert_eq!(
        written,
        "urls:\n- http://127.0.0.1:9093\ntimeout: 10s\nresend_interval: 1m\ntls_verify: true\n"
    );

    let errors =
        decode("urls: [http://a:9093, 'http://b:9093/?x=1', http://a:9093, ftp://c]\nresend: 1m\n")
            .unwrap_err();
    assert_eq!(
        errors,
        [
            "c.yaml:1:60: urls[3]: invalid URL `ftp://c`: the scheme must be `http` or `https`",
            "c.yaml:2:1: resend: unknown key `resend`; expected one of `urls`, `timeout`, `resend_interval`, `headers`, `tls_verify`, `external_url`"
        ]
    );
    let errors =
        decode("urls: [http://a:9093, 'http://b:9093/?x=1', http://a:9093/]\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "c.yaml:1:23: urls[1]: a query or a fragment in an Alertmanager's URL; expected its base URL, such as `http://127.0.0.1:9093`",
            "c.yaml:1:45: urls[2]: the same Alertmanager as urls[0]; list each once",
        ]
    );
    let errors = decode("urls: []\n").unwrap_err();
    assert_eq!(
        errors,
        [
            "c.yaml:1:7: urls: no Alertmanager; expected at least one URL, such as `[http://127.0.0.1:9093]`"
        ]
    );
}

#[test]
fn alerts_go_below_the_base_url_and_alertmanagers_are_named_without_secrets() {
    let url = |text: &str| {
        decode(&format!("urls: ['{text}']\n"))
            .unwrap()
            .urls
            .remove(0)
    };
    assert_eq!(
        endpoint(&url("http://127.0.0.1:9093")).url().as_str(),
        "http://127.0.0.1:9093/api/v2/alerts"
    );
    assert_eq!(
        endpoint(&url("https://u:p@am.example/prefix/"))
            .url()
            .as_str(),
        "https://u:p@am.example/prefix/api/v2/alerts"
    );
    assert_eq!(
        authority(url("https://u:p@am.example/prefix/").url()),
        "am.example:443/prefix"
    );
    assert_eq!(
        authority(url("http://127.0.0.1:9093").url()),
        "127.0.0.1:9093"
    );
    assert!(default_external_url().as_str().ends_with(":9464/"));
}

#[test]
fn a_posted_alert_has_the_keys_and_types_alertmanager_takes() {
    let sample: Json = serde_json::from_str(include_str!(
        "../../../tests/fixtures/alertmanager_post_firing.json"
    ))
    .unwrap();
    let alert = testing::alert(
        "shop",
        "CheckDown",
        Severity::Critical,
        AlertState::Firing,
        Notify::Transition,
        20,
    );
    let posted = Table::default().record(&alert).unwrap();
    let ends = SystemTime::UNIX_EPOCH + Duration::from_secs(260);
    let ours = serde_json::to_value(PostableAlert::new(
        &posted,
        ends,
        "http://h:9464/api/alerts",
    ))
    .unwrap();
    let shape = |json: &Json| -> Vec<(String, &'static str)> {
        let object = json.as_object().unwrap();
        let mut shape: Vec<_> = (object.iter())
            .map(|(key, value)| {
                let kind = match value {
                    Json::String(_) => "string",
                    Json::Object(map) if map.values().all(Json::is_string) => "map of strings",
                    _ => "other",
                };
                (key.clone(), kind)
            })
            .collect();
        shape.sort();
        shape
    };
    assert_eq!(shape(&ours), shape(&sample[0]));
    assert_eq!(ours["startsAt"], "1970-01-01T00:00:10.000Z");
    assert_eq!(ours["endsAt"], "1970-01-01T00:04:20.000Z");
    assert_eq!(ours["labels"]["alertname"], "CheckDown");
    // The sample's times have the same form: milliseconds, UTC.
    let form = regex::Regex::new(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").unwrap();
    for time in [&sample[0]["startsAt"], &ours["startsAt"], &ours["endsAt"]] {
        assert!(form.is_match(time.as_str().unwrap()), "{time}");
    }
}

/// A running sink, fed by hand.
struct Running {
    feed: mpsc::Sender<Batch>,
    task: tokio::task::JoinHandle<Result<(), NodeError>>,
    deliveries: Arc<Deliveries>,
}

impl Running {
    /// Builds the sink `am` from `yaml` and runs it on the test's runtime.
    fn start(yaml: &str) -> Running {
        let config = decode(yaml).unwrap();
        let spans = SpanIndex::build("");
        let mut diag = Diagnostics::new(&spans);
        let (stats, shared) = (StatsHandle::default(), Shared::default());
        let mut cx = BuildContext {
            id: "am",
            base: Path::new("."),
            once: false,
            checking: false,
            diag: &mut diag,
            stats: &stats,
            checks: &[],
            shared: &shared,
        };
        let sink = config.build(&mut cx).unwrap();
        let (feed, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let input = Input::new(receiver, Arc::new(AtomicU64::new(0)));
        Running {
            feed,
            task: tokio::spawn(sink.run(input)),
            deliveries: shared.get::<Deliveries>(),
        }
    }

    async fn send(&self, alert: Alert) {
        self.feed
            .send(Arc::new(vec![Event::Alert(alert)]))
            .await
            .unwrap();
    }

    /// `aegis_notifications_total` of the Alertmanager at `addr` with `result`.
    fn count(&self, addr: SocketAddr, result: &str) -> u64 {
        let name = format!("am@{addr}");
        (self.deliveries.notifications)
            .with_label_values(&[name.as_str(), result])
            .get()
    }

    fn depth(&self, addr: SocketAddr) -> i64 {
        let name = format!("am@{addr}");
        self.deliveries
            .queued
            .with_label_values(&[name.as_str()])
            .get()
    }

    /// Closes the input, as a shutdown does, and waits for the sink to end.
    async fn stop(self) {
        drop(self.feed);
        self.task.await.unwrap().unwrap();
    }
}

/// An alert of service `shop` of rule `rule`, made now and started a second ago.
fn now_alert(rule: &str, state: AlertState) -> Alert {
    let mut alert = testing::alert(
        "shop",
        rule,
        Severity::Critical,
        state,
        Notify::Transition,
        0,
    );
    alert.at = SystemTime::now();
    alert.started = alert.at - Duration::from_secs(1);
    alert.ended = (state == AlertState::Resolved).then_some(alert.at);
    alert
}

/// How a [`Receiver`] answers a request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// Never.
    Hang,
}

/// A request a [`Receiver`] took: its body, its `Authorization` header, and the
/// status it got.
#[derive(Debug)]
struct Taken {
    body: Json,
    authorization: Option<String>,
    status: u16,
}

/// An HTTP server on an ephemeral port of 127.0.0.1 that answers its requests in turn
/// as `answers` says (the last answer for every request after), and hands each body
/// it answered to the test.
struct Receiver {
    addr: SocketAddr,
    taken: mpsc::UnboundedReceiver<Taken>,
}

impl Receiver {
    async fn start(answers: &[Answer]) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (to_test, taken) = mpsc::unbounded_channel();
        let answers: Arc<[Answer]> = answers.into();
        let served = Arc::new(AtomicU64::new(0));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answers, served, to_test) = (answers.clone(), served.clone(), to_test.clone());
                let service =
                    hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                        let (answers, served, to_test) =
                            (answers.clone(), served.clone(), to_test.clone());
                        async move {
                            let n =
                                served.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as usize;
                            let answer = answers[n.min(answers.len() - 1)];
                            let authorization = (request.headers().get("authorization"))
                                .map(|value| value.to_str().unwrap().to_owned());
                            let body = request.into_body().collect().await.unwrap().to_bytes();
                            let status = match answer {
                                Answer::Status(status) => status,
                                Answer::Hang => std::future::pending().await,
                            };
                            let body = serde_json::from_slice(&body).unwrap_or(Json::Null);
                            let _ = to_test.send(Taken {
                                body,
                                authorization,
                                status,
                            });
                            let mut response = hyper::Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Receiver { addr, taken }
    }

    /// The next request answered, or a failure after [`PATIENCE`].
    async fn next(&mut self, what: &str) -> Taken {
        tokio::time::timeout(PATIENCE, self.taken.recv())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .expect("the receiver runs")
    }
}

/// The names of the rules of the alerts of a posted body.
fn rules(body: &Json) -> Vec<&str> {
    let alerts = body.as_array().expect("a list of alerts");
    alerts
        .iter()
        .map(|alert| alert["labels"]["alertname"].as_str().unwrap())
        .collect()
}

/// Polls `done` until it holds; fails after [`PATIENCE`].
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A port nothing listens on: bound for a moment, then freed.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn an_alertmanager_that_hangs_or_refuses_does_not_delay_another() {
    let hanging = Receiver::start(&[Answer::Hang]).await;
    let refusing = closed_port();
    let mut healthy = Receiver::start(&[Answer::Status(200)]).await;
    let sink = Running::start(&format!(
        "urls: [http://{}, http://{refusing}, http://{}]\ntimeout: 20s\n",
        hanging.addr, healthy.addr
    ));
    for rule in ["first", "second"] {
        let sent = Instant::now();
        sink.send(now_alert(rule, AlertState::Firing)).await;
        let taken = healthy.next("the healthy Alertmanager's post").await;
        assert_eq!(rules(&taken.body), [rule]);
        // Far less than the hanging one's timeout: it did not wait for it.
        assert!(
            sent.elapsed() < Duration::from_secs(5),
            "{:?}",
            sent.elapsed()
        );
    }
    // Counted once the reply is in, which is after the receiver handed the post over.
    eventually("both posts counted", || {
        sink.count(healthy.addr, "delivered") == 2
    })
    .await;
    assert_eq!(sink.depth(healthy.addr), 0);
    // The hanging one holds its first post, and both alerts wait for it.
    assert_eq!(sink.depth(hanging.addr), 2);
    eventually("the refused post to be counted", || {
        sink.count(refusing, "retried") >= 1
    })
    .await;
    sink.stop().await;
}

#[tokio::test]
async fn failed_posts_are_retried_until_taken_and_refusals_are_not() {
    use Answer::Status;
    let mut flaky = Receiver::start(&[
        Status(500),
        Status(503),
        Status(200),
        Status(400),
        Status(200),
    ])
    .await;
    let sink = Running::start(&format!("urls: [http://{}]\n", flaky.addr));
    sink.send(now_alert("down", AlertState::Firing)).await;
    let statuses = [
        flaky.next("a first try").await,
        flaky.next("a retry").await,
        flaky.next("a second retry").await,
    ];
    for (taken, status) in statuses.iter().zip([500, 503, 200]) {
        assert_eq!((rules(&taken.body), taken.status), (vec!["down"], status));
    }
    // Counted once the reply is in, which is after the receiver handed the post over.
    eventually("the delivery counted", || {
        sink.count(flaky.addr, "delivered") == 1
    })
    .await;
    assert_eq!(sink.count(flaky.addr, "retried"), 2);

    // A 400 is not retried: the next post carries only the next alert.
    sink.send(now_alert("refused", AlertState::Firing)).await;
    let refused = flaky.next("the post refused").await;
    assert_eq!(
        (rules(&refused.body), refused.status),
        (vec!["refused"], 400)
    );
    sink.send(now_alert("next", AlertState::Firing)).await;
    let next = flaky.next("the next post").await;
    assert_eq!((rules(&next.body), next.status), (vec!["next"], 200));
    eventually("the delivery counted", || {
        sink.count(flaky.addr, "delivered") == 2
    })
    .await;
    assert_eq!(sink.count(flaky.addr, "failed"), 1);
    sink.stop().await;
}

#[tokio::test]
async fn headers_from_the_environment_are_sent_and_never_shown() {
    // SAFETY: this test alone reads or writes this variable.
    unsafe { std::env::set_var("AEGIS_TEST_AM_TOKEN", "s3cret-am") };
    let mut receiver = Receiver::start(&[Answer::Status(200)]).await;
    let yaml = format!(
        "urls: [http://{}]\nheaders: {{ Authorization: \"Bearer ${{AEGIS_TEST_AM_TOKEN}}\" }}\n",
        receiver.addr
    );
    let config = decode(&yaml).unwrap();
    let expanded = serde_norway::to_string(&config).unwrap();
    assert!(
        expanded.contains("Bearer ${AEGIS_TEST_AM_TOKEN}"),
        "{expanded}"
    );
    for shown in [expanded, format!("{config:?}")] {
        assert!(!shown.contains("s3cret-am"), "{shown}");
    }
    let sink = Running::start(&yaml);
    sink.send(now_alert("down", AlertState::Firing)).await;
    let taken = receiver.next("the post").await;
    assert_eq!(taken.authorization.as_deref(), Some("Bearer s3cret-am"));
    sink.stop().await;
}

#[tokio::test]
async fn firing_alerts_are_re_sent_with_an_end_four_intervals_ahead_resolves_with_their_own() {
    let mut receiver = Receiver::start(&[Answer::Status(200)]).await;
    let sink = Running::start(&format!(
        "urls: [http://{}]\nresend_interval: 1s\n",
        receiver.addr
    ));
    let firing = now_alert("down", AlertState::Firing);
    let mut pending = now_alert("soon", AlertState::Pending);
    pending.notify = Notify::No;
    sink.send(pending).await;
    sink.send(firing.clone()).await;
    let end_of = |taken: &Taken| {
        let text = taken.body[0]["endsAt"].as_str().unwrap().to_owned();
        humantime::parse_rfc3339(&text).unwrap()
    };
    let first = receiver.next("the firing alert").await;
    assert_eq!(rules(&first.body), ["down"]);
    let again = receiver.next("its re-send").await;
    assert_eq!(rules(&again.body), ["down"]);
    let ahead = end_of(&again).duration_since(SystemTime::now()).unwrap();
    assert!(
        ahead > Duration::from_secs(2) && ahead <= Duration::from_secs(4),
        "{ahead:?}"
    );
    assert!(end_of(&again) > end_of(&first));

    let mut resolved = firing;
    resolved.state = AlertState::Resolved;
    resolved.at = SystemTime::now();
    resolved.ended = Some(resolved.at);
    sink.send(resolved.clone()).await;
    let stamp = humantime::format_rfc3339_millis(resolved.at).to_string();
    // A re-send of the firing alert may have been under way: the resolve comes next.
    loop {
        let taken = receiver.next("the resolve").await;
        if taken.body[0]["endsAt"] == stamp.as_str() {
            break;
        }
    }
    let again = receiver.next("the resolve's re-send").await;
    assert_eq!(again.body[0]["endsAt"], stamp.as_str());
    sink.stop().await;
}

/// A real Alertmanager on 127.0.0.1, killed when dropped.
struct RealAlertmanager {
    child: Child,
    addr: SocketAddr,
    _folder: tempfile::TempDir,
}

impl Drop for RealAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's package `prometheus-alertmanager` installs it there (scripts/test.sh
/// installs the package).
const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

impl RealAlertmanager {
    /// Starts Alertmanager, with clustering off, routing every alert on its own to
    /// the webhook at `hook`, at once, and its resolve too; waits until it is ready.
    async fn start(hook: SocketAddr) -> RealAlertmanager {
        // The port is freed for Alertmanager to take; should another process take it
        // first, Alertmanager exits, and another port is tried.
        for _ in 0..3 {
            let folder = tempfile::tempdir().unwrap();
            let config = folder.path().join("alertmanager.yml");
            std::fs::write(
                &config,
                format!(
                    "route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 200ms\n  repeat_interval: 1h\n\
                     receivers:\n  - name: hook\n    webhook_configs:\n      - url: http://{hook}/\n        send_resolved: true\n"
                ),
            )
            .unwrap();
            let log = folder.path().join("alertmanager.log");
            let addr = closed_port();
            let child = Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.path={}", folder.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--cluster.listen-address=")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap_or_else(|err| {
                    panic!("cannot run {ALERTMANAGER} ({err}): install Debian's package `prometheus-alertmanager` (scripts/test.sh does)")
                });
            let mut alertmanager = RealAlertmanager {
                child,
                addr,
                _folder: folder,
            };
            if alertmanager.ready().await {
                return alertmanager;
            }
            let said = std::fs::read_to_string(&log).unwrap_or_default();
            assert!(
                said.contains("address already in use"),
                "Alertmanager did not start:\n{said}"
            );
        }
        panic!("Alertmanager found no free port in three tries");
    }

    /// Waits until `/-/ready` answers 200; `false` if Alertmanager exited first.
    async fn ready(&mut self) -> bool {
        let deadline = Instant::now() + PATIENCE;
        let url = format!("http://{}/-/ready", self.addr);
        loop {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let answer = reqwest::get(&url).await;
            if answer.is_ok_and(|response| response.status().is_success()) {
                return true;
            }
            assert!(
                Instant::now() < deadline,
                "Alertmanager was not ready in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The alerts `GET /api/v2/alerts` lists (active, silenced and inhibited; those
    /// resolved are never listed).
    async fn alerts(&self) -> Vec<Json> {
        let url = format!("http://{}/api/v2/alerts", self.addr);
        let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
        serde_json::from_str(&body).unwrap()
    }

    /// Polls the alerts until `done` holds for them; fails after [`PATIENCE`].
    async fn alerts_until(&self, what: &str, done: impl Fn(&[Json]) -> bool) -> Vec<Json> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let alerts = self.alerts().await;
            if done(&alerts) {
                return alerts;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {alerts:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A time as Alertmanager writes it.
fn time(json: &Json) -> SystemTime {
    let text = json.as_str().expect("a time");
    humantime::parse_rfc3339_weak(text).unwrap_or_else(|err| panic!("{text}: {err}"))
}

/// `at` to the millisecond, as Aegis sends times.
fn millis(at: SystemTime) -> SystemTime {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

#[tokio::test]
async fn a_real_alertmanager_takes_an_alert_with_our_fingerprint_and_resolves_it() {
    let mut hook = Receiver::start(&[Answer::Status(200)]).await;
    let alertmanager = RealAlertmanager::start(hook.addr).await;
    let sink = Running::start(&format!(
        "urls: [http://{}]\nexternal_url: http://aegis.example:9464\n",
        alertmanager.addr
    ));
    let firing = now_alert("CheckDown", AlertState::Firing);
    let fingerprint = Fingerprint::of(&firing.labels).to_string();
    sink.send(firing.clone()).await;

    let alerts = alertmanager
        .alerts_until("the firing alert", |alerts| !alerts.is_empty())
        .await;
    let [shown] = &alerts[..] else {
        panic!("one alert expected: {alerts:?}")
    };
    assert_eq!(shown["fingerprint"], fingerprint.as_str());
    assert_eq!(shown["status"]["state"], "active");
    assert_eq!(
        shown["labels"],
        serde_json::to_value(&*firing.labels).unwrap()
    );
    assert_eq!(
        shown["annotations"],
        serde_json::to_value(&*firing.annotations).unwrap()
    );
    assert_eq!(time(&shown["startsAt"]), millis(firing.started));
    assert_eq!(
        shown["generatorURL"],
        "http://aegis.example:9464/api/alerts"
    );
    let ahead = time(&shown["endsAt"])
        .duration_since(SystemTime::now())
        .unwrap();
    assert!(
        ahead > Duration::from_secs(3 * 60) && ahead <= Duration::from_secs(4 * 60),
        "{ahead:?}"
    );
    // Alertmanager notifies its receiver of it, under the same fingerprint.
    let told = hook.next("Alertmanager's firing notification").await;
    assert_eq!(told.body["status"], "firing");
    assert_eq!(told.body["alerts"][0]["fingerprint"], fingerprint.as_str());

    let mut resolved = firing;
    resolved.state = AlertState::Resolved;
    resolved.at = SystemTime::now();
    resolved.ended = Some(resolved.at);
    sink.send(resolved.clone()).await;
    // Alertmanager 0.25 lists no resolved alert in its API, with `active=false` or
    // not: the alert is gone from the list, and its receiver is told it resolved, at
    // the time Aegis said.
    alertmanager
        .alerts_until("the alert to be resolved", <[Json]>::is_empty)
        .await;
    let told = hook.next("Alertmanager's resolved notification").await;
    assert_eq!(told.body["status"], "resolved");
    let alert = &told.body["alerts"][0];
    assert_eq!(alert["fingerprint"], fingerprint.as_str());
    assert_eq!(alert["status"], "resolved");
    // (Go prints times without trailing zeros: compared as times, to the millisecond
    // Aegis sends.)
    assert_eq!(time(&alert["endsAt"]), millis(resolved.at));
    eventually("both posts counted", || {
        sink.count(alertmanager.addr, "delivered") == 2
    })
    .await;
    sink.stop().await;
}
