//! State that survives a restart, even a `SIGKILL`: a JSON file in the configured
//! `state_dir`, replaced atomically.
//!
//! A save writes a temporary file beside the real one, syncs it, renames it over the
//! real one and syncs the folder, so after a crash the file holds either the state
//! before the save or the state after it, never a mix. A file that cannot be read or
//! decoded is reported once and moved aside (`NAME.corrupt-SECONDS`), never a reason not
//! to start: the component starts empty, and the bad file stays for whoever wants to
//! look at it.
//!
//! Stages do no I/O, so a stage hands its state to a [`StateWriter`]: the newest
//! snapshot waits in a slot and a thread of its own writes it, skipping snapshots that
//! a newer one replaced before they were written. State shared behind a lock can be
//! offered without encoding it ([`StateWriter::offer_shared`]): the writer's thread
//! encodes it when it gets to it, so a burst of changes costs one encoding, not one
//! each. A component that must not act before its state is on disk (the alert stage:
//! a receiver told of an alert the file does not know would be told again after a
//! kill) waits for [`StateWriter::written`].

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::text::Escaped;

/// One state file: `NAME` in a state folder.
#[derive(Clone, Debug)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file `name` in `dir`. Nothing is touched until the first load or save.
    pub fn new(dir: &Path, name: &str) -> StateFile {
        StateFile {
            path: dir.join(name),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state; `None` when there is none, or when what there is cannot be
    /// read (then it is reported and moved aside).
    pub fn load<T: DeserializeOwned>(&self) -> Option<T> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
            Err(err) => {
                self.set_aside(&format!("cannot be read: {err}"));
                return None;
            }
        };
        match serde_json::from_slice(&bytes) {
            Ok(state) => Some(state),
            Err(err) => {
                self.set_aside(&format!("is not valid state: {err}"));
                None
            }
        }
    }

    fn set_aside(&self, problem: &str) {
        let seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let mut aside = self.path.clone().into_os_string();
        aside.push(format!(".corrupt-{seconds}"));
        let aside = PathBuf::from(aside);
        let path = Escaped(&self.path.to_string_lossy()).to_string();
        match fs::rename(&self.path, &aside) {
            Ok(()) => tracing::error!(
                path,
                moved_to = %Escaped(&aside.to_string_lossy()),
                "The state file {problem}; it was moved aside and Aegis starts without it."
            ),
            Err(err) => tracing::error!(
                path,
                error = %err,
                "The state file {problem}, and cannot be moved aside; Aegis starts without it and will replace it."
            ),
        }
    }

    /// Replaces the file with `state`, atomically (see the module documentation).
    /// Creates the folder if it is missing.
    pub fn save<T: Serialize + ?Sized>(&self, state: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(state).map_err(io::Error::other)?;
        self.save_bytes(&bytes)
    }

    fn save_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        self.replace(bytes)?;
        self.sync_folder()
    }

    /// Writes `bytes` to a temporary file, syncs it and renames it over the file: from
    /// then on a restart after a kill reads them. Only a power cut can still bring the
    /// old file back, until [`StateFile::sync_folder`].
    fn replace(&self, bytes: &[u8]) -> io::Result<()> {
        fs::create_dir_all(self.folder())?;
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&temporary, &self.path)
    }

    /// Makes the last rename survive a power cut: it is durable once the folder's
    /// entry is.
    fn sync_folder(&self) -> io::Result<()> {
        File::open(self.folder())?.sync_all()
    }

    fn folder(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// A writer on a thread of its own, for a component that must not wait for the
    /// disk.
    pub fn writer(self) -> io::Result<StateWriter> {
        let slot = Arc::new(Slot::default());
        let thread = {
            let slot = Arc::clone(&slot);
            let file = self.clone();
            std::thread::Builder::new()
                .name("aegis-state".into())
                .spawn(move || write_loop(&file, &slot))?
        };
        Ok(StateWriter {
            file: self,
            slot,
            thread: Some(thread),
        })
    }
}

/// Writes the snapshots offered to it, newest first, on its own thread; on drop,
/// writes the last one before returning.
pub struct StateWriter {
    file: StateFile,
    slot: Arc<Slot>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
    /// The newest generation the writer's thread is done with: in place (a kill
    /// would not lose it), or failed and reported.
    written: watch::Sender<u64>,
    /// A disk too slow for [`WRITE_PATIENCE`] was said.
    slow_said: AtomicBool,
}

#[derive(Default)]
struct SlotState {
    snapshot: Option<Snapshot>,
    /// Each offer's number, counted from 1; the snapshot in the slot is the newest.
    offered: u64,
    closed: bool,
}

/// How long [`StateWriter::written`] waits for a disk that does not answer before it
/// gives up: a hung `state_dir` must delay notifications, not stop them.
const WRITE_PATIENCE: Duration = Duration::from_secs(5);

/// A state to write: encoded, or to be encoded by the writer's thread.
enum Snapshot {
    Encoded(Vec<u8>),
    Later(Box<dyn FnOnce() -> serde_json::Result<Vec<u8>> + Send>),
}

impl StateWriter {
    /// Queues `state` to be written, replacing a snapshot not written yet.
    pub fn offer<T: Serialize + ?Sized>(&self, state: &T) {
        match serde_json::to_vec(state) {
            Ok(bytes) => self.put(Snapshot::Encoded(bytes)),
            Err(err) => unencodable(&self.file, &err),
        }
    }

