//! The `tcp_probe` source: a TCP connect, optionally a payload sent and a reply that
//! must match a regex.
//!
//! ```yaml
//! sources:
//!   redis:
//!     type: tcp_probe
//!     service: cache
//!     address: 127.0.0.1:6379      # host:port
//!     send: "PING\r\n"             # optional
//!     expect: '^\+PONG'            # optional: the reply must match
//! ```
//!
//! With `expect`, the reply is read until the regex matches, the peer closes, or
//! [`REPLY_LIMIT`] bytes have come; the attempt's timeout bounds the wait. A reply that
//! does not match is shown in the result's detail, its first [`SHOWN_BYTES`] escaped.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ProbeOptions;
use super::attempt::{Attempt, Probe};
use crate::base::event::{FailureReason, ProbeKind};
use crate::base::regex::RegexText;
use crate::base::registry::BuildContext;

/// The most of a reply that is read and matched.
const REPLY_LIMIT: usize = 64 * 1024;
/// The most of a reply that does not match that is shown in the detail.
const SHOWN_BYTES: usize = 80;

/// Configuration of a `tcp_probe` (the options besides the shared check options).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TcpProbeConfig {
    /// `host:port`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect: Option<RegexText>,
}

impl ProbeOptions for TcpProbeConfig {
    const NAME: &'static str = "tcp_probe";
    const KIND: ProbeKind = ProbeKind::Tcp;

    fn probe(&self, _: &mut BuildContext) -> Box<dyn Probe> {
        Box::new(self.build())
    }
}

impl TcpProbeConfig {
    pub fn build(&self) -> TcpProbe {
        TcpProbe {
            address: self.address.clone(),
            send: self.send.clone(),
            expect: self.expect.clone(),
        }
    }
}

/// A running TCP check's attempt maker.
pub struct TcpProbe {
    address: String,
    send: Option<String>,
    expect: Option<RegexText>,
}

impl Probe for TcpProbe {
    fn attempt(&self) -> BoxFuture<'_, Attempt> {
        Box::pin(async move {
            let mut stream = match super::attempt::connect(&self.address).await {
                Ok(stream) => stream,
                Err(failed) => return failed,
            };
            if let Some(payload) = &self.send
                && let Err(err) = stream.write_all(payload.as_bytes()).await
            {
                return Attempt::down(super::attempt::reason_of(&err), format!("send: {err}"));
            }
            match &self.expect {
                None => Attempt::up("connected"),
                Some(expect) => expect_reply(&mut stream, expect).await,
            }
        })
    }
}

/// Reads until the reply matches, the peer closes, or the limit is reached.
async fn expect_reply(stream: &mut TcpStream, expect: &RegexText) -> Attempt {
    let regex = expect.regex();
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if regex.is_match(&reply) {
            return Attempt::up("reply matched");
        }
        if reply.len() >= REPLY_LIMIT {
            break;
        }
        match stream.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) => reply.extend_from_slice(&chunk[..n.min(REPLY_LIMIT - reply.len())]),
            Err(err) => {
                return Attempt::down(super::attempt::reason_of(&err), format!("read: {err}"));
            }
        }
    }
    Attempt::down(
        FailureReason::Body,
        format!("reply does not match `{expect}`: {}", shown(&reply)),
    )
}

/// The start of `reply` for a detail: quoted, each byte that is not printable ASCII
/// escaped (`\x00`, `\r`, `\xff`), then `…` if there is more. A reply may be binary, and
/// a detail goes to the text log and the `--once` table as it is, where raw bytes (an
/// escape sequence, a newline) would garble them.
fn shown(reply: &[u8]) -> String {
    let more = if reply.len() > SHOWN_BYTES { "…" } else { "" };
    let start = &reply[..reply.len().min(SHOWN_BYTES)];
    format!("\"{}\"{more}", start.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shown_reply_is_escaped_and_bounded() {
        assert_eq!(shown(b"-ERR\r\n"), r#""-ERR\r\n""#);
        assert_eq!(shown(b"\x00\x1b[31m\xff\""), r#""\x00\x1b[31m\xff\"""#);
        let long = shown(&[0; REPLY_LIMIT]);
        assert_eq!(long, format!("\"{}\"…", "\\x00".repeat(SHOWN_BYTES)));
    }
}
