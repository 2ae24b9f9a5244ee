//! Splits what a Nagios-style check plugin printed into its service output and its
//! performance data, following the Nagios Plugin Development Guidelines ("Plugin
//! Output", "Performance data") and the Nagios core docs on plugin output.
//!
//! The output is `TEXT OUTPUT | OPTIONAL PERFDATA` on the first line, then optional long
//! text lines. Perfdata may continue in the long output: the first `|` after the first
//! line starts more of it, and every line after that one is perfdata too. Items are
//! separated by whitespace and read `'label'=value[UOM];[warn];[crit];[min];[max]`:
//!
//! - a label may be quoted with `'` (then it may hold spaces and `=`, and `''` is a
//!   literal quote); an unquoted label ends at the first `=`; an empty label is bad;
//! - the value is a plain decimal number (`-`, `.`, digits; no exponent) followed by an
//!   optional unit of letters or `%`, kept as written; `U` (unknown) is skipped;
//! - warn and crit are Nagios ranges, kept as text; min and max are numbers, and one
//!   that does not parse is dropped without rejecting the item;
//! - trailing empty fields (`a=1;;;;`) are fine, a sixth non-empty field is not.
//!
//! A malformed item is skipped and counted, never fatal: a plugin's text is input from
//! a script we do not control, so this parser never panics and bounds what it keeps.
//! At most [`MAX_SAMPLES`] samples are kept (parsing stops there) and the service
//! output is cut to [`super::attempt::MAX_DETAIL_BYTES`].

use super::attempt::bounded_detail;
use crate::base::event::PerfSample;

/// At most this many samples are kept per output; the rest are not even parsed. A check
/// with more values than this is misconfigured, and each sample becomes a metric series.
pub const MAX_SAMPLES: usize = 64;

/// What a plugin printed, split the Nagios way.
#[derive(Debug, Default, PartialEq)]
pub struct PluginOutput {
    /// The first line's text before `|`, trimmed (the "service output").
    pub detail: String,
    /// Every well-formed perfdata item, from the first line after `|` and from the long
    /// output's perfdata (after the first `|` in the lines that follow), in order.
    pub perfdata: Vec<PerfSample>,
    /// How many perfdata items were malformed and skipped.
    pub malformed: usize,
}

/// Splits a plugin's standard output into service output and performance data.
///
/// Long text lines (those after the first line and before the long output's `|`) are
/// not kept: only the first line is the service output.
pub fn parse_plugin_output(stdout: &str) -> PluginOutput {
    let (first, long) = stdout.split_once('\n').unwrap_or((stdout, ""));
    let (text, first_perf) = first.split_once('|').unwrap_or((first, ""));
    let long_perf = long.split_once('|').map_or("", |(_, perf)| perf);

    let mut output = PluginOutput {
        detail: bounded_detail(text.trim()),
        ..PluginOutput::default()
    };
    // Lines are read one by one so an unclosed quote cannot swallow the next line.
    for line in std::iter::once(first_perf).chain(long_perf.lines()) {
        for item in (Items { rest: line }) {
            match item {
                Some(sample) => output.perfdata.push(sample),
                None => output.malformed += 1,
            }
            if output.perfdata.len() == MAX_SAMPLES {
                return output;
            }
        }
    }
    output
}

/// The perfdata items of one line, in order: `Some` for a well-formed one, `None` for
/// one that was skipped as malformed.
struct Items<'a> {
    rest: &'a str,
}

impl Iterator for Items<'_> {
    type Item = Option<PerfSample>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.rest.trim_start_matches(is_separator);
        if text.is_empty() {
            self.rest = text;
            return None;
        }
        let Some((label, after_label)) = take_label(text) else {
            // Resynchronise at the next separator, as if the item had no quotes.
            self.rest = text.find(is_separator).map_or("", |end| &text[end..]);
            return Some(None);
        };
        let end = after_label.find(is_separator).unwrap_or(after_label.len());
        self.rest = &after_label[end..];
        Some(parse_fields(label, &after_label[..end]))
    }
}

