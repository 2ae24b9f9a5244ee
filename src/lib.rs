//! Aegis watches services: it tails their logs and probes them (HTTP, TCP, gRPC and
//! Nagios-style scripts), turns what it sees into one stream of typed events, and
//! publishes what matters.
//!
//! The crate is built in floors, each using only those below it: [`base`] is the
//! shared vocabulary (events, the component contracts, configuration places and
//! diagnostics); [`http_client`] is the HTTP that components speak; [`sources`],
//! [`stages`] and [`sinks`] hold one module per component; [`config`] reads a
//! configuration file into configured nodes; [`pipeline`] checks and builds their
//! graph and runs it; [`demo`] is `aegis demo`, a configuration and a service to run it
//! on. `main.rs` is the command line on top.

pub mod base;
pub mod config;
pub mod demo;
pub mod http_client;
pub mod pipeline;
pub mod sinks;
pub mod sources;
pub mod stages;
