//! Helpers shared by the integration tests: the real `aegis` binary, run on temporary
//! files, with its output read as it comes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// How long a test waits for something that should happen in well under a second;
/// generous because the test machine may be loaded.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The `aegis` binary built for these tests, or the one `AEGIS_UNDER_TEST` names: a
/// way to see a regression test fail on an older build.
pub fn aegis() -> Command {
    match std::env::var_os("AEGIS_UNDER_TEST") {
        Some(binary) => Command::new(binary),
        None => Command::new(env!("CARGO_BIN_EXE_aegis")),
    }
}

/// Runs `aegis ARGS… FILE` to the end and returns what it did.
pub fn aegis_on(args: &[&str], file: &Path) -> std::process::Output {
    aegis().args(args).arg(file).output().expect("aegis runs")
}

/// Runs `aegis ARGS… FILE` with the environment variables `env`, fails the test unless
/// it succeeds, and returns its standard output.
pub fn aegis_succeeds(args: &[&str], file: &Path, env: &[(&str, &str)]) -> Vec<u8> {
    let out = (aegis().args(args).arg(file).envs(env.iter().copied()))
        .output()
        .expect("aegis runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "aegis {args:?} {}: {stderr}",
        file.display()
    );
    out.stdout
}

/// The time `event` (a line of JSON the console printed) has under `key`.
pub fn time_of(event: &serde_json::Value, key: &str) -> std::time::SystemTime {
    humantime::parse_rfc3339_weak(event[key].as_str().expect("a time")).expect("RFC 3339")
}

/// Whether the process `pid` has ended: no such process, or a zombie that only waits
/// for its parent to reap it.
pub fn process_ended(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command's closing parenthesis.
        Ok(stat) => (stat.rsplit(')').next().unwrap_or("").trim_start()).starts_with('Z'),
    }
}

