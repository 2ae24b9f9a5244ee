//! Sources: where events come from: log files, health checks and supervised
//! processes.
//!
//! Each source type is a module with its configuration, which implements
//! [`ComponentType`](crate::base::registry::ComponentType), and its [`Source`]; the
//! registry below is the list of them, as configuration names them (`type:`).

pub mod command;
pub mod log_tail;
pub mod probe;
pub mod supervisor;

use self::log_tail::LogTailConfig;
use self::probe::ProbeConfig;
use self::probe::grpc::GrpcProbeConfig;
use self::probe::http::HttpProbeConfig;
use self::probe::script::ScriptProbeConfig;
use self::probe::tcp::TcpProbeConfig;
use self::supervisor::SupervisorConfig;
use crate::base::component::Source;

crate::base::registry::declare! {
    /// The configuration of any source, by `type`.
    pub enum SourceConfig builds Source {
        LogTail(LogTailConfig),
        HttpProbe(ProbeConfig<HttpProbeConfig>),
        TcpProbe(ProbeConfig<TcpProbeConfig>),
        GrpcProbe(ProbeConfig<GrpcProbeConfig>),
        ScriptProbe(ProbeConfig<ScriptProbeConfig>),
        Supervisor(SupervisorConfig),
    }
}
