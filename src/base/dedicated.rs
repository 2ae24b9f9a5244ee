//! Runtimes of one thread of their own, for sources whose work is many small waits
//! with little between them (health checks, log tails).
//!
//! On the shared multi-threaded runtime each such wake-up tends to unpark another
//! worker and move tasks between threads, and those context switches cost more than
//! the work: a probe, or reading the few lines a log grew by. One thread that sleeps
//! only when none of its tasks has anything to do serves thousands of them a second,
//! and keeps them off the threads that match and publish. The thread is started on
//! first use and lives as long as the process.

use std::sync::OnceLock;

use tokio::runtime::Handle;

use super::component::NodeError;

/// A single-threaded runtime on a thread of its own, started on first use.
pub struct Dedicated {
    name: &'static str,
    /// Whether its tasks run child processes: then it also reaps them, which it does
    /// each time it wakes (a cost for runtimes that have none).
    processes: bool,
    handle: OnceLock<std::io::Result<Handle>>,
}

impl Dedicated {
    /// A runtime whose thread is called `name` (as `top -H` shows it), for tasks that
    /// use timers and sockets or files, and with `processes`, child processes.
    pub const fn new(name: &'static str, processes: bool) -> Dedicated {
        Dedicated {
            name,
            processes,
            handle: OnceLock::new(),
        }
    }

    fn handle(&self) -> Result<&Handle, &std::io::Error> {
        self.handle
            .get_or_init(|| {
                let mut builder = tokio::runtime::Builder::new_current_thread();
                if self.processes {
                    builder.enable_all();
                } else {
                    builder.enable_io().enable_time();
                }
                let runtime = builder.build()?;
                let handle = runtime.handle().clone();
                std::thread::Builder::new()
                    .name(self.name.into())
                    .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
                Ok(handle)
            })
            .as_ref()
    }

    /// Runs `task` on this runtime's thread and waits for it.
    pub async fn run<F>(&self, task: F) -> Result<F::Output, NodeError>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = self.handle().map_err(|source| NodeError::Io {
            what: format!("starting the thread `{}`", self.name),
            source: std::io::Error::new(source.kind(), source.to_string()),
        })?;
        Ok(handle.spawn(task).await?)
    }
}
