//! The times written in log lines: the `time_format` option ([`TimeFormat`]) and how a
//! line's time is read with it.
//!
//! The common shapes (Apache's CLF `10/Oct/2000:13:55:36 -0700`, RFC 3339 and its
//! zoneless `2014-07-01 00:00:00` cousin, epoch seconds and milliseconds) are read by
//! hand, without allocating, because an access log gives one per line at 100,000 lines a
//! second; only a user's own strftime format goes through chrono's general parser. A
//! time without a zone is UTC. What a time that does not parse means for its line is
//! the caller's business.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::base::diagnostics::closest;

/// How the times of a log are written.
#[derive(Clone, Debug, PartialEq)]
pub enum TimeFormat {
    /// Any of RFC 3339, `YYYY-MM-DD HH:MM:SS[.fff]` (space or `T`, UTC without a zone)
    /// or a plain number of epoch seconds: the default outside the combined format.
    Auto,
    /// Apache and nginx's `%d/%b/%Y:%H:%M:%S %z`: `10/Oct/2000:13:55:36 -0700`.
    Clf,
    /// `2000-10-10T13:55:36.5-07:00`, with its zone (`Z` or an offset).
    Rfc3339,
    /// Seconds since 1970-01-01 UTC, with decimals or without.
    Epoch,
    /// Milliseconds since 1970-01-01 UTC, with decimals or without.
    EpochMs,
    /// A chrono strftime format, as written and as parsed once; UTC if it has no zone.
    Strftime {
        text: String,
        items: Vec<Item<'static>>,
    },
}

/// The words `time_format` takes besides a strftime format.
const KEYWORDS: [&str; 5] = ["auto", "clf", "rfc3339", "epoch", "epoch_ms"];

impl TimeFormat {
    /// Reads `text` as a time in this format: `None` if it is not one.
    pub fn parse(&self, text: &[u8]) -> Option<SystemTime> {
        match self {
            TimeFormat::Auto => parse_iso(text, false).or_else(|| parse_epoch(text, NANOS_PER_SEC)),
            TimeFormat::Clf => parse_clf(text),
            TimeFormat::Rfc3339 => parse_iso(text, true),
            TimeFormat::Epoch => parse_epoch(text, NANOS_PER_SEC),
            TimeFormat::EpochMs => parse_epoch(text, NANOS_PER_SEC / 1000),
            TimeFormat::Strftime { items, .. } => parse_strftime(items, text),
        }
    }

    /// Reads a number (a JSON one) as a time: epoch seconds, or milliseconds with
    /// `epoch_ms`; `None` for formats that are text.
    pub fn from_number(&self, number: f64) -> Option<SystemTime> {
        let nanos_per_unit = match self {
            TimeFormat::Auto | TimeFormat::Epoch => NANOS_PER_SEC,
            TimeFormat::EpochMs => NANOS_PER_SEC / 1000,
            _ => return None,
        };
        // `as` saturates; the bound keeps a saturated value from passing as a time.
        if !(0.0..1e19).contains(&number) {
            return None;
        }
        // Whole units and the fraction apart: their product as one `f64` would lose
        // the milliseconds of today's epoch counts.
        let whole = number.trunc();
        let fraction = ((number - whole) * nanos_per_unit as f64).round() as u128;
        let nanos = whole as u128 * u128::from(nanos_per_unit) + fraction;
        let secs = u64::try_from(nanos / u128::from(NANOS_PER_SEC)).ok()?;
        UNIX_EPOCH.checked_add(Duration::new(
            secs,
            (nanos % u128::from(NANOS_PER_SEC)) as u32,
        ))
    }
}

impl fmt::Display for TimeFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeFormat::Auto => "auto",
            TimeFormat::Clf => "clf",
            TimeFormat::Rfc3339 => "rfc3339",
            TimeFormat::Epoch => "epoch",
            TimeFormat::EpochMs => "epoch_ms",
            TimeFormat::Strftime { text, .. } => text,
        })
    }
}

