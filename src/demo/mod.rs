//! `aegis demo`: Aegis on a configuration compiled into the binary, watching and
//! running a service of its own (the demo target, `target.rs`, which the binary runs
//! as `aegis demo-target`), whose faults come on a schedule, so that a newcomer sees,
//! within a minute, what Aegis does: checks, an anomaly, alerts firing and resolving, a
//! restart.
//!
//! The configuration (`demo.yaml`) is an ordinary service-centric file with a few
//! blanks: the binary's path, the target's two ports, the metrics address and the
//! optional webhook. [`Demo::prepare`] fills them and writes the file into the demo's
//! folder, where the target's logs and the alert state go too, and the daemon runs it
//! as it would any file.

pub mod target;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

/// The demo's configuration, with `{aegis}`, `{http}`, `{grpc}`, `{metrics}` and
/// `{webhooks}` to fill.
const TEMPLATE: &str = include_str!("demo.yaml");

/// A demo, ready to run.
pub struct Demo {
    /// Its folder: the configuration, the target's logs, the alert state.
    pub dir: PathBuf,
    /// The configuration file in it.
    pub config: PathBuf,
    pub http: SocketAddr,
    pub metrics: SocketAddr,
}

impl Demo {
    /// Fills the configuration for the binary `aegis`, with metrics served on
    /// `metrics` and alerts also sent to `webhook`, and writes it into `dir`.
    pub fn prepare(
        dir: &Path,
        aegis: &Path,
        metrics: SocketAddr,
        webhook: Option<&str>,
    ) -> io::Result<Demo> {
        std::fs::create_dir_all(dir)?;
        let (http, grpc) = (free_port()?, free_port()?);
        let text = render(aegis, http, grpc, metrics, webhook);
        let config = dir.join("aegis.yaml");
        std::fs::write(&config, text)?;
        Ok(Demo {
            dir: dir.to_owned(),
            config,
            http,
            metrics,
        })
    }

    /// What the demo says at its start: what it does and where to look.
    pub fn intro(&self) -> String {
        format!(
            "Aegis demo: supervising a demo shop (HTTP {http}), checking it over HTTP, TCP, gRPC\n\
             and a script, following its logs, judging its latency and errors, alerting.\n\
             Faults come on a schedule: slow at 12 s, failing at 22 s, a crash at 32 s; the shop\n\
             is restarted and everything resolves, then the story starts again.\n\
             Events print below as JSON lines. Look meanwhile at:\n  \
             curl -s {metrics}/metrics | grep -E 'aegis_(alerts|process|service_restarts)'\n  \
             curl -s {metrics}/api/alerts\n\
             Configuration, logs and alert state: {dir}. Ctrl-C stops it all.\n",
            http = self.http,
            metrics = self.metrics,
            dir = self.dir.display(),
        )
    }
}

/// The configuration with its blanks filled.
pub fn render(
    aegis: &Path,
    http: SocketAddr,
    grpc: SocketAddr,
    metrics: SocketAddr,
    webhook: Option<&str>,
) -> String {
    let webhooks = match webhook {
        Some(url) => format!("  webhooks:\n    - name: demo\n      url: {url:?}\n"),
        None => String::new(),
    };
    TEMPLATE
        .replace("{aegis}", &aegis.display().to_string())
        .replace("{http}", &http.to_string())
        .replace("{grpc}", &grpc.to_string())
        .replace("{metrics}", &metrics.to_string())
        .replace("{webhooks}\n", &webhooks)
}

/// An address on 127.0.0.1 whose port was free a moment ago, for the target, which
/// must be started on ports its checks know.
fn free_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}
