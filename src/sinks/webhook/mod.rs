//! The `webhook` sink: alerts POSTed to a receiver in the Alertmanager webhook format
//! (version "4"), so that every receiver written for Alertmanager works unchanged.
//!
//! It takes the `alert` stage's events and tells the receiver what it is asked to:
//! changes of state and repeats, and after a restart only what the receiver was not
//! told before it ([`notify::ledger`](crate::sinks::notify::ledger)). Alerts below
//! `min_severity` are not sent. Alerts waiting together whose `group_by` labels agree
//! go in one notification ([`group`]). The sink never makes the pipeline wait: it
//! takes every event at once into its outbox, and a task of its own delivers, one
//! notification at a time and in order, retrying as [`notify::delivery`]
//! (crate::sinks::notify::delivery) says; what the receiver cannot take goes to the
//! `fallback` receiver, if there is one, and otherwise waits for it ([`sink`]).
//!
//! Each request carries `Idempotency-Key` (the same on every retry of a notification
//! and after a restart, so that a receiver can drop repeats) and, with `hmac_secret`,
//! `X-Aegis-Signature: sha256=HEX`, the HMAC-SHA256 of the body. Secrets (`${NAME}` in
//! header values and in `hmac_secret`) are never logged, and `config expand` prints
//! them as written. With `state_dir`, what the receiver was told and what it has yet
//! to be told is saved there (`webhook-NAME.json`), so that a restart, even after
//! `SIGKILL`, delivers what was waiting and repeats nothing it acknowledged.
//! docs/notifiers.md says it all at length.
//!
//! ```yaml
//! sinks:
//!   ops:
//!     type: webhook
//!     inputs: [alerts]
//!     name: ops                       # default: the node id
//!     url: http://127.0.0.1:9000/alerts
//!     headers: { Authorization: "Bearer ${OPS_TOKEN}" }
//!     timeout: 5s                     # default 5s
//!     retry: { max_attempts: 5, initial_delay: 1s, multiplier: 2, max_delay: 1m, jitter: full }
//!     hmac_secret: "${HOOK_SECRET}"   # optional
//!     min_severity: WARNING           # default INFO
//!     fallback: pager                 # optional: another webhook sink's name
//!     group_by: [alertname, service]  # default; ['...'] = each alert alone
//!     group_wait: 0s                  # default 0s
//!     max_alerts: 0                   # default 0: all
//!     external_url: http://aegis.example:9464   # default http://HOSTNAME:9464
//!     state_dir: state                # optional; relative to the configuration's folder
//! ```

pub mod group;
pub mod sink;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_norway::{Mapping, Value};

use self::group::{GroupBy, Grouping};
use self::sink::{Fallbacks, Webhook};
use crate::base::component::Sink;
use crate::base::diagnostics::{Diagnostics, closest};
use crate::base::event::{EventKind, Severity};
use crate::base::key_path::KeyPath;
use crate::base::paths;
use crate::base::registry::{BuildContext, ComponentType};
use crate::base::retry::{Jitter, RetryPolicy};
use crate::base::state_file::StateFile;
use crate::http_client::{HttpTarget, HttpUrl, SecretText};
use crate::sinks::notify::Deliveries;
use crate::sinks::notify::delivery::Receiver;

/// Configuration of a `webhook` sink: where to send ([`HttpTarget`]) and how
/// ([`WebhookOptions`]), written side by side in one mapping. Both are boxed: the
/// sink configuration enum is as large as its largest variant.
#[derive(Clone, Debug, Serialize)]
pub struct WebhookConfig {
    #[serde(flatten)]
    pub target: Box<HttpTarget>,
    #[serde(flatten)]
    pub options: Box<WebhookOptions>,
    /// Where the node is written, for what its build finds wrong.
    #[serde(skip)]
    origin: KeyPath,
}

