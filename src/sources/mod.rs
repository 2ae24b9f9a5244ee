//! Sources: where events come from (log files now; probes and the supervisor later).
//!
//! Each source type is a module with its configuration and its [`Source`] impl; this
//! module is the closed list of them, as configuration names them (`type:`).

pub mod log_tail;

use std::path::Path;

use serde::Serialize;
use serde_norway::Value;

use self::log_tail::LogTailConfig;
use crate::config::diagnostics::{Diagnostics, KeyPath};
use crate::event::EventKind;
use crate::pipeline::Source;

/// The configuration of any source, by `type`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    LogTail(LogTailConfig),
}

impl SourceConfig {
    pub const TYPES: &'static [&'static str] = &["log_tail"];

    /// Decodes the options of a source of type `kind`; `None` if they are bad (and
    /// reported).
    pub fn decode(
        kind: &str,
        body: &Value,
        path: &KeyPath,
        diag: &mut Diagnostics,
    ) -> Option<SourceConfig> {
        match kind {
            "log_tail" => diag.decode(body, path).map(SourceConfig::LogTail),
            _ => None,
        }
    }

    /// What the source emits.
    pub fn outputs(&self) -> &'static [EventKind] {
        match self {
            SourceConfig::LogTail(_) => &[EventKind::LogLines],
        }
    }

    /// Builds the source; `base` is the configuration file's folder, `once` asks for
    /// one pass over the input instead of following it.
    pub fn build(&self, base: &Path, once: bool) -> Box<dyn Source> {
        match self {
            SourceConfig::LogTail(config) => Box::new(config.build(base, once)),
        }
    }
}
