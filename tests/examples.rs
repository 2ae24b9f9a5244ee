//! Every shipped example must load: the files in `config/` and `pipelines/` are
//! validated and expanded, so that none of them can rot.

use crate::util::{Scene, aegis_on, aegis_succeeds, repo};

fn example_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for folder in ["config", "pipelines"] {
        for entry in std::fs::read_dir(repo().join(folder)).expect("examples folder") {
            let path = entry.expect("entry").path();
            if path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_example_validates_and_expands() {
    let files = example_files();
    assert!(
        files.len() >= 4,
        "two service-centric and two pipeline examples at least: {files:?}"
    );
    for file in files {
        let validated = aegis_on(&["validate"], &file);
        let stderr = String::from_utf8_lossy(&validated.stderr);
        assert!(
            validated.status.success(),
            "{} does not validate:\n{stderr}",
            file.display()
        );
        assert!(String::from_utf8_lossy(&validated.stdout).contains(": valid ("));

        let expanded = aegis_on(&["config", "expand"], &file);
        assert!(
            expanded.status.success(),
            "{} does not expand",
            file.display()
        );
        let yaml = String::from_utf8_lossy(&expanded.stdout).into_owned();
        assert!(
            yaml.contains("sources:") && yaml.contains("sinks:"),
            "{yaml}"
        );

        // The expansion is itself a configuration, and an equivalent one. (Files need
        // not exist to load, so the copy may live elsewhere.)
        let scene = Scene::new();
        let copy = scene.config(&yaml);
        let again = aegis_on(&["config", "expand"], &copy);
        assert!(
            again.status.success(),
            "the expansion of {} does not load",
            file.display()
        );
        assert_eq!(
            String::from_utf8_lossy(&again.stdout),
            yaml,
            "expanding twice changes nothing"
        );
    }
}

/// The seed configuration as it was handed over, byte for byte: `config/` holds the
/// example users read, `tests/fixtures/` the copy it is compared with. It used to be
/// compared with a file outside the repository, and only when that file was there, so
/// on a clean checkout the comparison never ran.
#[test]
fn the_seed_configuration_loads_unchanged_and_its_anomaly_block_is_checked() {
    let seed = repo().join("config/seed-phase2.yaml");
    let original = repo().join("tests/fixtures/seed-phase2.yaml");
    assert_eq!(
        std::fs::read(&seed).expect("config/seed-phase2.yaml"),
        std::fs::read(&original).expect("tests/fixtures/seed-phase2.yaml"),
        "config/seed-phase2.yaml is the seed, unchanged"
    );
    let output = aegis_on(&["validate"], &seed);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("not active"), "{stderr}");
    // Its thresholds are checked, and its one service has no traffic to judge: the
    // warning says how to give it some.
    assert!(
        stderr.contains("seed-phase2.yaml:13:1: anomaly_detection: nothing to judge yet"),
        "{stderr}"
    );
    let expanded = aegis_on(&["config", "expand"], &seed);
    let yaml = String::from_utf8_lossy(&expanded.stdout);
    assert!(
        yaml.contains("example-service.log_tail.0:") && yaml.contains("scan_interval: 1m"),
        "{yaml}"
    );
    assert!(
        yaml.contains(r"pattern: (?i)(out of memory|java\.lang\.OutOfMemoryError)"),
        "{yaml}"
    );
}

/// The README's complete example is a configuration that loads, with the secret it
/// names in the environment.
#[test]
fn the_readme_example_configuration_validates() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let from = readme
        .find("A complete configuration")
        .expect("the README's example");
    let block = &readme[from..];
    let start = block.find("```yaml\n").expect("its YAML block") + "```yaml\n".len();
    let end = start + block[start..].find("```").expect("the block's end");
    let scene = Scene::new();
    let file = scene.config(&block[start..end]);
    aegis_succeeds(&["validate"], &file, &[("OPS_TOKEN", "token")]);
}
