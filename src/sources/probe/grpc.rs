//! The `grpc_probe` source: the standard gRPC health protocol,
//! `grpc.health.v1.Health/Check`, through tonic-health's client.
//!
//! `SERVING` is up. `NOT_SERVING` and `UNKNOWN` are down (`grpc_status`); a service
//! name the server does not know (`NOT_FOUND`, reported as `SERVICE_UNKNOWN`) and a
//! server without the health service (`UNIMPLEMENTED`) are down (`grpc_status`) with
//! the status in the detail; a refused connection or a deadline are down with their
//! own reasons.
//!
//! ```yaml
//! sources:
//!   orders_grpc:
//!     type: grpc_probe
//!     service: orders
//!     address: 127.0.0.1:50051    # host:port
//!     grpc_service: ""            # the health service's name to ask about; "" = the whole server
//!     tls: false                  # default false; true verifies against the web PKI roots
//!     keepalive: false            # default false: a new connection per attempt
//! ```
//!
//! (`service` is Aegis's service the check belongs to, as for every check, so the name
//! asked of the server is `grpc_service`.)

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use super::ProbeOptions;
use super::attempt::{Attempt, Probe};
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{FailureReason, ProbeKind, ProbeStatus};
use crate::base::key_path::KeyPath;
use crate::base::registry::BuildContext;

/// Configuration of a `grpc_probe` (the options besides the shared check options).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcProbeConfig {
    /// `host:port`.
    pub address: String,
    /// The service name sent in the health request; empty asks about the server.
    #[serde(default)]
    pub grpc_service: String,
    #[serde(default)]
    pub tls: bool,
    #[serde(default)]
    pub keepalive: bool,
}

impl GrpcProbeConfig {
    /// The endpoint, or why the address makes none.
    fn endpoint(&self) -> Result<Endpoint, String> {
        let scheme = if self.tls { "https" } else { "http" };
        let endpoint = Endpoint::from_shared(format!("{scheme}://{}", self.address))
            .map_err(|err| format!("invalid address `{}`: {err}", self.address))?;
        if self.tls {
            endpoint
                .tls_config(ClientTlsConfig::new().with_webpki_roots())
                .map_err(|err| format!("cannot set up TLS: {err}"))
        } else {
            Ok(endpoint)
        }
    }

    pub fn build(&self) -> GrpcProbe {
        let endpoint = self.endpoint();
        GrpcProbe {
            keepalive: self.keepalive.then(OnceCell::new),
            endpoint,
            request: HealthCheckRequest {
                service: self.grpc_service.clone(),
            },
        }
    }
}

impl ProbeOptions for GrpcProbeConfig {
    const NAME: &'static str = "grpc_probe";
    const KIND: ProbeKind = ProbeKind::Grpc;

    fn probe(&self, _: &mut BuildContext) -> Box<dyn Probe> {
        Box::new(self.build())
    }

    fn check(&self, path: &KeyPath, diag: &mut Diagnostics) {
        if let Err(message) = self.endpoint() {
            diag.error(&path.key("address"), message);
        }
    }
}

/// A running gRPC health check's attempt maker.
pub struct GrpcProbe {
    endpoint: Result<Endpoint, String>,
    /// With `keepalive`, one channel that reconnects when it must, made by the first
    /// attempt (it needs the runtime the checks run on).
    keepalive: Option<OnceCell<Channel>>,
    request: HealthCheckRequest,
}

impl Probe for GrpcProbe {
    fn attempt(&self) -> BoxFuture<'_, Attempt> {
        Box::pin(async move {
            let endpoint = match &self.endpoint {
                Ok(endpoint) => endpoint,
                Err(message) => return Attempt::down(FailureReason::Other, message.clone()),
            };
            let channel = match &self.keepalive {
                Some(shared) => shared
                    .get_or_init(|| async { endpoint.connect_lazy() })
                    .await
                    .clone(),
                None => match endpoint.connect().await {
                    Ok(channel) => channel,
                    Err(err) => return Attempt::failed(&err),
                },
            };
            match HealthClient::new(channel).check(self.request.clone()).await {
                Ok(response) => serving(response.into_inner().status()),
                Err(status) => self.call_failed(&status),
            }
        })
    }
}

/// The attempt for a health answer.
fn serving(status: ServingStatus) -> Attempt {
    let name = status.as_str_name();
    let attempt = match status {
        ServingStatus::Serving => Attempt::up(name),
        _ => Attempt::down(FailureReason::GrpcStatus, name),
    };
    attempt.with_status(ProbeStatus::Grpc(name))
}

impl GrpcProbe {
    /// The attempt for a call that got a gRPC error status instead of an answer.
    fn call_failed(&self, status: &tonic::Status) -> Attempt {
        use tonic::Code;
        // A status with a cause was made up on this side for a failed transport (a
        // refused connection, a server that does not speak HTTP/2): the server sent
        // no gRPC status, so the failure is told as a connection failure.
        if let Some(cause) = std::error::Error::source(status) {
            return Attempt::failed(cause);
        }
        let (name, reason, detail) = match status.code() {
            Code::NotFound => (
                "SERVICE_UNKNOWN",
                FailureReason::GrpcStatus,
                format!(
                    "SERVICE_UNKNOWN: the server does not know the service `{}`",
                    self.request.service
                ),
            ),
            Code::Unimplemented => (
                "UNIMPLEMENTED",
                FailureReason::GrpcStatus,
                "UNIMPLEMENTED: the server has no grpc.health.v1.Health service".to_owned(),
            ),
            Code::DeadlineExceeded => (
                "DEADLINE_EXCEEDED",
                FailureReason::Timeout,
                format!("DEADLINE_EXCEEDED: {}", status.message()),
            ),
            code => (
                grpc_code_name(code),
                FailureReason::GrpcStatus,
                format!("{}: {}", grpc_code_name(code), status.message()),
            ),
        };
        Attempt::down(reason, detail).with_status(ProbeStatus::Grpc(name))
    }
}

/// The canonical upper-case name of a gRPC status code.
fn grpc_code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
