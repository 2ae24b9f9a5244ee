//! Health checks against real servers on 127.0.0.1: each outcome, reason and detail,
//! timeouts cut on time, a hung script's process group killed, retries spaced by
//! their policy, and real Nagios plugins as script checks.
//!
//! Each test runs `aegis run --once --format json`, which makes one tick of every
//! check at once and reports each check's result.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::servers::{Blackhole, ClosedPort, GrpcServer, HttpServer, TcpServer};
use crate::util::{PATIENCE, Scene, aegis, until_ended};

/// Where Debian's monitoring-plugins put the Nagios plugins.
const NAGIOS_PLUGINS: &str = "/usr/lib/nagios/plugins";

/// Runs one tick of every check in `yaml` (the checks of service `s`) and returns the
/// results by check name, with how long the whole run took.
fn check_once(scene: &Scene, checks: &str) -> (HashMap<String, Value>, Duration) {
    check_once_with(scene, checks, &[])
}

/// The same, with variables added to aegis's environment.
fn check_once_with(
    scene: &Scene,
    checks: &str,
    env: &[(&str, &str)],
) -> (HashMap<String, Value>, Duration) {
    let config = scene.config(&format!(
        "services:\n  - name: s\n    health_checks:\n{checks}"
    ));
    let started = Instant::now();
    let output = aegis()
        .args(["run", "--once", "--format", "json"])
        .arg(&config)
        .envs(env.iter().copied())
        .output()
        .expect("aegis runs");
    let elapsed = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "aegis failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).expect("the summary is JSON");
    let results = report["checks"]
        .as_array()
        .expect("the summary lists checks")
        .iter()
        .map(|check| (check["check"].as_str().unwrap().to_owned(), check.clone()))
        .collect();
    (results, elapsed)
}

/// Asserts a result's outcome, reason and detail.
#[track_caller]
fn expect(
    results: &HashMap<String, Value>,
    check: &str,
    outcome: &str,
    reason: Option<&str>,
    detail: &str,
) {
    let result = results
        .get(check)
        .unwrap_or_else(|| panic!("no result for `{check}` in {results:#?}"));
    let got = (
        result["outcome"].as_str(),
        result["reason"].as_str(),
        result["detail"].as_str().unwrap_or(""),
    );
    assert!(
        got.0 == Some(outcome) && got.1 == reason && got.2.starts_with(detail),
        "`{check}`: expected {outcome} / {reason:?} / `{detail}…`, got {result:#}"
    );
}

/// Asserts that a check was cut at `timeout`: its attempt took at least that long, and
/// ended long before the target would have (the targets here hang for minutes or for
/// ever). The margin is [`PATIENCE`], which a loaded machine keeps.
#[track_caller]
fn cut_at(results: &HashMap<String, Value>, check: &str, timeout: Duration) {
    expect(results, check, "down", Some("timeout"), "timed out after");
    let latency = Duration::from_secs_f64(results[check]["latency"].as_f64().unwrap());
    assert!(
        latency >= timeout && latency < timeout + PATIENCE,
        "`{check}` took {latency:?}, its timeout is {timeout:?}"
    );
}

