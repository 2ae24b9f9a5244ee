//! The files every log tail of a pipeline reads, shared by all of them: so that each
//! file is read once, and what was read of a file is not read again from a copy of it.
//!
//! A file is known by its identity while it is open, and by what was read of it (a
//! [`Fingerprint`]) once it is closed or truncated. When a tail finds a file it is not
//! reading, the registry decides where reading starts:
//!
//! - a file another tail reads (the same file reached by another path, or listed by two
//!   sources) is not read again;
//! - a file seen before under its identity (renamed away, closed, back under a name a
//!   glob matches) resumes where reading stopped;
//! - a file that holds what was read of a file since truncated in place is that file's
//!   copy (logrotate's `copytruncate`): it is read from where reading of the original
//!   stopped, which gives exactly the lines written between the last read and the
//!   truncation, and nothing twice;
//! - a file that holds what was read so far of a file still being read is a copy made
//!   before a truncation that has not come yet (or a backup): it waits, since its lines
//!   are read from the original; so does a shorter file that begins as that file does
//!   (a copy caught while it is being written);
//! - anything else is new.
//!
//! Memory is bounded: a record per open file, and a fixed number of closed files and of
//! truncations.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::reader::{Fingerprint, Identity, Start};

/// How many closed files are remembered, to resume them if they reappear.
const CLOSED_FILES: usize = 1024;

/// How many truncations are remembered, to recognise the copies made before them.
const TRUNCATIONS: usize = 64;

/// Where a file is read from, decided by [`FileRegistry::place`].
#[derive(Debug, PartialEq, Eq)]
pub enum Placement {
    /// Read it, from `start`; for a copy or a file seen before, its lines go under the
    /// name of the file they were first written to (`name`).
    Read {
        start: Start,
        name: Option<Arc<str>>,
    },
    /// Another tail (`owner`) reads this very file, as `name`.
    ReadElsewhere { owner: Arc<str>, name: Arc<str> },
    /// It holds what was read so far of `name`, which is still being read: a copy
    /// whose lines come from the original.
    CopyOfOpen { name: Arc<str> },
}

struct OpenFile {
    owner: Arc<str>,
    name: Arc<str>,
    read: Fingerprint,
}

struct Remembered {
    /// For a closed file, its identity; for a truncation, none (the file lives on, at
    /// offset 0).
    identity: Option<Identity>,
    name: Arc<str>,
    read: Fingerprint,
}

#[derive(Default)]
struct Files {
    open: HashMap<Identity, OpenFile>,
    closed: VecDeque<Remembered>,
    truncated: VecDeque<Remembered>,
}

/// The shared record of one pipeline's followed files.
#[derive(Default)]
pub struct FileRegistry {
    files: Mutex<Files>,
    /// How many truncations there have been: a tail holding back a copy looks again
    /// when this moves.
    truncations: AtomicU64,
}

impl FileRegistry {
    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        // The records stay consistent whatever panicked: each change is one insert or
        // removal.
        self.files.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many truncations have been recorded so far.
    pub fn truncations(&self) -> u64 {
        self.truncations.load(Ordering::Relaxed)
    }

