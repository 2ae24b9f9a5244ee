//! The crate's floors (docs/architecture.md, "Floors"): a module of `src/` may use
//! the modules of its own top-level module and of lower floors, never a higher floor,
//! and the components of one floor know nothing of each other (a source nothing of
//! sinks). Checked on the `crate::` paths of every file, so that a shortcut across
//! floors fails here rather than growing into a cycle.

use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and its floor, from the bottom.
const FLOORS: &[(&str, u8)] = &[
    ("base", 0),
    ("http_client", 1),
    ("sources", 2),
    ("stages", 2),
    ("sinks", 2),
    ("config", 3),
    ("pipeline", 4),
    ("demo", 5),
];

fn floor_of(module: &str) -> Option<u8> {
    FLOORS
        .iter()
        .find(|(name, _)| *name == module)
        .map(|(_, floor)| *floor)
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules a file names in `crate::` paths, each with its line.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            // `aegis_crate::` or `$crate::` is not this crate's path.
            let before = rest[..at].chars().next_back();
            let module: String = rest[at + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
                found.push((number + 1, module));
            }
            rest = &rest[at + "crate::".len()..];
        }
    }
    found
}

#[test]
fn no_module_uses_a_higher_floor_or_a_neighbour() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let top = top.to_str().unwrap().trim_end_matches(".rs");
        // The crate root and the binary stand above every floor.
        if top == "lib" || top == "main" {
            continue;
        }
        let floor = floor_of(top).unwrap_or_else(|| {
            panic!("src/{top} is on no floor: add it to FLOORS and to docs/architecture.md")
        });
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in crate_paths(&text) {
            checked += 1;
            let Some(used_floor) = floor_of(&used) else {
                wrong.push(format!(
                    "{}:{line}: `crate::{used}` is on no floor",
                    relative.display()
                ));
                continue;
            };
            if used != top && used_floor >= floor {
                wrong.push(format!(
                    "{}:{line}: `{top}` (floor {floor}) uses `crate::{used}` (floor {used_floor})",
                    relative.display()
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} paths found: is src/ where it was?"
    );
    assert!(
        wrong.is_empty(),
        "paths across floors:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_check_sees_a_path_upwards() {
    let paths =
        crate_paths("use crate::pipeline::graph::Graph; let x = $crate::y; crate::base::event");
    assert_eq!(paths, [(1, "pipeline".to_owned()), (1, "base".to_owned())]);
}