#[test]
fn http_checks_report_status_body_and_connection_failures() {
    let server = HttpServer::start();
    let scene = Scene::new();
    let refused = ClosedPort::new();
    let checks = format!(
        r#"
      - {{ name: ok, type: http, url: "{ok}" }}
      - {{ name: unavailable, type: http, url: "{unavailable}" }}
      - {{ name: expected_503, type: http, url: "{unavailable}", expect_status: [200, "500-503"] }}
      - {{ name: body_missing, type: http, url: "{body}", body_contains: '"status": "up"' }}
      - {{ name: body_matches, type: http, url: "{body}", body_regex: '"status":\s*"degraded"' }}
      - {{ name: body_unmatched, type: http, url: "{body}", body_regex: '^ok$' }}
      - {{ name: redirect_followed, type: http, url: "{redirect}" }}
      - {{ name: redirect_kept, type: http, url: "{redirect}", follow_redirects: false }}
      - {{ name: post, type: http, method: post, url: "{ok}", headers: {{ X-Probe: aegis }} }}
      - {{ name: refused, type: http, url: "http://{refused}/health" }}
      - {{ name: tls, type: http, url: "https://{addr}/ok" }}
      - {{ name: hung, type: http, url: "{hang}", timeout: 1s }}
"#,
        ok = server.url("/ok"),
        unavailable = server.url("/status/503"),
        body = server.url("/body"),
        redirect = server.url("/redirect"),
        hang = server.url("/hang"),
        addr = server.addr,
        refused = refused.addr,
    );
    let (results, elapsed) = check_once(&scene, &checks);
    expect(&results, "ok", "up", None, "status 200");
    assert_eq!(results["ok"]["http_status"], 200);
    assert_eq!(results["ok"]["kind"], "http");
    assert_eq!(results["ok"]["attempts"], 1);
    expect(
        &results,
        "unavailable",
        "down",
        Some("status"),
        "status 503, expected 200-299",
    );
    assert_eq!(results["unavailable"]["http_status"], 503);
    expect(&results, "expected_503", "up", None, "status 503");
    expect(
        &results,
        "body_missing",
        "down",
        Some("body"),
        r#"status 200, but the body does not contain `"status": "up"`"#,
    );
    expect(&results, "body_matches", "up", None, "status 200");
    expect(
        &results,
        "body_unmatched",
        "down",
        Some("body"),
        "status 200, but the body does not match `^ok$`",
    );
    expect(&results, "redirect_followed", "up", None, "status 200");
    expect(
        &results,
        "redirect_kept",
        "down",
        Some("status"),
        "status 302, expected 200-299",
    );
    expect(&results, "post", "up", None, "status 200");
    expect(
        &results,
        "refused",
        "down",
        Some("refused"),
        "connect to 127.0.0.1:",
    );
    expect(&results, "tls", "down", Some("tls"), "TLS: ");
    cut_at(&results, "hung", Duration::from_secs(1));
    // The run does not wait for the hung request either.
    assert!(elapsed < PATIENCE, "the run took {elapsed:?}");
}

#[test]
fn https_checks_verify_certificates_unless_told_not_to() {
    let server = HttpServer::start_tls();
    let scene = Scene::new();
    let checks = format!(
        r#"
      - {{ name: verified, type: http, url: "{ok}" }}
      - {{ name: unverified, type: http, url: "{ok}", tls_verify: false, body_contains: "ok" }}
      - {{ name: kept_alive, type: http, url: "{ok}", tls_verify: false, keepalive: true }}
"#,
        ok = server.url("/ok"),
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "verified", "down", Some("tls"), "TLS: ");
    let detail = results["verified"]["detail"].as_str().unwrap();
    assert!(detail.contains("certificate"), "{detail}");
    expect(&results, "unverified", "up", None, "status 200");
    expect(&results, "kept_alive", "up", None, "status 200");
}

#[test]
fn redirects_keep_credentials_within_their_origin() {
    let server = HttpServer::start();
    let other = HttpServer::start();
    let scene = Scene::new();
    let auth = "headers: { Authorization: Bearer s3cret }";
    let checks = format!(
        r#"
      - {{ name: same_origin, type: http, url: "{here}", {auth}, body_contains: "auth: Bearer s3cret" }}
      - {{ name: other_origin, type: http, url: "{away}", {auth}, body_contains: "auth: none" }}
      - {{ name: post_becomes_get, type: http, method: POST, url: "{away}", body_contains: "auth: none" }}
      - {{ name: secret_kept_home, type: http, url: "{away}", keepalive: true, headers: {{ X-Api-Key: "${{AEGIS_TEST_API_KEY}}" }}, body_contains: "key: none" }}
      - {{ name: no_location, type: http, url: "{multiple}", expect_status: [300] }}
"#,
        here = server.url(&format!("/redirect-to/{}", server.addr.port())),
        away = server.url(&format!("/redirect-to/{}", other.addr.port())),
        multiple = server.url("/status/300"),
    );
    let (results, _) = check_once_with(&scene, &checks, &[("AEGIS_TEST_API_KEY", "k3y")]);
    expect(&results, "same_origin", "up", None, "status 200");
    expect(&results, "other_origin", "up", None, "status 200");
    expect(&results, "post_becomes_get", "up", None, "status 200");
    expect(&results, "secret_kept_home", "up", None, "status 200");
    expect(&results, "no_location", "up", None, "status 300");
    assert_eq!(
        other.arrivals("/auth").len(),
        3,
        "the cross-origin checks got there"
    );
}

