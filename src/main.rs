//! The `aegis` command: run a pipeline, validate a configuration, show its expansion.
//!
//! Exit codes: 0 on success (and after a graceful shutdown), 2 for a configuration
//! that does not load (every error printed) or a bad command line, 1 when a running
//! node fails, 130 when a second signal cuts a shutdown short.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use aegis::base::diagnostics::Diagnostic;
use aegis::demo::Demo;
use aegis::demo::target::TargetArgs;
use aegis::pipeline::graph::BuildOptions;
use aegis::pipeline::load::{FileReloader, LoadError, Loaded, load as load_config};
use aegis::pipeline::runtime;
use aegis::sinks::summary::{Summary, SummarySink};
use aegis::sources::SourceConfig;
use aegis::stages::StageConfig;
use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Watches services: tails their logs, matches patterns, publishes events.
#[derive(Parser)]
#[command(name = "aegis", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output: -v for debug, -vv for trace (AEGIS_LOG overrides, e.g. `aegis=debug`).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Log format on standard error.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Run the pipeline a configuration describes, until SIGINT or SIGTERM.
    Run {
        /// The configuration file.
        config: PathBuf,
        /// Read the configured log files from their beginning to their end, print a
        /// summary (lines per file, matches per pattern and severity) and exit.
        #[arg(long)]
        once: bool,
        /// Format of the `--once` summary.
        #[arg(long, value_enum, default_value_t = Format::Human, requires = "once")]
        format: Format,
    },
    /// Check a configuration: print every error (and exit 2) or say it is valid.
    Validate {
        /// The configuration file.
        config: PathBuf,
    },
    /// Work with configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the demo: a configuration built into Aegis that runs a demo shop, checks it,
    /// follows its logs, finds its anomalies, alerts, and restarts it when it crashes.
    Demo {
        /// Also send the alerts to this webhook (`cargo run --example webhook-server`).
        #[arg(long, value_name = "URL")]
        webhook: Option<String>,
        /// Where the metrics and the alert list are served.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
        listen: SocketAddr,
        /// The demo's folder (default: a new one in the temporary folder).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Print the demo's configuration, and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// The demo's shop, which `aegis demo` runs (options: `aegis demo-target --help`).
    #[command(hide = true)]
    DemoTarget(TargetArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the pipeline a configuration expands to, in the pipeline form.
    Expand {
        /// The configuration file.
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A `--once` run's output is its summary: progress logs are noise there.
    let quiet = matches!(cli.command, Command::Run { once: true, .. });
    init_logging(cli.verbose, quiet, cli.log_format);
    let result = match cli.command {
        Command::Run {
            config,
            once,
            format,
        } => run(&config, once, format),
        Command::Validate { config } => validate(&config),
        Command::Config {
            command: ConfigCommand::Expand { config },
        } => expand(&config),
        Command::Demo {
            webhook,
            listen,
            dir,
            print_config,
        } => demo(webhook.as_deref(), listen, dir, print_config),
        Command::DemoTarget(args) => Ok(aegis::demo::target::main(args)),
    };
    result.unwrap_or_else(|err| {
        eprintln!("aegis: {err:#}");
        ExitCode::FAILURE
    })
}

/// How long a shutdown may take, from the signal: the tails' final drain, then a
/// moment for stages and sinks to finish what it read. Supervised processes may take
/// longer: their `stop_timeout` and the same moment after it.
const SHUTDOWN_LIMIT: std::time::Duration =
    aegis::sources::log_tail::FINAL_DRAIN.saturating_add(std::time::Duration::from_secs(5));

/// Raises the soft limit on open files to the hard one: each followed file holds a
/// descriptor, and the usual soft limit of 1,024 is far below what thousands of
/// followed files need (the hard limit is usually much higher).
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read or write only the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            let soft = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                tracing::debug!(soft, "Cannot raise the limit on open files.");
            }
        }
    }
}

