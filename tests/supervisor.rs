//! Supervised services on the real binary: restarts with backoff and their budget (and
//! the alert when it is spent), a restart when the health endpoint fails, and no
//! process left behind when Aegis stops, or is killed.

use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::prometheus::{metrics_address, scrape_until, value};
use crate::util::{
    PATIENCE, Running, Scene, events, example, free_port, http, process_ended, time_of, until_ended,
};

/// The lifecycle events printed so far whose change is `change`.
fn changes<'a>(aegis: &'a Running, change: &'a str) -> Vec<Value> {
    events(&aegis.out, "lifecycle")
        .filter(|event| event["change"] == change)
        .collect()
}

#[test]
fn a_service_that_exits_1_is_restarted_with_backoff_counted_and_given_up_on_past_its_budget() {
    let scene = Scene::new();
    scene.config(
        r#"
services:
  - name: flaky
    command: [/bin/sh, -c, "echo up; echo 'fatal: no database' >&2; exit 1"]
    backoff: { initial_delay: 300ms, multiplier: 2, jitter: none }
    restart_budget: { max_restarts: 3, within: 1m }
alerting:
  repeat_interval: 4h
prometheus:
  listen: 127.0.0.1:0
"#,
    );
    let mut aegis = scene.run(&[]);
    let metrics = metrics_address(&mut aegis);
    aegis.wait_out("the budget spent, and its alert", |out| {
        events(out, "lifecycle").any(|e| e["change"] == "gave_up")
            && events(out, "alert").any(|e| e["state"] == "firing")
    });
    let alerts: Vec<Value> = events(&aegis.out, "alert").collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["labels"]["alertname"], "ServiceGaveUp");
    assert_eq!(alerts[0]["labels"]["severity"], "critical");
    let started = changes(&aegis, "started");
    let exited = changes(&aegis, "exited");
    let restarting = changes(&aegis, "restarting");
    assert_eq!((started.len(), exited.len(), restarting.len()), (4, 4, 3));
    // Each restart waits its delay, which doubles, from the exit to the next start.
    for (n, expected) in [0.3, 0.6, 1.2].into_iter().enumerate() {
        assert_eq!(restarting[n]["after_seconds"], expected);
        assert_eq!(restarting[n]["reason"], "exited");
        let waited = time_of(&started[n + 1], "time")
            .duration_since(time_of(&exited[n], "time"))
            .expect("a start after the exit")
            .as_secs_f64();
        assert!(
            (expected..expected + 1.0).contains(&waited),
            "restart {n} waited {waited} s, expected {expected} s"
        );
    }
    assert!(exited.iter().all(|e| e["exit_code"] == 1), "{exited:?}");
    let body = scrape_until(&metrics, "the restarts counted", |body| {
        value(body, r#"aegis_process_given_up{service="flaky"}"#) == Some(1.0)
    });
    let restarts = r#"aegis_service_restarts_total{reason="exited",service="flaky"}"#;
    assert_eq!(value(&body, restarts), Some(3.0), "{body}");
    let last_exit = r#"aegis_process_last_exit_code{service="flaky"}"#;
    assert_eq!(value(&body, last_exit), Some(1.0));
    assert_eq!(
        value(&body, r#"aegis_process_running{service="flaky"}"#),
        Some(0.0)
    );
    // No fifth start, however long one waits for it: the next would have come 2.4 s
    // after the last exit; a scrape later than that still counts four.
    let last_exit_at = time_of(exited.last().unwrap(), "time");
    while SystemTime::now() < last_exit_at + Duration::from_millis(3000) {
        scrape_until(&metrics, "a scrape", |_| true);
        std::thread::sleep(Duration::from_millis(100));
    }
    aegis.terminate();
    assert_eq!(changes(&aegis, "started").len(), 4);
    let spent = aegis
        .err
        .iter()
        .filter(|line| line.contains("restart budget is spent"));
    assert_eq!(spent.count(), 1, "{:?}", aegis.err);
    // Its output went, line by line, to its log file.
    let output = std::fs::read_to_string(scene.path("logs/flaky.log")).expect("the output file");
    assert_eq!(
        output.matches("fatal: no database\n").count(),
        4,
        "{output}"
    );
}

#[test]
fn restart_on_unhealthy_restarts_a_service_whose_health_endpoint_fails() {
    let scene = Scene::new();
    let port = free_port();
    let target = example("http-service");
    scene.config(&format!(
        r#"
services:
  - name: shop
    command: ["{target}", --http, "127.0.0.1:{port}", --grpc, "127.0.0.1:0"]
    restart: always
    backoff: {{ initial_delay: 100ms, jitter: none }}
    restart_on_unhealthy: 3
    health_checks:
      - name: health
        type: http
        url: http://127.0.0.1:{port}/health
        interval: 200ms
        timeout: 150ms
"#,
        target = target.display()
    ));
    let mut aegis = scene.run(&[]);
    aegis.wait_out("the check up", |out| {
        events(out, "probe_result").any(|e| e["outcome"] == "up")
    });
    let first = changes(&aegis, "started")[0]["pid"].as_u64().unwrap();
    let (status, _) = http(
        &format!("127.0.0.1:{port}"),
        "POST",
        "/admin/health?status=unhealthy",
    );
    assert!(status.contains(" 200 "), "{status}");
    aegis.wait_out("the restart", |out| {
        events(out, "lifecycle")
            .filter(|e| e["change"] == "started")
            .count()
            == 2
    });
    let restarting = changes(&aegis, "restarting");
    assert_eq!(restarting.len(), 1, "{restarting:?}");
    assert_eq!(restarting[0]["reason"], "unhealthy");
    assert_eq!(restarting[0]["check"], "health");
    // Three down results in a row, then the stop; none before the third.
    let downs = events(&aegis.out, "probe_result")
        .filter(|e| e["outcome"] == "down")
        .count();
    assert!(downs >= 3, "{downs} down results before the restart");
    // A new process, healthy again (its health knob starts healthy).
    let second = changes(&aegis, "started")[1]["pid"].as_u64().unwrap();
    assert_ne!(first, second);
    assert!(process_ended(first));
    let ups_before = events(&aegis.out, "probe_result")
        .filter(|e| e["outcome"] == "up")
        .count();
    aegis.wait_out("the check up again", |out| {
        events(out, "probe_result")
            .filter(|e| e["outcome"] == "up")
            .count()
            > ups_before
    });
    aegis.terminate();
    assert_eq!(changes(&aegis, "restarting").len(), 1);
    until_ended(&[second], "after SIGTERM");
}

/// A service that starts a child of its own in its group, writes the child's pid to
/// `child.pid`, and waits.
fn family_config(scene: &Scene) -> std::path::PathBuf {
    scene.config(
        r#"
services:
  - name: family
    command: [/bin/sh, -c, "sleep 300 & echo $! > child.pid; exec sleep 301"]
    stop_timeout: 2s
"#,
    )
}

fn family_pids(scene: &Scene, aegis: &mut Running) -> Vec<u64> {
    aegis.wait_out("the start", |out| {
        events(out, "lifecycle").any(|e| e["change"] == "started")
    });
    let leader = changes(aegis, "started")[0]["pid"].as_u64().unwrap();
    let deadline = Instant::now() + PATIENCE;
    let child = loop {
        let text = std::fs::read_to_string(scene.path("child.pid")).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<u64>() {
            break pid;
        }
        assert!(Instant::now() < deadline, "no child.pid");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!process_ended(leader) && !process_ended(child));
    vec![leader, child]
}

#[test]
fn sigterm_stops_aegis_and_every_process_of_a_supervised_service() {
    let scene = Scene::new();
    family_config(&scene);
    let mut aegis = scene.run(&[]);
    let pids = family_pids(&scene, &mut aegis);
    let status = aegis.terminate();
    assert!(status.success(), "{status:?}");
    // Aegis has exited: what it supervised is gone already, not on its way out.
    assert!(
        pids.iter().all(|pid| process_ended(*pid)),
        "left running: {pids:?}"
    );
    let exited = changes(&aegis, "exited");
    assert_eq!(exited.len(), 1);
    assert_eq!(exited[0]["exit"], "signal 15");
}

#[test]
fn sigkill_of_aegis_leaves_no_supervised_process_behind() {
    let scene = Scene::new();
    family_config(&scene);
    let mut aegis = scene.run(&[]);
    let pids = family_pids(&scene, &mut aegis);
    aegis.signal("KILL");
    aegis.wait();
    // The kernel kills the service itself (its parent-death signal); the child it
    // started is not Aegis's to guarantee (docs/supervisor.md), so only the service's
    // own process is asserted.
    until_ended(&pids[..1], "after SIGKILL of Aegis");
}