/// Items are separated by spaces; tabs and a stray `\r` (CRLF output) count as spaces.
fn is_separator(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// Reads the label and its `=` at the start of `text` (which starts an item); returns
/// the label and what follows the `=`, or `None` if there is no well-formed label.
fn take_label(text: &str) -> Option<(String, &str)> {
    let Some(quoted) = text.strip_prefix('\'') else {
        let word = &text[..text.find(is_separator).unwrap_or(text.len())];
        let (label, _) = word.split_once('=')?;
        return Some((label.to_owned(), &text[label.len() + 1..]));
    };
    let mut label = String::new();
    let mut rest = quoted;
    loop {
        let quote = rest.find('\'')?;
        label.push_str(&rest[..quote]);
        rest = &rest[quote + 1..];
        // `''` inside quotes is one literal quote; a single one closes the label.
        match rest.strip_prefix('\'') {
            Some(after) => {
                label.push('\'');
                rest = after;
            }
            None => return Some((label, rest.strip_prefix('=')?)),
        }
    }
}

/// Builds a sample from its label and `value[UOM];[warn];[crit];[min];[max]`; `None` if
/// it is malformed.
fn parse_fields(label: String, fields: &str) -> Option<PerfSample> {
    if label.is_empty() {
        return None;
    }
    let mut fields = fields.split(';');
    // `split` yields at least one field, possibly empty, which `number_prefix` rejects.
    let (value, unit) = number_prefix(fields.next()?)?;
    if !unit.chars().all(|c| c.is_alphabetic() || c == '%') {
        return None;
    }
    let mut text = || fields.next().filter(|f| !f.is_empty()).map(str::to_owned);
    let (warn, crit) = (text(), text());
    let mut number = || {
        fields
            .next()
            .and_then(number_prefix)
            .filter(|(_, r)| r.is_empty())
    };
    let (min, max) = (number().map(|(n, _)| n), number().map(|(n, _)| n));
    if fields.any(|f| !f.is_empty()) {
        return None;
    }
    Some(PerfSample {
        label,
        value,
        unit: unit.to_owned(),
        warn,
        crit,
        min,
        max,
    })
}

/// Reads a decimal number (`-`, digits, one `.`) at the start of `text`; returns it and
/// the rest of `text`, or `None` if there is no digit or the number is not finite.
///
/// Stricter than `f64::from_str`, which also takes `inf`, `NaN`, `+1` and `1e3`: the
/// guidelines allow only `[-0-9.]` in a value.
fn number_prefix(text: &str) -> Option<(f64, &str)> {
    let bytes = text.as_bytes();
    let mut end = usize::from(bytes.first() == Some(&b'-'));
    let (mut digits, mut dot) = (false, false);
    while let Some(&b) = bytes.get(end) {
        match b {
            b'0'..=b'9' => digits = true,
            b'.' if !dot => dot = true,
            _ => break,
        }
        end += 1;
    }
    if !digits {
        return None;
    }
    // Only ASCII was consumed, so `end` is a char boundary.
    let value: f64 = text[..end].parse().ok()?;
    // A few hundred digits overflow to infinity, which no metric sink can carry.
    value.is_finite().then_some((value, &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::probe::attempt::MAX_DETAIL_BYTES;

    fn sample(label: &str, value: f64, unit: &str) -> PerfSample {
        PerfSample {
            label: label.to_owned(),
            value,
            unit: unit.to_owned(),
            warn: None,
            crit: None,
            min: None,
            max: None,
        }
    }

    fn labels(output: &PluginOutput) -> Vec<&str> {
        output.perfdata.iter().map(|s| s.label.as_str()).collect()
    }

    #[test]
    fn check_tcp() {
        let output = parse_plugin_output(
            "TCP OK - 0.000 second response time on 127.0.0.1 port 18080\
             |time=0.000159s;;;0.000000;10.000000\n",
        );
        assert_eq!(
            output,
            PluginOutput {
                detail: "TCP OK - 0.000 second response time on 127.0.0.1 port 18080".into(),
                perfdata: vec![PerfSample {
                    min: Some(0.0),
                    max: Some(10.0),
                    ..sample("time", 0.000159, "s")
                }],
                malformed: 0,
            }
        );
    }

    #[test]
    fn check_http() {
        let output = parse_plugin_output(
            "HTTP OK: HTTP/1.1 200 OK - 145 bytes in 0.000 second response time \
             |time=0.000281s;0.500000;1.000000;0.000000;10.000000 size=145B;;;0;",
        );
        assert_eq!(
            output.detail,
            "HTTP OK: HTTP/1.1 200 OK - 145 bytes in 0.000 second response time"
        );
        assert_eq!(
            output.perfdata,
            [
                PerfSample {
                    warn: Some("0.500000".into()),
                    crit: Some("1.000000".into()),
                    min: Some(0.0),
                    max: Some(10.0),
                    ..sample("time", 0.000281, "s")
                },
                PerfSample {
                    min: Some(0.0),
                    ..sample("size", 145.0, "B")
                },
            ]
        );
        assert_eq!(output.malformed, 0);
    }

    #[test]
    fn check_disk_with_quoted_labels() {
        let output = parse_plugin_output(
            "DISK CRITICAL - free space: / 3% | '/'=9000MB;8000;9500;0;10000 'my disk'=12%;80;90",
        );
        assert_eq!(output.detail, "DISK CRITICAL - free space: / 3%");
        assert_eq!(
            output.perfdata,
            [
                PerfSample {
                    warn: Some("8000".into()),
                    crit: Some("9500".into()),
                    min: Some(0.0),
                    max: Some(10000.0),
                    ..sample("/", 9000.0, "MB")
                },
                PerfSample {
                    warn: Some("80".into()),
                    crit: Some("90".into()),
                    ..sample("my disk", 12.0, "%")
                },
            ]
        );
    }

    #[test]
    fn no_perfdata() {
        let text = "connect to address 127.0.0.1 and port 18081: Connection refused";
        let output = parse_plugin_output(text);
        assert_eq!(
            output,
            PluginOutput {
                detail: text.into(),
                ..PluginOutput::default()
            }
        );
    }

    #[test]
    fn empty_output() {
        assert_eq!(parse_plugin_output(""), PluginOutput::default());
        assert_eq!(parse_plugin_output(" \r\n"), PluginOutput::default());
    }

    #[test]
    fn unknown_and_garbage_values_are_counted_and_skipped() {
        let output = parse_plugin_output("OK | a=1 b=U c=x d=2");
        assert_eq!(output.detail, "OK");
        assert_eq!(
            output.perfdata,
            [sample("a", 1.0, ""), sample("d", 2.0, "")]
        );
        assert_eq!(output.malformed, 2);
    }

    #[test]
    fn long_output_perfdata() {
        let output = parse_plugin_output("OK - fine | a=1\nline two\nline three | b=2 c=3\nd=4");
        assert_eq!(output.detail, "OK - fine");
        assert_eq!(labels(&output), ["a", "b", "c", "d"]);
        assert_eq!(output.malformed, 0);

        // Long text without a `|` is text, even if it looks like perfdata.
        let output = parse_plugin_output("OK\nx=1\ny=2");
        assert_eq!((output.detail.as_str(), output.perfdata.len()), ("OK", 0));

        // Only the first `|` after line 1 splits; a later one is a malformed item.
        let output = parse_plugin_output("OK\ntext | a=1\nb=2 | c=3");
        assert_eq!(labels(&output), ["a", "b", "c"]);
        assert_eq!(output.malformed, 1);
    }

    #[test]
    fn quoted_labels() {
        let output = parse_plugin_output("OK | 'it''s a=b'=5ms 'x'''=1 ''''=2 'a b'=-0.5");
        assert_eq!(labels(&output), ["it's a=b", "x'", "'", "a b"]);
        assert_eq!(output.perfdata[0].unit, "ms");
        assert_eq!(output.perfdata[3].value, -0.5);
        assert_eq!(output.malformed, 0);
    }

    /// Reported from a hostile run: `'new''line'` must read `new'line`, wherever the
    /// item is (first line or long output, first or later item, unit or not).
    #[test]
    fn a_doubled_quote_in_a_quoted_label_is_one_quote() {
        let output =
            parse_plugin_output("OK|'new''line'=1 a=2 'new''line'=3s\nmore | 'new''line'=4;5;6");
        assert_eq!(labels(&output), ["new'line", "a", "new'line", "new'line"]);
        assert_eq!(output.malformed, 0);
    }

    #[test]
    fn spacing_crlf_and_trailing_semicolons() {
        let output =
            parse_plugin_output("OK  |  a=1;;;;  \tb=2c;;\r\nmore | c=.5;~:10;@10:20;\r\n");
        assert_eq!(output.detail, "OK");
        assert_eq!(
            output.perfdata,
            [
                sample("a", 1.0, ""),
                sample("b", 2.0, "c"),
                PerfSample {
                    warn: Some("~:10".into()),
                    crit: Some("@10:20".into()),
                    ..sample("c", 0.5, "")
                },
            ]
        );
        assert_eq!(output.malformed, 0);
    }

    #[test]
    fn units_are_kept_as_written() {
        let output = parse_plugin_output("OK | a=1us b=2KB c=3TB d=4µs e=5c f=6%");
        let units: Vec<_> = output.perfdata.iter().map(|s| s.unit.as_str()).collect();
        assert_eq!(units, ["us", "KB", "TB", "µs", "c", "%"]);
    }

    #[test]
    fn bad_min_and_max_are_dropped_not_fatal() {
        let output = parse_plugin_output("OK | a=1;;;zero;1e3 b=2;;;-5;7.5GB");
        assert_eq!(
            output.perfdata,
            [
                sample("a", 1.0, ""),
                PerfSample {
                    min: Some(-5.0),
                    ..sample("b", 2.0, "")
                }
            ]
        );
        assert_eq!(output.malformed, 0);
    }

    #[test]
    fn malformed_items() {
        let items = [
            "=1",            // empty label
            "''=1",          // empty quoted label
            "a",             // no `=`
            "a=",            // no value
            "a=-",           // sign without digits
            "a=.",           // dot without digits
            "a=1.2.3",       // not a number
            "a=1e3",         // no exponents
            "a=inf",         // not a decimal number
            "a=1s2",         // unit is not letters
            "a=1;2;3;4;5;6", // a sixth field
            "'a'b=1",        // text after the closing quote
            "a=b=1",         // unquoted label ends at the first `=`
        ];
        for item in items {
            let output = parse_plugin_output(&format!("OK | {item} ok=1"));
            assert_eq!(labels(&output), ["ok"], "{item}");
            assert_eq!(output.malformed, 1, "{item}");
        }
        let huge = format!("OK | a={}", "9".repeat(400));
        assert_eq!(parse_plugin_output(&huge).malformed, 1);
    }

    #[test]
    fn unclosed_quote_skips_to_the_next_space_and_stops_at_the_line_end() {
        let output = parse_plugin_output("OK | 'a=1 b=2\nmore | 'c d=3\ne'=4");
        assert_eq!(labels(&output), ["b", "d", "e'"]);
        assert_eq!(output.malformed, 2, "`'a=1` and `'c`");

        // A space after the closing quote ends the item there: two malformed items.
        assert_eq!(parse_plugin_output("OK | 'a' =1 ok=1").malformed, 2);
    }

    #[test]
    fn at_most_64_samples_are_kept() {
        let items: Vec<String> = (0..100).map(|i| format!("m{i}={i}")).collect();
        let output = parse_plugin_output(&format!("OK | {} bad=U", items.join(" ")));
        assert_eq!(output.perfdata.len(), MAX_SAMPLES);
        assert_eq!(output.perfdata[63].label, "m63");
        assert_eq!(output.malformed, 0, "items past the bound are not parsed");
    }

    #[test]
    fn long_detail_is_cut_at_a_char_boundary() {
        let exact = "a".repeat(MAX_DETAIL_BYTES);
        assert_eq!(parse_plugin_output(&exact).detail, exact);

        // 3-byte chars: 1021 bytes of room is not a multiple of 3.
        let text = "€".repeat(400);
        let detail = parse_plugin_output(&format!("{text} | a=1")).detail;
        assert!(detail.len() <= MAX_DETAIL_BYTES);
        assert!(detail.ends_with('…'));
        assert_eq!(detail.trim_end_matches('…').chars().count(), 340);
    }

    /// A linear congruential generator (Knuth's MMIX constants): enough to vary the input,
    /// reproducible, and no dependency.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // The high bits of an LCG are the random ones.
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    #[test]
    fn never_panics_on_garbage() {
        let pieces = [
            "'", "''", "=", ";", "|", " ", "  ", "\t", "\n", "\r\n", "\r", "-", ".", "0", "7",
            "12.5", "U", "%", "ms", "a", "label", "é", "€", "𝄞", "\u{0}", "~:", "@", "…",
        ];
        let mut rng = Lcg(0x5eed);
        for _ in 0..20_000 {
            let len = rng.below(60);
            let input: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            let output = parse_plugin_output(&input);
            assert!(output.detail.len() <= MAX_DETAIL_BYTES, "{input:?}");
            assert!(output.perfdata.len() <= MAX_SAMPLES, "{input:?}");
            for s in &output.perfdata {
                assert!(!s.label.is_empty() && s.value.is_finite(), "{input:?}");
            }
        }
        // Long enough to hit both bounds, with multibyte chars around the cut.
        for _ in 0..200 {
            let len = 300 + rng.below(1500);
            let input: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            let output = parse_plugin_output(&input);
            assert!(output.detail.len() <= MAX_DETAIL_BYTES, "{input:?}");
            assert!(output.perfdata.len() <= MAX_SAMPLES, "{input:?}");
        }
    }
}
