//! The `http_probe` source: an HTTP request whose status and body decide the check.
//!
//! Each attempt opens a new connection by default, so the check sees what a fresh
//! client sees (a full connect, and TLS handshake for `https`), as blackbox_exporter
//! does; `keepalive: true` reuses connections instead. The HTTP client itself is shared
//! by every check with the same client options: building one (connector, TLS roots)
//! costs more than a probe.
//!
//! ```yaml
//! sources:
//!   shop_health:
//!     type: http_probe
//!     service: shop
//!     url: https://shop.internal/health
//!     method: GET                      # default GET
//!     headers:
//!       Authorization: "Bearer ${SHOP_TOKEN}"   # ${NAME}: from the environment
//!     expect_status: [200, "300-399"]  # codes, ranges or `2xx`; default 2xx
//!     body_contains: "ok"
//!     body_regex: '"status":\s*"up"'
//!     follow_redirects: true           # default true
//!     tls_verify: true                 # default true
//!     keepalive: false                 # default false: a new connection per attempt
//! ```
//!
//! Header values may name environment variables as `${NAME}`, so that secrets stay out
//! of the configuration file; they are read when the check starts, marked sensitive,
//! and never printed (`aegis config expand` shows the `${NAME}` as written).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use reqwest::header::{self, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Attempt, Probe, ProbeOptions, RegexText};
use crate::base::event::{FailureReason, ProbeKind, ProbeStatus};
use crate::base::registry::BuildContext;

/// What checks call themselves in `User-Agent`.
const USER_AGENT: &str = concat!("aegis/", env!("CARGO_PKG_VERSION"));

/// The most of a body that is read and checked; the rest is not read.
const BODY_LIMIT: usize = 1 << 20;

/// Configuration of an `http_probe` (the options besides the shared check options).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpProbeConfig {
    pub url: HttpUrl,
    #[serde(default = "HttpMethod::get")]
    pub method: HttpMethod,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<HeaderKey, HeaderText>,
    /// Status codes that count as up. Default: 200 to 299.
    #[serde(default = "StatusRange::success")]
    pub expect_status: Vec<StatusRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_contains: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_regex: Option<RegexText>,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    #[serde(default = "yes")]
    pub tls_verify: bool,
    #[serde(default)]
    pub keepalive: bool,
}

fn yes() -> bool {
    true
}

/// An absolute `http` or `https` URL, checked when decoded.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct HttpUrl(String);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let url = reqwest::Url::parse(&text)
            .map_err(|err| serde::de::Error::custom(format!("invalid URL `{text}`: {err}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(serde::de::Error::custom(format!(
                "invalid URL `{text}`: the scheme must be `http` or `https`"
            )));
        }
        Ok(HttpUrl(text))
    }
}

/// An HTTP method, checked when decoded.
#[derive(Clone, Debug, Serialize)]
#[serde(transparent)]
pub struct HttpMethod(String);

impl HttpMethod {
    fn get() -> HttpMethod {
        HttpMethod("GET".into())
    }
}

impl<'de> Deserialize<'de> for HttpMethod {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let upper = text.to_ascii_uppercase();
        reqwest::Method::from_bytes(upper.as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("invalid HTTP method `{text}`")))?;
        Ok(HttpMethod(upper))
    }
}

/// A header name, checked when decoded.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct HeaderKey(String);

impl<'de> Deserialize<'de> for HeaderKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        HeaderName::from_bytes(text.as_bytes())
            .map_err(|_| serde::de::Error::custom(format!("invalid header name `{text}`")))?;
        Ok(HeaderKey(text))
    }
}

/// A header value as written, with `${NAME}` references to environment variables.
/// Decoding checks that every variable is set and the result is a valid value.
#[derive(Clone, Serialize)]
#[serde(transparent)]
pub struct HeaderText(String);

impl fmt::Debug for HeaderText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // As written: the references, never what they expand to.
        fmt::Debug::fmt(&self.0, f)
    }
}