fn init_logging(verbose: u8, quiet: bool, format: LogFormat) {
    let level = match verbose {
        0 if quiet => "warn",
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_env("AEGIS_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("warn,aegis={level}")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a terminal only: in a file or a pipe they are noise.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Loads `file`, printing its errors and returning exit code 2 if it does not load.
fn load(file: &Path, options: &BuildOptions) -> Result<Loaded, ExitCode> {
    match load_config(file, options) {
        Ok(loaded) => Ok(loaded),
        Err(LoadError::Invalid(errors)) => {
            eprintln!("{errors}");
            Err(ExitCode::from(2))
        }
        Err(err @ LoadError::Read { .. }) => {
            eprintln!("aegis: {err}");
            Err(ExitCode::from(2))
        }
    }
}

/// Writes `text` to standard output; a reader that went away (`| head`) is no error.
fn print_out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(err) if err.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(err).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}

fn print_warnings(file: &Path, warnings: &[Diagnostic]) {
    for warning in warnings {
        eprintln!("warning: {}", warning.display(file));
    }
}

/// How `validate` and `config expand` build: to check, not to run.
const CHECKING: BuildOptions = BuildOptions {
    once: false,
    checking: true,
};

fn validate(file: &Path) -> anyhow::Result<ExitCode> {
    let loaded = match load(file, &CHECKING) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    print_warnings(file, &loaded.warnings);
    let p = &loaded.pipeline;
    println!(
        "{}: valid ({} sources, {} stages, {} sinks)",
        file.display(),
        p.sources.len(),
        p.stages.len(),
        p.sinks.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn expand(file: &Path) -> anyhow::Result<ExitCode> {
    let loaded = match load(file, &CHECKING) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    print_warnings(file, &loaded.warnings);
    print_out(&loaded.pipeline.to_yaml())?;
    Ok(ExitCode::SUCCESS)
}

fn demo(
    webhook: Option<&str>,
    listen: SocketAddr,
    dir: Option<PathBuf>,
    print_config: bool,
) -> anyhow::Result<ExitCode> {
    let aegis = std::env::current_exe().context("cannot find Aegis's own binary")?;
    let dir = dir
        .unwrap_or_else(|| std::env::temp_dir().join(format!("aegis-demo-{}", std::process::id())));
    if print_config {
        let (http, grpc) = ("127.0.0.1:8080".parse()?, "127.0.0.1:50051".parse()?);
        print_out(&aegis::demo::render(&aegis, http, grpc, listen, webhook))?;
        return Ok(ExitCode::SUCCESS);
    }
    let demo = Demo::prepare(&dir, &aegis, listen, webhook)
        .with_context(|| format!("cannot prepare the demo in {}", dir.display()))?;
    print_out(&demo.intro())?;
    run(&demo.config, false, Format::Human)
}

fn run(file: &Path, once: bool, format: Format) -> anyhow::Result<ExitCode> {
    let options = BuildOptions {
        once,
        checking: false,
    };
    let loaded = match load(file, &options) {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    print_warnings(file, &loaded.warnings);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    raise_open_files_limit();
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        // Handlers are in place before anything runs, so an early signal is not lost.
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let mut hangup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
        let longest_stop = (loaded.pipeline.sources.iter())
            .filter_map(|source| match &source.config {
                SourceConfig::Supervisor(supervisor) => Some(supervisor.stop_timeout),
                _ => None,
            })
            .max()
            .unwrap_or_default();
        let shutdown_limit = SHUTDOWN_LIMIT.max(longest_stop + std::time::Duration::from_secs(5));
        let on_signal = shutdown.clone();
        // One request waits at most: SIGHUPs that come meanwhile are the same reload.
        let (reload, reloads) = tokio::sync::mpsc::channel::<()>(1);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = interrupt.recv() => break,
                    _ = terminate.recv() => break,
                    // `systemctl reload` and many scripts send SIGHUP; its default action
                    // would kill Aegis without a drain.
                    _ = hangup.recv() => match once {
                        true => tracing::warn!("SIGHUP received: a one-shot run does not reload; it goes on."),
                        false => {
                            let _ = reload.try_send(());
                        }
                    },
                }
            }
            tracing::info!("Shutting down: stopping sources, draining stages, flushing sinks.");
            on_signal.cancel();
            tokio::select! {
                _ = interrupt.recv() => {
                    tracing::warn!("Second signal: exiting without finishing the shutdown.");
                    std::process::exit(130);
                }
                _ = terminate.recv() => {
                    tracing::warn!("Second signal: exiting without finishing the shutdown.");
                    std::process::exit(130);
                }
                // Whatever is stuck (a stage on a pathological line, a sink that cannot
                // flush), a shutdown ends in bounded time.
                _ = tokio::time::sleep(shutdown_limit) => {
                    tracing::error!(limit = ?shutdown_limit, "Shutdown took too long; exiting without waiting for the rest.");
                    std::process::exit(1);
                }
            }
        });

        let reloader: Option<Box<dyn runtime::Reloader>> =
            (!once).then(|| Box::new(FileReloader::new(&loaded)) as _);
        let Loaded {
            mut graph,
            pipeline,
            ..
        } = loaded;
        // Every configured pattern is listed in the summary, matched or not.
        let patterns = (pipeline.stages.iter()).flat_map(|stage| match &stage.config {
            StageConfig::LogPatterns(config) => config.patterns.as_slice(),
            // The other stages have no patterns to list.
            _ => &[],
        });
        let summary = Summary::expecting(patterns.map(|p| (p.name.as_str(), p.severity)));
        let summary = Arc::new(Mutex::new(summary));
        if once {
            graph.remove_implicit_sinks(&pipeline);
            graph.add_sink_of_everything(
                "summary",
                Box::new(SummarySink::new(Arc::clone(&summary))),
            );
        }
        let started = Instant::now();
        let outcome = match reloader {
            Some(reloader) => runtime::run_reloading(graph, shutdown, reloads, reloader).await,
            None => runtime::run(graph, shutdown).await,
        };
        if once {
            let report = summary
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .report(started.elapsed(), std::env::current_dir().ok().as_deref());
            match format {
                Format::Human => print_out(&report.to_string())?,
                Format::Json => {
                    print_out(&format!("{}\n", serde_json::to_string_pretty(&report)?))?
                }
            }
        }
        Ok(match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        })
    })
}
