//! The demo target: a small service for Aegis to watch, an HTTP server and a gRPC health
//! service whose health, latency and failure rate can be changed at run time, writing an
//! nginx-style access log and a logback-style application log. It is the target for demos and
//! tests of health probes and log tailing, and the service `aegis demo` supervises (as `aegis
//! demo-target`, so that the binary needs nothing beside it).
//!
//! ```sh
//! cargo run --example http-service -- --http 127.0.0.1:8080 --access-log /tmp/x/access.log
//! ```
//!
//! Options: `--http ADDR` (default 127.0.0.1:8080), `--grpc ADDR` (default 127.0.0.1:50051),
//! `--access-log PATH`, `--app-log PATH`, `--seed N` (makes injected faults repeatable),
//! `--traffic N` (sends itself N requests a second, so that its access log has something to
//! judge), `--faults` (goes through [`FAULTS`] from its start: slow, then failing and
//! unhealthy, then a crash). Port 0 picks a free port. Once both ports are bound it prints one
//! line to stdout: `listening http=127.0.0.1:PORT grpc=127.0.0.1:PORT`.
//!
//! Endpoints:
//! - `GET /health`: 200 `ok` or 503 `unhealthy`, after the injected latency.
//! - `GET /` and `GET /api/...`: 200 `hello`, or 500 `injected failure` for the failing fraction,
//!   after the injected latency.
//! - `POST /admin/latency?ms=N[&jitter_ms=M]`: add N ms (plus 0..=M ms) to each request.
//! - `POST /admin/fail?fraction=F`: answer F (0.0 to 1.0) of `/` and `/api` requests with 500.
//! - `POST /admin/health?status=healthy|unhealthy`: flips `/health` and the gRPC status.
//! - `GET /admin/state`: the current knobs as JSON (the admin POSTs answer the same way).
//!
//! gRPC: `grpc.health.v1.Health` answers for the services `""` and `demo.Work`, SERVING or
//! NOT_SERVING as the health knob says; other names are NOT_FOUND.
//!
//! ```sh
//! curl -X POST 'http://127.0.0.1:8080/admin/health?status=unhealthy'
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::error::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{Mutex, oneshot};
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// gRPC service names whose status follows the health knob; "" is the whole server.
const GRPC_SERVICES: [&str; 2] = ["", "demo.Work"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// The faults `--faults` injects, each at its time from the start: a story that shows, in
/// well under a minute, an anomaly (latency), alerts (a failing check, error lines) and a
/// restart (the crash), and, once restarted, everything resolving.
pub const FAULTS: [(Duration, Fault); 3] = [
    (Duration::from_secs(12), Fault::Slow),
    (Duration::from_secs(22), Fault::Failing),
    (Duration::from_secs(32), Fault::Crash),
];

/// One step of [`FAULTS`].
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// 300 ms (plus up to 100) added to every request.
    Slow,
    /// Unhealthy, and a third of requests answered 500.
    Failing,
    /// Exits with status 1, as a crash would, after saying so in its log.
    Crash,
}

/// A demo service for Aegis to watch, with knobs for latency, failures and health.
#[derive(Parser)]
#[command(name = "demo-target")]
pub struct TargetArgs {
    /// HTTP listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// gRPC health service listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    grpc: SocketAddr,
    /// Append one nginx-combined-style line per HTTP request here.
    #[arg(long, value_name = "PATH")]
    access_log: Option<PathBuf>,
    /// Append logback-style application lines here.
    #[arg(long, value_name = "PATH")]
    app_log: Option<PathBuf>,
    /// Seed for injected latency jitter, failures and errors, to make runs repeatable.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Requests a second it sends itself (`GET /api/orders`).
    #[arg(long, value_name = "N", default_value_t = 0)]
    traffic: u32,
    /// Inject the faults of the demo's story, on their schedule.
    #[arg(long)]
    faults: bool,
}

/// The knobs, and the random source that applies them: one lock, so that a seeded run draws
/// its numbers in request order.
struct State {
    latency_ms: u64,
    jitter_ms: u64,
    fail_fraction: f64,
    healthy: bool,
    rng: fastrand::Rng,
}

impl State {
    fn delay(&mut self) -> Duration {
        let jitter = if self.jitter_ms > 0 {
            self.rng.u64(0..=self.jitter_ms)
        } else {
            0
        };
        Duration::from_millis(self.latency_ms.saturating_add(jitter))
    }

    fn json(&self) -> String {
        format!(
            "{{\"latency_ms\":{},\"jitter_ms\":{},\"fail_fraction\":{},\"healthy\":{}}}\n",
            self.latency_ms, self.jitter_ms, self.fail_fraction, self.healthy
        )
    }
}

