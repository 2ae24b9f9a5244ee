//! The HTTP client every part of Aegis that speaks HTTP uses: the configuration values
//! of a request, parsed once ([`config`]); shared reqwest clients and one exchange
//! over them ([`client`]); the redirect policy ([`redirect`]); and, on top, a target a
//! sink configures and sends to ([`HttpTarget`], [`HttpSender::send`]).
//!
//! It owns what is the same whoever sends: TLS and connection options, `${NAME}`
//! secrets in header values (never logged or printed), redirects that keep
//! credentials in their origin, and timeouts. It deliberately knows nothing of checks,
//! events or retries: the HTTP probe judges statuses and bodies and has a faster way of
//! its own for plain HTTP/1, and a sink decides when to retry (with
//! [`SendError::is_retryable`], and a refusal's `Retry-After`). It depends only on crates and `crate::base`, so that
//! every component may use it.
//!
//! A sink's configuration (the keys of [`HttpTarget`]):
//!
//! ```yaml
//! url: https://hooks.example.com/aegis    # http or https
//! method: POST                            # default POST
//! headers:
//!   Authorization: "Bearer ${HOOK_TOKEN}" # ${NAME}: from the environment
//! timeout: 10s                            # the whole request, redirects included
//! tls_verify: true                        # default true
//! ```

pub mod client;
pub mod config;
pub mod redirect;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

pub use self::client::{
    ClientError, ClientOptions, FetchError, Fetched, USER_AGENT, fetch, followed_location, keep,
    shared_client,
};
pub use self::config::{
    ExpandError, HeaderKey, HeaderText, Headers, HttpMethod, HttpUrl, SecretText,
};
pub use self::redirect::{MAX_REDIRECTS, Payload, Redirects, Request, Step};
use crate::base::text::Escaped;

/// Where a sink sends its requests, and how.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTarget {
    /// An `http` or `https` URL.
    pub url: HttpUrl,
    /// The request method. Default `POST`.
    #[serde(default = "HttpMethod::post")]
    pub method: HttpMethod,
    /// Headers sent with every request; `${NAME}` in a value is the environment
    /// variable `NAME`. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: Headers,
    /// How long one request may take, its redirects included. Default `10s`.
    #[serde(default = "default_timeout", with = "crate::base::duration")]
    pub timeout: Duration,
    /// `false` accepts any certificate. Default `true`.
    #[serde(default = "yes")]
    pub tls_verify: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn yes() -> bool {
    true
}

/// The most of a reply's body that is read (to show in an error, or for the caller).
pub const REPLY_LIMIT: usize = 64 * 1024;

/// The most of a refusing reply's body shown in [`SendError::Status`].
const SHOWN_BYTES: usize = 200;

impl HttpTarget {
    /// The keys of [`HttpTarget`], for a component that writes them beside its own and
    /// splits its mapping to decode each part.
    pub const KEYS: [&'static str; 5] = ["url", "method", "headers", "timeout", "tls_verify"];

    /// What sends to the target. Connections are kept alive between requests.
    pub fn build(&self) -> Result<HttpSender, ClientError> {
        let client = shared_client(ClientOptions {
            tls_verify: self.tls_verify,
            keepalive: true,
        })?;
        Ok(HttpSender {
            client,
            request: Request {
                url: self.url.url().clone(),
                method: self.method.method().clone(),
                headers: config::header_map(&self.headers),
                body: None,
            },
            timeout: self.timeout,
        })
    }
}

/// Sends requests to one [`HttpTarget`].
#[derive(Clone, Debug)]
pub struct HttpSender {
    client: reqwest::Client,
    /// The target's request, without a body.
    request: Request,
    timeout: Duration,
}

/// A successful (`2xx`) reply: its status and the first [`REPLY_LIMIT`] bytes of its
/// body.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// Why a request did not get a `2xx` reply. The messages never hold the URL (its path
/// or query may hold a secret) or a header value.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no reply within {}", humantime::format_duration(*timeout))]
    Timeout { timeout: Duration },
    #[error("{}", causes(error))]
    Transport { error: reqwest::Error },
    #[error("status {status}: {body}")]
    Status {
        status: StatusCode,
        body: String,
        /// How long the reply's `Retry-After` asks to wait, if it has one.
        retry_after: Option<Duration>,
    },
    #[error("status {status}, and more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects { status: StatusCode },
}

impl SendError {
    /// Whether the same request may succeed later: no reply, or a status that says
    /// "not now" (`408`, `429`, `5xx`).
    pub fn is_retryable(&self) -> bool {
        match self {
            SendError::Timeout { .. } | SendError::Transport { .. } => true,
            SendError::Status { status, .. } => {
                status.is_server_error()
                    || matches!(
                        *status,
                        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
                    )
            }
            SendError::TooManyRedirects { .. } => false,
        }
    }
}

/// How long a `Retry-After` value asks to wait from `now`: a number of seconds, or an
/// HTTP date (RFC 9110, section 10.2.3; a date past is no wait). `None` if it is
/// neither.
fn retry_after(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    // An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`) is an RFC 2822 date.
    let date = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    Some((SystemTime::from(date).duration_since(now)).unwrap_or(Duration::ZERO))
}

/// `error` and its causes on one line.
fn causes(error: &(dyn std::error::Error + 'static)) -> String {
    let chain = std::iter::successors(Some(error), |err| err.source());
    chain
        .map(|err| err.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

impl HttpSender {
    /// Sends the target's request with `body`, following redirects, within the
    /// target's timeout.
    pub async fn send(&self, body: Option<Payload>) -> Result<Reply, SendError> {
        self.send_with(HeaderMap::new(), body).await
    }

    /// The same with `headers` besides the target's (a signature of this body, say).
    pub async fn send_with(
        &self,
        headers: HeaderMap,
        body: Option<Payload>,
    ) -> Result<Reply, SendError> {
        let timeout = self.timeout;
        tokio::time::timeout(timeout, self.exchange(headers, body))
            .await
            .map_err(|_| SendError::Timeout { timeout })?
    }

    async fn exchange(
        &self,
        headers: HeaderMap,
        body: Option<Payload>,
    ) -> Result<Reply, SendError> {
        let mut request = Request {
            body,
            ..self.request.clone()
        };
        request.headers.extend(headers);
        let mut chain = Redirects::new(request, true);
        loop {
            let fetched = fetch(&self.client, chain.request(), chain.follows(), REPLY_LIMIT)
                .await
                .map_err(|err| SendError::Transport {
                    error: err.source.without_url(),
                })?;
            match chain.step(fetched.status, fetched.location.as_ref()) {
                Step::Follow => continue,
                Step::TooMany => {
                    return Err(SendError::TooManyRedirects {
                        status: fetched.status,
                    });
                }
                Step::Answer if fetched.status.is_success() => {
                    return Ok(Reply {
                        status: fetched.status,
                        body: fetched.body,
                    });
                }
                Step::Answer => {
                    let shown = &fetched.body[..fetched.body.len().min(SHOWN_BYTES)];
                    let text = String::from_utf8_lossy(shown);
                    return Err(SendError::Status {
                        status: fetched.status,
                        body: Escaped(text.trim()).to_string(),
                        retry_after: (fetched.retry_after.as_ref())
                            .and_then(|value| retry_after(value, SystemTime::now())),
                    });
                }
            }
        }
    }
}
