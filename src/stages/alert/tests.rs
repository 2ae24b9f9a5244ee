//! The `alert` stage driven by hand: events built here, at chosen instants, ticks
//! at chosen instants; and every configuration error, by line and key path. Nothing
//! waits: time is an argument.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::base::diagnostics::testing::{decoded, located};
use crate::base::event::{
    Alert, AlertState, FailureReason, Fingerprint, LabelSet, Notify, Outcome, ProbeKind,
    ProbeStatus, Reference, RestartReason, SignalSlice,
};
use crate::base::registry::Shared;
use crate::base::spans::SpanIndex;
use crate::base::stats::StatsHandle;

/// `options` (indented as under `stages.alerts`) decoded, with every problem shown as
/// `line:key.path message`.
fn decode(options: &str) -> (Option<AlertConfig>, Vec<String>) {
    let text = format!("stages:\n  alerts:\n{options}");
    let (config, errors) = decoded(&text, |value, diag| {
        let path = KeyPath::root().key("stages").key("alerts");
        AlertConfig::decode(&value["stages"]["alerts"], &path, diag)
    });
    (config, located(&errors))
}

fn config(options: &str) -> AlertConfig {
    let (config, errors) = decode(options);
    assert_eq!(errors, Vec::<String>::new());
    config.unwrap()
}

/// A stage built as the pipeline builds it, configuration files in `base`.
fn build(options: &str, base: &Path, once: bool) -> Box<dyn Stage> {
    let config = config(options);
    let spans = SpanIndex::build("");
    let mut diag = Diagnostics::new(&spans);
    let stats = StatsHandle::default();
    let shared = Shared::default();
    let mut cx = BuildContext {
        id: "alerts",
        base,
        once,
        checking: false,
        diag: &mut diag,
        stats: &stats,
        checks: &[],
        shared: &shared,
    };
    let stage = config.build(&mut cx).unwrap();
    assert!(diag.finish().0.is_empty());
    stage
}

/// A time `seconds` after a fixed instant.
fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + seconds)
}

/// A stage and the instant it is at.
struct Drive {
    stage: Box<dyn Stage>,
}

impl Drive {
    fn new(options: &str) -> Drive {
        Drive {
            stage: build(options, Path::new("/"), false),
        }
    }

    /// The alerts `event` at `seconds` makes the stage emit.
    fn event(&mut self, event: Event, seconds: u64) -> Vec<Alert> {
        let mut out = Vec::new();
        self.stage.on_event(&event, at(seconds), &mut out);
        self.stage.on_batch_end(at(seconds));
        alerts(out)
    }

    fn tick(&mut self, seconds: u64) -> Vec<Alert> {
        let mut out = Vec::new();
        self.stage.on_tick(at(seconds), &mut out);
        alerts(out)
    }
}

fn alerts(out: Vec<Event>) -> Vec<Alert> {
    (out.into_iter())
        .map(|event| match event {
            Event::Alert(alert) => alert,
            other => panic!("not an alert: {other:?}"),
        })
        .collect()
}

/// The alerts receivers are to be told of.
fn told(alerts: &[Alert]) -> Vec<&Alert> {
    alerts.iter().filter(|a| a.notify != Notify::No).collect()
}

fn probe(check: &str, outcome: Outcome) -> Event {
    Event::ProbeResult(ProbeResult {
        service: "shop".into(),
        check: check.into(),
        kind: ProbeKind::Http,
        at: UNIX_EPOCH,
        late: Duration::ZERO,
        outcome,
        latency: Duration::from_millis(12),
        attempts: 2,
        status: (outcome != Outcome::Up).then_some(ProbeStatus::Http(503)),
        reason: (outcome != Outcome::Up).then_some(FailureReason::Status),
        detail: if outcome == Outcome::Up {
            "status 200".into()
        } else {
            "status 503".into()
        },
        perfdata: Vec::new(),
    })
}

fn log_match(pattern: &str, severity: Severity, line: &str, seconds: u64) -> Event {
    Event::LogMatch(LogMatch {
        service: "shop".into(),
        path: "/var/log/shop.log".into(),
        at: at(seconds),
        pattern: pattern.into(),
        severity,
        description: "Out of memory".into(),
        line: line.into(),
    })
}

