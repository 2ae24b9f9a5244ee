//! Alerting on the real binary: a check goes down, an alert fires and reaches a real
//! receiver (the example `webhook-server`), and a `SIGKILL` at the worst moments
//! neither repeats what the receiver was told nor loses what it was not. Notifications
//! are counted by idempotency key, as a receiver that drops repeats counts them.

use std::path::Path;

use crate::servers::ClosedPort;
use crate::util::{Running, Scene, aegis_succeeds};
use crate::webhook::WebhookServer;

/// A service whose script check is down until `FLAG` exists, checked every 300 ms,
/// alerting a receiver at `url` with state in `state/`.
fn scene(url: &str) -> (Scene, std::path::PathBuf) {
    let scene = Scene::new();
    let flag = scene.path("up");
    scene.config(&format!(
        "\
services:
  - name: shop
    health_checks:
      - name: health
        type: script
        command: [/bin/sh, -c, 'test -e \"$0\" || exit 2', '{flag}']
        interval: 300ms
        timeout: 250ms
alerting:
  state_dir: state
  webhooks:
    - name: ops
      url: {url}
      timeout: 1s
      retry: {{max_attempts: 2, initial_delay: 50ms, max_delay: 200ms}}
      headers: {{Authorization: \"Bearer ${{AEGIS_TEST_ALERT_TOKEN}}\"}}
      hmac_secret: \"${{AEGIS_TEST_ALERT_SECRET}}\"
",
        flag = flag.display()
    ));
    (scene, flag)
}

/// Reads the console until `count` more check results than now were printed: time
/// enough, measured in the checks' own ticks, for anything they would cause.
fn ticks(aegis: &mut Running, count: usize) {
    let results = |line: &str| line.contains("\"event\":\"probe_result\"");
    let seen = aegis.out.iter().filter(|line| results(line)).count();
    aegis.wait_out_lines("check results", seen + count, results);
}

/// The secrets the receiver's configuration names, as the environment gives them.
const SECRETS: [(&str, &str); 2] = [
    ("AEGIS_TEST_ALERT_TOKEN", "t0ken-never-shown"),
    ("AEGIS_TEST_ALERT_SECRET", "s3cret-never-shown"),
];

fn run(scene: &Scene) -> Running {
    scene
        .run_with(&SECRETS)
        .arg(scene.path("config.yaml"))
        .start()
}

/// Stops Aegis and checks that no secret was ever printed or logged.
fn stop(mut aegis: Running) {
    aegis.terminate();
    for (_, secret) in SECRETS {
        let shown = (aegis.out.iter().chain(&aegis.err)).find(|line| line.contains(secret));
        assert_eq!(shown, None, "a secret was shown");
    }
}

fn kill(mut aegis: Running) {
    aegis.signal("KILL");
    aegis.wait();
}

fn up(flag: &Path) {
    std::fs::write(flag, "").expect("flag written");
}

#[test]
fn a_kill_while_firing_neither_repeats_the_firing_nor_loses_the_resolve() {
    let mut receiver = WebhookServer::unsigned("127.0.0.1:0");
    let (scene, flag) = scene(&receiver.url);
    let mut aegis = run(&scene);
    receiver.wait_acks("firing", 1);
    kill(aegis);

    aegis = run(&scene);
    aegis.wait_out("the firing alert restated", |out| {
        out.iter()
            .any(|line| line.contains("\"notify\":\"restated\""))
    });
    ticks(&mut aegis, 10);
    assert_eq!(receiver.acks("firing"), 1, "told again after the restart");

    up(&flag);
    receiver.wait_acks("resolved", 1);
    ticks(&mut aegis, 10);
    assert_eq!(receiver.acks("resolved"), 1);
    assert_eq!(receiver.acks("firing"), 1);
    stop(aegis);
}

#[test]
fn what_a_dead_receiver_missed_before_a_kill_is_delivered_after_the_restart() {
    let closed = ClosedPort::new();
    let address = closed.addr.to_string();
    let (scene, flag) = scene(&format!("http://{address}/alerts"));
    let mut aegis = run(&scene);
    aegis.wait_err("Receiver is failing", 1);
    kill(aegis);

    drop(closed);
    let mut receiver = WebhookServer::unsigned(&address);
    aegis = run(&scene);
    receiver.wait_acks("firing", 1);
    ticks(&mut aegis, 10);
    assert_eq!(receiver.acks("firing"), 1);

    up(&flag);
    receiver.wait_acks("resolved", 1);
    ticks(&mut aegis, 10);
    assert_eq!((receiver.acks("firing"), receiver.acks("resolved")), (1, 1));
    stop(aegis);
}

/// `validate` and `config expand` check a configuration without touching the
/// daemon's state: a state file they cannot read stays where it is (only the daemon
/// sets it aside), and a state folder that does not exist is not made.
#[test]
fn checking_a_configuration_touches_no_alert_state() {
    let (scene, _) = scene("http://127.0.0.1:9/alerts");
    let state = scene.path("state");
    let check = |command: &[&str]| aegis_succeeds(command, &scene.path("config.yaml"), &SECRETS);
    for command in [&["validate"][..], &["config", "expand"][..]] {
        check(command);
        assert!(!state.exists(), "{command:?} made {}", state.display());
    }
    std::fs::create_dir(&state).unwrap();
    std::fs::write(state.join("alerts.json"), "{ not json").unwrap();
    for command in [&["validate"][..], &["config", "expand"][..]] {
        check(command);
        let names: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["alerts.json"], "{command:?}");
    }
}
