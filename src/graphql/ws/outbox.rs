//! A connection's send queue, bounded in messages and in bytes.
//!
//! A client that stops reading must not make the server hold more than
//! `--ws-send-queue` messages and `--ws-send-queue-bytes` bytes for it: each queued
//! text or binary message holds permits of a byte semaphore for its length (a message
//! larger than the whole budget takes all of it, so it still goes, alone) until the
//! write loop has handed it to the socket. Control frames cost nothing.

use std::sync::Arc;

use axum::extract::ws::Message;
use tokio::sync::{
    OwnedSemaphorePermit, Semaphore,
    mpsc::{self, error::TrySendError},
};

/// A queued message and the bytes it holds.
pub(super) struct Queued {
    /// The message.
    pub(super) msg: Message,
    /// Released once the message is handed to the socket.
    _bytes: Option<OwnedSemaphorePermit>,
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub(super) struct Outbox {
    tx: mpsc::Sender<Queued>,
    bytes: Arc<Semaphore>,
    max_bytes: u32,
}

/// The queue is closed: the connection is over.
#[derive(Debug)]
pub(super) struct Closed;

/// A queue of at most `messages` messages and `bytes` bytes.
pub(super) fn outbox(messages: usize, bytes: usize) -> (Outbox, mpsc::Receiver<Queued>) {
    let (tx, rx) = mpsc::channel(messages.max(1));
    let max_bytes = u32::try_from(bytes.max(1)).unwrap_or(u32::MAX);
    let outbox = Outbox {
        tx,
        bytes: Arc::new(Semaphore::new(max_bytes as usize)),
        max_bytes,
    };
    (outbox, rx)
}

impl Outbox {
    fn cost(&self, msg: &Message) -> u32 {
        let len = match msg {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
            _ => 0,
        };
        u32::try_from(len).unwrap_or(u32::MAX).min(self.max_bytes)
    }

    /// Queues `msg`, waiting for room in messages and bytes.
    pub(super) async fn send(&self, msg: Message) -> Result<(), Closed> {
        let cost = self.cost(&msg);
        let bytes = match cost {
            0 => None,
            n => Some(
                Arc::clone(&self.bytes)
                    .acquire_many_owned(n)
                    .await
                    .map_err(|_| Closed)?,
            ),
        };
        self.tx
            .send(Queued { msg, _bytes: bytes })
            .await
            .map_err(|_| Closed)
    }

    /// Queues `msg` if there is room now.
    pub(super) fn try_send(&self, msg: Message) -> Result<(), TrySendError<Message>> {
        let cost = self.cost(&msg);
        let bytes = match cost {
            0 => None,
            n => match Arc::clone(&self.bytes).try_acquire_many_owned(n) {
                Ok(permit) => Some(permit),
                Err(_) => return Err(TrySendError::Full(msg)),
            },
        };
        self.tx
            .try_send(Queued { msg, _bytes: bytes })
            .map_err(|e| match e {
                TrySendError::Full(q) => TrySendError::Full(q.msg),
                TrySendError::Closed(q) => TrySendError::Closed(q.msg),
            })
    }
}
