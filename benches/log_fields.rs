//! Throughput of the `log_fields` stage in lines per second, through its public API:
//! a configuration decoded from YAML as the loader decodes it, built into the stage,
//! and fed `Event::LogLines` blocks as the `log_tail` source feeds them. A figure covers
//! the whole stage: reading each line's status, duration and time, classifying the
//! status and building the one `Samples` event per block.
//!
//! The input is 10,000 generated access-log lines per format (nginx combined with
//! `$request_time`, JSON, and a key=value line read by a user's regex), made by a seeded
//! generator so that every run sees the same bytes; the setup asserts that every line
//! parses, so a generator that drifts from the format fails loudly instead of measuring
//! the rejection path.
//!
//! Run it with `cargo bench --bench log_fields`; add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick look.

use std::hint::black_box;
use std::time::UNIX_EPOCH;

use aegis::base::component::Stage;
use aegis::base::diagnostics::Diagnostics;
use aegis::base::event::{Event, LogLines};
use aegis::base::key_path::KeyPath;
use aegis::base::registry::ComponentType;
use aegis::base::spans::SpanIndex;
use aegis::stages::log_fields::{LogFields, LogFieldsConfig};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Lines per case.
const LINES: usize = 10_000;
/// Lines per `LogLines` block: about half a megabyte of combined lines, the size of a
/// busy tail's read.
const BLOCK_LINES: usize = 2_500;
const SEED: u64 = 42;

/// One benchmark case.
struct Param {
    /// The case's name in criterion's output and reports.
    slug: &'static str,
    /// The stage's options, as YAML.
    options: &'static str,
    /// Writes one line of the case's format.
    line: fn(&mut fastrand::Rng, &mut String),
}

const PARAMS: [Param; 3] = [
    Param {
        slug: "combined_request_time",
        options: "requests: {format: combined, errors: [5xx, 429]}",
        line: combined_line,
    },
    Param {
        slug: "json",
        options: "requests: {format: json, fields: {status: status, duration: request_time, time: time}}",
        line: json_line,
    },
    Param {
        slug: "regex",
        options: r"requests: {format: regex, duration_unit: ms, pattern: '^(?P<time>\S+ \S+) \S+ http \S+ \S+ status=(?P<status>\d{3}) took=(?P<duration>\d+)ms'}",
        line: regex_line,
    },
];