fn anomaly(anomalous: bool, seconds: u64) -> Event {
    Event::Anomaly(Anomaly {
        service: "shop".into(),
        signal: Signal::Latency,
        at: at(seconds),
        started: at(seconds),
        changed: at(seconds),
        anomalous,
        observed: 0.742,
        reference: Reference::Threshold {
            min: None,
            max: Some(0.5),
        },
        score: None,
        explanation: "shop latency p99 742 ms over 30 s, threshold 500 ms".into(),
    })
}

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    (pairs.iter())
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// The first "Done when": N−1 failing ticks no alert, N one firing, a
/// hundred more no duplicate, a repeat after repeat_interval, recovery one resolve.
#[test]
fn a_check_down_fires_once_repeats_on_time_and_resolves_once() {
    let mut drive = Drive::new("    repeat_interval: 1h\n");
    // CheckDown: 3 failing ticks in a row (ticks every 10 s).
    let first = drive.event(probe("health", Outcome::Down), 0);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].state, first[0].notify, first[0].started),
        (AlertState::Pending, Notify::No, at(0))
    );
    assert!(drive.event(probe("health", Outcome::Down), 10).is_empty());
    let fired = drive.event(probe("health", Outcome::Down), 20);
    assert_eq!(told(&fired).len(), 1, "{fired:?}");
    let alert = &fired[0];
    assert_eq!(
        (alert.state, alert.notify, alert.started, alert.ended),
        (AlertState::Firing, Notify::Transition, at(20), None)
    );
    let expected = labels(&[
        ("alertname", "CheckDown"),
        ("check", "health"),
        ("service", "shop"),
        ("severity", "critical"),
    ]);
    assert_eq!(*alert.labels, expected);
    assert_eq!(alert.fingerprint, Fingerprint::of(&expected));
    assert_eq!(
        (&*alert.rule, alert.severity),
        ("CheckDown", Severity::Critical)
    );
    assert_eq!(alert.annotations["summary"], "shop: check health is down");
    assert_eq!(
        alert.annotations["description"],
        "The http check health of shop: down, 3 in a row (2 attempts the last time): status 503"
    );

    // A hundred more failing ticks, and the clock between them: nothing.
    let mut later = Vec::new();
    for n in 3..103 {
        later.extend(drive.event(probe("health", Outcome::Down), n * 10));
        later.extend(drive.tick(n * 10 + 5));
    }
    assert!(later.is_empty(), "{later:?}");

    // The repeat comes exactly repeat_interval after the firing.
    assert!(drive.tick(20 + 3599).is_empty());
    let repeat = drive.tick(20 + 3600);
    assert_eq!(repeat.len(), 1);
    assert_eq!(
        (repeat[0].notify, repeat[0].state, repeat[0].started),
        (Notify::Repeat, AlertState::Firing, at(20))
    );
    // The repeat says the latest evidence.
    assert!(repeat[0].annotations["description"].contains("down, 103 in a row"));

    // Recovery: two good ticks in a row (resolve_after 2) resolve it, once.
    assert!(drive.event(probe("health", Outcome::Up), 3700).is_empty());
    let resolved = drive.event(probe("health", Outcome::Up), 3710);
    assert_eq!(told(&resolved).len(), 1);
    assert_eq!(
        (resolved[0].state, resolved[0].notify, resolved[0].ended),
        (AlertState::Resolved, Notify::Transition, Some(at(3710)))
    );
    assert_eq!(resolved[0].started, at(20));
    assert_eq!(resolved[0].fingerprint, alert.fingerprint);
    let mut after = Vec::new();
    for n in 372..500 {
        after.extend(drive.event(probe("health", Outcome::Up), n * 10));
        after.extend(drive.tick(n * 10 + 5));
    }
    assert!(after.is_empty(), "{after:?}");
}

#[test]
fn a_check_hovering_at_its_threshold_tells_nobody() {
    let mut drive = Drive::new("    repeat_interval: 1h\n");
    let mut seen = Vec::new();
    for n in 0..300 {
        let outcome = if n % 2 == 0 {
            Outcome::Down
        } else {
            Outcome::Up
        };
        seen.extend(drive.event(probe("health", outcome), n * 10));
        // Down twice, up once: never 3 failures in a row, never 2 goods in a row.
        let outcome = if n % 3 == 2 {
            Outcome::Up
        } else {
            Outcome::Down
        };
        seen.extend(drive.event(probe("other", outcome), n * 10));
        seen.extend(drive.tick(n * 10 + 5));
    }
    assert!(told(&seen).is_empty(), "{:?}", told(&seen));
    // `other` stays pending rather than coming and going: one pending event.
    let other: Vec<_> = (seen.iter())
        .filter(|a| a.labels["check"] == "other")
        .collect();
    assert_eq!(other.len(), 1, "{other:?}");
}

