//! The `script_probe` source: runs a command and reads its verdict the Nagios way.
//!
//! The command runs as an argument vector (a list), without a shell, unless
//! `shell: true` asks for `sh -c` and a command line (a string). A list with a shell is
//! refused: joined into a line it would lose its quoting, and quoted item by item it
//! could use nothing of the shell. It runs in a process group of its own, so that when its time is up the
//! whole group is killed, children included; the group is also killed when the command
//! exits, so nothing a check starts in its group outlives it. (A process that leaves
//! the group, with `setsid` say, is not tracked; output is read for only
//! [`OUTPUT_GRACE`] after the exit, so one that keeps the pipes open does not hold the
//! check.) Standard output and error are read as they come and kept up to
//! [`OUTPUT_LIMIT`] bytes each: a command that floods its output is cut, not buffered.
//!
//! Exit codes follow the Nagios plugin conventions: 0 OK is up, 1 WARNING is degraded,
//! 2 CRITICAL is down, 3 UNKNOWN or anything else is down. The first line of output
//! before `|` is the detail (standard error's first line if standard output is empty),
//! and performance data after `|` becomes samples ([`super::perfdata`]), so Debian's
//! monitoring-plugins work as they are.
//!
//! ```yaml
//! sources:
//!   disk:
//!     type: script_probe
//!     service: host
//!     command: [/usr/lib/nagios/plugins/check_disk, -w, "10%", -c, "5%", -p, /]
//!     env: { LC_ALL: C }
//!     working_dir: /var/tmp        # default: the configuration file's folder
//!   queue:
//!     type: script_probe
//!     service: jobs
//!     shell: true                  # run through `sh -c`
//!     command: "./check-queue.sh | tail -n 1"
//! ```
//!
//! A command runs in the configuration file's folder unless `working_dir` (relative:
//! from that folder) says otherwise, so `./check.sh` in a command line means the script
//! beside the configuration, wherever Aegis was started. A list's relative program
//! path with a `/` in it is taken from the configuration file's folder too, even with
//! another `working_dir`: the list names a program, not a path for the shell to find.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::ProbeOptions;
use super::attempt::{Attempt, Probe};
use super::perfdata::parse_plugin_output;
use crate::base::diagnostics::Diagnostics;
use crate::base::event::{FailureReason, Outcome, ProbeKind};
use crate::base::key_path::KeyPath;
use crate::base::registry::BuildContext;
use crate::sources::command::{self, CommandLine, ProcessGroup};

/// The most of standard output, and of standard error, that is kept.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long output is still read after the command exits (and its group is killed).
const OUTPUT_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// Configuration of a `script_probe` (the options besides the shared check options).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptProbeConfig {
    /// The program and its arguments (a list); with `shell`, a command line (a string).
    pub command: CommandLine,
    /// Run `command` through `sh -c`. Default `false`.
    #[serde(default)]
    pub shell: bool,
    /// Variables added to the environment Aegis runs in.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Where the command runs; relative, from the configuration file's folder.
    /// Default: the configuration file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<PathBuf>,
}

impl ProbeOptions for ScriptProbeConfig {
    const NAME: &'static str = "script_probe";
    const KIND: ProbeKind = ProbeKind::Script;

    fn probe(&self, cx: &mut BuildContext) -> Box<dyn Probe> {
        Box::new(self.build(cx.base))
    }

    /// A command line needs a shell, and a shell needs a command line.
    fn check(&self, path: &KeyPath, diag: &mut Diagnostics) {
        command::check_shell(&self.command, self.shell, path, diag);
        command::check_program(&self.command, path, diag);
    }
}

impl ScriptProbeConfig {
    /// Builds the check; `base` is the configuration file's folder. Decoding made sure
    /// that a line comes with `shell` and a list without.
    pub fn build(&self, base: &Path) -> ScriptProbe {
        let argv = command::argv(&self.command, base);
        ScriptProbe {
            argv,
            env: self.env.clone(),
            working_dir: command::working_dir(self.working_dir.as_deref(), base),
            malformed_logged: AtomicBool::new(false),
        }
    }
}

/// A running script check's attempt maker.
pub struct ScriptProbe {
    /// The program, then its arguments; never empty.
    argv: Vec<String>,
    env: BTreeMap<String, String>,
    working_dir: PathBuf,
    /// Whether malformed performance data was logged already (once per check).
    malformed_logged: AtomicBool,
}

