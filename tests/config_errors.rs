//! Golden tests for configuration errors: each folder under `tests/config_errors/`
//! holds a broken `config.yaml` and the exact `error.txt` that `aegis validate` must
//! print for it (and exit 2). The messages are the interface users read, so any change
//! to them shows up here.
//!
//! To write the expected files after a deliberate change of wording, run the tests
//! with `AEGIS_BLESS=1` and review the diff.

use std::path::Path;

use crate::util::{aegis, repo};

#[test]
fn every_broken_config_gives_its_exact_error_and_exit_code_2() {
    let cases = repo().join("tests/config_errors");
    let mut names: Vec<_> = std::fs::read_dir(&cases)
        .expect("cases folder")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    assert!(
        names.len() >= 12,
        "a dozen cases at least, found {}",
        names.len()
    );
    let mut failures = Vec::new();
    for case in &names {
        if let Err(failure) = check(case) {
            failures.push(failure);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

fn check(case: &Path) -> Result<(), String> {
    let name = case
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    // Run from the case's folder, so the file is named as users would name it.
    let output = aegis()
        .current_dir(case)
        .args(["validate", "config.yaml"])
        .output()
        .expect("aegis runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let expected_path = case.join("error.txt");
    if std::env::var_os("AEGIS_BLESS").is_some() {
        std::fs::write(&expected_path, &stderr).expect("error.txt written");
    }
    let expected = std::fs::read_to_string(&expected_path)
        .map_err(|e| format!("{name}: no error.txt: {e}"))?;
    if output.status.code() != Some(2) {
        return Err(format!(
            "{name}: exit code {:?}, expected 2; stderr:\n{stderr}",
            output.status.code()
        ));
    }
    if stderr != expected {
        return Err(format!(
            "{name}: the error changed.\n--- expected:\n{expected}--- got:\n{stderr}"
        ));
    }
    if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
        return Err(format!(
            "{name}: a panic is not an error message:\n{stderr}"
        ));
    }
    Ok(())
}
