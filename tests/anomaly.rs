//! Anomaly detection on the real binary: access logs and custom signals replayed under
//! `--once` (windowed on the lines' own time), and the demo target made slow, failing
//! and quiet while Aegis follows its access log.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::http_service::Target;
use crate::prometheus::{metrics_address, promtool_finds_nothing_to_say, scrape_until, value};
use crate::util::{PATIENCE, Scene, events, http_within, time_of};

/// 2026-11-01T00:00:00Z: the replayed day.
const DAY: u64 = 1_793_491_200;

/// A combined-format line with a trailing request time, as nginx's `$request_time`.
fn access_line(out: &mut String, time: u64, status: u16, seconds: f64) {
    let stamp = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(time));
    let stamp = stamp.to_string();
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months[stamp[5..7].parse::<usize>().unwrap() - 1];
    writeln!(
        out,
        "10.0.0.7 - - [{}/{month}/{}:{} +0000] \"GET /api/orders HTTP/1.1\" {status} 512 \"-\" \"curl/8.5\" {seconds:.3}",
        &stamp[8..10],
        &stamp[..4],
        &stamp[11..19]
    )
    .unwrap();
}

fn replay(scene: &Scene) -> Value {
    let output = crate::util::aegis()
        .args(["run", "--once", "--format", "json"])
        .arg(scene.path("config.yaml"))
        .output()
        .expect("aegis runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the JSON summary")
}

/// (signal, start, end) of each anomaly, times as minutes into the day.
fn found(summary: &Value) -> Vec<(String, u64, Option<u64>)> {
    let minute = |value: &Value| {
        value.as_str().map(|text| {
            let time = humantime::parse_rfc3339(text).expect("RFC 3339");
            (time.duration_since(UNIX_EPOCH).unwrap().as_secs() - DAY) / 60
        })
    };
    (summary["anomalies"].as_array().expect("anomalies[]").iter())
        .map(|anomaly| {
            (
                anomaly["signal"].as_str().unwrap().to_owned(),
                minute(&anomaly["start"]).unwrap(),
                minute(&anomaly["end"]),
            )
        })
        .collect()
}

#[test]
fn a_replayed_access_log_gives_exactly_its_incidents_at_their_times() {
    // Two hours, 100 requests a minute, 1 % errors, 50 ms each; then the incidents:
    // errors at 30 % in minutes 30-34, 5 % of requests at 900 ms in 60-62, traffic
    // at 20 a minute in 90-93. A line at minute 100 is stamped 5 minutes back (a
    // clock set back). The log ends within minute 119, which is not judged.
    let mut log = String::new();
    for minute in 0..120u64 {
        let requests = if (90..=93).contains(&minute) { 20 } else { 100 };
        for i in 0..requests {
            let time = DAY + minute * 60 + i * 60 / requests;
            let error = if (30..=34).contains(&minute) {
                i % 10 < 3
            } else {
                i % 100 == 0
            };
            let slow = (60..=62).contains(&minute) && i % 20 == 0;
            let stamp = if minute == 100 && i == 50 {
                time - 300
            } else {
                time
            };
            access_line(
                &mut log,
                stamp,
                if error { 503 } else { 200 },
                if slow { 0.9 } else { 0.05 },
            );
        }
    }
    let scene = Scene::new();
    std::fs::write(scene.path("access.log"), log).unwrap();
    scene.config(
        r#"
logs:
  read_from: beginning
  files:
    - service: shop
      path: access.log
      requests: {format: combined}
anomaly_detection:
  enabled: true
  detection_interval: 1m
  history_size: 30
  thresholds:
    latency: [{service: shop, value: 500}]
    error_rate: [{service: shop, value: 0.1}]
    throughput: [{service: shop, value: 1}]
"#,
    );
    let summary = replay(&scene);
    assert_eq!(
        found(&summary),
        [
            ("error_rate".to_owned(), 30, Some(35)),
            ("latency".to_owned(), 60, Some(63)),
            ("throughput".to_owned(), 90, Some(94)),
        ],
        "{summary:#}"
    );
    let anomalies = summary["anomalies"].as_array().unwrap();
    assert_eq!(
        anomalies[0]["explanation"],
        "shop error rate 0.3 (30 of 100 requests) over 1 min, threshold 0.1"
    );
    assert_eq!(anomalies[0]["observed"], 0.3);
    assert_eq!(anomalies[0]["threshold"]["max"], 0.1);
    assert_eq!(
        anomalies[2]["explanation"],
        "shop throughput 0.333 requests/s over 1 min, below the minimum 1 requests/s"
    );
}

