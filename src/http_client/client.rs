//! The reqwest clients, one per set of [`ClientOptions`], and one exchange over them:
//! a request sent, and its response's status, redirect and first bytes of body read.
//!
//! A client is built once and shared by everything that asks for the same options:
//! building one (connector, TLS roots) costs more than a request. Clients follow no
//! redirects and send no `Referer`: redirects are followed by [`super::Redirects`],
//! the same way whoever sends, and use no proxy from the environment (a check measures
//! the service, and a sink's target is configured where it is used).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};

use super::redirect::Request;

/// What Aegis calls itself in `User-Agent`.
pub const USER_AGENT: &str = concat!("aegis/", env!("CARGO_PKG_VERSION"));

/// The options a client is built with; users that agree share one client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientOptions {
    /// `false` accepts any certificate.
    pub tls_verify: bool,
    /// `false` keeps no idle connection: each request opens its own.
    pub keepalive: bool,
}

/// A client could not be built (its TLS set-up failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot build an HTTP client: {source}")]
pub struct ClientError {
    #[source]
    source: reqwest::Error,
}

/// The client for `options`, built on first use.
pub fn shared_client(options: ClientOptions) -> Result<reqwest::Client, ClientError> {
    static CLIENTS: OnceLock<Mutex<HashMap<ClientOptions, reqwest::Client>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = clients.get(&options) {
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .danger_accept_invalid_certs(!options.tls_verify)
        .user_agent(USER_AGENT)
        .no_proxy();
    if !options.keepalive {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder.build().map_err(|source| ClientError { source })?;
    clients.insert(options, client.clone());
    Ok(client)
}

/// What came back: the status, where a redirect points (only for a redirect that is
/// followed), the first bytes of the body (none for a followed redirect), and the
/// `Retry-After` of a reply that is not a success (a sink waits as long as it asks).
#[derive(Debug)]
pub struct Fetched {
    pub status: StatusCode,
    pub location: Option<HeaderValue>,
    pub body: Vec<u8>,
    pub retry_after: Option<HeaderValue>,
}

/// An exchange failed: the request could not be sent, or its body not read (then the
/// status had come).
#[derive(Debug, thiserror::Error)]
#[error("the HTTP exchange failed")]
pub struct FetchError {
    pub status: Option<StatusCode>,
    #[source]
    pub source: reqwest::Error,
}

/// Sends `request` with `client`; `follow` says whether a redirect is to be followed
/// (then its body is not read). At most `limit` bytes of body are read.
pub async fn fetch(
    client: &reqwest::Client,
    request: &Request,
    follow: bool,
    limit: usize,
) -> Result<Fetched, FetchError> {
    let mut sent = client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone());
    if let Some(body) = &request.body {
        sent = sent
            .header(header::CONTENT_TYPE, body.content_type.clone())
            .body(body.bytes.clone());
    }
    let mut response = sent.send().await.map_err(|source| FetchError {
        status: None,
        source,
    })?;
    let status = response.status();
    let location = followed_location(follow, status, response.headers());
    let retry_after = (!status.is_success())
        .then(|| response.headers().get(header::RETRY_AFTER).cloned())
        .flatten();
    let mut kept = Vec::new();
    while location.is_none() && kept.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => keep(&mut kept, &chunk, limit),
            Ok(None) => break,
            Err(source) => {
                return Err(FetchError {
                    status: Some(status),
                    source,
                });
            }
        }
    }
    Ok(Fetched {
        status,
        location,
        body: kept,
        retry_after,
    })
}

/// Where a response sends the request next, if it is a redirect to follow.
pub fn followed_location(
    follow: bool,
    status: StatusCode,
    headers: &HeaderMap,
) -> Option<HeaderValue> {
    let followed = matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308);
    (follow && followed)
        .then(|| headers.get(header::LOCATION).cloned())
        .flatten()
}

/// Appends what fits of `data` under `limit` bytes.
pub fn keep(kept: &mut Vec<u8>, data: &[u8], limit: usize) {
    kept.extend_from_slice(&data[..data.len().min(limit.saturating_sub(kept.len()))]);
}
