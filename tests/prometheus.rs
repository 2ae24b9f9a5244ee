//! The `prometheus` sink of the running daemon, scraped over HTTP while checks and a
//! log tail run against local servers and files: exact values, `promtool check
//! metrics`, a real Prometheus server scraping it, and scrapes answered in time while
//! slow clients hold connections.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::servers::HttpServer;
use crate::util::{PATIENCE, Running, Scene, http, http_within};

/// `GET path` from `address`; the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    http(address, "GET", path)
}

/// The value of the series `series` (name and labels exactly as exposed), if present.
pub fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Where the daemon serves metrics, from its log line.
pub fn metrics_address(aegis: &mut Running) -> String {
    aegis.wait_err("Serving metrics.", 1);
    let line = aegis
        .err
        .iter()
        .find(|line| line.contains("Serving metrics."))
        .expect("the line waited for");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("address="))
        .expect("the address is logged")
        .to_owned()
}

/// Scrapes until `done` holds for the metrics, or fails after [`PATIENCE`].
pub fn scrape_until(address: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get(address, "/metrics");
        assert!(status.contains(" 200 "), "{status}");
        if done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// promtool, from Debian's prometheus package, finds nothing to say of `metrics`.
pub fn promtool_finds_nothing_to_say(metrics: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs (apt-get install prometheus)");
    promtool
        .stdin
        .take()
        .expect("piped")
        .write_all(metrics.as_bytes())
        .expect("metrics given to promtool");
    let checked = promtool.wait_with_output().expect("promtool ends");
    let said = String::from_utf8_lossy(&checked.stdout).into_owned()
        + &String::from_utf8_lossy(&checked.stderr);
    assert!(
        checked.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

/// A daemon with a check that fails three times and then succeeds, another always up,
/// and a tailed log with two matching lines of five; its metrics address.
fn scene_with_metrics(server: &HttpServer) -> (Scene, Running, String) {
    let scene = Scene::new();
    let log = scene.path("app.log");
    std::fs::write(&log, "").expect("log created");
    scene.config(&format!(
        r#"
services:
  - name: s
    health_checks:
      - {{ name: x, type: http, url: "{flaky}", interval: 1s, timeout: 1s }}
      - {{ name: y, type: tcp, address: "{addr}", interval: 1s, timeout: 1s }}
logs:
  read_from: beginning
  files:
    - service: s
      path: "{log}"
  patterns:
    - {{ name: failed, pattern: 'ERROR', severity: CRITICAL }}
prometheus:
  listen: 127.0.0.1:0
"#,
        flaky = server.url("/flaky/3"),
        addr = server.addr,
        log = log.display(),
    ));
    let mut aegis = scene.run(&[]);
    let address = metrics_address(&mut aegis);
    // Appended once the daemon runs (and read from the beginning, whenever the tail
    // first looks).
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .expect("log");
    file.write_all(b"ok\nERROR one\nok\nERROR two\nok\n")
        .expect("lines written");
    (scene, aegis, address)
}

#[test]
fn scraped_metrics_count_checks_failures_and_log_lines_exactly() {
    let server = HttpServer::start();
    let (_scene, mut aegis, address) = scene_with_metrics(&server);
    let success = r#"aegis_health_checks_total{check="x",result="success",service="s"}"#;
    let metrics = scrape_until(
        &address,
        "check x to succeed and the lines to be read",
        |m| {
            value(m, success).is_some()
                && m.lines()
                    .any(|l| l.starts_with("aegis_log_lines_total") && l.ends_with(" 5"))
        },
    );
    let series = |name: &str| value(&metrics, name);
    assert_eq!(
        series(r#"aegis_health_checks_total{check="x",result="failure",service="s"}"#),
        Some(3.0)
    );
    assert_eq!(
        series(r#"aegis_health_check_failures_total{check="x",reason="status",service="s"}"#),
        Some(3.0)
    );
    assert_eq!(
        series(r#"aegis_health_check_up{check="x",kind="http",service="s"}"#),
        Some(1.0)
    );
    assert_eq!(
        series(r#"aegis_health_check_up{check="y",kind="tcp",service="s"}"#),
        Some(1.0)
    );
    assert_eq!(series(r#"aegis_service_up{service="s"}"#), Some(1.0));
    assert_eq!(
        series(
            r#"aegis_log_pattern_matches_total{pattern="failed",service="s",severity="CRITICAL"}"#
        ),
        Some(2.0)
    );
    // The pipeline's own counts and the process's are there.
    assert!(series(r#"aegis_pipeline_events_sent_total{node="s.x"}"#) > Some(0.0));
    assert!(series(r#"aegis_pipeline_events_received_total{node="prometheus"}"#) > Some(0.0));
    assert!(series(r#"aegis_pipeline_queued_batches{node="prometheus"}"#).is_some());
    assert!(series("process_resident_memory_bytes").is_some());
    let (status, body) = get(&address, "/healthz");
    assert!(
        status.contains(" 200 ") && body == "ok\n",
        "{status} {body}"
    );
    let (status, _) = get(&address, "/nothing");
    assert!(status.contains(" 404 "), "{status}");

    promtool_finds_nothing_to_say(&metrics);
    assert!(aegis.terminate().success());
}

#[test]
fn a_real_prometheus_scrapes_aegis_and_answers_a_query() {
    let server = HttpServer::start();
    let (scene, mut aegis, address) = scene_with_metrics(&server);
    let config = scene.path("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: aegis\n    static_configs:\n      - targets: ['{address}']\n"
        ),
    )
    .expect("prometheus.yml written");
    // A free port for Prometheus's own HTTP API: bound for a moment to find one.
    let web = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let log = scene.path("prometheus.log");
    let mut prometheus = Killed(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scene.path("tsdb").display()
            ))
            .arg(format!("--web.listen-address={web}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("prometheus runs (apt-get install prometheus)"),
    );
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if let Ok(Some(status)) = prometheus.0.try_wait() {
            panic!("Prometheus exited ({status}):\n{}", said());
        }
        let answer = TcpStream::connect(web)
            .ok()
            .map(|_| get(&web.to_string(), "/api/v1/query?query=aegis_service_up").1);
        if answer
            .as_deref()
            .is_some_and(|a| a.contains(r#""service":"s""#))
        {
            break answer.unwrap_or_default();
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not return aegis_service_up in time: {answer:?}\n{}",
            said()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    drop(prometheus);
    let json: serde_json::Value = serde_json::from_str(&answer).expect("the API answers JSON");
    assert_eq!(json["status"], "success");
    let result = &json["data"]["result"][0];
    assert_eq!(result["metric"]["__name__"], "aegis_service_up");
    assert_eq!(result["metric"]["service"], "s");
    assert_eq!(result["metric"]["job"], "aegis");
    assert!(aegis.terminate().success());
}

#[test]
fn a_metrics_port_in_use_stops_aegis_with_exit_code_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let port = taken.local_addr().expect("address");
    let scene = Scene::new();
    scene.config(&format!(
        "services:\n  - name: s\n    health_checks:\n      - {{ name: x, type: tcp, address: \"{port}\" }}\nprometheus:\n  listen: \"{port}\"\n"
    ));
    let mut aegis = scene.run(&[]);
    let status = aegis.wait();
    assert_eq!(status.code(), Some(1), "{status}");
    aegis.wait_err(&format!("listening on {port} for metrics"), 1);
}

/// Regression: 200 clients sending their request headers a byte at a time starved
/// Prometheus (16 connections at most, 10 s each for its headers): every scrape failed
/// for 30 s. Scrapes must succeed while the slow clients are connected, within
/// `SCRAPE_LIMIT`, and the server must close each of them once its time for headers is
/// up.
#[test]
fn scrapes_answer_while_200_slow_clients_are_connected() {
    const SLOW_CLIENTS: usize = 200;
    // A scrape takes milliseconds, and a loaded machine makes that hundreds; a starved
    // server answers only once a slow client's 5 s for its headers are up.
    const SCRAPE_LIMIT: Duration = Duration::from_secs(3);
    let server = HttpServer::start();
    let (_scene, mut aegis, address) = scene_with_metrics(&server);
    scrape_until(&address, "a first page", |_| true);

    let slow = SlowClients::start(&address, SLOW_CLIENTS);
    // Every scrape must answer in time, those made while the slow clients connect as
    // well, and five must find all of them connected. A quarter of a second apart,
    // those five span more than a second: one at least renders a new page.
    let deadline = Instant::now() + PATIENCE;
    let mut under_load = 0;
    for scrape in 1.. {
        let connected = slow.connected();
        let started = Instant::now();
        let scraped = http_within(&address, "GET", "/metrics", SCRAPE_LIMIT);
        let took = started.elapsed();
        let context = format!("scrape {scrape}, {connected} slow clients connected");
        let (status, body) =
            scraped.unwrap_or_else(|err| panic!("{context}: failed after {took:?}: {err}"));
        assert!(status.contains(" 200 "), "{context}: {status}");
        assert!(
            value(&body, "process_resident_memory_bytes").is_some()
                && value(&body, r#"aegis_pipeline_queued_batches{node="prometheus"}"#).is_some(),
            "{context}: not the metrics page:\n{body}"
        );
        assert!(took < SCRAPE_LIMIT, "{context}: took {took:?}");
        eprintln!("{context}: {took:?}.");
        if connected == SLOW_CLIENTS {
            under_load += 1;
            if under_load == 5 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "only {under_load} scrapes found all {SLOW_CLIENTS} slow clients connected"
        );
        // The scrapes' pace, not a wait for something.
        std::thread::sleep(Duration::from_millis(250));
    }
    let (closed, left) = slow.finish();
    assert_eq!(
        left, 0,
        "slow clients still open {PATIENCE:?} after the load"
    );
    assert!(closed >= SLOW_CLIENTS, "{closed} slow clients closed");
    assert!(aegis.terminate().success());
}

/// A connection kept alive after its request has, for the next one, the time a new
/// connection has for its headers.
#[test]
fn an_idle_keep_alive_connection_is_closed_by_the_server() {
    let server = HttpServer::start();
    let (_scene, mut aegis, address) = scene_with_metrics(&server);
    let mut stream = TcpStream::connect(&address).expect("connect");
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("read timeout");
    write!(stream, "GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").expect("request sent");
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\nok\n") {
        let mut chunk = [0; 1024];
        let read = stream.read(&mut chunk).expect("the answer");
        assert!(read > 0, "closed before answering");
        answer.extend_from_slice(&chunk[..read]);
    }
    // The end of the stream (a read that timed out would be an error).
    assert_eq!(stream.read(&mut [0; 1024]).expect("the end"), 0);
    assert!(aegis.terminate().success());
}

/// How long a slow client waits between two bytes, and between two steps of the
/// [`SlowClients`] threads.
const TRICKLE: Duration = Duration::from_millis(100);

/// Clients that never finish a request, from a few threads: nine in ten send the start
/// of one a byte at a time, the others nothing at all. Each connects again when the
/// server closes it, until [`SlowClients::finish`].
struct SlowClients {
    shared: Arc<Shared>,
    /// Each thread ends with how many of its clients are still open.
    threads: Vec<JoinHandle<usize>>,
}

/// What the test and the threads of [`SlowClients`] share.
#[derive(Default)]
struct Shared {
    connected: AtomicUsize,
    closed: AtomicUsize,
    /// Set by [`SlowClients::finish`]: do not connect again.
    finishing: AtomicBool,
    /// Set when dropped: end now.
    stop: AtomicBool,
}

impl SlowClients {
    fn start(address: &str, count: usize) -> SlowClients {
        const THREADS: usize = 4;
        let address: SocketAddr = address.parse().expect("IP:port");
        let shared = Arc::new(Shared::default());
        let threads = (0..THREADS)
            .map(|thread| {
                let silent = (thread..count)
                    .step_by(THREADS)
                    .map(|i| i % 10 == 0)
                    .collect();
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || run_slow_clients(address, silent, &shared))
            })
            .collect();
        SlowClients { shared, threads }
    }

    /// How many are connected now.
    fn connected(&self) -> usize {
        self.shared.connected.load(Ordering::Relaxed)
    }

    /// Stops connecting again and waits for the server to close the connections, for
    /// at most [`PATIENCE`]: how many it closed in all, and how many it left open.
    fn finish(mut self) -> (usize, usize) {
        self.shared.finishing.store(true, Ordering::Relaxed);
        let left = (self.threads.drain(..))
            .map(|thread| thread.join().expect("a slow client thread"))
            .sum();
        (self.shared.closed.load(Ordering::Relaxed), left)
    }
}

impl Drop for SlowClients {
    /// A failed test ends the threads, and so their connections.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

/// One thread's share of [`SlowClients`], `silent` telling which send nothing; how
/// many are still open when it ends.
fn run_slow_clients(address: SocketAddr, silent: Vec<bool>, shared: &Shared) -> usize {
    /// Clients connected per step: the thread's share connects over a second rather
    /// than all at once, as does each wave of reconnections after it.
    const RAMP: usize = 5;
    let connect = |silent: bool| {
        let slow = Slow::connect(address, silent);
        shared.connected.fetch_add(1, Ordering::Relaxed);
        slow
    };
    let mut waiting = silent.into_iter();
    let mut clients = Vec::new();
    let mut deadline = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let finishing = shared.finishing.load(Ordering::Relaxed);
        if finishing {
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + PATIENCE);
            if clients.is_empty() || Instant::now() > deadline {
                break;
            }
        } else {
            clients.extend(waiting.by_ref().take(RAMP).map(connect));
        }
        clients.retain_mut(|client: &mut Slow| {
            if client.step() {
                return true;
            }
            shared.connected.fetch_sub(1, Ordering::Relaxed);
            shared.closed.fetch_add(1, Ordering::Relaxed);
            if finishing {
                return false;
            }
            *client = connect(client.sent.is_none());
            true
        });
        // The load's pace, not a wait for something.
        std::thread::sleep(TRICKLE);
    }
    clients.len()
}

/// A client that never finishes its request.
struct Slow {
    stream: TcpStream,
    /// How many bytes it has sent, if it sends at all.
    sent: Option<usize>,
}

impl Slow {
    fn connect(address: SocketAddr, silent: bool) -> Slow {
        let stream =
            TcpStream::connect_timeout(&address, PATIENCE).expect("a slow client connects");
        stream.set_nonblocking(true).expect("non-blocking");
        Slow {
            stream,
            sent: (!silent).then_some(0),
        }
    }

    /// Sends its next byte, if it sends; false once the server has closed it.
    fn step(&mut self) -> bool {
        // A header that never ends.
        const START: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
        if let Some(sent) = &mut self.sent {
            let byte = START.get(*sent).copied().unwrap_or(b'a');
            match self.stream.write(&[byte]) {
                Ok(_) => *sent += 1,
                Err(err) if err.kind() == ErrorKind::WouldBlock => {}
                Err(_) => return false,
            }
        }
        // The server never answers such a request: it can only close it.
        match self.stream.read(&mut [0; 1024]) {
            Ok(read) => read > 0,
            Err(err) => err.kind() == ErrorKind::WouldBlock,
        }
    }
}

/// A child process killed when dropped, so that a failed test leaves none behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
