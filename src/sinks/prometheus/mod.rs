//! The `prometheus` sink: serves `/metrics` in the Prometheus text exposition format,
//! `/api/alerts` (the alerts pending, firing and lately resolved, as JSON) and
//! `/healthz` for Aegis itself.
//!
//! It takes every kind of event and derives the metrics from them ([`metrics`]), and
//! keeps the current alerts ([`alerts`]); the HTTP server (hyper, HTTP/1.1) renders
//! them when asked. The notifiers' delivery metrics
//! ([`Deliveries`](crate::sinks::notify::Deliveries)) are served with the rest. It
//! listens on 127.0.0.1 unless told otherwise; everything it serves is read-only.
//!
//! The server keeps answering scrapes while other clients misbehave. It serves up to
//! [`MAX_CONNECTIONS`] connections at once (fewer under a low limit on open files), a
//! client has [`HEADER_TIMEOUT`] to send a request's head and a connection lasts at
//! most [`CONNECTION_TIMEOUT`], so slow or silent clients hold little, briefly. Memory
//! is bounded by pages rather than connections: scrapes within a second share one
//! rendering, and at most [`MAX_PAGES`] renderings are in memory at once, however many
//! clients are being sent them; past that, scrapes get the last one again. What it
//! does not do: tell clients apart. More clients than the cap, each renewing its
//! connection within the header timeout, still keep a scrape waiting in the backlog.
//!
//! ```yaml
//! sinks:
//!   metrics:
//!     type: prometheus
//!     inputs: [shop_health, app_errors]
//!     listen: 127.0.0.1:9464      # default
//!     path: /metrics              # default
//! ```

pub mod alerts;
pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Deserializer, Serialize};
use serde_norway::Value;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use self::metrics::Metrics;
use crate::base::component::{Input, NodeError, Sink};
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{EventKind, ServiceName};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};
use crate::base::stats::StatsHandle;
use crate::sinks::notify::Deliveries;

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
        let taken = [HEALTH_PATH, ALERTS_PATH].contains(&path.as_str());
        if !path.starts_with('/') || taken || path.contains(['?', '#', ' ']) {
            return Err(serde::de::Error::custom(format!(
                "invalid path `{path}`; expected a path such as `/metrics` (not `{HEALTH_PATH}` or `{ALERTS_PATH}`, which Aegis serves for itself)"
            )));
        }
        Ok(MetricsPath(path))
    }
}

/// Where Aegis says it is alive.
const HEALTH_PATH: &str = "/healthz";

/// Where the current alerts are listed.
const ALERTS_PATH: &str = "/api/alerts";

impl ComponentType for PrometheusConfig {
    const NAME: &'static str = "prometheus";
    const ACCEPTS: &'static [EventKind] = EventKind::ALL;
    const EMITS: &'static [EventKind] = &[];
    type Built = dyn Sink;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        diag.decode(options, path)
    }

    /// A service is reported up or down once all the checks that feed the sink
    /// (`cx.checks`) have reported; the pipeline's own counts come from `cx.stats`,
    /// the notifiers' from the pipeline's shared [`Deliveries`].
    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Sink>> {
        Some(Box::new(Prometheus {
            listen: self.listen.0,
            path: self.path.0.clone(),
            checks: (cx.checks.iter())
                .map(|(service, check)| ((*service).into(), (*check).into()))
                .collect(),
            stats: cx.stats.clone(),
            deliveries: cx.shared.get::<Deliveries>(),
        }))
    }
}

/// Connections served at once, at most; more wait in the listener's backlog. Far more
/// than the clients a scrape may have to share the server with: 16 let a handful of
/// slow clients starve Prometheus. Bounded all the same, and by the file descriptors
/// Aegis may open ([`connection_limit`]): a connection costs a descriptor, a task, a
/// buffer for its request's head ([`MAX_HEAD_BYTES`]) and, while answered, a reference
/// to a shared page.
const MAX_CONNECTIONS: usize = 1024;

/// How long a client has to send a request's head (request line and headers). hyper
/// (1.12) starts this clock when it first reads a connection, so as soon as it is
/// accepted rather than at its first byte, and again when a connection kept alive
/// waits for its next request; bytes that trickle in do not extend it. A scrape sends
/// its head at once, so this is how long a slow or silent client holds a connection
/// (and a scraper that keeps its connection alive longer between scrapes connects
/// again).
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest request head accepted, in bytes (hyper answers `431` beyond it). A
/// scrape's takes a few hundred; without a limit hyper buffers up to about 400 KB per
/// connection while it waits for one.
const MAX_HEAD_BYTES: usize = 8 * 1024;

/// How long a connection may last, however busy: a client that stops reading does not
/// hold its connection and its page for longer.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Scrapes within this long of a rendering share it rather than render again.
const RENDER_REUSE: Duration = Duration::from_secs(1);

