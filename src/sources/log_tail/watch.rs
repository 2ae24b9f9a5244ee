//! File-change notifications for every log tail of a pipeline: one inotify instance,
//! read at most once per [`COALESCE`], each change handed to the tails that watch its
//! folder as the path it concerns.
//!
//! Most loggers write each line with its own `write`, and inotify reports each write.
//! Read eagerly, that is a wake-up, a read and a stat per line: thousands a second for
//! one busy log. Read at most once per [`COALESCE`], the kernel queues what comes
//! meanwhile and merges repeats of the same event (the same file modified again), so a
//! burst of writes costs one wake-up and one read of the file, and a line waits at most
//! that long to be noticed. Tails are told which paths changed, so they read (and
//! stat) only those; creations, renames and removals ask them to look for new files.
//!
//! One instance serves the whole pipeline (inotify instances are few: 128 per user by
//! default), and a folder is watched once however many tails look at it. Where inotify
//! is not available, or a folder cannot be watched, the tails' scan interval finds
//! every change, only later.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::files::on_network_filesystem;

/// The shortest time between two readings of the notifications. Short enough that a
/// line is seen well within 100 ms of its write; long enough that a log written a line
/// at a time at thousands of lines a second is read in blocks.
pub const COALESCE: Duration = Duration::from_millis(40);

/// The largest event inotify reports: its header, and a name of up to 255 bytes with
/// its closing zero, padded to a multiple of the header's size.
const LARGEST_EVENT: usize = 16 + 256;

/// How many changed paths a tail is told about before it is told to look at all its
/// files instead: a folder full of other busy files must not grow the list unbounded.
const MAX_PATHS: usize = 4096;

/// What changed since a tail last asked.
#[derive(Debug, Default)]
pub struct Changes {
    /// Files written to (or created) in a watched folder.
    pub modified: HashSet<PathBuf>,
    /// Names changed (a creation, rename or removal, a folder gone): look for files.
    pub rescan: bool,
    /// Changes may have been missed (the kernel's queue overflowed): read everything.
    pub everything: bool,
}

impl Changes {
    fn is_empty(&self) -> bool {
        self.modified.is_empty() && !self.rescan && !self.everything
    }
}

/// Where one tail receives its changes.
#[derive(Default)]
struct Mailbox {
    changes: Mutex<Changes>,
    ready: Notify,
}

