//! Configuration checks that a golden case under `tests/config_errors/` cannot hold:
//! files too big to commit, generated here, and what a configuration that loads with
//! warnings prints and expands to.

use std::fs::File;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::util::{Scene, aegis};

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
/// at the line where the limit is passed.
#[test]
fn deeply_nested_yaml_is_refused_at_once() {
    let block_maps: String = (0..710)
        .map(|i| format!("{}a:\n", "  ".repeat(i)))
        .collect();
    let cases = [
        ("flow sequences", "[".repeat(100_000), 1),
        (
            "flow maps",
            format!("a: {}1{}\n", "{a: ".repeat(125_000), "}".repeat(125_000)),
            1,
        ),
        // Line i opens level i; level 65 is one too many.
        ("block maps", block_maps, 65),
        ("block sequences", format!("{}x\n", "- ".repeat(250_000)), 1),
    ];
    for (what, text, line) in cases {
        let scene = Scene::new();
        let config = scene.config(&text);
        let output = validate_within(&scene, &config, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("{what}: `aegis validate` took 2 s or more"));
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
/// reported.
#[test]
fn a_flood_of_errors_is_collected_in_linear_time() {
    let scene = Scene::new();
    let config = scene.config(&"a: 1\n".repeat(30_000));
    let output = validate_within(&scene, &config, Duration::from_secs(2))
        .expect("`aegis validate` took 2 s or more");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    let file = config.display();
    assert!(
        stderr.starts_with(&format!(
            "error: {file}:2:1: a: key given twice (first at line 1)"
        )) && stderr.ends_with(&format!("\n29999 errors in {file}\n")),
        "{}",
        &stderr[..stderr.len().min(500)]
    );
}
