//! The three component contracts and the plumbing between them.
//!
//! A pipeline is a directed acyclic graph of nodes. **Sources** are futures that emit
//! events into an [`Output`] until their shutdown token fires or they run out of input.
//! **Stages** are synchronous: the runtime hands them each event and the current time,
//! and ticks them on their interval; they never read the clock, spawn or do I/O, so a
//! test drives them by hand. **Sinks** are futures that consume an [`Input`] until it
//! closes, then flush. Components know these contracts and nothing of the graph that
//! connects them (`pipeline::graph`) or of the runtime that runs them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::event::Event;

/// Batches a channel holds before its sender waits. Log batches are at most about a
/// megabyte, so an edge holds up a few megabytes at most.
pub const CHANNEL_CAPACITY: usize = 8;

/// What travels on an edge: several events at once, shared by every downstream node so
/// that fan-out costs a reference count, not a copy.
pub type Batch = Arc<Vec<Event>>;

/// A running source: emits into `out` until `shutdown` is cancelled or its input ends.
pub trait Source: Send {
    fn run(
        self: Box<Self>,
        out: Output,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), NodeError>>;

    /// Whether it runs on the pipeline's thread (rather than on a thread of its own):
    /// then what it sends to several nodes wakes no other thread, and needs no relay.
    fn on_pipeline_thread(&self) -> bool {
        false
    }
}

/// A transformation of events. Synchronous, and time is an argument.
pub trait Stage: Send {
    /// Handles one event that arrived at `now`, appending what it emits to `out`.
    fn on_event(&mut self, event: &Event, now: SystemTime, out: &mut Vec<Event>);

    /// Called once the events of a batch have each been handled: for work worth doing
    /// once a batch rather than once an event (the alert stage saves its state here, so
    /// a burst of a thousand alerts is one snapshot, not a thousand).
    fn on_batch_end(&mut self, _now: SystemTime) {}

    /// What the runtime waits for before it sends on what the stage emitted; `None`
    /// for a stage whose output may leave at once. The alert stage returns the save
    /// of its state: a receiver told of an alert that the state file does not know
    /// yet would be told it again after a `SIGKILL` and a restart.
    fn before_sending(&self) -> Option<BoxFuture<'static, ()>> {
        None
    }

    /// Called every [`Stage::tick_interval`], for work driven by time alone.
    fn on_tick(&mut self, _now: SystemTime, _out: &mut Vec<Event>) {}

    /// How often [`Stage::on_tick`] runs; `None` for stages that only react to events.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }
}

/// A running sink: consumes `input` until it closes, then flushes.
pub trait Sink: Send {
    fn run(self: Box<Self>, input: Input) -> BoxFuture<'static, Result<(), NodeError>>;
}

/// Why a node stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("a blocking task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// The node did its work, but not all of it (a `--once` tail that could not read a
    /// file): the run went on, and its result is incomplete.
    #[error("incomplete: {0}")]
    Incomplete(String),
}

/// Every downstream node cannot take more events: they have all stopped.
#[derive(Debug, thiserror::Error)]
#[error("every downstream node has stopped")]
pub struct Closed;

/// Where a node sends: one channel per downstream node. A reload of the pipeline
/// replaces the list while the node runs.
#[derive(Default)]
pub struct Wiring(Mutex<Arc<Vec<mpsc::Sender<Batch>>>>);

impl Wiring {
    pub(crate) fn new(downstream: Vec<mpsc::Sender<Batch>>) -> Wiring {
        Wiring(Mutex::new(Arc::new(downstream)))
    }

    /// The channels now.
    pub(crate) fn current(&self) -> Arc<Vec<mpsc::Sender<Batch>>> {
        Arc::clone(&self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn replace(&self, downstream: Vec<mpsc::Sender<Batch>>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Arc::new(downstream);
    }
}

/// The sending end of a node.
#[derive(Clone, Default)]
pub struct Output {
    wiring: Arc<Wiring>,
    /// Events sent, for the pipeline's statistics.
    sent: Arc<AtomicU64>,
}

impl Output {
    pub(crate) fn new(wiring: Arc<Wiring>, sent: Arc<AtomicU64>) -> Output {
        Output { wiring, sent }
    }

    /// Sends `events` to every downstream node, waiting while a channel is full: this
    /// wait is the backpressure that makes a fast source slow down to a slow sink.
    /// A downstream node that has stopped is skipped; when all have, the sender learns
    /// it through [`Closed`].
    pub async fn send(&self, events: Vec<Event>) -> Result<(), Closed> {
        if events.is_empty() {
            return Ok(());
        }
        self.sent.fetch_add(events.len() as u64, Ordering::Relaxed);
        let batch: Batch = Arc::new(events);
        let downstream = self.wiring.current();
        let mut delivered = downstream.is_empty();
        for channel in downstream.iter() {
            delivered |= channel.send(Arc::clone(&batch)).await.is_ok();
        }
        if delivered { Ok(()) } else { Err(Closed) }
    }
}

/// The receiving end of a node: batches from all its inputs, merged.
pub struct Input {
    receiver: mpsc::Receiver<Batch>,
    /// Events received, for the pipeline's statistics.
    received: Arc<AtomicU64>,
}

impl Input {
    pub(crate) fn new(receiver: mpsc::Receiver<Batch>, received: Arc<AtomicU64>) -> Input {
        Input { receiver, received }
    }

    /// The next batch, or `None` once every input has stopped and all was received.
    pub async fn recv(&mut self) -> Option<Batch> {
        let batch = self.receiver.recv().await;
        self.count(batch.as_ref());
        batch
    }

    /// A batch that has already arrived, without waiting; `None` if there is none now.
    pub fn try_recv(&mut self) -> Option<Batch> {
        let batch = self.receiver.try_recv().ok();
        self.count(batch.as_ref());
        batch
    }

    fn count(&self, batch: Option<&Batch>) {
        if let Some(batch) = batch {
            self.received
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
        }
    }
}