#[test]
fn an_anomaly_fires_only_once_it_has_lasted_and_resolves_when_normal() {
    let mut drive = Drive::new("    repeat_interval: 1h\n");
    // Flipping every 30 s: never lasts the minute it must (default `for: 1m`).
    let mut seen = Vec::new();
    for n in 0..100 {
        seen.extend(drive.event(anomaly(n % 2 == 0, n * 30), n * 30));
        seen.extend(drive.tick(n * 30 + 15));
    }
    assert!(told(&seen).is_empty(), "{:?}", told(&seen));

    let start = 10_000;
    let pending = drive.event(anomaly(true, start), start);
    assert_eq!(pending[0].state, AlertState::Pending);
    assert!(drive.tick(start + 59).is_empty());
    let fired = drive.tick(start + 60);
    assert_eq!(told(&fired).len(), 1);
    assert_eq!(fired[0].state, AlertState::Firing);
    assert_eq!(fired[0].labels["signal"], "latency");
    assert_eq!(fired[0].labels["severity"], "warning");
    assert_eq!(
        fired[0].annotations["summary"],
        "shop: latency is anomalous"
    );
    assert_eq!(
        fired[0].annotations["description"],
        "shop latency p99 742 ms over 30 s, threshold 500 ms"
    );
    let resolved = drive.event(anomaly(false, start + 90), start + 90);
    assert_eq!(told(&resolved).len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
}

fn lifecycle(change: Change, seconds: u64) -> Event {
    Event::Lifecycle(Lifecycle {
        service: "shop".into(),
        at: at(seconds),
        change,
    })
}

#[test]
fn a_process_given_up_on_fires_at_once_and_resolves_when_it_starts_again() {
    let mut drive = Drive::new("    repeat_interval: 1h\n");
    // Crashes and restarts are counted, not alerted on.
    let restarting = Change::Restarting {
        after: Duration::from_secs(1),
        reason: RestartReason::Exited,
        restarts: 1,
    };
    assert!(drive.event(lifecycle(restarting, 0), 0).is_empty());
    let gave_up = Change::GaveUp {
        restarts: 5,
        within: Duration::from_secs(600),
    };
    let fired = drive.event(lifecycle(gave_up, 10), 10);
    assert_eq!(told(&fired).len(), 1);
    assert_eq!(fired[0].state, AlertState::Firing);
    assert_eq!(
        *fired[0].labels,
        labels(&[
            ("alertname", "ServiceGaveUp"),
            ("process", "shop"),
            ("service", "shop"),
            ("severity", "critical")
        ])
    );
    assert_eq!(
        fired[0].annotations["description"],
        "The process of shop was restarted 5 times within 10m and exited again; its restart budget is spent, and Aegis no longer restarts it."
    );
    assert!(told(&drive.tick(70)).is_empty());
    let resolved = drive.event(lifecycle(Change::Started { pid: 7 }, 100), 100);
    assert_eq!(told(&resolved).len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
}

/// After a restart the anomaly stage never says "normal" of an anomaly it did not see
/// begin; a judged, normal slice resolves the alert instead.
#[test]
fn a_normal_slice_resolves_an_anomaly_alert() {
    let mut drive = Drive::new("    repeat_interval: 1h\n");
    drive.event(anomaly(true, 0), 0);
    assert_eq!(told(&drive.tick(60)).len(), 1);
    let slice = |anomalous, unjudged| {
        Event::SignalSlice(SignalSlice {
            service: "shop".into(),
            signal: Signal::Latency,
            at: at(90),
            value: Some(0.1),
            baseline: None,
            score: None,
            anomalous,
            unjudged,
        })
    };
    assert!(drive.event(slice(true, None), 90).is_empty());
    let first_slice = Some(crate::base::event::Unjudged::FirstSlice);
    assert!(drive.event(slice(false, first_slice), 90).is_empty());
    let resolved = drive.event(slice(false, None), 120);
    assert_eq!(told(&resolved).len(), 1);
    assert_eq!(resolved[0].state, AlertState::Resolved);
}

#[test]
fn a_flapping_check_is_held_firing_then_resolved_once_stable() {
    let mut drive = Drive::new(concat!(
        "    repeat_interval: 1h\n",
        "    flap_damping: {window: 1h, max_changes: 4, stable_for: 10m}\n",
        "    rules:\n",
        "      - {name: CheckDown, on: probe, for: 1, resolve_after: 1}\n",
    ));
    let mut seen = Vec::new();
    for n in 0..100 {
        let outcome = if n % 2 == 0 {
            Outcome::Down
        } else {
            Outcome::Up
        };
        seen.extend(drive.event(probe("health", outcome), n * 10));
        seen.extend(drive.tick(n * 10 + 5));
    }
    // Fired, resolved, fired, resolved (4 changes), fired: the next resolve is held.
    let transitions: Vec<AlertState> = told(&seen).iter().map(|a| a.state).collect();
    use AlertState::{Firing, Resolved};
    assert_eq!(transitions, [Firing, Resolved, Firing, Resolved, Firing]);
    let last = seen.last().unwrap();
    assert!(last.flapping && last.state == Firing && last.notify == Notify::No);
    assert_eq!(
        last.annotations["flapping"],
        "changed state 5 times in 1h; held firing until stable for 10m"
    );
    // The check stays up: ten minutes after its last change, it resolves, once.
    let quiet_from = 990;
    let mut end = Vec::new();
    for n in 0..70 {
        end.extend(drive.event(probe("health", Outcome::Up), quiet_from + 10 + n * 10));
        end.extend(drive.tick(quiet_from + 15 + n * 10));
    }
    let end = told(&end);
    assert_eq!(end.len(), 1, "{end:?}");
    assert_eq!((end[0].state, end[0].flapping), (Resolved, false));
    assert_eq!(end[0].ended, Some(at(quiet_from + 600)));
    assert!(!end[0].annotations.contains_key("flapping"));
}

#[test]
fn a_log_pattern_fires_at_its_severity_and_resolves_after_quiet() {
    let mut drive = Drive::new("    repeat_interval: 1h\n");
    // INFO is below the default rule's WARNING.
    assert!(
        drive
            .event(log_match("slow", Severity::Info, "slow", 0), 0)
            .is_empty()
    );
    let fired = drive.event(log_match("oom", Severity::Critical, "OOM 1", 0), 0);
    assert_eq!(told(&fired).len(), 1);
    assert_eq!(fired[0].state, AlertState::Firing);
    assert_eq!(
        *fired[0].labels,
        labels(&[
            ("alertname", "LogPattern"),
            ("pattern", "oom"),
            ("service", "shop"),
            ("severity", "critical"),
        ])
    );
    assert_eq!(fired[0].annotations["summary"], "shop: Out of memory");
    let long = format!("OOM\u{1b}[31m {}", "x".repeat(400));
    for n in 1..50 {
        assert!(
            drive
                .event(log_match("oom", Severity::Critical, &long, n), n)
                .is_empty()
        );
    }
    // A warning pattern is an alert of its own, at its severity.
    let warning = drive.event(log_match("disk", Severity::Warning, "disk 91%", 50), 50);
    assert_eq!(warning[0].labels["severity"], "warning");

    // Five quiet minutes after the last match, it resolves, with the last line, cut.
    assert!(told(&drive.tick(49 + 299)).is_empty());
    let resolved = drive.tick(49 + 300);
    assert_eq!(told(&resolved).len(), 1, "{resolved:?}");
    let description = &resolved[0].annotations["description"];
    assert!(
        description.starts_with(
            "Pattern oom matched in /var/log/shop.log (matches so far: 50); the last line: OOM\\u{1b}[31m xxx"
        ),
        "{description}"
    );
    assert!(description.ends_with("x…"), "{description}");
    assert_eq!(
        description.matches('x').count(),
        200 - "OOM\u{1b}[31m ".chars().count()
    );
}

#[test]
fn written_rules_add_labels_fill_templates_and_replace_defaults() {
    let mut drive = Drive::new(concat!(
        "    repeat_interval: 1h\n",
        "    rules:\n",
        "      - name: CheckDown\n",
        "        on: probe\n",
        "        for: 1\n",
        "        labels: { team: payments }\n",
        "        annotations:\n",
        "          summary: \"{service}: {check} is {outcome} ({status}, {reason}, {latency})\"\n",
        "          runbook: \"https://runbooks/{alertname}/{severity}\"\n",
        "      - name: Payments\n",
        "        on: probe\n",
        "        checks: [payments]\n",
        "        outcomes: [down, degraded]\n",
        "        severity: WARNING\n",
        "        for: 2m\n",
    ));
    let fired = drive.event(probe("health", Outcome::Down), 0);
    assert_eq!(
        fired.len(),
        1,
        "the written CheckDown fires on the first failure"
    );
    let alert = &fired[0];
    assert_eq!(alert.labels["team"], "payments");
    assert_eq!(alert.fingerprint, Fingerprint::of(&alert.labels));
    assert_eq!(
        alert.annotations["summary"],
        "shop: health is down (HTTP 503, status, 12 ms)"
    );
    assert_eq!(
        alert.annotations["runbook"],
        "https://runbooks/CheckDown/CRITICAL"
    );
    // Not written: the default description.
    assert!(alert.annotations["description"].starts_with("The http check health"));

    // `for: 2m` on a probe: held two minutes, degraded counting as failing.
    let pending = drive.event(probe("payments", Outcome::Degraded), 100);
    let names: Vec<&str> = pending.iter().map(|a| &*a.rule).collect();
    // CheckDegraded (a default) counts degraded as failing too; CheckDown does not.
    assert_eq!(names, ["CheckDegraded", "Payments"]);
    assert!(pending.iter().all(|a| a.notify == Notify::No));
    assert!(told(&drive.tick(219)).is_empty());
    let fired = drive.tick(220);
    let payments: Vec<_> = told(&fired)
        .into_iter()
        .filter(|a| &*a.rule == "Payments")
        .collect();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].labels["severity"], "warning");
}