impl HeaderText {
    /// The value with its references replaced, marked sensitive when it had any.
    fn expand(&self) -> Result<HeaderValue, String> {
        let mut expanded = String::new();
        let mut rest = self.0.as_str();
        while let Some(start) = rest.find("${") {
            expanded.push_str(&rest[..start]);
            let Some(len) = rest[start + 2..].find('}') else {
                return Err(format!("unclosed `${{` in header value `{}`", self.0));
            };
            let name = &rest[start + 2..start + 2 + len];
            let value = std::env::var(name).map_err(|_| {
                format!("environment variable `{name}` (named in a header value) is not set")
            })?;
            expanded.push_str(&value);
            rest = &rest[start + 3 + len..];
        }
        expanded.push_str(rest);
        let mut value = HeaderValue::from_str(&expanded)
            .map_err(|_| format!("invalid header value `{}` once expanded", self.0))?;
        value.set_sensitive(expanded != self.0);
        Ok(value)
    }
}

impl<'de> Deserialize<'de> for HeaderText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = HeaderText(String::deserialize(deserializer)?);
        text.expand().map_err(serde::de::Error::custom)?;
        Ok(text)
    }
}

/// Expected status codes: one code (`200`), a range (`"200-299"`) or a class (`"2xx"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    low: u16,
    high: u16,
}

impl StatusRange {
    fn success() -> Vec<StatusRange> {
        vec![StatusRange {
            low: 200,
            high: 299,
        }]
    }

    fn contains(self, status: u16) -> bool {
        (self.low..=self.high).contains(&status)
    }

    fn parse(text: &str) -> Option<StatusRange> {
        let code = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let range = if let Some(class) = text.strip_suffix("xx") {
            let low = code(&format!("{class}00"))?;
            StatusRange {
                low,
                high: low + 99,
            }
        } else if let Some((low, high)) = text.split_once('-') {
            StatusRange {
                low: code(low)?,
                high: code(high)?,
            }
        } else {
            let code = code(text)?;
            StatusRange {
                low: code,
                high: code,
            }
        };
        (range.low <= range.high).then_some(range)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.low == self.high {
            serializer.serialize_u16(self.low)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match serde_norway::Value::deserialize(deserializer)? {
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::String(s) => s,
            _ => String::new(),
        };
        StatusRange::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid status `{text}`; expected a code from 100 to 599, a range such as `200-299`, or a class such as `2xx`"
            ))
        })
    }
}

impl ProbeOptions for HttpProbeConfig {
    const NAME: &'static str = "http_probe";
    const KIND: ProbeKind = ProbeKind::Http;

    fn probe(&self, _: &mut BuildContext) -> Box<dyn Probe> {
        Box::new(self.build())
    }
}

impl HttpProbeConfig {
    pub fn build(&self) -> HttpProbe {
        let url = reqwest::Url::parse(&self.url.0).expect("checked when decoded");
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let name = HeaderName::from_bytes(name.0.as_bytes()).expect("checked when decoded");
                Ok((name, value.expand()?))
            })
            .collect::<Result<HeaderMap, String>>();
        let key = ClientKey {
            tls_verify: self.tls_verify,
            keepalive: self.keepalive,
        };
        HttpProbe {
            client: headers.and_then(|headers| Ok((shared_client(key)?, headers))),
            direct: if self.keepalive {
                None
            } else {
                Direct::new(&url)
            },
            keepalive: self.keepalive,
            follow_redirects: self.follow_redirects,
            method: reqwest::Method::from_bytes(self.method.0.as_bytes()).expect("checked"),
            url,
            expect_status: self.expect_status.clone(),
            body_contains: self.body_contains.clone(),
            body_regex: self
                .body_regex
                .as_ref()
                .map(|r| (r.to_string(), r.compile())),
        }
    }
}

/// The options an HTTP client is built with; checks that agree share one client.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ClientKey {
    tls_verify: bool,
    keepalive: bool,
}

