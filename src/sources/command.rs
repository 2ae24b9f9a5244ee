//! Commands that Aegis runs: a script check's, a supervised service's. What they share:
//! how a command is written (an argument vector, or a line for `sh -c` with `shell:
//! true`), where relative paths start (the configuration file's folder), and the
//! process group each runs in, which is signalled as a whole so that nothing a command
//! starts in its group outlives it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::base::diagnostics::Diagnostics;
use crate::base::key_path::KeyPath;
use crate::base::paths::resolve;

/// A command as an argument vector (a list) or, for the shell, a line (a string).
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum CommandLine {
    Line(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for CommandLine {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let expected = "expected a list of arguments such as `[/usr/lib/nagios/plugins/check_tcp, -H, 127.0.0.1, -p, \"80\"]`, or a command line string with `shell: true`";
        let command = match serde_norway::Value::deserialize(deserializer)? {
            serde_norway::Value::String(line) => CommandLine::Line(line),
            serde_norway::Value::Sequence(items) => CommandLine::Argv(
                items
                    .into_iter()
                    .map(|item| match item {
                        serde_norway::Value::String(s) => Some(s),
                        serde_norway::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .collect::<Option<Vec<String>>>()
                    .ok_or_else(|| serde::de::Error::custom(expected))?,
            ),
            _ => return Err(serde::de::Error::custom(expected)),
        };
        let empty = match &command {
            CommandLine::Line(line) => line.trim().is_empty(),
            CommandLine::Argv(argv) => argv.first().is_none_or(|program| program.is_empty()),
        };
        if empty {
            return Err(serde::de::Error::custom(format!(
                "empty command; {expected}"
            )));
        }
        Ok(command)
    }
}

/// Reports at `path` a command line without a shell, or a list with one: joined into
/// a line a list would lose its quoting, and quoted item by item it could use nothing
/// of the shell.
pub fn check_shell(command: &CommandLine, shell: bool, path: &KeyPath, diag: &mut Diagnostics) {
    let problem = match (command, shell) {
        (CommandLine::Line(line), false) => format!(
            "`{line}` is a command line, which needs `shell: true`; without a shell, write the command as a list of arguments"
        ),
        (CommandLine::Argv(argv), true) => format!(
            "`{argv:?}` is a list of arguments, which runs without a shell; with `shell: true`, write the command as one command line (a string), such as `\"./check-queue.sh | tail -n 1\"`"
        ),
        _ => return,
    };
    diag.error(&path.key("command"), problem);
}

/// Warns at `path` about a program that cannot be run as things stand: an absolute
/// path that is missing, not a file or not executable, or a bare name that no folder
/// of `PATH` holds. A warning, not an error: it may be installed after Aegis starts,
/// and each attempt to run it says why it failed. (A relative path is looked at when
/// it runs, from the configuration file's folder.)
pub fn check_program(command: &CommandLine, path: &KeyPath, diag: &mut Diagnostics) {
    let CommandLine::Argv(argv) = command else {
        return;
    };
    let program = Path::new(&argv[0]);
    let problem = if program.is_absolute() {
        match std::fs::metadata(program) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                format!("`{}` does not exist", argv[0])
            }
            Err(err) => format!("`{}` cannot be looked at: {err}", argv[0]),
            Ok(found) if !found.is_file() => format!("`{}` is not a file", argv[0]),
            Ok(found) if found.permissions().mode() & 0o111 == 0 => {
                format!("`{}` is not executable", argv[0])
            }
            Ok(_) => return,
        }
    } else if argv[0].contains('/') {
        return;
    } else {
        let folders = std::env::var_os("PATH").unwrap_or_default();
        let runnable = |file: PathBuf| {
            std::fs::metadata(file)
                .is_ok_and(|found| found.is_file() && found.permissions().mode() & 0o111 != 0)
        };
        if std::env::split_paths(&folders).any(|folder| runnable(folder.join(program))) {
            return;
        }
        format!("`{}` is in no folder of PATH", argv[0])
    };
    diag.warn(
        &path.key("command"),
        format!("{problem}: each attempt to run it fails until that changes"),
    );
}

/// The program and its arguments to run: a line goes to `sh -c`; a list's relative
/// program path with a `/` in it starts at `base`, the configuration file's folder (the
/// list names a program, not a path for the shell to find). Decoding made sure that a
/// line comes with `shell` and a list without.
pub fn argv(command: &CommandLine, base: &Path) -> Vec<String> {
    match command {
        CommandLine::Line(line) => vec!["sh".into(), "-c".into(), line.clone()],
        CommandLine::Argv(argv) => {
            let mut argv = argv.clone();
            if argv[0].contains('/') && Path::new(&argv[0]).is_relative() {
                argv[0] = resolve(base, Path::new(&argv[0]))
                    .to_string_lossy()
                    .into_owned();
            }
            argv
        }
    }
}

/// Where a command runs: `dir` (relative: from `base`), or `base` itself.
pub fn working_dir(dir: Option<&Path>, base: &Path) -> PathBuf {
    match dir {
        Some(dir) => resolve(base, dir),
        None => base.to_owned(),
    }
}

/// The process group a command runs in (its leader is the command, started with
/// `process_group(0)`), killed when dropped.
pub struct ProcessGroup {
    id: libc::pid_t,
    killed: bool,
}

impl ProcessGroup {
    pub fn new(leader: u32) -> ProcessGroup {
        ProcessGroup {
            id: leader as libc::pid_t,
            killed: false,
        }
    }

    /// Sends `signal` to every process of the group.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: killpg only sends a signal. Until the leader is reaped its id cannot
        // be reused; after its exit, only once no process is left in the group, and
        // callers signal right after the exit.
        unsafe { libc::killpg(self.id, signal) };
    }

    /// Kills every process of the group, once.
    pub fn kill(&mut self) {
        if !self.killed {
            self.killed = true;
            self.signal(libc::SIGKILL);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill();
    }
}