struct App {
    state: Mutex<State>,
    grpc_health: HealthReporter,
    access_log: Option<LogFile>,
    app_log: Option<LogFile>,
}

impl App {
    /// Keeps the gRPC statuses in step with the knob; callers hold the state lock so that two
    /// quick flips cannot land in the reporter in the opposite order.
    async fn publish_health(&self, healthy: bool) {
        let status = if healthy {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for service in GRPC_SERVICES {
            self.grpc_health.set_service_status(service, status).await;
        }
    }

    fn log(&self, level: &str, thread: &str, message: &str) {
        if let Some(file) = &self.app_log {
            let stamp = rfc3339_millis();
            let (date, time) = (&stamp[..10], &stamp[11..23]);
            file.write_line(&format!(
                "{date} {time} {level:<5} [{thread}] c.e.Shop - {message}"
            ));
        }
    }
}

/// An append-only log. Each line goes out in one unbuffered write, so it is in the file (and
/// whole) by the time the response is sent, and a test can look for it at once.
struct LogFile(std::sync::Mutex<File>);

impl LogFile {
    fn open(path: &Path) -> Result<Self, String> {
        let folder = path
            .parent()
            .filter(|folder| !folder.as_os_str().is_empty());
        folder
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| OpenOptions::new().create(true).append(true).open(path))
            .map(|file| Self(std::sync::Mutex::new(file)))
            .map_err(|error| format!("cannot open {}: {error}", path.display()))
    }

    fn write_line(&self, line: &str) {
        let mut file = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Err(error) = file.write_all(format!("{line}\n").as_bytes()) {
            eprintln!("demo-target: cannot write log: {error}");
        }
    }
}

struct Reply {
    status: StatusCode,
    body: String,
    json: bool,
    allow: Option<&'static str>,
}

impl Reply {
    fn text(status: StatusCode, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            json: false,
            allow: None,
        }
    }

    fn json(body: String) -> Self {
        Self {
            status: StatusCode::OK,
            body,
            json: true,
            allow: None,
        }
    }

    fn only(allow: &'static str) -> Self {
        let body = format!("method not allowed; use {allow}\n");
        Self {
            allow: Some(allow),
            ..Self::text(StatusCode::METHOD_NOT_ALLOWED, body)
        }
    }
}

/// Runs the target until SIGTERM or SIGINT (or its crash).
pub fn main(args: TargetArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("demo-target: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("demo-target: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: TargetArgs) -> Result<(), Box<dyn Error>> {
    let bind = |addr| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|error| format!("cannot listen on {addr}: {error}"))
    };
    let http_listener = bind(args.http).await?;
    let grpc_listener = bind(args.grpc).await?;
    let (http_addr, grpc_addr) = (http_listener.local_addr()?, grpc_listener.local_addr()?);
    let (grpc_health, grpc_service) = tonic_health::server::health_reporter();
    let app = Arc::new(App {
        state: Mutex::new(State {
            latency_ms: 0,
            jitter_ms: 0,
            fail_fraction: 0.0,
            healthy: true,
            rng: args
                .seed
                .map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed),
        }),
        grpc_health,
        access_log: args.access_log.as_deref().map(LogFile::open).transpose()?,
        app_log: args.app_log.as_deref().map(LogFile::open).transpose()?,
    });
    app.publish_health(true).await;

    // Handlers go in before the ready line: a test may signal as soon as it has read it, and
    // the default action would kill the process instead of letting it exit 0.
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;

    let (stop_grpc, grpc_stopped) = oneshot::channel::<()>();
    let mut grpc = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(grpc_service)
            .serve_with_incoming_shutdown(TcpIncoming::from(grpc_listener), async {
                let _ = grpc_stopped.await;
            }),
    );

    let mut stdout = io::stdout();
    writeln!(stdout, "listening http={http_addr} grpc={grpc_addr}")?;
    stdout.flush()?;
    app.log(
        "INFO",
        "main",
        &format!("started: http={http_addr} grpc={grpc_addr}"),
    );

    if args.traffic > 0 {
        tokio::spawn(send_traffic(http_addr, args.traffic));
    }
    if args.faults {
        tokio::spawn(inject_faults(app.clone()));
    }

    tokio::select! {
        () = serve_http(http_listener, app.clone()) => {}
        finished = &mut grpc => {
            finished??;
            return Err("the gRPC server stopped by itself".into());
        }
        _ = terminate.recv() => {}
        _ = interrupt.recv() => {}
    }
    let _ = stop_grpc.send(());
    grpc.await??;
    app.log("INFO", "main", "stopped");
    Ok(())
}