#[test]
fn a_custom_signal_replays_as_the_series_it_is() {
    // A value every 30 minutes for 20 days (the shape of a public benchmark's series):
    // a daily swing with noise, one spike, and a step up over the last three values.
    let mut rng = fastrand::Rng::with_seed(11);
    let mut lines = String::new();
    let points = 20 * 48;
    for i in 0..points {
        let time = UNIX_EPOCH + Duration::from_secs(1_404_172_800 + i * 1800);
        let daily = (2.0 * std::f64::consts::PI * (i % 48) as f64 / 48.0).sin();
        let mut value = 15000.0 + 5000.0 * daily + 300.0 * (rng.f64() - 0.5);
        if i == 700 || i >= points - 3 {
            value += 30000.0;
        }
        let stamp = humantime::format_rfc3339_seconds(time).to_string();
        writeln!(lines, "{} value={value:.0}", stamp[..19].replace('T', " ")).unwrap();
    }
    assert!(
        lines.starts_with("2014-07-01 00:00:00 value="),
        "{lines:.40}"
    );
    let scene = Scene::new();
    std::fs::write(scene.path("taxi.log"), lines).unwrap();
    scene.config(
        r#"
logs:
  read_from: beginning
  files:
    - service: taxi
      path: taxi.log
      signals:
        - name: passengers
          pattern: '^(?P<time>\S+ \S+) value=(?P<value>\d+)'
          direction: both
anomaly_detection:
  detection_interval: 30m
  history_size: 48
"#,
    );
    let summary = replay(&scene);
    let anomalies = summary["anomalies"].as_array().expect("anomalies[]");
    let starts: Vec<(&str, &str, &Value)> = (anomalies.iter())
        .map(|a| {
            (
                a["signal"].as_str().unwrap(),
                a["start"].as_str().unwrap(),
                &a["end"],
            )
        })
        .collect();
    let at = |i: u64| {
        humantime::format_rfc3339_seconds(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_404_172_800 + i * 1800),
        )
        .to_string()
    };
    // The spike, over once 6 values (`resolve_after`) were back to normal; the step,
    // still anomalous when the input ends (the last value's slice is cut short by the
    // end: never judged).
    assert_eq!(
        starts,
        [
            ("passengers", at(700).as_str(), &Value::String(at(706))),
            ("passengers", at(points - 3).as_str(), &Value::Null),
        ],
        "{summary:#}"
    );
}

/// Requests to the demo target at a rate the test sets, each on its own thread so
/// that a slow answer does not slow the traffic.
struct Traffic {
    period_ms: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(address: &str, per_second: u64) -> Traffic {
        let period_ms = Arc::new(AtomicU64::new(1000 / per_second));
        let running = Arc::new(AtomicBool::new(true));
        let thread = {
            let (period_ms, running, address) = (
                Arc::clone(&period_ms),
                Arc::clone(&running),
                address.to_owned(),
            );
            std::thread::spawn(move || {
                while running.load(Ordering::Relaxed) {
                    let address = address.clone();
                    std::thread::spawn(move || {
                        let _ = http_within(&address, "GET", "/api/orders", PATIENCE);
                    });
                    // Pacing the load, not waiting for anything.
                    std::thread::sleep(Duration::from_millis(period_ms.load(Ordering::Relaxed)));
                }
            })
        };
        Traffic {
            period_ms,
            running,
            thread: Some(thread),
        }
    }

