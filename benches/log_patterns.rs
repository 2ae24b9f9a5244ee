//! Matching throughput of the `log_patterns` stage, through its public API: a
//! `LogPatternsConfig` is built into a stage, and `Event::LogLines` blocks of about
//! 1 MiB are fed to `Stage::on_event`, as the `log_tail` source feeds them. A figure
//! covers the whole stage: the block search, the per-line regexes and the `LogMatch`
//! events it emits. Reading files, the runtime and the sinks are not measured here
//! (`benches/compare.sh` times the whole `aegis run --once` against grep and ripgrep).
//!
//! The input is a 16 MiB mixed service log (nginx access, Java/logback with stack
//! traces, Go key=value, syslog/kernel, Python worker lines) made by a seeded generator
//! modelled on `../shared/peers/gen_log.py`, so every run sees the same bytes. The
//! patterns are the 20 of `../shared/peers/patterns.txt`, which match about 0.6 % of
//! its lines; the setup asserts that rate, so a generator that drifts fails loudly.
//!
//! Run it with `cargo bench --bench log_patterns`; add
//! `-- --warm-up-time 1 --measurement-time 3` for a quick look.

use std::fmt::{self, Write as _};
use std::hint::black_box;
use std::ops::RangeInclusive;
use std::time::UNIX_EPOCH;

use aegis::base::diagnostics::Diagnostics;

use aegis::base::component::Stage;
use aegis::base::event::{Event, LogLines, Severity};
use aegis::base::key_path::KeyPath;
use aegis::base::spans::SpanIndex;
use aegis::stages::log_patterns::{LogPatterns, LogPatternsConfig, PatternConfig};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Size of the generated corpus.
const CORPUS_BYTES: usize = 16 << 20;
/// Size of one `LogLines` block, before it is cut back to a line end.
const BLOCK_BYTES: usize = 1 << 20;
const SEED: u64 = 42;