/// Sends `GET /api/orders` to itself `per_second` times a second, each request on its own
/// connection and task, so that a slow answer does not slow the rate.
async fn send_traffic(address: SocketAddr, per_second: u32) {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second);
    loop {
        ticks.tick().await;
        tokio::spawn(async move {
            let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
                return;
            };
            let request = b"GET /api/orders HTTP/1.1\r\nHost: demo\r\nUser-Agent: demo-traffic\r\nConnection: close\r\n\r\n";
            if stream.write_all(request).await.is_ok() {
                let mut answer = Vec::new();
                let _ = stream.read_to_end(&mut answer).await;
            }
        });
    }
}

/// Goes through [`FAULTS`], each at its time from the start.
async fn inject_faults(app: Arc<App>) {
    let started = tokio::time::Instant::now();
    for (at, fault) in FAULTS {
        tokio::time::sleep_until(started + at).await;
        let mut state = app.state.lock().await;
        match fault {
            Fault::Slow => {
                (state.latency_ms, state.jitter_ms) = (300, 100);
                app.log(
                    "WARN",
                    "faults",
                    "injected: every request now takes 300 ms more",
                );
            }
            Fault::Failing => {
                state.healthy = false;
                state.fail_fraction = 0.3;
                app.publish_health(false).await;
                app.log(
                    "WARN",
                    "faults",
                    "injected: unhealthy, a third of requests fail",
                );
            }
            Fault::Crash => {
                app.log(
                    "ERROR",
                    "main",
                    "FATAL: out of memory; exiting (injected crash)",
                );
                std::process::exit(1);
            }
        }
    }
}

async fn serve_http(listener: TcpListener, app: Arc<App>) {
    let mut connections: u64 = 0;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin on the error.
                eprintln!("demo-target: accept failed: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        connections += 1;
        let worker: Arc<str> = format!("worker-{}", connections % 8 + 1).into();
        let app = app.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let (app, worker) = (app.clone(), worker.clone());
                async move { handle(&app, peer, &worker, request).await }
            });
            // A client hanging up mid-request is routine for a probe target: nothing to report.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    app: &App,
    peer: SocketAddr,
    worker: &str,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let reply = route(app, worker, &request, started).await;
    if let Some(log) = &app.access_log {
        let stamp = rfc3339_millis();
        let month = stamp[5..7]
            .parse::<usize>()
            .ok()
            .and_then(|m| MONTHS.get(m.wrapping_sub(1)));
        let line = format!(
            "{} - - [{}/{}/{}:{} +0000] \"{} {} {:?}\" {} {} \"{}\" \"{}\" {:.3}",
            peer.ip(),
            &stamp[8..10],
            month.unwrap_or(&"???"),
            &stamp[..4],
            &stamp[11..19],
            request.method(),
            request.uri(),
            request.version(),
            reply.status.as_u16(),
            reply.body.len(),
            header_field(request.headers(), header::REFERER),
            header_field(request.headers(), header::USER_AGENT),
            started.elapsed().as_secs_f64(),
        );
        log.write_line(&line);
    }
    let content_type = if reply.json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() = reply.status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(allow) = reply.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    Ok(response)
}

