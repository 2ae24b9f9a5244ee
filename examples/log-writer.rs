//! Writes a service log for Aegis to follow, and rotates it as logrotate would: a way
//! to watch `aegis run` keep up with a live, rotating log.
//!
//! ```sh
//! cargo run --example log-writer -- /tmp/demo/app.log &
//! cargo run --release -- run pipelines/demo-writer.yaml
//! ```
//!
//! Options (after `--`): the log path (default `app.log`), then `--lines-per-second N`
//! (default 200), `--batch N` lines per `write` (default 1: one write per line, as most
//! loggers do), `--rotate-every N` lines (default 2000; 0 = never), `--copytruncate`
//! (rotate by copying and truncating instead of renaming), `--total N` lines or
//! `--seconds N` (default: until interrupted). About one line in fifty is an error a
//! pattern would catch. Every line ends with `us=` and the time it was written, in
//! microseconds since the epoch, from which `benches/tail.sh` measures how long a line
//! takes to come out of Aegis.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Options {
    path: PathBuf,
    lines_per_second: u64,
    batch: u64,
    rotate_every: u64,
    copytruncate: bool,
    total: Option<u64>,
    seconds: Option<u64>,
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
    let total = match (options.total, options.seconds) {
        (Some(total), _) => total,
        (None, Some(seconds)) => seconds * options.lines_per_second,
        (None, None) => u64::MAX,
    };
    let mut written = 0;
    let mut text = String::new();
    while written < total {
        text.clear();
        let batch = options.batch.max(1).min(total - written);
        for _ in 0..batch {
            text.push_str(&line(written, &mut seed));
            text.push('\n');
            written += 1;
            if options.rotate_every > 0 && written % options.rotate_every == 0 {
                file.write_all(text.as_bytes())?;
                text.clear();
                file = rotate(&options, file, written / options.rotate_every)?;
            }
        }
        file.write_all(text.as_bytes())?;
        // Keep to the rate: sleep until the next write's time has come.
        let due =
            started + Duration::from_micros(written * 1_000_000 / options.lines_per_second.max(1));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!(
        "log-writer: {written} lines in {elapsed:.2} s ({:.0} lines/s)",
        written as f64 / elapsed
    );
    Ok(())
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        path: PathBuf::from("app.log"),
        lines_per_second: 200,
        batch: 1,
        rotate_every: 2000,
        copytruncate: false,
        total: None,
        seconds: None,
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
            "--batch" => options.batch = number("--batch")?,
            "--rotate-every" => options.rotate_every = number("--rotate-every")?,
            "--total" => options.total = Some(number("--total")?),
            "--seconds" => options.seconds = Some(number("--seconds")?),
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
    let now = SystemTime::now();
    let time = humantime::format_rfc3339_millis(now);
    let us = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
    let text = match roll {
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
    };
    format!("{text} us={us}")
}