/// The 20 patterns of `../shared/peers/patterns.txt`, verbatim, with names.
const PATTERNS: [(&str, &str); 20] = [
    (
        "out_of_memory",
        r"(?i)(out of memory|java\.lang\.OutOfMemoryError)",
    ),
    ("connection_refused", r"(?i)connection refused"),
    ("timeout", r"(?i)\b(timeout|timed out)\b"),
    ("go_panic", r"^panic:"),
    ("fatal", r"\bFATAL\b"),
    ("segfault", r"segfault at [0-9a-f]+ ip [0-9a-f]+"),
    ("http_5xx", r#"HTTP/[0-9.]+" 5[0-9]{2} [0-9]"#),
    ("status_5xx", r"\bstatus=5\d{2}\b"),
    ("deadlock", r"(?i)deadlock (detected|found)"),
    ("disk_full", r"(?i)no space left on device"),
    ("too_many_open_files", r"(?i)too many open files"),
    (
        "java_exception",
        r"java\.lang\.(NullPointerException|IllegalStateException|StackOverflowError)",
    ),
    ("critical", r"\b(CRIT|CRITICAL|EMERG)\b"),
    ("connection_reset", r"(?i)connection reset by peer"),
    (
        "certificate",
        r"(?i)x509: certificate (has expired|signed by unknown authority)",
    ),
    ("oom_killer", r"Killed process \d+ \(\S+\)"),
    ("upstream", r"(?i)upstream (prematurely closed|timed out)"),
    (
        "database",
        r"ERROR .*(SQLException|could not connect to server)",
    ),
    (
        "probe_failed",
        r"(?i)(health ?check|readiness probe|liveness probe) failed",
    ),
    ("python_traceback", r"Traceback \(most recent call last\)"),
];

/// One benchmark case.
struct Param {
    /// The case's name in criterion's output and reports.
    slug: &'static str,
    patterns: &'static [(&'static str, &'static str)],
    corpus: Mix,
    /// Matches (line, pattern) the stage must emit over the corpus, per 1,000 lines.
    per_mille: RangeInclusive<f64>,
}

const PARAMS: [Param; 3] = [
    Param {
        slug: "20_patterns_realistic",
        patterns: &PATTERNS,
        corpus: Mix::Realistic,
        per_mille: 4.0..=12.0,
    },
    Param {
        slug: "1_pattern_literal",
        patterns: &[("connection_refused", "Connection refused")],
        corpus: Mix::Realistic,
        per_mille: 0.1..=1.0,
    },
    Param {
        slug: "20_patterns_no_matches",
        patterns: &PATTERNS,
        corpus: Mix::Quiet,
        per_mille: 0.0..=0.0,
    },
];

fn log_patterns(c: &mut Criterion) {
    let mut group = c.benchmark_group("stages::log_patterns");
    // One iteration is the whole 16 MiB corpus (2–20 ms): a few flat samples.
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    let realistic = blocks(&generate(Mix::Realistic, SEED, CORPUS_BYTES));
    let quiet = blocks(&generate(Mix::Quiet, SEED, CORPUS_BYTES));
    for param in &PARAMS {
        let blocks = match param.corpus {
            Mix::Realistic => &realistic,
            Mix::Quiet => &quiet,
        };
        let mut stage = build(param.patterns);
        let mut out = Vec::new();
        check_match_rate(param, &mut stage, blocks, &mut out);
        let bytes: usize = blocks.iter().map(block_len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(param.slug, |b| {
            b.iter(|| {
                let mut matches = 0;
                for block in blocks {
                    out.clear();
                    stage.on_event(block, UNIX_EPOCH, &mut out);
                    matches += out.len();
                }
                black_box(matches)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, log_patterns);
criterion_main!(benches);

/// Builds the stage the way the configuration loader does.
fn build(patterns: &[(&str, &str)]) -> LogPatterns {
    let config = LogPatternsConfig {
        patterns: patterns
            .iter()
            .map(|&(name, pattern)| PatternConfig {
                name: name.into(),
                pattern: pattern.into(),
                severity: Severity::Warning,
                description: format!("{name} seen"),
                origin: KeyPath::root(),
            })
            .collect(),
    };
    let spans = SpanIndex::default();
    let mut diag = Diagnostics::new(&spans);
    config
        .compile(&mut diag)
        .expect("the benchmark's patterns compile")
}

/// Runs the corpus through the stage once and fails unless the match rate is sane.
fn check_match_rate(
    param: &Param,
    stage: &mut LogPatterns,
    blocks: &[Event],
    out: &mut Vec<Event>,
) {
    let mut lines = 0;
    let mut matches = 0;
    for block in blocks {
        out.clear();
        stage.on_event(block, UNIX_EPOCH, out);
        matches += out.len();
        if let Event::LogLines(block) = block {
            lines += block.lines as usize;
        }
    }
    let per_mille = matches as f64 * 1000.0 / lines as f64;
    eprintln!(
        "{}: {} blocks, {lines} lines, {matches} matches ({per_mille:.2} per 1,000 lines)",
        param.slug,
        blocks.len(),
    );
    assert!(
        param.per_mille.contains(&per_mille),
        "{}: {matches} matches in {lines} lines ({per_mille:.2} ‰), expected {:?} ‰",
        param.slug,
        param.per_mille,
    );
}

/// Cuts `text` into `LogLines` blocks of whole lines, each about `BLOCK_BYTES`.
fn blocks(text: &str) -> Vec<Event> {
    let text = bytes::Bytes::copy_from_slice(text.as_bytes());
    let mut blocks = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let limit = (start + BLOCK_BYTES).min(text.len());
        // Back to the last line end in the block; a line longer than a block is
        // taken whole. The corpus ends with a line end.
        let end = match memchr::memrchr(b'\n', &text[start..limit]) {
            Some(i) => start + i + 1,
            None => limit + memchr::memchr(b'\n', &text[limit..]).map_or(0, |i| i + 1),
        };
        let block = text.slice(start..end);
        blocks.push(Event::LogLines(LogLines {
            service: "shop".into(),
            path: "/var/log/shop/service.log".into(),
            at: UNIX_EPOCH,
            lines: memchr::memchr_iter(b'\n', &block).count() as u32,
            text: block,
            cut: 0,
            lossy: 0,
        }));
        start = end;
    }
    blocks
}

fn block_len(event: &Event) -> usize {
    match event {
        Event::LogLines(lines) => lines.text.len(),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------
// The corpus: a compact port of `../shared/peers/gen_log.py`, with the same mix of
// services, the same near misses (`connect_timeout_ms=`, `healthcheck passed`,
// `ERROR` lines that are not database errors) and the same incidents. It is not
// byte-identical to the Python output; it only has to be realistic and deterministic.
// ---------------------------------------------------------------------------------

/// Which lines the generator writes.
#[derive(Clone, Copy)]
enum Mix {
    /// Everyday traffic with about 0.3 % incidents and a few 5xx responses.
    Realistic,
    /// The same traffic without incidents or 5xx: none of `PATTERNS` matches.
    Quiet,
}

/// xorshift64*: small, fast and good enough for picking log lines.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Never zero, whatever the seed.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }

    /// A number in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.range(0, items.len() as u64) as usize]
    }
}

const HOSTS: [&str; 8] = [
    "web-01", "web-02", "web-03", "web-04", "web-05", "web-06", "web-07", "web-08",
];
const METHODS: [&str; 14] = [
    "GET", "GET", "GET", "GET", "GET", "GET", "GET", "GET", "POST", "POST", "POST", "PUT",
    "DELETE", "PATCH",
];
/// Request paths; `{}` is replaced by a number.
const ROUTES: [&str; 14] = [
    "/api/v1/users/{}",
    "/api/v1/orders/{}",
    "/api/v1/orders/{}/items",
    "/api/v2/search?q=item{}&page=2",
    "/api/v1/cart/{}",
    "/static/js/app.{}.js",
    "/health",
    "/metrics",
    "/api/v1/payments/{}",
    "/api/v1/inventory/sku-{}",
    "/login",
    "/api/v1/sessions/{}/refresh",
    "/favicon.ico",
    "/api/v1/errors/catalog",
];
const USER_AGENTS: [&str; 8] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "curl/7.88.1",
    "kube-probe/1.28",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
    "Prometheus/2.42.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
];
/// Status codes and their weights per 1,053 requests, as in gen_log.py.
const STATUS: [(u16, u64); 15] = [
    (200, 850),
    (201, 40),
    (204, 20),
    (301, 10),
    (304, 30),
    (400, 12),
    (401, 8),
    (403, 4),
    (404, 20),
    (429, 3),
    (499, 2),
    (500, 1),
    (502, 1),
    (503, 1),
    (504, 1),
];
const LOGGERS: [&str; 8] = [
    "c.e.orders.OrderService",
    "c.e.payments.PaymentGateway",
    "o.h.e.j.s.SqlExceptionHelper",
    "c.e.inventory.StockReconciler",
    "o.s.web.servlet.DispatcherServlet",
    "c.e.auth.TokenValidator",
    "com.zaxxer.hikari.pool.HikariPool",
    "o.a.kafka.clients.consumer.KafkaConsumer",
];
/// Java messages; `{}` is replaced by a number.
const JAVA_INFO: [&str; 8] = [
    "Processed order id={} in 12 ms",
    "Payment authorized ref=PAY-{} amount=19.99 EUR",
    "Reconciled {} SKUs against warehouse snapshot",
    "Completed initialization in {} ms",
    "Token validated for subject user-{} scopes=[read,write]",
    "HikariPool-1 - Pool stats (total=20, active=8, idle=12, waiting=0) tick={}",
    "Committed offsets for partition orders-3 at offset {}",
    "Cache hit ratio=0.{} misses=17 (connect_timeout_ms=5000 read_timeout_ms=3000)",
];
const JAVA_WARN: [&str; 5] = [
    "Slow query detected: 5{} ms (threshold 500 ms)",
    "Retrying request to inventory-svc attempt={}",
    "Deprecated API /api/v1/cart/{} called by client okhttp",
    "Heap usage at 8{}% after GC",
    "healthcheck passed after {} retries",
];
const JAVA_ERROR_BENIGN: [&str; 3] = [
    "Validation failed for order {}: field 'email' must not be blank",
    "Payment declined ref=PAY-{} reason=insufficient_funds",
    "Unable to parse header X-Request-Id={}",
];
const GO_MESSAGES: [&str; 5] = [
    "request completed",
    "cache refreshed",
    "lease renewed",
    "job scheduled",
    "config reloaded",
];
const SYSLOG: [&str; 5] = [
    "systemd[1]: Started Session {} of User deploy.",
    "CRON[{}]: (root) CMD (/usr/local/bin/rotate-logs)",
    "sshd[{}]: Accepted publickey for deploy from 10.0.3.7 port 50122 ssh2",
    "kernel: [{}.123456] IPv4: martian source 10.0.0.1 from 10.0.0.2, on dev eth0",
    "dockerd[812]: time=\"2026-11-28\" level=info msg=\"container {} healthy\"",
];
const PYTHON_INFO: [&str; 3] = [
    "Processed job {} in 0.25s",
    "Fetched {} rows from warehouse",
    "Uploaded report chunk {}",
];
const FRAMES: [&str; 8] = [
    "com.example.orders.OrderService.process",
    "com.example.orders.OrderController.create",
    "org.springframework.web.servlet.FrameworkServlet.service",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter",
    "java.base/java.util.ArrayList.grow",
    "com.fasterxml.jackson.databind.ObjectMapper.readValue",
    "org.hibernate.loader.Loader.doQuery",
    "java.base/java.lang.Thread.run",
];

/// Generates at least `size` bytes of log, whole lines only.
fn generate(mix: Mix, seed: u64, size: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut out = String::with_capacity(size + 4096);
    // 40,000 events a minute, from 2026-11-28 00:00:00 UTC.
    let mut event: u64 = 0;
    while out.len() < size {
        let ms_total = event * 3 / 2;
        event += 1;
        let t = Time::at(ms_total);
        let u = rng.unit();
        if u < 0.003 {
            match mix {
                Mix::Realistic => incident(&mut rng, &t, &mut out),
                Mix::Quiet => python(&mut rng, &t, &mut out),
            }
        } else if u < 0.42 {
            nginx(&mut rng, &t, mix, &mut out);
        } else if u < 0.72 {
            java(&mut rng, &t, &mut out);
        } else if u < 0.91 {
            go(&mut rng, &t, mix, &mut out);
        } else if u < 0.96 {
            let host = rng.pick(&HOSTS);
            let message = fill(rng.pick(&SYSLOG), rng.range(100, 99_999));
            line(&mut out, format_args!("{} {host} {message}", t.syslog()));
        } else {
            python(&mut rng, &t, &mut out);
        }
    }
    out
}

fn nginx(rng: &mut Rng, t: &Time, mix: Mix, out: &mut String) {
    let ip = format!(
        "10.{}.{}.{}",
        rng.range(0, 8),
        rng.range(0, 256),
        rng.range(1, 255)
    );
    let mut status = weighted(rng, &STATUS);
    if matches!(mix, Mix::Quiet) && status >= 500 {
        status = 200;
    }
    let rt_ms = if status < 500 {
        rng.range(1, 900)
    } else {
        rng.range(2000, 30_000)
    };
    let rt = format!("{}.{:03}", rt_ms / 1000, rt_ms % 1000);
    line(
        out,
        format_args!(
            "{ip} - - [{}] \"{} {} HTTP/1.1\" {status} {} \"-\" \"{}\" rt={rt} uct=\"0.000\" uht=\"{rt}\" urt=\"{rt}\"",
            t.clf(),
            rng.pick(&METHODS),
            fill(rng.pick(&ROUTES), rng.range(0, 1_000_000)),
            rng.range(0, 40_000),
            rng.pick(&USER_AGENTS),
        ),
    );
}

fn java(rng: &mut Rng, t: &Time, out: &mut String) {
    let v = rng.unit();
    let n = rng.range(0, 1_000_000);
    let (level, message) = if v < 0.86 {
        ("INFO ", fill(rng.pick(&JAVA_INFO), n))
    } else if v < 0.95 {
        (
            "DEBUG",
            format!(
                "Binding parameter [{}] as [BIGINT] - [{}]",
                n % 10,
                rng.range(0, 10_000_000)
            ),
        )
    } else if v < 0.99 {
        ("WARN ", fill(rng.pick(&JAVA_WARN), n % 9 + 1))
    } else {
        ("ERROR", fill(rng.pick(&JAVA_ERROR_BENIGN), n))
    };
    line(
        out,
        format_args!(
            "{}.{:03} {level} [http-nio-8080-exec-{}] {} - {message}",
            t.iso(),
            t.ms,
            rng.range(1, 50),
            rng.pick(&LOGGERS),
        ),
    );
}

fn go(rng: &mut Rng, t: &Time, mix: Mix, out: &mut String) {
    let mut status = if rng.unit() < 0.97 {
        200
    } else {
        rng.pick(&[201, 204, 404, 409, 503])
    };
    if matches!(mix, Mix::Quiet) && status >= 500 {
        status = 200;
    }
    let latency = rng.range(1, 4000);
    line(
        out,
        format_args!(
            "time=\"{}.{:03}Z\" level=info msg=\"{}\" method={} path=/v1/items/{} status={status} latency_ms={}.{} request_id={:016x} deadline_ms=30000",
            t.iso_t(),
            t.ms,
            rng.pick(&GO_MESSAGES),
            rng.pick(&METHODS),
            rng.range(0, 100_000),
            latency / 10,
            latency % 10,
            rng.next(),
        ),
    );
}

fn python(rng: &mut Rng, t: &Time, out: &mut String) {
    let message = fill(rng.pick(&PYTHON_INFO), rng.range(0, 100_000));
    line(
        out,
        format_args!("{},{:03} - worker - INFO - {message}", t.iso(), t.ms),
    );
}

/// One error event, mostly multi-line; nearly all of them match a pattern.
fn incident(rng: &mut Rng, t: &Time, out: &mut String) {
    let (iso, ms, sys) = (t.iso(), t.ms, t.syslog());
    let host = rng.pick(&HOSTS);
    let thread = format!("http-nio-8080-exec-{}", rng.range(1, 50));
    let frames: Vec<String> = (0..rng.range(6, 14))
        .map(|_| {
            format!(
                "\tat {}({}.java:{})",
                rng.pick(&FRAMES),
                rng.pick(&["OrderService", "Loader", "Thread"]),
                rng.range(20, 900)
            )
        })
        .collect();
    let pid = rng.range(1000, 60_000);
    let uptime = format!(
        "{}.{:06}",
        rng.range(100_000, 1_000_000),
        rng.range(0, 1_000_000)
    );
    match rng.range(0, 22) {
        0 => {
            line(
                out,
                format_args!(
                    "{iso}.{ms:03} ERROR [{thread}] c.e.orders.OrderService - Unhandled exception"
                ),
            );
            line(
                out,
                format_args!("java.lang.OutOfMemoryError: Java heap space"),
            );
            frames.iter().for_each(|f| line(out, format_args!("{f}")));
        }
        1 => {
            line(
                out,
                format_args!(
                    "{iso}.{ms:03} ERROR [{thread}] o.s.web.servlet.DispatcherServlet - Request processing failed"
                ),
            );
            line(
                out,
                format_args!(
                    "java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"name\" is null"
                ),
            );
            frames.iter().for_each(|f| line(out, format_args!("{f}")));
        }
        2 => line(
            out,
            format_args!(
                "{sys} {host} kernel: [{uptime}] Out of memory: Killed process {pid} (java) total-vm:8123456kB, anon-rss:4123456kB"
            ),
        ),
        3 => line(
            out,
            format_args!(
                "{sys} {host} kernel: [{uptime}] worker[{pid}]: segfault at {:x} ip 00007f{:08x} sp 00007ffd{:08x} error 4 in libc.so.6[7f3a1c200000+195000]",
                rng.range(0, 1 << 16),
                rng.range(0, 1 << 32),
                rng.range(0, 1 << 32),
            ),
        ),
        4 => {
            line(
                out,
                format_args!(
                    "panic: runtime error: invalid memory address or nil pointer dereference"
                ),
            );
            line(
                out,
                format_args!(
                    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]"
                ),
            );
            line(out, format_args!(""));
            line(
                out,
                format_args!("goroutine {} [running]:", rng.range(1, 900)),
            );
            line(
                out,
                format_args!("main.(*Server).handle(0xc000120000, {{0x7f8c20, 0xc0001a4000}})"),
            );
            line(out, format_args!("\t/src/cmd/server/main.go:142 +0x1d"));
            line(out, format_args!("created by net/http.(*Server).Serve"));
            line(
                out,
                format_args!("\t/usr/local/go/src/net/http/server.go:3086 +0x5cb"),
            );
        }
        5 => {
            line(
                out,
                format_args!(
                    "{iso},{ms:03} - worker - ERROR - job {} failed",
                    rng.range(0, 100_000)
                ),
            );
            line(out, format_args!("Traceback (most recent call last):"));
            line(
                out,
                format_args!("  File \"/app/worker/jobs.py\", line 88, in run"),
            );
            line(out, format_args!("    conn = pool.get()"));
            line(
                out,
                format_args!(
                    "  File \"/usr/lib/python3/dist-packages/redis/connection.py\", line 611, in connect"
                ),
            );
            line(
                out,
                format_args!("ConnectionRefusedError: [Errno 111] Connection refused"),
            );
        }
        6 => line(
            out,
            format_args!(
                "{iso}.{ms:03} FATAL [main] c.e.Application - Startup failed, shutting down"
            ),
        ),
        7 => line(
            out,
            format_args!(
                "{iso}.{ms:03} ERROR [{thread}] c.e.payments.PaymentGateway - POST https://psp.internal/charge: Connection refused"
            ),
        ),
        8 | 9 => line(
            out,
            format_args!(
                "{iso}.{ms:03} WARN  [{thread}] c.e.inventory.StockReconciler - Request to inventory-svc timed out after 3000 ms"
            ),
        ),
        10 => line(
            out,
            format_args!(
                "{iso}/{ms:03} [error] 1234#1234: *{} upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.{}.{}, server: shop, request: \"GET /api/v1/orders HTTP/1.1\"",
                rng.range(0, 10_000_000),
                rng.range(0, 256),
                rng.range(1, 255),
            ),
        ),
        11 => line(
            out,
            format_args!(
                "{iso}.{ms:03} ERROR [{thread}] o.h.e.j.s.SqlExceptionHelper - org.postgresql.util.PSQLException: FATAL: remaining connection slots are reserved"
            ),
        ),
        12 => line(
            out,
            format_args!(
                "{iso}.{ms:03} ERROR [{thread}] c.e.orders.OrderRepository - Query failed: java.sql.SQLException: could not connect to server"
            ),
        ),
        13 => line(
            out,
            format_args!(
                "time=\"{iso}.{ms:03}Z\" level=error msg=\"write failed\" err=\"write /var/lib/app/queue.db: no space left on device\""
            ),
        ),
        14 => line(
            out,
            format_args!(
                "time=\"{iso}.{ms:03}Z\" level=error msg=\"accept failed\" err=\"accept tcp [::]:8080: accept4: too many open files\""
            ),
        ),
        15 => line(
            out,
            format_args!(
                "{iso}.{ms:03} ERROR [{thread}] o.h.e.j.s.SqlExceptionHelper - ERROR: deadlock detected Detail: Process {} waits for ShareLock",
                rng.range(0, 9999)
            ),
        ),
        16 => line(
            out,
            format_args!(
                "time=\"{iso}.{ms:03}Z\" level=warn msg=\"tls handshake failed\" err=\"x509: certificate has expired or is not yet valid\""
            ),
        ),
        17 => line(
            out,
            format_args!(
                "{iso}.{ms:03} WARN  [kafka-io] o.a.kafka.common.network.Selector - read failed: Connection reset by peer"
            ),
        ),
        18 => line(
            out,
            format_args!(
                "{sys} {host} kubelet[911]: Readiness probe failed: Get \"http://10.1.2.3:8080/ready\": context deadline exceeded"
            ),
        ),
        19 => line(
            out,
            format_args!(
                "{iso}.{ms:03} CRITICAL [scheduler] c.e.jobs.Scheduler - Job queue backlog exceeds 10000 items"
            ),
        ),
        20 => {
            line(
                out,
                format_args!(
                    "{iso}.{ms:03} ERROR [{thread}] c.e.Application - java.lang.StackOverflowError"
                ),
            );
            frames[..4]
                .iter()
                .for_each(|f| line(out, format_args!("{f}")));
        }
        _ => line(
            out,
            format_args!(
                "{iso}.{ms:03} ERROR [main] c.e.cache.Loader - Out of memory while growing cache segment {}",
                rng.range(0, 64)
            ),
        ),
    }
}

/// Appends one formatted line and its `\n`.
fn line(out: &mut String, args: fmt::Arguments) {
    out.write_fmt(args)
        .expect("writing to a String cannot fail");
    out.push('\n');
}

/// `template` with its `{}` replaced by `n`.
fn fill(template: &str, n: u64) -> String {
    template.replacen("{}", &n.to_string(), 1)
}

/// A value of `table` drawn with the table's weights.
fn weighted(rng: &mut Rng, table: &[(u16, u64)]) -> u16 {
    let total: u64 = table.iter().map(|&(_, w)| w).sum();
    let mut draw = rng.range(0, total);
    for &(value, weight) in table {
        if draw < weight {
            return value;
        }
        draw -= weight;
    }
    unreachable!("the draw is below the total weight")
}

/// A time of day on 2026-11-28 (UTC), in the formats the services write.
struct Time {
    hms: String,
    ms: u64,
}

impl Time {
    /// The time `ms` milliseconds after midnight; wraps after a day, which a 16 MiB
    /// corpus (a few minutes of traffic) never reaches.
    fn at(ms: u64) -> Time {
        let secs = ms / 1000 % 86_400;
        Time {
            hms: format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            ms: ms % 1000,
        }
    }

    fn iso(&self) -> String {
        format!("2026-11-28 {}", self.hms)
    }

    fn iso_t(&self) -> String {
        format!("2026-11-28T{}", self.hms)
    }

    fn clf(&self) -> String {
        format!("28/Nov/2026:{} +0000", self.hms)
    }

    fn syslog(&self) -> String {
        format!("Nov 28 {}", self.hms)
    }
}
