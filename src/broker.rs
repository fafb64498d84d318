//! Fan-out of committed changes to subscribers.
//!
//! [`Broker`] is a bounded broadcast of every committed change, each tagged with the
//! position published before it so a receiver can tell it missed one. The store's
//! writer publishes to it (SQLite); the service's follower does on PostgreSQL; the
//! service's feeds read it. It knows nothing of either: it depends on the model alone.
//!
//! The broadcast is bounded (`--live-buffer`): a subscriber that falls further behind
//! than that gets `Lagged` and reads what it missed from the change log, so a slow
//! client costs memory only for the shared buffer, never an unbounded queue.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use tokio::sync::broadcast;

use crate::model::Change;

/// A committed change as the broker hands it out.
#[derive(Debug)]
pub struct Published {
    /// The position published just before this one.
    pub prev: i64,
    /// The change.
    pub change: Arc<Change>,
}

/// Counters a test or an operator can read.
#[derive(Debug, Default)]
pub struct Stats {
    /// Changes published.
    pub published: AtomicU64,
    /// Times a subscriber went back to the change log because the live stream had a gap.
    pub catch_ups: AtomicU64,
}

/// A cheap-to-clone handle on the fan-out.
#[derive(Clone)]
pub struct Broker {
    inner: Arc<Inner>,
}

struct Inner {
    /// The live stream of every change.
    tx: broadcast::Sender<Arc<Published>>,
    /// The newest published position; taken with `tx.subscribe()` under the same lock
    /// so a new receiver knows exactly where its live stream starts.
    head: Mutex<i64>,
    /// Counters.
    stats: Stats,
    /// Wakes the PostgreSQL follower after a local commit.
    poke: tokio::sync::Notify,
    /// Whether the PostgreSQL follower holds its LISTEN connection.
    listening: std::sync::atomic::AtomicBool,
    /// Whether what was published is known to match the log (false after a write whose
    /// outcome is unknown, until the writer has resynced).
    synced: std::sync::atomic::AtomicBool,
}

impl Broker {
    /// A broker whose log is at `head`, buffering up to `capacity` live changes.
    pub fn new(head: i64, capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self {
            inner: Arc::new(Inner {
                tx,
                head: Mutex::new(head),
                stats: Stats::default(),
                poke: tokio::sync::Notify::new(),
                listening: std::sync::atomic::AtomicBool::new(false),
                synced: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    /// Publishes a committed change. Callers publish in commit order.
    pub fn publish(&self, change: Change) {
        let mut head = self.inner.head.lock().unwrap_or_else(|e| e.into_inner());
        let published = Arc::new(Published {
            prev: *head,
            change: Arc::new(change),
        });
        *head = published.change.seq;
        // No receivers is not an error: nobody is listening right now.
        let _ = self.inner.tx.send(published);
        self.inner.stats.published.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::metrics::EVENTS_PUBLISHED).increment(1);
        metrics::gauge!(crate::metrics::CHANGE_LOG_HEAD).set(*head as f64);
    }

    /// Moves the head to `seq` without publishing, past a change-log row that could not
    /// be decoded; live subscribers then find a gap and catch up from the log, which
    /// leaves that row out too.
    pub fn advance(&self, seq: i64) {
        let mut head = self.inner.head.lock().unwrap_or_else(|e| e.into_inner());
        if seq > *head {
            *head = seq;
        }
    }

    /// Marks what was published as possibly behind the log: the publisher must resync
    /// from the log before it publishes again.
    pub fn mark_unsynced(&self) {
        self.inner.synced.store(false, Ordering::SeqCst);
    }

    /// Marks what was published as matching the log again.
    pub fn mark_synced(&self) {
        self.inner.synced.store(true, Ordering::SeqCst);
    }

    /// Whether what was published is known to match the log (for readiness).
    pub fn in_sync(&self) -> bool {
        self.inner.synced.load(Ordering::SeqCst)
    }

    /// A receiver of every change published after the returned position.
    pub fn subscribe(&self) -> (broadcast::Receiver<Arc<Published>>, i64) {
        let head = self.inner.head.lock().unwrap_or_else(|e| e.into_inner());
        (self.inner.tx.subscribe(), *head)
    }

    /// Asks the follower to read the log now (a local change was committed).
    pub fn poke(&self) {
        self.inner.poke.notify_one();
    }

    /// Records whether the follower holds its LISTEN connection.
    pub fn set_follower_listening(&self, listening: bool) {
        self.inner.listening.store(listening, Ordering::Relaxed);
    }

    /// Whether the follower holds its LISTEN connection (for readiness).
    pub fn follower_listening(&self) -> bool {
        self.inner.listening.load(Ordering::Relaxed)
    }

    /// Resolves when [`Broker::poke`] was called since the last time.
    pub async fn poked(&self) {
        self.inner.poke.notified().await;
    }

    /// The newest published position.
    pub fn head(&self) -> i64 {
        *self.inner.head.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Live receivers right now.
    pub fn receivers(&self) -> usize {
        self.inner.tx.receiver_count()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.inner.stats
    }
}
