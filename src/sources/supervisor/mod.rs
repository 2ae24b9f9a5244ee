//! The `supervisor` source: runs a service's process, restarts it by policy, and
//! reports each step of its life as a [`Lifecycle`](crate::base::event::Lifecycle)
//! event.
//!
//! ```yaml
//! sources:
//!   shop.process:
//!     type: supervisor
//!     service: shop
//!     command: [./shop, --port, "8080"]      # argv, no shell (or a line with shell: true)
//!     env: { RUST_LOG: info }
//!     working_dir: /srv/shop                 # default: the configuration file's folder
//!     restart: on-failure                    # always | on-failure | never
//!     backoff: { initial_delay: 1s, multiplier: 2, max_delay: 1m, jitter: full }
//!     restart_budget: { max_restarts: 5, within: 10m }
//!     restart_on_unhealthy: 3                # down results in a row of one check
//!     stop_timeout: 5s                       # SIGTERM, then SIGKILL after this
//!     output: { path: logs/shop.log, max_bytes: 10485760, keep: 3 }
//! ```
//!
//! The process runs in a process group of its own, and every stop signals the whole
//! group: SIGTERM, then SIGKILL after `stop_timeout`. When it exits by itself, what is
//! left of its group is killed, so a restart never finds an old child still holding
//! a port. It is started with the parent-death signal set (SIGKILL), so that if Aegis
//! is killed outright (SIGKILL, a crash), the process is killed by the kernel: its own
//! children are not, unless they stop when it does. Standard output and error go, line
//! by line, to the `output` file, rotated by size (`output.rs`), which a `log_tail`
//! can follow like any other log.
//!
//! Restarts wait the `backoff` delays (the checks' retry keys), which start over once
//! the process has run for [`STABLE_RUN`]; past `restart_budget` restarts within its
//! window, Aegis gives up, says so once, and emits `GaveUp` (the alert stage's
//! `ServiceGaveUp` rule turns it into an alert). With `restart_on_unhealthy: N`, N down
//! results in a row of any health check of the same service restart it (`health.rs`
//! carries the results from the checks to here).

mod health;
mod output;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_norway::Value;

pub use self::health::Supervised;
use self::output::OutputLog;
use self::run::Supervisor;
use crate::base::component::Source;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::EventKind;
use crate::base::key_path::KeyPath;
use crate::base::paths::resolve;
use crate::base::registry::{BuildContext, ComponentType};
use crate::base::retry::{Jitter, RetryPolicy};
use crate::sources::command::{self, CommandLine};

/// A run at least this long starts the backoff over: the process was up, so the
/// failure that ends it is a new one, not the same crash again.
pub const STABLE_RUN: Duration = Duration::from_secs(60);

/// Configuration of a `supervisor` source.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisorConfig {
    /// The service the process is.
    pub service: String,
    /// The program and its arguments (a list); with `shell`, a command line (a string).
    pub command: CommandLine,
    /// Run `command` through `sh -c`. Default `false`.
    #[serde(default)]
    pub shell: bool,
    /// Variables added to the environment Aegis runs in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Where the process runs; relative, from the configuration file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
    /// When it is started again after it exits. Default `on-failure`.
    #[serde(default)]
    pub restart: RestartPolicy,
    /// The delays before restarts: the checks' retry keys but `max_attempts` (the
    /// budget bounds restarts). Default 1s doubling up to 1m, full jitter.
    #[serde(default = "default_backoff")]
    pub backoff: RetryPolicy,
    /// At most this many restarts within this window; then Aegis gives up.
    #[serde(default)]
    pub restart_budget: RestartBudget,
    /// Restart after this many down results in a row of one of the service's checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_on_unhealthy: Option<u32>,
    /// How long a stop waits after SIGTERM before SIGKILL. Default `5s`.
    #[serde(default = "default_stop_timeout", with = "crate::base::duration")]
    pub stop_timeout: Duration,
    /// Where standard output and error go. Default `logs/SERVICE.log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<OutputConfig>,
}

/// `restart:` when the process exits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Whatever the exit.
    Always,
    /// Unless it exited with code 0.
    #[default]
    OnFailure,
    Never,
}

