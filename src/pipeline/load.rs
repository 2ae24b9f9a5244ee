//! Loading a configuration file: reading it, decoding it (`config`), then checking
//! its graph and building its components ([`graph`](super::graph)), every problem of
//! every step reported together, at its place in the file.

use std::path::{Path, PathBuf};

use super::graph::{BuildOptions, Graph};
use crate::base::diagnostics::{ConfigErrors, Diagnostic, Diagnostics};
use crate::base::spans::SpanIndex;
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
