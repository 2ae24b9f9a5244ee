//! The `alertmanager` sink: tells one or more Prometheus Alertmanagers about alerts, as
//! Prometheus does, through `POST /api/v2/alerts`.
//!
//! Alertmanagers of one cluster share silences and what they notified, not alerts, so
//! the sink posts every alert to every Alertmanager listed (never one of them: that is
//! how their deduplication works). Alertmanager keeps alerts in memory and takes one
//! whose `endsAt` has passed for resolved, so the sink keeps a table of the alerts it
//! told ([`table`]): a firing alert is posted when it starts firing and re-sent every
//! `resend_interval` with an `endsAt` four intervals ahead (should Aegis die, its
//! alerts resolve themselves then); a resolved one is posted with `endsAt` at its
//! resolution, and re-sent for 15 minutes, then forgotten. After a restart the `alert`
//! stage restates what fires and what resolved in the last 15 minutes, and the sink
//! posts those at once: the table needs no state file of its own, and Alertmanager
//! drops what it already has.
//!
//! Each Alertmanager has its own outbox and task ([`outbox`]): one that refuses or
//! hangs never delays another, and the sink takes its input at once whatever they do,
//! so it never holds the pipeline back. Deliveries are counted in the pipeline's
//! [`Deliveries`] under `sink="<id>@<host>:<port>"`.
//!
//! What it does not do: group, route, silence or notify people; that is
//! Alertmanager's job. Pending alerts are not posted.
//!
//! ```yaml
//! sinks:
//!   am:
//!     type: alertmanager
//!     inputs: [alerts]
//!     urls: [http://10.0.0.1:9093, http://10.0.0.2:9093]  # every Alertmanager of the cluster
//!     timeout: 10s              # one post; default 10s
//!     resend_interval: 1m       # default 1m; endsAt of firing alerts = 4 × this ahead
//!     headers: { Authorization: "Bearer ${AM_TOKEN}" }    # optional
//!     tls_verify: true          # default true
//!     external_url: http://aegis-01:9464   # default http://<hostname>:9464
//! ```

pub mod outbox;
pub mod table;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use serde::de::IntoDeserializer;
use serde::de::value::StrDeserializer;
use serde::{Deserialize, Serialize};
use serde_norway::Value;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use self::outbox::{Delivery, Outbox};
use self::table::Table;
use crate::base::component::{Input, NodeError, Sink};
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{Event, EventKind};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};
use crate::http_client::{ClientError, Headers, HttpMethod, HttpTarget, HttpUrl};
use crate::sinks::notify::Deliveries;

/// Configuration of an `alertmanager` sink.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Every Alertmanager of the cluster, each by its base URL (what its
    /// `--web.external-url` says; `api/v2/alerts` is added to its path). At least one.
    pub urls: Vec<HttpUrl>,
    /// How long one post may take. Default `10s`.
    #[serde(default = "default_timeout", with = "crate::base::duration")]
    pub timeout: Duration,
    /// How often firing alerts are posted again, and resolved ones for 15 minutes.
    /// A firing alert's `endsAt` is four of these ahead. Default `1m`.
    #[serde(default = "default_resend_interval", with = "crate::base::duration")]
    pub resend_interval: Duration,
    /// Headers sent with every post; `${NAME}` in a value is the environment variable
    /// `NAME`, never shown. Default: none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: Headers,
    /// `false` accepts any certificate. Default `true`.
    #[serde(default = "yes")]
    pub tls_verify: bool,
    /// Where people reach this Aegis: alerts' `generatorURL` is its `/api/alerts`
    /// (served by the `prometheus` sink). Default `http://<this host's name>:9464`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<HttpUrl>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_resend_interval() -> Duration {
    Duration::from_secs(60)
}

fn yes() -> bool {
    true
}

/// A firing alert's `endsAt` is this many resend intervals ahead (Prometheus's
/// choice): three re-sends may be lost before Alertmanager takes it for resolved.
const LIFETIME_IN_RESENDS: u32 = 4;

/// How long the sink waits, once its input has ended, for the Alertmanagers to take
/// what is still waiting: a shutdown takes 10 s at most, the tails' drain included.
const FLUSH_LIMIT: Duration = Duration::from_secs(2);

/// The path alerts are posted to, below an Alertmanager's base URL.
const ALERTS_PATH: &str = "api/v2/alerts";