    /// Decides where `owner` starts reading `file` (identity, size), found under
    /// `name`, which it does not read yet; `fresh` is where a new file starts. A file
    /// to be read is claimed for `owner` at once, so no other tail reads it too.
    pub fn place(
        &self,
        owner: &Arc<str>,
        name: &Arc<str>,
        identity: Identity,
        file: &File,
        size: u64,
        fresh: Start,
    ) -> io::Result<Placement> {
        let mut files = self.files();
        if let Some(open) = files.open.get(&identity) {
            return Ok(Placement::ReadElsewhere {
                owner: Arc::clone(&open.owner),
                name: Arc::clone(&open.name),
            });
        }
        // One read of the candidate's first bytes serves every comparison; only a
        // fingerprint with the same head costs a second read.
        let head = Fingerprint::read_head(file)?;
        let holds = |read: &Fingerprint| read.matches(&head, file, size);
        let mut placed = None;
        if let Some(i) = files
            .closed
            .iter()
            .position(|c| c.identity == Some(identity))
        {
            let seen = files.closed.remove(i).expect("index from position");
            // The same inode with other content: reused by a new file, which is new.
            if holds(&seen.read)? {
                placed = Some(resume(seen));
            }
        }
        if placed.is_none() {
            for i in 0..files.truncated.len() {
                if holds(&files.truncated[i].read)? {
                    let original = files.truncated.remove(i).expect("index in range");
                    placed = Some(resume(original));
                    break;
                }
            }
        }
        if placed.is_none() {
            for open in files.open.values() {
                // A copy caught while it is written is held back too: read as a new
                // file, all it holds would be read twice. Once its original is
                // truncated, it is looked at again, whole by then.
                if holds(&open.read)? || open.read.may_be_growing_copy(&head, size) {
                    return Ok(Placement::CopyOfOpen {
                        name: Arc::clone(&open.name),
                    });
                }
            }
            for closed in &files.closed {
                if holds(&closed.read)? {
                    placed = Some(Placement::Read {
                        start: Start::Offset(closed.read.offset),
                        name: Some(Arc::clone(&closed.name)),
                    });
                    break;
                }
            }
        }
        let placed = placed.unwrap_or(Placement::Read {
            start: fresh,
            name: None,
        });
        if let Placement::Read { name: origin, .. } = &placed {
            let open = OpenFile {
                owner: Arc::clone(owner),
                name: Arc::clone(origin.as_ref().unwrap_or(name)),
                read: Fingerprint::default(),
            };
            files.open.insert(identity, open);
        }
        Ok(placed)
    }

    /// Records what has been read of an open file so far.
    pub fn update(&self, identity: Identity, read: &Fingerprint) {
        if let Some(open) = self.files().open.get_mut(&identity) {
            // Into the buffers it has: this runs after every read.
            open.read.clone_from(read);
        }
    }