/// The client for `key`, built once. It follows no redirects and sends no `Referer`:
/// [`HttpProbe`] follows redirects itself, the same way whichever way it fetched.
fn shared_client(key: ClientKey) -> Result<reqwest::Client, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<ClientKey, reqwest::Client>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = clients.get(&key) {
        return Ok(client.clone());
    }
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .danger_accept_invalid_certs(!key.tls_verify)
        .user_agent(USER_AGENT)
        // A check measures the service, not a proxy that happens to be configured.
        .no_proxy();
    if !key.keepalive {
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
    clients.insert(key, client.clone());
    Ok(client)
}

/// A running HTTP check's attempt maker.
pub struct HttpProbe {
    /// The client and the expanded headers, or why they could not be made (reported
    /// by every attempt rather than stopping the whole pipeline).
    client: Result<(reqwest::Client, HeaderMap), String>,
    /// For the configured URL, when it is plain `http` with a new connection per
    /// attempt: where to connect and what to ask ([`fetch_direct`]).
    direct: Option<Direct>,
    keepalive: bool,
    follow_redirects: bool,
    method: reqwest::Method,
    url: reqwest::Url,
    expect_status: Vec<StatusRange>,
    body_contains: Option<String>,
    body_regex: Option<(String, regex::bytes::Regex)>,
}

/// How many redirects an attempt follows at most.
const MAX_REDIRECTS: usize = 10;

/// One request of an attempt: where, how, with what.
struct Request {
    url: reqwest::Url,
    method: reqwest::Method,
    headers: HeaderMap,
}

/// What came back: the status, where a redirect points, and the first [`BODY_LIMIT`]
/// bytes of the body (not read for a redirect that is followed).
struct Fetched {
    status: u16,
    location: Option<HeaderValue>,
    body: Vec<u8>,
}

impl Probe for HttpProbe {
    fn attempt(&self) -> BoxFuture<'_, Attempt> {
        Box::pin(async move {
            let (client, headers) = match &self.client {
                Ok(client) => client,
                Err(message) => return Attempt::down(FailureReason::Other, message.clone()),
            };
            let mut request = Request {
                url: self.url.clone(),
                method: self.method.clone(),
                headers: headers.clone(),
            };
            let mut redirects = 0;
            loop {
                let followed;
                let direct = if redirects == 0 {
                    self.direct.as_ref()
                } else if self.keepalive {
                    None
                } else {
                    followed = Direct::new(&request.url);
                    followed.as_ref()
                };
                let fetched = match direct {
                    Some(direct) => fetch_direct(direct, &request, self.follow_redirects).await,
                    None => fetch(client, &request, self.follow_redirects).await,
                };
                let fetched = match fetched {
                    Ok(fetched) => fetched,
                    Err(failed) => return failed,
                };
                let status = ProbeStatus::Http(fetched.status);
                let Some(location) = &fetched.location else {
                    return self
                        .judge(fetched.status, &fetched.body)
                        .with_status(status);
                };
                if redirects == MAX_REDIRECTS {
                    let detail = format!(
                        "status {}, and more than {MAX_REDIRECTS} redirects",
                        fetched.status
                    );
                    return Attempt::down(FailureReason::Other, detail).with_status(status);
                }
                match request.redirected(fetched.status, location) {
                    Some(next) => request = next,
                    // Nowhere to go: the redirect itself is the answer.
                    None => return self.judge(fetched.status, &[]).with_status(status),
                }
                redirects += 1;
            }
        })
    }
}

