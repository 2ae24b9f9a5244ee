//! Request logs, one request per line: reading a line's status, duration and time in
//! the three formats ([`RequestParser`]), and which statuses count as errors
//! ([`StatusMatch`], [`ErrorCodes`]).
//!
//! The combined format is read by a hand-written scan over the line's bytes, and JSON
//! through a serde visitor that looks at the configured fields and skips the rest:
//! neither allocates per line, so the stage keeps up with a busy access log. A line that
//! is not what the format describes, or whose time does not parse, gives `None`; the
//! stage counts it. What a request is for (its method, path, client) is not read.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use regex::bytes::{CaptureLocations, Regex};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::time::TimeFormat;
use super::{DurationUnit, JsonFields};

/// What one line says about its request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    pub status: u16,
    pub duration: Option<Duration>,
    pub time: Option<SystemTime>,
}

/// Reads requests from lines, in one of the configured formats.
pub enum RequestParser {
    Combined(CombinedParser),
    Json(JsonParser),
    Regex(RegexParser),
}

impl RequestParser {
    /// The request `line` describes, or `None` if it is not one (or its time is bad).
    pub fn parse(&mut self, line: &[u8]) -> Option<Request> {
        match self {
            RequestParser::Combined(parser) => parser.parse(line),
            RequestParser::Json(parser) => parser.parse(line),
            RequestParser::Regex(parser) => parser.parse(line),
        }
    }
}

/// An HTTP status: three digits, 100 to 999.
fn status(text: &[u8]) -> Option<u16> {
    match *text {
        [a @ b'1'..=b'9', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// A duration written as a number of `unit`s: `Ok(None)` for `-` or nothing (nginx's
/// way of saying there is none), `Err` for anything else that is not a number.
fn duration(text: &[u8], unit: DurationUnit) -> Result<Option<Duration>, ()> {
    if text.is_empty() || text == b"-" {
        return Ok(None);
    }
    let number: f64 = std::str::from_utf8(text)
        .map_err(drop)?
        .parse()
        .map_err(drop)?;
    unit.duration(number).map(Some).ok_or(())
}

/// The nginx/Apache combined log format, or the common one (without referer and user
/// agent), with an optional request time as the last token (nginx's
/// `$request_time`, bare or as `rt=` / `request_time=`).
pub struct CombinedParser {
    pub time_format: TimeFormat,
    pub unit: DurationUnit,
}

impl CombinedParser {
    fn parse(&self, line: &[u8]) -> Option<Request> {
        // `host ident user [time] "request" status bytes "referer" "agent" rest`
        let open = memchr::memchr(b'[', line)?;
        let close = open + 1 + memchr::memchr(b']', &line[open + 1..])?;
        let time = self.time_format.parse(&line[open + 1..close])?;
        let rest = line[close + 1..].strip_prefix(b" ")?;
        let rest = after_quoted(rest)?;
        let (status_token, rest) = token(rest.strip_prefix(b" ")?);
        let status = status(status_token)?;
        let (bytes, mut rest) = token(rest);
        if !(bytes.is_empty() || bytes == b"-" || bytes.iter().all(u8::is_ascii_digit)) {
            return None;
        }
        // Referer and user agent, when the format has them.
        for _ in 0..2 {
            let trimmed = trim_start(rest);
            if trimmed.first() != Some(&b'"') {
                break;
            }
            rest = after_quoted(trimmed)?;
        }
        Some(Request {
            status,
            duration: request_time(rest, self.unit),
            time: Some(time),
        })
    }
}

/// The request time written as the last token of what follows the standard fields,
/// if that token is one; other trailing fields are allowed and ignored.
fn request_time(rest: &[u8], unit: DurationUnit) -> Option<Duration> {
    let rest = trim_end(rest);
    let last = match memchr::memrchr(b' ', rest) {
        Some(space) => &rest[space + 1..],
        None => rest,
    };
    let number = last
        .strip_prefix(b"rt=")
        .or_else(|| last.strip_prefix(b"request_time="))
        .unwrap_or(last);
    duration(number, unit).ok().flatten()
}

/// What follows the quoted string `text` starts with (`\"` inside it is a quote, not
/// its end); `None` if `text` does not start with one or it is not closed.
fn after_quoted(text: &[u8]) -> Option<&[u8]> {
    let mut at = 1;
    if text.first() != Some(&b'"') {
        return None;
    }
    loop {
        at += memchr::memchr2(b'"', b'\\', text.get(at..)?)?;
        if text[at] == b'"' {
            return Some(&text[at + 1..]);
        }
        at += 2;
    }
}

/// The first space-separated token of `text` and what follows it.
fn token(text: &[u8]) -> (&[u8], &[u8]) {
    let text = trim_start(text);
    let end = memchr::memchr(b' ', text).unwrap_or(text.len());
    text.split_at(end)
}

fn trim_start(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|&b| b != b' ' && b != b'\t');
    &text[start.unwrap_or(text.len())..]
}

fn trim_end(text: &[u8]) -> &[u8] {
    let end = text.iter().rposition(|&b| b != b' ' && b != b'\t');
    &text[..end.map_or(0, |end| end + 1)]
}

/// One JSON object per line; the configured fields are read, the others skipped
/// unread (serde's `IgnoredAny`), so no value tree is built.
pub struct JsonParser {
    pub fields: JsonFields,
    pub time_format: TimeFormat,
    pub unit: DurationUnit,
}

impl JsonParser {
    fn parse(&self, line: &[u8]) -> Option<Request> {
        let mut deserializer = serde_json::Deserializer::from_slice(line);
        let found = (&mut deserializer)
            .deserialize_map(LineVisitor(self))
            .ok()?;
        deserializer.end().ok()?;
        Some(Request {
            status: found.status?,
            duration: found.duration,
            time: found.time,
        })
    }
}

/// The fields of one line that matter.
#[derive(Default)]
struct Found {
    status: Option<u16>,
    duration: Option<Duration>,
    time: Option<SystemTime>,
}

/// Which configured field a key is.
enum Field {
    Status,
    Duration,
    Time,
    Other,
}

struct LineVisitor<'p>(&'p JsonParser);

impl<'de> Visitor<'de> for LineVisitor<'_> {
    type Value = Found;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Found, A::Error> {
        let parser = self.0;
        let mut found = Found::default();
        // A field present with a value that is not what it should be makes the line
        // unparsed: the visitors below return an error, which ends the walk.
        while let Some(field) = map.next_key_seed(KeySeed(&parser.fields))? {
            match field {
                Field::Status => found.status = map.next_value_seed(StatusSeed)?,
                Field::Duration => {
                    found.duration = map.next_value_seed(DurationSeed(parser.unit))?
                }
                Field::Time => found.time = map.next_value_seed(TimeSeed(&parser.time_format))?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(found)
    }
}

/// Names a key without copying it.
struct KeySeed<'f>(&'f JsonFields);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Field;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Field, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Field;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Field, E> {
        let fields = self.0;
        Ok(if key == fields.status {
            Field::Status
        } else if key == fields.duration {
            Field::Duration
        } else if key == fields.time {
            Field::Time
        } else {
            Field::Other
        })
    }
}

