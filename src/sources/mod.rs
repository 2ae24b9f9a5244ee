//! Sources: where events come from: log files and health checks (the supervisor
//! later).
//!
//! Each source type is a module with its configuration and its [`Source`] impl; this
//! module is the closed list of them, as configuration names them (`type:`).

pub mod log_tail;
pub mod probe;
pub mod retry;

use std::path::Path;

use serde::Serialize;
use serde_norway::Value;

use self::log_tail::{LogTailConfig, TailShared};
use self::probe::ProbeConfig;
use self::probe::grpc::GrpcProbeConfig;
use self::probe::http::HttpProbeConfig;
use self::probe::script::ScriptProbeConfig;
use self::probe::tcp::TcpProbeConfig;
use crate::base::diagnostics::Diagnostics;

use crate::base::component::Source;
use crate::base::event::{EventKind, ProbeKind};
use crate::base::key_path::KeyPath;

/// The configuration of any source, by `type`.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SourceConfig {
    LogTail(LogTailConfig),
    HttpProbe(ProbeConfig<HttpProbeConfig>),
    TcpProbe(ProbeConfig<TcpProbeConfig>),
    GrpcProbe(ProbeConfig<GrpcProbeConfig>),
    ScriptProbe(ProbeConfig<ScriptProbeConfig>),
}

impl SourceConfig {
    pub const TYPES: &'static [&'static str] = &[
        "log_tail",
        "http_probe",
        "tcp_probe",
        "grpc_probe",
        "script_probe",
    ];

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
            "http_probe" => ProbeConfig::decode(body, path, diag).map(SourceConfig::HttpProbe),
            "tcp_probe" => ProbeConfig::decode(body, path, diag).map(SourceConfig::TcpProbe),
            "grpc_probe" => ProbeConfig::decode(body, path, diag).map(SourceConfig::GrpcProbe),
            "script_probe" => ProbeConfig::decode(body, path, diag).map(SourceConfig::ScriptProbe),
            _ => None,
        }
    }

    /// What the source emits.
    pub fn outputs(&self) -> &'static [EventKind] {
        match self {
            SourceConfig::LogTail(_) => &[EventKind::LogLines],
            _ => &[EventKind::ProbeResult],
        }
    }

    /// The service and name of the health check this source runs, if it runs one.
    pub fn check(&self) -> Option<(&str, &str)> {
        let check = match self {
            SourceConfig::LogTail(_) => return None,
            SourceConfig::HttpProbe(config) => &config.check,
            SourceConfig::TcpProbe(config) => &config.check,
            SourceConfig::GrpcProbe(config) => &config.check,
            SourceConfig::ScriptProbe(config) => &config.check,
        };
        Some((&check.service, &check.check))
    }

    /// Builds the source `id`; `base` is the configuration file's folder, `once` asks
    /// for one pass over the input (one tick of a check) instead of following it, and
    /// `tails` is what the pipeline's log tails share.
    pub fn build(&self, id: &str, base: &Path, once: bool, tails: &TailShared) -> Box<dyn Source> {
        match self {
            SourceConfig::LogTail(config) => Box::new(config.build(id, base, once, tails)),
            SourceConfig::HttpProbe(config) => {
                config.build_with(ProbeKind::Http, Box::new(config.probe.build()), once)
            }
            SourceConfig::TcpProbe(config) => {
                config.build_with(ProbeKind::Tcp, Box::new(config.probe.build()), once)
            }
            SourceConfig::GrpcProbe(config) => {
                config.build_with(ProbeKind::Grpc, Box::new(config.probe.build()), once)
            }
            SourceConfig::ScriptProbe(config) => {
                config.build_with(ProbeKind::Script, Box::new(config.probe.build(base)), once)
            }
        }
    }
}
