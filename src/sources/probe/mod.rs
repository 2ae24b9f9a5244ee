//! Health-check sources, one per check, each making `ProbeResult` events.
//!
//! A check is one source node (`http_probe`, `tcp_probe`, `grpc_probe`,
//! `script_probe`): the options every check shares ([`check`]), the protocol's own
//! (each protocol's module, which only knows how to make one attempt: an
//! [`attempt::Probe`]), and the scheduler that runs attempts on the check's interval,
//! with retries, and says what they found ([`schedule`]). This module joins the two
//! halves of a check's configuration and declares it to the registry.
//!
//! ```yaml
//! sources:
//!   shop_health:
//!     type: http_probe
//!     service: shop
//!     check: health          # default: the node id
//!     interval: 10s          # default 10s
//!     timeout: 2s            # per attempt; default 5s, or less to fit the retries
//!     retry: { max_attempts: 3, initial_delay: 200ms, jitter: full }
//!     url: http://127.0.0.1:8080/health
//! ```

pub mod attempt;
pub mod check;
pub mod grpc;
pub mod http;
pub mod perfdata;
pub mod schedule;
pub mod script;
pub mod tcp;

use serde::Serialize;
use serde_norway::{Mapping, Value};

use self::attempt::Probe;
use self::check::CheckConfig;
use self::schedule::Scheduled;
use crate::base::component::Source;
use crate::base::diagnostics::{Diagnostics, closest};
use crate::base::event::{EventKind, ProbeKind};
use crate::base::key_path::KeyPath;
use crate::base::registry::{BuildContext, ComponentType};
use crate::sources::supervisor::Supervised;

/// A probe source's configuration: the shared options and the protocol's own, written
/// side by side in one mapping.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeConfig<P> {
    #[serde(flatten)]
    pub check: CheckConfig,
    #[serde(flatten)]
    pub probe: P,
}

/// A protocol's own options.
pub trait ProbeOptions: serde::de::DeserializeOwned + Serialize {
    /// The source's `type:` in configuration.
    const NAME: &'static str;
    /// The protocol, as results name it.
    const KIND: ProbeKind;

    /// Checks what decoding each key on its own cannot (keys that depend on each
    /// other), reporting problems at `path`, the node's options.
    fn check(&self, _path: &KeyPath, _diag: &mut Diagnostics) {}

    /// Makes the protocol's attempt maker.
    fn probe(&self, cx: &mut BuildContext) -> Box<dyn Probe>;
}

impl<P: ProbeOptions> ComponentType for ProbeConfig<P> {
    const NAME: &'static str = P::NAME;
    const ACCEPTS: &'static [EventKind] = &[];
    const EMITS: &'static [EventKind] = &[EventKind::ProbeResult];
    type Built = dyn Source;

    /// Decodes a probe node's options. The mapping is split in two, since serde cannot
    /// both flatten a struct and refuse unknown keys; each half is decoded on its own,
    /// so every bad key of either is reported.
    fn decode(body: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<ProbeConfig<P>> {
        let Some(options) = body.as_mapping() else {
            diag.decode::<CheckConfig>(body, path);
            return None;
        };
        // A misspelt shared key (`intervl`) goes with the shared ones, so that the
        // error suggests the key that was meant.
        let (shared, own): (Mapping, Mapping) =
            options.clone().into_iter().partition(|(key, _)| {
                key.as_str()
                    .is_some_and(|key| closest(key, CheckConfig::KEYS).is_some())
            });
        let check = diag.decode::<CheckConfig>(&Value::Mapping(shared), path);
        let probe = diag.decode::<P>(&Value::Mapping(own), path);
        if let Some(probe) = &probe {
            probe.check(path, diag);
        }
        let mut check = check?;
        if check.check.is_empty() {
            check.check = path.last_key().unwrap_or_default().to_owned();
        }
        check.check_budget(path, diag);
        Some(ProbeConfig {
            check,
            probe: probe?,
        })
    }

    /// The running source: the protocol's probe, which makes single attempts, on a
    /// schedule, with retries.
    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Source>> {
        Some(Box::new(Scheduled {
            service: self.check.service.as_str().into(),
            check: self.check.check.as_str().into(),
            kind: P::KIND,
            interval: self.check.interval,
            timeout: self.check.timeout(),
            retry: self.check.retry.clone(),
            probe: self.probe.probe(cx),
            once: cx.once,
            supervised: cx.shared.get::<Supervised>(),
        }))
    }

    fn check(&self) -> Option<(&str, &str)> {
        Some((&self.check.service, &self.check.check))
    }

    fn service(&self) -> Option<&str> {
        Some(&self.check.service)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_protocol_key_is_taken_for_a_misspelt_shared_key() {
        let protocol_keys = [
            "url",
            "method",
            "headers",
            "expect_status",
            "body_contains",
            "body_regex",
            "follow_redirects",
            "tls_verify",
            "keepalive",
            "address",
            "send",
            "expect",
            "grpc_service",
            "tls",
            "command",
            "shell",
            "env",
            "working_dir",
        ];
        for key in protocol_keys {
            assert_eq!(closest(key, CheckConfig::KEYS), None, "{key}");
        }
    }
}
