//! What one receiver was told and what it has yet to be told: a notifier's durable
//! record, saved in its state folder so that a restart neither repeats what the
//! receiver acknowledged nor loses what it had not.
//!
//! A [`Ledger`] holds, per alert (by fingerprint), what the receiver last
//! acknowledged ([`Told`]: status, `startsAt`, when), and the outbox: the
//! notification being delivered ([`InFlight`], its body and idempotency key fixed
//! once composed, so that every retry, before or after a restart, is the same
//! request) and the alerts waiting behind it ([`Entry`], in the order they came).
//!
//! The rules of the outbox keep it in order per alert and bounded by the number of
//! alerts ([`Ledger::queue`]): a change of state is always kept; a repeat replaces a
//! waiting repeat and is dropped while the receiver has still to hear that the alert
//! fires; a resolve makes a waiting repeat of the same firing pointless; an alert
//! restated after a restart is queued only if the receiver was not told it. At most
//! [`MAX_EPISODES`] firings of one alert wait at once: past that the oldest, which the
//! receiver never heard of, is dropped (and said), which a flap-damped alert never
//! reaches. Acknowledgements are kept for a while after the alert ended
//! ([`RESOLVED_KEPT`], longer than the alert stage restates resolves after a
//! restart) and, for one still firing, as long as it is told again now and then
//! ([`FIRING_KEPT`]).
//!
//! The ledger is plain data: when to save it and how to deliver is the notifier's.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::payload::{AlertJson, Status, millis};
use crate::base::event::{Fingerprint, Notify};

/// Firings of one alert (distinct `startsAt`) that may wait at once.
pub const MAX_EPISODES: usize = 2;

/// How long what a receiver was told of a resolved alert is remembered: past the
/// 15 minutes in which the alert stage restates resolves after a restart.
pub const RESOLVED_KEPT: Duration = Duration::from_secs(60 * 60);

/// How long what a receiver was told of a firing alert is remembered without news
/// of it: repeats (every `repeat_interval`, 4 h by default) refresh it, so only an
/// alert whose rule is gone stays silent this long.
pub const FIRING_KEPT: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// A receiver's record; see the module documentation.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ledger {
    told: BTreeMap<Fingerprint, Told>,
    #[serde(default)]
    in_flight: Option<InFlight>,
    #[serde(default)]
    waiting: VecDeque<Entry>,
    #[serde(default)]
    next_seq: u64,
}

/// What a receiver acknowledged last of one alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Told {
    pub status: Status,
    pub starts_at: String,
    /// When it acknowledged it, in milliseconds since the epoch.
    pub at_ms: u64,
}

/// One alert waiting to be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Its place in the order of arrival.
    pub seq: u64,
    /// Why it is told: a change of state, a repeat, a restatement.
    pub why: Notify,
    /// When the alert event was made: delivery latency is measured from it.
    pub at_ms: u64,
    /// When it was queued: a group's wait counts from it.
    pub queued_ms: u64,
    /// Handed over by another receiver that could not deliver it: never handed on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handed: bool,
    pub alert: AlertJson,
}

impl Entry {
    fn tells(&self, fingerprint: Fingerprint, status: Status, starts_at: &str) -> bool {
        self.alert.fingerprint == fingerprint
            && self.alert.status == status
            && self.alert.starts_at == starts_at
    }
}

/// The notification being delivered: the request, as composed once, and its alerts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InFlight {
    /// The `Idempotency-Key`: the same on every retry and after a restart.
    pub key: String,
    pub body: String,
    pub entries: Vec<Entry>,
}

/// What [`Ledger::queue`] did.
#[derive(Debug, PartialEq)]
pub enum Queued {
    /// Nothing: the receiver was told, or is about to be.
    Known,
    /// Queued (or a waiting entry refreshed); `dropped` are older firings of the
    /// alert dropped to keep the outbox bounded.
    Yes { dropped: Vec<Entry> },
}