impl Probe for ScriptProbe {
    fn attempt(&self) -> BoxFuture<'_, Attempt> {
        Box::pin(async move {
            let mut command = tokio::process::Command::new(&self.argv[0]);
            command
                .args(&self.argv[1..])
                .envs(&self.env)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .current_dir(&self.working_dir)
                .process_group(0)
                .kill_on_drop(true);
            let mut child = match command.spawn() {
                Ok(child) => child,
                Err(err) => {
                    return Attempt::down(
                        FailureReason::Spawn,
                        format!("cannot start `{}`: {err}", self.argv[0]),
                    );
                }
            };
            let (Some(pid), Some(stdout), Some(stderr)) =
                (child.id(), child.stdout.take(), child.stderr.take())
            else {
                return Attempt::down(FailureReason::Spawn, "the command ended as it started");
            };
            let mut group = ProcessGroup::new(pid);
            let (mut stdout_kept, mut stderr_kept) = (Vec::new(), Vec::new());
            let status = {
                // Output is read while the command runs, so that it never blocks on a
                // full pipe.
                let reading = futures::future::join(
                    read_capped(stdout, &mut stdout_kept),
                    read_capped(stderr, &mut stderr_kept),
                );
                let mut reading = std::pin::pin!(reading);
                let mut read_all = false;
                let status = loop {
                    tokio::select! {
                        status = child.wait() => break status,
                        _ = &mut reading, if !read_all => read_all = true,
                    }
                };
                // Children left behind would run on, and hold the pipes open.
                group.kill();
                // A process that left the group (`setsid`) may still hold them: what
                // has not come shortly after the exit is not waited for.
                if !read_all {
                    let _ = tokio::time::timeout(OUTPUT_GRACE, reading).await;
                }
                status
            };
            let (stdout, stderr) = (stdout_kept, stderr_kept);
            match status {
                Ok(status) => {
                    let (attempt, malformed) = verdict(status, &stdout, &stderr);
                    if malformed > 0 && !self.malformed_logged.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            command = %self.argv[0],
                            malformed,
                            "Skipped malformed performance data in the command's output; \
                             further occurrences are not logged."
                        );
                    }
                    attempt
                }
                Err(err) => Attempt::down(
                    FailureReason::Other,
                    format!("waiting for the command: {err}"),
                ),
            }
        })
    }
}

/// Reads to the end into `kept`, keeping the first [`OUTPUT_LIMIT`] bytes and
/// discarding the rest (still reading it, so the writer is not blocked on a full pipe).
async fn read_capped(mut reader: impl AsyncRead + Unpin, kept: &mut Vec<u8>) {
    let mut chunk = [0u8; 8192];
    while let Ok(n) = reader.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = OUTPUT_LIMIT.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// The attempt for a command that ended with `status`, by the Nagios conventions.
/// Also returns how many perfdata items were malformed.
fn verdict(status: std::process::ExitStatus, stdout: &[u8], stderr: &[u8]) -> (Attempt, usize) {
    let output = parse_plugin_output(&String::from_utf8_lossy(stdout));
    let mut text = output.detail;
    if text.is_empty() {
        text = parse_plugin_output(&String::from_utf8_lossy(stderr)).detail;
    }
    let (outcome, reason, prefix) = match (status.code(), status.signal()) {
        (Some(0), _) => (Outcome::Up, None, String::new()),
        (Some(1), _) => (
            Outcome::Degraded,
            Some(FailureReason::ExitCode),
            "exit 1".into(),
        ),
        (Some(code), _) => (
            Outcome::Down,
            Some(FailureReason::ExitCode),
            format!("exit {code}"),
        ),
        (None, signal) => (
            Outcome::Down,
            Some(FailureReason::Other),
            format!("killed by signal {}", signal.unwrap_or(0)),
        ),
    };
    let detail = match (prefix.is_empty(), text.is_empty()) {
        (true, true) => "exit 0".to_owned(),
        (true, false) => text,
        (false, true) => prefix,
        (false, false) => format!("{prefix}: {text}"),
    };
    let attempt = Attempt {
        outcome,
        status: None,
        reason,
        detail,
        perfdata: output.perfdata,
    };
    (attempt, output.malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit(code: i32) -> std::process::ExitStatus {
        std::process::ExitStatus::from_raw(code << 8)
    }

    #[test]
    fn exit_codes_follow_the_nagios_conventions() {
        let ok = verdict(
            exit(0),
            b"DISK OK - free space: / 40%|'/'=4000MB;;;0;10000\n",
            b"",
        )
        .0;
        assert_eq!((ok.outcome, ok.reason), (Outcome::Up, None));
        assert_eq!(ok.detail, "DISK OK - free space: / 40%");
        assert_eq!(ok.perfdata.len(), 1);
        let warning = verdict(exit(1), b"LOAD WARNING - 5.0\n", b"").0;
        assert_eq!(warning.outcome, Outcome::Degraded);
        assert_eq!(warning.detail, "exit 1: LOAD WARNING - 5.0");
        let critical = verdict(exit(2), b"DISK CRITICAL - free space: / 3%|x=1\n", b"").0;
        assert_eq!(
            (critical.outcome, critical.reason),
            (Outcome::Down, Some(FailureReason::ExitCode))
        );
        assert_eq!(critical.detail, "exit 2: DISK CRITICAL - free space: / 3%");
        let unknown = verdict(exit(3), b"", b"check_x: invalid option\nusage: ...\n").0;
        assert_eq!(unknown.outcome, Outcome::Down);
        assert_eq!(unknown.detail, "exit 3: check_x: invalid option");
        let other = verdict(exit(127), b"", b"").0;
        assert_eq!(other.detail, "exit 127");
        let silent = verdict(exit(0), b"", b"").0;
        assert_eq!(silent.detail, "exit 0");
        let killed = verdict(std::process::ExitStatus::from_raw(9), b"", b"").0;
        assert_eq!(
            (killed.outcome, killed.detail.as_str()),
            (Outcome::Down, "killed by signal 9")
        );
    }
}
