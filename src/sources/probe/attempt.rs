//! One attempt at a check: the [`Probe`] contract each protocol implements, what an
//! attempt found ([`Attempt`]), how a failure is named ([`reason_of`],
//! [`describe_error`]) and bounded ([`bounded_detail`]), and the TCP connect the
//! protocols share ([`connect`]).

use std::error::Error as StdError;

use futures::future::BoxFuture;

use crate::base::event::{FailureReason, Outcome, PerfSample, ProbeStatus};

/// One attempt at a check, in one protocol.
pub trait Probe: Send + Sync + 'static {
    /// Makes one attempt. The scheduler drops the future when the attempt's time is
    /// up, so an attempt must leave nothing running when dropped (a script's process
    /// group is killed, a connection closed).
    fn attempt(&self) -> BoxFuture<'_, Attempt>;
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    pub outcome: Outcome,
    pub status: Option<ProbeStatus>,
    pub reason: Option<FailureReason>,
    pub detail: String,
    pub perfdata: Vec<PerfSample>,
}

impl Attempt {
    pub fn up(detail: impl Into<String>) -> Attempt {
        Attempt {
            outcome: Outcome::Up,
            status: None,
            reason: None,
            detail: detail.into(),
            perfdata: Vec::new(),
        }
    }

    pub fn down(reason: FailureReason, detail: impl Into<String>) -> Attempt {
        Attempt {
            outcome: Outcome::Down,
            status: None,
            reason: Some(reason),
            detail: detail.into(),
            perfdata: Vec::new(),
        }
    }

    pub fn with_status(mut self, status: ProbeStatus) -> Attempt {
        self.status = Some(status);
        self
    }

    /// A failure from a connection or request error, its reason read off the error's
    /// causes.
    pub fn failed(error: &(dyn StdError + 'static)) -> Attempt {
        Attempt::down(reason_of(error), describe_error(error))
    }
}

/// The reason for a connection-level error: the first cause that says something
/// definite (TLS, refused, timed out, name not resolved) decides.
pub fn reason_of(error: &(dyn StdError + 'static)) -> FailureReason {
    for err in causes(error) {
        if err.is::<rustls::Error>() {
            return FailureReason::Tls;
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind;
            match io.kind() {
                ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset => {
                    return FailureReason::Refused;
                }
                ErrorKind::TimedOut => return FailureReason::Timeout,
                _ => {}
            }
        }
        // hyper-util reports a failed lookup as a plain error whose message says so;
        // it has no type of its own to test for.
        if err.to_string().starts_with("dns error") {
            return FailureReason::Dns;
        }
    }
    FailureReason::Other
}

/// An error's causes on one line, without the wrappers that say nothing ("error
/// sending request for url (...)", "client error (Connect)") or repeat a cause. The
/// request's URL is left out: its query may hold a secret.
pub fn describe_error(error: &(dyn StdError + 'static)) -> String {
    let all: Vec<&(dyn StdError + 'static)> = causes(error).collect();
    let mut parts: Vec<String> = Vec::new();
    for (i, err) in all.iter().enumerate() {
        let text = err.to_string();
        let wrapper = err.is::<reqwest::Error>() || text.starts_with("client error (");
        let last = i + 1 == all.len();
        if (wrapper && !last) || parts.iter().any(|part| part.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    let text = parts.join(": ");
    if reason_of(error) == FailureReason::Tls {
        format!("TLS: {text}")
    } else {
        text
    }
}

/// The error and its causes, outermost first. An I/O error that wraps another error
/// (rustls's, hyper's) hides it from `source`, so the wrapped one is taken from it.
fn causes<'a>(
    error: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(error), |&err| {
        match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn StdError + 'static)),
            None => err.source(),
        }
    })
}

/// A TCP connection to `address` (`host:port`): each address it resolves to is tried
/// in turn. The failure is the attempt's result: `dns` when the name does not
/// resolve, else the last connect error's reason.
pub async fn connect(address: &str) -> Result<tokio::net::TcpStream, Attempt> {
    let resolved = tokio::net::lookup_host(address).await.map_err(|err| {
        Attempt::down(
            FailureReason::Dns,
            format!("cannot resolve `{address}`: {err}"),
        )
    })?;
    let mut failure = Attempt::down(
        FailureReason::Dns,
        format!("`{address}` resolves to no address"),
    );
    for target in resolved {
        match tokio::net::TcpStream::connect(target).await {
            Ok(stream) => return Ok(stream),
            Err(err) => {
                failure = Attempt::down(reason_of(&err), format!("connect to {target}: {err}"))
            }
        }
    }
    Err(failure)
}

/// A detail is cut to at most this many bytes, the ellipsis included, so that one
/// chatty server or plugin cannot blow up every event and log line that carries it.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// `text`, or its longest prefix that fits [`MAX_DETAIL_BYTES`] with an ellipsis after
/// it, cut at a char boundary.
pub fn bounded_detail(text: &str) -> String {
    const ELLIPSIS: &str = "…";
    if text.len() <= MAX_DETAIL_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_DETAIL_BYTES - ELLIPSIS.len();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", text[..end].trim_end())
}
