//! Reload on SIGHUP, on the real binary: a broken file is refused and the running
//! pipeline goes on (its checks on their phase); a changed threshold takes effect; an
//! unchanged supervised service is not restarted and its log's tail neither skips nor
//! repeats a line; an unchanged firing alert is not told again.

use std::io::Write;
use std::time::Duration;

use serde_json::Value;

use crate::prometheus::{metrics_address, scrape_until, value};
use crate::util::{Running, Scene, events, open_append, process_ended, time_of};
use crate::webhook::WebhookServer;

/// Rewrites the configuration and sends SIGHUP; waits for the `said` log line.
fn reload(aegis: &mut Running, scene: &Scene, yaml: &str, said: &str) {
    let before = aegis.err.iter().filter(|line| line.contains(said)).count();
    scene.config(yaml);
    aegis.signal("HUP");
    aegis.wait_err(said, before + 1);
}

const CHECKED: &str = "
services:
  - name: shop
    health_checks:
      - name: health
        type: script
        command: [/bin/true]
        interval: 300ms
        timeout: 250ms
prometheus:
  listen: 127.0.0.1:0
";

#[test]
fn a_broken_file_is_refused_and_the_running_checks_go_on_on_their_phase() {
    let scene = Scene::new();
    scene.config(CHECKED);
    let mut aegis = scene.run(&[]);
    let metrics = metrics_address(&mut aegis);
    aegis.wait_out("3 results", |out| events(out, "probe_result").count() >= 3);
    let first = time_of(&events(&aegis.out, "probe_result").next().unwrap(), "time");
    reload(
        &mut aegis,
        &scene,
        "services: [\n  - name: shop\n    health_checks: {",
        "Reload refused",
    );
    let errors = aegis
        .err
        .iter()
        .filter(|line| line.contains("config.yaml:"))
        .count();
    assert!(errors >= 1, "the file's errors are logged: {:?}", aegis.err);
    let seen = events(&aegis.out, "probe_result").count();
    aegis.wait_out("3 results more", |out| {
        events(out, "probe_result").count() >= seen + 3
    });
    // Every result since the first is on the same 300 ms grid: the check was never
    // restarted (a new one would start at a new random offset).
    for result in events(&aegis.out, "probe_result") {
        let since = time_of(&result, "time")
            .duration_since(first)
            .unwrap()
            .as_millis() as i64;
        let off = (since + 150).rem_euclid(300) - 150;
        assert!(
            off.abs() < 100,
            "a result {since} ms after the first is off its phase by {off} ms"
        );
    }
    scrape_until(&metrics, "the refused reload counted", |body| {
        value(body, r#"aegis_config_reloads_total{result="failure"}"#) == Some(1.0)
            && value(body, r#"aegis_config_reloads_total{result="success"}"#) == Some(0.0)
    });
    assert_eq!(aegis.terminate().code(), Some(0));
}

#[test]
fn a_changed_threshold_takes_effect() {
    let scene = Scene::new();
    let config = |threshold: u32| {
        format!(
            "{CHECKED}anomaly_detection:
  detection_interval: 1s
  thresholds:
    latency: [{{ service: shop, value: {threshold} }}]
"
        )
    };
    scene.config(&config(60_000));
    let mut aegis = scene.run(&[]);
    aegis.wait_out("results", |out| events(out, "probe_result").count() >= 8);
    assert_eq!(events(&aegis.out, "anomaly").count(), 0);
    // A script takes more than 0 ms: every slice is over the new threshold.
    reload(
        &mut aegis,
        &scene,
        &config(0),
        "Reloaded the configuration.",
    );
    aegis.wait_out("the anomaly", |out| {
        events(out, "anomaly").any(|e| e["state"] == "anomalous" && e["signal"] == "latency")
    });
    assert_eq!(aegis.terminate().code(), Some(0));
}

#[test]
fn an_unchanged_service_is_not_restarted_and_its_tail_neither_skips_nor_repeats() {
    let scene = Scene::new();
    std::fs::File::create(scene.path("app.log")).unwrap();
    let config = |more: &str| {
        format!(
            "services:
  - name: shop
    command: [sleep, '300']
{more}logs:
  files:
    - {{ service: shop, path: app.log }}
  patterns:
    - {{ name: error, pattern: 'ERROR', severity: WARNING }}
"
        )
    };
    scene.config(&config(""));
    let mut aegis = scene.run(&[]);
    aegis.wait_out("the start", |out| events(out, "lifecycle").count() == 1);
    aegis.wait_err("Following file.", 1);
    // Lines written before, during and after the reload, which adds a service.
    const LINES: usize = 3000;
    let log = scene.path("app.log");
    let writer = std::thread::spawn(move || {
        let mut file = open_append(&log);
        for n in 0..LINES {
            writeln!(file, "ERROR line {n}").unwrap();
            if n % 100 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let added = "  - name: other
    health_checks:
      - { name: health, type: script, command: [/bin/true], interval: 1s }
";
    reload(
        &mut aegis,
        &scene,
        &config(added),
        "Reloaded the configuration.",
    );
    writer.join().unwrap();
    aegis.wait_out_lines("every line matched", LINES, |line| {
        line.contains("\"log_match\"")
    });
    aegis.wait_out("the new service's check", |out| {
        events(out, "probe_result").any(|e| e["service"] == "other")
    });
    let status = aegis.terminate();
    assert_eq!(status.code(), Some(0));
    let mut lines: Vec<String> = events(&aegis.out, "log_match")
        .map(|e| e["line"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(lines.len(), LINES, "each line exactly once");
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), LINES, "no line twice");
    // One start, and the one exit is the shutdown's.
    let life: Vec<Value> = events(&aegis.out, "lifecycle").collect();
    let changes: Vec<&str> = life.iter().map(|e| e["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["started", "exited"], "{life:?}");
}

#[test]
fn an_unchanged_firing_alert_is_not_told_again() {
    let mut receiver = WebhookServer::unsigned("127.0.0.1:0");
    let scene = Scene::new();
    let url = receiver.url.clone();
    let config = |more: &str| {
        format!(
            "services:
  - name: shop
    health_checks:
      - {{ name: health, type: script, command: [/bin/false], interval: 200ms, timeout: 150ms }}
{more}alerting:
  state_dir: state
  webhooks:
    - {{ name: ops, url: '{url}' }}
"
        )
    };
    scene.config(&config(""));
    let mut aegis = scene.run(&[]);
    receiver.wait_acks("firing", 1);
    let added = "  - name: other
    health_checks:
      - { name: health, type: script, command: [/bin/true], interval: 200ms }
";
    reload(
        &mut aegis,
        &scene,
        &config(added),
        "Reloaded the configuration.",
    );
    // Results of both services after the reload, through the kept alert stage.
    let seen = events(&aegis.out, "probe_result").count();
    aegis.wait_out("results after the reload", |out| {
        events(out, "probe_result")
            .skip(seen)
            .filter(|e| e["service"] == "other")
            .count()
            >= 5
            && events(out, "probe_result")
                .skip(seen)
                .filter(|e| e["service"] == "shop")
                .count()
                >= 5
    });
    assert_eq!(aegis.terminate().code(), Some(0));
    assert_eq!(receiver.acks("firing"), 1, "the firing alert was told once");
    let firing = events(&aegis.out, "alert")
        .filter(|e| e["state"] == "firing")
        .count();
    assert_eq!(firing, 1, "and fired once");
}

#[test]
fn a_removed_service_goes_with_its_process_and_its_series() {
    let scene = Scene::new();
    let shop = "  - name: shop
    health_checks:
      - { name: health, type: script, command: [/bin/true], interval: 200ms }
";
    let old = "  - name: old
    command: [sleep, '300']
    health_checks:
      - { name: health, type: script, command: [/bin/true], interval: 200ms }
";
    let config =
        |services: &str| format!("services:\n{services}prometheus:\n  listen: 127.0.0.1:0\n");
    scene.config(&config(&format!("{shop}{old}")));
    let mut aegis = scene.run(&[]);
    let metrics = metrics_address(&mut aegis);
    let ticks = |service: &str| {
        format!(
            r#"aegis_health_checks_total{{check="health",result="success",service="{service}"}}"#
        )
    };
    let before = scrape_until(&metrics, "both services' results", |body| {
        value(body, &ticks("shop")).is_some_and(|n| n >= 3.0)
            && value(body, &ticks("old")).is_some()
    });
    let shop_before = value(&before, &ticks("shop")).unwrap();
    aegis.wait_out("old's start", |out| events(out, "lifecycle").count() == 1);
    let pid = events(&aegis.out, "lifecycle")
        .find(|e| e["change"] == "started")
        .and_then(|e| e["pid"].as_u64())
        .expect("old's process");
    reload(
        &mut aegis,
        &scene,
        &config(shop),
        "Reloaded the configuration.",
    );
    let after = scrape_until(&metrics, "old's series gone", |body| {
        !body.contains(r#"service="old""#)
            && value(body, &ticks("shop")).is_some_and(|n| n > shop_before + 2.0)
    });
    // The kept service's counter went on from where it was, not from 0.
    assert!(value(&after, &ticks("shop")).unwrap() > shop_before);
    assert!(
        after.contains(r#"aegis_config_reloads_total{result="success"} 1"#),
        "{after}"
    );
    aegis.wait_out("old's process stopped", |out| {
        events(out, "lifecycle").any(|e| e["change"] == "exited")
    });
    assert!(process_ended(pid), "old's process {pid} still runs");
    assert_eq!(aegis.terminate().code(), Some(0));
}
