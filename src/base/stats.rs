//! What moved through each node of the running pipeline: events in and out, and how
//! full its channel is. The runtime keeps the counts (with atomics, as events pass);
//! whoever reports them (the `prometheus` sink) reads them through the pipeline's
//! [`StatsHandle`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

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
    pub(crate) fn new(id: String, channel: Option<&mpsc::Sender<Batch>>, sends: bool) -> NodeStats {
        NodeStats {
            id,
            received: Arc::default(),
            sent: Arc::default(),
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

/// The counts of every node of the running pipeline.
pub struct PipelineStats {
    pub nodes: Vec<NodeStats>,
}

/// The counts of one pipeline, from when it starts to run: handed to the components
/// that report them (the `prometheus` sink) when they are built, before there is
/// anything to count.
#[derive(Clone, Default)]
pub struct StatsHandle(Arc<OnceLock<PipelineStats>>);

impl StatsHandle {
    /// The counts, once the pipeline runs.
    pub fn get(&self) -> Option<&PipelineStats> {
        self.0.get()
    }

    /// Called once by the runtime as the pipeline starts; a second call is ignored.
    pub(crate) fn set(&self, stats: PipelineStats) {
        let _ = self.0.set(stats);
    }
}