    /// Records that an open file was truncated in place after `read` had been read of
    /// it: a copy of that content, when it shows up, is read from where it stopped.
    pub fn truncated(&self, identity: Identity, read: Fingerprint) {
        let mut files = self.files();
        let Some(open) = files.open.get_mut(&identity) else {
            return;
        };
        open.read = Fingerprint::default();
        let name = Arc::clone(&open.name);
        if files.truncated.len() == TRUNCATIONS {
            files.truncated.pop_front();
        }
        files.truncated.push_back(Remembered {
            identity: None,
            name,
            read,
        });
        self.truncations.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the content of a file truncated after `read` still waits for its copy:
    /// none has been found (and the record is not so old it was let go).
    pub fn awaits_copy(&self, read: &Fingerprint) -> bool {
        self.files().truncated.iter().any(|t| t.read == *read)
    }

    /// Records that a file is no longer read, after `read`: it resumes there if it
    /// shows up again.
    pub fn close(&self, identity: Identity, read: &Fingerprint) {
        let mut files = self.files();
        if let Some(open) = files.open.remove(&identity) {
            remember_closed(&mut files, identity, open.name, read.clone());
        }
    }

    /// Closes every file `owner` still has open (a tail that ends), with what was read
    /// of each.
    pub fn release(&self, owner: &str) {
        let mut files = self.files();
        let owned: Vec<Identity> = (files.open.iter())
            .filter(|(_, open)| &*open.owner == owner)
            .map(|(identity, _)| *identity)
            .collect();
        for identity in owned {
            if let Some(open) = files.open.remove(&identity) {
                remember_closed(&mut files, identity, open.name, open.read);
            }
        }
    }
}

fn remember_closed(files: &mut Files, identity: Identity, name: Arc<str>, read: Fingerprint) {
    if files.closed.len() == CLOSED_FILES {
        files.closed.pop_front();
    }
    files.closed.push_back(Remembered {
        identity: Some(identity),
        name,
        read,
    });
}

/// Reading resumes after what was read of `seen`, under its name.
fn resume(seen: Remembered) -> Placement {
    Placement::Read {
        start: Start::Offset(seen.read.offset),
        name: Some(seen.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::log_tail::reader::FileReader;
    use bytes::BytesMut;
    use std::io::Write;
    use std::path::Path;

    fn reader_of(path: &Path) -> FileReader {
        let file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        let mut reader = FileReader::new(file, &metadata, Start::Beginning, 1000).unwrap();
        reader.read_block(1 << 20, &mut BytesMut::new()).unwrap();
        reader
    }

    fn place(registry: &FileRegistry, owner: &str, path: &Path) -> Placement {
        let file = File::open(path).unwrap();
        let metadata = file.metadata().unwrap();
        let name: Arc<str> = path.to_string_lossy().into();
        registry
            .place(
                &owner.into(),
                &name,
                Identity::of(&metadata),
                &file,
                metadata.len(),
                Start::Beginning,
            )
            .unwrap()
    }

    /// `path` placed for tail `tail` and read to its end, the registry told what was
    /// read: a file being followed.
    fn followed(registry: &FileRegistry, path: &Path) -> (Placement, FileReader) {
        let placed = place(registry, "tail", path);
        let reader = reader_of(path);
        registry.update(reader.identity(), reader.fingerprint());
        (placed, reader)
    }

    #[test]
    fn a_copy_waits_while_its_original_is_read_and_resumes_after_the_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let (log, copy) = (dir.path().join("app.log"), dir.path().join("app.log.1"));
        std::fs::write(&log, "2026 one\n2026 two\n").unwrap();
        let registry = FileRegistry::default();
        let (placed, original) = followed(&registry, &log);
        assert_eq!(
            placed,
            Placement::Read {
                start: Start::Beginning,
                name: None
            }
        );
        // Written after the last read, then copied: the copy holds a line not read yet.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&log)
            .unwrap()
            .write_all(b"2026 three\n")
            .unwrap();
        std::fs::copy(&log, &copy).unwrap();
        let name: Arc<str> = log.to_string_lossy().into();
        assert_eq!(
            place(&registry, "tail", &copy),
            Placement::CopyOfOpen { name: name.clone() }
        );
        assert_eq!(
            place(&registry, "other tail", &log),
            Placement::ReadElsewhere {
                owner: "tail".into(),
                name: name.clone()
            },
            "one file, one reader"
        );
        registry.truncated(original.identity(), original.fingerprint().clone());
        assert_eq!(registry.truncations(), 1);
        assert_eq!(
            place(&registry, "tail", &copy),
            Placement::Read {
                start: Start::Offset(18),
                name: Some(name)
            },
            "the copy is read from where the original stopped"
        );
    }

    /// A copy caught half written holds only part of what was read of its original:
    /// read as a new file, all of it would be read twice. It waits, and is placed
    /// once the truncation comes and it is whole.
    #[test]
    fn a_copy_caught_while_it_is_written_waits_and_a_new_file_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "2026 one\n2026 two\n2026 three\n").unwrap();
        let registry = FileRegistry::default();
        let (_, original) = followed(&registry, &log);
        let name: Arc<str> = log.to_string_lossy().into();
        let (copy, other) = (dir.path().join("app.log.1"), dir.path().join("app.log.2"));
        std::fs::write(&copy, "2026 one\n2026 tw").unwrap();
        std::fs::write(&other, "2027 new\n").unwrap();
        assert_eq!(
            place(&registry, "tail", &copy),
            Placement::CopyOfOpen { name: name.clone() }
        );
        assert_eq!(
            place(&registry, "tail", &other),
            Placement::Read {
                start: Start::Beginning,
                name: None
            },
            "a short file that begins otherwise is new"
        );
        std::fs::copy(&log, &copy).unwrap();
        registry.truncated(original.identity(), original.fingerprint().clone());
        assert_eq!(
            place(&registry, "tail", &copy),
            Placement::Read {
                start: Start::Offset(29),
                name: Some(name)
            },
            "whole, the copy is read from where the original stopped"
        );
    }

    #[test]
    fn a_closed_file_resumes_by_identity_and_a_reused_inode_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        std::fs::write(&log, "2026 one\n").unwrap();
        let registry = FileRegistry::default();
        place(&registry, "tail", &log);
        let reader = reader_of(&log);
        registry.close(reader.identity(), reader.fingerprint());
        assert!(matches!(
            place(&registry, "tail", &log),
            Placement::Read {
                start: Start::Offset(9),
                ..
            }
        ));
        registry.release("tail");
        std::fs::write(&log, "other content\n").unwrap(); // same inode, rewritten
        assert!(matches!(
            place(&registry, "tail", &log),
            Placement::Read {
                start: Start::Beginning,
                name: None
            }
        ));
    }
}
