//! The log path end to end, on the real binary: appends, rotation by rename, copytruncate,
//! files that appear later, shutdown, and the awkward lines (CRLF, unfinished, too long,
//! not UTF-8). Waiting is always for an observable effect, with a deadline.

use std::fs::{self, File};
use std::io::Write;

use crate::util::{Running, Scene, aegis_on, events, open_append};

/// A pipeline that prints both the lines read and the matches of `ERROR`.
fn lines_and_matches(paths: &str, read_from: &str) -> String {
    format!(
        "sources:
  app:
    type: log_tail
    service: app
    paths: {paths}
    read_from: {read_from}
    scan_interval: 100ms
stages:
  errors:
    type: log_patterns
    inputs: [app]
    patterns:
      - {{name: error, pattern: 'ERROR', severity: warning}}
sinks:
  out:
    type: console
    inputs: [app, errors]
"
    )
}

fn append(file: &mut File, lines: std::ops::Range<usize>) {
    let mut text = String::new();
    for n in lines {
        let level = if n % 10 == 0 { "ERROR" } else { "INFO" };
        text += &format!("line {n} {level} something happened\n");
    }
    file.write_all(text.as_bytes()).expect("appended");
}

fn line_count(out: &[String]) -> usize {
    out.iter()
        .filter(|line| line.starts_with(r#"{"event":"log_line""#))
        .count()
}

/// The numbers of the lines printed (`line N ...`), in the order printed.
fn line_numbers(out: &[String]) -> Vec<usize> {
    events(out, "log_line")
        .map(|event| {
            event["line"]
                .as_str()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Checks that lines 0..count were each printed exactly once, in the order they were
/// written (a rotated file is drained before the file that replaced it), and their
/// matches too.
fn assert_exactly(out: &[String], count: usize) {
    assert_eq!(
        line_numbers(out),
        (0..count).collect::<Vec<_>>(),
        "every line exactly once, in order"
    );
    assert_eq!(events(out, "log_match").count(), count / 10, "matches");
}

#[test]
fn appends_are_seen_and_lines_before_the_start_are_not() {
    let scene = Scene::new();
    fs::write(scene.path("app.log"), "old ERROR line, before the start\n").unwrap();
    scene.config(&lines_and_matches("[app.log]", "end"));
    let mut aegis = scene.run(&[]);
    aegis.wait_err("Following file.", 1);
    let mut file = open_append(&scene.path("app.log"));
    // Each append must come out within the PATIENCE of `wait_out`; how soon is the
    // machine's business (that notifications, not the scan, bring lines is pinned in
    // live_path.rs with an hour-long scan interval).
    for n in 0..5 {
        writeln!(file, "ERROR number {n}").unwrap();
        let expected = format!("ERROR number {n}");
        aegis.wait_out("the appended match", |out| {
            events(out, "log_match").any(|m| m["line"] == expected.as_str())
        });
    }
    assert!(
        !aegis
            .out
            .iter()
            .any(|line| line.contains("before the start")),
        "read_from: end"
    );
    assert!(aegis.terminate().success());
}

#[test]
fn rename_rotation_twice_loses_and_repeats_no_line() {
    let scene = Scene::new();
    let mut first = open_append(&scene.path("app.log"));
    append(&mut first, 0..1000);
    scene.config(&lines_and_matches("[app.log]", "beginning"));
    let mut aegis = scene.run(&[]);
    aegis.wait_err("Following file.", 1);

    // Rotation 1: the app keeps writing to the renamed file until it reopens its log.
    fs::rename(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    append(&mut first, 1000..1100);
    let mut second = open_append(&scene.path("app.log"));
    append(&mut second, 1100..2000);
    // A tailer must have opened a file before it is renamed away again.
    aegis.wait_err("Following file.", 2);

    // Rotation 2, the same way.
    fs::rename(scene.path("app.log"), scene.path("app.log.2")).unwrap();
    append(&mut second, 2000..2050);
    let mut third = open_append(&scene.path("app.log"));
    append(&mut third, 2050..3000);

    aegis.wait_out("3000 lines", |out| line_count(out) >= 3000);
    assert!(aegis.terminate().success());
    assert_exactly(&aegis.out, 3000);
}

#[test]
fn copytruncate_twice_loses_and_repeats_no_line() {
    let scene = Scene::new();
    let mut file = open_append(&scene.path("app.log"));
    append(&mut file, 0..1000);
    scene.config(&lines_and_matches("[app.log]", "beginning"));
    let mut aegis = scene.run(&[]);
    // copytruncate loses whatever was not read before the truncation, for any tailer:
    // each round waits until everything so far was read.
    aegis.wait_out("1000 lines", |out| line_count(out) >= 1000);
    for (round, lines) in [(1, 1000..2500), (2, 2500..3000)] {
        fs::copy(
            scene.path("app.log"),
            scene.path(&format!("app.log.{round}")),
        )
        .unwrap();
        file.set_len(0).unwrap();
        let end = lines.end;
        append(&mut file, lines);
        aegis.wait_out("the lines after the truncation", |out| {
            line_count(out) >= end
        });
    }
    assert!(aegis.terminate().success());
    assert_exactly(&aegis.out, 3000);
}

#[test]
fn files_and_folders_created_after_start_are_picked_up() {
    let scene = Scene::new();
    let mut present = open_append(&scene.path("present.log"));
    append(&mut present, 0..10);
    scene.config(&lines_and_matches(
        "[present.log, later.log, 'logs/*.log']",
        "beginning",
    ));
    let mut aegis = scene.run(&[]);
    aegis.wait_out("the present file", |out| line_count(out) >= 10);

    append(&mut open_append(&scene.path("later.log")), 10..30);
    fs::create_dir(scene.path("logs")).unwrap();
    append(&mut open_append(&scene.path("logs/a.log")), 30..50);
    aegis.wait_out("all 50 lines", |out| line_count(out) >= 50);
    assert!(aegis.terminate().success());
    // Three files: each in order, but no order between them.
    let mut numbers = line_numbers(&aegis.out);
    numbers.sort_unstable();
    assert_eq!(
        numbers,
        (0..50).collect::<Vec<_>>(),
        "every line exactly once"
    );
    assert_eq!(events(&aegis.out, "log_match").count(), 5);
}

#[test]
fn sigterm_exits_0_having_flushed_every_matched_line() {
    let scene = Scene::new();
    File::create(scene.path("app.log")).unwrap();
    scene.config(&lines_and_matches("[app.log]", "end"));
    let mut aegis: Running = scene.run(&[]);
    aegis.wait_err("Following file.", 1);
    let mut file = open_append(&scene.path("app.log"));
    let mut text = String::new();
    for n in 0..5000 {
        text += &format!("ERROR {n}\n");
    }
    text += "ERROR unfinished, no newline";
    file.write_all(text.as_bytes()).unwrap();
    let status = aegis.terminate();
    assert_eq!(status.code(), Some(0), "graceful shutdown");
    let matches: Vec<String> = events(&aegis.out, "log_match")
        .map(|m| m["line"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        matches.len(),
        5001,
        "every line written before the signal, the unfinished one too"
    );
    assert_eq!(matches.last().unwrap(), "ERROR unfinished, no newline");
    assert!(aegis.err.iter().any(|line| line.contains("Shutting down")));
}

#[test]
fn once_counts_awkward_lines_exactly() {
    let scene = Scene::new();
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"ERROR crlf\r\n");
    bytes.extend_from_slice(format!("ERROR long {}\n", "x".repeat(300)).as_bytes());
    bytes.extend_from_slice(b"ERROR bad utf-8 \xff\xfe\n");
    bytes.extend_from_slice(format!("INFO also long {}\n", "y".repeat(200)).as_bytes());
    bytes.extend_from_slice(b"INFO also bad \xc3\n");
    bytes.extend_from_slice(b"ERROR a bare\rCR inside, then the real end\r\n");
    bytes.extend_from_slice(b"ERROR last line without newline");
    fs::write(scene.path("app.log"), &bytes).unwrap();
    let config = lines_and_matches("[app.log]", "end")
        .replace("scan_interval: 100ms", "max_line_bytes: 100");
    scene.config(&config.replace(
        "pattern: 'ERROR'",
        r"pattern: 'ERROR.*(crlf|newline|\x{FFFD}|real end)$'",
    ));
    let output = aegis_on(
        &["run", "--once", "--format", "json"],
        &scene.path("config.yaml"),
    );
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).expect("valid UTF-8 out, whatever came in");
    let report: serde_json::Value =
        serde_json::from_str(&stdout[stdout.find("{\n").unwrap()..]).unwrap();
    let file = &report["files"][0];
    assert_eq!(
        (
            file["lines"].as_u64(),
            file["cut"].as_u64(),
            file["lossy"].as_u64()
        ),
        (Some(7), Some(2), Some(2))
    );
    // Each kind of bad line is logged once per file, and counted every time.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("Line longer than max_line_bytes").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("Line with invalid UTF-8").count(),
        1,
        "{stderr}"
    );
    // `$` holds before CRLF; the lossy line is matched after repair; the cut line is not
    // matched past its bound; the last line counts though it has no newline.
    assert_eq!(report["patterns"][0]["matches"], 4, "{report}");
    let lines: Vec<String> = stdout.lines().take(7).map(String::from).collect();
    let printed: Vec<String> = events(&lines, "log_line")
        .map(|e| e["line"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(printed[0], "ERROR crlf");
    assert_eq!(printed[1].len(), 100);
    assert_eq!(printed[2], "ERROR bad utf-8 \u{fffd}\u{fffd}");
}
