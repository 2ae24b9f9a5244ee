//! Runs a [`Graph`]: one task per node, bounded channels between them, a clock for
//! stages, and an orderly end.
//!
//! Every stage and sink gets one channel; each of its inputs holds a sender to it.
//! Channels hold [`CHANNEL_CAPACITY`] batches: when one is full its sender waits, and
//! the wait travels upstream to the sources, which read later (a log file is its own
//! buffer). No channel is unbounded and nothing is dropped.
//!
//! The end is the same whether the input ran out (`--once`) or a shutdown was asked
//! for: sources return, which drops their senders; each stage drains its channel and
//! returns, dropping its own senders; sinks drain, flush and return. `run` returns
//! when every task has.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::graph::{Component, Graph, Node};
use crate::base::component::{Batch, CHANNEL_CAPACITY, Input, NodeError, Output, Stage, Wiring};
use crate::base::stats::{NodeStats, PipelineStats, Reloads, StatsHandle};

/// A node that stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("node `{id}` failed: {error}")]
pub struct NodeFailed {
    pub id: String,
    #[source]
    pub error: NodeError,
}

/// Makes the graph a reload asks for: the new configuration's, its unchanged nodes
/// marked [`Component::Running`]; `None` when the configuration is refused (the
/// reloader says why).
pub trait Reloader: Send {
    fn reload(&mut self) -> Option<Graph>;
}

/// Runs `graph` until its sources end (or `shutdown` stops them) and everything they
/// emitted has been through the sinks. A node that fails stops the pipeline the same
/// way. Returns the nodes that failed, if any.
pub async fn run(graph: Graph, shutdown: CancellationToken) -> Result<(), Vec<NodeFailed>> {
    let mut pipeline = Pipeline::new(graph.stats.clone(), shutdown);
    pipeline.replace(graph);
    // Nothing can be added to a pipeline that is not reloaded: a channel closes
    // exactly when all the nodes feeding it have stopped.
    pipeline.close_inboxes();
    pipeline.finish(None).await
}

/// [`run`], and on each request on `reloads`, the graph `reloader` makes replaces the
/// running one: nodes it keeps run on untouched (a tail keeps its offsets, a check its
/// phase, a stage its state, a supervised process runs on), nodes it drops are
/// stopped and drained, new ones start, and every edge is wired as it says.
pub async fn run_reloading(
    graph: Graph,
    shutdown: CancellationToken,
    reloads: mpsc::Receiver<()>,
    reloader: Box<dyn Reloader>,
) -> Result<(), Vec<NodeFailed>> {
    let mut pipeline = Pipeline::new(graph.stats.clone(), shutdown);
    pipeline.replace(graph);
    pipeline.finish(Some((reloads, reloader))).await
}

/// A node of the running pipeline.
struct Live {
    id: String,
    /// Where its inputs send: kept while the pipeline may be reloaded, so that new
    /// inputs can be wired to it; `None` for a source, or once it is no longer wired.
    inbox: Option<mpsc::Sender<Batch>>,
    /// Where it sends, which a reload rewires.
    wiring: Arc<Wiring>,
    /// Stops it, if it is a source (sources stop on this token; the rest drain).
    stop: CancellationToken,
    stats: Arc<NodeStats>,
    /// In the current graph (a node a reload dropped runs on until it has drained).
    current: bool,
}

/// The running nodes and their tasks.
struct Pipeline {
    nodes: Vec<Live>,
    tasks: JoinSet<Result<(), NodeFailed>>,
    stats: StatsHandle,
    reloads: Arc<Reloads>,
    /// The services of the running graph.
    services: Arc<[String]>,
    shutdown: CancellationToken,
}

impl Pipeline {
    fn new(stats: StatsHandle, shutdown: CancellationToken) -> Pipeline {
        Pipeline {
            nodes: Vec::new(),
            tasks: JoinSet::new(),
            stats,
            reloads: Arc::default(),
            services: Arc::new([]),
            shutdown,
        }
    }