async fn route(app: &App, worker: &str, request: &Request<Incoming>, started: Instant) -> Reply {
    let (method, path) = (request.method(), request.uri().path());
    let query = request.uri().query().unwrap_or("");
    let is_app = path == "/" || path == "/api" || path.starts_with("/api/");
    match path {
        "/health" if method != Method::GET => Reply::only("GET"),
        "/health" => {
            let (delay, healthy) = {
                let mut state = app.state.lock().await;
                (state.delay(), state.healthy)
            };
            tokio::time::sleep(delay).await;
            match healthy {
                true => Reply::text(StatusCode::OK, "ok\n"),
                false => Reply::text(StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n"),
            }
        }
        _ if is_app && method != Method::GET => Reply::only("GET"),
        _ if is_app => {
            // Every roll is drawn on every request, whatever the knobs, so that a seeded run
            // makes the same choices for the same sequence of requests.
            let (delay, fail, out_of_memory) = {
                let mut state = app.state.lock().await;
                let delay = state.delay();
                let fail = state.rng.f64() < state.fail_fraction;
                (delay, fail, state.rng.u32(..200) == 0)
            };
            tokio::time::sleep(delay).await;
            if out_of_memory {
                app.log(
                    "ERROR",
                    worker,
                    "java.lang.OutOfMemoryError: Java heap space",
                );
            }
            if fail {
                app.log(
                    "ERROR",
                    worker,
                    "request failed: upstream timeout (injected)",
                );
                return Reply::text(StatusCode::INTERNAL_SERVER_ERROR, "injected failure\n");
            }
            let millis = started.elapsed().as_millis();
            app.log(
                "INFO",
                worker,
                &format!("handled GET {path} in {millis} ms"),
            );
            Reply::text(StatusCode::OK, "hello\n")
        }
        "/admin/state" if method != Method::GET => Reply::only("GET"),
        "/admin/state" => Reply::json(app.state.lock().await.json()),
        "/admin/latency" | "/admin/fail" | "/admin/health" if method != Method::POST => {
            Reply::only("POST")
        }
        "/admin/latency" | "/admin/fail" | "/admin/health" => {
            match set_knob(app, worker, path, query).await {
                Ok(state) => Reply::json(state),
                Err(message) => Reply::text(StatusCode::BAD_REQUEST, format!("{message}\n")),
            }
        }
        _ => Reply::text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Applies one admin change and returns the new state as JSON, or says what was wrong.
async fn set_knob(app: &App, worker: &str, path: &str, query: &str) -> Result<String, String> {
    match path {
        "/admin/latency" => {
            let params = params(query, &["ms", "jitter_ms"])?;
            let ms = required(&params, "ms", "a whole number of milliseconds")?;
            let jitter = optional(&params, "jitter_ms", "a whole number of milliseconds")?;
            let mut state = app.state.lock().await;
            (state.latency_ms, state.jitter_ms) = (ms, jitter.unwrap_or(0));
            let message = format!("latency set to {ms} ms, jitter {} ms", state.jitter_ms);
            app.log("INFO", worker, &message);
            Ok(state.json())
        }
        "/admin/fail" => {
            let params = params(query, &["fraction"])?;
            let fraction: f64 = required(&params, "fraction", "a number from 0.0 to 1.0")?;
            if !(0.0..=1.0).contains(&fraction) {
                return Err(format!("fraction must be from 0.0 to 1.0, not {fraction}"));
            }
            let mut state = app.state.lock().await;
            state.fail_fraction = fraction;
            app.log(
                "INFO",
                worker,
                &format!("failure fraction set to {fraction}"),
            );
            Ok(state.json())
        }
        _ => {
            let params = params(query, &["status"])?;
            let healthy = match params.get("status").copied() {
                Some("healthy") => true,
                Some("unhealthy") => false,
                Some(other) => {
                    return Err(format!(
                        "status must be healthy or unhealthy, not {other:?}"
                    ));
                }
                None => return Err("missing parameter status (healthy or unhealthy)".into()),
            };
            let mut state = app.state.lock().await;
            if state.healthy != healthy {
                state.healthy = healthy;
                match healthy {
                    true => app.log("INFO", worker, "health changed: now healthy"),
                    false => app.log("WARN", worker, "health changed: now unhealthy"),
                }
            }
            app.publish_health(healthy).await;
            Ok(state.json())
        }
    }
}

/// Splits a query string, refusing names the knob does not take so that a typo is not ignored.
fn params<'a>(query: &'a str, known: &[&str]) -> Result<HashMap<&'a str, &'a str>, String> {
    let mut params = HashMap::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !known.contains(&name) {
            return Err(format!(
                "unknown parameter {name:?}; expected {}",
                known.join(", ")
            ));
        }
        params.insert(name, value);
    }
    Ok(params)
}

fn optional<T: FromStr>(
    params: &HashMap<&str, &str>,
    name: &str,
    what: &str,
) -> Result<Option<T>, String> {
    params
        .get(name)
        .map(|value| {
            value
                .parse()
                .map_err(|_| format!("{name} must be {what}, not {value:?}"))
        })
        .transpose()
}

fn required<T: FromStr>(params: &HashMap<&str, &str>, name: &str, what: &str) -> Result<T, String> {
    optional(params, name, what)?.ok_or_else(|| format!("missing parameter {name} ({what})"))
}

/// A header as it goes between quotes in the access log: "-" when absent, quotes escaped.
fn header_field(headers: &HeaderMap, name: header::HeaderName) -> String {
    match headers.get(name).map(|value| value.to_str()) {
        Some(Ok(value)) => value.replace('\\', "\\\\").replace('"', "\\\""),
        Some(Err(_)) | None => "-".into(),
    }
}

/// Now in UTC as `2026-11-28T20:00:00.123Z`, which both log formats are cut from.
fn rfc3339_millis() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
