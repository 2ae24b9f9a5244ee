//! Sinks: where events leave Aegis: the console and Prometheus (webhooks later).
//!
//! Each sink type is a module with its configuration and its [`Sink`] impl; this
//! module is the closed list of those users configure (`type:`). [`summary`] is the
//! one sink Aegis attaches itself, for `run --once`.

pub mod console;
pub mod prometheus;
pub mod summary;

use serde::Serialize;
use serde_norway::Value;

use self::console::{Console, ConsoleConfig};
use self::prometheus::PrometheusConfig;
use crate::base::diagnostics::Diagnostics;

use crate::base::component::Sink;
use crate::base::event::EventKind;
use crate::base::key_path::KeyPath;

/// The configuration of any sink, by `type`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SinkConfig {
    Console(ConsoleConfig),
    Prometheus(PrometheusConfig),
}

impl SinkConfig {
    pub const TYPES: &'static [&'static str] = &["console", "prometheus"];

    /// Decodes the options of a sink of type `kind`; `None` if they are bad (and
    /// reported).
    pub fn decode(
        kind: &str,
        body: &Value,
        path: &KeyPath,
        diag: &mut Diagnostics,
    ) -> Option<SinkConfig> {
        match kind {
            "console" => diag.decode(body, path).map(SinkConfig::Console),
            "prometheus" => diag.decode(body, path).map(SinkConfig::Prometheus),
            _ => None,
        }
    }

    /// What the sink can take.
    pub fn accepts(&self) -> &'static [EventKind] {
        // Both take every kind of event.
        &[
            EventKind::LogLines,
            EventKind::LogMatch,
            EventKind::PatternErrors,
            EventKind::ProbeResult,
        ]
    }

    /// Builds the sink; `checks` are the (service, check) pairs of the health checks
    /// that feed it.
    pub fn build(&self, checks: &[(&str, &str)]) -> Box<dyn Sink> {
        match self {
            SinkConfig::Console(_) => Box::new(Console),
            SinkConfig::Prometheus(config) => Box::new(config.build(checks)),
        }
    }
}