#[test]
fn tcp_checks_connect_send_and_expect() {
    let server = TcpServer::start();
    let blackhole = Blackhole::start();
    let refused = ClosedPort::new();
    let scene = Scene::new();
    let checks = format!(
        r#"
      - {{ name: connect, type: tcp, address: "{addr}" }}
      - {{ name: pong, type: tcp, address: "{addr}", send: "PING\r\n", expect: '^\+PONG' }}
      - {{ name: wrong_reply, type: tcp, address: "{addr}", send: "HELLO\r\n", expect: '^\+PONG' }}
      - {{ name: binary_reply, type: tcp, address: "{addr}", send: "BINARY\r\n", expect: '^\+PONG' }}
      - {{ name: refused, type: tcp, address: "{refused}" }}
      - {{ name: blackholed, type: tcp, address: "{blackhole}", timeout: 1s }}
      - {{ name: unresolvable, type: tcp, address: "no-port-given" }}
"#,
        addr = server.addr,
        refused = refused.addr,
        blackhole = blackhole.addr,
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "connect", "up", None, "connected");
    assert_eq!(results["connect"]["kind"], "tcp");
    expect(&results, "pong", "up", None, "reply matched");
    expect(
        &results,
        "wrong_reply",
        "down",
        Some("body"),
        r#"reply does not match `^\+PONG`: "-ERR unknown command\r\n""#,
    );
    // Raw bytes in a detail would reach the text log and the --once table as they
    // are: an escape sequence recolours the terminal.
    expect(
        &results,
        "binary_reply",
        "down",
        Some("body"),
        r#"reply does not match `^\+PONG`: "\x00\x01\xfe\xffBIN\x1b[31m\r\n""#,
    );
    expect(
        &results,
        "refused",
        "down",
        Some("refused"),
        "connect to 127.0.0.1:",
    );
    cut_at(&results, "blackholed", Duration::from_secs(1));
    expect(
        &results,
        "unresolvable",
        "down",
        Some("dns"),
        "cannot resolve `no-port-given`",
    );
}

#[test]
fn grpc_checks_follow_the_health_protocol() {
    let healthy = GrpcServer::with_health();
    let http = HttpServer::start();
    let refused = ClosedPort::new();
    let bare = GrpcServer::without_health();
    let blackhole = Blackhole::start();
    let scene = Scene::new();
    let checks = format!(
        r#"
      - {{ name: server, type: grpc, address: "{addr}" }}
      - {{ name: orders, type: grpc, address: "{addr}", grpc_service: shop.Orders }}
      - {{ name: billing, type: grpc, address: "{addr}", grpc_service: shop.Billing }}
      - {{ name: unknown, type: grpc, address: "{addr}", grpc_service: shop.Nothing }}
      - {{ name: no_health, type: grpc, address: "{bare}" }}
      - {{ name: refused, type: grpc, address: "{refused}" }}
      - {{ name: kept, type: grpc, address: "{addr}", keepalive: true }}
      - {{ name: kept_refused, type: grpc, address: "{refused}", keepalive: true }}
      - {{ name: not_grpc, type: grpc, address: "{http}" }}
      - {{ name: blackholed, type: grpc, address: "{blackhole}", timeout: 1s }}
"#,
        addr = healthy.addr,
        bare = bare.addr,
        http = http.addr,
        refused = refused.addr,
        blackhole = blackhole.addr,
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "server", "up", None, "SERVING");
    assert_eq!(results["server"]["grpc_status"], "SERVING");
    assert_eq!(results["server"]["kind"], "grpc");
    expect(&results, "orders", "up", None, "SERVING");
    expect(
        &results,
        "billing",
        "down",
        Some("grpc_status"),
        "NOT_SERVING",
    );
    assert_eq!(results["billing"]["grpc_status"], "NOT_SERVING");
    expect(
        &results,
        "unknown",
        "down",
        Some("grpc_status"),
        "SERVICE_UNKNOWN: the server does not know the service `shop.Nothing`",
    );
    expect(
        &results,
        "no_health",
        "down",
        Some("grpc_status"),
        "UNIMPLEMENTED: the server has no grpc.health.v1.Health service",
    );
    assert_eq!(results["no_health"]["grpc_status"], "UNIMPLEMENTED");
    expect(&results, "kept", "up", None, "SERVING");
    // A transport failure is told the same with or without keepalive, and without a
    // gRPC status, since the server sent none.
    for refused in ["refused", "kept_refused"] {
        expect(
            &results,
            refused,
            "down",
            Some("refused"),
            "transport error",
        );
        assert_eq!(results[refused]["grpc_status"], Value::Null);
    }
    // A server that is not gRPC answers the HTTP/2 preface with an HTTP/1 error and
    // closes with the client's frames unread: whether the client reads the answer
    // first (`other`) or the reset the close sends (`refused`) is up to timing.
    let not_grpc = &results["not_grpc"];
    assert_eq!(not_grpc["outcome"], "down", "{not_grpc:#}");
    assert!(
        matches!(not_grpc["reason"].as_str(), Some("other" | "refused")),
        "{not_grpc:#}"
    );
    assert_eq!(not_grpc["grpc_status"], Value::Null);
    cut_at(&results, "blackholed", Duration::from_secs(1));
}

