//! What an HTTP check expects of the answer: a status among `expect_status`, and a body
//! that contains `body_contains` and matches `body_regex`. The first that fails is the
//! attempt's reason (`status` or `body`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::base::event::FailureReason;
use crate::base::regex::RegexText;
use crate::sources::probe::attempt::Attempt;

/// Expected status codes: one code (`200`), a range (`"200-299"`) or a class (`"2xx"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange {
    low: u16,
    high: u16,
}

impl StatusRange {
    pub(super) fn success() -> Vec<StatusRange> {
        vec![StatusRange {
            low: 200,
            high: 299,
        }]
    }

    fn contains(self, status: u16) -> bool {
        (self.low..=self.high).contains(&status)
    }

    fn parse(text: &str) -> Option<StatusRange> {
        let code = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let range = if let Some(class) = text.strip_suffix("xx") {
            let low = code(&format!("{class}00"))?;
            StatusRange {
                low,
                high: low + 99,
            }
        } else if let Some((low, high)) = text.split_once('-') {
            StatusRange {
                low: code(low)?,
                high: code(high)?,
            }
        } else {
            let code = code(text)?;
            StatusRange {
                low: code,
                high: code,
            }
        };
        (range.low <= range.high).then_some(range)
    }
}

impl fmt::Display for StatusRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high {
            write!(f, "{}", self.low)
        } else {
            write!(f, "{}-{}", self.low, self.high)
        }
    }
}

impl Serialize for StatusRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.low == self.high {
            serializer.serialize_u16(self.low)
        } else {
            serializer.collect_str(self)
        }
    }
}

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = match serde_norway::Value::deserialize(deserializer)? {
            serde_norway::Value::Number(n) => n.to_string(),
            serde_norway::Value::String(s) => s,
            _ => String::new(),
        };
        StatusRange::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid status `{text}`; expected a code from 100 to 599, a range such as `200-299`, or a class such as `2xx`"
            ))
        })
    }
}

/// A check's expectations, from its configuration.
pub(super) struct Expectations {
    pub(super) status: Vec<StatusRange>,
    pub(super) body_contains: Option<String>,
    pub(super) body_regex: Option<RegexText>,
}

impl Expectations {
    /// The attempt an answer with `status` and (the first bytes of) `body` makes.
    pub(super) fn judge(&self, status: u16, body: &[u8]) -> Attempt {
        if !self.status.iter().any(|range| range.contains(status)) {
            let expected: Vec<String> = self.status.iter().map(|r| r.to_string()).collect();
            return Attempt::down(
                FailureReason::Status,
                format!("status {status}, expected {}", expected.join(", ")),
            );
        }
        if let Some(needle) = &self.body_contains
            && memchr::memmem::find(body, needle.as_bytes()).is_none()
        {
            return Attempt::down(
                FailureReason::Body,
                format!("status {status}, but the body does not contain `{needle}`"),
            );
        }
        if let Some(regex) = &self.body_regex
            && !regex.regex().is_match(body)
        {
            return Attempt::down(
                FailureReason::Body,
                format!("status {status}, but the body does not match `{regex}`"),
            );
        }
        Attempt::up(format!("status {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_ranges_parse_codes_ranges_and_classes() {
        let parse = |text: &str| StatusRange::parse(text).map(|r| (r.low, r.high));
        assert_eq!(parse("200"), Some((200, 200)));
        assert_eq!(parse("200-204"), Some((200, 204)));
        assert_eq!(parse("3xx"), Some((300, 399)));
        for bad in ["", "20", "600", "299-200", "9xx", "abc", "2xx-3xx"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
