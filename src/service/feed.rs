//! One subscription's ordered, gap-free stream of changes.
//!
//! The feed keeps `pos`, the last position it has accounted for (delivered or filtered
//! out). It is always in one of two modes:
//! - catching up: reads the change log after `pos` up to the broker's head in batches;
//! - live: takes changes from the broadcast. A change at or below `pos` was already
//!   read from the log and is skipped; one whose `prev` is `pos` is the next one; any
//!   other (or `Lagged`) means something was missed, and the feed catches up again.
//!
//! The receiver is created before the first read of the log, so every change is either
//! in the log read or in the receiver: none falls between the two.

use std::{collections::VecDeque, sync::Arc, sync::atomic::Ordering, time::Duration};

use futures_util::Stream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::task::AbortOnDropHandle;

use crate::{
    broker::Published,
    error::{Error, Result},
    metrics as m,
    model::Change,
    store::{
        Store,
        changes::{ChangeBatch, ChangeFilter},
    },
};

/// Where a feed is.
enum Mode {
    CatchingUp,
    Live,
    Done,
}

struct Feed {
    store: Store,
    filter: ChangeFilter,
    pos: i64,
    rx: broadcast::Receiver<Arc<Published>>,
    pending: VecDeque<Arc<Change>>,
    mode: Mode,
    /// Wait before retrying a read while the database is unreachable.
    retry: Duration,
    /// While catching up: the read of the next batch, running while this one is sent,
    /// so reading the log and delivering overlap. At most one, so a catching-up feed
    /// holds at most two batches.
    /// Dropping it (with the feed, even while it is awaited) aborts the read.
    prefetch: Option<AbortOnDropHandle<Result<ChangeBatch>>>,
    /// Deliveries and their lag behind the commit, looked up once rather than at every
    /// delivery.
    delivered: metrics::Counter,
    lag: metrics::Histogram,
}

const MIN_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Streams every change matching `filter` after position `after`, in commit order,
/// each once. While the database is unreachable the stream waits and retries; it ends
/// with an error if a query fails otherwise or the subscriber falls behind the change
/// log's retention.
///
/// `after` must be a committed position; one from a client must have been checked with
/// [`Store::check_resume`] (the service does).
pub fn subscribe(
    store: Store,
    filter: ChangeFilter,
    after: i64,
) -> impl Stream<Item = Result<Arc<Change>>> + Send + 'static {
    let (rx, head) = store.broker().subscribe();
    let pos = after;
    metrics::gauge!(m::SUBSCRIPTIONS_ACTIVE).increment(1.0);
    let mut feed = Feed {
        store,
        filter,
        pos,
        rx,
        pending: VecDeque::new(),
        mode: Mode::Live,
        retry: MIN_RETRY,
        prefetch: None,
        delivered: metrics::counter!(m::EVENTS_DELIVERED),
        lag: metrics::histogram!(m::DELIVERY_SECONDS),
    };
    if pos < head {
        feed.set_mode(Mode::CatchingUp);
    }
    futures_util::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        Some((item, feed))
    })
}

impl Feed {
    async fn next(&mut self) -> Option<Result<Arc<Change>>> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(Ok(self.delivered(change)));
            }
            match self.mode {
                Mode::Done => return None,
                Mode::CatchingUp => {
                    let head = self.store.broker().head();
                    if head <= self.pos {
                        self.set_mode(Mode::Live);
                        continue;
                    }
                    let read = match self.prefetch.take() {
                        Some(next) => next.await.unwrap_or_else(|e| {
                            Err(Error::Internal(format!(
                                "reading the change log failed: {e}"
                            )))
                        }),
                        None => read_batch(&self.store, &self.filter, self.pos, head).await,
                    };
                    match read {
                        Ok(read) => {
                            self.retry = MIN_RETRY;
                            self.pos = read.through;
                            self.pending.extend(read.changes.into_iter().map(Arc::new));
                            if read.has_more {
                                let (store, filter, pos) =
                                    (self.store.clone(), self.filter.clone(), self.pos);
                                let head = self.store.broker().head();
                                self.prefetch =
                                    Some(AbortOnDropHandle::new(tokio::spawn(async move {
                                        read_batch(&store, &filter, pos, head).await
                                    })));
                            } else {
                                self.set_mode(Mode::Live);
                            }
                        }
                        Err(Error::Unavailable(err)) => {
                            // The subscription stays open and resumes from `pos` once the
                            // database is back.
                            tracing::warn!(error = %err, retry_in = ?self.retry, "catch-up waits for the database");
                            tokio::time::sleep(self.retry).await;
                            self.retry = (self.retry * 2).min(MAX_RETRY);
                        }
                        Err(err) => {
                            self.set_mode(Mode::Done);
                            return Some(Err(err));
                        }
                    }
                }
                Mode::Live => match self.rx.recv().await {
                    Ok(published) if published.change.seq <= self.pos => {}
                    Ok(published) if published.prev == self.pos => {
                        self.pos = published.change.seq;
                        if self.filter.matches(&published.change) {
                            return Some(Ok(self.delivered(Arc::clone(&published.change))));
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        self.store
                            .broker()
                            .stats()
                            .catch_ups
                            .fetch_add(1, Ordering::Relaxed);
                        self.set_mode(Mode::CatchingUp);
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Counts a delivery and how long after its commit it happened.
    fn delivered(&self, change: Arc<Change>) -> Arc<Change> {
        self.delivered.increment(1);
        let lag = chrono::Utc::now() - change.changed_at;
        self.lag.record(lag.as_seconds_f64().max(0.0));
        change
    }

    /// Switches mode, keeping the catching-up gauge true.
    fn set_mode(&mut self, mode: Mode) {
        let was = matches!(self.mode, Mode::CatchingUp);
        let is = matches!(mode, Mode::CatchingUp);
        if was != is {
            metrics::gauge!(m::SUBSCRIPTIONS_CATCHING_UP).increment(if is { 1.0 } else { -1.0 });
        }
        self.mode = mode;
    }
}

/// Up to `--catch-up-batch` changes matching `filter` after `pos`, up to `head`.
async fn read_batch(
    store: &Store,
    filter: &ChangeFilter,
    pos: i64,
    head: i64,
) -> Result<ChangeBatch> {
    let batch = u64::from(store.limits().catch_up_batch.max(1));
    store.changes_between(pos, head, filter, batch, None).await
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.set_mode(Mode::Done);
        metrics::gauge!(m::SUBSCRIPTIONS_ACTIVE).decrement(1.0);
    }
}
