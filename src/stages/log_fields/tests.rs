//! The `log_fields` stage end to end: configurations decoded from YAML, blocks of lines
//! in, `Samples` out; and every configuration error, by line and key path.

use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::base::diagnostics::testing::{decoded, located};

/// The node's place in the test configurations.
fn node() -> KeyPath {
    KeyPath::root().key("stages").key("shop")
}

/// `options` (indented as under `stages.shop`) decoded, with every problem shown as
/// `line:key.path message`.
fn decode(options: &str) -> (Option<LogFieldsConfig>, Vec<String>) {
    let text = format!("stages:\n  shop:\n{options}");
    let (config, errors) = decoded(&text, |value, diag| {
        LogFieldsConfig::decode(&value["stages"]["shop"], &node(), diag)
    });
    (config, located(&errors))
}

fn stage(options: &str) -> LogFields {
    let (config, errors) = decode(options);
    assert_eq!(errors, Vec::<String>::new());
    LogFields::new(&config.unwrap())
}

fn block(text: &str) -> Event {
    Event::LogLines(LogLines {
        service: "shop".into(),
        path: "/var/log/shop/access.log".into(),
        at: UNIX_EPOCH + Duration::from_secs(7),
        text: bytes::Bytes::copy_from_slice(text.as_bytes()),
        lines: text.lines().count() as u32,
        cut: 0,
        lossy: 0,
    })
}

/// What the stage emits for `text`: the one `Samples` event, or `None`.
fn samples(stage: &mut LogFields, text: &str) -> Option<Samples> {
    let mut out = Vec::new();
    stage.on_event(&block(text), UNIX_EPOCH, &mut out);
    assert!(out.len() <= 1, "{out:?}");
    out.pop().map(|event| match event {
        Event::Samples(samples) => samples,
        other => panic!("unexpected {other:?}"),
    })
}

fn request(secs: Option<u64>, error: bool, duration_ms: Option<u64>) -> Sample {
    Sample {
        time: secs.map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
        measure: Measure::Request {
            error,
            duration: duration_ms.map(Duration::from_millis),
        },
    }
}

#[test]
fn a_combined_block_gives_one_event_with_every_request_in_line_order() {
    let mut stage = stage("    requests: {format: combined}\n");
    let text = concat!(
        r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 512 "-" "curl/8.0" 0.250"#,
        "\n",
        r#"1.2.3.4 - - [10/Oct/2000:13:55:37 -0700] "GET /x HTTP/1.1" 503 0"#,
        "\r\n",
        "upstream timed out\n",
        r#"1.2.3.4 - - [10/Oct/2000:13:55:38 -0700] "-" - 0"#,
        "\n",
    );
    let samples = samples(&mut stage, text).unwrap();
    assert_eq!(
        (&*samples.service, samples.at),
        ("shop", UNIX_EPOCH + Duration::from_secs(7))
    );
    assert_eq!(
        samples.items,
        [
            request(Some(971_211_336), false, Some(250)),
            request(Some(971_211_337), true, None),
        ]
    );
    assert_eq!(samples.unparsed, 2);
}

#[test]
fn errors_are_what_the_list_says() {
    let mut stage = stage(
        "    requests:\n      format: regex\n      pattern: 'status=(?P<status>\\d+)'\n      errors: [429, 500-502, 4xx]\n",
    );
    let lines = ["200", "429", "404", "500", "502", "503"]
        .map(|status| format!("status={status}\n"))
        .concat();
    let errors: Vec<bool> = (samples(&mut stage, &lines).unwrap().items.iter())
        .map(|sample| match sample.measure {
            Measure::Request { error, .. } => error,
            _ => panic!("not a request"),
        })
        .collect();
    assert_eq!(errors, [false, true, true, true, true, false]);
}

#[test]
fn json_with_field_names_and_a_unit() {
    let mut stage = stage(concat!(
        "    requests:\n",
        "      format: json\n",
        "      duration_unit: ms\n",
        "      fields: {status: code, duration: took}\n",
    ));
    let text = concat!(
        r#"{"time":"2014-07-01T00:00:00Z","code":500,"took":20}"#,
        "\n",
        r#"{"code":"201","user":{"id":1}}"#,
        "\n",
    );
    let samples = samples(&mut stage, text).unwrap();
    assert_eq!(
        samples.items,
        [
            request(Some(1_404_172_800), true, Some(20)),
            request(None, false, None)
        ]
    );
    assert_eq!(samples.unparsed, 0);
}

#[test]
fn a_custom_signal_with_its_time() {
    let mut stage = stage(concat!(
        "    signals:\n",
        "      - name: requests_total\n",
        "        pattern: '^(?P<time>\\S+ \\S+) value=(?P<value>\\d+)'\n",
    ));
    let samples = samples(&mut stage, "2014-07-01 00:00:00 value=10844\nnoise\n").unwrap();
    assert_eq!(
        samples.items,
        [Sample {
            time: Some(UNIX_EPOCH + Duration::from_secs(1_404_172_800)),
            measure: Measure::Value {
                signal: "requests_total".into(),
                value: 10844.0
            },
        }]
    );
    // Signals alone leave lines that match nothing uncounted.
    assert_eq!(samples.unparsed, 0);
    assert!(samples_of_nothing(&mut stage, "noise\nmore noise\n"));
}

fn samples_of_nothing(stage: &mut LogFields, text: &str) -> bool {
    samples(stage, text).is_none()
}

