//! The example receiver, `examples/webhook-server`: it prints notifications readably,
//! checks their signature, and fails as it is told to, which is what demos and the
//! webhook sink's users rely on. (The sink itself is tested in the crate, against
//! receivers of its own: `src/sinks/webhook/tests.rs`.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Instant;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::util::{PATIENCE, example, repo};

/// The running example, killed when dropped, its standard output read line by line.
pub struct WebhookServer {
    child: Child,
    pub url: String,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl WebhookServer {
    fn start(args: &[&str], secret: &str) -> WebhookServer {
        let mut command = Command::new(example("webhook-server"));
        command
            .args(["--secret-env", "AEGIS_TEST_EXAMPLE_SECRET"])
            .args(args)
            .env("AEGIS_TEST_EXAMPLE_SECRET", secret);
        WebhookServer::spawn(command, "127.0.0.1:0")
    }

    /// The example on `listen`, checking no signature.
    pub fn unsigned(listen: &str) -> WebhookServer {
        WebhookServer::spawn(Command::new(example("webhook-server")), listen)
    }

    fn spawn(mut command: Command, listen: &str) -> WebhookServer {
        let mut child = command
            .args(["--listen", listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let (sender, lines) = channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped"));
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines.recv_timeout(PATIENCE).expect("the ready line");
        let address = first.strip_prefix("listening ").expect("`listening ADDR`");
        WebhookServer {
            url: format!("http://{address}/alerts"),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Reads output until a line is `line`, and returns all read so far.
    pub fn wait_line(&mut self, line: &str) -> &[String] {
        self.wait_for(|seen| seen.iter().any(|seen| seen == line), line)
    }

    /// Reads output until `count` notifications with `status` (`firing`, `resolved`)
    /// were acknowledged.
    pub fn wait_acks(&mut self, status: &str, count: usize) {
        let what = format!("{count} acknowledged `{status}`");
        self.wait_for(|seen| acks(seen, status) >= count, &what);
    }

    /// The notifications with `status` acknowledged so far, reading what has been
    /// printed without waiting.
    pub fn acks(&mut self, status: &str) -> usize {
        self.seen.extend(self.lines.try_iter());
        acks(&self.seen, status)
    }

    fn wait_for(&mut self, done: impl Fn(&[String]) -> bool, what: &str) -> &[String] {
        let deadline = Instant::now() + PATIENCE;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(read) => self.seen.push(read),
                Err(_) => panic!("no {what} in:\n{}", self.seen.join("\n")),
            }
        }
        &self.seen
    }
}

impl Drop for WebhookServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The notifications with `status` acknowledged, told apart by their idempotency key:
/// a notification sent again under the same key (after a crash in the moment between
/// the receiver's answer and Aegis's note of it) is one a receiver drops.
fn acks(seen: &[String], status: &str) -> usize {
    let needle = format!(" status={status} ");
    let keys: std::collections::BTreeSet<&str> = (seen.iter())
        .filter(|line| line.starts_with("ack ") && line.contains(&needle))
        .filter_map(|line| line.split(' ').find(|word| word.starts_with("key=")))
        .collect();
    keys.len()
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = (mac.finalize().into_bytes().iter())
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[test]
fn the_example_receiver_prints_checks_signatures_and_fails_as_told() {
    let secret = "example-s3cret";
    let mut server = WebhookServer::start(&["--fail", "refuse,500,429,400"], secret);
    let body = std::fs::read(repo().join("tests/fixtures/alertmanager_webhook_firing.json"))
        .expect("the Alertmanager sample");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let post = |key: &str, signed: String| {
        let request = client
            .post(&server.url)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-aegis-signature", signed)
            .body(body.clone());
        runtime.block_on(request.send())
    };

    // Refused: the connection ends without an answer.
    assert!(post("k1", signature(secret, &body)).is_err());
    let answer = post("k1", signature(secret, &body)).unwrap();
    assert_eq!(answer.status(), 500);
    let answer = post("k1", signature(secret, &body)).unwrap();
    assert_eq!(answer.status(), 429);
    assert_eq!(answer.headers()["retry-after"], "1");
    assert_eq!(post("k1", signature(secret, &body)).unwrap().status(), 400);
    assert_eq!(post("k1", signature(secret, &body)).unwrap().status(), 200);
    let wrong = post("k2", signature("another secret", &body)).unwrap();
    assert_eq!(wrong.status(), 401);

    server.wait_line("rejected key=k2 reason=signature");
    let seen = server
        .wait_line("ack key=k1 status=firing alerts=2")
        .to_vec();
    let faults: Vec<&String> = seen.iter().filter(|l| l.starts_with("fault ")).collect();
    assert_eq!(
        faults,
        [
            "fault refuse key=k1",
            "fault 500 key=k1",
            "fault 429 key=k1",
            "fault 400 key=k1"
        ]
    );
    // One readable block per alert.
    let shown = seen.join("\n");
    assert!(
        shown.contains(
            "  [FIRING] critical checkout LogPatternCritical: OutOfMemoryError in checkout logs on web-02\n      pattern p01 matched 3 times in 60s\n      since 2026-11-28T18:03:15.935Z fingerprint 871bc61973b71ba7"
        ),
        "{shown}"
    );
    assert!(
        shown.contains("== FIRING (2 alerts) receiver=aegis-webhook group={}:{alertname=\"LogPatternCritical\", service=\"checkout\"}"),
        "{shown}"
    );
}
