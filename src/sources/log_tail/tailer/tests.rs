//! The tailer on real files in a temporary folder, with time driven by hand.

use super::*;
use std::fs::{self, File, OpenOptions};
use std::io::Write;

const WAIT: Duration = Duration::from_secs(5);

struct Scene {
    dir: tempfile::TempDir,
    tailer: Tailer,
    now: Instant,
    lines: Vec<String>,
    /// The name each line was reported under, in the same order.
    names: Vec<String>,
}

impl Scene {
    fn new(targets: &[&str], start_at_end: bool) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let tailer = tailer_of(dir.path(), targets, start_at_end, "tail", Arc::default());
        Scene {
            dir,
            tailer,
            now: Instant::now(),
            lines: Vec::new(),
            names: Vec::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, name: &str, lines: std::ops::Range<usize>) -> File {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path(name))
            .unwrap();
        for n in lines {
            writeln!(file, "line {n}").unwrap();
        }
        file
    }

    /// Polls until idle, as the source does, collecting the lines read.
    fn poll_with(&mut self, mut due: Due) {
        let mut out = Vec::new();
        while self.tailer.poll(self.now, &due, 1 << 20, &mut out) == Progress::More {
            due = Due::default();
        }
        for chunk in out {
            let text = std::str::from_utf8(&chunk.block.text).unwrap();
            for line in text.lines() {
                self.lines.push(line.to_owned());
                self.names.push(chunk.path.to_string());
            }
        }
    }

    /// A poll after a notification that names changed (or the scan interval).
    fn poll(&mut self, rescan: bool) {
        self.poll_with(Due {
            rescan,
            everything: true,
            modified: HashSet::new(),
        });
    }

    fn later(&mut self, by: Duration) {
        self.now += by;
    }

    /// Every line written so far, each once, in the order written.
    fn expect(&self, count: usize) {
        let expected: Vec<String> = (0..count).map(|n| format!("line {n}")).collect();
        assert_eq!(self.lines, expected, "every line exactly once, in order");
    }
}

fn tailer_of(
    base: &Path,
    targets: &[&str],
    start_at_end: bool,
    owner: &str,
    registry: Arc<FileRegistry>,
) -> Tailer {
    let targets = targets.iter().map(|t| Target::new(base, t)).collect();
    let options = TailerOptions {
        start_at_end,
        max_line: 1000,
        rotate_wait: WAIT,
        once: false,
    };
    Tailer::new(owner.into(), registry, targets, options)
}