/// Rendered pages (a few megabytes each for thousands of checks) in memory at once: the
/// latest, and older ones still being sent to clients that read slowly. Scrapes share a
/// page rather than copy it, so what a page costs does not depend on how many clients
/// are sent it.
const MAX_PAGES: usize = 4;

/// A running `prometheus` sink.
pub struct Prometheus {
    listen: SocketAddr,
    path: String,
    checks: Vec<(ServiceName, Arc<str>)>,
    /// The pipeline's counts, published with the events'.
    stats: StatsHandle,
    /// The notifiers' delivery metrics, published too.
    deliveries: Arc<Deliveries>,
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
            let connections = connection_limit();
            tracing::info!(%address, path = %self.path, connections, "Serving metrics.");
            let metrics = Metrics::expecting(&self.checks);
            metrics.publish(&self.deliveries);
            let metrics = Arc::new(Mutex::new(metrics));
            let pages = Arc::new(Pages::new(Arc::clone(&metrics), self.stats));
            let server = tokio::spawn(serve(listener, connections, pages, self.path));
            while let Some(batch) = input.recv().await {
                let mut metrics = metrics.lock().unwrap_or_else(PoisonError::into_inner);
                batch.iter().for_each(|event| metrics.record(event));
            }
            // Its connections are tasks of its own set, so they end with it.
            server.abort();
            Ok(())
        })
    }
}

/// Rendered pages, shared by scrapes that come close together.
struct Pages {
    metrics: Arc<Mutex<Metrics>>,
    stats: StatsHandle,
    /// The latest page, and when it was rendered: at first, never (and empty).
    last: tokio::sync::Mutex<(Option<Instant>, Bytes)>,
    /// [`MAX_PAGES`] permits, one held by each page in memory (see [`Rendered`]).
    in_memory: Arc<Semaphore>,
}

impl Pages {
    fn new(metrics: Arc<Mutex<Metrics>>, stats: StatsHandle) -> Pages {
        Pages {
            metrics,
            stats,
            last: tokio::sync::Mutex::new((None, Bytes::new())),
            in_memory: Arc::new(Semaphore::new(MAX_PAGES)),
        }
    }

    /// The page: the last one if it is recent, else a new one. Only the refresh holds
    /// the metrics (briefly); the encoding runs off the async threads, and one at a
    /// time: a burst of scrapes waits for one rendering and shares it.
    ///
    /// With [`MAX_PAGES`] in memory already, the last page is served again, however
    /// old: a scrape never waits for another client, and pages cannot pile up behind
    /// clients that do not read. The oldest goes at the latest when its connection's
    /// time is up ([`CONNECTION_TIMEOUT`]).
    async fn page(&self) -> Bytes {
        let mut last = self.last.lock().await;
        let (rendered, page) = &*last;
        if rendered.is_some_and(|at| at.elapsed() < RENDER_REUSE) {
            return page.clone();
        }
        let Ok(permit) = Arc::clone(&self.in_memory).try_acquire_owned() else {
            // Every permit is held by a page in memory, the last among them: no page
            // was ever rendered without one.
            tracing::debug!(
                age = ?rendered.map(|at| at.elapsed()),
                "Serving an older metrics page: slow clients hold the newer ones."
            );
            return page.clone();
        };
        let rendering = self
            .metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .refresh(SystemTime::now(), self.stats.get().as_deref());
        let text = match tokio::task::spawn_blocking(move || rendering.encode()).await {
            Ok(text) => text,
            Err(err) => format!("# rendering failed: {err}\n").into_bytes(),
        };
        // Every response shares these bytes; the permit goes back once the last of them
        // is sent (or its connection dropped) and this page is no longer the last.
        let page = Bytes::from_owner(Rendered {
            text,
            _permit: permit,
        });
        *last = (Some(Instant::now()), page.clone());
        page
    }
}

impl Pages {
    /// The current alerts as JSON: listed under the metrics' lock (the alerts are
    /// few: the configuration bounds them), encoded without it.
    fn alerts(&self) -> Bytes {
        let listing = self
            .metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .alerts(SystemTime::now());
        listing.to_json().into()
    }
}

/// A page's text, and its permit to be in memory.
struct Rendered {
    text: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl AsRef<[u8]> for Rendered {
    fn as_ref(&self) -> &[u8] {
        &self.text
    }
}

/// [`MAX_CONNECTIONS`], or half the process's limit on open files if that is less
/// (1,024 is a common one): the checks and the log tails need descriptors too.
fn connection_limit() -> usize {
    let mut files = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes to the struct it is given, which outlives the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut files) } != 0 {
        return MAX_CONNECTIONS;
    }
    usize::try_from(files.rlim_cur / 2).map_or(MAX_CONNECTIONS, |half| half.min(MAX_CONNECTIONS))
}

