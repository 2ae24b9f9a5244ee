//! `aegis demo`, the README's first command: within a minute an anomaly, alerts firing
//! and resolving, a restart of the demo shop, and its uptime and restarts on
//! `/metrics`; and its configuration, expanded, is the same pipeline.

use std::time::Duration;

use crate::prometheus::{scrape_until, value};
use crate::util::{Running, Scene, aegis, aegis_succeeds, events, free_port, process_ended};

#[test]
fn the_demo_shows_an_anomaly_alerts_firing_and_resolving_and_a_restart_within_a_minute() {
    let scene = Scene::new();
    let metrics = format!("127.0.0.1:{}", free_port());
    let dir = scene.path("demo");
    let mut command = aegis();
    command
        .args(["demo", "--listen", &metrics, "--dir"])
        .arg(&dir);
    let mut demo = Running::start(command);
    let story = |out: &[String]| {
        let alert = |state: &str| events(out, "alert").any(|e| e["state"] == state);
        let restarted = events(out, "lifecycle").any(|e| e["change"] == "restarting");
        events(out, "anomaly").any(|e| e["state"] == "anomalous")
            && alert("firing")
            && alert("resolved")
            && restarted
            && events(out, "lifecycle")
                .filter(|e| e["change"] == "started")
                .count()
                == 2
    };
    demo.wait_out_within("the demo's story", Duration::from_secs(60), story);
    assert!(
        demo.out[0].starts_with("Aegis demo:"),
        "{:?}",
        &demo.out[..3]
    );
    assert!(
        demo.out
            .iter()
            .any(|line| line.contains(&format!("curl -s {metrics}/metrics")))
    );
    let body = scrape_until(&metrics, "the shop's uptime", |body| {
        value(body, r#"aegis_process_uptime_seconds{service="shop"}"#).is_some_and(|up| up > 0.0)
    });
    let restarts = r#"aegis_service_restarts_total{reason="exited",service="shop"}"#;
    assert_eq!(value(&body, restarts), Some(1.0), "{body}");
    assert_eq!(
        value(&body, r#"aegis_process_last_exit_code{service="shop"}"#),
        Some(1.0)
    );
    let shop = events(&demo.out, "lifecycle")
        .filter(|e| e["change"] == "started")
        .last()
        .and_then(|e| e["pid"].as_u64())
        .expect("the shop's pid");
    assert!(demo.terminate().success());
    assert!(process_ended(shop), "the shop {shop} still runs");
    // Its logs and alert state are in its folder.
    for file in ["aegis.yaml", "app.log", "access.log", "state/alerts.json"] {
        assert!(dir.join(file).exists(), "{file}");
    }
}

#[test]
fn the_demo_configuration_validates_and_expands_to_the_same_pipeline() {
    let scene = Scene::new();
    let printed = aegis()
        .args(["demo", "--print-config"])
        .output()
        .expect("aegis runs");
    assert!(printed.status.success());
    let config = scene.path("demo.yaml");
    std::fs::write(&config, &printed.stdout).unwrap();
    let validate = |file: &std::path::Path| {
        let said = String::from_utf8(aegis_succeeds(&["validate"], file, &[])).unwrap();
        said.split_once(": valid").expect("valid").1.to_owned()
    };
    let expand = |file: &std::path::Path| aegis_succeeds(&["config", "expand"], file, &[]);
    let counts = validate(&config);
    assert!(
        counts.contains("(7 sources, 4 stages, 2 sinks)"),
        "{counts}"
    );
    let expanded = scene.path("expanded.yaml");
    std::fs::write(&expanded, expand(&config)).unwrap();
    // The pipeline form of the demo is valid, the same size, and expands to itself.
    assert_eq!(validate(&expanded), counts);
    assert_eq!(
        String::from_utf8(expand(&expanded)).unwrap(),
        std::fs::read_to_string(&expanded).unwrap()
    );
}
