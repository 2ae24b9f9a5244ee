//! Follows a set of files named by paths and globs: which files to read, through
//! renames, rotations and truncations, without losing or repeating a line.
//!
//! Files are known by identity (device and inode), not by name. On every poll the
//! tailer looks at what each configured path (and each file a glob matched at the last
//! rescan) is now, and reconciles:
//!
//! - a file it already reads, under the same or another name, keeps its reader and
//!   offset (a rename within a glob is not a new file);
//! - a file it has never seen gets a new reader, from the beginning (or, only for
//!   files present at startup with `read_from: end`, from the end);
//! - a reader whose file is no longer at any path (renamed away by rotation, or
//!   deleted) is *retired*: it keeps being read, since the writing process may still
//!   write to it until it reopens its log, and is closed once it has stayed at end of
//!   file for `rotate_wait`. Its offset is remembered, with its first bytes, so that
//!   if it shows up again under a name a glob matches it resumes rather than restarts.
//!
//! A file truncated in place (copytruncate) is noticed by its reader and read again
//! from the start. The tailer does no waiting and takes the time as an argument; the
//! source around it decides when to poll (file-change notifications, a scan interval).

use std::collections::{HashSet, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::reader::{Block, FileReader, Identity, ReadOutcome, Start};
use crate::config::paths::{normalize, resolve};

/// How many closed files are remembered, to resume them if they reappear.
const REMEMBERED_FILES: usize = 1024;

/// One configured path or glob, taken from the configuration's folder if relative.
#[derive(Clone, Debug)]
pub enum Target {
    Path(PathBuf),
    /// `folder` is the deepest folder of the glob without glob syntax: where new
    /// matches appear, and so where a watcher should look.
    Glob {
        pattern: glob::Pattern,
        folder: PathBuf,
    },
}

/// Whether a path component holds glob syntax.
fn is_glob(text: &str) -> bool {
    text.contains(['*', '?', '['])
}

impl Target {
    /// A target for `configured` (a path or a glob, as written), relative to `base`.
    ///
    /// Only what the user wrote is read as a glob: the folder it is relative to is
    /// escaped, so that a folder named `logs[1]` means itself.
    pub fn new(base: &Path, configured: &str) -> Target {
        let path = resolve(base, Path::new(configured));
        if !is_glob(configured) {
            return Target::Path(path);
        }
        let mut folder = base.to_path_buf();
        let mut rest = Vec::new();
        let configured = normalize(Path::new(configured));
        for component in configured.components() {
            let text = component.as_os_str().to_string_lossy();
            if rest.is_empty() && !is_glob(&text) {
                folder = resolve(&folder, Path::new(&*text));
            } else {
                rest.push(text);
            }
        }
        let escaped = glob::Pattern::escape(&folder.to_string_lossy());
        match glob::Pattern::new(&format!("{escaped}/{}", rest.join("/"))) {
            Ok(pattern) => Target::Glob { pattern, folder },
            // Cannot happen: the configured part was checked when decoded and the rest
            // is escaped. Were it to, the literal path is the safe reading.
            Err(_) => Target::Path(path),
        }
    }

    /// The folder whose entries can change what this target names.
    pub fn folder(&self) -> PathBuf {
        match self {
            Target::Path(path) => path.parent().unwrap_or(Path::new("/")).to_path_buf(),
            Target::Glob { folder, .. } => folder.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct TailerOptions {
    /// Read files present at the first poll from their end (`true`) or beginning.
    pub start_at_end: bool,
    pub max_line: usize,
    /// How long a retired file must stay at its end before it is closed.
    pub rotate_wait: Duration,
}

/// Lines read from one file.
#[derive(Debug)]
pub struct Chunk {
    pub path: Arc<str>,
    pub block: Block,
}

/// Whether a poll read everything there was, or stopped at its budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    Idle,
    More,
}

struct Reading {
    path: PathBuf,
    name: Arc<str>,
    reader: FileReader,
}

struct Retired {
    name: Arc<str>,
    reader: FileReader,
    idle_since: Option<Instant>,
}

struct Remembered {
    identity: Identity,
    head: Vec<u8>,
    offset: u64,
}

pub struct Tailer {
    targets: Vec<Target>,
    options: TailerOptions,
    /// The paths looked at on each poll: plain targets and the last glob matches.
    known: Vec<PathBuf>,
    reading: Vec<Reading>,
    retired: Vec<Retired>,
    remembered: VecDeque<Remembered>,
    started: bool,
    /// Paths whose open failure was already logged, so it is logged once.
    failing: HashSet<PathBuf>,
    /// Where the next poll starts reading, so one busy file cannot starve the others.
    cursor: usize,
}

impl Tailer {
    pub fn new(targets: Vec<Target>, options: TailerOptions) -> Tailer {
        Tailer {
            targets,
            options,
            known: Vec::new(),
            reading: Vec::new(),
            retired: Vec::new(),
            remembered: VecDeque::new(),
            started: false,
            failing: HashSet::new(),
            cursor: 0,
        }
    }

    /// The folders to watch for changes.
    pub fn folders(&self) -> Vec<PathBuf> {
        let mut folders: Vec<PathBuf> = self.targets.iter().map(Target::folder).collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// The configured targets that name no file right now.
    pub fn unmatched(&self) -> Vec<String> {
        self.targets
            .iter()
            .filter(|target| match target {
                Target::Path(path) => !self.known_file(path),
                Target::Glob { pattern, .. } => !self
                    .known
                    .iter()
                    .any(|path| pattern.matches_path(path) && self.known_file(path)),
            })
            .map(|target| match target {
                Target::Path(path) => path.display().to_string(),
                Target::Glob { pattern, .. } => pattern.as_str().to_owned(),
            })
            .collect()
    }

    fn known_file(&self, path: &Path) -> bool {
        self.reading.iter().any(|r| r.path == path)
    }

    /// Reads what there is to read, up to about `budget` bytes, into `out`. With
    /// `rescan`, globs are expanded again first (the first poll always does).
    pub fn poll(
        &mut self,
        now: Instant,
        rescan: bool,
        budget: usize,
        out: &mut Vec<Chunk>,
    ) -> Progress {
        if rescan || !self.started {
            self.expand();
        }
        self.reconcile();
        self.started = true;
        let mut spent = 0;
        // Rotated files first: their lines were written before those of the files that
        // replaced them, and events should come out in the order they were written.
        let mut kept = Vec::with_capacity(self.retired.len());
        let mut more = false;
        for mut retired in std::mem::take(&mut self.retired) {
            let before = retired.reader.offset();
            let at_end =
                !more && drain(&mut retired.reader, &retired.name, budget, &mut spent, out);
            more |= !at_end;
            if retired.reader.offset() != before {
                retired.idle_since = None;
            }
            let idle_since = *retired.idle_since.get_or_insert(now);
            // Closed only once read to its end in this very poll: a file passed over
            // because the budget ran out may hold lines not read yet.
            if at_end && now.duration_since(idle_since) >= self.options.rotate_wait {
                out.extend(retired.reader.flush_partial().map(|block| Chunk {
                    path: retired.name.clone(),
                    block,
                }));
                tracing::info!(path = %retired.name, "Closed rotated file.");
                self.remember(&retired.reader);
            } else {
                kept.push(retired);
            }
        }
        self.retired = kept;
        if more {
            return Progress::More;
        }
        let count = self.reading.len();
        for step in 0..count {
            let index = (self.cursor + step) % count;
            let reading = &mut self.reading[index];
            if !drain(&mut reading.reader, &reading.name, budget, &mut spent, out) {
                // The next poll starts with the file after this one, so that a file
                // that always has more cannot starve the others.
                self.cursor = (index + 1) % count;
                return Progress::More;
            }
        }
        // All read: the next poll starts again with the oldest file, so that a renamed
        // file is read before the file that replaced it.
        self.cursor = 0;
        Progress::Idle
    }

    /// The unfinished last line of every file, as a line: nothing more will be read.
    pub fn finish(&mut self, out: &mut Vec<Chunk>) {
        let readers = self.reading.iter_mut().map(|r| (&r.name, &mut r.reader));
        let retired = self.retired.iter_mut().map(|r| (&r.name, &mut r.reader));
        for (name, reader) in readers.chain(retired) {
            out.extend(reader.flush_partial().map(|block| Chunk {
                path: name.clone(),
                block,
            }));
        }
    }

    fn expand(&mut self) {
        let mut known = Vec::new();
        for target in &self.targets {
            match target {
                Target::Path(path) => known.push(path.clone()),
                Target::Glob { pattern, .. } => match glob::glob(pattern.as_str()) {
                    Ok(paths) => known.extend(paths.flatten().filter(|path| path.is_file())),
                    Err(err) => {
                        tracing::warn!(glob = pattern.as_str(), error = %err, "Cannot expand the glob.")
                    }
                },
            }
        }
        known.sort();
        known.dedup();
        self.failing.retain(|path| known.contains(path));
        self.known = known;
    }

    /// Matches readers to the files now at the known paths (see the module doc).
    fn reconcile(&mut self) {
        let mut present: Vec<(PathBuf, Identity)> = Vec::new();
        let known = std::mem::take(&mut self.known);
        for path in &known {
            match std::fs::metadata(path) {
                Ok(metadata) if metadata.is_file() => {
                    let identity = Identity::of(&metadata);
                    if !present.iter().any(|(_, seen)| *seen == identity) {
                        present.push((path.clone(), identity));
                    }
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => self.log_failure(path, &err),
            }
        }
        self.known = known;
        let mut unplaced: Vec<(Arc<str>, FileReader)> = Vec::new();
        for reading in std::mem::take(&mut self.reading) {
            let still_here = present
                .iter()
                .any(|(path, id)| *path == reading.path && *id == reading.reader.identity());
            if still_here {
                self.reading.push(reading);
            } else {
                unplaced.push((reading.name, reading.reader));
            }
        }
        // Files already being read (now under another name) first, new files after:
        // the order readers are kept in is the order they are read in, oldest first.
        let mut new_files = Vec::new();
        for (path, identity) in present {
            if self.reading.iter().any(|r| r.path == path) {
                continue;
            }
            let known = if let Some(i) = unplaced.iter().position(|(_, r)| r.identity() == identity)
            {
                Some(unplaced.swap_remove(i).1)
            } else if let Some(i) = self
                .retired
                .iter()
                .position(|r| r.reader.identity() == identity)
            {
                Some(self.retired.swap_remove(i).reader)
            } else {
                None
            };
            match known {
                Some(reader) => self.keep_reading(path, reader),
                None => new_files.push((path, identity)),
            }
        }
        for (path, identity) in new_files {
            if let Some(reader) = self.open(&path, identity) {
                self.keep_reading(path, reader);
            }
        }
        let retired = unplaced.into_iter().map(|(name, reader)| Retired {
            name,
            reader,
            idle_since: None,
        });
        self.retired.extend(retired);
    }

    fn keep_reading(&mut self, path: PathBuf, reader: FileReader) {
        let name: Arc<str> = path.display().to_string().into();
        self.reading.push(Reading { path, name, reader });
    }

    fn open(&mut self, path: &Path, identity: Identity) -> Option<FileReader> {
        let remembered = self.remembered.iter().position(|r| r.identity == identity);
        let start = match remembered {
            Some(i) => Start::Offset(self.remembered[i].offset),
            None if !self.started && self.options.start_at_end => Start::End,
            None => Start::Beginning,
        };
        match FileReader::open(path, start, self.options.max_line) {
            Ok(reader) => {
                if let Some(i) = remembered {
                    let seen = self.remembered.remove(i).expect("index from position");
                    // Same inode but other content: the inode was reused by a new file.
                    if !reader.head().starts_with(&seen.head) {
                        return self.open_fresh(path);
                    }
                }
                self.failing.remove(path);
                tracing::info!(path = %path.display(), offset = reader.offset(), "Following file.");
                Some(reader)
            }
            Err(err) => {
                self.log_failure(path, &err);
                None
            }
        }
    }

    fn open_fresh(&mut self, path: &Path) -> Option<FileReader> {
        FileReader::open(path, Start::Beginning, self.options.max_line)
            .map_err(|err| self.log_failure(path, &err))
            .ok()
    }

    fn remember(&mut self, reader: &FileReader) {
        if self.remembered.len() == REMEMBERED_FILES {
            self.remembered.pop_front();
        }
        self.remembered.push_back(Remembered {
            identity: reader.identity(),
            head: reader.head().to_vec(),
            offset: reader.offset(),
        });
    }

    fn log_failure(&mut self, path: &Path, err: &io::Error) {
        if self.failing.insert(path.to_path_buf()) {
            tracing::warn!(path = %path.display(), error = %err, "Cannot read the file; will try again.");
        }
    }
}

/// Reads `reader` to its end or until `spent` reaches `budget`; returns whether it
/// reached the end.
fn drain(
    reader: &mut FileReader,
    name: &Arc<str>,
    budget: usize,
    spent: &mut usize,
    out: &mut Vec<Chunk>,
) -> bool {
    while *spent < budget {
        let before = reader.offset();
        match reader.read_block(budget - *spent) {
            Ok(ReadOutcome::Lines { block, at_end }) => {
                *spent += (reader.offset() - before) as usize;
                if let Some(block) = block {
                    reader.log_first_problems(name, &block);
                    out.push(Chunk {
                        path: name.clone(),
                        block,
                    });
                }
                if at_end {
                    return true;
                }
            }
            Ok(ReadOutcome::Restarted { partial }) => {
                tracing::info!(path = %name, "File was truncated; reading it again from the start.");
                out.extend(partial.map(|block| Chunk {
                    path: name.clone(),
                    block,
                }));
            }
            Err(err) => {
                tracing::warn!(path = %name, error = %err, "Cannot read the file; will try again.");
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, File, OpenOptions};
    use std::io::Write;

    const WAIT: Duration = Duration::from_secs(5);

    struct Scene {
        dir: tempfile::TempDir,
        tailer: Tailer,
        now: Instant,
        lines: Vec<String>,
    }

    impl Scene {
        fn new(targets: &[&str], start_at_end: bool) -> Scene {
            let dir = tempfile::tempdir().unwrap();
            let targets = targets.iter().map(|t| Target::new(dir.path(), t)).collect();
            let options = TailerOptions {
                start_at_end,
                max_line: 1000,
                rotate_wait: WAIT,
            };
            Scene {
                dir,
                tailer: Tailer::new(targets, options),
                now: Instant::now(),
                lines: Vec::new(),
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
        fn poll(&mut self, rescan: bool) {
            let mut out = Vec::new();
            while self.tailer.poll(self.now, rescan, 1 << 20, &mut out) == Progress::More {}
            for chunk in out {
                let text = std::str::from_utf8(&chunk.block.text).unwrap();
                self.lines.extend(text.lines().map(str::to_owned));
            }
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
        scene.poll(false);
        scene.expect(200);

        // A second rotation; the retired first file is closed once it stayed idle.
        fs::rename(scene.path("app.log"), scene.path("app.log.2")).unwrap();
        scene.append("app.log", 200..300);
        scene.later(WAIT);
        scene.poll(false);
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
        scene.poll(false); // both retired, both at their end
        scene.later(WAIT);
        // Late writes to both; a's fill the budget of the next poll, so b's rotated file
        // is not read in it and must not be closed in it either.
        for n in 2..200 {
            writeln!(a, "line {n}").unwrap();
        }
        writeln!(b, "line 200").unwrap();
        let mut out = Vec::new();
        assert_eq!(
            scene.tailer.poll(scene.now, false, 64, &mut out),
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
        while !out
            .iter()
            .any(|chunk: &Chunk| chunk.path.ends_with("quiet.log"))
        {
            assert_eq!(
                scene.tailer.poll(scene.now, false, 64, &mut out),
                Progress::More,
                "busy.log is far from read"
            );
            polls += 1;
            assert!(polls <= 2, "quiet.log waited {polls} polls");
        }
    }

    #[test]
    fn a_rename_inside_a_glob_is_the_same_file() {
        let mut scene = Scene::new(&["app.log*"], false);
        scene.append("app.log", 0..50);
        scene.poll(false);
        fs::rename(scene.path("app.log"), scene.path("app.log.1")).unwrap();
        scene.append("app.log.1", 50..60);
        scene.append("app.log", 60..70);
        scene.poll(true);
        scene.expect(70);
    }

    #[test]
    fn a_retired_file_that_reappears_resumes_where_it_stopped() {
        let mut scene = Scene::new(&["app.log", "archive/*.log"], false);
        fs::create_dir(scene.path("archive")).unwrap();
        scene.append("app.log", 0..30);
        scene.poll(false);
        fs::rename(scene.path("app.log"), scene.path("moved.log")).unwrap();
        scene.poll(false);
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
}
