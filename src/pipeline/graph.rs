//! From configured nodes to a checked graph of built components.
//!
//! The checks: every id is used once across sources, stages and sinks; every input
//! names an existing source or stage; stages form no cycle; each input emits a kind of
//! event its consumer takes; and (a warning) every source and stage feeds something.
//! Then each component is built through its kind's registry, with a [`BuildContext`]
//! (a stage's patterns are compiled here, relative paths resolved; values a decoder
//! could check, such as a probe's URL or regex, were parsed already). Errors go to the
//! file's [`Diagnostics`], at the place of what is wrong.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::base::component::{Sink, Source, Stage};
use crate::base::diagnostics::{Diagnostics, closest};
use crate::base::event::EventKind;
use crate::base::registry::{BuildContext, Shared};
use crate::base::stats::StatsHandle;
use crate::base::text::list;
use crate::config::pipeline::{NodeConfig, PipelineConfig};

/// How the components are to run.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildOptions {
    /// One pass over the input (`run --once`) rather than following it.
    pub once: bool,
    /// Built to be checked (`validate`, `config expand`), never run.
    pub checking: bool,
}

/// A built component.
pub enum Component {
    Source(Box<dyn Source>),
    Stage(Box<dyn Stage>),
    Sink(Box<dyn Sink>),
    /// A node a reload keeps: it runs already, as configured (see [`Graph::rebuild`]).
    Running,
}

/// A node of the graph: its id, the indexes of its inputs, its component.
pub struct Node {
    pub id: String,
    pub inputs: Vec<usize>,
    pub component: Component,
}

/// A checked pipeline, ready for the runtime.
pub struct Graph {
    pub nodes: Vec<Node>,
    /// Its counts, which its components were given when built; the runtime fills them.
    pub stats: StatsHandle,
    /// What its components share; a reload builds its new components with the same.
    pub shared: Arc<Shared>,
    /// The services its sources watch or run, sorted.
    pub services: Arc<[String]>,
}

/// What the checks need to know of a node, whatever its section.
struct Shape<'a> {
    id: &'a str,
    section: &'static str,
    inputs: &'a [String],
    accepts: &'static [EventKind],
    outputs: &'static [EventKind],
    path: &'a crate::base::key_path::KeyPath,
}

impl Graph {
    /// Checks `config` and builds its components; `None` if anything was wrong (all of
    /// it reported to `diag`). `base` is the folder relative paths start from.
    ///
    /// Components are built even when decoding already found errors, so that a bad
    /// regex is reported with a typo elsewhere; the edges are checked only when every
    /// node decoded, since an input naming a node that failed to decode is no error.
    pub fn build(
        config: &PipelineConfig,
        base: &Path,
        options: &BuildOptions,
        diag: &mut Diagnostics,
    ) -> Option<Graph> {
        let (stats, shared) = (StatsHandle::default(), Arc::default());
        Graph::build_within(config, base, options, diag, stats, shared, &|_| false)
    }

    /// Checks `config` as [`Graph::build`] does, for a reload of the pipeline whose
    /// counts and shared state are `running`: the nodes `keep` names are not built
    /// again ([`Component::Running`]), the others are built with those.
    pub fn rebuild(
        config: &PipelineConfig,
        base: &Path,
        diag: &mut Diagnostics,
        running: (&StatsHandle, &Arc<Shared>),
        keep: &dyn Fn(&str) -> bool,
    ) -> Option<Graph> {
        let (stats, shared) = (running.0.clone(), Arc::clone(running.1));
        Graph::build_within(
            config,
            base,
            &BuildOptions::default(),
            diag,
            stats,
            shared,
            keep,
        )
    }