/// Waits until every one of `pids` has ended (the kernel reaps on its own time), or
/// fails after [`PATIENCE`], saying `after` what.
pub fn until_ended(pids: &[u64], after: &str) {
    let deadline = Instant::now() + PATIENCE;
    while !pids.iter().all(|pid| process_ended(*pid)) {
        let left: Vec<_> = pids.iter().filter(|pid| !process_ended(**pid)).collect();
        assert!(
            Instant::now() < deadline,
            "{after}, these processes are still running: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary of example `name`, built by `cargo test` with the other examples; built
/// here when only this test binary was (`cargo test --test integration`).
pub fn example(name: &str) -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_aegis"))
        .parent()
        .expect("the binary's folder")
        .join("examples")
        .join(name);
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("cargo runs");
        assert!(built.success(), "cargo build --example {name}");
    }
    binary
}

/// The repository's root, where `config/`, `pipelines/` and `tests/` are.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder with a configuration and log files in it.
pub struct Scene {
    pub dir: tempfile::TempDir,
}

impl Scene {
    pub fn new() -> Scene {
        Scene {
            dir: tempfile::tempdir().expect("temporary folder"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `config.yaml` and returns its path.
    pub fn config(&self, yaml: &str) -> PathBuf {
        let path = self.path("config.yaml");
        std::fs::write(&path, yaml).expect("config written");
        path
    }

    /// Starts `aegis run` on this scene's configuration.
    pub fn run(&self, extra: &[&str]) -> Running {
        self.run_with(&[])
            .args(extra.iter().copied())
            .arg(self.path("config.yaml"))
            .start()
    }

    /// `aegis run` with the environment variables `env` (secrets a configuration
    /// names as `${NAME}`), to be given its arguments and started.
    pub fn run_with(&self, env: &[(&str, &str)]) -> Starting {
        let mut command = aegis();
        command.arg("run").envs(env.iter().copied());
        Starting(command)
    }

    /// Starts `aegis run ARGS… config.yaml` from the scene's folder, the configuration
    /// named as the README shows it: a bare file name.
    pub fn run_here(&self, args: &[&str]) -> Running {
        let mut command = aegis();
        command
            .current_dir(self.dir.path())
            .arg("run")
            .args(args)
            .arg("config.yaml");
        Running::start(command)
    }
}

/// An `aegis run` command being put together.
pub struct Starting(Command);

impl Starting {
    pub fn args<'a>(mut self, args: impl IntoIterator<Item = &'a str>) -> Starting {
        self.0.args(args);
        self
    }

    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Starting {
        self.0.arg(arg);
        self
    }

    pub fn start(self) -> Running {
        Running::start(self.0)
    }
}

/// A running `aegis`, its standard output and error read line by line as they come.
pub struct Running {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    /// Everything read from standard output so far.
    pub out: Vec<String>,
    /// Everything read from standard error so far.
    pub err: Vec<String>,
}

impl Running {
    /// Starts `command` (an [`aegis`] with its arguments), its output read as it comes.
    pub fn start(mut command: Command) -> Running {
        let mut child = command
            .env("AEGIS_LOG", "aegis=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("aegis starts");
        let stdout = lines_of(child.stdout.take().expect("piped"));
        let stderr = lines_of(child.stderr.take().expect("piped"));
        Running {
            child,
            stdout,
            stderr,
            out: Vec::new(),
            err: Vec::new(),
        }
    }

    /// Reads standard output until `done` holds for what was read, or fails the test
    /// after [`PATIENCE`].
    pub fn wait_out(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        self.wait_out_within(what, PATIENCE, done)
    }

    /// [`Running::wait_out`], failing after `limit`.
    pub fn wait_out_within(
        &mut self,
        what: &str,
        limit: Duration,
        done: impl Fn(&[String]) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(&self.out) {
            match self
                .stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    // Take all that has arrived before checking again: `done` may look
                    // at every line so far.
                    self.out.push(line);
                    self.out.extend(self.stdout.try_iter());
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("timed out waiting for {what}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("output ended before {what}"))
                }
            }
        }
    }

    /// Reads standard output until `count` lines satisfy `counted` (each line is looked
    /// at once: fit for hundreds of thousands of lines), or fails after [`PATIENCE`].
    pub fn wait_out_lines(&mut self, what: &str, count: usize, counted: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = self.out.iter().filter(|line| counted(line)).count();
        while seen < count {
            match self
                .stdout
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => {
                    seen += usize::from(counted(&line));
                    self.out.push(line);
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("timed out waiting for {what} ({seen} of {count})"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("output ended before {what} ({seen} of {count})"))
                }
            }
        }
    }

    /// Reads standard error until a line contains `needle` `count` times in all.
    pub fn wait_err(&mut self, needle: &str, count: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.err.iter().filter(|line| line.contains(needle)).count() < count {
            match self
                .stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            {
                Ok(line) => self.err.push(line),
                Err(_) => self.fail(&format!("no `{needle}` on standard error")),
            }
        }
    }

    /// Sends SIGTERM, waits for the exit and reads all the rest of the output.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        let status = self.wait();
        self.out.extend(self.stdout.iter());
        self.err.extend(self.stderr.iter());
        status
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...).
    pub fn signal(&mut self, name: &str) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success(), "kill -{name} {pid}");
    }

    /// Waits for aegis to exit on its own, for at most [`PATIENCE`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for aegis") {
                return status;
            }
            if Instant::now() > deadline {
                self.fail("aegis did not exit");
            }
            // Polling the child's status: there is no blocking wait with a deadline.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        self.err.extend(self.stderr.try_iter());
        panic!(
            "{why}\n--- stdout ({} lines, last 20):\n{}\n--- stderr:\n{}",
            self.out.len(),
            last(&self.out, 20),
            last(&self.err, 40)
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn last(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// A port on 127.0.0.1 that was free a moment ago, for a server that must be told its
/// port before it starts (a supervised service and the check that watches it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// `path` opened for appending, as a logger opens its log (created if need be).
pub fn open_append(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("log file")
}

/// The JSON objects among `lines` whose `event` is `kind`.
pub fn events<'a>(
    lines: &'a [String],
    kind: &'a str,
) -> impl Iterator<Item = serde_json::Value> + 'a {
    lines
        .iter()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(move |value| value["event"] == kind)
}

/// One HTTP/1.1 request to `address` (`host:port`), with no body: the response's
/// status line and body. Gives up after [`PATIENCE`].
pub fn http(address: &str, method: &str, target: &str) -> (String, String) {
    http_within(address, method, target, PATIENCE)
        .unwrap_or_else(|err| panic!("{method} {target} from {address}: {err}"))
}

/// [`http`], but an error if the exchange, connecting included, takes longer than
/// `limit`.
pub fn http_within(
    address: &str,
    method: &str,
    target: &str,
    limit: Duration,
) -> std::io::Result<(String, String)> {
    use std::io::{Error, ErrorKind, Read, Write};
    let deadline = Instant::now() + limit;
    let late = || Error::new(ErrorKind::TimedOut, format!("no response within {limit:?}"));
    let left = || {
        Some(deadline.saturating_duration_since(Instant::now()))
            .filter(|left| !left.is_zero())
            .ok_or_else(late)
    };
    let socket = std::net::ToSocketAddrs::to_socket_addrs(address)?
        .next()
        .ok_or_else(|| Error::new(ErrorKind::NotFound, "no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&socket, left()?)?;
    stream.set_write_timeout(Some(left()?))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    let mut chunk = [0; 64 * 1024];
    loop {
        stream.set_read_timeout(Some(left()?))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(read) => response.extend_from_slice(&chunk[..read]),
            // A read timeout is `WouldBlock` on Unix.
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(late());
            }
            Err(err) => return Err(err),
        }
    }
    let response =
        String::from_utf8(response).map_err(|err| Error::new(ErrorKind::InvalidData, err))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}