    /// Queues the state behind `state` to be written as it is when the writer's
    /// thread gets to it (it locks `state` to encode it), replacing a snapshot not
    /// written yet.
    pub fn offer_shared<T: Serialize + Send + 'static>(&self, state: &Arc<Mutex<T>>) {
        let state = Arc::clone(state);
        self.put(Snapshot::Later(Box::new(move || {
            let state = state.lock().unwrap_or_else(PoisonError::into_inner);
            serde_json::to_vec(&*state)
        })));
    }

    fn put(&self, snapshot: Snapshot) {
        let mut slot = (self.slot.state)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.snapshot = Some(snapshot);
        slot.offered += 1;
        self.slot.changed.notify_one();
    }

    /// Resolves once every snapshot offered so far is in place, so that a kill would
    /// not lose it (written, synced and renamed; the folder's sync, for a power cut,
    /// may still be under way), or its write failed (and was reported), or the disk
    /// has not answered for [`WRITE_PATIENCE`] (said once a writer).
    pub fn written(&self) -> BoxFuture<'static, ()> {
        let offered = (self.slot.state.lock())
            .unwrap_or_else(PoisonError::into_inner)
            .offered;
        let mut written = self.slot.written.subscribe();
        let slot = Arc::clone(&self.slot);
        let path = self.file.path.clone();
        Box::pin(async move {
            let done = written.wait_for(|&generation| generation >= offered);
            let slow = tokio::time::timeout(WRITE_PATIENCE, done).await.is_err();
            if slow && !slot.slow_said.swap(true, Ordering::Relaxed) {
                tracing::warn!(path = %Escaped(&path.to_string_lossy()), "Saving the state takes longer than {WRITE_PATIENCE:?}: Aegis goes on without waiting for the disk.");
            }
        })
    }

    pub fn file(&self) -> &StateFile {
        &self.file
    }
}

impl Drop for StateWriter {
    fn drop(&mut self) {
        self.slot
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .closed = true;
        self.slot.changed.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn unencodable(file: &StateFile, err: &serde_json::Error) {
    tracing::error!(path = %Escaped(&file.path.to_string_lossy()), error = %err, "Cannot encode the state to save.");
}

fn write_loop(file: &StateFile, slot: &Slot) {
    // A failing disk is said once, and again once it works and fails anew.
    let mut failing = false;
    loop {
        let (snapshot, generation, closed) = {
            let mut state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            while state.snapshot.is_none() && !state.closed {
                state = slot
                    .changed
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            (state.snapshot.take(), state.offered, state.closed)
        };
        let bytes = match snapshot {
            Some(Snapshot::Encoded(bytes)) => Some(bytes),
            Some(Snapshot::Later(encode)) => match encode() {
                Ok(bytes) => Some(bytes),
                Err(err) => {
                    unencodable(file, &err);
                    None
                }
            },
            None => None,
        };
        if let Some(bytes) = bytes {
            let replaced = file.replace(&bytes);
            // A kill from now on finds this state: what waits for it may go on. The
            // folder's sync, which only a power cut needs, takes as long again.
            slot.written.send_replace(generation);
            match replaced.and_then(|()| file.sync_folder()) {
                Ok(()) => failing = false,
                Err(err) if !failing => {
                    failing = true;
                    tracing::error!(path = %Escaped(&file.path.to_string_lossy()), error = %err, "Cannot save the state: a restart now would forget what changed since the last save.");
                }
                Err(_) => {}
            }
        } else {
            slot.written.send_replace(generation);
        }
        if closed {
            let state = slot.state.lock().unwrap_or_else(PoisonError::into_inner);
            if state.snapshot.is_none() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_save_replaces_the_file_and_a_load_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(&dir.path().join("state"), "alerts.json");
        assert_eq!(file.load::<Vec<u32>>(), None);
        file.save(&vec![1, 2, 3]).unwrap();
        file.save(&vec![4]).unwrap();
        assert_eq!(file.load::<Vec<u32>>(), Some(vec![4]));
        let names: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["alerts.json"], "no temporary file is left");
    }

    #[test]
    fn a_corrupt_file_is_moved_aside_and_the_state_starts_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::new(dir.path(), "alerts.json");
        fs::write(file.path(), b"{\"half").unwrap();
        assert_eq!(file.load::<Vec<u32>>(), None);
        assert!(!file.path().exists());
        let aside: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(aside.len(), 1);
        assert!(aside[0].starts_with("alerts.json.corrupt-"), "{aside:?}");
        file.save(&vec![7]).unwrap();
        assert_eq!(file.load::<Vec<u32>>(), Some(vec![7]));
    }

    #[tokio::test]
    async fn written_resolves_once_what_was_offered_is_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let writer = StateFile::new(dir.path(), "s.json").writer().unwrap();
        // Nothing offered: nothing to wait for.
        writer.written().await;
        for n in 0..50u32 {
            writer.offer(&n);
            writer.written().await;
            assert_eq!(writer.file().load::<u32>(), Some(n));
        }
    }

    #[test]
    fn a_writer_writes_the_newest_snapshot_before_it_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let writer = StateFile::new(dir.path(), "s.json").writer().unwrap();
        for n in 0..100u32 {
            writer.offer(&n);
        }
        let file = writer.file().clone();
        drop(writer);
        assert_eq!(file.load::<u32>(), Some(99));

        // Shared state is written as it is when written, the last change included.
        let state = Arc::new(Mutex::new(vec![0u32]));
        let writer = StateFile::new(dir.path(), "shared.json").writer().unwrap();
        for n in 1..100 {
            state.lock().unwrap().push(n);
            writer.offer_shared(&state);
        }
        let file = writer.file().clone();
        drop(writer);
        assert_eq!(file.load::<Vec<u32>>(), Some((0..100).collect()));
    }
}