#[test]
fn keep_firing_for_holds_a_cleared_alert() {
    let mut drive = Drive::new(concat!(
        "    rules:\n",
        "      - {name: CheckDown, on: probe, for: 1, resolve_after: 1, keep_firing_for: 1m}\n",
    ));
    assert_eq!(
        told(&drive.event(probe("health", Outcome::Down), 0)).len(),
        1
    );
    assert!(drive.event(probe("health", Outcome::Up), 10).is_empty());
    // Failing again within the minute: still the same firing alert, nothing told.
    assert!(drive.event(probe("health", Outcome::Down), 40).is_empty());
    assert!(drive.event(probe("health", Outcome::Up), 50).is_empty());
    assert!(drive.tick(109).is_empty());
    let resolved = drive.tick(110);
    assert_eq!(
        (resolved[0].state, resolved[0].notify),
        (AlertState::Resolved, Notify::Transition)
    );
}

/// Builds a stage on `dir` as state_dir, with `rules` written.
fn durable(dir: &Path, extra: &str) -> Drive {
    let options = format!(
        "    state_dir: {}\n    repeat_interval: 1h\n{extra}",
        dir.display()
    );
    Drive {
        stage: build(&options, Path::new("/"), false),
    }
}

#[test]
fn a_restart_restates_what_fires_and_goes_on_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = durable(dir.path(), "");
    for n in 0..3 {
        first.event(probe("health", Outcome::Down), n * 10);
    }
    let fingerprint =
        told(&first.event(log_match("oom", Severity::Critical, "OOM", 25), 25))[0].fingerprint;
    drop(first);
    assert!(dir.path().join("alerts.json").exists());

    // Restarted half an hour later.
    let mut second = durable(dir.path(), "");
    let restated = second.tick(1800);
    let mut states: Vec<_> = restated
        .iter()
        .map(|a| (&*a.rule, a.state, a.notify, a.started))
        .collect();
    states.sort_by_key(|s| (s.0, s.1));
    assert_eq!(
        states,
        [
            ("CheckDown", AlertState::Firing, Notify::Restated, at(20)),
            // The log alert went quiet while Aegis was down: restated, then resolved.
            ("LogPattern", AlertState::Firing, Notify::Restated, at(25)),
            (
                "LogPattern",
                AlertState::Resolved,
                Notify::Transition,
                at(25)
            ),
        ]
    );
    let log = restated.iter().find(|a| &*a.rule == "LogPattern").unwrap();
    assert_eq!(log.fingerprint, fingerprint);
    assert_eq!(log.annotations["summary"], "shop: Out of memory");
    assert!(second.tick(1801).is_empty());
    drop(second);

    let mut third = durable(dir.path(), "");
    let again = third.tick(1802);
    // The log alert resolved at 1800, less than 15 minutes ago: restated too.
    let resolved: Vec<_> = again
        .iter()
        .filter(|a| a.state == AlertState::Resolved)
        .collect();
    assert_eq!(resolved.len(), 1, "{again:?}");
    assert_eq!(
        (&*resolved[0].rule, resolved[0].notify),
        ("LogPattern", Notify::Restated)
    );
    // Still failing: nothing more; the repeat comes an hour after the firing, not
    // an hour after the restart.
    for n in 0..100 {
        assert!(
            third
                .event(probe("health", Outcome::Down), 1810 + n)
                .is_empty()
        );
    }
    assert!(third.tick(20 + 3599).is_empty());
    assert_eq!(third.tick(20 + 3600)[0].notify, Notify::Repeat);
    // Up twice: resolved, exactly once, though the counts began before the restarts.
    assert!(third.event(probe("health", Outcome::Up), 3700).is_empty());
    let resolved = third.event(probe("health", Outcome::Up), 3710);
    assert_eq!(told(&resolved).len(), 1);
    assert_eq!(
        (resolved[0].state, resolved[0].started),
        (AlertState::Resolved, at(20))
    );
    assert!(third.event(probe("health", Outcome::Up), 3720).is_empty());
}

