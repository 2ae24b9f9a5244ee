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

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::graph::{Component, Graph};
use crate::base::component::{Batch, CHANNEL_CAPACITY, Input, NodeError, Output, Stage};
use crate::base::stats::{NodeStats, PipelineStats};

/// A node that stopped with an error.
#[derive(Debug, thiserror::Error)]
#[error("node `{id}` failed: {error}")]
pub struct NodeFailed {
    pub id: String,
    #[source]
    pub error: NodeError,
}

/// Runs `graph` until its sources end (or `shutdown` stops them) and everything they
/// emitted has been through the sinks. A node that fails stops the pipeline the same
/// way. Returns the nodes that failed, if any.
pub async fn run(graph: Graph, shutdown: CancellationToken) -> Result<(), Vec<NodeFailed>> {
    let count = graph.nodes.len();
    let mut senders: Vec<Option<mpsc::Sender<Batch>>> = Vec::with_capacity(count);
    let mut receivers: Vec<Option<mpsc::Receiver<Batch>>> = Vec::with_capacity(count);
    for node in &graph.nodes {
        if matches!(node.component, Component::Source(_)) {
            senders.push(None);
            receivers.push(None);
        } else {
            let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
            senders.push(Some(sender));
            receivers.push(Some(receiver));
        }
    }
    let mut outputs: Vec<Vec<mpsc::Sender<Batch>>> = vec![Vec::new(); count];
    for (consumer, node) in graph.nodes.iter().enumerate() {
        for &input in &node.inputs {
            outputs[input].push(
                senders[consumer]
                    .clone()
                    .expect("only sources have no channel"),
            );
        }
    }
    let stats: Vec<NodeStats> = (graph.nodes.iter().zip(&senders))
        .map(|(node, sender)| {
            let sends = !matches!(node.component, Component::Sink(_));
            NodeStats::new(node.id.clone(), sender.as_ref(), sends)
        })
        .collect();
    let counters: Vec<_> = (stats.iter())
        .map(|node| (Arc::clone(&node.sent), Arc::clone(&node.received)))
        .collect();
    graph.stats.set(PipelineStats { nodes: stats });
    // The original senders are dropped here, so a channel closes exactly when all the
    // nodes feeding it have stopped.
    drop(senders);

    let mut tasks = JoinSet::new();
    let nodes = graph
        .nodes
        .into_iter()
        .zip(outputs)
        .zip(receivers)
        .zip(counters);
    for (((node, mut output), receiver), (sent, received)) in nodes {
        if matches!(node.component, Component::Source(_)) && output.len() > 1 {
            output = vec![relay(output)];
        }
        let output = Output::new(output, sent);
        let input = receiver.map(|receiver| Input::new(receiver, received));
        let id = node.id;
        let task = match (node.component, input) {
            (Component::Source(source), _) => source.run(output, shutdown.clone()),
            (Component::Stage(stage), Some(input)) => Box::pin(run_stage(stage, input, output)),
            (Component::Sink(sink), Some(input)) => sink.run(input),
            (_, None) => unreachable!("stages and sinks were given a channel above"),
        };
        tasks.spawn(async move { task.await.map_err(|error| NodeFailed { id, error }) });
    }
    let mut failed = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            // A node that finished with part of its work undone stops nothing: the
            // others finish theirs, and the run reports the failure at the end.
            Ok(Err(failure)) if matches!(failure.error, NodeError::Incomplete(_)) => {
                tracing::warn!(node = %failure.id, error = %failure.error, "Node finished without doing all of its work.");
                failed.push(failure);
            }
            Ok(Err(failure)) => {
                // A pipeline missing a node does not do what was configured (a metrics
                // port that could not be bound, say): stop it all, loudly, rather than
                // run on half-blind. Sources stop, and the rest drains as on a signal.
                tracing::error!(node = %failure.id, error = %failure.error, "Node failed; stopping the pipeline.");
                shutdown.cancel();
                failed.push(failure);
            }
            Err(panic) => std::panic::resume_unwind(panic.into_panic()),
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed)
    }
}

/// A channel whose batches a task of this runtime passes on to each of `downstream`.
///
/// Sources run on threads of their own (see `dedicated`); a batch they sent to several
/// channels here would wake this runtime's thread once per channel, which costs more
/// than the batch of a live log. Through the relay it wakes once, and the relay's
/// sends stay on this thread. Backpressure is kept: the relay waits on a full
/// downstream channel, and its own channel then fills; when every downstream node has
/// stopped, the relay stops and the source learns it.
fn relay(downstream: Vec<mpsc::Sender<Batch>>) -> mpsc::Sender<Batch> {
    let (sender, mut receiver) = mpsc::channel::<Batch>(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        while let Some(batch) = receiver.recv().await {
            let mut delivered = false;
            for channel in &downstream {
                delivered |= channel.send(Arc::clone(&batch)).await.is_ok();
            }
            if !delivered {
                break;
            }
        }
    });
    sender
}

/// Drives a stage: each event of each batch with the time the batch arrived, ticks on
/// the stage's interval, and what it emits sent on as one batch per input batch.
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
                for event in batch.iter() {
                    stage.on_event(event, now, &mut emitted);
                }
                stage.on_batch_end(now);
            }
            // Never ready for a stage without ticks.
            _ = next_tick(&mut ticks) => stage.on_tick(SystemTime::now(), &mut emitted),
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
                    Component::Source(Box::new(Counting(500, sent))),
                ),
                node("stage", vec![0], Component::Stage(Box::new(Ticking))),
                node("fast", vec![1], Component::Sink(Box::new(fast_sink))),
                node("slow", vec![1, 0], Component::Sink(Box::new(slow_sink))),
            ],
            stats: StatsHandle::default(),
        };
        run(graph, CancellationToken::new()).await.unwrap();
        let expected: Vec<String> = (0..500).map(|n| format!("{n}\n")).collect();
        let ticks = |seen: &[String]| seen.iter().filter(|t| *t == "tick\n").count();
        let fast = fast.lock().unwrap().clone();
        assert_eq!(ticks(&fast), 1, "the first tick fires at once");
        let fast_lines: Vec<String> = fast.iter().filter(|t| *t != "tick\n").cloned().collect();
        assert_eq!(fast_lines, expected, "in order, none lost");
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
            "the source got {most} events ahead"
        );
    }
}