impl std::str::FromStr for TimeFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<TimeFormat, String> {
        match text {
            "auto" => return Ok(TimeFormat::Auto),
            "clf" => return Ok(TimeFormat::Clf),
            "rfc3339" => return Ok(TimeFormat::Rfc3339),
            "epoch" => return Ok(TimeFormat::Epoch),
            "epoch_ms" => return Ok(TimeFormat::EpochMs),
            _ => {}
        }
        // A format without a single `%` reads nothing but itself: a misspelt keyword.
        if !text.contains('%') {
            let mut message = format!(
                "unknown time format `{text}`; expected one of {} or a strftime format such as `%Y-%m-%d %H:%M:%S`",
                crate::base::text::list(&KEYWORDS)
            );
            if let Some(close) = closest(text, KEYWORDS) {
                message.push_str(&format!(" (did you mean `{close}`?)"));
            }
            return Err(message);
        }
        match StrftimeItems::new(text).parse_to_owned() {
            Ok(items) => Ok(TimeFormat::Strftime {
                text: text.to_owned(),
                items,
            }),
            Err(_) => Err(format!(
                "`{text}` is not a valid strftime format: it has a `%` chrono does not know (write `%%` for a percent sign), e.g. `%Y-%m-%d %H:%M:%S`"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for TimeFormat {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for TimeFormat {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// The time `secs` seconds and `nanos` nanoseconds after (or, for negative `secs`,
/// around) the epoch.
fn from_unix(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = Duration::from_secs(secs.unsigned_abs());
    let start = if secs >= 0 {
        UNIX_EPOCH.checked_add(whole)?
    } else {
        UNIX_EPOCH.checked_sub(whole)?
    };
    start.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// Seconds since the epoch of a date and time of day, checked, UTC: the digits are
/// read by hand, the calendar is chrono's.
fn civil_seconds(date: (i64, u32, u32), hour: u32, minute: u32, second: u32) -> Option<i64> {
    // 60 is a leap second, which the epoch count folds into the next minute.
    let leap = i64::from(second == 60);
    let time = NaiveTime::from_hms_opt(hour, minute, second - leap as u32)?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(date.0).ok()?, date.1, date.2)?;
    Some(date.and_time(time).and_utc().timestamp() + leap)
}

/// The number written by exactly `n` ASCII digits at the start of `text`.
fn digits(text: &[u8], n: usize) -> Option<u32> {
    let digits = text.get(..n)?;
    digits.iter().try_fold(0u32, |value, &byte| {
        byte.is_ascii_digit()
            .then(|| value * 10 + u32::from(byte - b'0'))
    })
}

/// A zone offset in seconds east of UTC: `+hhmm` or `+hh:mm` (`colon` optional).
fn offset(text: &[u8]) -> Option<i64> {
    let sign = match text.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let hours = digits(&text[1..], 2)?;
    let minutes = match text.get(3..)? {
        [b':', rest @ ..] if rest.len() == 2 => digits(rest, 2)?,
        rest if rest.len() == 2 => digits(rest, 2)?,
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * i64::from(hours * 3600 + minutes * 60))
}

/// CLF, `10/Oct/2000:13:55:36 -0700`.
fn parse_clf(text: &[u8]) -> Option<SystemTime> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    if text.len() != 26
        || text[2] != b'/'
        || text[6] != b'/'
        || text[11] != b':'
        || text[14] != b':'
        || text[17] != b':'
        || text[20] != b' '
    {
        return None;
    }
    let month = MONTHS.iter().position(|name| name[..] == text[3..6])? as u32 + 1;
    let date = (i64::from(digits(&text[7..], 4)?), month, digits(text, 2)?);
    let local = civil_seconds(
        date,
        digits(&text[12..], 2)?,
        digits(&text[15..], 2)?,
        digits(&text[18..], 2)?,
    )?;
    from_unix(local - offset(&text[21..])?, 0)
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][zone]`, the zone `Z`, `+hh:mm` or `+hhmm`. With
/// `zone_required` it is RFC 3339; without, a missing zone means UTC.
fn parse_iso(text: &[u8], zone_required: bool) -> Option<SystemTime> {
    if text.len() < 19
        || text[4] != b'-'
        || text[7] != b'-'
        || !matches!(text[10], b'T' | b't' | b' ')
        || text[13] != b':'
        || text[16] != b':'
    {
        return None;
    }
    let date = (
        i64::from(digits(text, 4)?),
        digits(&text[5..], 2)?,
        digits(&text[8..], 2)?,
    );
    let local = civil_seconds(
        date,
        digits(&text[11..], 2)?,
        digits(&text[14..], 2)?,
        digits(&text[17..], 2)?,
    )?;
    let mut rest = &text[19..];
    let mut nanos = 0;
    if let [b'.', fraction @ ..] = rest {
        let count = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        nanos = fraction_nanos(&fraction[..count]);
        rest = &fraction[count..];
    }
    let zone = match rest {
        [] if !zone_required => 0,
        [b'Z' | b'z'] => 0,
        _ => offset(rest)?,
    };
    from_unix(local - zone, nanos)
}

/// Nanoseconds written by the digits after a decimal point (past nine, they are
/// below a nanosecond and dropped).
fn fraction_nanos(fraction: &[u8]) -> u32 {
    let mut nanos = 0;
    for i in 0..9 {
        let digit = fraction.get(i).map_or(0, |byte| u32::from(byte - b'0'));
        nanos = nanos * 10 + digit;
    }
    nanos
}

/// A non-negative decimal number of units of `nanos_per_unit` nanoseconds since the
/// epoch: `1404172800`, `1404172800.123`. Read exactly, not through `f64`, which has
/// no room for nanoseconds at today's epoch counts.
fn parse_epoch(text: &[u8], nanos_per_unit: u64) -> Option<SystemTime> {
    let (whole, fraction) = match memchr::memchr(b'.', text) {
        Some(dot) => (&text[..dot], &text[dot + 1..]),
        None => (text, &[][..]),
    };
    if whole.is_empty() || whole.len() > 20 || !whole.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !fraction.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let units = whole
        .iter()
        .fold(0u128, |value, &byte| value * 10 + u128::from(byte - b'0'));
    let nanos = units * u128::from(nanos_per_unit)
        + u128::from(fraction_nanos(fraction)) * u128::from(nanos_per_unit)
            / u128::from(NANOS_PER_SEC);
    let secs = u64::try_from(nanos / u128::from(NANOS_PER_SEC)).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(
        secs,
        (nanos % u128::from(NANOS_PER_SEC)) as u32,
    ))
}

/// A time in a strftime format: with its zone if the format has one, else UTC; a
/// format with a date and no time of day gives midnight.
fn parse_strftime(items: &[Item<'static>], text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?;
    let mut parsed = Parsed::new();
    chrono::format::parse(&mut parsed, text, items.iter()).ok()?;
    if parsed.offset().is_some() {
        return Some(parsed.to_datetime().ok()?.into());
    }
    let naive = match parsed.to_naive_datetime_with_offset(0) {
        Ok(naive) => naive,
        Err(_) => parsed.to_naive_date().ok()?.and_time(NaiveTime::MIN),
    };
    Some(naive.and_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, nanos: u32) -> Option<SystemTime> {
        Some(UNIX_EPOCH + Duration::new(secs, nanos))
    }

    fn format(text: &str) -> TimeFormat {
        text.parse().unwrap()
    }

    #[test]
    fn clf_with_its_offset() {
        // 2000-10-10T20:55:36Z.
        assert_eq!(
            TimeFormat::Clf.parse(b"10/Oct/2000:13:55:36 -0700"),
            at(971_211_336, 0)
        );
        assert_eq!(
            TimeFormat::Clf.parse(b"01/Jan/1970:01:00:00 +0100"),
            at(0, 0)
        );
        for bad in [
            &b"10/Okt/2000:13:55:36 -0700"[..],
            b"31/Feb/2000:13:55:36 -0700",
            b"10/Oct/2000:24:55:36 -0700",
            b"10/Oct/2000:13:55:36",
            b"10/Oct/2000:13:55:36 0700",
        ] {
            assert_eq!(TimeFormat::Clf.parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_needs_a_zone_and_auto_takes_utc_without_one() {
        assert_eq!(
            TimeFormat::Rfc3339.parse(b"2014-07-01T02:00:00.250+02:00"),
            at(1_404_172_800, 250_000_000)
        );
        assert_eq!(TimeFormat::Rfc3339.parse(b"2014-07-01T00:00:00"), None);
        assert_eq!(
            TimeFormat::Auto.parse(b"2014-07-01 00:00:00"),
            at(1_404_172_800, 0)
        );
        assert_eq!(
            TimeFormat::Auto.parse(b"2014-07-01T00:00:00.5Z"),
            at(1_404_172_800, 500_000_000)
        );
        assert_eq!(
            TimeFormat::Auto.parse(b"1404172800.125"),
            at(1_404_172_800, 125_000_000)
        );
        assert_eq!(TimeFormat::Auto.parse(b"2014-07-01 00:00:00 junk"), None);
        assert_eq!(TimeFormat::Auto.parse(b"-"), None);
    }

    #[test]
    fn epoch_counts_are_read_exactly() {
        assert_eq!(
            TimeFormat::Epoch.parse(b"1404172800.123456789"),
            at(1_404_172_800, 123_456_789)
        );
        assert_eq!(
            TimeFormat::EpochMs.parse(b"1404172800123.5"),
            at(1_404_172_800, 123_500_000)
        );
        assert_eq!(TimeFormat::Epoch.parse(b"1e9"), None);
        assert_eq!(
            TimeFormat::EpochMs.from_number(1_404_172_800_123.0),
            at(1_404_172_800, 123_000_000)
        );
        assert_eq!(TimeFormat::Epoch.from_number(-1.0), None);
        assert_eq!(TimeFormat::Clf.from_number(1.0), None);
    }

    #[test]
    fn strftime_formats_are_utc_unless_they_have_a_zone() {
        assert_eq!(
            format("%Y-%m-%d %H:%M:%S").parse(b"2014-07-01 00:00:00"),
            at(1_404_172_800, 0)
        );
        assert_eq!(
            format("%d.%m.%Y %H:%M %z").parse(b"01.07.2014 02:00 +0200"),
            at(1_404_172_800, 0)
        );
        assert_eq!(
            format("%Y-%m-%d").parse(b"2014-07-01"),
            at(1_404_172_800, 0)
        );
        assert_eq!(format("%Y-%m-%d").parse(b"2014-07-32"), None);
    }

    #[test]
    fn bad_formats_say_what_is_expected() {
        let err = "rfc3399".parse::<TimeFormat>().unwrap_err();
        assert!(
            err.starts_with("unknown time format `rfc3399`; expected one of `auto`, `clf`"),
            "{err}"
        );
        assert!(err.ends_with("(did you mean `rfc3339`?)"), "{err}");
        let err = "%Y-%Q".parse::<TimeFormat>().unwrap_err();
        assert!(
            err.starts_with("`%Y-%Q` is not a valid strftime format"),
            "{err}"
        );
        assert_eq!(format("%Y %H").to_string(), "%Y %H");
    }
}