/// The webhook's own options.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookOptions {
    /// The receiver's name: the payload's `receiver`, the metrics' `sink` label, the
    /// ledger's file name, what a `fallback` names. Letters, digits, `_`, `.` and
    /// `-`. Default: the node's id.
    #[serde(default)]
    pub name: String,
    /// How a notification is retried: the checks' keys, with webhook defaults
    /// (5 attempts, `1s` doubling to at most `1m`, full jitter). Past the attempts, a
    /// notification goes to the fallback or is tried every `max_delay`.
    #[serde(default = "default_retry")]
    pub retry: RetryPolicy,
    /// Signs each body: `X-Aegis-Signature: sha256=HEX`. `${NAME}` is read from the
    /// environment. Default: no signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac_secret: Option<SecretText>,
    /// Alerts less serious are not sent. Default `INFO`: all.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// The name of another webhook sink of this pipeline, which gets what this one
    /// could not deliver (refused, or every attempt failed). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// The labels whose values make a group; `['...']` is every label (each alert
    /// alone). Default `[alertname, service]`.
    #[serde(default = "default_group_by")]
    pub group_by: Vec<String>,
    /// How long the first alert of a group waits for others. Default `0s`.
    #[serde(default, with = "crate::base::duration::or_zero")]
    pub group_wait: Duration,
    /// Alerts per notification, at most; 0 for all. The rest follow in the next.
    #[serde(default)]
    pub max_alerts: usize,
    /// Where receivers find Aegis: the payload's `externalURL`, and the base of each
    /// alert's `generatorURL`. Default `http://HOSTNAME:9464` (the metrics server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_url: Option<HttpUrl>,
    /// Where the ledger is saved; relative to the configuration's folder. Default:
    /// none, in memory only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<PathBuf>,
}

fn default_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        initial_delay: Duration::from_secs(1),
        multiplier: 2.0,
        max_delay: Duration::from_secs(60),
        jitter: Jitter::Full,
    }
}

fn default_min_severity() -> Severity {
    Severity::Info
}

fn default_group_by() -> Vec<String> {
    vec!["alertname".into(), "service".into()]
}

/// A webhook's timeout unless configured: shorter than other targets', since a
/// receiver that takes longer holds every notification behind it.
const DEFAULT_TIMEOUT: &str = "5s";

/// How long a shutdown lets the outbox drain at most (less if the timeout is
/// shorter): what is left stays in the ledger for the next start.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

impl ComponentType for WebhookConfig {
    const NAME: &'static str = "webhook";
    const ACCEPTS: &'static [EventKind] = &[EventKind::Alert];
    const EMITS: &'static [EventKind] = &[];
    type Built = dyn Sink;

