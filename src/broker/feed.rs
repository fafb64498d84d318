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

use super::Published;
use crate::{
    error::{Error, Result},
    store::{Change, Store, changes::ChangeFilter},
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
}

const MIN_RETRY: Duration = Duration::from_millis(100);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Streams every change matching `filter` after position `after`, in commit order,
/// each once. While the database is unreachable the stream waits and retries; it ends
/// with an error if a query fails otherwise or the subscriber falls behind the change
/// log's retention.
///
/// `after` must be a committed position; one from a client must have been checked with
/// [`Store::check_resume`].
pub fn subscribe(
    store: Store,
    filter: ChangeFilter,
    after: i64,
) -> impl Stream<Item = Result<Arc<Change>>> + Send + 'static {
    let (rx, head) = store.broker().subscribe();
    let pos = after;
    let mode = if pos < head {
        Mode::CatchingUp
    } else {
        Mode::Live
    };
    let feed = Feed {
        store,
        filter,
        pos,
        rx,
        pending: VecDeque::new(),
        mode,
        retry: MIN_RETRY,
    };
    futures_util::stream::unfold(feed, |mut feed| async move {
        let item = feed.next().await?;
        Some((item, feed))
    })
}

impl Feed {
    async fn next(&mut self) -> Option<Result<Arc<Change>>> {
        loop {
            if let Some(change) = self.pending.pop_front() {
                return Some(Ok(change));
            }
            match self.mode {
                Mode::Done => return None,
                Mode::CatchingUp => {
                    let head = self.store.broker().head();
                    if head <= self.pos {
                        self.mode = Mode::Live;
                        continue;
                    }
                    let batch = u64::from(self.store.limits().catch_up_batch.max(1));
                    match self
                        .store
                        .changes_between(self.pos, head, &self.filter, batch)
                        .await
                    {
                        Ok(read) => {
                            self.retry = MIN_RETRY;
                            self.pos = read.through;
                            self.pending.extend(read.changes.into_iter().map(Arc::new));
                            if !read.has_more {
                                self.mode = Mode::Live;
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
                            self.mode = Mode::Done;
                            return Some(Err(err));
                        }
                    }
                }
                Mode::Live => match self.rx.recv().await {
                    Ok(published) if published.change.seq <= self.pos => {}
                    Ok(published) if published.prev == self.pos => {
                        self.pos = published.change.seq;
                        if self.filter.matches(&published.change) {
                            return Some(Ok(Arc::clone(&published.change)));
                        }
                    }
                    Ok(_) | Err(RecvError::Lagged(_)) => {
                        self.store
                            .broker()
                            .stats()
                            .catch_ups
                            .fetch_add(1, Ordering::Relaxed);
                        self.mode = Mode::CatchingUp;
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}
