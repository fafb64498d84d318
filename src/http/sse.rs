//! Server-sent event streams, as both the GraphQL endpoint (graphql-sse) and the REST
//! change stream serve them.
//!
//! A stream is bounded like a WebSocket: the response body is produced one event at a
//! time, only when the connection asks for the next chunk (that is, when the socket can
//! take more), so a slow client holds at most one event here while its subscription
//! falls behind the live buffer and later catches up from the change log. Streams are
//! counted against `--sse-max-streams`, carry a comment line every `--keep-alive`, and
//! end at server shutdown.

use std::{
    collections::{HashMap, VecDeque},
    pin::Pin,
    sync::Arc,
    time::Duration,
};

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// The media type of event streams.
pub const EVENT_STREAM: &str = "text/event-stream";

/// One event.
#[derive(Debug, Clone, Default)]
pub struct Event {
    /// `event:`; none for the default `message`.
    pub name: Option<&'static str>,
    /// `id:`, which a reconnecting `EventSource` sends back as `Last-Event-ID`.
    pub id: Option<String>,
    /// `data:`.
    pub data: String,
}

impl Event {
    /// The event on the wire.
    fn encode(&self) -> Bytes {
        let mut out = String::with_capacity(self.data.len() + 32);
        if let Some(name) = self.name {
            out.push_str("event: ");
            out.push_str(name);
            out.push('\n');
        }
        if let Some(id) = &self.id {
            out.push_str("id: ");
            out.push_str(id);
            out.push('\n');
        }
        // Every line of the data is its own `data:` field; the client joins them.
        for line in self.data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.trim_end_matches('\r'));
            out.push('\n');
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// What event streams share: the stream count and the keep-alive.
#[derive(Clone)]
pub struct Streams {
    /// One permit per stream being served.
    slots: Arc<Semaphore>,
    /// The limit, for the error message.
    max: usize,
    /// Streams served per caller (token subject, else client address).
    per_caller: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    /// The most one caller may have open.
    max_per_caller: usize,
    /// Comment-line interval.
    keep_alive: Duration,
    /// Streams end when this is cancelled.
    shutdown: CancellationToken,
}

/// A place for one stream, held until the stream ends.
pub struct Slot {
    /// Returned to the semaphore when the stream ends.
    _permit: OwnedSemaphorePermit,
    /// The caller's count, decremented when the stream ends.
    per_caller: Arc<std::sync::Mutex<HashMap<String, usize>>>,
    /// Whose stream this is.
    caller: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.per_caller.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

impl Streams {
    /// At most `max` streams at once and `max_per_caller` for one caller, with a
    /// comment every `keep_alive`, ending on `shutdown`.
    pub fn new(
        max: usize,
        max_per_caller: usize,
        keep_alive: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            per_caller: Arc::default(),
            max_per_caller,
            keep_alive: keep_alive.max(Duration::from_millis(10)),
            shutdown,
        }
    }

    /// A place for one more stream of `caller` (see [`super::caller`]), or
    /// `TOO_MANY_SUBSCRIPTIONS`.
    pub fn admit(&self, caller: String) -> Result<Slot> {
        // The server-wide place first: a refused caller leaves no entry behind.
        let permit = Arc::clone(&self.slots).try_acquire_owned().map_err(|_| {
            Error::TooManySubscriptions(format!(
                "the server serves at most {} event streams at once",
                self.max
            ))
        })?;
        let mut open = self.per_caller.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.get(&caller).copied().unwrap_or(0);
        if count >= self.max_per_caller {
            return Err(Error::TooManySubscriptions(format!(
                "one caller may have at most {} event streams open",
                self.max_per_caller
            )));
        }
        open.insert(caller.clone(), count + 1);
        Ok(Slot {
            _permit: permit,
            per_caller: Arc::clone(&self.per_caller),
            caller,
        })
    }

    /// The `200 text/event-stream` response streaming `events`. When the caller's
    /// credential expires (`expiry`: when, and the events that say so), the stream sends
    /// those events and ends, as a WebSocket closes with 4403.
    pub fn respond(
        &self,
        slot: Slot,
        events: impl Stream<Item = Event> + Send + 'static,
        expiry: Option<(DateTime<Utc>, Vec<Event>)>,
    ) -> Response {
        let mut keep_alive = tokio::time::interval(self.keep_alive);
        keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let (expires, expired) = match expiry {
            Some((at, events)) => {
                let left = (at - Utc::now()).to_std().unwrap_or_default();
                (
                    Some(Box::pin(tokio::time::sleep(left))),
                    VecDeque::from(events),
                )
            }
            None => (None, VecDeque::new()),
        };
        let state = EventBody {
            events: Box::pin(events),
            keep_alive,
            shutdown: self.shutdown.clone(),
            opened: false,
            expires,
            expired,
            ending: false,
            _slot: slot,
        };
        let body = futures_util::stream::unfold(state, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok::<_, std::convert::Infallible>(chunk), s))
        });
        let mut resp = (StatusCode::OK, Body::from_stream(body)).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        // Proxies that buffer responses (nginx) would hold events back.
        headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
        resp
    }
}

/// The state of one streaming body.
struct EventBody {
    events: Pin<Box<dyn Stream<Item = Event> + Send>>,
    keep_alive: tokio::time::Interval,
    shutdown: CancellationToken,
    opened: bool,
    /// Fires when the caller's credential expires.
    expires: Option<Pin<Box<tokio::time::Sleep>>>,
    /// What is sent then, before the stream ends.
    expired: VecDeque<Event>,
    /// The credential expired: only `expired` is left to send.
    ending: bool,
    _slot: Slot,
}

impl EventBody {
    /// The next chunk to write, or `None` to end the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.opened {
            // Some clients and proxies show nothing until the first bytes arrive.
            self.opened = true;
            self.keep_alive.reset();
            return Some(Bytes::from_static(b":\n\n"));
        }
        if self.ending {
            return self.expired.pop_front().map(|e| e.encode());
        }
        tokio::select! {
            _ = self.shutdown.cancelled() => None,
            _ = until(self.expires.as_mut()) => {
                self.ending = true;
                self.expired.pop_front().map(|e| e.encode())
            }
            event = self.events.next() => event.map(|e| e.encode()),
            _ = self.keep_alive.tick() => Some(Bytes::from_static(b":\n\n")),
        }
    }
}

/// Resolves when `sleep` does; never without one.
async fn until(sleep: Option<&mut Pin<Box<tokio::time::Sleep>>>) {
    match sleep {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_encode_every_field_and_split_data_lines() {
        let e = Event {
            name: Some("next"),
            id: Some("c1".into()),
            data: "{\"a\":1}\n{\"b\":2}".into(),
        };
        assert_eq!(
            &e.encode()[..],
            b"event: next\nid: c1\ndata: {\"a\":1}\ndata: {\"b\":2}\n\n"
        );
        let complete = Event {
            name: Some("complete"),
            ..Default::default()
        };
        assert_eq!(&complete.encode()[..], b"event: complete\ndata: \n\n");
    }
}
