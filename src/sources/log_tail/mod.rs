//! The `log_tail` source: follows log files and emits their lines as [`LogLines`].
//!
//! Files are named by paths and globs; they may not exist yet (they are picked up when
//! they appear), they may be rotated by rename-and-create or by copy-and-truncate, and
//! their lines may be unfinished, over-long, CRLF-terminated or not UTF-8. What to read
//! and when is [`tailer`]'s job, how to turn bytes into lines is [`reader`]'s, what can
//! be followed at all is [`files`]'s; the tails of one pipeline share a [`registry`] of
//! the files they read (each file is read once, and a copy is not read again) and a
//! [`watch`]er of their folders. This module wires them to the pipeline: it wakes on
//! file-change notifications (coalesced, naming the files written to) and on a scan
//! interval (for folders that send no notifications), reads where it wakes (on the
//! pipeline's thread, or on a thread of the tails' own for files on network
//! filesystems, whose reads can hang), and sends blocks downstream. A full channel
//! makes it wait: the file is the buffer, so a slow consumer delays lines but never
//! loses one.
//!
//! Why not linemux: it has no byte offsets, replaces a rotated file's reader without
//! draining it, and yields a half-written line as a line; see docs/architecture.md.
//!
//! ```yaml
//! sources:
//!   app_log:
//!     type: log_tail
//!     service: shop
//!     paths: ["/var/log/shop/app.log", "/var/log/shop/jobs-*.log"]
//!     read_from: end          # or beginning; files that appear later: from the beginning
//!     max_line_bytes: 65536
//!     scan_interval: 1s
//! ```

pub mod files;
pub mod reader;
pub mod registry;
pub mod tailer;
pub mod watch;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize};
use tokio_util::sync::CancellationToken;

use self::registry::FileRegistry;
use self::tailer::{Chunk, Due, Progress, Tailer, TailerOptions, Target};
use self::watch::{Subscription, Watcher};
use crate::base::component::{NodeError, Output, Source};
use crate::base::dedicated::Dedicated;
use serde_norway::Value;

use crate::base::diagnostics::Diagnostics;
use crate::base::event::{Event, EventKind, LogLines, ServiceName};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};
use crate::base::text::Escaped;

/// How much one poll reads at most, across all files: the size of the blocks sent
/// downstream, and so (times the channel capacity) the memory a tail can hold up.
const READ_BUDGET: usize = 1 << 20;
/// How long a rotated file is still read after it last grew.
const ROTATE_WAIT: Duration = Duration::from_secs(5);
/// On shutdown, how long the tail may keep reading what is already written.
pub const FINAL_DRAIN: Duration = Duration::from_secs(5);
/// How often every file is looked at although notifications cover every folder of the
/// tail (at least; the scan interval, if longer): in case one was lost.
const SAFETY_SCAN: Duration = Duration::from_secs(60);

/// Configuration of a `log_tail` source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogTailConfig {
    /// The service these logs belong to.
    pub service: String,
    /// Files to follow: paths or globs (`*`, `?`, `[...]`), at least one. Relative
    /// paths are taken from the folder of the configuration file.
    #[serde(deserialize_with = "at_least_one_path")]
    pub paths: Vec<PathPattern>,
    /// Where to start in files that exist at startup: `end` (default) or `beginning`.
    /// Files that appear later are always read from their beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Lines longer than this many bytes are cut to it (and counted). Default 65536.
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: NonZeroUsize,
    /// How often globs are expanded again and every file is looked at when a folder
    /// sends no notifications (not watched, or on a network filesystem); with
    /// notifications for every folder, once a minute at most. Default `1s`.
    #[serde(default = "default_scan_interval", with = "crate::base::duration")]
    pub scan_interval: Duration,
}

/// A tail with no paths would follow nothing and say nothing: refused, as an empty
/// `patterns` or `logs.files` is.
fn at_least_one_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<PathPattern>, D::Error> {
    let paths = Vec::<PathPattern>::deserialize(deserializer)?;
    if paths.is_empty() {
        return Err(serde::de::Error::custom(
            "no paths; a log_tail source needs at least one path or glob, such as `[/var/log/shop/app.log]`",
        ));
    }
    Ok(paths)
}

pub fn default_max_line_bytes() -> NonZeroUsize {
    NonZeroUsize::new(64 * 1024).expect("not zero")
}

pub fn default_scan_interval() -> Duration {
    Duration::from_secs(1)
}

/// Where to start reading files that exist when the tail starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    #[default]
    End,
    Beginning,
}

/// A path or glob as written, checked to be a valid glob when decoded.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct PathPattern(String);

