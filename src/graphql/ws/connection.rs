//! One WebSocket connection's loop: the reader (the connection's task), a writer task
//! draining a bounded queue into the socket, keep-alive pings, the dead-connection
//! check, the close at the credential's `exp`, and the dispatch of each message to the
//! connection's protocol.
//!
//! A slow client fills the queue, which makes its operations wait; a waiting
//! subscription falls behind the live stream and later catches up from the change log,
//! so nothing grows without bound.

use std::{sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt, stream::SplitSink};
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::{
    admission::TokenBucket,
    legacy,
    outbox::{Queued, outbox},
    protocol::Protocol,
    session::{Close, Connection, WsLimits},
    shared::Shapes,
    transport,
};
use crate::{auth::Authenticator, graphql::AppSchema};

/// Most queued messages written to the socket before one flush.
const WRITE_BATCH: usize = 64;
/// Most turns of the scheduler the writer waits for more messages before a write.
const COALESCE_YIELDS: usize = 16;

/// How a connection ended.
enum End {
    /// The client closed it or the socket failed.
    Gone,
    /// The server closes it with this frame.
    Close(Close),
    /// Nothing arrived for too long: drop it without waiting on the socket.
    Dead,
}

/// Serves one connection speaking `protocol` until either side closes it, the client
/// stops answering, or `shutdown` fires.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    schema: AppSchema,
    limits: WsLimits,
    shapes: Arc<Shapes>,
    auth: Authenticator,
    header_credential: Option<String>,
    shutdown: CancellationToken,
) {
    let (sink, mut incoming) = socket.split();
    let (out, queue) = outbox(limits.send_queue, limits.send_queue_bytes);
    // Closing takes a channel of its own, so a close frame never waits behind queued
    // messages (which a client that does not read may never take).
    let (close, closing) = oneshot::channel::<(CloseFrame, bool)>();
    let writer = tokio::spawn(write_loop(sink, queue, closing));
    let writer_abort = writer.abort_handle();

    let init_timeout = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_timeout);
    let dead = tokio::time::sleep(limits.dead_timeout);
    tokio::pin!(dead);
    let keep_alive_every = limits.keep_alive.max(Duration::from_millis(10));
    let mut keep_alive =
        tokio::time::interval_at(Instant::now() + keep_alive_every, keep_alive_every);
    keep_alive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rate = TokenBucket::new(limits.max_messages_per_second);
    let mut conn = Connection::new(
        protocol,
        schema,
        limits,
        shapes,
        out,
        auth,
        header_credential,
        shutdown.clone(),
    );

    let end = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break End::Close(Close::new(1001, "server shutting down")),
            _ = &mut init_timeout, if !conn.init_received => {
                break End::Close(Close::new(4408, "Connection initialisation timeout"));
            }
            _ = &mut dead => break End::Dead,
            _ = until(conn.expires_at()) => {
                break End::Close(Close::new(4403, "Forbidden: the token expired"));
            }
            _ = keep_alive.tick() => conn.keep_alive(),
            _ = conn.operations.reap(), if conn.operations.has_tasks() => {}
            msg = incoming.next() => {
                // Anything at all, a pong included, shows the client is alive.
                let alive = conn.limits.dead_timeout;
                dead.as_mut().reset(Instant::now() + alive);
                if matches!(msg, Some(Ok(Message::Text(_) | Message::Binary(_)))) && !rate.allow() {
                    break End::Close(Close::new(1008, "message rate limit exceeded"));
                }
                let handled = match msg {
                    None | Some(Ok(Message::Close(_))) => Err(End::Gone),
                    Some(Err(err)) => Err(read_error(err)),
                    Some(Ok(Message::Text(t))) => handle(&mut conn, t.as_bytes()).await,
                    Some(Ok(Message::Binary(b))) => handle(&mut conn, &b).await,
                    // The WebSocket layer answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                };
                if let Err(end) = handled {
                    break end;
                }
                if conn.stalled() {
                    // A reply waited until the client counted as dead, or its token expired.
                    break if conn.expires_at().is_some_and(|at| at <= Instant::now()) {
                        End::Close(Close::new(4403, "Forbidden: the token expired"))
                    } else {
                        End::Dead
                    };
                }
            }
        }
    };

    conn.operations.abort_all();
    match end {
        End::Gone => {}
        End::Close(Close(code, reason)) => {
            tracing::debug!(code, %reason, "closing websocket");
            // What is queued still goes out first (briefly), except at `exp`: nothing
            // more reaches a client whose token has expired.
            let drain = code != 4403;
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = close.send((frame, drain));
            // Read what the client still sends until it answers the close (or for a
            // short while): closing a socket with unread data resets it, and the client
            // would see 1006 instead of the close frame.
            let _ = tokio::time::timeout(CLOSE_ANSWER_WAIT, async {
                while let Some(Ok(msg)) = incoming.next().await {
                    if matches!(msg, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
        End::Dead => {
            tracing::debug!("dropping a websocket that stopped answering");
            writer_abort.abort();
        }
    }
    drop(conn);
    // Let queued messages and the close frame reach the client, but not forever.
    if tokio::time::timeout(CLOSE_WAIT, writer).await.is_err() {
        writer_abort.abort();
    }
}

/// Longest wait for a close frame (and what is queued before it) to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Longest time spent sending what was queued before a close frame.
const DRAIN_WAIT: Duration = Duration::from_secs(1);
/// Longest wait for the client to answer a close frame.
const CLOSE_ANSWER_WAIT: Duration = Duration::from_secs(1);

/// Writes queued messages to the socket until the queue closes, or until a close frame
/// arrives on `closing`. Then, if asked to, what is already queued goes out first for at
/// most [`DRAIN_WAIT`] (a client that reads gets its last results), and the close frame
/// follows; the rest is dropped.
/// Everything queued at one time goes out with one flush: when a change reaches several
/// of the connection's subscriptions, or several changes arrive at once, that is one
/// write to the socket instead of one per message.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    mut queue: mpsc::Receiver<Queued>,
    mut closing: oneshot::Receiver<(CloseFrame, bool)>,
) {
    // Empty until messages come, and emptied again when the queue is: an idle
    // connection holds no batch (64 queued messages' worth of room is 4 KiB).
    let mut batch = Vec::new();
    let frame = loop {
        let received = tokio::select! {
            biased;
            frame = &mut closing => break frame.ok(),
            n = queue.recv_many(&mut batch, WRITE_BATCH) => n,
        };
        if received == 0 {
            return;
        }
        // One change wakes all of the connection's subscriptions at once, and the
        // first message wakes this task: let the others queue theirs first, so the
        // change goes out in one write, not one per subscription. Each yield lets the
        // tasks ahead in the run queue run; stop when two in a row bring nothing new.
        let mut idle = 0;
        for _ in 0..COALESCE_YIELDS {
            if batch.len() >= WRITE_BATCH || idle == 2 {
                break;
            }
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < WRITE_BATCH {
                match queue.try_recv() {
                    Ok(queued) => batch.push(queued),
                    Err(_) => break,
                }
            }
            idle = if batch.len() == before { idle + 1 } else { 0 };
        }
        let write = async {
            for queued in batch.drain(..) {
                sink.feed(queued.msg).await?;
            }
            sink.flush().await
        };
        // A socket the client does not read blocks the write: a close still wins.
        let written = tokio::select! {
            biased;
            frame = &mut closing => Err(frame.ok()),
            written = write => Ok(written),
        };
        match written {
            Ok(Ok(())) => {
                if queue.is_empty() {
                    batch = Vec::new();
                }
            }
            Ok(Err(_)) => return,
            Err(frame) => break frame,
        }
    };
    if let Some((frame, drain)) = frame {
        if drain {
            let _ = tokio::time::timeout(DRAIN_WAIT, async {
                // A close that came while the writer waited for more messages finds
                // them in the batch, not yet written: they go first.
                for queued in batch.drain(..) {
                    if sink.feed(queued.msg).await.is_err() {
                        return;
                    }
                }
                while let Ok(queued) = queue.try_recv() {
                    if sink.feed(queued.msg).await.is_err() {
                        return;
                    }
                }
                let _ = sink.flush().await;
            })
            .await;
        }
        let _ = tokio::time::timeout(CLOSE_WAIT, sink.send(Message::Close(Some(frame)))).await;
    }
}

fn read_error(err: axum::Error) -> End {
    let too_big = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    if too_big {
        End::Close(Close::new(1009, "message too big"))
    } else {
        End::Close(Close::new(1002, "protocol error"))
    }
}

/// One client message, handled by the connection's protocol.
async fn handle(conn: &mut Connection, raw: &[u8]) -> Result<(), End> {
    let handled = match conn.protocol {
        Protocol::Transport => transport::handle(conn, raw).await,
        Protocol::Legacy => legacy::handle(conn, raw).await,
    };
    handled.map_err(End::Close)
}

/// Resolves at `at`, never without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
