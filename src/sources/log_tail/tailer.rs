//! Follows a set of files named by paths and globs: which files to read, through
//! renames, rotations, truncations and copies, without losing or repeating a line.
//!
//! Files are known by identity (device and inode), not by name. When names may have
//! changed (a file-change notification said so, the scan interval came, or this is the
//! first poll), the tailer looks at what each configured path (and each file a glob
//! matches) is now, and reconciles:
//!
//! - a file it already reads, under the same or another name, keeps its reader and
//!   offset (a rename within a glob is not a new file);
//! - a file it does not read is placed by the pipeline's [`FileRegistry`]: read from
//!   its beginning (from its end only for files present at startup with
//!   `read_from: end`), resumed where an earlier reading stopped, left to the tail that
//!   already reads it, or, for a copy of a file truncated in place, read from where
//!   reading of the original stopped;
//! - a reader whose file is no longer at any path (renamed away by rotation, or
//!   deleted) is *retired*: it keeps being read, since the writing process may still
//!   write to it until it reopens its log, and is closed once it has stayed at end of
//!   file for `rotate_wait`.
//!
//! Between those, a poll reads only the files that changed (or were left unfinished by
//! the last poll's budget), so that a write to one of a thousand files costs one read.
//! Paths that cannot be followed (a directory, a FIFO, a file on procfs, an unreadable
//! file) are said once each, with the reason, and again when that changes. The tailer
//! does no waiting and takes the time as an argument; the source around it decides
//! when to poll.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use std::{fs, io};

use bytes::BytesMut;

use super::files::{self, Found, OpenError, Unfollowable};
use super::reader::{Block, FileReader, Fingerprint, Identity, ReadOutcome, Start};
use super::registry::{FileRegistry, Placement};
use crate::base::paths::{normalize, resolve};
use crate::base::text::Escaped;

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

    fn matches(&self, path: &Path) -> bool {
        match self {
            Target::Path(target) => target == path,
            Target::Glob { pattern, .. } => pattern.matches_path(path),
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
    /// One pass (`run --once`): a file that cannot be read is left out, not retried.
    pub once: bool,
}

/// What a poll is to look at.
#[derive(Debug, Default)]
pub struct Due {
    /// Look for files again: expand the globs, look at every path.
    pub rescan: bool,
    /// Read every file, not only those known to have changed.
    pub everything: bool,
    /// Files known to have been written to.
    pub modified: HashSet<PathBuf>,
}

impl Due {
    /// Everything: look for files and read them all.
    pub fn everything() -> Due {
        Due {
            rescan: true,
            everything: true,
            modified: HashSet::new(),
        }
    }
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
    /// Where the file is now.
    path: PathBuf,
    /// Where it really is, when `path` goes through a symbolic link: writes are
    /// notified in that folder.
    real_path: Option<PathBuf>,
    /// The name its lines are reported under: where it was first read.
    name: Arc<str>,
    reader: FileReader,
    /// Left unfinished by a poll's budget (or new): read it next time, changed or not.
    behind: bool,
}

struct Retired {
    name: Arc<str>,
    reader: FileReader,
    idle_since: Option<Instant>,
}

/// What was last said about a path, so that each state is said once.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Status {
    Following,
    Missing,
    Unfollowable(Unfollowable),
    Unreadable(io::ErrorKind),
    /// Another tail reads this file.
    ReadElsewhere,
    /// A copy of a file being read, held back.
    CopyOf(Arc<str>),
}

pub struct Tailer {
    /// The id of the source this tailer reads for, as the registry knows it.
    owner: Arc<str>,
    registry: Arc<FileRegistry>,
    targets: Vec<Target>,
    options: TailerOptions,
    /// The paths looked at when names may have changed: plain targets and the last
    /// glob matches, sorted.
    known: Vec<PathBuf>,
    reading: Vec<Reading>,
    retired: Vec<Retired>,
    /// Copies of files being read, held back until their original is truncated.
    held: Vec<(PathBuf, Arc<str>)>,
    /// The registry's truncation count when the held copies were last placed.
    truncations_seen: u64,
    statuses: HashMap<PathBuf, Status>,
    /// Configured paths said to be missing at start: said again when they appear.
    reported_missing: HashSet<PathBuf>,
    started: bool,
    /// A file was truncated: look for its copy before reading on.
    rescan_next: bool,
    /// The unfinished last line of a file truncated in place, with what had been read
    /// of it: passed on if no copy of the old content is found on the look that
    /// follows, dropped if one is (the copy holds the whole line, and is read from its
    /// start).
    unfinished: Vec<(Fingerprint, Chunk)>,
    /// Where the next poll starts reading, so one busy file cannot starve the others.
    cursor: usize,
    /// The buffer files are read into; see [`FileReader::read_block`].
    buffer: BytesMut,
}