impl PathPattern {
    pub fn new(text: String) -> Result<PathPattern, String> {
        glob::Pattern::new(&text).map_err(|err| format!("invalid glob `{text}`: {}", err.msg))?;
        Ok(PathPattern(text))
    }
}

impl<'de> Deserialize<'de> for PathPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        PathPattern::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

/// What the log tails of one pipeline share: the record of the files they read, and
/// the watcher of their folders. Made for the pipeline by its first tail's build.
#[derive(Default)]
pub struct TailShared {
    registry: Arc<FileRegistry>,
    watcher: Arc<Watcher>,
}

impl ComponentType for LogTailConfig {
    const NAME: &'static str = "log_tail";
    const ACCEPTS: &'static [EventKind] = &[];
    const EMITS: &'static [EventKind] = &[EventKind::LogLines];
    type Built = dyn Source;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        diag.decode(options, path)
    }

    /// Relative paths start at the configuration's folder; with `--once`, every file
    /// is read from its beginning to its end, and then the source ends. The tails of
    /// one pipeline share its [`TailShared`].
    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Source>> {
        let targets = self
            .paths
            .iter()
            .map(|path| Target::new(cx.base, &path.0))
            .collect();
        let options = TailerOptions {
            start_at_end: self.read_from == ReadFrom::End && !cx.once,
            max_line: self.max_line_bytes.get(),
            rotate_wait: ROTATE_WAIT,
            once: cx.once,
        };
        let shared = cx.shared.get::<TailShared>();
        let tailer = Tailer::new(cx.id.into(), Arc::clone(&shared.registry), targets, options);
        Some(Box::new(LogTail {
            on_pipeline_thread: !cx.once && !tailer.may_block(),
            service: self.service.as_str().into(),
            tailer,
            watcher: Arc::clone(&shared.watcher),
            scan_interval: self.scan_interval,
            once: cx.once,
        }))
    }

    fn service(&self) -> Option<&str> {
        Some(&self.service)
    }
}

/// A running `log_tail` source.
pub struct LogTail {
    service: ServiceName,
    tailer: Tailer,
    watcher: Arc<Watcher>,
    scan_interval: Duration,
    once: bool,
    /// Follows on the pipeline's thread (see [`TAILS`]).
    on_pipeline_thread: bool,
}

/// The thread where log tails that may block run (see [`Dedicated`]): those with a
/// file on a network filesystem, and every tail of `run --once`.
///
/// A tail of local files runs on the pipeline's thread, where its blocks go: a live
/// log's new lines are read from the page cache in microseconds, and a write then
/// costs one thread wake-up, where a thread of the tails' own woke it and then woke
/// the pipeline's (a quarter more CPU per write, more than `tail -F | grep`; see
/// docs/benchmarks.md). A backlog is read at most [`READ_BUDGET`] per turn, between
/// which the pipeline's other tasks run. A read on a network filesystem can hang for
/// minutes: such a tail runs here, where it holds up only the other tails here. So
/// does `--once`, which reads files whole while the pipeline's thread matches them.
static TAILS: Dedicated = Dedicated::new("aegis-tails", false);

impl Source for LogTail {
    fn run(
        self: Box<Self>,
        out: Output,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            if self.once {
                TAILS.run(self.read_once(out, shutdown)).await?
            } else if self.on_pipeline_thread {
                self.follow(out, shutdown).await
            } else {
                TAILS.run(self.follow(out, shutdown)).await?
            }
        })
    }

    fn on_pipeline_thread(&self) -> bool {
        self.on_pipeline_thread
    }
}

impl LogTail {
    /// `--once`: read every file to its end (or until shutdown), flush unfinished last
    /// lines, stop; say what was left out, and fail if a file could not be read (the
    /// summary would be incomplete).
    async fn read_once(
        mut self: Box<Self>,
        out: Output,
        shutdown: CancellationToken,
    ) -> Result<(), NodeError> {
        self.read_to_end(&out, || shutdown.is_cancelled()).await;
        let tailer = &self.tailer;
        for unmatched in tailer.unmatched() {
            tracing::warn!(path = %Escaped(&unmatched), "No file matches the configured path.");
        }
        for (copy, original) in tailer.held_back() {
            tracing::warn!(path = %Escaped(&copy.to_string_lossy()), copy_of = %Escaped(original), "Not read: it holds lines of a file read in this run, counted there.");
        }
        let unreadable = tailer.unreadable();
        if unreadable.is_empty() {
            Ok(())
        } else {
            Err(NodeError::Incomplete(format!(
                "cannot read {}",
                unreadable.join(", ")
            )))
        }
    }

