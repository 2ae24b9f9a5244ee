//! The bottom floor: the vocabulary every other module shares, depending on nothing
//! above it. The events ([`event`]); the component contracts ([`component`]) and how a
//! component type is declared and built ([`registry`]); places
//! in a configuration file ([`key_path`], [`spans`]) and the problems found there
//! ([`diagnostics`]); durations, regexes and paths as configuration writes them
//! ([`duration`], [`regex`], [`paths`]); text safe to show ([`text`]); retry policies
//! (checks and notifications back off alike: [`retry`]); and what components share at
//! run time: threads of their own ([`dedicated`]), the pipeline's counts ([`stats`]) and
//! state files that survive a crash ([`state_file`]).
//!
//! The floors above: the components (`sources`, `stages`, `sinks`), then the
//! configuration loader (`config`), then the graph and the runtime (`pipeline`), then
//! `main`. A module never imports one of a higher floor (tests/floors.rs checks it).

pub mod component;
pub mod dedicated;
pub mod diagnostics;
pub mod duration;
pub mod event;
pub mod key_path;
pub mod paths;
pub mod regex;
pub mod registry;
pub mod retry;
pub mod spans;
pub mod state_file;
pub mod stats;
pub mod text;