impl Drop for Tailer {
    fn drop(&mut self) {
        self.registry.release(&self.owner);
    }
}

/// How much a tailer keeps of its read buffer between polls.
const IDLE_BUFFER: usize = 16 * 1024;

impl Tailer {
    pub fn new(
        owner: Arc<str>,
        registry: Arc<FileRegistry>,
        targets: Vec<Target>,
        options: TailerOptions,
    ) -> Tailer {
        Tailer {
            owner,
            registry,
            targets,
            options,
            known: Vec::new(),
            reading: Vec::new(),
            retired: Vec::new(),
            held: Vec::new(),
            truncations_seen: 0,
            statuses: HashMap::new(),
            reported_missing: HashSet::new(),
            started: false,
            rescan_next: false,
            unfinished: Vec::new(),
            cursor: 0,
            buffer: BytesMut::new(),
        }
    }

    /// The folders to watch for changes: the targets', and those of files reached
    /// through symbolic links.
    pub fn folders(&self) -> Vec<PathBuf> {
        let targets = self.targets.iter().map(Target::folder);
        let real = (self.reading.iter())
            .filter_map(|r| r.real_path.as_deref()?.parent().map(Path::to_path_buf));
        let mut folders: Vec<PathBuf> = targets.chain(real).collect();
        folders.sort();
        folders.dedup();
        folders
    }

    /// Whether reading these targets' files may block for long: one of them is (or,
    /// not there yet, would be below the nearest folder that is) on a network
    /// filesystem, links followed.
    pub fn may_block(&self) -> bool {
        self.targets.iter().any(|target| {
            let named = match target {
                Target::Path(path) => path,
                Target::Glob { folder, .. } => folder,
            };
            let real = named
                .ancestors()
                .find_map(|path| fs::canonicalize(path).ok());
            real.is_some_and(|real| {
                let folder = if real.is_dir() {
                    &real
                } else {
                    real.parent().unwrap_or(&real)
                };
                files::on_network_filesystem(folder)
            })
        })
    }

    /// The configured targets that name nothing at all right now.
    pub fn unmatched(&self) -> Vec<String> {
        (self.targets.iter())
            .filter(|target| match target {
                Target::Path(path) => {
                    matches!(self.statuses.get(path), None | Some(Status::Missing))
                }
                Target::Glob { .. } => !self.known.iter().any(|path| target.matches(path)),
            })
            .map(|target| match target {
                Target::Path(path) => path.display().to_string(),
                Target::Glob { pattern, .. } => pattern.as_str().to_owned(),
            })
            .collect()
    }

    /// The paths that could not be read, with why.
    pub fn unreadable(&self) -> Vec<String> {
        let mut paths: Vec<String> = (self.statuses.iter())
            .filter(|(_, status)| matches!(status, Status::Unreadable(_)))
            .map(|(path, _)| Escaped(&path.to_string_lossy()).to_string())
            .collect();
        paths.sort();
        paths
    }

    /// The copies held back, each with the file whose lines it holds.
    pub fn held_back(&self) -> &[(PathBuf, Arc<str>)] {
        &self.held
    }

    /// Reads what `due` says may have changed, up to about `budget` bytes, into `out`.
    pub fn poll(
        &mut self,
        now: Instant,
        due: &Due,
        budget: usize,
        out: &mut Vec<Chunk>,
    ) -> Progress {
        if due.rescan || !self.started || std::mem::take(&mut self.rescan_next) {
            self.expand();
            self.reconcile();
        } else if self.held_may_have_changed(due) {
            self.reconcile();
        }
        for (read, chunk) in std::mem::take(&mut self.unfinished) {
            if self.registry.awaits_copy(&read) {
                out.push(chunk);
            }
        }
        self.started = true;
        let mut spent = 0;
        let progress = self.read(now, due, budget, &mut spent, out);
        if progress == Progress::Idle && self.buffer.capacity() > IDLE_BUFFER {
            // Idle: give the read buffer back rather than keep a megabyte per tail.
            self.buffer = BytesMut::new();
        }
        progress
    }

