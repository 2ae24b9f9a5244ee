//! The pipeline form: `sources`, `stages` and `sinks`, each a map from id to a typed
//! node, stages and sinks naming their `inputs`.
//!
//! This module decodes that form into a [`PipelineConfig`], the one shape both forms
//! end up in (the service-centric form expands into it), and prints it back for
//! `aegis config expand`. Each node's options are decoded by its component's own
//! config type; checking the graph is `pipeline::graph`'s job.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use super::names;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::EventKind;
use crate::base::key_path::KeyPath;
use crate::base::paths;
use crate::base::registry::unknown_type;
use crate::base::text::list;
use crate::sinks::SinkConfig;
use crate::sources::SourceConfig;
use crate::stages::StageConfig;

/// A whole configuration, as nodes: what the graph is built from.
#[derive(Debug, Default)]
pub struct PipelineConfig {
    pub sources: Vec<NodeConfig<SourceConfig>>,
    pub stages: Vec<NodeConfig<StageConfig>>,
    pub sinks: Vec<NodeConfig<SinkConfig>>,
}

/// One node: its id, what feeds it, its component's options, and where it was
/// written (for a node the service-centric form generated, what it came from).
#[derive(Debug)]
pub struct NodeConfig<C> {
    pub id: String,
    pub inputs: Vec<String>,
    pub config: C,
    pub path: KeyPath,
    /// A sink the service-centric form adds for the daemon (the default console, the
    /// `prometheus:` exporter); `run --once` replaces such sinks with its summary.
    pub implicit: bool,
}

/// The three sections of the pipeline form.
pub const SECTIONS: [&str; 3] = ["sources", "stages", "sinks"];

/// Decodes the pipeline-form sections of `top`.
pub fn decode(top: &Mapping, diag: &mut Diagnostics) -> PipelineConfig {
    let mut config = PipelineConfig::default();
    let mut log_files = LogFiles::default();
    for section in SECTIONS {
        let Some(value) = top.get(section) else {
            continue;
        };
        let path = KeyPath::root().key(section);
        let Some(nodes) = value.as_mapping() else {
            diag.error(
                &path,
                format!(
                    "expected a map from node id to node, found {}",
                    describe(value)
                ),
            );
            continue;
        };
        for (id, node) in nodes {
            let Some(id) = id.as_str() else {
                diag.error(
                    &path,
                    format!("node ids must be strings, found {}", describe(id)),
                );
                continue;
            };
            let node_path = path.key(id);
            if let Some(message) = names::problem("node id", id) {
                diag.error_at_key(&node_path, message);
            }
            match section {
                "sources" => {
                    let source = decode_node(
                        id,
                        node,
                        &node_path,
                        false,
                        &SourceConfig::types(),
                        SourceConfig::decode,
                        diag,
                    );
                    if let Some(source) = &source {
                        check_source_names(source, diag);
                        if let SourceConfig::LogTail(_) = source.config {
                            log_files.add(node, &node_path, diag);
                        }
                    }
                    config.sources.extend(source);
                }
                "stages" => {
                    let stage = decode_node(
                        id,
                        node,
                        &node_path,
                        true,
                        &StageConfig::types(),
                        StageConfig::decode,
                        diag,
                    );
                    if let Some(StageConfig::LogPatterns(stage)) = stage.as_ref().map(|n| &n.config)
                    {
                        names::check_patterns(diag, &stage.patterns);
                    }
                    config.stages.extend(stage);
                }
                _ => config.sinks.extend(decode_node(
                    id,
                    node,
                    &node_path,
                    true,
                    &SinkConfig::types(),
                    SinkConfig::decode,
                    diag,
                )),
            }
        }
    }
    for (section, empty) in [
        ("sources", config.sources.is_empty()),
        ("sinks", config.sinks.is_empty()),
    ] {
        if empty && !diag.has_errors() {
            diag.error(
                &KeyPath::root().key(section),
                format!("no {section}; a pipeline needs at least one"),
            );
        }
    }
    config
}

/// The files the `log_tail` sources list, to warn about one listed twice: by a source
/// or by two. The tail reads each file once, so a repeat is harmless but a mistake.
#[derive(Default)]
struct LogFiles {
    /// Each file, as a normalised path, with its first place: as written, and where.
    listed: Vec<(PathBuf, String, KeyPath)>,
}

impl LogFiles {
    /// Adds the `paths` of a `log_tail` node written at `at`, which decoded (so they
    /// are strings); warns about each path that names a file listed before.
    fn add(&mut self, node: &Value, at: &KeyPath, diag: &mut Diagnostics) {
        let listed_here = node.get("paths").and_then(Value::as_sequence);
        for (k, written) in listed_here.into_iter().flatten().enumerate() {
            let Some(written) = written.as_str() else {
                continue;
            };
            let here = at.key("paths").index(k);
            let normal = paths::normalize(Path::new(written));
            match self.listed.iter().find(|(other, ..)| *other == normal) {
                Some((_, first, first_at)) => {
                    let message = format!(
                        "`{written}` names the same file as `{first}` at line {} (`{first_at}`); each file is read once, so list it once",
                        diag.line_of(first_at)
                    );
                    diag.warn(&here, message);
                }
                None => self.listed.push((normal, written.to_owned(), here)),
            }
        }
    }
}

