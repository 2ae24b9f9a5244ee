//! The demo target, `examples/http-service`, watched by the daemon: its health over HTTP
//! and gRPC follows the health knob, and its application log's injected failures are
//! found by patterns.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::util::{Scene, events, example, http};

/// The running example, killed when dropped.
pub struct Target {
    child: Child,
    pub http: String,
    pub grpc: String,
}

impl Target {
    /// Starts the example writing its application log, and its access log if asked.
    pub fn start(app_log: &std::path::Path, access_log: Option<&std::path::Path>) -> Target {
        let mut child = Command::new(example("http-service"))
            .args([
                "--http",
                "127.0.0.1:0",
                "--grpc",
                "127.0.0.1:0",
                "--seed",
                "7",
            ])
            .arg("--app-log")
            .arg(app_log)
            .args(
                access_log
                    .map(|log| [std::ffi::OsStr::new("--access-log"), log.as_os_str()])
                    .into_iter()
                    .flatten(),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        // Its first line, once both ports are bound: `listening http=ADDR grpc=ADDR`.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("piped"))
            .read_line(&mut line)
            .expect("the ready line");
        let address = |key: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
                .to_owned()
        };
        Target {
            http: address("http="),
            grpc: address("grpc="),
            child,
        }
    }

    /// Sends one HTTP/1.1 request and returns the status line.
    pub fn request(&self, method: &str, target: &str) -> String {
        http(&self.http, method, target).0
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_target_is_watched_through_health_flips_and_injected_failures() {
    let scene = Scene::new();
    let app_log = scene.path("app.log");
    let target = Target::start(&app_log, None);
    scene.config(&format!(
        r#"
services:
  - name: demo
    health_checks:
      - {{ name: health, type: http, url: "http://{http}/health", interval: 500ms, timeout: 500ms }}
      - {{ name: grpc, type: grpc, address: "{grpc}", grpc_service: demo.Work, interval: 500ms, timeout: 500ms }}
logs:
  files:
    - service: demo
      path: "{log}"
  patterns:
    - {{ name: RequestFailed, pattern: 'ERROR .* request failed', severity: WARNING }}
"#,
        http = target.http,
        grpc = target.grpc,
        log = app_log.display(),
    ));
    let mut aegis = scene.run(&[]);
    let latest = |lines: &[String], check: &str| {
        events(lines, "probe_result")
            .filter(|result| result["check"] == check)
            .last()
    };
    let shows = |lines: &[String], check: &str, outcome: &str, detail: &str| {
        latest(lines, check).is_some_and(|r| r["outcome"] == outcome && r["detail"] == detail)
    };
    aegis.wait_out("both checks up", |lines| {
        shows(lines, "health", "up", "status 200") && shows(lines, "grpc", "up", "SERVING")
    });

    assert!(
        target
            .request("POST", "/admin/health?status=unhealthy")
            .contains(" 200 ")
    );
    aegis.wait_out("both checks down", |lines| {
        shows(lines, "health", "down", "status 503, expected 200-299")
            && shows(lines, "grpc", "down", "NOT_SERVING")
    });
    let health = latest(&aegis.out, "health").unwrap();
    assert_eq!(
        (health["reason"].as_str(), health["http_status"].as_u64()),
        (Some("status"), Some(503))
    );

    assert!(
        target
            .request("POST", "/admin/health?status=healthy")
            .contains(" 200 ")
    );
    assert!(
        target
            .request("POST", "/admin/fail?fraction=1")
            .contains(" 200 ")
    );
    for _ in 0..3 {
        assert!(target.request("GET", "/api/orders").contains(" 500 "));
    }
    aegis.wait_out(
        "three failures found in the log, and health back up",
        |lines| {
            events(lines, "log_match")
                .filter(|found| found["pattern"] == "RequestFailed")
                .count()
                == 3
                && shows(lines, "health", "up", "status 200")
                && shows(lines, "grpc", "up", "SERVING")
        },
    );
    assert!(aegis.terminate().success());
}
