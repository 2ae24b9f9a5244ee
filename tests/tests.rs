//! Integration tests: the real `aegis` binary on real files, in temporary folders.
//! One binary (see `autotests = false` in Cargo.toml), one module per area.

mod alerting;
mod anomaly;
mod cli;
mod config_checks;
mod config_errors;
mod demo;
mod examples;
mod floors;
mod http_service;
mod live_path;
mod loghub;
mod probes;
mod prometheus;
mod reload;
mod servers;
mod supervisor;
mod tail;
mod util;
pub mod webhook;
