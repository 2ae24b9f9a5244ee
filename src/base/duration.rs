//! Durations as people write them: `"500ms"`, `"30s"`, `"1m"`, `"1h 30m"`.
//!
//! Used as `#[serde(with = "crate::base::duration")]`. Most durations Aegis takes are
//! intervals, so zero is refused here rather than in each component, and so is more
//! than a year. A wait that may be none (`group_wait: 0s`) is
//! `crate::base::duration::or_zero`.

use std::fmt;
use std::time::Duration;

use serde::de::{Error, Visitor};
use serde::{Deserializer, Serializer};

/// The longest duration taken: longer is surely a mistake, and would overflow the
/// clock arithmetic of timers.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 60 * 60);

pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor { zero: false })
}

struct DurationVisitor {
    /// Whether `0s` is taken.
    zero: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as `500ms`, `30s` or `1m`")
    }

    fn visit_str<E: Error>(self, text: &str) -> Result<Duration, E> {
        let duration = humantime::parse_duration(text).map_err(|err| {
            E::custom(format!(
                "invalid duration `{text}`: {err}; expected e.g. `500ms`, `30s`, `1m`"
            ))
        })?;
        if duration.is_zero() && !self.zero {
            return Err(E::custom(format!(
                "invalid duration `{text}`: must be greater than zero"
            )));
        }
        if duration > LONGEST {
            return Err(E::custom(format!(
                "invalid duration `{text}`: must be at most a year (`365d`)"
            )));
        }
        Ok(duration)
    }
}

pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&humantime::format_duration(*duration).to_string())
}

/// The same for a wait that may be none: `0s` is taken.
pub mod or_zero {
    use std::time::Duration;

    use serde::Deserializer;

    pub use super::serialize;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        deserializer.deserialize_str(super::DurationVisitor { zero: true })
    }
}

/// The same for an optional duration: `#[serde(default, with = "crate::base::duration::optional")]`.
pub mod optional {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }

    pub fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Holder {
        #[serde(with = "super")]
        every: Duration,
    }

    fn parse(text: &str) -> Result<Duration, String> {
        serde_norway::from_str::<Holder>(&format!("every: {text}"))
            .map(|h| h.every)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn human_durations_parse_and_bad_ones_explain() {
        assert_eq!(parse("\"1m\"").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert!(
            parse("30x")
                .unwrap_err()
                .contains("invalid duration `30x`: unknown time unit \"x\"")
        );
        assert!(
            parse("0s")
                .unwrap_err()
                .contains("must be greater than zero")
        );
        assert_eq!(parse("365d").unwrap(), LONGEST);
        let wait = |text: &str| or_zero::deserialize(serde_norway::Value::from(text));
        assert_eq!(wait("0s").unwrap(), Duration::ZERO);
        assert_eq!(wait("250ms").unwrap(), Duration::from_millis(250));
        assert!(
            wait("400d")
                .unwrap_err()
                .to_string()
                .contains("at most a year")
        );
        assert!(
            parse("300000000000y")
                .unwrap_err()
                .contains("at most a year")
        );
    }
}
