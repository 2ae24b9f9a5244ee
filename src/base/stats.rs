//! What moved through each node of the running pipeline: events in and out, and how
//! full its channel is; and the reloads of its configuration. The runtime keeps the
//! counts (with atomics, as events pass); whoever reports them (the `prometheus` sink)
//! reads them through the pipeline's [`StatsHandle`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use tokio::sync::mpsc;

use super::component::Batch;

/// The counts of one node.
pub struct NodeStats {
    pub id: String,
    /// Events that arrived on the node's channel.
    pub received: Arc<AtomicU64>,
    /// Events the node sent on (counted once however many nodes it feeds).
    pub sent: Arc<AtomicU64>,
    /// The node's channel, without keeping it open; `None` for sources.
    channel: Option<mpsc::WeakSender<Batch>>,
    /// Whether the node sends events on: sinks do not.
    sends: bool,
}

impl NodeStats {
    /// The counts of node `id`; of a node that replaces `before` (a reload's new node of
    /// the same id), counting on from its counts.
    pub(crate) fn new(
        id: String,
        channel: Option<&mpsc::Sender<Batch>>,
        sends: bool,
        before: Option<&NodeStats>,
    ) -> NodeStats {
        NodeStats {
            id,
            received: before.map_or_else(Arc::default, |node| Arc::clone(&node.received)),
            sent: before.map_or_else(Arc::default, |node| Arc::clone(&node.sent)),
            channel: channel.map(mpsc::Sender::downgrade),
            sends,
        }
    }

    /// Batches waiting in the node's channel, while it is open.
    pub fn queued(&self) -> Option<usize> {
        let sender = self.channel.as_ref()?.upgrade()?;
        Some(sender.max_capacity() - sender.capacity())
    }

    /// Events received, for a node that receives (a stage or a sink).
    pub fn received(&self) -> Option<u64> {
        self.channel
            .is_some()
            .then(|| self.received.load(Ordering::Relaxed))
    }

    /// Events sent, for a node that sends (a source or a stage).
    pub fn sent(&self) -> Option<u64> {
        self.sends.then(|| self.sent.load(Ordering::Relaxed))
    }
}

/// The counts of every node of the running pipeline, and of its reloads.
pub struct PipelineStats {
    pub nodes: Vec<Arc<NodeStats>>,
    pub reloads: Arc<Reloads>,
    /// The services its sources watch or run, sorted: a service a reload removed is
    /// not among them, and its series go.
    pub services: Arc<[String]>,
}

impl PipelineStats {
    /// Reloads by result: `("success", n)`, `("failure", n)`.
    pub fn reloads(&self) -> [(&'static str, u64); 2] {
        let count = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        [
            ("success", count(&self.reloads.replaced)),
            ("failure", count(&self.reloads.refused)),
        ]
    }
}

/// The reloads of a pipeline's configuration.
#[derive(Default)]
pub struct Reloads {
    /// Reloads that replaced the pipeline.
    pub replaced: AtomicU64,
    /// Reloads refused (a file with errors): nothing changed.
    pub refused: AtomicU64,
}

/// The counts of one pipeline, from when it starts to run: handed to the components
/// that report them (the `prometheus` sink) when they are built, before there is
/// anything to count. A reload replaces the nodes' list; components kept by it keep
/// their handle.
#[derive(Clone, Default)]
pub struct StatsHandle(Arc<RwLock<Option<Arc<PipelineStats>>>>);

impl StatsHandle {
    /// The counts, once the pipeline runs.
    pub fn get(&self) -> Option<Arc<PipelineStats>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Called by the runtime as the pipeline starts, and after each reload.
    pub(crate) fn set(&self, stats: PipelineStats) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(stats));
    }
}