/// Reports the service and check names of a source that hold a control character.
fn check_source_names(source: &NodeConfig<SourceConfig>, diag: &mut Diagnostics) {
    let (service, check) = match &source.config {
        SourceConfig::LogTail(tail) => (tail.service.as_str(), None),
        probe => match probe.check() {
            Some((service, check)) => (service, Some(check)),
            None => return,
        },
    };
    names::check(diag, &source.path.key("service"), "service name", service);
    // A check without a `check:` is named after the node, whose id is checked already.
    if let Some(check) = check.filter(|check| *check != source.id) {
        names::check(diag, &source.path.key("check"), "check name", check);
    }
}

type DecodeOptions<C> = fn(&str, &Value, &KeyPath, &mut Diagnostics) -> Option<C>;

/// Splits a node into `type`, `inputs` and the component's own options.
fn decode_node<C>(
    id: &str,
    node: &Value,
    path: &KeyPath,
    takes_inputs: bool,
    types: &[&str],
    decode_options: DecodeOptions<C>,
    diag: &mut Diagnostics,
) -> Option<NodeConfig<C>> {
    let Some(fields) = node.as_mapping() else {
        diag.error(
            path,
            format!("expected a map with a `type`, found {}", describe(node)),
        );
        return None;
    };
    let mut options = fields.clone();
    let kind = options.remove("type");
    let inputs = options.remove("inputs");
    let kind = match kind {
        // Said first: with the type wrong, what the node's other keys mean is unknown.
        Some(Value::String(kind)) if !types.contains(&kind.as_str()) => {
            unknown_type(&kind, types, path, diag);
            return None;
        }
        Some(Value::String(kind)) => kind,
        Some(other) => {
            diag.error(
                &path.key("type"),
                format!("expected a type name, found {}", describe(&other)),
            );
            return None;
        }
        None => {
            diag.error_at_key(
                path,
                format!("missing key `type`; expected one of {}", list(types)),
            );
            return None;
        }
    };
    let inputs = match (takes_inputs, inputs) {
        (true, Some(inputs)) => diag.decode::<Vec<String>>(&inputs, &path.key("inputs"))?,
        (true, None) => {
            diag.error_at_key(
                path,
                "missing key `inputs`; list the ids of the nodes that feed this one",
            );
            return None;
        }
        (false, Some(_)) => {
            diag.error_at_key(
                &path.key("inputs"),
                "a source takes no `inputs`; it reads from outside the pipeline",
            );
            return None;
        }
        (false, None) => Vec::new(),
    };
    let config = decode_options(&kind, &Value::Mapping(options), path, diag)?;
    Some(NodeConfig {
        id: id.to_owned(),
        inputs,
        config,
        path: path.clone(),
        implicit: false,
    })
}

/// What kind of YAML value this is, for "expected X, found Y" messages.
pub fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

impl PipelineConfig {
    /// The ids of the stages, then the sources, that emit any of `kinds`: what a node
    /// the expansion adds is fed.
    pub fn ids_emitting(&self, kinds: &[EventKind]) -> Vec<String> {
        let emits = |emitted: &[EventKind]| emitted.iter().any(|kind| kinds.contains(kind));
        (self.stages.iter())
            .filter(|node| emits(node.config.emits()))
            .map(|node| node.id.clone())
            .chain(
                (self.sources.iter())
                    .filter(|node| emits(node.config.emits()))
                    .map(|node| node.id.clone()),
            )
            .collect()
    }

    /// The configuration in the pipeline form, as YAML: what `config expand` prints.
    /// Each node's options as YAML, by id, without its inputs: what a reload compares
    /// to tell a node that changed from one that did not (its edges are wired anew
    /// either way).
    pub fn fingerprints(&self) -> HashMap<String, String> {
        fn of<C: serde::Serialize>(
            nodes: &[NodeConfig<C>],
        ) -> impl Iterator<Item = (String, String)> + '_ {
            nodes.iter().map(|node| {
                let options =
                    serde_norway::to_string(&node.config).expect("configuration serializes");
                (node.id.clone(), options)
            })
        }
        (of(&self.sources).map(|(id, options)| (id, format!("source\n{options}"))))
            .chain(of(&self.stages).map(|(id, options)| (id, format!("stage\n{options}"))))
            .chain(of(&self.sinks).map(|(id, options)| (id, format!("sink\n{options}"))))
            .collect()
    }

    pub fn to_yaml(&self) -> String {
        let mut top = Mapping::new();
        let sections = [
            ("sources", section(&self.sources)),
            ("stages", section(&self.stages)),
            ("sinks", section(&self.sinks)),
        ];
        for (name, nodes) in sections {
            if !nodes.is_empty() {
                top.insert(name.into(), Value::Mapping(nodes));
            }
        }
        serde_norway::to_string(&top).expect("configuration serializes")
    }
}

/// The nodes of one section as a YAML map: id → the component's options, tagged with
/// its `type` by serde, plus `inputs`.
fn section<C: serde::Serialize>(nodes: &[NodeConfig<C>]) -> Mapping {
    let mut section = Mapping::new();
    for node in nodes {
        let mut fields =
            match serde_norway::to_value(&node.config).expect("configuration serializes") {
                Value::Mapping(fields) => fields,
                _ => unreachable!("component configs are tagged enums of structs"),
            };
        if !node.inputs.is_empty() {
            fields.insert("inputs".into(), node.inputs.clone().into());
        }
        section.insert(node.id.as_str().into(), Value::Mapping(fields));
    }
    section
}