    fn build_within(
        config: &PipelineConfig,
        base: &Path,
        options: &BuildOptions,
        diag: &mut Diagnostics,
        stats: StatsHandle,
        shared: Arc<Shared>,
        keep: &dyn Fn(&str) -> bool,
    ) -> Option<Graph> {
        let decoded_cleanly = !diag.has_errors();
        let around = Surroundings {
            base,
            once: options.once,
            checking: options.checking,
            stats: &stats,
            shared: &shared,
        };
        let mut shapes = Vec::new();
        let mut components = Vec::new();
        for n in &config.sources {
            shapes.push(shape(n, "source", &[], n.config.emits()));
            if keep(&n.id) {
                components.push(Some(Component::Running));
                continue;
            }
            let mut cx = around.context(n, &[], diag);
            components.push(n.config.build(&mut cx).map(Component::Source));
        }
        for n in &config.stages {
            shapes.push(shape(n, "stage", n.config.accepts(), n.config.emits()));
            if keep(&n.id) {
                components.push(Some(Component::Running));
                continue;
            }
            let mut cx = around.context(n, &[], diag);
            components.push(n.config.build(&mut cx).map(Component::Stage));
        }
        for n in &config.sinks {
            shapes.push(shape(n, "sink", n.config.accepts(), &[]));
            if keep(&n.id) {
                components.push(Some(Component::Running));
                continue;
            }
            // The health checks that feed the sink directly (a check's results go
            // straight from its source), so that it knows what to wait for.
            let checks: Vec<(&str, &str)> = (config.sources.iter())
                .filter(|source| n.inputs.contains(&source.id))
                .filter_map(|source| source.config.check())
                .collect();
            let mut cx = around.context(n, &checks, diag);
            components.push(n.config.build(&mut cx).map(Component::Sink));
        }
        if !decoded_cleanly {
            return None;
        }
        let inputs = resolve(&shapes, diag);
        check_cycles(&shapes, &inputs, diag);
        if diag.has_errors() {
            return None;
        }
        warn_unused(&shapes, &inputs, diag);
        let nodes = shapes
            .iter()
            .zip(inputs)
            .zip(components)
            .map(|((shape, inputs), component)| Node {
                id: shape.id.to_owned(),
                inputs,
                component: component.expect("no errors, so every component was built"),
            })
            .collect();
        let mut services: Vec<String> = (config.sources.iter())
            .filter_map(|source| source.config.service())
            .map(str::to_owned)
            .collect();
        services.sort();
        services.dedup();
        Some(Graph {
            nodes,
            stats,
            shared,
            services: services.into(),
        })
    }

    /// Adds a sink fed by every source and stage (the `--once` summary).
    pub fn add_sink_of_everything(&mut self, id: &str, sink: Box<dyn Sink>) {
        let inputs = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| !matches!(n.component, Component::Sink(_)))
            .map(|(i, _)| i)
            .collect();
        self.nodes.push(Node {
            id: id.to_owned(),
            inputs,
            component: Component::Sink(sink),
        });
    }

    /// Removes the daemon's sinks the service-centric form added (see
    /// [`NodeConfig::implicit`]), given the configuration the graph was built from.
    pub fn remove_implicit_sinks(&mut self, config: &PipelineConfig) {
        let implicit: Vec<&str> = config
            .sinks
            .iter()
            .filter(|s| s.implicit)
            .map(|s| s.id.as_str())
            .collect();
        self.nodes.retain(|node| {
            !(matches!(node.component, Component::Sink(_)) && implicit.contains(&node.id.as_str()))
        });
    }
}

/// What the build contexts of one pipeline's nodes have in common.
struct Surroundings<'a> {
    base: &'a Path,
    once: bool,
    checking: bool,
    stats: &'a StatsHandle,
    shared: &'a Shared,
}

impl<'a> Surroundings<'a> {
    fn context<'d, C>(
        &self,
        node: &'a NodeConfig<C>,
        checks: &'a [(&'a str, &'a str)],
        diag: &'a mut Diagnostics<'d>,
    ) -> BuildContext<'a, 'd> {
        BuildContext {
            id: &node.id,
            base: self.base,
            once: self.once,
            checking: self.checking,
            diag,
            stats: self.stats,
            checks,
            shared: self.shared,
        }
    }
}

fn shape<'a, C>(
    node: &'a NodeConfig<C>,
    section: &'static str,
    accepts: &'static [EventKind],
    outputs: &'static [EventKind],
) -> Shape<'a> {
    Shape {
        id: &node.id,
        section,
        inputs: &node.inputs,
        accepts,
        outputs,
        path: &node.path,
    }
}

