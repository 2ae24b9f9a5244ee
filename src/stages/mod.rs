//! Stages: synchronous transformations from events to events.
//!
//! Each stage type is a module with its configuration and its [`Stage`] impl; this
//! module is the closed list of them, as configuration names them (`type:`).

pub mod log_patterns;

use serde::Serialize;
use serde_norway::Value;

use self::log_patterns::LogPatternsConfig;
use crate::base::diagnostics::Diagnostics;

use crate::base::component::Stage;
use crate::base::event::EventKind;
use crate::base::key_path::KeyPath;

/// The configuration of any stage, by `type`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StageConfig {
    LogPatterns(LogPatternsConfig),
}

impl StageConfig {
    pub const TYPES: &'static [&'static str] = &["log_patterns"];

    /// Decodes the options of a stage of type `kind`; `None` if they are bad (and
    /// reported).
    pub fn decode(
        kind: &str,
        body: &Value,
        path: &KeyPath,
        diag: &mut Diagnostics,
    ) -> Option<StageConfig> {
        match kind {
            "log_patterns" => {
                LogPatternsConfig::decode(body, path, diag).map(StageConfig::LogPatterns)
            }
            _ => None,
        }
    }

    /// What the stage can take.
    pub fn accepts(&self) -> &'static [EventKind] {
        match self {
            StageConfig::LogPatterns(_) => &[EventKind::LogLines],
        }
    }

    /// What the stage emits.
    pub fn outputs(&self) -> &'static [EventKind] {
        match self {
            StageConfig::LogPatterns(_) => &[EventKind::LogMatch, EventKind::PatternErrors],
        }
    }

    pub fn build(&self, diag: &mut Diagnostics) -> Option<Box<dyn Stage>> {
        match self {
            StageConfig::LogPatterns(config) => Some(Box::new(config.build(diag)?)),
        }
    }
}
