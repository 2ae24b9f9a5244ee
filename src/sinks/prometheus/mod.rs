//! The `prometheus` sink: serves `/metrics` in the Prometheus text exposition format,
//! and `/healthz` for Aegis itself.
//!
//! It takes every kind of event and derives the metrics from them ([`metrics`]); the
//! HTTP server (hyper, HTTP/1.1) renders them when scraped. It listens on 127.0.0.1
//! unless told otherwise.
//!
//! ```yaml
//! sinks:
//!   metrics:
//!     type: prometheus
//!     inputs: [shop_health, app_errors]
//!     listen: 127.0.0.1:9464      # default
//!     path: /metrics              # default
//! ```

pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Deserializer, Serialize};
use tokio::net::TcpListener;

use self::metrics::Metrics;
use crate::pipeline::stats;
use crate::pipeline::{Input, NodeError, Sink};

/// Configuration of a `prometheus` sink.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusConfig {
    /// Where to listen. Default `127.0.0.1:9464`: only this machine.
    #[serde(default = "default_listen")]
    pub listen: ListenAddress,
    /// The path metrics are served on. Default `/metrics`.
    #[serde(default = "default_path")]
    pub path: MetricsPath,
}

impl Default for PrometheusConfig {
    fn default() -> Self {
        PrometheusConfig {
            listen: default_listen(),
            path: default_path(),
        }
    }
}

pub fn default_listen() -> ListenAddress {
    ListenAddress(SocketAddr::from(([127, 0, 0, 1], 9464)))
}

/// An address to listen on, `IP:port`, checked when decoded.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(transparent)]
pub struct ListenAddress(SocketAddr);

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map(ListenAddress).map_err(|_| {
            serde::de::Error::custom(format!(
                "invalid address `{text}`; expected IP:port, such as `127.0.0.1:9464` (this machine only) or `0.0.0.0:9464` (every interface)"
            ))
        })
    }
}

pub fn default_path() -> MetricsPath {
    MetricsPath("/metrics".into())
}

/// A URL path: starts with `/`, checked when decoded.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct MetricsPath(String);

impl<'de> Deserialize<'de> for MetricsPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let path = String::deserialize(deserializer)?;
        if !path.starts_with('/') || path == "/healthz" || path.contains(['?', '#', ' ']) {
            return Err(serde::de::Error::custom(format!(
                "invalid path `{path}`; expected a path such as `/metrics` (not `/healthz`, which Aegis serves for itself)"
            )));
        }
        Ok(MetricsPath(path))
    }
}

impl PrometheusConfig {
    pub fn build(&self) -> Prometheus {
        Prometheus {
            listen: self.listen.0,
            path: self.path.0.clone(),
        }
    }
}

/// A running `prometheus` sink.
pub struct Prometheus {
    listen: SocketAddr,
    path: String,
}

impl Sink for Prometheus {
    fn run(self: Box<Self>, mut input: Input) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            let listener =
                TcpListener::bind(self.listen)
                    .await
                    .map_err(|source| NodeError::Io {
                        what: format!("listening on {} for metrics", self.listen),
                        source,
                    })?;
            // The address as bound: with port 0, the port the system chose.
            let address = listener.local_addr().unwrap_or(self.listen);
            tracing::info!(%address, path = %self.path, "Serving metrics.");
            let metrics = Arc::new(Mutex::new(Metrics::new()));
            let server = tokio::spawn(serve(listener, Arc::clone(&metrics), self.path));
            while let Some(batch) = input.recv().await {
                let mut metrics = metrics.lock().unwrap_or_else(PoisonError::into_inner);
                batch.iter().for_each(|event| metrics.record(event));
            }
            server.abort();
            Ok(())
        })
    }
}

/// Accepts connections until aborted; each is served on a task of its own.
async fn serve(listener: TcpListener, metrics: Arc<Mutex<Metrics>>, path: String) {
    let path: Arc<str> = path.into();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!(error = %err, "Cannot accept a metrics connection.");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (metrics, path) = (Arc::clone(&metrics), Arc::clone(&path));
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                std::future::ready(answer(&request, &metrics, &path))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The response to one request.
fn answer<B>(
    request: &Request<B>,
    metrics: &Mutex<Metrics>,
    path: &str,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |status: StatusCode, content_type: &'static str, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(content_type),
        );
        response
    };
    const TEXT: &str = "text/plain; charset=utf-8";
    let response = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, requested) if requested == path => {
            let text = metrics
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .render(SystemTime::now(), stats::current().as_deref());
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                text.into(),
            )
        }
        (&Method::GET | &Method::HEAD, "/healthz") => reply(StatusCode::OK, TEXT, "ok\n".into()),
        (_, requested) if requested == path || requested == "/healthz" => {
            reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into())
        }
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    };
    Ok(response)
}