/// `restart_budget:` at most `max_restarts` within `within`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RestartBudget {
    #[serde(default = "default_max_restarts")]
    pub max_restarts: u32,
    #[serde(default = "default_within", with = "crate::base::duration")]
    pub within: Duration,
}

impl Default for RestartBudget {
    fn default() -> Self {
        RestartBudget {
            max_restarts: default_max_restarts(),
            within: default_within(),
        }
    }
}

/// `output:` the file standard output and error are written to.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Relative: from the configuration file's folder. Default `logs/SERVICE.log`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The file is rotated before it grows past this. Default 10 MiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (`PATH.1` the newest). Default 3.
    #[serde(default = "default_keep")]
    pub keep: u32,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            path: None,
            max_bytes: default_max_bytes(),
            keep: default_keep(),
        }
    }
}

fn default_backoff() -> RetryPolicy {
    RetryPolicy {
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
        jitter: Jitter::Full,
        ..RetryPolicy::default()
    }
}

fn default_max_restarts() -> u32 {
    5
}

fn default_within() -> Duration {
    Duration::from_secs(10 * 60)
}

fn default_stop_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_keep() -> u32 {
    3
}

impl SupervisorConfig {
    /// The output file, as configured or by default, relative to the configuration
    /// file's folder when it is relative.
    pub fn output_path(&self) -> PathBuf {
        (self.output.as_ref().and_then(|output| output.path.clone()))
            .unwrap_or_else(|| PathBuf::from(format!("logs/{}.log", self.service)))
    }

    fn check(&self, path: &KeyPath, diag: &mut Diagnostics) {
        command::check_shell(&self.command, self.shell, path, diag);
        command::check_program(&self.command, path, diag);
        if self.backoff.max_attempts != 1 {
            diag.error(
                &path.key("backoff").key("max_attempts"),
                "restarts are bounded by `restart_budget` (`max_restarts` within a window), not by `max_attempts`; remove it",
            );
        }
        if self.restart_budget.within.is_zero() {
            diag.error(
                &path.key("restart_budget").key("within"),
                "the budget's window must be longer than 0s",
            );
        }
        if self.restart_on_unhealthy == Some(0) {
            diag.error(
                &path.key("restart_on_unhealthy"),
                "0 down results in a row would restart a healthy service; expected 1 or more (or leave the key out)",
            );
        }
        let output = self.output.clone().unwrap_or_default();
        if output.max_bytes < 4096 {
            diag.error(
                &path.key("output").key("max_bytes"),
                format!(
                    "{} bytes is too small to hold a few lines; expected 4096 or more",
                    output.max_bytes
                ),
            );
        }
        if output.keep == 0 {
            diag.error(
                &path.key("output").key("keep"),
                "keep at least 1 rotated file, so that a log tail following the output can finish reading a file rotated under it",
            );
        }
    }
}

impl ComponentType for SupervisorConfig {
    const NAME: &'static str = "supervisor";
    const ACCEPTS: &'static [EventKind] = &[];
    const EMITS: &'static [EventKind] = &[EventKind::Lifecycle];
    type Built = dyn Source;

    fn decode(options: &Value, path: &KeyPath, diag: &mut Diagnostics) -> Option<Self> {
        let config: SupervisorConfig = diag.decode(options, path)?;
        let errors = diag.error_count();
        config.check(path, diag);
        (diag.error_count() == errors).then_some(config)
    }

    /// A one-shot run starts no process: it reads what exists and ends.
    fn build(&self, cx: &mut BuildContext) -> Option<Box<dyn Source>> {
        let service: Arc<str> = self.service.as_str().into();
        let health = (self.restart_on_unhealthy)
            .map(|after| (cx.shared.get::<Supervised>().channel(), after));
        let output = self.output.clone().unwrap_or_default();
        Some(Box::new(Supervisor {
            service,
            argv: command::argv(&self.command, cx.base),
            env: self.env.clone(),
            working_dir: command::working_dir(self.working_dir.as_deref(), cx.base),
            restart: self.restart,
            backoff: self.backoff.clone(),
            budget: self.restart_budget.clone(),
            health,
            stop_timeout: self.stop_timeout,
            output: OutputLog::new(
                resolve(cx.base, &self.output_path()),
                output.max_bytes,
                output.keep,
            ),
            once: cx.once,
        }))
    }

    fn service(&self) -> Option<&str> {
        Some(&self.service)
    }
}