#[test]
fn rename_rotation_drains_the_old_file_including_late_writes() {
    let mut scene = Scene::new(&["app.log"], false);
    let mut old = scene.append("app.log", 0..100);
    scene.poll(false);
    fs::rename(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    for n in 100..110 {
        writeln!(old, "line {n}").unwrap(); // the app has not reopened its log yet
    }
    scene.append("app.log", 110..200);
    scene.poll(true);
    scene.expect(200);

    // A second rotation; the retired first file is closed once it stayed idle.
    fs::rename(scene.path("app.log"), scene.path("app.log.2")).unwrap();
    scene.append("app.log", 200..300);
    scene.later(WAIT);
    scene.poll(true);
    scene.expect(300);
    assert_eq!(
        scene.tailer.retired.len(),
        1,
        "only the second rotated file is still drained"
    );
}

#[test]
fn a_rotated_file_is_closed_only_once_read_to_its_end() {
    let mut scene = Scene::new(&["a.log", "b.log"], false);
    let mut a = scene.append("a.log", 0..1);
    let mut b = scene.append("b.log", 1..2);
    scene.poll(false);
    fs::rename(scene.path("a.log"), scene.path("a.log.1")).unwrap();
    fs::rename(scene.path("b.log"), scene.path("b.log.1")).unwrap();
    scene.poll(true); // both retired, both at their end
    scene.later(WAIT);
    // Late writes to both; a's fill the budget of the next poll, so b's rotated file
    // is not read in it and must not be closed in it either.
    for n in 2..200 {
        writeln!(a, "line {n}").unwrap();
    }
    writeln!(b, "line 200").unwrap();
    let mut out = Vec::new();
    assert_eq!(
        scene.tailer.poll(scene.now, &Due::default(), 64, &mut out),
        Progress::More
    );
    assert_eq!(
        scene.tailer.retired.len(),
        2,
        "b's rotated file is still open"
    );
    scene.poll(false);
    let mut seen: Vec<String> = out
        .iter()
        .flat_map(|chunk| {
            std::str::from_utf8(&chunk.block.text)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .chain(scene.lines.iter().cloned())
        .collect();
    seen.sort_by_key(|line| line[5..].parse::<usize>().unwrap());
    assert_eq!(
        seen,
        (0..201).map(|n| format!("line {n}")).collect::<Vec<_>>()
    );
}

#[test]
fn a_busy_file_does_not_starve_the_others() {
    let mut scene = Scene::new(&["busy.log", "quiet.log"], false);
    scene.append("busy.log", 0..10_000);
    scene.append("quiet.log", 10_000..10_001);
    let mut polls = 0;
    let mut out = Vec::new();
    let mut due = Due::everything();
    while !out
        .iter()
        .any(|chunk: &Chunk| chunk.path.ends_with("quiet.log"))
    {
        assert_eq!(
            scene.tailer.poll(scene.now, &due, 64, &mut out),
            Progress::More,
            "busy.log is far from read"
        );
        due = Due::default();
        polls += 1;
        assert!(polls <= 2, "quiet.log waited {polls} polls");
    }
}

#[test]
fn only_the_files_said_to_have_changed_are_read() {
    let mut scene = Scene::new(&["*.log"], false);
    scene.append("a.log", 0..1);
    scene.append("b.log", 1..2);
    scene.poll(true);
    scene.append("a.log", 2..3);
    scene.append("b.log", 3..4);
    scene.poll_with(Due {
        modified: HashSet::from([scene.path("a.log")]),
        ..Due::default()
    });
    assert_eq!(
        scene.lines,
        ["line 0", "line 1", "line 2"],
        "b.log not read"
    );
    scene.poll(false);
    assert_eq!(
        scene.lines.last().unwrap(),
        "line 3",
        "read when its turn came"
    );
}

#[test]
fn a_rename_inside_a_glob_is_the_same_file_and_keeps_its_name() {
    let mut scene = Scene::new(&["app.log*"], false);
    scene.append("app.log", 0..50);
    scene.poll(false);
    fs::rename(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    scene.append("app.log.1", 50..60);
    scene.append("app.log", 60..70);
    scene.poll(true);
    scene.expect(70);
    let name = |n: usize| scene.names[n].rsplit('/').next().unwrap().to_owned();
    assert_eq!((name(55), name(65)), ("app.log".into(), "app.log".into()));
}

#[test]
fn a_retired_file_that_reappears_resumes_where_it_stopped() {
    let mut scene = Scene::new(&["app.log", "archive/*.log"], false);
    fs::create_dir(scene.path("archive")).unwrap();
    scene.append("app.log", 0..30);
    scene.poll(false);
    fs::rename(scene.path("app.log"), scene.path("moved.log")).unwrap();
    scene.poll(true);
    scene.later(WAIT);
    scene.poll(false); // idle for rotate_wait: closed and remembered
    assert!(scene.tailer.retired.is_empty());
    fs::rename(scene.path("moved.log"), scene.path("archive/old.log")).unwrap();
    scene.append("archive/old.log", 30..40);
    scene.poll(true);
    scene.expect(40);
}

#[test]
fn copytruncate_is_read_again_from_the_start() {
    let mut scene = Scene::new(&["app.log"], false);
    let mut file = scene.append("app.log", 0..20);
    scene.poll(false);
    fs::copy(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    file.set_len(0).unwrap();
    for n in 20..80 {
        writeln!(file, "line {n}").unwrap(); // grows past the old size at once
    }
    scene.poll(false);
    scene.expect(80);
}

/// See issue 8: with `app.log*`, the copy logrotate's `copytruncate` makes was read
/// again from its start, doubling every line.
#[test]
fn a_copy_matched_by_the_glob_gives_exactly_the_lines_not_read_yet() {
    // Another file, read before app.log: the copy's lines must still come before the
    // truncated file's new ones.
    let mut scene = Scene::new(&["aaa.log", "app.log*"], false);
    File::create(scene.path("aaa.log")).unwrap();
    let mut file = scene.append("app.log", 0..20);
    scene.poll(true);
    // Written after the last read, then copied and truncated before any read: only
    // the copy has these lines.
    for n in 20..30 {
        writeln!(file, "line {n}").unwrap();
    }
    fs::copy(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    file.set_len(0).unwrap();
    for n in 30..40 {
        writeln!(file, "line {n}").unwrap();
    }
    scene.poll(true);
    scene.expect(40);
    // The copy's lines are the original's: they carry its name.
    assert!(scene.names.iter().all(|name| name.ends_with("/app.log")));

    // The second rotation: logrotate shifts the old copy along, copies and truncates.
    fs::rename(scene.path("app.log.1"), scene.path("app.log.2")).unwrap();
    for n in 40..45 {
        writeln!(file, "line {n}").unwrap();
    }
    scene.poll(false); // read 40..45 of the original
    for n in 45..50 {
        writeln!(file, "line {n}").unwrap();
    }
    fs::copy(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    scene.poll(true); // the copy is seen before the truncation: held back
    assert_eq!(scene.tailer.held_back().len(), 1);
    file.set_len(0).unwrap();
    writeln!(file, "line 50").unwrap();
    scene.poll(false);
    scene.expect(51);
    assert!(scene.tailer.held_back().is_empty());
}

/// Found under load by live_path's 200k lines/s copytruncate test: a read that ended
/// inside a line (a write seen half done), then a copy and a truncation. The start of
/// the line came out as a line at the truncation, and its end as another, read from
/// the copy.
#[test]
fn a_line_unfinished_at_a_copytruncate_comes_whole_from_the_copy() {
    let mut scene = Scene::new(&["app.log*"], false);
    let mut file = scene.append("app.log", 0..20);
    write!(file, "line 2").unwrap();
    scene.poll(true);
    scene.expect(20);
    writeln!(file, "0").unwrap();
    scene.append("app.log", 21..30);
    fs::copy(scene.path("app.log"), scene.path("app.log.1")).unwrap();
    file.set_len(0).unwrap();
    scene.append("app.log", 30..40);
    scene.poll(false);
    scene.poll(false);
    scene.expect(40);
}

/// Without a copy to read it from, the start of the line is all there is: passed on.
#[test]
fn a_line_unfinished_at_a_truncation_without_a_copy_is_passed_on() {
    let mut scene = Scene::new(&["app.log"], false);
    let mut file = scene.append("app.log", 0..20);
    write!(file, "line 20").unwrap();
    scene.poll(true);
    file.set_len(0).unwrap();
    scene.append("app.log", 21..40);
    scene.poll(false);
    scene.poll(false);
    scene.expect(40);
}

#[test]
fn a_copy_of_a_file_still_being_written_is_held_back() {
    let mut scene = Scene::new(&["*.log"], false);
    scene.append("app.log", 0..10);
    scene.poll(true);
    fs::copy(scene.path("app.log"), scene.path("backup.log")).unwrap();
    scene.append("app.log", 10..20);
    scene.poll(true);
    scene.expect(20);
    assert_eq!(scene.tailer.held_back()[0].0, scene.path("backup.log"));
}

/// A new file that begins as a followed one does (a header they share) may be a copy
/// caught while it is written, and waits; written to again and now told apart, it is
/// read at once, from its beginning, without waiting for a look at names.
#[test]
fn a_new_file_held_for_its_first_bytes_is_read_once_written_to_and_told_apart() {
    let mut scene = Scene::new(&["*.log"], false);
    let header = "#Software: shop 1.0\n";
    fs::write(scene.path("a.log"), format!("{header}line 0\nline 1\n")).unwrap();
    scene.poll(true);
    fs::write(scene.path("b.log"), header).unwrap();
    scene.poll(true);
    assert_eq!(scene.tailer.held_back()[0].0, scene.path("b.log"));
    scene.append("b.log", 2..3);
    scene.poll_with(Due {
        modified: HashSet::from([scene.path("b.log")]),
        ..Due::default()
    });
    assert!(scene.tailer.held_back().is_empty());
    assert_eq!(
        scene.lines,
        [
            header.trim_end(),
            "line 0",
            "line 1",
            header.trim_end(),
            "line 2"
        ]
    );
}

#[test]
fn one_file_by_two_paths_or_two_tails_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.log"), "line 0\n").unwrap();
    let registry = Arc::new(FileRegistry::default());
    let mut first = tailer_of(
        dir.path(),
        &["app.log", "./app.log", "*.log"],
        false,
        "first",
        Arc::clone(&registry),
    );
    let mut second = tailer_of(dir.path(), &["app.log"], false, "second", registry);
    let mut out = Vec::new();
    first.poll(Instant::now(), &Due::everything(), 1 << 20, &mut out);
    second.poll(Instant::now(), &Due::everything(), 1 << 20, &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].block.lines, 1);
}

#[test]
fn files_created_later_are_read_from_their_beginning() {
    let mut scene = Scene::new(&["app.log", "*.out"], true);
    scene.append("present.out", 0..5);
    scene.poll(false);
    assert!(
        scene.lines.is_empty(),
        "read_from end skips what was there at start"
    );
    scene.append("present.out", 5..10);
    scene.append("app.log", 10..15);
    scene.append("new.out", 15..20);
    scene.poll(true);
    let mut seen = scene.lines.clone();
    seen.sort();
    assert_eq!(seen.len(), 15);
    assert!(!seen.contains(&"line 0".to_owned()));
    assert!(scene.tailer.unmatched().is_empty());
}

#[test]
fn paths_that_cannot_be_followed_are_passed_over() {
    let mut scene = Scene::new(&["*"], false);
    fs::create_dir(scene.path("folder.log")).unwrap();
    std::os::unix::fs::symlink(scene.path("loop"), scene.path("loop")).unwrap();
    scene.append("app.log", 0..3);
    scene.poll(true);
    scene.expect(3);
    assert_eq!(
        scene.tailer.statuses.get(&scene.path("folder.log")),
        Some(&Status::Unfollowable(Unfollowable::Directory))
    );
    assert_eq!(
        scene.tailer.statuses.get(&scene.path("loop")),
        Some(&Status::Unfollowable(Unfollowable::SymlinkLoop))
    );
}

#[test]
fn only_the_configured_part_of_a_path_is_a_glob() {
    let base = Path::new("/etc/aegis[1]");
    let Target::Glob { pattern, folder } = Target::new(base, "logs/*.log") else {
        panic!("a glob")
    };
    assert_eq!(folder, Path::new("/etc/aegis[1]/logs"));
    assert!(pattern.matches_path(Path::new("/etc/aegis[1]/logs/app.log")));
    assert!(!pattern.matches_path(Path::new("/etc/aegis1/logs/app.log")));
    let Target::Glob { folder, .. } = Target::new(base, "/var/log/*/app.log") else {
        panic!("a glob")
    };
    assert_eq!(
        folder,
        Path::new("/var/log"),
        "an absolute glob ignores the base"
    );
    assert!(
        matches!(Target::new(base, "app.log"), Target::Path(path) if path == Path::new("/etc/aegis[1]/app.log"))
    );
    let Target::Glob { folder, pattern } = Target::new(base, "./../x/*.log") else {
        panic!("a glob")
    };
    assert_eq!(folder, Path::new("/etc/x"), "normalised");
    assert_eq!(pattern.as_str(), "/etc/x/*.log");
}

#[test]
fn unmatched_targets_are_reported() {
    let mut scene = Scene::new(&["missing.log", "none/*.log"], false);
    scene.poll(false);
    let unmatched = scene.tailer.unmatched();
    assert_eq!(unmatched.len(), 2);
    assert!(unmatched[0].ends_with("missing.log") && unmatched[1].ends_with("none/*.log"));
    assert_eq!(
        scene.tailer.folders(),
        [scene.dir.path().to_path_buf(), scene.path("none")]
    );
}

#[test]
fn local_files_are_read_where_the_pipeline_runs() {
    let mut scene = Scene::new(&["app.log", "*.log", "later/deeper/*.log"], false);
    assert!(
        !scene.tailer.may_block(),
        "files here, a glob here, and a folder not made yet below this one are local"
    );
    scene.poll(false);
    assert!(!scene.tailer.may_block());
}
