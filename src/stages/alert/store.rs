//! What the `alert` stage saves in `state_dir/alerts.json`, and how it reads it back.
//!
//! Saved: every alert kept in memory (pending, firing, resolved within the restate
//! window, or kept for its flap history), each with what identifies it (rule,
//! service, cause, severity, labels), what it said (annotations) and its whole
//! [`Lifecycle`], so that after a restart it goes on where it was: a firing alert
//! is not fired again, its repeat comes on time, its flap history still counts. Not
//! saved: the last event's evidence (the annotations already say it). Times are
//! RFC 3339 text, so that the file can be read by a person.
//!
//! The writing itself (atomic, on a thread of its own) is `base::state_file`'s.

use serde::{Deserialize, Serialize};

use super::state::{Entry, Lifecycle};
use crate::base::event::{LabelSet, Severity};

/// The name of the file in `state_dir`.
pub const FILE_NAME: &str = "alerts.json";

/// The whole file.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Saved {
    pub alerts: Vec<SavedAlert>,
}

/// One alert.
#[derive(Debug, Deserialize, Serialize)]
pub struct SavedAlert {
    pub rule: String,
    pub service: String,
    /// The check, pattern or signal.
    pub cause: String,
    pub severity: Severity,
    pub labels: LabelSet,
    pub annotations: LabelSet,
    #[serde(flatten)]
    pub life: Lifecycle,
}

impl SavedAlert {
    pub fn of(entry: &Entry) -> SavedAlert {
        SavedAlert {
            rule: entry.rule.to_string(),
            service: entry.service.to_string(),
            cause: entry.cause.to_string(),
            severity: entry.severity,
            labels: (*entry.labels).clone(),
            annotations: (*entry.annotations).clone(),
            life: entry.life.clone(),
        }
    }

    pub fn into_entry(self) -> Entry {
        Entry::restored(
            self.rule.into(),
            self.service.into(),
            self.cause.into(),
            self.severity,
            self.labels,
            self.annotations,
            self.life,
        )
    }
}

/// A `SystemTime` as RFC 3339 text: `#[serde(with = "stamp")]`.
pub mod stamp {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_rfc3339_nanos(*time))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_rfc3339(&text)
            .map_err(|err| serde::de::Error::custom(format!("`{text}` is not a time: {err}")))
    }

    /// The same for an optional time.
    pub mod option {
        use std::time::SystemTime;

        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            time: &Option<SystemTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => super::serialize(time, serializer),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<SystemTime>, D::Error> {
            #[derive(Deserialize)]
            struct Stamp(#[serde(with = "super")] SystemTime);
            Ok(Option::<Stamp>::deserialize(deserializer)?.map(|Stamp(time)| time))
        }
    }

    /// The same for a list of times.
    pub mod list {
        use std::collections::VecDeque;
        use std::time::SystemTime;

        use serde::ser::SerializeSeq;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Deserialize, Serialize)]
        struct Stamp(#[serde(with = "super")] SystemTime);

        pub fn serialize<S: Serializer>(
            times: &VecDeque<SystemTime>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            let mut seq = serializer.serialize_seq(Some(times.len()))?;
            for time in times {
                seq.serialize_element(&Stamp(*time))?;
            }
            seq.end()
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<VecDeque<SystemTime>, D::Error> {
            let stamps = Vec::<Stamp>::deserialize(deserializer)?;
            Ok(stamps.into_iter().map(|Stamp(time)| time).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::base::event::Notify;
    use crate::stages::alert::rules::Hold;
    use crate::stages::alert::state::{FlapDamping, Phase, Timing};

    #[test]
    fn a_lifecycle_survives_the_file_to_the_nanosecond() {
        let at = |secs: u64| {
            UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs) + Duration::from_nanos(7)
        };
        let mut life = Lifecycle::new(at(0));
        let timing = Timing {
            hold: Hold::Events(1),
            keep_firing_for: Duration::ZERO,
            repeat_interval: Duration::from_secs(60),
            flap: FlapDamping::default(),
        };
        life.condition.hit(at(1));
        assert_eq!(
            life.step(&timing, at(1)).unwrap().notify,
            Notify::Transition
        );
        let saved = SavedAlert {
            rule: "CheckDown".into(),
            service: "shop".into(),
            cause: "health".into(),
            severity: Severity::Critical,
            labels: LabelSet::new(),
            annotations: LabelSet::new(),
            life: life.clone(),
        };
        let json = serde_json::to_string(&Saved {
            alerts: vec![saved],
        })
        .unwrap();
        assert!(json.contains("\"state\":\"firing\""), "{json}");
        assert!(json.contains("2023-11-14T22:13:21.000000007Z"), "{json}");
        let back: Saved = serde_json::from_str(&json).unwrap();
        assert_eq!(back.alerts[0].life, life);
        assert!(matches!(back.alerts[0].life.phase, Phase::Firing { .. }));
    }
}