impl Mailbox {
    fn changes(&self) -> std::sync::MutexGuard<'_, Changes> {
        self.changes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The pipeline's watcher, shared by its tails; started by the first folder watched.
#[derive(Default)]
pub struct Watcher {
    hub: Mutex<Option<Arc<Hub>>>,
    /// Set when inotify cannot be used at all, so that it is not tried (and logged)
    /// again by every tail.
    unavailable: Mutex<bool>,
}

struct Hub {
    watches: Mutex<Watches>,
    folders: Mutex<Folders>,
    /// Ends the task that reads the notifications.
    stop: CancellationToken,
}

#[derive(Default)]
struct Folders {
    by_descriptor: HashMap<WatchDescriptor, Folder>,
    by_path: HashMap<PathBuf, WatchDescriptor>,
}

struct Folder {
    path: PathBuf,
    mailboxes: Vec<Weak<Mailbox>>,
    /// Whether its notifications tell of every change: not on a network filesystem,
    /// where changes made on other machines send none. Looked at once, when watched.
    complete: bool,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(hub) = lock(&self.hub).as_ref() {
            hub.stop.cancel();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every change under these locks is one insert or removal: consistent whatever
    // panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Watcher {
    /// A mailbox for one tail.
    pub fn subscribe(self: &Arc<Self>) -> Subscription {
        Subscription {
            watcher: Arc::clone(self),
            mailbox: Arc::default(),
            failing: Mutex::default(),
        }
    }

    /// The running hub, started on first use; `None` if inotify cannot be used.
    fn hub(&self) -> Option<Arc<Hub>> {
        let mut hub = lock(&self.hub);
        if let Some(hub) = hub.as_ref() {
            return Some(Arc::clone(hub));
        }
        let mut unavailable = lock(&self.unavailable);
        if *unavailable {
            return None;
        }
        match start() {
            Ok(started) => {
                *hub = Some(Arc::clone(&started));
                Some(started)
            }
            Err(err) => {
                tracing::warn!(error = %err, "Cannot watch files for changes; checking them every scan interval instead.");
                *unavailable = true;
                None
            }
        }
    }
}

/// Creates the inotify instance and the task that reads it. Must run inside the
/// runtime.
fn start() -> io::Result<Arc<Hub>> {
    let inotify = Inotify::init()?;
    let hub = Arc::new(Hub {
        watches: Mutex::new(inotify.watches()),
        folders: Mutex::default(),
        stop: CancellationToken::new(),
    });
    // SAFETY: `Inotify` owns its descriptor (closed only when it and every `Watches`
    // handle are dropped, and the hub keeps one), so it stays open and the same for as
    // long as the `AsyncFd` holds it.
    let notifications = unsafe { AsyncFd::register_with_interest(inotify, Interest::READABLE) }
        .map_err(io::Error::from)?;
    tokio::spawn(pump(notifications, Arc::clone(&hub)));
    Ok(hub)
}

/// Reads notifications until the watcher is dropped, at most once per [`COALESCE`].
async fn pump(mut notifications: AsyncFd<Inotify>, hub: Arc<Hub>) {
    // Large enough for a few thousand events per read.
    let mut buffer = vec![0; 64 * 1024];
    let mut last = Instant::now();
    // Made once: a new one each turn would register with the token each time.
    let stopped = hub.stop.cancelled();
    tokio::pin!(stopped);
    loop {
        // The stop arm first: once the pipeline is gone, nothing is worth reading.
        let ready = tokio::select! {
            biased;
            _ = &mut stopped => return,
            ready = notifications.readable_mut() => ready,
        };
        let mut guard = match ready {
            Ok(guard) => guard,
            Err(err) => {
                tracing::warn!(error = %err, "Cannot read file-change notifications; checking files every scan interval instead.");
                return;
            }
        };
        // Events that arrive while waiting stay in the kernel's queue, which merges
        // repeats of the last one: a file written a thousand times is one event. A log
        // written less often than that is read at once, without a timer.
        if Instant::now() < last + COALESCE {
            tokio::select! {
                biased;
                _ = &mut stopped => return,
                _ = tokio::time::sleep_until(last + COALESCE) => {}
            }
        }
        let mut touched: Vec<Arc<Mailbox>> = Vec::new();
        loop {
            let read = guard.try_io(|inotify| {
                let events = inotify.get_mut().read_events(&mut buffer)?;
                Ok(hub.dispatch(events, &mut touched))
            });
            match read {
                // The kernel fills the buffer with as many events as fit: a read that
                // left room for the largest took every event queued. New ones will
                // make the descriptor ready again; reading on to be told it is empty
                // would cost a system call on every wake-up.
                Ok(Ok(count)) if (count + 1) * LARGEST_EVENT <= buffer.len() => {
                    guard.clear_ready();
                    break;
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "Cannot read file-change notifications; checking files every scan interval instead.");
                    return;
                }
                // All read: readiness is cleared, the next wait is for new events.
                Err(_would_block) => break,
            }
        }
        for mailbox in touched {
            mailbox.ready.notify_one();
        }
        last = Instant::now();
    }
}

impl Hub {
    /// Hands each event to the mailboxes of its folder; `touched` collects them, once
    /// each. Returns how many events there were.
    fn dispatch<'a>(
        &self,
        events: impl Iterator<Item = inotify::Event<&'a std::ffi::OsStr>>,
        touched: &mut Vec<Arc<Mailbox>>,
    ) -> usize {
        let mut folders = lock(&self.folders);
        let mut count = 0;
        for event in events {
            count += 1;
            if event.mask.contains(EventMask::Q_OVERFLOW) {
                // Events were lost: every tail reads everything and looks again.
                for folder in folders.by_descriptor.values() {
                    deliver(&folder.mailboxes, touched, |changes| {
                        changes.rescan = true;
                        changes.everything = true;
                    });
                }
                continue;
            }
            let Some(folder) = folders.by_descriptor.get(&event.wd) else {
                continue;
            };
            let gone = event.mask.contains(EventMask::IGNORED);
            let names_changed = gone
                || event.mask.intersects(
                    EventMask::CREATE
                        | EventMask::DELETE
                        | EventMask::MOVED_FROM
                        | EventMask::MOVED_TO
                        | EventMask::ATTRIB
                        | EventMask::DELETE_SELF
                        | EventMask::MOVE_SELF,
                );
            let written = event
                .mask
                .intersects(EventMask::MODIFY | EventMask::CREATE | EventMask::MOVED_TO);
            let path = event
                .name
                .filter(|_| written)
                .map(|name| folder.path.join(name));
            deliver(&folder.mailboxes, touched, |changes| {
                changes.rescan |= names_changed;
                if let Some(path) = &path {
                    if changes.modified.len() < MAX_PATHS {
                        changes.modified.insert(path.clone());
                    } else {
                        changes.everything = true;
                    }
                }
            });
            if gone {
                // The folder went away (or its watch did): forget it, so that watching
                // it again when it is back creates a new watch.
                let path = folder.path.clone();
                folders.by_descriptor.remove(&event.wd);
                folders.by_path.remove(&path);
            }
        }
        count
    }
}