    /// Makes `graph` the running pipeline: starts its new nodes, lets its
    /// [`Component::Running`] ones run on, drops the nodes it does not have, and wires
    /// every edge as it says.
    fn replace(&mut self, graph: Graph) {
        let mut at: Vec<usize> = Vec::with_capacity(graph.nodes.len());
        let mut started = Vec::new();
        let kept: HashSet<&str> = (graph.nodes.iter())
            .filter(|node| matches!(node.component, Component::Running))
            .map(|node| node.id.as_str())
            .collect();
        // Dropped: stopped if a source, unwired if not (it drains what it has).
        for live in self.nodes.iter_mut().filter(|live| live.current) {
            if !kept.contains(live.id.as_str()) {
                live.current = false;
                live.stop.cancel();
                live.inbox = None;
            }
        }
        self.services = Arc::clone(&graph.services);
        let inputs: Vec<Vec<usize>> = graph.nodes.iter().map(|node| node.inputs.clone()).collect();
        for node in graph.nodes {
            if matches!(node.component, Component::Running) {
                let index = (self.nodes.iter())
                    .position(|live| live.current && live.id == node.id)
                    .expect("a kept node runs");
                at.push(index);
                continue;
            }
            let is_source = matches!(node.component, Component::Source(_));
            let (inbox, receiver) = match is_source {
                true => (None, None),
                false => {
                    let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
                    (Some(sender), Some(receiver))
                }
            };
            // A node replaced by one of the same id goes on counting where it was.
            let before = self.nodes.iter().rev().find(|live| live.id == node.id);
            let stats = Arc::new(NodeStats::new(
                node.id.clone(),
                inbox.as_ref(),
                !matches!(node.component, Component::Sink(_)),
                before.map(|live| &*live.stats),
            ));
            self.nodes.push(Live {
                id: node.id.clone(),
                inbox,
                wiring: Arc::default(),
                stop: self.shutdown.child_token(),
                stats,
                current: true,
            });
            at.push(self.nodes.len() - 1);
            started.push((self.nodes.len() - 1, node, receiver));
        }
        // Every edge of the new graph, to the running nodes' channels.
        let mut outputs: Vec<Vec<mpsc::Sender<Batch>>> = vec![Vec::new(); at.len()];
        for (consumer, inputs) in inputs.iter().enumerate() {
            let inbox = self.nodes[at[consumer]].inbox.clone();
            for &input in inputs {
                outputs[input].push(inbox.clone().expect("only sources have no channel"));
            }
        }
        for (index, downstream) in at.iter().zip(outputs) {
            self.nodes[*index].wiring.replace(downstream);
        }
        for (index, node, receiver) in started {
            self.start(index, node, receiver);
        }
        self.publish_stats();
    }

    fn start(&mut self, index: usize, node: Node, receiver: Option<mpsc::Receiver<Batch>>) {
        let live = &self.nodes[index];
        let sent = Arc::clone(&live.stats.sent);
        let input = receiver.map(|receiver| Input::new(receiver, Arc::clone(&live.stats.received)));
        let wiring = Arc::clone(&live.wiring);
        // A source on a thread of its own that feeds several nodes sends through a
        // relay on this thread (see `relay`), which rewiring then reaches.
        let own = match &node.component {
            Component::Source(source)
                if !source.on_pipeline_thread() && wiring.current().len() > 1 =>
            {
                Arc::new(Wiring::new(vec![relay(Arc::clone(&wiring))]))
            }
            _ => Arc::clone(&wiring),
        };
        let output = Output::new(Arc::clone(&own), sent);
        let id = node.id;
        let task = match (node.component, input) {
            (Component::Source(source), _) => source.run(output, live.stop.clone()),
            (Component::Stage(stage), Some(input)) => Box::pin(run_stage(stage, input, output)),
            (Component::Sink(sink), Some(input)) => sink.run(input),
            (Component::Running, _) | (_, None) => {
                unreachable!("running nodes are not started; stages and sinks have a channel")
            }
        };
        self.tasks.spawn(async move {
            let result = task.await;
            // What it sent through is let go, so that the nodes it fed see their
            // inputs end once all of theirs have.
            own.replace(Vec::new());
            result.map_err(|error| NodeFailed { id, error })
        });
    }

    /// Lets go of every channel's own sender: from now on a channel closes when the
    /// nodes feeding it have stopped.
    fn close_inboxes(&mut self) {
        for live in &mut self.nodes {
            live.inbox = None;
        }
    }

