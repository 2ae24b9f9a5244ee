//! The running supervisor: start, watch, stop, decide, wait, start again.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use futures::future::BoxFuture;
use tokio::process::Child;
use tokio_util::sync::CancellationToken;

use super::health::Health;
use super::output::OutputLog;
use super::{RestartBudget, RestartPolicy, STABLE_RUN};
use crate::base::component::{NodeError, Output, Source};
use crate::base::dedicated::Dedicated;
use crate::base::event::{Change, Event, Exit, Lifecycle, RestartReason, ServiceName};
use crate::base::retry::RetryPolicy;
use crate::sources::command::ProcessGroup;

/// The thread every supervised process is started from. The parent-death signal fires
/// when the thread that started a process ends, not the process: this thread lives as
/// long as Aegis, so the signal means what it should.
static SUPERVISORS: Dedicated = Dedicated::new("aegis-supervisor", true);

/// How long output is still copied after the process's group is gone: a process that
/// left the group (`setsid`) may hold the pipes open for ever.
const OUTPUT_GRACE: Duration = Duration::from_millis(500);

/// A running `supervisor` source.
pub struct Supervisor {
    pub(super) service: ServiceName,
    /// The program, then its arguments; never empty.
    pub(super) argv: Vec<String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) working_dir: PathBuf,
    pub(super) restart: RestartPolicy,
    pub(super) backoff: RetryPolicy,
    pub(super) budget: RestartBudget,
    /// With `restart_on_unhealthy`: the service's check results, and how many down
    /// results in a row restart it.
    pub(super) health: Option<(Health, u32)>,
    pub(super) stop_timeout: Duration,
    pub(super) output: OutputLog,
    pub(super) once: bool,
}

/// How one run of the process ended.
struct Ended {
    pid: Option<u32>,
    exit: Exit,
    ran: Duration,
    /// Why it should start again, if it was stopped to be restarted.
    restart_for: Option<RestartReason>,
    /// It was stopped because Aegis is stopping.
    by_shutdown: bool,
}

impl Source for Supervisor {
    fn run(
        self: Box<Self>,
        out: Output,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), NodeError>> {
        Box::pin(async move {
            if self.once {
                tracing::info!(service = %self.service, "A one-shot run starts no supervised process.");
                return Ok(());
            }
            SUPERVISORS.run(self.supervise(out, shutdown)).await
        })
    }
}

impl Supervisor {
    async fn supervise(mut self, out: Output, shutdown: CancellationToken) {
        if let Some((health, _)) = &self.health {
            health.register(&self.service);
        }
        let backoff = self.backoff.clone();
        let mut rng = fastrand::Rng::new();
        let mut delays = backoff.delays(rng.fork());
        let mut restarts = 0u32;
        // When the restarts within the budget's window happened.
        let mut recent: VecDeque<Instant> = VecDeque::new();
        loop {
            let ended = self.run_once(&out, &shutdown).await;
            let Some(ended) = ended else { return };
            let exited = Change::Exited {
                pid: ended.pid,
                exit: ended.exit.clone(),
                ran: ended.ran,
            };
            if self.emit(&out, exited).await.is_err() || ended.by_shutdown {
                return;
            }
            let reason = match ended.restart_for {
                Some(reason) => reason,
                None if self.wants_restart(&ended.exit) => RestartReason::Exited,
                None => {
                    tracing::info!(service = %self.service, exit = %ended.exit, policy = ?self.restart, "The supervised process is not restarted: its restart policy does not ask for it.");
                    return shutdown.cancelled().await;
                }
            };
            let now = Instant::now();
            while recent
                .front()
                .is_some_and(|at| now.duration_since(*at) >= self.budget.within)
            {
                recent.pop_front();
            }
            if recent.len() >= self.budget.max_restarts as usize {
                tracing::error!(service = %self.service, restarts = recent.len(), within = ?self.budget.within, "The supervised process's restart budget is spent: it is not restarted again until Aegis restarts, or a reload changes its configuration.");
                let gave_up = Change::GaveUp {
                    restarts: recent.len() as u32,
                    within: self.budget.within,
                };
                if self.emit(&out, gave_up).await.is_ok() {
                    shutdown.cancelled().await;
                }
                return;
            }
            if ended.ran >= STABLE_RUN {
                delays = backoff.delays(rng.fork());
            }
            let after = delays.next().unwrap_or(backoff.max_delay);
            recent.push_back(now);
            restarts += 1;
            tracing::info!(service = %self.service, exit = %ended.exit, reason = reason.as_label(), after = ?after, "Restarting the supervised process.");
            let restarting = Change::Restarting {
                after,
                reason,
                restarts,
            };
            if self.emit(&out, restarting).await.is_err() {
                return;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(after) => {}
            }
        }
    }

    fn wants_restart(&self, exit: &Exit) -> bool {
        match self.restart {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !exit.succeeded(),
            RestartPolicy::Never => false,
        }
    }

