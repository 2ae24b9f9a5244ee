//! Loading a configuration file: reading it, decoding it (`config`), then checking
//! its graph and building its components ([`graph`](super::graph)), every problem of
//! every step reported together, at its place in the file; and loading it again for a
//! reload ([`FileReloader`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::graph::{BuildOptions, Component, Graph};
use super::runtime::Reloader;
use crate::base::diagnostics::{ConfigErrors, Diagnostic, Diagnostics};
use crate::base::registry::Shared;
use crate::base::spans::SpanIndex;
use crate::base::stats::StatsHandle;
use crate::config::{self, pipeline::PipelineConfig};

/// A configuration file, loaded and checked.
pub struct Loaded {
    pub file: PathBuf,
    pub pipeline: PipelineConfig,
    pub graph: Graph,
    pub warnings: Vec<Diagnostic>,
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(ConfigErrors),
}

/// Loads, checks and builds the pipeline described by `file`.
pub fn load(file: &Path, options: &BuildOptions) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|source| LoadError::Read {
        file: file.to_owned(),
        source,
    })?;
    let spans = SpanIndex::build(&text);
    let mut diag = Diagnostics::new(&spans);
    let base = config::folder_of(file);
    let built = config::parse(&text, &spans, &mut diag).and_then(|pipeline| {
        let graph = Graph::build(&pipeline, &base, options, &mut diag)?;
        Some((pipeline, graph))
    });
    let (errors, warnings) = diag.finish();
    match built {
        Some((pipeline, graph)) if errors.is_empty() => Ok(Loaded {
            file: file.to_owned(),
            pipeline,
            graph,
            warnings,
        }),
        _ => Err(LoadError::Invalid(ConfigErrors {
            file: file.to_owned(),
            errors,
        })),
    }
}

/// Reloads the daemon's configuration file on request (SIGHUP): the file is read and
/// checked as at start; a file with errors is refused, its errors logged, and the
/// running pipeline goes on unchanged; a good one becomes a graph in which the nodes
/// whose options did not change are kept running.
pub struct FileReloader {
    file: PathBuf,
    /// The running pipeline's nodes' options, by id.
    fingerprints: HashMap<String, String>,
    stats: StatsHandle,
    shared: Arc<Shared>,
}

impl FileReloader {
    /// For the pipeline `loaded` describes, once it runs.
    pub fn new(loaded: &Loaded) -> FileReloader {
        FileReloader {
            file: loaded.file.clone(),
            fingerprints: loaded.pipeline.fingerprints(),
            stats: loaded.graph.stats.clone(),
            shared: Arc::clone(&loaded.graph.shared),
        }
    }
}

impl Reloader for FileReloader {
    fn reload(&mut self) -> Option<Graph> {
        let file = &self.file;
        tracing::info!(file = %file.display(), "SIGHUP: reloading the configuration.");
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(err) => {
                tracing::error!(file = %file.display(), error = %err, "Reload refused: cannot read the configuration; the running pipeline goes on unchanged.");
                return None;
            }
        };
        let spans = SpanIndex::build(&text);
        let mut diag = Diagnostics::new(&spans);
        let base = config::folder_of(file);
        let mut rebuilt = None;
        if let Some(pipeline) = config::parse(&text, &spans, &mut diag) {
            let fingerprints = pipeline.fingerprints();
            let keep = |id: &str| {
                fingerprints.contains_key(id) && fingerprints.get(id) == self.fingerprints.get(id)
            };
            let running = (&self.stats, &self.shared);
            rebuilt = Graph::rebuild(&pipeline, &base, &mut diag, running, &keep)
                .map(|graph| (graph, fingerprints));
        }
        let (errors, warnings) = diag.finish();
        for warning in &warnings {
            tracing::warn!("{}", warning.display(file));
        }
        let Some((graph, fingerprints)) = rebuilt.filter(|_| errors.is_empty()) else {
            for error in &errors {
                tracing::error!("{}", error.display(file));
            }
            tracing::error!(
                errors = errors.len(),
                "Reload refused: the configuration has errors; the running pipeline goes on unchanged."
            );
            return None;
        };
        let kept = (graph.nodes.iter())
            .filter(|node| matches!(node.component, Component::Running))
            .count();
        let stopped = (self.fingerprints.keys())
            .filter(|id| {
                !graph
                    .nodes
                    .iter()
                    .any(|node| &node.id == *id && matches!(node.component, Component::Running))
            })
            .count();
        tracing::info!(
            kept,
            started = graph.nodes.len() - kept,
            stopped,
            "Reloaded the configuration."
        );
        self.fingerprints = fingerprints;
        Some(graph)
    }
}