impl Request {
    /// The request a redirect leads to, as browsers and reqwest make it: `303` (and
    /// `301`/`302` after a `POST`) become a `GET`, and neither credentials nor values
    /// taken from the environment go to another origin. `None` if `location` is not a
    /// URL.
    fn redirected(&self, status: u16, location: &HeaderValue) -> Option<Request> {
        let url = self.url.join(location.to_str().ok()?).ok()?;
        if !matches!(url.scheme(), "http" | "https") {
            return None;
        }
        let method = match status {
            303 if self.method != reqwest::Method::HEAD => reqwest::Method::GET,
            301 | 302 if self.method == reqwest::Method::POST => reqwest::Method::GET,
            _ => self.method.clone(),
        };
        let headers = if url.origin() == self.url.origin() {
            self.headers.clone()
        } else {
            let credentials = [
                header::AUTHORIZATION,
                header::COOKIE,
                header::PROXY_AUTHORIZATION,
            ];
            (self.headers.iter())
                .filter(|(name, value)| !value.is_sensitive() && !credentials.contains(name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect()
        };
        Some(Request {
            url,
            method,
            headers,
        })
    }
}

/// Whether a response with `status` is a redirect to follow.
fn is_followed(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Plain HTTP/1.1 on a connection of the attempt's own, driven by the attempt itself:
/// no pool, no connection task, no TLS set-up, which make up most of what a client
/// costs per probe.
async fn fetch_direct(
    direct: &Direct,
    request: &Request,
    follow: bool,
) -> Result<Fetched, Attempt> {
    let stream = super::connect(&direct.address).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|err| Attempt::failed(&err))?;
    let mut sent = hyper::Request::new(Empty::<Bytes>::new());
    *sent.method_mut() = request.method.clone();
    *sent.uri_mut() = direct.target.clone();
    let sent_headers = sent.headers_mut();
    sent_headers.insert(header::HOST, direct.host.clone());
    sent_headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
    sent_headers.insert(header::ACCEPT, HeaderValue::from_static("*/*"));
    sent_headers.extend(request.headers.clone());

    // The connection must be polled for the request to go out and the response to
    // come in. It is dropped, and so closed, once the body is in; asking for
    // `Connection: close` instead would make hyper shut the socket down first, a
    // system call more per probe for the same FIN.
    let mut connection = Driven::new(connection);
    let response = connection
        .run(sender.send_request(sent))
        .await
        .and_then(|response| response)
        .map_err(|err| Attempt::failed(&err))?;
    let status = response.status().as_u16();
    let location = redirect_location(follow, status, response.headers());
    let failed = |err: hyper::Error| Attempt::failed(&err).with_status(ProbeStatus::Http(status));
    let mut body = response.into_body();
    let mut kept = Vec::new();
    while location.is_none() && kept.len() < BODY_LIMIT {
        match connection.run(body.frame()).await.map_err(failed)? {
            None => break,
            Some(Err(err)) => return Err(failed(err)),
            Some(Ok(frame)) => keep(&mut kept, frame.data_ref().map_or(&[], |data| data)),
        }
    }
    Ok(Fetched {
        status,
        location,
        body: kept,
    })
}

/// The same with the client, for `https` and kept-alive connections.
async fn fetch(
    client: &reqwest::Client,
    request: &Request,
    follow: bool,
) -> Result<Fetched, Attempt> {
    let sent = client
        .request(request.method.clone(), request.url.clone())
        .headers(request.headers.clone());
    let mut response = sent.send().await.map_err(|err| Attempt::failed(&err))?;
    let status = response.status().as_u16();
    let location = redirect_location(follow, status, response.headers());
    let mut kept = Vec::new();
    while location.is_none() && kept.len() < BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => keep(&mut kept, &chunk),
            Ok(None) => break,
            Err(err) => return Err(Attempt::failed(&err).with_status(ProbeStatus::Http(status))),
        }
    }
    Ok(Fetched {
        status,
        location,
        body: kept,
    })
}

/// Where a response sends the check next, if it is a redirect to follow.
fn redirect_location(follow: bool, status: u16, headers: &HeaderMap) -> Option<HeaderValue> {
    (follow && is_followed(status))
        .then(|| headers.get(header::LOCATION).cloned())
        .flatten()
}

