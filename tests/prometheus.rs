//! The `prometheus` sink of the running daemon, scraped over HTTP while checks and a
//! log tail run against local servers and files: exact values, `promtool check
//! metrics`, and a real Prometheus server scraping it.

use std::io::Write;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::HttpServer;
use crate::util::{PATIENCE, Running, Scene, http};

/// `GET path` from `address`; the status line and the body.
fn get(address: &str, path: &str) -> (String, String) {
    http(address, "GET", path)
}

/// The value of the series `series` (name and labels exactly as exposed), if present.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Where the daemon serves metrics, from its log line.
fn metrics_address(aegis: &mut Running) -> String {
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
fn scrape_until(address: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
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

    // promtool, from Debian's prometheus package, finds nothing to say.
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

/// A child process killed when dropped, so that a failed test leaves none behind.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