    fn rate(&self, per_second: u64) {
        self.period_ms.store(1000 / per_second, Ordering::Relaxed);
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn the_demo_target_made_slow_failing_and_quiet_gives_each_anomaly_and_its_end() {
    let scene = Scene::new();
    let access_log = scene.path("access.log");
    let target = Target::start(&scene.path("app.log"), Some(&access_log));
    scene.config(&format!(
        r#"
logs:
  files:
    - service: demo
      path: "{log}"
      read_from: beginning
      requests: {{format: combined}}
anomaly_detection:
  detection_interval: 2s
  history_size: 20
  min_requests: 20
  adaptive: {{enabled: false}}
  thresholds:
    latency: [{{service: demo, value: 250}}]
    error_rate: [{{service: demo, value: 0.1}}]
    throughput: [{{service: demo, value: 15}}]
prometheus:
  listen: 127.0.0.1:0
"#,
        log = access_log.display()
    ));
    let interval = Duration::from_secs(2);
    let mut aegis = scene.run(&[]);
    let metrics = metrics_address(&mut aegis);
    let traffic = Traffic::start(&target.http, 50);
    // Three slices of normal traffic first (the first is never judged).
    let deadline = std::time::Instant::now() + PATIENCE;
    while std::fs::read_to_string(&access_log).map_or(0, |log| log.lines().count()) < 300 {
        assert!(
            std::time::Instant::now() < deadline,
            "no traffic in the access log"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut seen = 0;
    let mut phase =
        |aegis: &mut crate::util::Running, signal: &str, fault: &dyn Fn(), revert: &dyn Fn()| {
            let changed = SystemTime::now();
            fault();
            let state = |lines: &[String], state: &str| {
                events(lines, "anomaly")
                    .skip(seen)
                    .find(|a| a["signal"] == signal && a["state"] == state)
            };
            aegis.wait_out(&format!("{signal} anomalous"), |lines| {
                state(lines, "anomalous").is_some()
            });
            let began = state(&aegis.out, "anomalous").unwrap();
            // Its first slice is the one the fault began in, or the next.
            let started = time_of(&began, "started");
            assert!(
                started + interval > changed && started <= changed + interval,
                "{signal}: fault at {changed:?}, anomaly from {started:?}: {began}"
            );
            let reverted = SystemTime::now();
            revert();
            aegis.wait_out(&format!("{signal} normal"), |lines| {
                state(lines, "normal").is_some()
            });
            let ended = state(&aegis.out, "normal").unwrap();
            let time = time_of(&ended, "time");
            assert!(
                time <= reverted + 3 * interval,
                "{signal}: reverted at {reverted:?}, normal at {time:?}: {ended}"
            );
            // Nothing else fired meanwhile.
            let others: Vec<Value> = events(&aegis.out, "anomaly")
                .skip(seen)
                .filter(|a| a["signal"] != signal)
                .collect();
            assert!(others.is_empty(), "{others:?}");
            seen = events(&aegis.out, "anomaly").count();
            began
        };
    let post = |target_path: &str| assert!(target.request("POST", target_path).contains(" 200 "));
    let slow = phase(
        &mut aegis,
        "latency",
        &|| post("/admin/latency?ms=400"),
        &|| post("/admin/latency?ms=0"),
    );
    assert!(
        (slow["explanation"].as_str().unwrap()).starts_with("demo latency p99 4"),
        "{slow}"
    );
    phase(
        &mut aegis,
        "error_rate",
        &|| post("/admin/fail?fraction=0.2"),
        &|| post("/admin/fail?fraction=0"),
    );
    phase(&mut aegis, "throughput", &|| traffic.rate(2), &|| {
        traffic.rate(50)
    });
    drop(traffic);
    // Each signal went anomalous once and back once, and is normal now; the slices'
    // values are published, and promtool has nothing to say of any of it.
    let scraped = scrape_until(&metrics, "the signals' values", |m| {
        value(
            m,
            r#"aegis_signal_value{service="demo",signal="throughput"}"#,
        )
        .is_some()
    });
    for signal in ["latency", "error_rate", "throughput"] {
        for to in ["anomalous", "normal"] {
            let series = format!(
                r#"aegis_anomaly_transitions_total{{service="demo",signal="{signal}",to="{to}"}}"#
            );
            assert_eq!(value(&scraped, &series), Some(1.0), "{series}");
        }
        let active = format!(r#"aegis_anomaly_active{{service="demo",signal="{signal}"}}"#);
        assert_eq!(value(&scraped, &active), Some(0.0), "{active}");
    }
    assert!(
        value(
            &scraped,
            r#"aegis_requests_total{result="error",service="demo"}"#
        ) > Some(0.0)
    );
    promtool_finds_nothing_to_say(&scraped);
    assert!(aegis.terminate().success());
}