/// Applies `change` to every live mailbox of a folder, and notes it as touched.
fn deliver(
    mailboxes: &[Weak<Mailbox>],
    touched: &mut Vec<Arc<Mailbox>>,
    change: impl Fn(&mut Changes),
) {
    for mailbox in mailboxes.iter().filter_map(Weak::upgrade) {
        change(&mut mailbox.changes());
        if !touched.iter().any(|seen| Arc::ptr_eq(seen, &mailbox)) {
            touched.push(mailbox);
        }
    }
}

/// One tail's view of the watcher.
pub struct Subscription {
    watcher: Arc<Watcher>,
    mailbox: Arc<Mailbox>,
    /// Folders that could not be watched, each logged once.
    failing: Mutex<HashSet<PathBuf>>,
}

impl Subscription {
    /// Watches `folder` for this tail (a no-op if it does already). Says whether its
    /// notifications tell of every change: `Ok(false)` when inotify is not available
    /// at all, or the folder is on a network filesystem.
    pub fn watch(&self, folder: &Path) -> io::Result<bool> {
        let Some(hub) = self.watcher.hub() else {
            return Ok(false);
        };
        let mut folders = lock(&hub.folders);
        let descriptor = match folders.by_path.get(folder) {
            Some(descriptor) => descriptor.clone(),
            None => {
                let mask = WatchMask::MODIFY
                    | WatchMask::ATTRIB
                    | WatchMask::CREATE
                    | WatchMask::DELETE
                    | WatchMask::MOVED_FROM
                    | WatchMask::MOVED_TO
                    | WatchMask::DELETE_SELF
                    | WatchMask::MOVE_SELF
                    | WatchMask::EXCL_UNLINK
                    | WatchMask::ONLYDIR;
                let descriptor = lock(&hub.watches).add(folder, mask)?;
                folders
                    .by_path
                    .insert(folder.to_path_buf(), descriptor.clone());
                folders.by_descriptor.insert(
                    descriptor.clone(),
                    Folder {
                        path: folder.to_path_buf(),
                        mailboxes: Vec::new(),
                        complete: !on_network_filesystem(folder),
                    },
                );
                descriptor
            }
        };
        let Some(entry) = folders.by_descriptor.get_mut(&descriptor) else {
            return Ok(false);
        };
        entry.mailboxes.retain(|mailbox| mailbox.strong_count() > 0);
        if !entry
            .mailboxes
            .iter()
            .any(|mailbox| mailbox.as_ptr() == Arc::as_ptr(&self.mailbox))
        {
            entry.mailboxes.push(Arc::downgrade(&self.mailbox));
        }
        Ok(entry.complete)
    }

    /// Logs that `folder` cannot be watched, the first time.
    pub fn warn_once(&self, folder: &Path, error: &io::Error) {
        if lock(&self.failing).insert(folder.to_path_buf()) {
            tracing::warn!(folder = %crate::base::text::Escaped(&folder.to_string_lossy()), %error, "Cannot watch the folder; checking it every scan interval instead.");
        }
    }

    /// Waits until something changed, and takes what did.
    pub async fn changed(&self) -> Changes {
        loop {
            {
                let mut changes = self.mailbox.changes();
                if !changes.is_empty() {
                    return std::mem::take(&mut *changes);
                }
            }
            self.mailbox.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn writes_come_as_paths_and_new_names_ask_for_a_rescan() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let mut file = std::fs::File::create(&log).unwrap();
        let watcher = Arc::new(Watcher::default());
        let (first, second) = (watcher.subscribe(), watcher.subscribe());
        assert!(first.watch(dir.path()).unwrap());
        assert!(second.watch(dir.path()).unwrap());
        assert!(
            first.watch(dir.path()).unwrap(),
            "watching again is a no-op"
        );
        for _ in 0..100 {
            writeln!(file, "a line").unwrap();
        }
        let changes = first.changed().await;
        assert_eq!(changes.modified, HashSet::from([log.clone()]));
        assert!(!changes.rescan);
        assert_eq!(second.changed().await.modified, HashSet::from([log]));

        std::fs::write(dir.path().join("new.log"), "x\n").unwrap();
        let changes = first.changed().await;
        assert!(changes.rescan);
        assert!(changes.modified.contains(&dir.path().join("new.log")));
    }
}