#[test]
fn a_restored_alert_whose_rule_is_gone_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "    rules:\n      - {name: Payments, on: probe, for: 1}\n";
    let mut first = durable(dir.path(), rule);
    assert_eq!(
        told(&first.event(probe("payments", Outcome::Down), 0)).len(),
        1
    );
    drop(first);
    let mut second = durable(dir.path(), "");
    let restated = second.tick(60);
    let payments: Vec<_> = restated.iter().filter(|a| &*a.rule == "Payments").collect();
    assert_eq!(payments.len(), 1);
    assert_eq!(
        (payments[0].state, payments[0].notify, payments[0].ended),
        (AlertState::Resolved, Notify::Transition, Some(at(60)))
    );
}

#[test]
fn a_corrupt_state_file_is_set_aside_and_the_stage_starts_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("alerts.json"), b"{\"alerts\": [tru").unwrap();
    let mut drive = durable(dir.path(), "");
    assert!(drive.tick(0).is_empty());
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("alerts.json.corrupt-"), "{names:?}");
    // It works, and saves anew.
    drive.event(log_match("oom", Severity::Critical, "OOM", 1), 1);
    drop(drive);
    assert!(dir.path().join("alerts.json").exists());
}

#[test]
fn a_replay_runs_on_event_time_and_leaves_state_alone() {
    let dir = tempfile::tempdir().unwrap();
    let options = format!("    state_dir: {}\n", dir.path().display());
    let mut stage = build(&options, Path::new("/"), true);
    assert_eq!(stage.tick_interval(), None);
    let mut out = Vec::new();
    // Arrival time means nothing in a replay; the events' own times do.
    stage.on_event(
        &log_match("oom", Severity::Critical, "OOM", 0),
        at(99_999),
        &mut out,
    );
    stage.on_event(
        &log_match("disk", Severity::Warning, "disk", 301),
        at(99_999),
        &mut out,
    );
    let states: Vec<(String, AlertState, SystemTime)> = alerts(out)
        .into_iter()
        .map(|a| (a.labels["pattern"].clone(), a.state, a.at))
        .collect();
    assert_eq!(
        states,
        [
            ("oom".into(), AlertState::Firing, at(0)),
            ("oom".into(), AlertState::Resolved, at(301)),
            ("disk".into(), AlertState::Firing, at(301)),
        ]
    );
    drop(stage);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn relative_state_dirs_start_at_the_configuration_folder() {
    let dir = tempfile::tempdir().unwrap();
    let mut stage = build("    state_dir: state\n", dir.path(), false);
    let mut out = Vec::new();
    stage.on_event(
        &log_match("oom", Severity::Critical, "OOM", 0),
        at(0),
        &mut out,
    );
    stage.on_batch_end(at(0));
    drop(stage);
    assert!(dir.path().join("state/alerts.json").exists());
}

#[test]
fn keys_are_the_options() {
    let config = config("    state_dir: s\n    rules: [{name: A, on: probe}]\n");
    let Value::Mapping(fields) = serde_norway::to_value(&config).unwrap() else {
        panic!("not a map");
    };
    let names: Vec<&str> = fields.keys().map(|key| key.as_str().unwrap()).collect();
    assert_eq!(names, KEYS);
}

#[test]
fn every_configuration_error_is_reported_where_it_was_written() {
    let (config, errors) = decode(concat!(
        "    repeat_interval: 4x\n",                      // 3
        "    flap_damping: {max_changes: 1}\n",           // 4
        "    rules:\n",                                   // 5
        "      - name: A\n",                              // 6
        "        on: prob\n",                             // 7
        "      - name: B\n",                              // 8
        "        on: probe\n",                            // 9
        "        patterns: [oom]\n",                      // 10
        "        outcomes: [down, up, degradd]\n",        // 11
        "        for: 0\n",                               // 12
        "        labels: {service: x, team: y, 1x: z}\n", // 13
        "        annotations:\n",                         // 14
        "          summary: \"{service} {line}\"\n",      // 15
        "      - name: B\n",                              // 16
        "        on: log_match\n",                        // 17
        "      - name: C\n",                              // 18
        "        on: anomaly\n",                          // 19
        "        for: 3\n",                               // 20
        "      - name: D\n",                              // 21
        "        on: anomaly\n",                          // 22
        "        severty: INFO\n",                        // 23
        "        severity: FATAL\n",                      // 24
    ));
    // What decoded despite the errors is returned; the errors refuse the file.
    assert!(config.is_some());
    assert_eq!(
        errors,
        [
            "3:stages.alerts.repeat_interval invalid duration `4x`: unknown time unit \"x\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations); expected e.g. `500ms`, `30s`, `1m`",
            "4:stages.alerts.flap_damping.max_changes max_changes is 1; expected 2 or more changes (a firing and its resolve are two)",
            "7:stages.alerts.rules[0].on unknown value `prob`; expected one of `probe`, `log_match`, `anomaly`, `process` (did you mean `probe`?)",
            "10:stages.alerts.rules[1].patterns `patterns` does not apply to a `probe` rule; its own keys are `checks`, `outcomes`, `resolve_after`",
            "11:stages.alerts.rules[1].outcomes[1] outcome `up` is never a failure; expected `down` or `degraded`",
            "11:stages.alerts.rules[1].outcomes[2] unknown outcome `degradd`; expected `down` or `degraded` (did you mean `degraded`?)",
            "12:stages.alerts.rules[1].for for is 0; expected a number of events in a row (1 fires on the first) or a duration (`2m`)",
            "13:stages.alerts.rules[1].labels.service label `service` is set by Aegis; the labels it sets are `alertname`, `service`, `severity`, `check`, `pattern`, `signal`, `process`",
            "13:stages.alerts.rules[1].labels.1x `1x` cannot name a label; expected letters, digits and `_`, not starting with a digit or `__`",
            "15:stages.alerts.rules[1].annotations.summary placeholder `{line}` in template `{service} {line}` is a `log_match` rule's; a `probe` rule has `service`, `alertname`, `severity`, `count`, `check`, `kind`, `outcome`, `detail`, `attempts`, `latency`, `status`, `reason`",
            "16:stages.alerts.rules[2].name rule name `B` is already used by `stages.alerts.rules[1]`; names must be unique",
            "20:stages.alerts.rules[3].for for is 3 events, but an anomaly is one event when it begins; expected 1 or a duration it must last (`2m`)",
            "23:stages.alerts.rules[4].severty unknown key `severty`; expected one of `name`, `on`, `services`, `checks`, `outcomes`, `patterns`, `min_severity`, `signals`, `severity`, `for`, `resolve_after`, `keep_firing_for`, `quiet`, `labels`, `annotations` (did you mean `severity`?)",
            "24:stages.alerts.rules[4].severity unknown severity `FATAL`; expected one of `CRITICAL`, `WARNING`, `INFO` (any case)",
        ],
        "{errors:#?}"
    );
}