/// A status as a number or a string of digits.
struct StatusSeed;

impl<'de> DeserializeSeed<'de> for StatusSeed {
    type Value = Option<u16>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Option<u16>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for StatusSeed {
    type Value = Option<u16>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an HTTP status")
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Option<u16>, E> {
        match u16::try_from(number) {
            Ok(code @ 100..=999) => Ok(Some(code)),
            _ => Err(E::invalid_value(de::Unexpected::Unsigned(number), &self)),
        }
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Option<u16>, E> {
        Err(E::invalid_value(de::Unexpected::Signed(number), &self))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<u16>, E> {
        status(text.as_bytes())
            .map(Some)
            .ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
    }
}

/// A duration as a number or a numeric string of the configured unit; `null` or `-` is
/// none.
struct DurationSeed(DurationUnit);

impl<'de> DeserializeSeed<'de> for DurationSeed {
    type Value = Option<Duration>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for DurationSeed {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration")
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Option<Duration>, E> {
        match self.0.duration(number) {
            Some(duration) => Ok(Some(duration)),
            None => Err(E::invalid_value(de::Unexpected::Float(number), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Option<Duration>, E> {
        self.visit_f64(number as f64)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Option<Duration>, E> {
        self.visit_f64(number as f64)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<Duration>, E> {
        duration(text.as_bytes(), self.0)
            .map_err(|()| E::invalid_value(de::Unexpected::Str(text), &self))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<Duration>, E> {
        Ok(None)
    }
}

/// A time as a string in the configured format, or a number of epoch seconds
/// (milliseconds with `epoch_ms`); `null` is none.
struct TimeSeed<'t>(&'t TimeFormat);

impl<'de> DeserializeSeed<'de> for TimeSeed<'_> {
    type Value = Option<SystemTime>;

    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Option<SystemTime>, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl Visitor<'_> for TimeSeed<'_> {
    type Value = Option<SystemTime>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a time ({})", self.0)
    }

    fn visit_f64<E: de::Error>(self, number: f64) -> Result<Option<SystemTime>, E> {
        match self.0.from_number(number) {
            Some(time) => Ok(Some(time)),
            None => Err(E::invalid_value(de::Unexpected::Float(number), &self)),
        }
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<Option<SystemTime>, E> {
        self.visit_f64(number as f64)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<Option<SystemTime>, E> {
        self.visit_f64(number as f64)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Option<SystemTime>, E> {
        match self.0.parse(text.as_bytes()) {
            Some(time) => Ok(Some(time)),
            None => Err(E::invalid_value(de::Unexpected::Str(text), &self)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Option<SystemTime>, E> {
        Ok(None)
    }
}

/// The user's regex: `status` is required, `duration` and `time` are read when the
/// pattern has them and they took part in the match.
pub struct RegexParser {
    regex: Regex,
    /// Reused from line to line: the regex writes each line's capture places here.
    locations: CaptureLocations,
    status: usize,
    duration: Option<usize>,
    time: Option<usize>,
    time_format: TimeFormat,
    unit: DurationUnit,
}

impl RegexParser {
    /// A parser for `regex`, or `None` if it has no `status` capture.
    pub fn new(regex: &Regex, time_format: TimeFormat, unit: DurationUnit) -> Option<RegexParser> {
        Some(RegexParser {
            regex: regex.clone(),
            locations: regex.capture_locations(),
            status: capture_index(regex, "status")?,
            duration: capture_index(regex, "duration"),
            time: capture_index(regex, "time"),
            time_format,
            unit,
        })
    }

    fn parse(&mut self, line: &[u8]) -> Option<Request> {
        self.regex.captures_read(&mut self.locations, line)?;
        let text = |index: Option<usize>| {
            let (start, end) = self.locations.get(index?)?;
            Some(&line[start..end])
        };
        let status = status(text(Some(self.status))?)?;
        let duration = match text(self.duration) {
            Some(written) => duration(written, self.unit).ok()?,
            None => None,
        };
        let time = match text(self.time) {
            Some(written) => Some(self.time_format.parse(written)?),
            None => None,
        };
        Some(Request {
            status,
            duration,
            time,
        })
    }
}

/// The index of the capture group called `name`, if `regex` has one.
pub fn capture_index(regex: &Regex, name: &str) -> Option<usize> {
    regex
        .capture_names()
        .position(|capture| capture == Some(name))
}

/// One entry of `errors`: a class (`5xx`), a code (`429`) or a range (`500-599`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    Class(u8),
    Code(u16),
    Range(u16, u16),
}

impl StatusMatch {
    /// Server errors: the default of `errors`.
    pub const DEFAULT: StatusMatch = StatusMatch::Class(5);

    fn codes(self) -> std::ops::RangeInclusive<u16> {
        match self {
            StatusMatch::Class(class) => u16::from(class) * 100..=u16::from(class) * 100 + 99,
            StatusMatch::Code(code) => code..=code,
            StatusMatch::Range(low, high) => low..=high,
        }
    }
}

impl fmt::Display for StatusMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusMatch::Class(class) => write!(f, "{class}xx"),
            StatusMatch::Code(code) => write!(f, "{code}"),
            StatusMatch::Range(low, high) => write!(f, "{low}-{high}"),
        }
    }
}

impl FromStr for StatusMatch {
    type Err = String;

    fn from_str(text: &str) -> Result<StatusMatch, String> {
        let code = |text: &str| status(text.trim().as_bytes());
        let found = if let Some(class) = text.strip_suffix("xx").or(text.strip_suffix("XX")) {
            match class.as_bytes() {
                [digit @ b'1'..=b'5'] => Some(StatusMatch::Class(digit - b'0')),
                _ => None,
            }
        } else if let Some((low, high)) = text.split_once('-') {
            match (code(low), code(high)) {
                (Some(low), Some(high)) if low <= high => Some(StatusMatch::Range(low, high)),
                _ => None,
            }
        } else {
            code(text).map(StatusMatch::Code)
        };
        found.ok_or_else(|| {
            format!("expected a status class such as `5xx`, a code such as `429` or a range such as `500-599`, found `{text}`")
        })
    }
}

impl<'de> Deserialize<'de> for StatusMatch {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StatusMatchVisitor)
    }
}

/// YAML writes `429` as a number and `5xx` as a string: both are taken.
struct StatusMatchVisitor;

impl Visitor<'_> for StatusMatchVisitor {
    type Value = StatusMatch;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a status class such as `5xx`, a code such as `429` or a range such as `500-599`",
        )
    }

    fn visit_u64<E: de::Error>(self, number: u64) -> Result<StatusMatch, E> {
        number.to_string().parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, number: i64) -> Result<StatusMatch, E> {
        number.to_string().parse().map_err(E::custom)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<StatusMatch, E> {
        text.parse().map_err(E::custom)
    }
}

impl Serialize for StatusMatch {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            StatusMatch::Code(code) => serializer.serialize_u16(*code),
            other => serializer.collect_str(other),
        }
    }
}

/// The statuses that count as errors, one bit per code, for a test per line that
/// costs the same however many entries `errors` has.
pub struct ErrorCodes([u64; 16]);

impl ErrorCodes {
    pub fn new(matches: &[StatusMatch]) -> ErrorCodes {
        let mut bits = [0u64; 16];
        for code in matches.iter().flat_map(|m| m.codes()) {
            bits[usize::from(code / 64)] |= 1 << (code % 64);
        }
        ErrorCodes(bits)
    }

    pub fn contains(&self, status: u16) -> bool {
        self.0
            .get(usize::from(status / 64))
            .is_some_and(|word| word & (1 << (status % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    /// 2000-10-10T20:55:36Z, the time of the Apache documentation's example line.
    fn apache_time() -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::from_secs(971_211_336))
    }

    fn combined(line: &str) -> Option<Request> {
        let parser = CombinedParser {
            time_format: TimeFormat::Clf,
            unit: DurationUnit::S,
        };
        parser.parse(line.as_bytes())
    }

    const APACHE: &str = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;

    #[test]
    fn combined_without_request_time() {
        assert_eq!(
            combined(APACHE),
            Some(Request {
                status: 200,
                duration: None,
                time: apache_time()
            })
        );
    }

    #[test]
    fn combined_with_request_time_bare_or_named() {
        for tail in [
            " 0.123",
            " rt=0.123",
            " request_time=0.123  ",
            " \"-\" 0.123",
        ] {
            let request = combined(&format!("{APACHE}{tail}")).unwrap();
            assert_eq!(request.duration, Some(Duration::from_millis(123)), "{tail}");
        }
        assert_eq!(
            combined(&format!("{APACHE} upstream")).unwrap().duration,
            None
        );
    }

    #[test]
    fn common_format_with_and_without_request_time() {
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "POST /cart HTTP/1.1" 503 -"#;
        let request = combined(line).unwrap();
        assert_eq!((request.status, request.duration), (503, None));
        assert_eq!(request.time, apache_time());
        let request = combined(&format!("{line} 1.5")).unwrap();
        assert_eq!(request.duration, Some(Duration::from_millis(1500)));
        // The size is not taken for a request time.
        let line = r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "POST /cart HTTP/1.1" 503 2326"#;
        let request = combined(line).unwrap();
        assert_eq!(request.duration, None);
    }

    #[test]
    fn escaped_quotes_stay_inside_the_request() {
        let line = r#"::1 - - [10/Oct/2000:13:55:36 -0700] "GET /a\"b\\ \" 404 HTTP/1.1" 404 0 "-" "curl \"x\"" 0.002"#;
        let request = combined(line).unwrap();
        assert_eq!(request.status, 404);
        assert_eq!(request.duration, Some(Duration::from_millis(2)));
    }

    #[test]
    fn lines_that_are_not_combined_are_refused() {
        for line in [
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" - 0"#,
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 20 0"#,
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1 200 0"#,
            r#"10.0.0.1 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.1" 200 12kb"#,
            r#"10.0.0.1 - - [yesterday] "GET / HTTP/1.1" 200 0"#,
            "java.lang.NullPointerException",
            "",
        ] {
            assert_eq!(combined(line), None, "{line}");
        }
    }

    fn json(fields: JsonFields, line: &str) -> Option<Request> {
        let parser = JsonParser {
            fields,
            time_format: TimeFormat::Auto,
            unit: DurationUnit::Ms,
        };
        parser.parse(line.as_bytes())
    }

    #[test]
    fn json_reads_the_configured_fields_and_skips_the_rest() {
        let fields = JsonFields {
            status: "code".into(),
            duration: "took_ms".into(),
            time: "ts".into(),
        };
        let line = r#"{"ts":"2014-07-01T00:00:00Z","path":"/a","nested":{"code":1},"code":503,"took_ms":"12.5"}"#;
        assert_eq!(
            json(fields.clone(), line),
            Some(Request {
                status: 503,
                duration: Some(Duration::from_micros(12_500)),
                time: Some(UNIX_EPOCH + Duration::from_secs(1_404_172_800)),
            })
        );
        let line = r#"{"code":"200","ts":1404172800.5}"#;
        assert_eq!(
            json(fields.clone(), line),
            Some(Request {
                status: 200,
                duration: None,
                time: Some(UNIX_EPOCH + Duration::from_millis(1_404_172_800_500)),
            })
        );
        for bad in [
            r#"{"code":"OK"}"#,
            r#"{"code":200,"took_ms":"slow"}"#,
            r#"{"code":200,"ts":"yesterday"}"#,
            r#"{"status":200}"#,
            r#"{"code":200} trailing"#,
            r#"[200]"#,
            "not json",
        ] {
            assert_eq!(json(fields.clone(), bad), None, "{bad}");
        }
    }

    #[test]
    fn json_default_fields() {
        let line = r#"{"status":404,"duration":3,"msg":"gone"}"#;
        assert_eq!(
            json(JsonFields::default(), line),
            Some(Request {
                status: 404,
                duration: Some(Duration::from_millis(3)),
                time: None,
            })
        );
    }

    #[test]
    fn regex_with_and_without_time() {
        let regex =
            Regex::new(r"^(?P<time>\S+) status=(?P<status>\d+)(?: took=(?P<duration>\S+))?")
                .unwrap();
        let mut parser = RegexParser::new(&regex, TimeFormat::Auto, DurationUnit::Us).unwrap();
        assert_eq!(
            parser.parse(b"2014-07-01T00:00:00Z status=500 took=250"),
            Some(Request {
                status: 500,
                duration: Some(Duration::from_micros(250)),
                time: Some(UNIX_EPOCH + Duration::from_secs(1_404_172_800)),
            })
        );
        assert_eq!(
            parser
                .parse(b"2014-07-01T00:00:00Z status=200")
                .unwrap()
                .duration,
            None
        );
        assert_eq!(parser.parse(b"yesterday status=200"), None);
        assert_eq!(parser.parse(b"2014-07-01T00:00:00Z status=2000"), None);

        let regex = Regex::new(r"status=(?P<status>\d+)").unwrap();
        let mut parser = RegexParser::new(&regex, TimeFormat::Auto, DurationUnit::S).unwrap();
        assert_eq!(
            parser.parse(b"GET / status=429"),
            Some(Request {
                status: 429,
                duration: None,
                time: None,
            })
        );
        assert!(
            RegexParser::new(
                &Regex::new(r"(?P<code>\d+)").unwrap(),
                TimeFormat::Auto,
                DurationUnit::S
            )
            .is_none()
        );
    }

    #[test]
    fn errors_are_classes_codes_and_ranges() {
        let default = ErrorCodes::new(&[StatusMatch::DEFAULT]);
        assert!(default.contains(500) && default.contains(599));
        assert!(!default.contains(499) && !default.contains(600) && !default.contains(429));
        let matches: Vec<StatusMatch> = ["5xx", "429", "400-403"]
            .iter()
            .map(|text| text.parse().unwrap())
            .collect();
        let codes = ErrorCodes::new(&matches);
        for (status, error) in [
            (503, true),
            (429, true),
            (400, true),
            (403, true),
            (404, false),
            (200, false),
        ] {
            assert_eq!(codes.contains(status), error, "{status}");
        }
        for bad in [
            "6xx", "6xx0", "5x", "xx", "0xx", "99", "600-500", "4o4", "1000",
        ] {
            let err = bad.parse::<StatusMatch>().unwrap_err();
            assert!(err.ends_with(&format!("found `{bad}`")), "{err}");
        }
        assert_eq!(
            matches.iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["5xx", "429", "400-403"]
        );
    }
}