    /// Starts the process and watches it until it ends; `None` if the pipeline has
    /// stopped taking events.
    async fn run_once(&mut self, out: &Output, shutdown: &CancellationToken) -> Option<Ended> {
        let started = Instant::now();
        let mut child = match self.spawn() {
            Ok(child) => child,
            Err(err) => {
                tracing::warn!(service = %self.service, program = %self.argv[0], error = %err, "Cannot start the supervised process.");
                return Some(Ended {
                    pid: None,
                    exit: Exit::NotStarted(format!("cannot start `{}`: {err}", self.argv[0])),
                    ran: Duration::ZERO,
                    restart_for: None,
                    by_shutdown: false,
                });
            }
        };
        let pid = child.id().expect("a child not yet waited for has an id");
        let mut group = ProcessGroup::new(pid);
        let copies = [
            child.stdout.take().map(|stream| {
                let output = self.output.clone();
                tokio::spawn(async move { output.copy(stream).await })
            }),
            child.stderr.take().map(|stream| {
                let output = self.output.clone();
                tokio::spawn(async move { output.copy(stream).await })
            }),
        ];
        tracing::info!(service = %self.service, pid, "Started the supervised process.");
        if self.emit(out, Change::Started { pid }).await.is_err() {
            let _ = stop(&mut child, &mut group, self.stop_timeout).await;
            return None;
        }
        let (status, restart_for, by_shutdown) = self.watch(&mut child, &mut group, shutdown).await;
        // What is left of the group (children of a process that exited by itself)
        // would hold ports and pipes.
        group.kill();
        for copy in copies.into_iter().flatten() {
            let abort = copy.abort_handle();
            if tokio::time::timeout(OUTPUT_GRACE, copy).await.is_err() {
                abort.abort();
            }
        }
        self.output.close();
        Some(Ended {
            pid: Some(pid),
            exit: exit_of(status),
            ran: started.elapsed(),
            restart_for,
            by_shutdown,
        })
    }

    fn spawn(&self) -> std::io::Result<Child> {
        let mut command = tokio::process::Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .envs(&self.env)
            .current_dir(&self.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let parent = std::process::id();
        // SAFETY: between fork and exec only async-signal-safe calls are made (prctl,
        // getppid) and nothing is allocated.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // Aegis died before the signal was set: nothing would kill this one.
                if libc::getppid() as u32 != parent {
                    return Err(std::io::Error::other("Aegis ended while starting it"));
                }
                Ok(())
            });
        }
        command.spawn()
    }

    /// Waits for the process to exit, to be unhealthy too long, or for shutdown; the
    /// two last stop it. Returns its exit status, why it should restart if it was
    /// stopped for that, and whether shutdown stopped it.
    async fn watch(
        &mut self,
        child: &mut Child,
        group: &mut ProcessGroup,
        shutdown: &CancellationToken,
    ) -> (std::io::Result<ExitStatus>, Option<RestartReason>, bool) {
        // Results from before this start say nothing about this process.
        let mut down_in_a_row: HashMap<ServiceName, u32> = HashMap::new();
        if let Some((health, _)) = &mut self.health {
            while health.reports.try_recv().is_ok() {}
        }
        loop {
            let report = async {
                match &mut self.health {
                    Some((health, _)) => health.reports.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                status = child.wait() => return (status, None, false),
                () = shutdown.cancelled() => {
                    tracing::info!(service = %self.service, "Stopping the supervised process.");
                    return (stop(child, group, self.stop_timeout).await, None, true);
                }
                Some(report) = report => {
                    let Some((_, after)) = &self.health else { continue };
                    let count = down_in_a_row.entry(report.check.clone()).or_default();
                    *count = if report.down { *count + 1 } else { 0 };
                    if *count >= *after {
                        tracing::warn!(service = %self.service, check = %report.check, down = *count, "A health check is down too many times in a row: restarting the supervised process.");
                        let status = stop(child, group, self.stop_timeout).await;
                        return (status, Some(RestartReason::Unhealthy { check: report.check }), false);
                    }
                }
            }
        }
    }

    async fn emit(
        &self,
        out: &Output,
        change: Change,
    ) -> Result<(), crate::base::component::Closed> {
        let life = Lifecycle {
            service: self.service.clone(),
            at: SystemTime::now(),
            change,
        };
        out.send(vec![Event::Lifecycle(life)]).await
    }
}

/// Stops the process: SIGTERM to its group, then SIGKILL after `timeout`.
async fn stop(
    child: &mut Child,
    group: &mut ProcessGroup,
    timeout: Duration,
) -> std::io::Result<ExitStatus> {
    group.signal(libc::SIGTERM);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => status,
        Err(_) => {
            tracing::warn!(
                pid = child.id(),
                ?timeout,
                "The supervised process did not stop on SIGTERM in time: killing it."
            );
            group.kill();
            child.wait().await
        }
    }
}

fn exit_of(status: std::io::Result<ExitStatus>) -> Exit {
    match status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::NotStarted("no exit status".into()),
        },
        Err(err) => Exit::NotStarted(format!("waiting for it: {err}")),
    }
}