/// Writes an executable shell script.
fn script(dir: &Path, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("script written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.to_string_lossy().into_owned()
}

#[test]
fn script_checks_follow_the_nagios_conventions() {
    let scene = Scene::new();
    let dir = scene.dir.path();
    let ok = script(
        dir,
        "ok.sh",
        "echo \"DISK OK - free space: / 40% | '/'=4000MB;8000;9500;0;10000 inodes=12%;80;90\"",
    );
    let warning = script(
        dir,
        "warning.sh",
        "echo 'LOAD WARNING - load average: 5.1'; exit 1",
    );
    let critical = script(
        dir,
        "critical.sh",
        "echo 'DISK CRITICAL - free space: / 3%|/=3%;10;5'; exit 2",
    );
    let unknown = script(
        dir,
        "unknown.sh",
        "echo 'usage: check_x -H host' >&2; exit 3",
    );
    let environment = script(dir, "env.sh", "echo \"OK - $GREETING from $(pwd)\"");
    // A child that leaves the process group and keeps standard output open for longer
    // than the check's timeout: the check is up only if it did not wait for it.
    let escaped = script(dir, "escaped.sh", "setsid sleep 30 &\necho 'OK - escaped'");
    let flood = script(
        dir,
        "flood.sh",
        "echo 'OK - flooding'; head -c 20000000 /dev/zero | tr '\\0' 'y'; exit 0",
    );
    std::fs::create_dir(dir.join("work")).expect("folder");
    let checks = format!(
        r#"
      - {{ name: ok, type: script, command: ["{ok}"] }}
      - {{ name: warning, type: script, command: ["{warning}"] }}
      - {{ name: critical, type: script, command: ["{critical}"] }}
      - {{ name: unknown, type: script, command: ["{unknown}"] }}
      - {{ name: env, type: script, command: ["{environment}"], env: {{ GREETING: hello }}, working_dir: work }}
      - {{ name: shell, type: script, shell: true, command: "echo 'OK - piped' | tr a-z A-Z" }}
      - {{ name: missing, type: script, command: ["./no-such-check.sh"] }}
      - {{ name: flood, type: script, command: ["{flood}"] }}
      - {{ name: escaped, type: script, command: ["{escaped}"], interval: 1m, timeout: 20s }}
"#
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "ok", "up", None, "DISK OK - free space: / 40%");
    assert_eq!(results["ok"]["kind"], "script");
    let perfdata = &results["ok"]["perfdata"];
    assert_eq!(perfdata[0]["label"], "/");
    assert_eq!(perfdata[0]["value"], 4000.0);
    assert_eq!(perfdata[0]["unit"], "MB");
    assert_eq!(perfdata[0]["warn"], "8000");
    assert_eq!(perfdata[0]["max"], 10000.0);
    assert_eq!(perfdata[1]["label"], "inodes");
    assert_eq!(perfdata[1]["unit"], "%");
    expect(
        &results,
        "warning",
        "degraded",
        Some("exit_code"),
        "exit 1: LOAD WARNING - load average: 5.1",
    );
    expect(
        &results,
        "critical",
        "down",
        Some("exit_code"),
        "exit 2: DISK CRITICAL - free space: / 3%",
    );
    expect(
        &results,
        "unknown",
        "down",
        Some("exit_code"),
        "exit 3: usage: check_x -H host",
    );
    let work = dir.join("work").canonicalize().unwrap();
    expect(
        &results,
        "env",
        "up",
        None,
        &format!("OK - hello from {}", work.display()),
    );
    expect(&results, "shell", "up", None, "OK - PIPED");
    expect(&results, "missing", "down", Some("spawn"), "cannot start `");
    expect(&results, "flood", "up", None, "OK - flooding");
    expect(&results, "escaped", "up", None, "OK - escaped");
}

/// Issue 9: a relative path was taken from the configuration's folder only in a list
/// command; a shell command ran in Aegis's own working directory, where `./check.sh`
/// is not. Every command now runs in the configuration's folder unless `working_dir`
/// says otherwise. Aegis runs from elsewhere here (the repository's root).
#[test]
fn commands_run_in_the_configurations_folder_unless_working_dir_says_otherwise() {
    let scene = Scene::new();
    let dir = scene.dir.path();
    script(dir, "check.sh", "echo \"OK - checked in $(pwd)\"");
    std::fs::create_dir(dir.join("work")).expect("folder");
    script(
        &dir.join("work"),
        "check.sh",
        "echo \"OK - work's own in $(pwd)\"",
    );
    let checks = r#"
      - { name: shell, type: script, shell: true, command: "./check.sh | tr a-z A-Z" }
      - { name: shell_in_work, type: script, shell: true, command: "./check.sh", working_dir: work }
      - { name: list, type: script, command: [./check.sh] }
      - { name: list_in_work, type: script, command: [./check.sh], working_dir: work }
"#;
    let (results, _) = check_once(&scene, checks);
    let here = dir.canonicalize().unwrap();
    let work = here.join("work");
    let upper = format!("OK - CHECKED IN {}", here.display()).to_uppercase();
    expect(&results, "shell", "up", None, &upper);
    expect(
        &results,
        "shell_in_work",
        "up",
        None,
        &format!("OK - work's own in {}", work.display()),
    );
    expect(
        &results,
        "list",
        "up",
        None,
        &format!("OK - checked in {}", here.display()),
    );
    // A list's program is taken from the configuration's folder, wherever it runs.
    expect(
        &results,
        "list_in_work",
        "up",
        None,
        &format!("OK - checked in {}", work.display()),
    );
}

#[test]
fn a_hung_script_is_killed_with_its_children_at_the_timeout() {
    let scene = Scene::new();
    let dir = scene.dir.path();
    let pids = dir.join("pids");
    // The script starts a child that would outlive it, records both, and hangs.
    let hung = script(
        dir,
        "hung.sh",
        &format!(
            "sleep 300 &\necho \"$$ $!\" > {}\nsleep 300",
            pids.display()
        ),
    );
    let checks =
        format!("      - {{ name: hung, type: script, command: [\"{hung}\"], timeout: 1s }}\n");
    let (results, elapsed) = check_once(&scene, &checks);
    cut_at(&results, "hung", Duration::from_secs(1));
    // Nor for the script's child, which sleeps for minutes.
    assert!(elapsed < PATIENCE, "the run took {elapsed:?}");
    let recorded = std::fs::read_to_string(&pids).expect("the script recorded its pids");
    let pids: Vec<u64> = (recorded.split_whitespace())
        .map(|pid| pid.parse().expect("a pid"))
        .collect();
    until_ended(&pids, "after the hung script's timeout");
}

#[test]
fn real_nagios_plugins_work_as_script_checks() {
    let plugins = Path::new(NAGIOS_PLUGINS);
    assert!(
        plugins.join("check_tcp").exists() && plugins.join("check_http").exists(),
        "the Nagios plugins are missing: apt-get install monitoring-plugins-basic monitoring-plugins-standard"
    );
    let http = HttpServer::start();
    let tcp = TcpServer::start();
    let refused = ClosedPort::new();
    let scene = Scene::new();
    let checks = format!(
        r#"
      - {{ name: tcp_up, type: script, command: ["{NAGIOS_PLUGINS}/check_tcp", -H, 127.0.0.1, -p, "{tcp}"] }}
      - {{ name: tcp_refused, type: script, command: ["{NAGIOS_PLUGINS}/check_tcp", -H, 127.0.0.1, -p, "{refused}"] }}
      - {{ name: http_up, type: script, command: ["{NAGIOS_PLUGINS}/check_http", -H, 127.0.0.1, -p, "{http}", -u, /ok] }}
      - {{ name: http_missing, type: script, command: ["{NAGIOS_PLUGINS}/check_http", -H, 127.0.0.1, -p, "{http}", -u, /status/404] }}
"#,
        tcp = tcp.addr.port(),
        refused = refused.addr.port(),
        http = http.addr.port(),
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "tcp_up", "up", None, "TCP OK - ");
    let time = &results["tcp_up"]["perfdata"][0];
    assert_eq!(
        (time["label"].as_str(), time["unit"].as_str()),
        (Some("time"), Some("s"))
    );
    expect(
        &results,
        "tcp_refused",
        "down",
        Some("exit_code"),
        &format!(
            "exit 2: connect to address 127.0.0.1 and port {}: Connection refused",
            refused.addr.port()
        ),
    );
    expect(&results, "http_up", "up", None, "HTTP OK: HTTP/1.1 200 OK");
    let labels: Vec<&str> = results["http_up"]["perfdata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|sample| sample["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["time", "size"]);
    expect(
        &results,
        "http_missing",
        "degraded",
        Some("exit_code"),
        "exit 1: HTTP WARNING: HTTP/1.1 404 Not Found",
    );
}

#[test]
fn retries_until_up_spaced_within_the_policy() {
    let server = HttpServer::start();
    let scene = Scene::new();
    // Equal jitter: the delay before retry n is in [exp/2, exp], exp = 200 ms × 2^n.
    let checks = format!(
        r#"
      - name: flaky
        type: http
        url: "{flaky}"
        retry: {{ max_attempts: 3, initial_delay: 200ms, multiplier: 2, jitter: equal }}
      - name: too_flaky
        type: http
        url: "{too_flaky}"
        retry: {{ max_attempts: 2, initial_delay: 50ms, jitter: none }}
"#,
        flaky = server.url("/flaky/2"),
        too_flaky = server.url("/flaky/5"),
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "flaky", "up", None, "status 200");
    assert_eq!(results["flaky"]["attempts"], 3);
    expect(&results, "too_flaky", "down", Some("status"), "status 503");
    assert_eq!(results["too_flaky"]["attempts"], 2);

    let arrivals = server.arrivals("/flaky/2");
    assert_eq!(arrivals.len(), 3, "three attempts reached the server");
    // A gap is the delay plus a request's round trip: never shorter than the delay's
    // lower bound. How much longer depends on the machine's load; that delays keep to
    // their upper bound is pinned on the paused clock (`retries_stop_at_the_tick_budget`
    // in src/sources/probe/schedule.rs, and the draws in src/base/retry.rs).
    for (n, low) in [100, 200].into_iter().enumerate() {
        let gap = arrivals[n + 1] - arrivals[n];
        let low = Duration::from_millis(low);
        assert!(
            gap >= low,
            "gap before retry {}: {gap:?}, expected {low:?} at least",
            n + 1
        );
    }
}

/// Issue 9: `retry: {max_attempts: 3}` with `interval: 5s` and no `timeout` made one
/// attempt per tick (the default timeout was the interval, and no retry fitted after
/// it), and `validate` said the file was valid. With the defaults, every attempt asked
/// for reaches the server.
#[test]
fn retries_asked_for_are_made_with_the_default_timeout() {
    let server = HttpServer::start();
    let scene = Scene::new();
    let checks = format!(
        "      - {{ name: failing, type: http, url: \"{}\", interval: 5s, retry: {{ max_attempts: 3 }} }}\n",
        server.url("/status/503")
    );
    let (results, _) = check_once(&scene, &checks);
    expect(&results, "failing", "down", Some("status"), "status 503");
    assert_eq!(results["failing"]["attempts"], 3);
    assert_eq!(server.arrivals("/status/503").len(), 3);
}
