//! Writes a service log for Aegis to follow, and rotates it as logrotate would: a way
//! to watch `aegis run` keep up with a live, rotating log.
//!
//! ```sh
//! cargo run --example log-writer -- /tmp/demo/app.log &
//! cargo run --release -- run pipelines/demo-writer.yaml
//! ```
//!
//! Options (after `--`): the log path (default `app.log`), then `--lines-per-second N`
//! (default 200), `--rotate-every N` lines (default 2000; 0 = never), `--copytruncate`
//! (rotate by copying and truncating instead of renaming), `--total N` lines (default:
//! until interrupted). About one line in fifty is an error a pattern would catch.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Options {
    path: PathBuf,
    lines_per_second: u64,
    rotate_every: u64,
    copytruncate: bool,
    total: Option<u64>,
}

fn main() -> io::Result<()> {
    let options =
        parse_options().map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    if let Some(folder) = options
        .path
        .parent()
        .filter(|folder| !folder.as_os_str().is_empty())
    {
        fs::create_dir_all(folder)?;
    }
    let mut file = open(&options.path)?;
    let started = Instant::now();
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut written = 0;
    while options.total.is_none_or(|total| written < total) {
        writeln!(file, "{}", line(written, &mut seed))?;
        written += 1;
        if options.rotate_every > 0 && written % options.rotate_every == 0 {
            file = rotate(&options, file, written / options.rotate_every)?;
        }
        // Keep to the rate: sleep until this line's time has come.
        let due =
            started + Duration::from_micros(written * 1_000_000 / options.lines_per_second.max(1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    Ok(())
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        path: PathBuf::from("app.log"),
        lines_per_second: 200,
        rotate_every: 2000,
        copytruncate: false,
        total: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            let value = args.next().ok_or(format!("{name} needs a number"))?;
            value
                .parse()
                .map_err(|_| format!("{name}: `{value}` is not a number"))
        };
        match arg.as_str() {
            "--lines-per-second" => options.lines_per_second = number("--lines-per-second")?,
            "--rotate-every" => options.rotate_every = number("--rotate-every")?,
            "--total" => options.total = Some(number("--total")?),
            "--copytruncate" => options.copytruncate = true,
            other if other.starts_with("--") => return Err(format!("unknown option `{other}`")),
            path => options.path = PathBuf::from(path),
        }
    }
    Ok(options)
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Rotates the log, as logrotate would, and returns the file to write to next.
fn rotate(options: &Options, file: File, generation: u64) -> io::Result<File> {
    let rotated = options.path.with_extension(format!("log.{generation}"));
    if options.copytruncate {
        fs::copy(&options.path, rotated)?;
        file.set_len(0)?;
        Ok(file)
    } else {
        fs::rename(&options.path, rotated)?;
        open(&options.path)
    }
}

/// Line `n` of the log: mostly access lines, sometimes an error worth a pattern.
fn line(n: u64, seed: &mut u64) -> String {
    // xorshift64: varied enough for a demo, no dependency needed.
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let roll = *seed % 100;
    let time = humantime::format_rfc3339_millis(SystemTime::now());
    match roll {
        0 => format!(
            "{time} ERROR [worker-{}] java.lang.OutOfMemoryError: Java heap space",
            n % 8
        ),
        1 => format!(
            "{time} ERROR [db] connection refused by 10.0.0.{}:5432",
            n % 250
        ),
        2..=5 => format!(
            "{time} WARN  [http] slow request id={n} took {} ms",
            500 + *seed % 2000
        ),
        _ => format!(
            "{time} INFO  [http] GET /api/v1/orders/{} 200 {} ms",
            *seed % 100_000,
            *seed % 90
        ),
    }
}