/// Appends what fits of `data` under [`BODY_LIMIT`].
fn keep(kept: &mut Vec<u8>, data: &[u8]) {
    kept.extend_from_slice(&data[..data.len().min(BODY_LIMIT - kept.len())]);
}

/// Where a plain-HTTP check connects and what it asks for, worked out once.
struct Direct {
    /// `host:port`, to resolve and connect to.
    address: String,
    /// The `Host` header: the host, and the port unless it is the default.
    host: HeaderValue,
    /// The path and query.
    target: hyper::Uri,
}

impl Direct {
    /// `None` for a URL the direct way does not take (not `http`, or with user
    /// information, which the client turns into an `Authorization` header).
    fn new(url: &reqwest::Url) -> Option<Direct> {
        if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?;
        let port = url.port_or_known_default()?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let target = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        Some(Direct {
            address: format!("{host}:{port}"),
            host: HeaderValue::from_str(&authority).ok()?,
            target: target.parse().ok()?,
        })
    }
}

/// An HTTP/1 connection polled alongside the work that needs it.
struct Driven<C> {
    connection: std::pin::Pin<Box<C>>,
    ended: bool,
}

impl<C: Future<Output = Result<(), hyper::Error>>> Driven<C> {
    fn new(connection: C) -> Self {
        Driven {
            connection: Box::pin(connection),
            ended: false,
        }
    }

    /// Awaits `work` while polling the connection; the connection's error, if it fails
    /// first.
    async fn run<T>(&mut self, work: impl Future<Output = T>) -> Result<T, hyper::Error> {
        let mut work = std::pin::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                ended = &mut self.connection, if !self.ended => {
                    self.ended = true;
                    ended?;
                }
            }
        }
    }
}

impl HttpProbe {
    fn judge(&self, status: u16, body: &[u8]) -> Attempt {
        if !self
            .expect_status
            .iter()
            .any(|range| range.contains(status))
        {
            let expected: Vec<String> = self.expect_status.iter().map(|r| r.to_string()).collect();
            return Attempt::down(
                FailureReason::Status,
                format!("status {status}, expected {}", expected.join(", ")),
            );
        }
        if let Some(needle) = &self.body_contains
            && memchr::memmem::find(body, needle.as_bytes()).is_none()
        {
            return Attempt::down(
                FailureReason::Body,
                format!("status {status}, but the body does not contain `{needle}`"),
            );
        }
        if let Some((text, regex)) = &self.body_regex
            && !regex.is_match(body)
        {
            return Attempt::down(
                FailureReason::Body,
                format!("status {status}, but the body does not match `{text}`"),
            );
        }
        Attempt::up(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_parse_codes_ranges_and_classes() {
        let parse = |text: &str| StatusRange::parse(text).map(|r| (r.low, r.high));
        assert_eq!(parse("200"), Some((200, 200)));
        assert_eq!(parse("200-204"), Some((200, 204)));
        assert_eq!(parse("3xx"), Some((300, 399)));
        for bad in ["", "20", "600", "299-200", "9xx", "abc", "2xx-3xx"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_values_expand_environment_variables_and_are_sensitive() {
        // SAFETY: this test alone reads or writes this variable.
        unsafe { std::env::set_var("AEGIS_TEST_HEADER_TOKEN", "s3cret") };
        let value = HeaderText("Bearer ${AEGIS_TEST_HEADER_TOKEN}".into())
            .expand()
            .unwrap();
        assert_eq!(value.to_str().unwrap(), "Bearer s3cret");
        assert!(value.is_sensitive());
        let plain = HeaderText("text/plain".into()).expand().unwrap();
        assert!(!plain.is_sensitive());
        let err = HeaderText("${AEGIS_TEST_HEADER_UNSET}".into())
            .expand()
            .unwrap_err();
        assert!(err.contains("`AEGIS_TEST_HEADER_UNSET`"), "{err}");
        let err = HeaderText("${OPEN".into()).expand().unwrap_err();
        assert!(err.contains("unclosed"), "{err}");
    }
}