    /// Whether a held copy is worth placing again: a truncation came (its original's,
    /// maybe), or it was written to (a copy still being written, or a new file that
    /// only began like a followed one and is now told apart).
    fn held_may_have_changed(&self, due: &Due) -> bool {
        !self.held.is_empty()
            && (self.registry.truncations() != self.truncations_seen
                || due.everything
                || self
                    .held
                    .iter()
                    .any(|(path, _)| due.modified.contains(path)))
    }

    fn read(
        &mut self,
        now: Instant,
        due: &Due,
        budget: usize,
        spent: &mut usize,
        out: &mut Vec<Chunk>,
    ) -> Progress {
        // Rotated files first: their lines were written before those of the files that
        // replaced them, and events should come out in the order they were written.
        let mut kept = Vec::with_capacity(self.retired.len());
        let mut more = false;
        for mut retired in std::mem::take(&mut self.retired) {
            let before = retired.reader.offset();
            let drained = if more {
                Drained::Budget
            } else {
                self.drain_retired(&mut retired, budget, spent, out)
            };
            more |= drained != Drained::End;
            if retired.reader.offset() != before {
                retired.idle_since = None;
            }
            let idle_since = *retired.idle_since.get_or_insert(now);
            // Closed only once read to its end in this very poll: a file passed over
            // because the budget ran out may hold lines not read yet.
            if drained == Drained::End && now.duration_since(idle_since) >= self.options.rotate_wait
            {
                out.extend(retired.reader.flush_partial().map(|block| Chunk {
                    path: retired.name.clone(),
                    block,
                }));
                tracing::info!(path = %Escaped(&retired.name), "Closed rotated file.");
                (self.registry).close(retired.reader.identity(), retired.reader.fingerprint());
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
            let changed =
                |path: &Option<PathBuf>| path.as_ref().is_some_and(|p| due.modified.contains(p));
            if !(due.everything
                || reading.behind
                || due.modified.contains(&reading.path)
                || changed(&reading.real_path))
            {
                continue;
            }
            let drained = drain(
                &mut reading.reader,
                &reading.name,
                &self.registry,
                budget,
                spent,
                &mut self.buffer,
                out,
                &mut self.unfinished,
            );
            reading.behind = drained != Drained::End;
            match drained {
                Drained::End => {}
                // The next poll starts with the file after this one, so that a file
                // that always has more cannot starve the others.
                Drained::Budget => {
                    self.cursor = (index + 1) % count;
                    return Progress::More;
                }
                // Truncated in place: before reading its new lines, look for the copy
                // of the old ones, whose rest comes first (a copy found is read first
                // of all, so the next poll starts at the first file).
                Drained::Restarted => {
                    self.rescan_next = true;
                    self.cursor = 0;
                    return Progress::More;
                }
            }
        }
        // All read: the next poll starts again with the oldest file, so that a renamed
        // file is read before the file that replaced it.
        self.cursor = 0;
        Progress::Idle
    }

    fn drain_retired(
        &mut self,
        retired: &mut Retired,
        budget: usize,
        spent: &mut usize,
        out: &mut Vec<Chunk>,
    ) -> Drained {
        drain(
            &mut retired.reader,
            &retired.name,
            &self.registry,
            budget,
            spent,
            &mut self.buffer,
            out,
            &mut self.unfinished,
        )
    }

    /// The unfinished last line of every file, as a line: nothing more will be read.
    pub fn finish(&mut self, out: &mut Vec<Chunk>) {
        out.extend(self.unfinished.drain(..).map(|(_, chunk)| chunk));
        let readers = self.reading.iter_mut().map(|r| (&r.name, &mut r.reader));
        let retired = self.retired.iter_mut().map(|r| (&r.name, &mut r.reader));
        for (name, reader) in readers.chain(retired) {
            out.extend(reader.flush_partial().map(|block| Chunk {
                path: name.clone(),
                block,
            }));
            self.registry
                .update(reader.identity(), reader.fingerprint());
        }
    }

    /// Finds the paths the targets name now.
    fn expand(&mut self) {
        let mut known = Vec::new();
        for target in &self.targets {
            match target {
                Target::Path(path) => known.push(path.clone()),
                Target::Glob { pattern, .. } => match glob::glob(pattern.as_str()) {
                    Ok(paths) => known.extend(paths.flatten()),
                    Err(err) => {
                        tracing::warn!(glob = pattern.as_str(), error = %err, "Cannot expand the glob.")
                    }
                },
            }
        }
        known.sort();
        known.dedup();
        // What was said of a path no longer named is forgotten: said again if it comes
        // back.
        self.statuses
            .retain(|path, _| known.binary_search(path).is_ok());
        self.known = known;
    }

    /// Matches readers to the files now at the known paths (see the module doc).
    fn reconcile(&mut self) {
        self.truncations_seen = self.registry.truncations();
        let mut present: Vec<(PathBuf, Identity)> = Vec::new();
        let mut identities = HashSet::new();
        for path in std::mem::take(&mut self.known) {
            match files::inspect(&path) {
                // The same file under two names (a link): read once, under the first.
                Found::File(metadata) => {
                    if identities.insert(Identity::of(&metadata)) {
                        present.push((path.clone(), Identity::of(&metadata)));
                    }
                }
                Found::Missing => {
                    self.note(&path, Status::Missing, None);
                }
                Found::Unfollowable(why) => {
                    self.note(&path, Status::Unfollowable(why), None);
                }
                Found::Failed(err) => {
                    self.note(&path, Status::Unreadable(err.kind()), Some(&err));
                }
            }
            self.known.push(path);
        }
        // Maps, not searches: a tail may follow thousands of files.
        let at: HashMap<&Path, Identity> = (present.iter())
            .map(|(path, identity)| (path.as_path(), *identity))
            .collect();
        let mut unplaced: Vec<Option<Reading>> = Vec::new();
        for reading in std::mem::take(&mut self.reading) {
            if at.get(reading.path.as_path()) == Some(&reading.reader.identity()) {
                self.reading.push(reading);
            } else {
                unplaced.push(Some(reading));
            }
        }
        let unplaced_at: HashMap<Identity, usize> = (unplaced.iter().enumerate())
            .filter_map(|(i, reading)| Some((reading.as_ref()?.reader.identity(), i)))
            .collect();
        let read_at: HashSet<PathBuf> = self.reading.iter().map(|r| r.path.clone()).collect();
        // Files already being read (now under another name) first, new files after:
        // the order readers are kept in is the order they are read in, oldest first.
        let mut new_files = Vec::new();
        for (path, identity) in present {
            if read_at.contains(&path) {
                continue;
            }
            let renamed = unplaced_at.get(&identity).and_then(|&i| unplaced[i].take());
            if let Some(reading) = renamed {
                self.keep_reading(path, reading.name, reading.reader, false);
            } else if let Some(i) =
                (self.retired.iter()).position(|r| r.reader.identity() == identity)
            {
                let retired = self.retired.remove(i);
                self.keep_reading(path, retired.name, retired.reader, false);
            } else {
                new_files.push(path);
            }
        }
        self.held.clear();
        for path in new_files {
            self.open(path);
        }
        let retired = unplaced.into_iter().flatten().map(|reading| Retired {
            name: reading.name,
            reader: reading.reader,
            idle_since: None,
        });
        self.retired.extend(retired);
    }

    fn keep_reading(&mut self, path: PathBuf, name: Arc<str>, reader: FileReader, first: bool) {
        // A link's target is where writes are notified.
        let real_path = std::fs::canonicalize(&path)
            .ok()
            .filter(|real| *real != path);
        let reading = Reading {
            path,
            real_path,
            name,
            reader,
            behind: true,
        };
        if first {
            self.reading.insert(0, reading);
        } else {
            self.reading.push(reading);
        }
    }

    /// Opens a file not read yet, where the registry says.
    fn open(&mut self, path: PathBuf) {
        let (file, metadata) = match files::open(&path) {
            Ok(opened) => opened,
            Err(OpenError::Unfollowable(why)) => {
                self.note(&path, Status::Unfollowable(why), None);
                return;
            }
            Err(OpenError::Io(err)) if err.kind() == io::ErrorKind::NotFound => {
                self.note(&path, Status::Missing, None);
                return;
            }
            Err(OpenError::Io(err)) => {
                self.note(&path, Status::Unreadable(err.kind()), Some(&err));
                return;
            }
        };
        let identity = Identity::of(&metadata);
        let name: Arc<str> = path.to_string_lossy().into();
        let fresh = if !self.started && self.options.start_at_end {
            Start::End
        } else {
            Start::Beginning
        };
        let placed =
            (self.registry).place(&self.owner, &name, identity, &file, metadata.len(), fresh);
        match placed {
            Err(err) => {
                self.note(&path, Status::Unreadable(err.kind()), Some(&err));
            }
            Ok(Placement::ReadElsewhere { owner, name: there }) => {
                if self.note(&path, Status::ReadElsewhere, None) {
                    tracing::warn!(path = %Escaped(&name), same_as = %Escaped(&there), source = %Escaped(&owner), "Not reading the file here: it is the same file as one another source reads; each file is read once.");
                }
            }
            Ok(Placement::CopyOfOpen { name: original }) => {
                if self.note(&path, Status::CopyOf(original.clone()), None) {
                    tracing::info!(path = %Escaped(&name), copy_of = %Escaped(&original), "Holding back a copy of a file being read: its lines are read from the original.");
                }
                self.held.push((path, original));
            }
            Ok(Placement::Read {
                start,
                name: origin,
            }) => {
                match FileReader::new(file, &metadata, start, self.options.max_line) {
                    Ok(reader) => {
                        self.note(&path, Status::Following, None);
                        let offset = reader.offset();
                        match &origin {
                            Some(origin) if **origin != *name => {
                                tracing::info!(path = %Escaped(&name), offset, lines_of = %Escaped(origin), "Following a copy, from where its original was read to.")
                            }
                            _ if self.reported_missing.remove(&path) => {
                                tracing::info!(path = %Escaped(&name), offset, "File appeared; following it.")
                            }
                            _ => tracing::info!(path = %Escaped(&name), offset, "Following file."),
                        }
                        // A copy's rest was written before what its original holds now.
                        let first = origin.is_some();
                        self.keep_reading(path, origin.unwrap_or(name), reader, first);
                    }
                    Err(err) => {
                        self.registry.close(identity, &Default::default());
                        self.note(&path, Status::Unreadable(err.kind()), Some(&err));
                    }
                }
            }
        }
    }

    /// Records what is now true of `path`, logging it if that is news; returns whether
    /// it was.
    fn note(&mut self, path: &Path, status: Status, error: Option<&io::Error>) -> bool {
        if self.statuses.get(path) == Some(&status) {
            return false;
        }
        let previous = self.statuses.insert(path.to_path_buf(), status.clone());
        let shown = Escaped(&path.to_string_lossy()).to_string();
        let exact = self
            .targets
            .iter()
            .any(|t| matches!(t, Target::Path(p) if p == path));
        match status {
            Status::Missing if exact && !self.options.once && previous.is_none() => {
                self.reported_missing.insert(path.to_path_buf());
                tracing::warn!(path = %shown, "File does not exist yet; it is followed once it appears.")
            }
            Status::Unfollowable(why) => {
                tracing::warn!(path = %shown, reason = %why.reason(), "Not following the path: only regular files can be followed.")
            }
            Status::Unreadable(_) => {
                let error = error.map(ToString::to_string).unwrap_or_default();
                if self.options.once {
                    tracing::warn!(path = %shown, error, "Cannot read the file; it is left out of this run.")
                } else {
                    tracing::warn!(path = %shown, error, "Cannot read the file; trying again when it changes.")
                }
            }
            _ => {}
        }
        true
    }
}

/// How far a [`drain`] got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drained {
    /// To the end of the file.
    End,
    /// To the end of the budget, with more to read.
    Budget,
    /// To a truncation: the file is read again from its start.
    Restarted,
}