/// Accepts connections until aborted, `limit` at a time, each served on a task of its
/// own set (aborted with it).
async fn serve(listener: TcpListener, limit: usize, pages: Arc<Pages>, path: String) {
    let path: Arc<str> = path.into();
    let slots = Arc::new(Semaphore::new(limit));
    let mut connections = JoinSet::new();
    loop {
        // At the limit, stop accepting until a connection ends (at the latest at its
        // header timeout or CONNECTION_TIMEOUT); meanwhile the kernel's backlog holds
        // new ones.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors, say: wait a moment rather than spin.
                tracing::warn!(error = %err, "Cannot accept a metrics connection.");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Reap the connections that ended, so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (pages, path) = (Arc::clone(&pages), Arc::clone(&path));
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let (pages, path) = (Arc::clone(&pages), Arc::clone(&path));
                async move { answer(&request, &pages, &path).await }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_header_size(MAX_HEAD_BYTES)
                // A response's page is queued as it is, not copied into the
                // connection's buffer: all a connection holds of it is a reference.
                .writev(true)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
            drop(slot);
        });
    }
}

/// The response to one request.
async fn answer<B>(
    request: &Request<B>,
    pages: &Pages,
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
    let read = matches!(*request.method(), Method::GET | Method::HEAD);
    let response = match request.uri().path() {
        requested if requested == path && read => {
            let page = pages.page().await;
            reply(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                page,
            )
        }
        ALERTS_PATH if read => reply(StatusCode::OK, "application/json", pages.alerts()),
        HEALTH_PATH if read => reply(StatusCode::OK, TEXT, "ok\n".into()),
        requested if [path, ALERTS_PATH, HEALTH_PATH].contains(&requested) => {
            let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "GET only\n".into());
            response.headers_mut().insert(
                hyper::header::ALLOW,
                hyper::header::HeaderValue::from_static("GET, HEAD"),
            );
            response
        }
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n".into()),
    };
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes the last page too old to share.
    async fn age(pages: &Pages) {
        pages.last.lock().await.0 = Instant::now().checked_sub(RENDER_REUSE);
    }

    /// Whether `page` is none of `pages` (the same bytes, not equal ones).
    fn new(page: &Bytes, pages: &[Bytes]) -> bool {
        pages.iter().all(|other| other.as_ptr() != page.as_ptr())
    }

    #[tokio::test]
    async fn the_current_alerts_are_listed_as_json_read_only() {
        use crate::base::event::{AlertState, Event, Notify, Severity};
        use crate::sinks::testing::alert;
        use http_body_util::BodyExt;
        let mut metrics = Metrics::expecting(&[]);
        let firing = alert(
            "shop",
            "down",
            Severity::Critical,
            AlertState::Firing,
            Notify::Transition,
            // Made now: listed whatever the clock says (a resolve would be listed for
            // a while only).
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        );
        metrics.record(&Event::Alert(firing.clone()));
        let pages = Pages::new(Arc::new(Mutex::new(metrics)), StatsHandle::default());
        let ask = async |method: Method, path: &str| {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(())
                .unwrap();
            let response = answer(&request, &pages, "/metrics").await.unwrap();
            let (head, body) = response.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            (head, String::from_utf8(body.to_vec()).unwrap())
        };
        let (head, body) = ask(Method::GET, "/api/alerts").await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(
            head.headers[hyper::header::CONTENT_TYPE],
            "application/json"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let listed = &json["alerts"][0];
        assert_eq!(listed["fingerprint"], firing.fingerprint.to_string());
        assert_eq!(listed["state"], "firing");
        assert_eq!(listed["labels"]["alertname"], "down");
        assert_eq!(json["alerts"].as_array().unwrap().len(), 1);

        for method in [Method::POST, Method::DELETE, Method::PUT] {
            let (head, _) = ask(method, "/api/alerts").await;
            assert_eq!(head.status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(head.headers[hyper::header::ALLOW], "GET, HEAD");
        }
        let (head, body) = ask(Method::GET, "/metrics").await;
        assert_eq!(head.status, StatusCode::OK);
        assert!(body.contains("aegis_alerts{"), "{body}");
        assert_eq!(
            ask(Method::GET, "/api/other").await.0.status,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn pages_held_by_slow_clients_are_bounded_and_the_last_is_served_again() {
        let pages = Pages::new(
            Arc::new(Mutex::new(Metrics::expecting(&[]))),
            StatsHandle::default(),
        );
        // Clients that never read hold every page they are sent.
        let mut held = Vec::new();
        for _ in 0..MAX_PAGES {
            age(&pages).await;
            let page = pages.page().await;
            assert!(new(&page, &held));
            held.push(page);
        }
        age(&pages).await;
        let again = pages.page().await;
        assert_eq!(
            again.as_ptr(),
            held[MAX_PAGES - 1].as_ptr(),
            "the last again"
        );
        // Once a client has been sent its page, a new one can be rendered.
        held.remove(0);
        age(&pages).await;
        assert!(new(&pages.page().await, &held));
    }
}