fn log_fields(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages::log_fields");
    group.throughput(Throughput::Elements(LINES as u64));
    for param in &PARAMS {
        let mut stage = build(param.options);
        let blocks = blocks(param);
        let mut out = Vec::new();
        check_every_line_parses(param, &mut stage, &blocks, &mut out);
        group.bench_function(param.slug, |b| {
            b.iter(|| {
                for block in &blocks {
                    out.clear();
                    stage.on_event(block, UNIX_EPOCH, &mut out);
                }
                black_box(out.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, log_fields);
criterion_main!(benches);

/// Builds the stage the way the configuration loader does.
fn build(options: &str) -> LogFields {
    let spans = SpanIndex::default();
    let mut diag = Diagnostics::new(&spans);
    let value: serde_norway::Value = serde_norway::from_str(options).expect("valid YAML");
    let config = LogFieldsConfig::decode(&value, &KeyPath::root(), &mut diag);
    let (errors, _) = diag.finish();
    assert!(errors.is_empty(), "{errors:?}");
    LogFields::new(&config.expect("the benchmark's options decode"))
}

/// The case's lines, generated, in blocks of `BLOCK_LINES`.
fn blocks(param: &Param) -> Vec<Event> {
    let mut rng = fastrand::Rng::with_seed(SEED);
    let mut blocks = Vec::new();
    for _ in 0..LINES / BLOCK_LINES {
        let mut text = String::new();
        for _ in 0..BLOCK_LINES {
            (param.line)(&mut rng, &mut text);
            text.push('\n');
        }
        blocks.push(Event::LogLines(LogLines {
            service: "shop".into(),
            path: "/var/log/nginx/access.log".into(),
            at: UNIX_EPOCH,
            text: bytes::Bytes::from(text),
            lines: BLOCK_LINES as u32,
            cut: 0,
            lossy: 0,
        }));
    }
    blocks
}

/// Runs the lines through the stage once and fails unless every one is a request.
fn check_every_line_parses(
    param: &Param,
    stage: &mut LogFields,
    blocks: &[Event],
    out: &mut Vec<Event>,
) {
    let (mut items, mut unparsed) = (0, 0);
    let mut bytes = 0;
    for block in blocks {
        out.clear();
        stage.on_event(block, UNIX_EPOCH, out);
        for event in out.iter() {
            if let Event::Samples(samples) = event {
                items += samples.items.len();
                unparsed += samples.unparsed;
            }
        }
        if let Event::LogLines(block) = block {
            bytes += block.text.len();
        }
    }
    eprintln!(
        "{}: {} blocks, {LINES} lines, {bytes} bytes, {items} requests, {unparsed} unparsed",
        param.slug,
        blocks.len()
    );
    assert_eq!((items, unparsed), (LINES, 0), "{}", param.slug);
}

const PATHS: [&str; 6] = [
    "/",
    "/api/cart",
    "/api/products?page=2&sort=price",
    "/static/app.3f9a1c.js",
    "/api/checkout",
    "/healthz",
];
const AGENTS: [&str; 3] = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "kube-probe/1.29",
];

/// Mostly 200s, some redirects and client errors, a few server errors.
fn status(rng: &mut fastrand::Rng) -> u16 {
    match rng.u32(0..100) {
        0..80 => 200,
        80..86 => 304,
        86..92 => 404,
        92..95 => 429,
        95..98 => 500,
        _ => 503,
    }
}

fn method(rng: &mut fastrand::Rng) -> &'static str {
    if rng.u32(0..10) < 8 { "GET" } else { "POST" }
}

/// nginx's combined format with `$request_time` last.
fn combined_line(rng: &mut fastrand::Rng, out: &mut String) {
    use std::fmt::Write;
    let (minute, second) = (rng.u32(0..60), rng.u32(0..60));
    let _ = write!(
        out,
        r#"10.{}.{}.{} - - [01/May/2024:12:{minute:02}:{second:02} +0200] "{} {} HTTP/1.1" {} {} "https://shop.example.com/" "{}" {}.{:03}"#,
        rng.u8(..),
        rng.u8(..),
        rng.u8(..),
        method(rng),
        rng.choice(PATHS).unwrap_or("/"),
        status(rng),
        rng.u32(0..200_000),
        rng.choice(AGENTS).unwrap_or("-"),
        rng.u32(0..2),
        rng.u32(0..1000),
    );
}

/// A JSON access log line, fields in the order a typical logger writes them.
fn json_line(rng: &mut fastrand::Rng, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        out,
        r#"{{"time":"2024-05-01T12:{:02}:{:02}.{:03}Z","remote_addr":"10.0.{}.{}","method":"{}","path":"{}","status":{},"bytes":{},"request_time":0.{:03},"user_agent":"{}"}}"#,
        rng.u32(0..60),
        rng.u32(0..60),
        rng.u32(0..1000),
        rng.u8(..),
        rng.u8(..),
        method(rng),
        rng.choice(PATHS).unwrap_or("/"),
        status(rng),
        rng.u32(0..200_000),
        rng.u32(0..1000),
        rng.choice(AGENTS).unwrap_or("-"),
    );
}

/// An application's own request line, read by a regex.
fn regex_line(rng: &mut fastrand::Rng, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(
        out,
        "2024-05-01 12:{:02}:{:02}.{:03} INFO http {} {} status={} took={}ms bytes={}",
        rng.u32(0..60),
        rng.u32(0..60),
        rng.u32(0..1000),
        method(rng),
        rng.choice(PATHS).unwrap_or("/"),
        status(rng),
        rng.u32(0..1500),
        rng.u32(0..200_000),
    );
}
