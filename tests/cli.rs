//! The command line: help, version, exit codes, log formats, the `--once` summary.

use crate::util::{Scene, aegis, aegis_on, repo};

#[test]
fn help_and_version_describe_the_commands() {
    let help = aegis().arg("--help").output().expect("aegis runs");
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for command in ["run", "validate", "config"] {
        assert!(text.contains(command), "{text}");
    }
    let run_help = aegis()
        .args(["run", "--help"])
        .output()
        .expect("aegis runs");
    assert!(String::from_utf8_lossy(&run_help.stdout).contains("--once"));
    let version = aegis().arg("--version").output().expect("aegis runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("aegis {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn a_bad_command_line_or_config_exits_2_and_a_missing_file_says_so() {
    assert_eq!(
        aegis()
            .arg("frobnicate")
            .output()
            .expect("aegis runs")
            .status
            .code(),
        Some(2)
    );
    let scene = Scene::new();
    let config = scene.config("logs:\n  files: []\n");
    let run = aegis_on(&["run"], &config);
    assert_eq!(
        run.status.code(),
        Some(2),
        "`run` refuses a bad configuration as `validate` does"
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("logs.files: no files"));
    let missing = aegis()
        .args(["validate", "no-such.yaml"])
        .output()
        .expect("aegis runs");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).starts_with("aegis: cannot read no-such.yaml: ")
    );
}

#[test]
fn once_prints_a_summary_for_humans_or_as_json() {
    let example = repo().join("config/example.yaml");
    let human = aegis_on(&["run", "--once"], &example);
    assert!(human.status.success());
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("files (5)")
            && text.contains("ApacheError")
            && text.contains("read 11437 lines")
            && text.contains("anomalies (3)"),
        "{text}"
    );
    assert!(
        human.stderr.is_empty(),
        "a --once run logs nothing but warnings: {}",
        String::from_utf8_lossy(&human.stderr)
    );

    let json = aegis_on(&["run", "--once", "--format", "json"], &example);
    let report: serde_json::Value =
        serde_json::from_slice(&json.stdout).expect("the summary is JSON");
    assert_eq!(report["lines"], 11437);
    // The shop's three incidents, at their minutes.
    let anomalies: Vec<(&str, &str)> = (report["anomalies"].as_array().unwrap().iter())
        .map(|a| (a["signal"].as_str().unwrap(), a["start"].as_str().unwrap()))
        .collect();
    assert_eq!(
        anomalies,
        [
            ("error_rate", "2026-11-02T10:45:00Z"),
            ("latency", "2026-11-02T11:20:00Z"),
            ("throughput", "2026-11-02T11:40:00Z"),
        ]
    );
    let matches = |name: &str| {
        report["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .map(|p| p["matches"].clone())
    };
    assert_eq!(matches("ApacheError"), Some(595.into()));
    assert_eq!(matches("BreakInAttempt"), Some(85.into()));
    assert_eq!(
        report["severities"]["CRITICAL"].as_u64().unwrap()
            + report["severities"]["WARNING"].as_u64().unwrap()
            + report["severities"]["INFO"].as_u64().unwrap(),
        report["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["matches"].as_u64().unwrap())
            .sum::<u64>()
    );
}

/// The README's command works from any folder, with a bare file name or a path: the
/// configuration's relative paths start at its own folder (see issue 8).
#[test]
fn the_readme_command_works_from_any_folder() {
    for (folder, config) in [
        ("config", "example.yaml"),
        ("tests", "../config/example.yaml"),
        ("/", "CONFIG"),
    ] {
        let absolute = repo().join("config/example.yaml");
        let config = if config == "CONFIG" {
            absolute.to_str().unwrap()
        } else {
            config
        };
        let output = aegis()
            .current_dir(repo().join(folder))
            .args(["run", "--once", "--format", "json", config])
            .output()
            .expect("aegis runs");
        let report: serde_json::Value =
            serde_json::from_slice(&output.stdout).expect("the summary is JSON");
        assert_eq!(report["lines"], 11437, "from {folder}: {config}");
    }
}

#[test]
fn logs_can_be_json() {
    let scene = Scene::new();
    std::fs::write(scene.path("a.log"), "x\n").unwrap();
    scene.config("sources:\n  a: {type: log_tail, service: s, paths: [missing-*.log]}\nsinks:\n  out: {type: console, inputs: [a]}\n");
    let output = aegis_on(
        &["--log-format", "json", "run", "--once"],
        &scene.path("config.yaml"),
    );
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let warning: serde_json::Value =
        serde_json::from_str(stderr.lines().next().expect("a warning")).expect("JSON log line");
    assert_eq!(warning["level"], "WARN");
    assert_eq!(
        warning["fields"]["message"],
        "No file matches the configured path."
    );
}
