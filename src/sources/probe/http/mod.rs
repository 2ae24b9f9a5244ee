//! The `http_probe` source: an HTTP request whose status and body decide the check.
//!
//! Each attempt opens a new connection by default, so the check sees what a fresh
//! client sees (a full connect, and TLS handshake for `https`), as blackbox_exporter
//! does; `keepalive: true` reuses connections instead. Plain `http` on a new connection
//! goes the direct way ([`direct`]); everything else goes through the shared client of
//! [`crate::http_client`], which also owns the configuration values (URL, method,
//! headers with `${NAME}` secrets) and the redirect policy. What is the probe's own:
//! the expectations ([`expect`]) and the choice of way for each request.
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
//! of the configuration file; they are read when the configuration is loaded, marked
//! sensitive, and never printed (`aegis config expand` shows the `${NAME}` as written).

mod direct;
mod expect;

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use self::direct::Direct;
use self::expect::Expectations;
pub use self::expect::StatusRange;
use super::ProbeOptions;
use super::attempt::{Attempt, Probe};
use crate::base::event::{FailureReason, ProbeKind, ProbeStatus};
use crate::base::regex::RegexText;
use crate::base::registry::BuildContext;
use crate::http_client::{
    self, ClientOptions, Headers, HttpMethod, HttpUrl, MAX_REDIRECTS, Redirects, Request, Step,
};

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
    pub headers: Headers,
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

impl ProbeOptions for HttpProbeConfig {
    const NAME: &'static str = "http_probe";
    const KIND: ProbeKind = ProbeKind::Http;

    fn probe(&self, _: &mut BuildContext) -> Box<dyn Probe> {
        Box::new(self.build())
    }
}

impl HttpProbeConfig {
    pub fn build(&self) -> HttpProbe {
        let url = self.url.url().clone();
        let options = ClientOptions {
            tls_verify: self.tls_verify,
            keepalive: self.keepalive,
        };
        HttpProbe {
            client: http_client::shared_client(options).map_err(|err| err.to_string()),
            direct: if self.keepalive {
                None
            } else {
                Direct::new(&url)
            },
            keepalive: self.keepalive,
            follow_redirects: self.follow_redirects,
            request: Request {
                url,
                method: self.method.method().clone(),
                headers: http_client::config::header_map(&self.headers),
                body: None,
            },
            expect: Expectations {
                status: self.expect_status.clone(),
                body_contains: self.body_contains.clone(),
                body_regex: self.body_regex.clone(),
            },
        }
    }
}

/// A running HTTP check's attempt maker.
pub struct HttpProbe {
    /// The client, or why it could not be built (reported by every attempt rather than
    /// stopping the whole pipeline).
    client: Result<reqwest::Client, String>,
    /// For the configured URL, when it is plain `http` with a new connection per
    /// attempt: where to connect and what to ask.
    direct: Option<Direct>,
    keepalive: bool,
    follow_redirects: bool,
    /// The first request of every attempt.
    request: Request,
    expect: Expectations,
}

impl Probe for HttpProbe {
    fn attempt(&self) -> BoxFuture<'_, Attempt> {
        Box::pin(async move {
            let client = match &self.client {
                Ok(client) => client,
                Err(message) => return Attempt::down(FailureReason::Other, message.clone()),
            };
            let mut chain = Redirects::new(self.request.clone(), self.follow_redirects);
            loop {
                let followed;
                let direct = if chain.followed() == 0 {
                    self.direct.as_ref()
                } else if self.keepalive {
                    None
                } else {
                    followed = Direct::new(&chain.request().url);
                    followed.as_ref()
                };
                let (request, follow) = (chain.request(), chain.follows());
                let fetched = match direct {
                    Some(direct) => direct.fetch(request, follow, BODY_LIMIT).await,
                    None => http_client::fetch(client, request, follow, BODY_LIMIT)
                        .await
                        .map_err(|err| {
                            let failed = Attempt::failed(&err.source);
                            match err.status {
                                Some(status) => failed.with_status(http_status(status)),
                                None => failed,
                            }
                        }),
                };
                let fetched = match fetched {
                    Ok(fetched) => fetched,
                    Err(failed) => return failed,
                };
                let status = http_status(fetched.status);
                match chain.step(fetched.status, fetched.location.as_ref()) {
                    Step::Follow => {}
                    // The body of a redirect that is not followed further is not read:
                    // the redirect itself is the answer.
                    Step::Answer => {
                        let code = fetched.status.as_u16();
                        return self.expect.judge(code, &fetched.body).with_status(status);
                    }
                    Step::TooMany => {
                        let detail = format!(
                            "status {}, and more than {MAX_REDIRECTS} redirects",
                            fetched.status.as_u16()
                        );
                        return Attempt::down(FailureReason::Other, detail).with_status(status);
                    }
                }
            }
        })
    }
}

fn http_status(status: reqwest::StatusCode) -> ProbeStatus {
    ProbeStatus::Http(status.as_u16())
}