impl Ledger {
    /// Adds `alert`, told because of `why`, made at `at`, to the outbox, following
    /// the rules of the module documentation. `handed` marks an alert another
    /// receiver handed over.
    pub fn queue(
        &mut self,
        why: Notify,
        alert: AlertJson,
        at: SystemTime,
        now: SystemTime,
        handed: bool,
    ) -> Queued {
        let fingerprint = alert.fingerprint;
        let (status, starts_at) = (alert.status, alert.starts_at.clone());
        let same = |entry: &Entry| entry.tells(fingerprint, status, &starts_at);
        let in_flight = self.in_flight.iter().flat_map(|sending| &sending.entries);
        let sending_same = in_flight.clone().any(same);
        if why == Notify::Restated {
            let told_same = (self.told.get(&fingerprint))
                .is_some_and(|told| told.status == status && told.starts_at == starts_at);
            // A resolve closes something the receiver was told; of an alert it has
            // never heard of, it would only be noise.
            let heard_of = self.told.contains_key(&fingerprint)
                || in_flight
                    .chain(&self.waiting)
                    .any(|entry| entry.alert.fingerprint == fingerprint);
            if told_same || sending_same || (status == Status::Resolved && !heard_of) {
                return Queued::Known;
            }
        }
        let entry = Entry {
            seq: self.next_seq,
            why,
            at_ms: millis(at),
            queued_ms: millis(now),
            handed,
            alert,
        };
        if let Some(waiting) = self.waiting.iter_mut().find(|entry| same(entry)) {
            if why == Notify::Repeat && waiting.why != Notify::Repeat {
                // The change of state it repeats has still to be told.
                return Queued::Known;
            }
            // The same news again (a newer repeat, say): the newer words, the older
            // place, so that the order per alert stays.
            *waiting = Entry {
                seq: waiting.seq,
                ..entry
            };
            return Queued::Yes {
                dropped: Vec::new(),
            };
        }
        if why == Notify::Repeat && sending_same {
            return Queued::Known;
        }
        if status == Status::Resolved {
            // The receiver heard it fire; a repeat just before the resolve adds nothing.
            self.waiting.retain(|waiting| {
                !(waiting.why == Notify::Repeat
                    && waiting.tells(fingerprint, Status::Firing, &starts_at))
            });
        }
        self.next_seq += 1;
        self.waiting.push_back(entry);
        Queued::Yes {
            dropped: self.bound(fingerprint),
        }
    }

