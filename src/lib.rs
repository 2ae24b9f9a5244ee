//! Aegis watches services: it tails their logs (and, in later versions, probes them),
//! turns what it sees into one stream of typed events, and publishes what matters.
//!
//! The crate is laid out by role: [`event`] is the data, [`config`] reads and checks
//! configuration, [`pipeline`] holds the component contracts, the graph and the
//! runtime, and [`sources`], [`stages`] and [`sinks`] hold one module per component.
//! [`http_client`] is the HTTP that components speak. `main.rs` is the command line on
//! top.

pub mod config;
pub mod event;
pub mod http_client;
pub mod pipeline;
pub mod sinks;
pub mod sources;
pub mod stages;
pub mod text;