    fn publish_stats(&self) {
        let nodes = (self.nodes.iter())
            .filter(|live| live.current)
            .map(|live| Arc::clone(&live.stats))
            .collect();
        self.stats.set(PipelineStats {
            nodes,
            reloads: Arc::clone(&self.reloads),
            services: Arc::clone(&self.services),
        });
    }

    /// Runs until every task has ended, reloading on request until shutdown.
    async fn finish(
        mut self,
        mut reloading: Option<(mpsc::Receiver<()>, Box<dyn Reloader>)>,
    ) -> Result<(), Vec<NodeFailed>> {
        let mut failed = Vec::new();
        let mut stopping = reloading.is_none();
        loop {
            let request = async {
                match &mut reloading {
                    Some((requests, _)) => requests.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                joined = self.tasks.join_next() => {
                    let Some(joined) = joined else { break };
                    match joined {
                        Ok(Ok(())) => {}
                        // A node that finished with part of its work undone stops
                        // nothing: the others finish theirs, and the run reports the
                        // failure at the end.
                        Ok(Err(failure)) if matches!(failure.error, NodeError::Incomplete(_)) => {
                            tracing::warn!(node = %failure.id, error = %failure.error, "Node finished without doing all of its work.");
                            failed.push(failure);
                        }
                        Ok(Err(failure)) => {
                            // A pipeline missing a node does not do what was configured
                            // (a metrics port that could not be bound, say): stop it all,
                            // loudly, rather than run on half-blind. Sources stop, and
                            // the rest drains as on a signal.
                            tracing::error!(node = %failure.id, error = %failure.error, "Node failed; stopping the pipeline.");
                            self.shutdown.cancel();
                            failed.push(failure);
                        }
                        Err(panic) => std::panic::resume_unwind(panic.into_panic()),
                    }
                }
                () = self.shutdown.cancelled(), if !stopping => {
                    stopping = true;
                    reloading = None;
                    self.close_inboxes();
                }
                Some(()) = request, if !stopping => {
                    let (_, reloader) = reloading.as_mut().expect("a request came");
                    match reloader.reload() {
                        Some(graph) => {
                            self.reloads.replaced.fetch_add(1, Ordering::Relaxed);
                            self.replace(graph);
                        }
                        None => {
                            self.reloads.refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
        }
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed)
        }
    }
}

/// A channel whose batches a task of this runtime passes on to each of `downstream`.
///
/// Sources run on threads of their own (see `dedicated`); a batch they sent to several
/// channels here would wake this runtime's thread once per channel, which costs more
/// than the batch of a live log. Through the relay it wakes once, and the relay's
/// sends stay on this thread. Backpressure is kept: the relay waits on a full
/// downstream channel, and its own channel then fills; when every downstream node has
/// stopped, the relay stops and the source learns it. Once the source has stopped and
/// its last batches are passed on, the relay lets `downstream` go.
fn relay(downstream: Arc<Wiring>) -> mpsc::Sender<Batch> {
    let (sender, mut receiver) = mpsc::channel::<Batch>(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            let channels = downstream.current();
            let mut delivered = channels.is_empty();
            for channel in channels.iter() {
                delivered |= channel.send(Arc::clone(&batch)).await.is_ok();
            }
            if !delivered {
                break;
            }
        }
        downstream.replace(Vec::new());
    });
    sender
}

/// Drives a stage: each event of each batch with the time the batch was taken, ticks
/// on the stage's interval, and what it emits sent on as one batch per batch taken
/// (with those that queued behind it), once what the stage asks to wait for
/// ([`Stage::before_sending`]) is done.
async fn run_stage(
    mut stage: Box<dyn Stage>,
    mut input: Input,
    output: Output,
) -> Result<(), NodeError> {
    let mut ticks = stage.tick_interval().map(|every| {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    let mut emitted = Vec::new();
    loop {
        tokio::select! {
            batch = input.recv() => {
                let Some(batch) = batch else { break };
                let now = SystemTime::now();
                // Batches that queued meanwhile (behind a slow downstream, or a save the
                // stage waited for) are handled with this one and sent on together: one
                // end of batch (one save), one wait, one wake-up downstream.
                let queued = std::iter::from_fn(|| input.try_recv()).take(CHANNEL_CAPACITY);
                for batch in std::iter::once(batch).chain(queued) {
                    for event in batch.iter() {
                        stage.on_event(event, now, &mut emitted);
                    }
                }
                stage.on_batch_end(now);
            }
            // Never ready for a stage without ticks.
            _ = next_tick(&mut ticks) => stage.on_tick(SystemTime::now(), &mut emitted),
        }
        if let (false, Some(saved)) = (emitted.is_empty(), stage.before_sending()) {
            saved.await;
        }
        if output.send(std::mem::take(&mut emitted)).await.is_err() {
            break;
        }
    }
    Ok(())
}

async fn next_tick(ticks: &mut Option<tokio::time::Interval>) {
    match ticks {
        Some(ticks) => {
            ticks.tick().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::component::{Sink, Source};
    use crate::base::event::{Event, LogLines};
    use crate::base::stats::StatsHandle;
    use crate::pipeline::graph::Node;
    use futures::future::BoxFuture;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, UNIX_EPOCH};

    /// Emits `count` one-line blocks, then ends; counts what it sent in `sent`.
    struct Counting(u32, Arc<AtomicUsize>);

    /// A `Counting` that says it runs on the pipeline's thread: it sends without a relay.
    struct CountingHere(Counting);

    impl Source for CountingHere {
        fn run(
            self: Box<Self>,
            out: Output,
            shutdown: CancellationToken,
        ) -> BoxFuture<'static, Result<(), NodeError>> {
            Box::new(self.0).run(out, shutdown)
        }

        fn on_pipeline_thread(&self) -> bool {
            true
        }
    }

    impl Source for Counting {
        fn run(
            self: Box<Self>,
            out: Output,
            _: CancellationToken,
        ) -> BoxFuture<'static, Result<(), NodeError>> {
            Box::pin(async move {
                for n in 0..self.0 {
                    let event = lines(&format!("{n}\n"));
                    if out.send(vec![event]).await.is_err() {
                        break;
                    }
                    self.1.fetch_add(1, Ordering::SeqCst);
                }
                Ok(())
            })
        }
    }

    fn lines(text: &str) -> Event {
        let text = bytes::Bytes::from(text.to_owned());
        Event::LogLines(LogLines {
            service: "s".into(),
            path: "p".into(),
            at: UNIX_EPOCH,
            text,
            lines: 1,
            cut: 0,
            lossy: 0,
        })
    }

    /// Passes events on and emits one more event per tick.
    struct Ticking;

    impl Stage for Ticking {
        fn on_event(&mut self, event: &Event, _: SystemTime, out: &mut Vec<Event>) {
            out.push(event.clone());
        }
        fn on_tick(&mut self, _: SystemTime, out: &mut Vec<Event>) {
            out.push(lines("tick\n"));
        }
        fn tick_interval(&self) -> Option<Duration> {
            Some(Duration::from_secs(3600))
        }
    }

    /// Records the text of every block, taking `delay` per batch. With `lag`, it also
    /// records the most the source was ever ahead of it, in events.
    struct Collect {
        seen: Arc<Mutex<Vec<String>>>,
        delay: Duration,
        lag: Option<(Arc<AtomicUsize>, Arc<AtomicUsize>)>,
    }

    impl Sink for Collect {
        fn run(self: Box<Self>, mut input: Input) -> BoxFuture<'static, Result<(), NodeError>> {
            Box::pin(async move {
                while let Some(batch) = input.recv().await {
                    tokio::time::sleep(self.delay).await;
                    let mut seen = self.seen.lock().unwrap();
                    for event in batch.iter() {
                        if let Event::LogLines(lines) = event {
                            seen.push(String::from_utf8(lines.text.to_vec()).unwrap());
                        }
                    }
                    if let Some((sent, most)) = &self.lag {
                        // Every source event reaches this sink twice (directly, and
                        // through the stage).
                        let received = seen.iter().filter(|text| *text != "tick\n").count() / 2;
                        most.fetch_max(
                            sent.load(Ordering::SeqCst).saturating_sub(received),
                            Ordering::SeqCst,
                        );
                    }
                }
                Ok(())
            })
        }
    }

    fn node(id: &str, inputs: Vec<usize>, component: Component) -> Node {
        Node {
            id: id.into(),
            inputs,
            component,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_sink_slows_the_source_and_loses_nothing_even_when_fanned_out() {
        for relayed in [true, false] {
            fan_out_to_a_slow_sink(relayed).await;
        }
    }

    /// A source feeding a stage and a slow sink, sending through a relay or (a source
    /// on the pipeline's thread) to both itself.
    async fn fan_out_to_a_slow_sink(relayed: bool) {
        let (fast, slow) = (
            Arc::new(Mutex::new(Vec::new())),
            Arc::new(Mutex::new(Vec::new())),
        );
        let (sent, lag) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let fast_sink = Collect {
            seen: fast.clone(),
            delay: Duration::ZERO,
            lag: None,
        };
        let slow_sink = Collect {
            seen: slow.clone(),
            delay: Duration::from_millis(10),
            lag: Some((sent.clone(), lag.clone())),
        };
        let graph = Graph {
            nodes: vec![
                node(
                    "source",
                    vec![],
                    match relayed {
                        true => Component::Source(Box::new(Counting(500, sent))),
                        false => Component::Source(Box::new(CountingHere(Counting(500, sent)))),
                    },
                ),
                node("stage", vec![0], Component::Stage(Box::new(Ticking))),
                node("fast", vec![1], Component::Sink(Box::new(fast_sink))),
                node("slow", vec![1, 0], Component::Sink(Box::new(slow_sink))),
            ],
            stats: StatsHandle::default(),
            shared: Default::default(),
            services: Arc::new([]),
        };
        run(graph, CancellationToken::new()).await.unwrap();
        let expected: Vec<String> = (0..500).map(|n| format!("{n}\n")).collect();
        let ticks = |seen: &[String]| seen.iter().filter(|t| *t == "tick\n").count();
        let fast = fast.lock().unwrap().clone();
        assert_eq!(ticks(&fast), 1, "the first tick fires at once");
        let fast_lines: Vec<String> = fast.iter().filter(|t| *t != "tick\n").cloned().collect();
        assert_eq!(
            fast_lines, expected,
            "in order, none lost (relayed: {relayed})"
        );
        let slow = slow.lock().unwrap();
        assert_eq!(
            slow.len(),
            1001,
            "each line twice (from the source and the stage) plus the tick"
        );
        // Bounded channels: the source never ran more than a few channels ahead of the
        // slow sink (its relay's and the sink's: about 17 with CHANNEL_CAPACITY 8; with
        // unbounded channels, or a capacity of thousands, it runs all 500 ahead).
        let most = lag.load(Ordering::SeqCst);
        assert!(
            most <= 3 * CHANNEL_CAPACITY,
            "the source got {most} events ahead (relayed: {relayed})"
        );
    }

    /// Passes events on once `open` is notified: as the alert stage holds its
    /// notifications until its state is on disk.
    struct Gated(Arc<tokio::sync::Notify>);

    impl Stage for Gated {
        fn on_event(&mut self, event: &Event, _: SystemTime, out: &mut Vec<Event>) {
            out.push(event.clone());
        }
        fn before_sending(&self) -> Option<BoxFuture<'static, ()>> {
            let open = Arc::clone(&self.0);
            Some(Box::pin(async move { open.notified().await }))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn what_a_stage_emitted_waits_for_what_it_asks_to_wait_for() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(tokio::sync::Notify::new());
        let sink = Collect {
            seen: seen.clone(),
            delay: Duration::ZERO,
            lag: None,
        };
        let source = Counting(1, Arc::new(AtomicUsize::new(0)));
        let graph = Graph {
            nodes: vec![
                node("source", vec![], Component::Source(Box::new(source))),
                node(
                    "stage",
                    vec![0],
                    Component::Stage(Box::new(Gated(open.clone()))),
                ),
                node("sink", vec![1], Component::Sink(Box::new(sink))),
            ],
            stats: StatsHandle::default(),
            shared: Default::default(),
            services: Arc::new([]),
        };
        let running = tokio::spawn(run(graph, CancellationToken::new()));
        // Paused time runs on as soon as every task waits: an hour with nothing sent.
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(seen.lock().unwrap().is_empty(), "sent before it was let go");
        open.notify_one();
        running.await.unwrap().unwrap();
        assert_eq!(*seen.lock().unwrap(), ["0\n"]);
    }
}