/// Reads `reader` to its end, to a truncation, or until `spent` reaches `budget`. A
/// truncated file's unfinished line goes to `unfinished`, to wait for the look for a
/// copy.
#[allow(clippy::too_many_arguments)]
fn drain(
    reader: &mut FileReader,
    name: &Arc<str>,
    registry: &FileRegistry,
    budget: usize,
    spent: &mut usize,
    buffer: &mut BytesMut,
    out: &mut Vec<Chunk>,
    unfinished: &mut Vec<(Fingerprint, Chunk)>,
) -> Drained {
    let mut drained = Drained::Budget;
    let start = reader.offset();
    while *spent < budget {
        let before = reader.offset();
        match reader.read_block(budget - *spent, buffer) {
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
                    drained = Drained::End;
                    break;
                }
            }
            Ok(ReadOutcome::Restarted { partial, read }) => {
                tracing::info!(path = %Escaped(name), "File was truncated; reading it again from the start.");
                if let Some(block) = partial {
                    let path = name.clone();
                    unfinished.push((read.clone(), Chunk { path, block }));
                }
                registry.truncated(reader.identity(), read);
                return Drained::Restarted;
            }
            Err(err) => {
                reader.log_read_error(name, &err);
                drained = Drained::End;
                break;
            }
        }
    }
    if reader.offset() != start {
        registry.update(reader.identity(), reader.fingerprint());
    }
    reader.shrink();
    drained
}

#[cfg(test)]
mod tests;
