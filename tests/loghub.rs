//! Exact counts on real logs (loghub samples: CRLF line ends, no final newline): every
//! pattern's count from `aegis run --once` equals what `grep -c` gives on the same file
//! with an equivalent pattern.

use std::process::Command;

use crate::util::{Scene, aegis_on, repo};

/// (file, Aegis pattern, grep arguments, count measured with that grep).
const CASES: &[(&str, &str, &[&str], u64)] = &[
    ("Apache_2k.log", r"\[error\]", &[r"\[error\]"], 595),
    ("Apache_2k.log", r"\[notice\]", &[r"\[notice\]"], 1405),
    (
        "Apache_2k.log",
        r"mod_jk child workerEnv in error state \d+",
        &["-E", "mod_jk child workerEnv in error state [0-9]+"],
        539,
    ),
    ("Hadoop_2k.log", r" ERROR ", &[" ERROR "], 151),
    ("Hadoop_2k.log", r" FATAL ", &[" FATAL "], 2),
    ("Hadoop_2k.log", r" WARN ", &[" WARN "], 808),
    ("Hadoop_2k.log", r"(?i)exception", &["-i", "exception"], 9),
    ("Zookeeper_2k.log", r" - ERROR ", &[" - ERROR "], 13),
    ("Zookeeper_2k.log", r" - WARN ", &[" - WARN "], 1318),
    (
        "OpenSSH_2k.log",
        r"Failed password",
        &["Failed password"],
        520,
    ),
    (
        "OpenSSH_2k.log",
        r"Invalid user \S+ from",
        &["-E", "Invalid user [^ ]+ from"],
        112,
    ),
    (
        "OpenSSH_2k.log",
        r"(?i)possible break-in attempt!$",
        &["-iE", "possible break-in attempt!\r?$"],
        85,
    ),
];

#[test]
fn counts_per_pattern_equal_grep_on_real_logs() {
    let scene = Scene::new();
    let fixtures = repo().join("tests/fixtures/loghub");
    // Each pattern is given to the file it was written for only (per-file patterns).
    let mut yaml = String::from("logs:\n  files:\n");
    let mut files: Vec<&str> = CASES.iter().map(|case| case.0).collect();
    files.dedup();
    for file in &files {
        yaml += &format!(
            "    - service: {}\n      path: '{}'\n      patterns:\n",
            file.trim_end_matches("_2k.log"),
            fixtures.join(file).display()
        );
        for (i, (_, pattern, _, _)) in CASES.iter().enumerate().filter(|(_, case)| case.0 == *file)
        {
            yaml += &format!("        - {{name: p{i}, pattern: '{pattern}', severity: info}}\n");
        }
    }
    scene.config(&yaml);
    let output = aegis_on(
        &["run", "--once", "--format", "json"],
        &scene.path("config.yaml"),
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON summary");

    for file in report["files"].as_array().expect("files") {
        assert_eq!(
            file["lines"], 2000,
            "2,000 records, the last without a newline: {file}"
        );
    }
    for (i, (file, _, grep_args, measured)) in CASES.iter().enumerate() {
        let name = format!("p{i}");
        let ours = report["patterns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name.as_str())
            .map_or(0, |p| p["matches"].as_u64().unwrap());
        let grep = Command::new("grep")
            .arg("-c")
            .args(*grep_args)
            .arg(fixtures.join(file))
            .output()
            .expect("grep runs");
        let grep_count: u64 = String::from_utf8_lossy(&grep.stdout)
            .trim()
            .parse()
            .expect("a count");
        assert_eq!(
            grep_count, *measured,
            "grep's own count for {file} {grep_args:?}"
        );
        assert_eq!(ours, grep_count, "pattern {} on {file}", CASES[i].1);
    }
}
