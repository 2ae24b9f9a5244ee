//! A webhook receiver for Aegis's `webhook` sink (and any Alertmanager webhook): it
//! prints each notification readably, one block per alert, checks the body's
//! signature when given the secret, and can be told to fail, for demos and tests.
//!
//! ```sh
//! HOOK_SECRET=s3cret cargo run --example webhook-server -- \
//!     --listen 127.0.0.1:9000 --secret-env HOOK_SECRET --fail refuse,500,slow,429
//! ```
//!
//! Options: `--listen ADDR` (default 127.0.0.1:9000; port 0 picks a free one),
//! `--secret-env NAME` (the environment variable holding the `hmac_secret`: a request
//! whose `X-Aegis-Signature` does not match is answered 401), `--fail FAULT,...` (the
//! first requests get these faults, one each, in order, and the rest 200), `--slow
//! DURATION` (how long `slow` waits before it answers 200; default 10s, past the
//! sink's default timeout). Faults: `refuse` (the connection is closed without an
//! answer, as by a receiver that crashed), `500`, `400` (refused for good), `429`
//! (with `Retry-After: 1`), `slow`.
//!
//! Output, on standard output: first `listening ADDR` once the port is bound; then
//! for each request a block: a head line (`firing`/`resolved`, the receiver, the
//! group), one block per alert (status, severity, service, summary, description),
//! then one line a script can parse: `ack key=KEY status=STATUS alerts=N` for a
//! notification answered 200, `fault FAULT key=KEY` for one answered with a fault,
//! `rejected key=KEY reason=...` for one refused (bad signature or body).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;

/// A webhook receiver that prints what it gets, and fails when asked to.
#[derive(Parser)]
struct Args {
    /// Listen address (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// The environment variable holding the HMAC secret; with it, signatures are
    /// checked.
    #[arg(long, value_name = "NAME")]
    secret_env: Option<String>,
    /// Faults for the first requests, in order: refuse, 500, 400, 429, slow.
    #[arg(long, value_name = "FAULT,...", value_delimiter = ',')]
    fail: Vec<Fault>,
    /// How long a `slow` answer takes.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    slow: Duration,
}

/// How one request is failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Fault {
    Refuse,
    #[value(name = "500")]
    ServerError,
    #[value(name = "400")]
    BadRequest,
    #[value(name = "429")]
    TooMany,
    Slow,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Refuse => "refuse",
            Fault::ServerError => "500",
            Fault::BadRequest => "400",
            Fault::TooMany => "429",
            Fault::Slow => "slow",
        }
    }
}

/// What every connection shares.
struct Receiver {
    secret: Option<Vec<u8>>,
    faults: Mutex<VecDeque<Fault>>,
    slow: Duration,
}

impl Receiver {
    fn next_fault(&self) -> Option<Fault> {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    let secret = match &args.secret_env {
        Some(name) => match std::env::var(name) {
            Ok(secret) if !secret.is_empty() => Some(secret.into_bytes()),
            _ => {
                eprintln!("webhook-server: the environment variable `{name}` is not set");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let listener = match TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("webhook-server: cannot listen on {}: {err}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let address = listener.local_addr().expect("a bound address");
    println!("listening {address}");
    let receiver = Arc::new(Receiver {
        secret,
        faults: Mutex::new(args.fail.into()),
        slow: args.slow,
    });
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let receiver = Arc::clone(&receiver);
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(request, Arc::clone(&receiver)));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Answers one request: reads it, checks it, prints it, and answers as the next
/// fault says (200 without one).
async fn answer(
    request: Request<Incoming>,
    receiver: Arc<Receiver>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let header = |name: &str| {
        (request.headers().get(name))
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let key = header("idempotency-key");
    let signature = header("x-aegis-signature");
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(err) => return Err(std::io::Error::other(err)),
    };
    let fault = receiver.next_fault();
    if fault == Some(Fault::Refuse) {
        println!("fault refuse key={key}");
        // An error ends the connection without an answer.
        return Err(std::io::Error::other("refused, as asked"));
    }
    if let Some(secret) = &receiver.secret
        && !signed(secret, &body, &signature)
    {
        println!("rejected key={key} reason=signature");
        return Ok(reply(StatusCode::UNAUTHORIZED, "bad signature"));
    }
    let Ok(notification) = serde_json::from_slice::<Value>(&body) else {
        println!("rejected key={key} reason=not-json");
        return Ok(reply(StatusCode::BAD_REQUEST, "not JSON"));
    };
    print!("{}", describe(&notification));
    let status = match fault {
        None => StatusCode::OK,
        Some(Fault::Slow) => {
            tokio::time::sleep(receiver.slow).await;
            StatusCode::OK
        }
        Some(Fault::ServerError) => StatusCode::INTERNAL_SERVER_ERROR,
        Some(Fault::BadRequest) => StatusCode::BAD_REQUEST,
        Some(Fault::TooMany) => StatusCode::TOO_MANY_REQUESTS,
        Some(Fault::Refuse) => unreachable!("answered above"),
    };
    match fault {
        Some(fault) if status != StatusCode::OK => println!("fault {} key={key}", fault.name()),
        _ => println!(
            "ack key={key} status={} alerts={}",
            text(&notification["status"]),
            notification["alerts"].as_array().map_or(0, Vec::len)
        ),
    }
    let mut response = reply(
        status,
        if status.is_success() {
            "ok"
        } else {
            "as asked"
        },
    );
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert("retry-after", hyper::header::HeaderValue::from_static("1"));
    }
    Ok(response)
}

fn reply(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response
}

/// Whether `signature` is `sha256=` and the hex HMAC-SHA256 of `body` with `secret`.
fn signed(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let Some(hex) = signature.strip_prefix("sha256=") else {
        return false;
    };
    let Some(bytes) = decode_hex(hex) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    // Compared in constant time, as a receiver should.
    mac.verify_slice(&bytes).is_ok()
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A notification, readably: a head line, then a block per alert.
fn describe(notification: &Value) -> String {
    let mut out = format!(
        "== {} ({}) receiver={} group={}\n",
        text(&notification["status"]).to_uppercase(),
        plural(
            notification["alerts"].as_array().map_or(0, Vec::len),
            "alert"
        ),
        text(&notification["receiver"]),
        text(&notification["groupKey"]),
    );
    for alert in notification["alerts"].as_array().into_iter().flatten() {
        let labels = &alert["labels"];
        let annotations = &alert["annotations"];
        out.push_str(&format!(
            "  [{}] {} {} {}: {}\n",
            text(&alert["status"]).to_uppercase(),
            text(&labels["severity"]),
            text(&labels["service"]),
            text(&labels["alertname"]),
            text(&annotations["summary"]),
        ));
        let description = text(&annotations["description"]);
        if !description.is_empty() {
            out.push_str(&format!("      {description}\n"));
        }
        out.push_str(&format!(
            "      since {}{} fingerprint {}\n",
            text(&alert["startsAt"]),
            match text(&alert["endsAt"]) {
                ends if ends.starts_with("0001-") => String::new(),
                ends => format!(" until {ends}"),
            },
            text(&alert["fingerprint"]),
        ));
    }
    out
}

/// A JSON string's text, on one line (control characters escaped), or "" for
/// anything else.
fn text(value: &Value) -> String {
    let mut shown = String::new();
    for c in value.as_str().unwrap_or("").chars() {
        if c.is_control() {
            shown.extend(c.escape_debug());
        } else {
            shown.push(c);
        }
    }
    shown
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