#[test]
fn a_request_line_may_carry_signals_and_they_share_one_name() {
    let mut stage = stage(concat!(
        "    requests:\n",
        "      format: regex\n",
        "      pattern: 'status=(?P<status>\\d+) took=(?P<duration>\\S+)'\n",
        "    signals:\n",
        "      - name: queue_depth\n",
        "        pattern: 'queue_depth=(?P<value>\\d+(?:\\.\\d+)?)'\n",
    ));
    let text = "status=200 took=0.5 queue_depth=3\nqueue_depth=4.5\nqueue_depth=full\n";
    let samples = samples(&mut stage, text).unwrap();
    let value = |value| Sample {
        time: None,
        measure: Measure::Value {
            signal: "queue_depth".into(),
            value,
        },
    };
    assert_eq!(
        samples.items,
        [request(None, false, Some(500)), value(3.0), value(4.5)]
    );
    assert_eq!(samples.unparsed, 2);
    let names: Vec<&Arc<str>> = (samples.items.iter())
        .filter_map(|sample| match &sample.measure {
            Measure::Value { signal, .. } => Some(signal),
            _ => None,
        })
        .collect();
    assert!(Arc::ptr_eq(names[0], names[1]));
}

#[test]
fn the_configuration_expands_with_its_defaults() {
    let (config, _) = decode("    requests: {format: combined}\n");
    let expanded = serde_norway::to_string(&config.unwrap()).unwrap();
    assert_eq!(
        expanded,
        "requests:\n  format: combined\n  duration_unit: s\n  errors:\n  - 5xx\n"
    );
    let (config, _) = decode(concat!(
        "    requests: {format: json, errors: [429, 500-599], time_format: '%Y %H'}\n",
        "    signals: [{name: q, pattern: 'q=(?P<value>\\d+)', time_format: epoch_ms}]\n",
    ));
    let expanded = serde_norway::to_string(&config.unwrap()).unwrap();
    assert_eq!(
        expanded,
        "requests:\n  format: json\n  duration_unit: s\n  errors:\n  - 429\n  - 500-599\n  time_format: '%Y %H'\nsignals:\n- name: q\n  pattern: q=(?P<value>\\d+)\n  time_format: epoch_ms\n"
    );
}

#[test]
fn neither_requests_nor_signals_is_an_error_at_the_node() {
    let (_, errors) = decode("    {}\n");
    assert_eq!(
        errors,
        [
            "3:stages.shop neither `requests` nor `signals`; a log_fields stage needs at least one of them"
        ]
    );
}

#[test]
fn a_misspelt_format_gets_a_suggestion() {
    let (_, errors) = decode("    requests:\n      format: combind\n");
    assert_eq!(
        errors,
        [
            "4:stages.shop.requests.format unknown format `combind`; expected one of `combined`, `json`, `regex` (did you mean `combined`?)"
        ]
    );
}

#[test]
fn a_regex_needs_a_pattern_with_a_status_capture() {
    let (_, errors) =
        decode("    requests:\n      format: regex\n      pattern: 'code=(?P<code>\\d+)'\n");
    assert_eq!(
        errors,
        [
            r"5:stages.shop.requests.pattern pattern `code=(?P<code>\d+)` has no `status` capture; name the status's part, e.g. `status=(?P<status>\d{3})`"
        ]
    );
    let (_, errors) = decode("    requests:\n      format: regex\n");
    assert_eq!(
        errors,
        [
            r"3:stages.shop.requests missing key `pattern`: the `regex` format needs one, with a `status` capture, e.g. `status=(?P<status>\d{3})`"
        ]
    );
    let (_, errors) =
        decode("    requests:\n      format: combined\n      pattern: 'x'\n      fields: {}\n");
    assert_eq!(
        errors,
        [
            "5:stages.shop.requests.pattern `pattern` is for the `regex` format, and this one is `combined`; leave it out",
            "6:stages.shop.requests.fields `fields` is for the `json` format, and this one is `combined`; leave it out",
        ]
    );
}

#[test]
fn every_bad_errors_entry_is_named() {
    let (_, errors) =
        decode("    requests:\n      format: combined\n      errors: [5xx, 6xx, 429, 500-]\n");
    assert_eq!(
        errors,
        [
            "5:stages.shop.requests.errors[1] expected a status class such as `5xx`, a code such as `429` or a range such as `500-599`, found `6xx`",
            "5:stages.shop.requests.errors[3] expected a status class such as `5xx`, a code such as `429` or a range such as `500-599`, found `500-`",
        ]
    );
}

#[test]
fn a_bad_time_format_is_refused() {
    let (_, errors) =
        decode("    requests:\n      format: json\n      time_format: '%Y-%m-%d %Q'\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "5:stages.shop.requests.time_format `%Y-%m-%d %Q` is not a valid strftime format"
        ),
        "{errors:?}"
    );
}

#[test]
fn signal_names_are_checked() {
    let (_, errors) = decode(concat!(
        "    signals:\n",
        "      - {name: latency, pattern: 'l=(?P<value>\\d+)'}\n",
        "      - {name: Queue, pattern: 'q=(?P<value>\\d+)'}\n",
        "      - {name: depth, pattern: 'd=(?P<value>\\d+)'}\n",
        "      - {name: depth, pattern: 'd=(\\d+)'}\n",
    ));
    assert_eq!(
        errors,
        [
            "4:stages.shop.signals[0].name signal name `latency` is a built-in signal's (`latency`, `error_rate`, `throughput`); give the custom signal a name of its own, e.g. `queue_depth`",
            "5:stages.shop.signals[1].name signal name `Queue` is not a valid name; use lower-case letters, digits and `_`, starting with a letter, e.g. `queue_depth`",
            "7:stages.shop.signals[3].name signal name `depth` is already used by `stages.shop.signals[2]`; names must be unique",
            r"7:stages.shop.signals[3].pattern pattern `d=(\d+)` has no `value` capture; name the number's part, e.g. `queue_depth=(?P<value>\d+)`",
        ]
    );
}