    /// Decodes the mapping in two halves, the target's keys and the webhook's own,
    /// since serde cannot both flatten and refuse unknown keys; a misspelt target key
    /// goes with the target's, so that its error suggests the key meant.
    fn decode(body: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        let Some(mapping) = body.as_mapping() else {
            diag.decode::<WebhookOptions>(body, path);
            return None;
        };
        let (mut target, mut own): (Mapping, Mapping) =
            mapping.clone().into_iter().partition(|(key, _)| {
                key.as_str()
                    .is_some_and(|key| closest(key, HttpTarget::KEYS).is_some())
            });
        if !target.contains_key("timeout") {
            target.insert("timeout".into(), DEFAULT_TIMEOUT.into());
        }
        // Keys of `retry` left out take the webhook's defaults, not the checks'.
        let mut retry = match serde_norway::to_value(default_retry()) {
            Ok(Value::Mapping(retry)) => retry,
            _ => Mapping::new(),
        };
        match own.get("retry") {
            Some(Value::Mapping(written)) => retry.extend(written.clone()),
            Some(_) => retry.clear(), // not a mapping: let decoding say so
            None => {}
        }
        if !retry.is_empty() {
            own.insert("retry".into(), Value::Mapping(retry));
        }
        let target = diag.decode::<HttpTarget>(&Value::Mapping(target), path);
        let mut options = diag.decode::<WebhookOptions>(&Value::Mapping(own), path)?;
        if options.name.is_empty() {
            options.name = path.last_key().unwrap_or_default().to_owned();
        }
        options.check(path, diag);
        Some(WebhookConfig {
            target: Box::new(target?),
            options: Box::new(options),
            origin: path.clone(),
        })
    }

    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Sink>> {
        let options = &self.options;
        let sender = match self.target.build() {
            Ok(sender) => sender,
            Err(err) => {
                cx.diag.error(&self.origin, err.to_string());
                return None;
            }
        };
        let fallbacks = cx.shared.get::<Fallbacks>();
        let Some(handoffs) = fallbacks.register(&options.name) else {
            cx.diag.error(
                &self.origin.key("name"),
                format!(
                    "receiver name `{}` is already another webhook sink's; each receiver needs its own name (its metrics, its ledger and fallbacks go by it)",
                    options.name
                ),
            );
            return None;
        };
        let name: Arc<str> = options.name.as_str().into();
        let state = (options.state_dir.as_ref()).map(|dir| {
            StateFile::new(
                &paths::resolve(cx.base, dir),
                &format!("webhook-{name}.json"),
            )
        });
        let external_url = match &options.external_url {
            Some(url) => url.url().as_str().trim_end_matches('/').to_owned(),
            None => default_external_url(),
        };
        let deliveries = cx.shared.get::<Deliveries>();
        Some(Box::new(Webhook {
            grouping: Grouping {
                receiver: Arc::clone(&name),
                by: GroupBy::new(&options.group_by),
                wait: options.group_wait,
                max_alerts: options.max_alerts,
                external_url,
            },
            receiver: Receiver::new(name, options.retry.clone(), Arc::clone(&deliveries)),
            sender,
            secret: options.hmac_secret.clone(),
            min_severity: options.min_severity,
            fallback: options.fallback.clone(),
            fallbacks,
            handoffs,
            state,
            deliveries,
            grace: self.target.timeout.min(SHUTDOWN_GRACE),
        }))
    }
}

impl WebhookOptions {
    /// Checks what serde alone does not: names and labels.
    fn check(&self, path: &KeyPath, diag: &mut Diagnostics) {
        let name_ok = |name: &str| {
            name.len() <= 100
                && !name.starts_with('.')
                && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        };
        if self.name.is_empty() {
            // Only where the node has no id to take it from (a list entry).
            diag.error_at_key(
                path,
                "missing key `name`; a webhook receiver needs a name, such as `name: ops`",
            );
        } else if !name_ok(&self.name) {
            diag.error(
                &path.key("name"),
                format!(
                    "invalid receiver name `{}`; expected letters, digits, `_`, `.` and `-` (it names the ledger file `webhook-NAME.json`), such as `ops`",
                    crate::base::text::Escaped(&self.name)
                ),
            );
        }
        if self.fallback.as_deref() == Some(self.name.as_str()) {
            diag.error(
                &path.key("fallback"),
                format!(
                    "the fallback of `{}` is itself; name another webhook sink",
                    self.name
                ),
            );
        }
        let all = self.group_by.iter().any(|label| label == "...");
        if all && self.group_by.len() > 1 {
            diag.error(
                &path.key("group_by"),
                "`...` (every label) stands alone; write `group_by: ['...']`, or list labels",
            );
        }
        for (i, label) in self.group_by.iter().enumerate() {
            let mut bytes = label.bytes();
            let valid = bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid && label != "..." {
                diag.error(
                    &path.key("group_by").index(i),
                    format!(
                        "invalid label name `{}`; expected `[a-zA-Z_][a-zA-Z0-9_]*`, such as `service`, or `...` for every label",
                        crate::base::text::Escaped(label)
                    ),
                );
            }
        }
    }
}

/// `http://HOSTNAME:9464`, the metrics server on this machine as others reach it, as
/// Alertmanager makes its own from the host name; `127.0.0.1` if the host name
/// cannot be read or is not fit for a URL.
fn default_external_url() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    match reqwest::Url::parse(&format!("http://{host}:9464")) {
        Ok(url) if !host.is_empty() && url.path() == "/" => {
            url.as_str().trim_end_matches('/').to_owned()
        }
        _ => "http://127.0.0.1:9464".to_owned(),
    }
}