/// Checks ids and inputs; returns each node's input indexes.
fn resolve(shapes: &[Shape], diag: &mut Diagnostics) -> Vec<Vec<usize>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, shape) in shapes.iter().enumerate() {
        if let Some(&first) = index.get(shape.id) {
            let message = format!(
                "id `{}` is already used by a {}; every node needs its own id",
                shape.id, shapes[first].section
            );
            diag.error_at_key(shape.path, message);
        } else {
            index.insert(shape.id, i);
        }
    }
    let producers: Vec<&str> = shapes
        .iter()
        .filter(|s| !s.outputs.is_empty())
        .map(|s| s.id)
        .collect();
    let mut resolved = Vec::with_capacity(shapes.len());
    for shape in shapes {
        let mut inputs = Vec::new();
        let inputs_path = shape.path.key("inputs");
        if shape.section != "source" && shape.inputs.is_empty() {
            diag.error(
                &inputs_path,
                "no inputs; list the ids of the nodes that feed this one",
            );
        }
        for (k, input) in shape.inputs.iter().enumerate() {
            let at = inputs_path.index(k);
            let Some(&upstream) = index.get(input.as_str()) else {
                let mut message = format!(
                    "unknown input `{input}`; the sources and stages are {}",
                    list(&producers)
                );
                if let Some(close) = closest(input, producers.iter().copied()) {
                    message.push_str(&format!(" (did you mean `{close}`?)"));
                }
                diag.error(&at, message);
                continue;
            };
            let from = &shapes[upstream];
            if from.outputs.is_empty() {
                diag.error(
                    &at,
                    format!("input `{input}` is a sink; only sources and stages emit events"),
                );
                continue;
            }
            if !from.outputs.iter().any(|kind| shape.accepts.contains(kind)) {
                let message = format!(
                    "input `{input}` emits {}, but this {} takes only {}",
                    kinds(from.outputs),
                    shape.section,
                    kinds(shape.accepts)
                );
                diag.error(&at, message);
            }
            // Kept even when the kinds do not fit, so that cycles are still found.
            if !inputs.contains(&upstream) {
                inputs.push(upstream);
            }
        }
        resolved.push(inputs);
    }
    resolved
}

fn kinds(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|kind| kind.describe())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Reports a cycle among stages, once, at the stage where the walk closes it.
fn check_cycles(shapes: &[Shape], inputs: &[Vec<usize>], diag: &mut Diagnostics) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit(
        node: usize,
        inputs: &[Vec<usize>],
        marks: &mut [Mark],
        trail: &mut Vec<usize>,
    ) -> Option<Vec<usize>> {
        marks[node] = Mark::Open;
        trail.push(node);
        for &upstream in &inputs[node] {
            match marks[upstream] {
                Mark::Open => {
                    let start = trail
                        .iter()
                        .position(|&n| n == upstream)
                        .expect("open nodes are on the trail");
                    return Some(trail[start..].to_vec());
                }
                Mark::New => {
                    if let Some(cycle) = visit(upstream, inputs, marks, trail) {
                        return Some(cycle);
                    }
                }
                Mark::Done => {}
            }
        }
        trail.pop();
        marks[node] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; shapes.len()];
    for node in 0..shapes.len() {
        if marks[node] == Mark::New
            && let Some(cycle) = visit(node, inputs, &mut marks, &mut Vec::new())
        {
            // The walk follows inputs, so the cycle is listed against the flow.
            let names: Vec<String> = cycle
                .iter()
                .rev()
                .chain(cycle.last())
                .map(|&n| format!("`{}`", shapes[n].id))
                .collect();
            let message = format!(
                "stages {} form a cycle; events must flow one way",
                names.join(" → ")
            );
            diag.error(&shapes[cycle[0]].path.key("inputs"), message);
            return;
        }
    }
}