impl ComponentType for AlertmanagerConfig {
    const NAME: &'static str = "alertmanager";
    const ACCEPTS: &'static [EventKind] = &[EventKind::Alert];
    const EMITS: &'static [EventKind] = &[];
    type Built = dyn Sink;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        let config: AlertmanagerConfig = diag.decode(options, path)?;
        let urls = path.key("urls");
        if config.urls.is_empty() {
            diag.error(
                &urls,
                "no Alertmanager; expected at least one URL, such as `[http://127.0.0.1:9093]`",
            );
        }
        // The messages do not show the URL: a query or credentials may hold a secret.
        for (i, url) in config.urls.iter().enumerate() {
            if url.url().query().is_some() || url.url().fragment().is_some() {
                diag.error(
                    &urls.index(i),
                    "a query or a fragment in an Alertmanager's URL; expected its base URL, such as `http://127.0.0.1:9093`",
                );
            }
            let same = |other: &HttpUrl| other.url() == url.url();
            if let Some(first) = config.urls[..i].iter().position(same) {
                diag.error(
                    &urls.index(i),
                    format!("the same Alertmanager as urls[{first}]; list each once"),
                );
            }
        }
        Some(config)
    }

    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Sink>> {
        let deliveries = cx.shared.get::<Deliveries>();
        let external = match &self.external_url {
            Some(url) => url.url().clone(),
            None => default_external_url(),
        };
        let generator_url: Arc<str> = below(&external, "api/alerts").as_str().into();
        let resend_interval = self.resend_interval;
        let targets = self.urls.iter().map(|url| {
            let name = format!("{}@{}", cx.id, authority(url.url()));
            let target = HttpTarget {
                url: endpoint(url),
                method: HttpMethod::post(),
                headers: self.headers.clone(),
                timeout: self.timeout,
                tls_verify: self.tls_verify,
            };
            let depth = deliveries.queued.with_label_values(&[&name]);
            for result in ["delivered", "failed"] {
                deliveries.notifications.with_label_values(&[&name, result]);
            }
            let outbox = Arc::new(Outbox::new(depth));
            Ok(Delivery {
                sender: target.build()?,
                name,
                outbox,
                deliveries: Arc::clone(&deliveries),
                lifetime: resend_interval * LIFETIME_IN_RESENDS,
                generator_url: Arc::clone(&generator_url),
                retry: Delivery::backoff(resend_interval),
            })
        });
        Some(Box::new(Alertmanager {
            deliveries: targets.collect(),
            resend_interval,
        }))
    }
}

/// The URL alerts are posted to: `api/v2/alerts` below `base`'s path.
fn endpoint(base: &HttpUrl) -> HttpUrl {
    let url = below(base.url(), ALERTS_PATH);
    let text: StrDeserializer<'_, serde::de::value::Error> = url.as_str().into_deserializer();
    HttpUrl::deserialize(text).expect("an http or https URL with another path is one still")
}

/// `base` with `path` added to its own.
fn below(base: &reqwest::Url, path: &str) -> reqwest::Url {
    let mut url = base.clone();
    url.set_path(&format!("{}/{path}", base.path().trim_end_matches('/')));
    url
}

/// `host:port` of `url`, and its path if it has one: how metrics and logs name an
/// Alertmanager (its full URL may hold credentials or a secret query).
fn authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(0);
    format!("{host}:{port}{}", url.path().trim_end_matches('/'))
}

/// `http://<this host's name>:9464`: the `prometheus` sink's default port, where
/// `/api/alerts` is served, on a name other machines can use.
fn default_external_url() -> reqwest::Url {
    let mut name = [0u8; 256];
    // SAFETY: gethostname writes at most `name.len()` bytes into the buffer it is given,
    // which outlives the call.
    let ok = unsafe { libc::gethostname(name.as_mut_ptr().cast(), name.len()) } == 0;
    let end = name.iter().position(|&byte| byte == 0).unwrap_or(0);
    let host = std::str::from_utf8(&name[..end]).ok().filter(|_| ok);
    let parsed = host.and_then(|host| reqwest::Url::parse(&format!("http://{host}:9464")).ok());
    parsed.unwrap_or_else(|| reqwest::Url::parse("http://localhost:9464").expect("a valid URL"))
}

/// A running `alertmanager` sink.
pub struct Alertmanager {
    /// One per Alertmanager, or why their HTTP client could not be built.
    deliveries: Result<Vec<Delivery>, ClientError>,
    resend_interval: Duration,
}

impl Sink for Alertmanager {
    fn run(self: Box<Self>, mut input: Input) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            // Without a client no alert would ever leave: stop the pipeline, loudly.
            let deliveries = self.deliveries.map_err(|err| NodeError::Io {
                what: "building the HTTP client to post to Alertmanager".into(),
                source: io::Error::other(err),
            })?;
            let outboxes: Vec<Arc<Outbox>> = (deliveries.iter())
                .map(|delivery| Arc::clone(&delivery.outbox))
                .collect();
            let stop = CancellationToken::new();
            let mut tasks = JoinSet::new();
            for delivery in deliveries {
                tasks.spawn(delivery.run(stop.clone()));
            }
            let mut table = Table::default();
            let start = tokio::time::Instant::now() + self.resend_interval;
            let mut resend = tokio::time::interval_at(start, self.resend_interval);
            resend.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    // Each batch is taken in at once: offering to an outbox is a map
                    // insert, whatever the Alertmanager behind it does.
                    batch = input.recv() => {
                        let Some(batch) = batch else { break };
                        for event in batch.iter() {
                            let Event::Alert(alert) = event else { continue };
                            if let Some(posted) = table.record(alert) {
                                for outbox in &outboxes {
                                    outbox.offer_now(Arc::clone(&posted), alert.at);
                                }
                            }
                        }
                    }
                    _ = resend.tick() => {
                        let due = table.due(SystemTime::now());
                        outboxes.iter().for_each(|outbox| outbox.offer_again(&due));
                    }
                }
            }
            stop.cancel();
            let flushed = async { while tasks.join_next().await.is_some() {} };
            if tokio::time::timeout(FLUSH_LIMIT, flushed).await.is_err() {
                tracing::warn!(
                    limit = ?FLUSH_LIMIT,
                    "An Alertmanager did not take the last alerts in time; they are left unposted."
                );
            }
            // Dropping the set aborts what is still posting.
            Ok(())
        })
    }
}
