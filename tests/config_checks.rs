//! Configuration checks that a golden case under `tests/config_errors/` cannot hold:
//! files too big to commit, generated here, and what a configuration that loads with
//! warnings prints and expands to.

use std::fs::File;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{PATIENCE, Scene, aegis, aegis_on};

/// Runs `aegis validate FILE` and returns what it printed, or `None` if it did not end
/// within `limit` (it is killed then, so that a slow run fails the test at once).
fn validate_within(scene: &Scene, file: &Path, limit: Duration) -> Option<Output> {
    let (out, err) = (scene.path("stdout"), scene.path("stderr"));
    let mut child = aegis()
        .arg("validate")
        .arg(file)
        .stdout(Stdio::from(File::create(&out).expect("stdout file")))
        .stderr(Stdio::from(File::create(&err).expect("stderr file")))
        .spawn()
        .expect("aegis starts");
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for aegis") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        // Polling: there is no blocking wait with a deadline.
        std::thread::sleep(Duration::from_millis(10));
    };
    Some(Output {
        status,
        stdout: std::fs::read(out).expect("stdout read"),
        stderr: std::fs::read(err).expect("stderr read"),
    })
}

/// Deep nesting took quadratic time before it was refused: 18 s for 100,000 `[`, and
/// 36 s or more for a 500 KB nested map. Past 64 levels it is now refused at once,
/// at the line where the limit is passed. The files are three times those sizes, so
/// that quadratic time (minutes) and a loaded machine's (a second at most) are far
/// apart on either side of [`PATIENCE`].
#[test]
fn deeply_nested_yaml_is_refused_at_once() {
    let block_maps: String = (0..710)
        .map(|i| format!("{}a:\n", "  ".repeat(i)))
        .collect();
    let cases = [
        ("flow sequences", "[".repeat(300_000), 1),
        (
            "flow maps",
            format!("a: {}1{}\n", "{a: ".repeat(375_000), "}".repeat(375_000)),
            1,
        ),
        // Line i opens level i; level 65 is one too many.
        ("block maps", block_maps, 65),
        ("block sequences", format!("{}x\n", "- ".repeat(750_000)), 1),
    ];
    for (what, text, line) in cases {
        let scene = Scene::new();
        let config = scene.config(&text);
        let output = validate_within(&scene, &config, PATIENCE)
            .unwrap_or_else(|| panic!("{what}: `aegis validate` took {PATIENCE:?} or more"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{what}: {stderr}");
        let file = config.display();
        assert!(
            stderr.starts_with(&format!("error: {file}:{line}:"))
                && stderr.contains(": maps and lists are nested more than 64 levels deep here; a configuration needs fewer than 10")
                && stderr.ends_with(&format!("\n1 error in {file}\n")),
            "{what}: {stderr}"
        );
    }
}

/// Collecting errors took quadratic time (each compared with all before it, to drop
/// repeats): 100,000 keys given twice took 84 s, 30,000 about 8 s. Every one is still
/// reported, 100,000 in about a second: far from quadratic time on either side of
/// [`PATIENCE`], however loaded the machine.
#[test]
fn a_flood_of_errors_is_collected_in_linear_time() {
    let scene = Scene::new();
    let config = scene.config(&"a: 1\n".repeat(100_000));
    let output = validate_within(&scene, &config, PATIENCE)
        .unwrap_or_else(|| panic!("`aegis validate` took {PATIENCE:?} or more"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    let file = config.display();
    assert!(
        stderr.starts_with(&format!(
            "error: {file}:2:1: a: key given twice (first at line 1)"
        )) && stderr.ends_with(&format!("\n99999 errors in {file}\n")),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
}

/// Runs `aegis ARGS… FILE`, expecting success; returns standard output and error.
fn succeeds(args: &[&str], file: &Path) -> (String, String) {
    let output = aegis_on(args, file);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{args:?}: {stderr}");
    (stdout, stderr)
}

/// The names of the patterns of stage `id` in what `config expand` printed.
fn stage_patterns(expanded: &serde_norway::Value, id: &str) -> Vec<String> {
    let patterns = expanded["stages"][id]["patterns"]
        .as_sequence()
        .unwrap_or_else(|| panic!("no stage `{id}` in {expanded:?}"));
    (patterns.iter())
        .map(|p| p["name"].as_str().expect("a name").to_owned())
        .collect()
}

/// Two entries of `logs.files` naming one file became two tails and two stages: every
/// line was read twice and every match reported twice. Entries of one service are now
/// merged; an entry of another service adds nothing. Paths compare as normalised.
#[test]
fn a_log_file_listed_twice_is_read_once() {
    let scene = Scene::new();
    let config = scene.config(
        "\
logs:
  files:
    - service: shop
      path: app.log
      patterns:
        - {name: oom, pattern: 'out of memory', severity: critical}
    - service: shop
      path: ./app.log
      patterns:
        - {name: oom, pattern: 'out of memory', severity: critical}
        - {name: panic, pattern: '^panic:', severity: critical}
    - service: cart
      path: logs/../app.log
      patterns:
        - {name: slow, pattern: 'slow', severity: warning}
    - service: cart
      path: cart.log
  patterns:
    - {name: error, pattern: 'ERROR', severity: warning}
",
    );
    let file = config.display();
    let (_, warnings) = succeeds(&["validate"], &config);
    assert_eq!(
        warnings,
        format!(
            "warning: {file}:7:7: logs.files[1]: file `./app.log` is listed twice for service `shop`, here and at line 3 (`logs.files[0]`); the two entries are read as one, with the patterns of both\n\
             warning: {file}:12:7: logs.files[2]: file `logs/../app.log` is already listed for service `shop` at line 3 (`logs.files[0]`); a file is read once, for its first service, so this entry adds nothing for `cart` (its patterns do not apply)\n"
        )
    );
    let (expanded, _) = succeeds(&["config", "expand"], &config);
    let expanded: serde_norway::Value = serde_norway::from_str(&expanded).expect("YAML");
    let ids = |section: &str| -> Vec<String> {
        (expanded[section].as_mapping().expect("a section").keys())
            .map(|id| id.as_str().expect("an id").to_owned())
            .collect()
    };
    assert_eq!(ids("sources"), ["shop.log_tail.0", "cart.log_tail.3"]);
    assert_eq!(
        ids("stages"),
        ["shop.log_patterns.0", "cart.log_patterns.3"]
    );
    assert_eq!(
        expanded["sources"]["shop.log_tail.0"]["paths"],
        serde_norway::Value::from(vec!["app.log"])
    );
    assert_eq!(
        stage_patterns(&expanded, "shop.log_patterns.0"),
        ["error", "oom", "panic"]
    );
    assert_eq!(stage_patterns(&expanded, "cart.log_patterns.3"), ["error"]);

    // Each line is read once, and each match counted once.
    std::fs::write(scene.path("app.log"), "out of memory\nERROR: x\npanic: y\n").unwrap();
    let (summary, _) = succeeds(&["run", "--once", "--format", "json"], &config);
    let summary: serde_json::Value = serde_json::from_str(&summary).expect("JSON");
    assert_eq!(summary["lines"], 3, "{summary:#}");
    let matches: Vec<(&str, u64)> = (summary["patterns"].as_array().expect("patterns").iter())
        .map(|p| (p["name"].as_str().unwrap(), p["matches"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        matches.iter().map(|(_, n)| n).sum::<u64>(),
        3,
        "{matches:?}"
    );
}

/// In the pipeline form the same file may be listed twice by one `log_tail` or by two;
/// each file is read once, and a warning names both places.
#[test]
fn a_log_file_listed_twice_in_the_pipeline_form_is_warned_about() {
    let scene = Scene::new();
    let config = scene.config(
        "\
sources:
  a: {type: log_tail, service: shop, paths: [app.log, ./app.log]}
  b:
    type: log_tail
    service: shop
    paths: [other.log, logs/../app.log]
sinks:
  out: {type: console, inputs: [a, b]}
",
    );
    let file = config.display();
    let (_, warnings) = succeeds(&["validate"], &config);
    assert_eq!(
        warnings,
        format!(
            "warning: {file}:2:55: sources.a.paths[1]: `./app.log` names the same file as `app.log` at line 2 (`sources.a.paths[0]`); each file is read once, so list it once\n\
             warning: {file}:6:24: sources.b.paths[1]: `logs/../app.log` names the same file as `app.log` at line 2 (`sources.a.paths[0]`); each file is read once, so list it once\n"
        )
    );
    let (expanded, _) = succeeds(&["config", "expand"], &config);
    assert!(
        expanded.contains("- ./app.log"),
        "paths are kept as written: {expanded}"
    );
}

/// `alerting:` becomes one alert stage fed by every check, pattern stage and the
/// anomaly stage, and a webhook sink per receiver sharing the section's `state_dir`;
/// a fallback must name another receiver, and a secret is printed as written.
#[test]
fn the_alerting_section_expands_into_a_stage_and_its_receivers() {
    let scene = Scene::new();
    let yaml = |fallback: &str| {
        format!(
            "\
services:
  - name: shop
    health_checks:
      - {{name: health, type: tcp, address: '127.0.0.1:9', interval: 10s}}
logs:
  files:
    - service: shop
      path: app.log
  patterns:
    - {{name: oom, pattern: 'out of memory', severity: critical}}
alerting:
  state_dir: state
  repeat_interval: 1h
  webhooks:
    - name: ops
      url: http://127.0.0.1:9/alerts
      hmac_secret: \"${{AEGIS_TEST_ALERTING_SECRET}}\"
      fallback: {fallback}
    - name: pager
      url: http://127.0.0.1:9/page
  alertmanager:
    urls: [http://127.0.0.1:9093]
"
        )
    };
    let wrong = scene.config(&yaml("pagr"));
    let output = aegis()
        .arg("validate")
        .arg(&wrong)
        .env("AEGIS_TEST_ALERTING_SECRET", "hunter2-alerting")
        .output()
        .expect("aegis runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(":18:17: alerting.webhooks[0].fallback: fallback `pagr` is not another receiver of `alerting.webhooks`; expected one of `pager` (did you mean `pager`?)"),
        "{stderr}"
    );

    let config = scene.config(&yaml("pager"));
    let output = aegis()
        .args(["config", "expand"])
        .arg(&config)
        .env("AEGIS_TEST_ALERTING_SECRET", "hunter2-alerting")
        .output()
        .expect("aegis runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stdout.contains("hunter2") && !stderr.contains("hunter2"),
        "{stdout}{stderr}"
    );
    let expanded: serde_norway::Value = serde_norway::from_str(&stdout).expect("YAML");
    let alerting = &expanded["stages"]["alerting"];
    assert_eq!(alerting["type"], "alert", "{expanded:?}");
    let inputs: Vec<&str> = (alerting["inputs"].as_sequence().expect("inputs").iter())
        .map(|id| id.as_str().expect("an id"))
        .collect();
    assert_eq!(inputs, ["shop.log_patterns.0", "shop.health"]);
    for receiver in ["ops", "pager"] {
        let sink = &expanded["sinks"][format!("webhook.{receiver}").as_str()];
        assert_eq!(sink["type"], "webhook", "{expanded:?}");
        assert_eq!(sink["state_dir"], "state");
        assert_eq!(sink["inputs"], serde_norway::Value::from(vec!["alerting"]));
    }
    assert_eq!(
        expanded["sinks"]["webhook.ops"]["hmac_secret"],
        "${AEGIS_TEST_ALERTING_SECRET}"
    );
    assert_eq!(expanded["sinks"]["alertmanager"]["type"], "alertmanager");
    let console = &expanded["sinks"]["console"]["inputs"];
    assert!(
        console
            .as_sequence()
            .expect("inputs")
            .iter()
            .any(|id| id == "alerting"),
        "{console:?}"
    );
}

/// A command whose program cannot be run as things stand (missing, not executable, on
/// no folder of `PATH`) is warned about where it is written: the configuration is still
/// valid, since the program may be installed after Aegis starts.
#[test]
fn a_program_that_cannot_be_run_is_warned_about() {
    let scene = Scene::new();
    let not_executable = scene.path("notes.txt");
    std::fs::write(&not_executable, "not a program\n").unwrap();
    let config = scene.config(&format!(
        "\
services:
  - name: shop
    command: [/nonexistent/aegis-test-shop, --port, '8080']
    health_checks:
      - {{name: queue, type: script, command: ['{}'], interval: 10s}}
      - {{name: disk, type: script, command: [aegis-test-no-such-plugin], interval: 10s}}
      - {{name: fine, type: script, command: [sh, -c, 'exit 0'], interval: 10s}}
",
        not_executable.display()
    ));
    let file = config.display();
    let (_, warnings) = succeeds(&["validate"], &config);
    let fails = "each attempt to run it fails until that changes";
    assert_eq!(
        warnings,
        format!(
            "warning: {file}:3:5: services[0].command: `/nonexistent/aegis-test-shop` does not exist: {fails}\n\
             warning: {file}:5:37: services[0].health_checks[0].command: `{}` is not executable: {fails}\n\
             warning: {file}:6:36: services[0].health_checks[1].command: `aegis-test-no-such-plugin` is in no folder of PATH: {fails}\n",
            not_executable.display()
        )
    );
}