fn warn_unused(shapes: &[Shape], inputs: &[Vec<usize>], diag: &mut Diagnostics) {
    for (i, shape) in shapes.iter().enumerate() {
        let used = inputs.iter().any(|ins| ins.contains(&i));
        if !shape.outputs.is_empty() && !used {
            diag.warn(
                shape.path,
                format!(
                    "`{}` feeds nothing: no stage or sink takes its events",
                    shape.id
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::spans::SpanIndex;
    use crate::base::stats::PipelineStats;
    use crate::config;

    /// Loads `text` as a configuration file would be: every error and warning, as
    /// `line: path: message`, and how many nodes the graph has if it was built.
    fn load(text: &str) -> (Vec<String>, Option<usize>) {
        let spans = SpanIndex::build(text);
        let mut diag = Diagnostics::new(&spans);
        let graph = config::parse(text, &spans, &mut diag).and_then(|pipeline| {
            Graph::build(
                &pipeline,
                Path::new("/"),
                &BuildOptions::default(),
                &mut diag,
            )
        });
        let (errors, warnings) = diag.finish();
        let problems = (errors.iter().chain(&warnings))
            .map(|d| format!("{}: {}: {}", d.mark.line, d.path, d.message))
            .collect();
        (problems, graph.map(|graph| graph.nodes.len()))
    }

    const CHECK: &str = "sources:\n  up: {type: tcp_probe, service: s, address: '127.0.0.1:1'}\n";

    #[test]
    fn a_stage_in_the_registry_is_decoded_checked_and_built() {
        // `pass_results`, a stage only tests know, added as any stage is.
        let text = format!(
            "{CHECK}stages:\n  pass: {{type: pass_results, inputs: [up]}}\nsinks:\n  out: {{type: console, inputs: [pass]}}\n"
        );
        assert_eq!(load(&text), (vec![], Some(3)));
    }

    #[test]
    fn its_name_is_suggested_and_its_event_kinds_checked() {
        let typo = format!(
            "{CHECK}stages:\n  pass: {{type: pass_result, inputs: [up]}}\nsinks:\n  out: {{type: console, inputs: [pass]}}\n"
        );
        let (problems, graph) = load(&typo);
        assert_eq!(graph, None);
        assert_eq!(
            problems,
            [
                "4: stages.pass.type: unknown type `pass_result`; expected one of `log_patterns`, `log_fields`, `anomaly`, `alert`, `pass_results` (did you mean `pass_results`?)"
            ]
        );
        // The type is judged first: without it, the node's other keys mean nothing.
        let (problems, _) = load(&format!("{CHECK}stages:\n  pass: {{type: pass_result}}\n"));
        assert_eq!(
            problems,
            [
                "4: stages.pass.type: unknown type `pass_result`; expected one of `log_patterns`, `log_fields`, `anomaly`, `alert`, `pass_results` (did you mean `pass_results`?)"
            ]
        );
        let logs = "sources:\n  app: {type: log_tail, service: s, paths: [/a.log]}\nstages:\n  pass: {type: pass_results, inputs: [app]}\nsinks:\n  out: {type: console, inputs: [pass]}\n";
        let (problems, graph) = load(logs);
        assert_eq!(graph, None);
        assert_eq!(
            problems,
            [
                "4: stages.pass.inputs[0]: input `app` emits log lines, but this stage takes only probe results"
            ]
        );
    }

    #[test]
    fn each_pipeline_has_its_own_counts() {
        let text = format!("{CHECK}sinks:\n  out: {{type: prometheus, inputs: [up]}}\n");
        let build = || {
            let spans = SpanIndex::build(&text);
            let mut diag = Diagnostics::new(&spans);
            let pipeline = config::parse(&text, &spans, &mut diag).unwrap();
            Graph::build(
                &pipeline,
                Path::new("/"),
                &BuildOptions::default(),
                &mut diag,
            )
            .unwrap()
        };
        let (first, second) = (build(), build());
        first.stats.set(PipelineStats {
            nodes: Vec::new(),
            reloads: Default::default(),
            services: Arc::new([]),
        });
        assert!(first.stats.get().is_some());
        assert!(
            second.stats.get().is_none(),
            "a second pipeline reads the first's counts"
        );
    }

    #[test]
    fn no_two_types_of_a_kind_share_a_name() {
        use crate::sinks::SinkConfig;
        use crate::sources::SourceConfig;
        use crate::stages::StageConfig;
        for types in [
            SourceConfig::types(),
            StageConfig::types(),
            SinkConfig::types(),
        ] {
            let mut sorted = types.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), types.len(), "{types:?}");
        }
    }
}