    /// The daemon: poll on notifications and on the scan interval until shutdown.
    async fn follow(
        mut self: Box<Self>,
        out: Output,
        shutdown: CancellationToken,
    ) -> Result<(), NodeError> {
        let subscription = self.watcher.subscribe();
        // Without notifications (no inotify, its limits reached, a network filesystem)
        // the scan interval still finds every change, only later. With notifications
        // for every folder, a look at everything now and then is enough.
        let every = |period| {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks
        };
        let mut scan = every(self.scan_interval);
        let mut safety = every(self.scan_interval.max(SAFETY_SCAN));
        let mut notified = false;
        let mut due = Due::everything();
        // Made once: a new one each turn would register with the token each time.
        let stopped = shutdown.cancelled();
        tokio::pin!(stopped);
        loop {
            if due.rescan {
                // Before reading: a write after the read must not go unnoticed.
                notified = self.watch_folders(&subscription);
            }
            let (progress, chunks) = self.poll(&due);
            if self.send(&out, chunks).await.is_err() {
                return Ok(());
            }
            // Checked on every turn, not only when idle: a file that always has more to
            // read must not keep a shutdown waiting.
            if shutdown.is_cancelled() {
                break;
            }
            if progress == Progress::More {
                // The other tails on this thread get their turn too.
                tokio::task::yield_now().await;
                due = Due::default();
                continue;
            }
            due = tokio::select! {
                // Shutdown first: once asked to stop, stop waiting for files.
                biased;
                _ = &mut stopped => break,
                changes = subscription.changed() => Due {
                    rescan: changes.rescan,
                    everything: changes.everything,
                    modified: changes.modified,
                },
                _ = scan.tick(), if !notified => Due::everything(),
                _ = safety.tick() => Due::everything(),
            };
        }
        self.drain_and_finish(out).await;
        Ok(())
    }

    /// Watches the folders where this tail's files are (a no-op for those watched
    /// already); returns whether notifications now cover every one of them. A folder
    /// that does not exist yet is tried again on the next rescan; any other failure
    /// (such as the inotify watch limit) is logged once per folder.
    fn watch_folders(&self, subscription: &Subscription) -> bool {
        let mut covered = true;
        for folder in self.tailer.folders() {
            match subscription.watch(&folder) {
                Ok(complete) => covered &= complete,
                Err(err) => {
                    covered = false;
                    if err.kind() != std::io::ErrorKind::NotFound {
                        subscription.warn_once(&folder, &err);
                    }
                }
            }
        }
        covered
    }

    /// On shutdown: read what is already written (for a bounded time), then flush the
    /// unfinished last lines, so that every line written before the signal is sent.
    async fn drain_and_finish(&mut self, out: Output) {
        let deadline = Instant::now() + FINAL_DRAIN;
        self.read_to_end(&out, || Instant::now() >= deadline).await
    }

    /// Reads until every file is at its end (or `stop` says so), then sends the
    /// unfinished last lines as lines: nothing more will be read.
    async fn read_to_end(&mut self, out: &Output, stop: impl Fn() -> bool) {
        let mut due = Due::everything();
        while !stop() {
            let (progress, chunks) = self.poll(&due);
            if self.send(out, chunks).await.is_err() {
                return;
            }
            if progress == Progress::Idle {
                break;
            }
            tokio::task::yield_now().await;
            due = Due {
                everything: true,
                ..Due::default()
            };
        }
        let mut chunks = Vec::new();
        self.tailer.finish(&mut chunks);
        // Nobody left to take them is no error at the end.
        let _ = self.send(out, chunks).await;
    }

    /// One poll of the tailer, where the tail runs (see [`TAILS`]).
    fn poll(&mut self, due: &Due) -> (Progress, Vec<Chunk>) {
        let mut chunks = Vec::new();
        let progress = self
            .tailer
            .poll(Instant::now(), due, READ_BUDGET, &mut chunks);
        (progress, chunks)
    }

    async fn send(
        &self,
        out: &Output,
        chunks: Vec<Chunk>,
    ) -> Result<(), crate::base::component::Closed> {
        let at = SystemTime::now();
        let events = chunks
            .into_iter()
            .map(|Chunk { path, block }| {
                Event::LogLines(LogLines {
                    service: Arc::clone(&self.service),
                    path,
                    at,
                    text: block.text,
                    lines: block.lines,
                    cut: block.cut,
                    lossy: block.lossy,
                })
            })
            .collect();
        out.send(events).await
    }
}