    /// Drops the oldest firings of `fingerprint` past [`MAX_EPISODES`].
    fn bound(&mut self, fingerprint: Fingerprint) -> Vec<Entry> {
        let mut episodes: Vec<&str> = Vec::new();
        for entry in &self.waiting {
            let starts_at = entry.alert.starts_at.as_str();
            if entry.alert.fingerprint == fingerprint && !episodes.contains(&starts_at) {
                episodes.push(starts_at);
            }
        }
        let excess = episodes.len().saturating_sub(MAX_EPISODES);
        if excess == 0 {
            return Vec::new();
        }
        let old: Vec<String> = episodes[..excess].iter().map(|s| (*s).to_owned()).collect();
        let (dropped, kept) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|entry| {
                entry.alert.fingerprint == fingerprint && old.contains(&entry.alert.starts_at)
            });
        self.waiting = kept;
        dropped.into()
    }

    /// The alerts waiting, in the order they came.
    pub fn waiting(&self) -> &VecDeque<Entry> {
        &self.waiting
    }

    /// The notification being delivered, if one is.
    pub fn in_flight(&self) -> Option<&InFlight> {
        self.in_flight.as_ref()
    }

    /// What the receiver last acknowledged of `fingerprint`.
    pub fn told(&self, fingerprint: Fingerprint) -> Option<&Told> {
        self.told.get(&fingerprint)
    }

    /// Starts delivering the waiting entries `seqs` as one notification, with `body`
    /// and `key`.
    pub fn start(&mut self, seqs: &[u64], body: String, key: String) {
        let (entries, waiting): (VecDeque<Entry>, _) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|entry| seqs.contains(&entry.seq));
        self.waiting = waiting;
        self.in_flight = Some(InFlight {
            key,
            body,
            entries: entries.into(),
        });
    }

    /// The receiver acknowledged the notification in flight at `now`: it is done,
    /// and recorded as told. Returns it.
    pub fn acknowledge(&mut self, now: SystemTime) -> Option<InFlight> {
        let done = self.in_flight.take()?;
        let now_ms = millis(now);
        for entry in &done.entries {
            let told = Told {
                status: entry.alert.status,
                starts_at: entry.alert.starts_at.clone(),
                at_ms: now_ms,
            };
            self.told.insert(entry.alert.fingerprint, told);
        }
        self.told.retain(|_, told| {
            let kept = match told.status {
                Status::Firing => FIRING_KEPT,
                Status::Resolved => RESOLVED_KEPT,
            };
            now_ms.saturating_sub(told.at_ms) < millis_of(kept)
        });
        Some(done)
    }

    /// Gives up the notification in flight (refused, or handed to another receiver):
    /// it is done, and nothing is recorded as told. Returns it.
    pub fn abandon(&mut self) -> Option<InFlight> {
        self.in_flight.take()
    }

    /// Alerts in the outbox: in flight and waiting.
    pub fn depth(&self) -> usize {
        self.waiting.len() + self.in_flight.as_ref().map_or(0, |f| f.entries.len())
    }
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::base::event::LabelSet;
    use crate::sinks::notify::payload::ZERO_TIME;

    fn alert(name: &str, status: Status, starts_at: &str) -> AlertJson {
        let labels: LabelSet = [("alertname".to_owned(), name.to_owned())].into();
        AlertJson {
            status,
            fingerprint: Fingerprint::of(&labels),
            labels,
            annotations: LabelSet::new(),
            starts_at: starts_at.to_owned(),
            ends_at: match status {
                Status::Firing => ZERO_TIME.to_owned(),
                Status::Resolved => "2026-01-01T00:09:00.000Z".to_owned(),
            },
            generator_url: String::new(),
        }
    }

    const T1: &str = "2026-01-01T00:01:00.000Z";
    const T2: &str = "2026-01-01T00:02:00.000Z";
    const T3: &str = "2026-01-01T00:03:00.000Z";

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_767_225_600 + seconds)
    }

    /// The waiting entries as (alertname, status, startsAt, why).
    fn waiting(ledger: &Ledger) -> Vec<(String, Status, String, Notify)> {
        (ledger.waiting().iter())
            .map(|e| {
                let name = e.alert.labels["alertname"].clone();
                (name, e.alert.status, e.alert.starts_at.clone(), e.why)
            })
            .collect()
    }

    fn queue(
        ledger: &mut Ledger,
        why: Notify,
        name: &str,
        status: Status,
        starts_at: &str,
    ) -> Queued {
        ledger.queue(why, alert(name, status, starts_at), at(0), at(0), false)
    }

    fn queued() -> Queued {
        Queued::Yes {
            dropped: Vec::new(),
        }
    }

    /// Sends every waiting entry, one notification each, acknowledged.
    fn deliver_all(ledger: &mut Ledger, now: SystemTime) {
        while let Some(seq) = ledger.waiting().front().map(|e| e.seq) {
            ledger.start(&[seq], String::new(), String::new());
            ledger.acknowledge(now).unwrap();
        }
    }

    #[test]
    fn transitions_are_all_kept_in_order_and_a_resolve_drops_a_waiting_repeat() {
        let mut ledger = Ledger::default();
        assert_eq!(
            queue(&mut ledger, Notify::Transition, "A", Status::Firing, T1),
            queued()
        );
        // A repeat of a firing not told yet adds nothing.
        assert_eq!(
            queue(&mut ledger, Notify::Repeat, "A", Status::Firing, T1),
            Queued::Known
        );
        queue(&mut ledger, Notify::Transition, "B", Status::Firing, T1);
        queue(&mut ledger, Notify::Transition, "A", Status::Resolved, T1);
        queue(&mut ledger, Notify::Transition, "A", Status::Firing, T2);
        assert_eq!(
            waiting(&ledger),
            [
                ("A".into(), Status::Firing, T1.into(), Notify::Transition),
                ("B".into(), Status::Firing, T1.into(), Notify::Transition),
                ("A".into(), Status::Resolved, T1.into(), Notify::Transition),
                ("A".into(), Status::Firing, T2.into(), Notify::Transition),
            ]
        );
        deliver_all(&mut ledger, at(10));
        assert_eq!(ledger.depth(), 0);
        // Told: a repeat waits; a newer one replaces it in place; a resolve ends it.
        queue(&mut ledger, Notify::Repeat, "A", Status::Firing, T2);
        queue(&mut ledger, Notify::Repeat, "B", Status::Firing, T1);
        let mut newer = alert("A", Status::Firing, T2);
        newer.annotations.insert("summary".into(), "newer".into());
        let at = at(0);
        assert_eq!(ledger.queue(Notify::Repeat, newer, at, at, false), queued());
        assert_eq!(ledger.waiting()[0].alert.annotations["summary"], "newer");
        assert_eq!(ledger.waiting()[0].seq, 4, "the repeat kept its place");
        queue(&mut ledger, Notify::Transition, "A", Status::Resolved, T2);
        assert_eq!(
            waiting(&ledger),
            [
                ("B".into(), Status::Firing, T1.into(), Notify::Repeat),
                ("A".into(), Status::Resolved, T2.into(), Notify::Transition),
            ]
        );
    }

    #[test]
    fn a_repeat_of_the_firing_in_flight_is_not_queued() {
        let mut ledger = Ledger::default();
        queue(&mut ledger, Notify::Transition, "A", Status::Firing, T1);
        ledger.start(&[0], "body".into(), "key".into());
        assert_eq!(
            queue(&mut ledger, Notify::Repeat, "A", Status::Firing, T1),
            Queued::Known
        );
        assert_eq!(
            queue(&mut ledger, Notify::Restated, "A", Status::Firing, T1),
            Queued::Known
        );
        assert_eq!(
            queue(&mut ledger, Notify::Transition, "A", Status::Resolved, T1),
            queued()
        );
        assert_eq!(ledger.depth(), 2);
    }

    #[test]
    fn a_restated_alert_is_queued_only_if_the_receiver_was_not_told_it() {
        let mut ledger = Ledger::default();
        queue(&mut ledger, Notify::Transition, "A", Status::Firing, T1);
        deliver_all(&mut ledger, at(10));
        assert_eq!(
            ledger
                .told(alert("A", Status::Firing, T1).fingerprint)
                .unwrap()
                .at_ms,
            millis(at(10))
        );
        // Told: nothing. A later firing, or its resolve: told.
        assert_eq!(
            queue(&mut ledger, Notify::Restated, "A", Status::Firing, T1),
            Queued::Known
        );
        assert_eq!(
            queue(&mut ledger, Notify::Restated, "A", Status::Resolved, T1),
            queued()
        );
        // A resolve of an alert the receiver never heard of: nothing.
        assert_eq!(
            queue(&mut ledger, Notify::Restated, "C", Status::Resolved, T1),
            Queued::Known
        );
        // A firing it never heard of: told.
        assert_eq!(
            queue(&mut ledger, Notify::Restated, "C", Status::Firing, T2),
            queued()
        );
    }

    #[test]
    fn an_alert_has_at_most_two_firings_waiting() {
        let mut ledger = Ledger::default();
        for starts_at in [T1, T2] {
            queue(
                &mut ledger,
                Notify::Transition,
                "A",
                Status::Firing,
                starts_at,
            );
            queue(
                &mut ledger,
                Notify::Transition,
                "A",
                Status::Resolved,
                starts_at,
            );
        }
        let third = queue(&mut ledger, Notify::Transition, "A", Status::Firing, T3);
        let Queued::Yes { dropped } = third else {
            panic!("{third:?}")
        };
        assert_eq!(dropped.len(), 2);
        assert!(dropped.iter().all(|e| e.alert.starts_at == T1));
        assert_eq!(ledger.depth(), 3);
    }

    #[test]
    fn acknowledgements_are_forgotten_after_a_while_and_survive_a_round_trip() {
        let mut ledger = Ledger::default();
        queue(&mut ledger, Notify::Transition, "A", Status::Resolved, T1);
        queue(&mut ledger, Notify::Transition, "B", Status::Firing, T1);
        deliver_all(&mut ledger, at(0));
        queue(&mut ledger, Notify::Transition, "C", Status::Firing, T1);
        ledger.start(&[2], "body".into(), "key".into());
        queue(&mut ledger, Notify::Transition, "C", Status::Resolved, T1);
        let json = serde_json::to_string(&ledger).unwrap();
        let mut again: Ledger = serde_json::from_str(&json).unwrap();
        assert_eq!(again.in_flight(), ledger.in_flight());
        assert_eq!(waiting(&again), waiting(&ledger));
        let fingerprint = |name| alert(name, Status::Firing, T1).fingerprint;
        again.acknowledge(at(2 * 60 * 60)).unwrap();
        assert!(
            again.told(fingerprint("A")).is_none(),
            "resolved an hour ago and more"
        );
        assert!(again.told(fingerprint("B")).is_some(), "still firing");
        assert!(again.told(fingerprint("C")).is_some());
    }
}
