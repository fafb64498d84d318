//! Exactly once, in order: every subscription's stream checked against the change log.
//!
//! Each record the bench writes carries `w` (the writer) and `n` (that writer's
//! sequence number, from 1). A writer has one mutation in flight, so its `n`s commit
//! in increasing order; a subscriber must see them strictly increasing, which catches
//! duplicates and reordering as they happen. Cursors are opaque, so their order is
//! checked against the log itself, read through the public `changes` query after the
//! run: each subscription folds the cursors it received, in arrival order, into a
//! hash, and must end with the same count and hash as the log's matching changes in
//! log order. Any lost, duplicated or reordered event changes one or the other.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{Value, json};

use crate::{http::HttpClient, ws::Mark};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Folds one cursor into an order-sensitive hash of a cursor sequence.
fn fold(mut h: u64, cursor: &str) -> u64 {
    for b in cursor.bytes().chain(std::iter::once(0xff)) {
        h = (h ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    h
}

/// One subscription's view of what it received.
#[derive(Debug, Clone)]
pub struct Tracker {
    last_n: Vec<u64>,
    /// Events received.
    pub count: u64,
    hash: u64,
    /// Events whose `n` was not above the writer's previous one (duplicate or reordered).
    pub out_of_sequence: u64,
    /// The first such event, described.
    pub first_problem: Option<String>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    /// Nothing received yet.
    pub fn new() -> Self {
        Self {
            last_n: Vec::new(),
            count: 0,
            hash: FNV_OFFSET,
            out_of_sequence: 0,
            first_problem: None,
        }
    }

    /// Accounts for one received event.
    pub fn observe(&mut self, cursor: &str, mark: &Mark) {
        self.count += 1;
        self.hash = fold(self.hash, cursor);
        if let (Some(w), Some(n)) = (mark.w, mark.n) {
            let w = w as usize;
            if w >= self.last_n.len() {
                self.last_n.resize(w + 1, 0);
            }
            if n <= self.last_n[w] {
                self.out_of_sequence += 1;
                if self.first_problem.is_none() {
                    self.first_problem = Some(format!(
                        "writer {w}: event n={n} arrived after n={}",
                        self.last_n[w]
                    ));
                }
            } else {
                self.last_n[w] = n;
            }
        }
    }
}

/// The matching part of the change log, read after a run.
#[derive(Debug, Clone)]
pub struct Log {
    /// Matching changes.
    pub count: u64,
    hash: u64,
    /// Each writer's sequence numbers in log order.
    per_writer: HashMap<u32, Vec<u64>>,
}

const LOG_QUERY: &str = "query($c: String!, $a: String) { changes(collection: $c, after: $a, first: 500) { nodes { cursor record { data } } changeCursor pageInfo { hasNextPage } } }";

/// Reads every change of `collection` after cursor `after` through `changes`.
pub async fn read_log(http: &mut HttpClient, collection: &str, after: &str) -> anyhow::Result<Log> {
    let mut log = Log {
        count: 0,
        hash: FNV_OFFSET,
        per_writer: HashMap::new(),
    };
    let mut cursor = after.to_owned();
    loop {
        let d = http
            .data(LOG_QUERY, json!({"c": collection, "a": cursor}))
            .await
            .context("reading the change log")?;
        let page = &d["changes"];
        for node in page["nodes"].as_array().into_iter().flatten() {
            let c = node["cursor"].as_str().context("change without cursor")?;
            log.count += 1;
            log.hash = fold(log.hash, c);
            let data = &node["record"]["data"];
            if let (Some(w), Some(n)) = (data["w"].as_u64(), data["n"].as_u64()) {
                log.per_writer.entry(w as u32).or_default().push(n);
            }
        }
        cursor = page["changeCursor"]
            .as_str()
            .context("no changeCursor")?
            .to_owned();
        if page["pageInfo"]["hasNextPage"] != Value::Bool(true) {
            return Ok(log);
        }
    }
}

/// The outcome of checking a run's deliveries.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    /// Whether deliveries were checked at all (scenarios without subscribers).
    pub checked: bool,
    /// Subscriptions checked.
    pub subscriptions: u64,
    /// Events the subscriptions had to receive in all (each: the matching changes in
    /// the log).
    pub expected: u64,
    /// Events received over all subscriptions.
    pub delivered: u64,
    /// Events missing over all subscriptions.
    pub lost: u64,
    /// Events received beyond the expected count.
    pub extra: u64,
    /// Events that repeated or went back in a writer's sequence.
    pub out_of_sequence: u64,
    /// Subscriptions with the right count whose cursor order differs from the log.
    pub order_mismatch: u64,
    /// Acknowledged mutations not in the log.
    pub acked_missing: u64,
    /// Mutations in the log more than once.
    pub log_duplicates: u64,
    /// The first problems, described.
    pub problems: Vec<String>,
}

impl Verification {
    /// Checks `trackers` against `log`, and that every acknowledged `(writer, n)` in
    /// `acked` is in the log exactly once.
    pub fn check<'a>(
        log: &Log,
        trackers: impl IntoIterator<Item = &'a Tracker>,
        acked: &[(u32, Vec<u64>)],
    ) -> Self {
        let mut v = Self {
            checked: true,
            ..Self::default()
        };
        let note = |v: &mut Self, p: String| {
            if v.problems.len() < 5 {
                v.problems.push(p);
            }
        };
        for (i, t) in trackers.into_iter().enumerate() {
            v.subscriptions += 1;
            v.expected += log.count;
            v.delivered += t.count;
            v.out_of_sequence += t.out_of_sequence;
            if let Some(p) = &t.first_problem {
                note(&mut v, format!("subscription {i}: {p}"));
            }
            if t.count < log.count {
                v.lost += log.count - t.count;
                note(
                    &mut v,
                    format!(
                        "subscription {i}: received {} of {} events",
                        t.count, log.count
                    ),
                );
            } else if t.count > log.count {
                v.extra += t.count - log.count;
                note(
                    &mut v,
                    format!(
                        "subscription {i}: received {} events, the log has {}",
                        t.count, log.count
                    ),
                );
            } else if t.hash != log.hash {
                v.order_mismatch += 1;
                note(
                    &mut v,
                    format!("subscription {i}: events differ from the log or its order"),
                );
            }
        }
        for (w, ns) in acked {
            let in_log = log.per_writer.get(w).map(Vec::as_slice).unwrap_or(&[]);
            let mut sorted = in_log.to_vec();
            sorted.sort_unstable();
            let before = sorted.len();
            sorted.dedup();
            v.log_duplicates += (before - sorted.len()) as u64;
            for n in ns {
                if sorted.binary_search(n).is_err() {
                    v.acked_missing += 1;
                    note(
                        &mut v,
                        format!("writer {w}: acknowledged n={n} is not in the log"),
                    );
                }
            }
        }
        v
    }

    /// Adds the outcome of another part of the same run.
    pub fn merge(&mut self, other: Self) {
        self.checked |= other.checked;
        self.subscriptions += other.subscriptions;
        self.expected += other.expected;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.extra += other.extra;
        self.out_of_sequence += other.out_of_sequence;
        self.order_mismatch += other.order_mismatch;
        self.acked_missing += other.acked_missing;
        self.log_duplicates += other.log_duplicates;
        for p in other.problems {
            if self.problems.len() < 5 {
                self.problems.push(p);
            }
        }
    }

    /// Why it failed, if it did.
    pub fn failure(&self) -> Option<String> {
        if !self.checked {
            return None;
        }
        let mut why = Vec::new();
        for (n, what) in [
            (self.lost, "events lost"),
            (self.extra, "extra events"),
            (self.out_of_sequence, "events duplicated or out of order"),
            (self.order_mismatch, "subscriptions out of log order"),
            (
                self.acked_missing,
                "acknowledged mutations missing from the log",
            ),
            (self.log_duplicates, "mutations duplicated in the log"),
        ] {
            if n > 0 {
                why.push(format!("{n} {what}"));
            }
        }
        (!why.is_empty()).then(|| why.join(", "))
    }

    /// One line for the table.
    pub fn summary(&self) -> String {
        if !self.checked {
            return "no subscriptions in this scenario (responses checked for errors)".into();
        }
        let mut s = format!(
            "{} subscriptions, {} events expected, {} delivered; {} lost, {} extra, {} out of sequence, {} out of log order; {} acknowledged mutations missing from the log",
            self.subscriptions,
            self.expected,
            self.delivered,
            self.lost,
            self.extra,
            self.out_of_sequence,
            self.order_mismatch,
            self.acked_missing,
        );
        for p in &self.problems {
            s.push_str("\n  ");
            s.push_str(p);
        }
        s
    }

    /// The JSON form.
    pub fn json(&self) -> Value {
        json!({
            "checked": self.checked,
            "ok": self.failure().is_none(),
            "subscriptions": self.subscriptions,
            "expected": self.expected,
            "delivered": self.delivered,
            "lost": self.lost,
            "extra": self.extra,
            "out_of_sequence": self.out_of_sequence,
            "order_mismatch": self.order_mismatch,
            "acked_missing": self.acked_missing,
            "log_duplicates": self.log_duplicates,
            "problems": self.problems,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(w: u32, n: u64) -> Mark {
        Mark {
            w: Some(w),
            n: Some(n),
            ..Mark::default()
        }
    }

    fn log_of(cursors: &[&str]) -> Log {
        Log {
            count: cursors.len() as u64,
            hash: cursors.iter().fold(FNV_OFFSET, |h, c| fold(h, c)),
            per_writer: HashMap::new(),
        }
    }

    #[test]
    fn a_complete_ordered_stream_passes() {
        let log = log_of(&["a", "b", "c"]);
        let mut t = Tracker::new();
        for (i, c) in ["a", "b", "c"].iter().enumerate() {
            t.observe(c, &mark(0, i as u64 + 1));
        }
        assert_eq!(Verification::check(&log, [&t], &[]).failure(), None);
    }

    #[test]
    fn lost_duplicated_and_reordered_events_fail() {
        let log = log_of(&["a", "b", "c"]);
        let mut lost = Tracker::new();
        lost.observe("a", &mark(0, 1));
        lost.observe("c", &mark(0, 3));
        let mut dup = Tracker::new();
        for (c, n) in [("a", 1), ("b", 2), ("b", 2), ("c", 3)] {
            dup.observe(c, &mark(0, n));
        }
        let mut swapped = Tracker::new();
        // Each from another writer: only the log order can tell.
        for (c, w) in [("b", 1), ("a", 0), ("c", 2)] {
            swapped.observe(c, &mark(w, 1));
        }
        let v = Verification::check(&log, [&lost, &dup, &swapped], &[]);
        assert_eq!(v.lost, 1);
        assert_eq!(v.extra, 1);
        assert_eq!(v.out_of_sequence, 1);
        assert_eq!(v.order_mismatch, 1);
        assert!(v.failure().is_some());
    }

    #[test]
    fn acknowledged_writes_must_be_in_the_log() {
        let mut log = log_of(&[]);
        log.per_writer.insert(0, vec![1, 2]);
        let v = Verification::check(&log, [], &[(0, vec![1, 2, 3])]);
        assert_eq!(v.acked_missing, 1);
    }
}
