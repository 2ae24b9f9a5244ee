//! Paths written in a configuration, resolved against the configuration's folder.
//!
//! A relative path in a configuration file means a path from that file's folder
//! (absolute, see `config::folder_of`), never from the folder Aegis happens to be
//! started in. Resolved paths are also normalised: `.` steps go and `dir/..` pairs
//! collapse, so that `./app.log` and `logs/../app.log` name `app.log` as one path,
//! which is what logs, metrics and the `--once` summary show.

use std::path::{Component, Path, PathBuf};

/// `configured` taken from `base` (an absolute folder), normalised.
pub fn resolve(base: &Path, configured: &Path) -> PathBuf {
    normalize(&base.join(configured))
}

/// `path` without `.` steps and with each `name/..` pair removed. Lexical only: the
/// base folder's symbolic links were resolved when it was made absolute, and a link
/// inside the configured part is taken at its word, as a shell's `cd` would.
pub fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                // `/..` is `/`; a relative path keeps a leading `..` it cannot resolve.
                let popped = matches!(normal.components().next_back(), Some(Component::Normal(_)))
                    && normal.pop();
                if !popped && !normal.has_root() {
                    normal.push("..");
                }
            }
            other => normal.push(other),
        }
    }
    if normal.as_os_str().is_empty() {
        normal.push(".");
    }
    normal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_start_at_the_base_and_are_normalised() {
        let base = Path::new("/etc/aegis");
        assert_eq!(
            resolve(base, Path::new("app.log")),
            Path::new("/etc/aegis/app.log")
        );
        assert_eq!(
            resolve(base, Path::new("./*.log")),
            Path::new("/etc/aegis/*.log")
        );
        assert_eq!(
            resolve(base, Path::new("../tests/fixtures/a.log")),
            Path::new("/etc/tests/fixtures/a.log")
        );
        assert_eq!(
            resolve(base, Path::new("/var/log/x.log")),
            Path::new("/var/log/x.log")
        );
        assert_eq!(normalize(Path::new("/../a/./b/../c")), Path::new("/a/c"));
        assert_eq!(normalize(Path::new("../a/..")), Path::new(".."));
        assert_eq!(normalize(Path::new("a/..")), Path::new("."));
    }
}
