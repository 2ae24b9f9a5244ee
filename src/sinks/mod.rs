//! Sinks: where events leave Aegis: the console, Prometheus, webhooks and Alertmanager.
//!
//! Each sink type is a module with its configuration, which implements
//! [`ComponentType`](crate::base::registry::ComponentType), and its [`Sink`]; the
//! registry below is the list of those users configure (`type:`). [`summary`] is the
//! one sink Aegis attaches itself, for `run --once`.

pub mod alertmanager;
pub mod console;
pub mod notify;
pub mod prometheus;
pub mod summary;
#[cfg(test)]
pub(crate) mod testing;
pub mod webhook;

use self::alertmanager::AlertmanagerConfig;
use self::console::ConsoleConfig;
use self::prometheus::PrometheusConfig;
use self::webhook::WebhookConfig;
use crate::base::component::Sink;

crate::base::registry::declare! {
    /// The configuration of any sink, by `type`.
    pub enum SinkConfig builds Sink {
        Console(ConsoleConfig),
        Prometheus(PrometheusConfig),
        Webhook(WebhookConfig),
        Alertmanager(AlertmanagerConfig),
    }
}
