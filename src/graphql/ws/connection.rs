//! One WebSocket connection: the reader loop (the connection's task), a writer task
//! draining a bounded queue into the socket, the operations, keep-alive pings, the
//! dead-connection check and the close at the credential's `exp`.
//!
//! A slow client fills the queue, which makes its operations wait; a waiting
//! subscription falls behind the live stream and later catches up from the change log,
//! so nothing grows without bound.

use std::time::Duration;

use async_graphql::Request;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{sync::mpsc, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    Protocol, WsLimits, admission::TokenBucket, legacy, operations::Operations, text, transport,
};
use crate::{
    auth::{Access, Authenticator},
    graphql::AppSchema,
};

/// Most queued messages written to the socket before one flush.
const WRITE_BATCH: usize = 64;

/// Why the server closes the connection.
pub(super) struct Close(u16, String);

impl Close {
    /// A close frame; the reason is cut to the 123 bytes a close frame can carry.
    pub(super) fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > 123 {
            let mut end = 123;
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
        }
        Self(code, reason)
    }
}

/// How a connection ended.
enum End {
    /// The client closed it or the socket failed.
    Gone,
    /// The server closes it with this frame.
    Close(Close),
    /// Nothing arrived for too long: drop it without waiting on the socket.
    Dead,
}

/// State of one connection, shared by both protocols' message handlers.
pub(crate) struct Connection {
    pub(super) protocol: Protocol,
    schema: AppSchema,
    limits: WsLimits,
    out: mpsc::Sender<Message>,
    pub(super) init_received: bool,
    pub(super) acknowledged: bool,
    /// Checks the credential of `connection_init` (or of the upgrade request).
    auth: Authenticator,
    /// The upgrade request's `Authorization` header, used when `connection_init`
    /// carries none.
    header_credential: Option<String>,
    /// What the connection may do, once `connection_init` authenticated it.
    access: Option<Access>,
    /// The operations running.
    pub(super) operations: Operations,
}

/// Serves one connection speaking `protocol` until either side closes it, the client
/// stops answering, or `shutdown` fires.
#[allow(clippy::too_many_arguments)]
pub(super) async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    schema: AppSchema,
    limits: WsLimits,
    auth: Authenticator,
    header_credential: Option<String>,
    shutdown: CancellationToken,
) {
    let (mut sink, mut incoming) = socket.split();
    let (out, mut queue) = mpsc::channel::<Message>(limits.send_queue.max(1));
    // Everything queued goes out with one flush: when a change reaches several of the
    // connection's subscriptions, or several changes arrive at once, that is one write
    // to the socket instead of one per message.
    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while queue.recv_many(&mut batch, WRITE_BATCH).await > 0 {
            let mut closing = false;
            for msg in batch.drain(..) {
                closing = matches!(msg, Message::Close(_));
                if sink.feed(msg).await.is_err() {
                    return;
                }
                if closing {
                    break;
                }
            }
            if sink.flush().await.is_err() || closing {
                break;
            }
        }
    });
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
    let mut conn = Connection {
        protocol,
        schema,
        operations: Operations::new(limits.max_subscriptions),
        limits,
        out,
        init_received: false,
        acknowledged: false,
        auth,
        header_credential,
        access: None,
    };

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
                    Some(Ok(Message::Text(t))) => conn.handle(t.as_bytes()).await,
                    Some(Ok(Message::Binary(b))) => conn.handle(&b).await,
                    // The WebSocket layer answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Ok(()),
                };
                if let Err(end) = handled {
                    break end;
                }
            }
        }
    };

    conn.operations.abort_all();
    match end {
        End::Gone => {}
        End::Close(Close(code, reason)) => {
            tracing::debug!(code, %reason, "closing websocket");
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = conn.out.send(Message::Close(Some(frame))).await;
        }
        End::Dead => {
            tracing::debug!("dropping a websocket that stopped answering");
            writer_abort.abort();
        }
    }
    drop(conn);
    // Let queued messages and the close frame reach the client, but not forever.
    if tokio::time::timeout(Duration::from_secs(5), writer)
        .await
        .is_err()
    {
        writer_abort.abort();
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

impl Connection {
    pub(super) async fn send(&self, msg: Value) {
        // A send fails only when the writer is gone, and then the connection is over.
        let _ = self.out.send(text(msg)).await;
    }

    /// One client message, handled by the connection's protocol.
    async fn handle(&mut self, raw: &[u8]) -> Result<(), End> {
        let handled = match self.protocol {
            Protocol::Transport => transport::handle(self, raw).await,
            Protocol::Legacy => legacy::handle(self, raw).await,
        };
        handled.map_err(End::Close)
    }

    /// Authenticates `connection_init`: the credential in its payload's
    /// `Authorization` (`"Bearer …"`), else the upgrade request's header. A bad one
    /// closes the connection with 4403 before anything is sent.
    pub(super) fn authenticate(&mut self, payload: Option<&Value>) -> Result<(), Close> {
        let from_payload = payload
            .and_then(|p| p.get("Authorization").or_else(|| p.get("authorization")))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let credential = from_payload.or_else(|| self.header_credential.clone());
        match self.auth.authenticate(credential.as_deref()) {
            Ok(access) => {
                self.access = Some(access);
                Ok(())
            }
            Err(err) => Err(Close::new(4403, format!("Forbidden: {err}"))),
        }
    }

    /// When the connection's credential expires, if it does.
    fn expires_at(&self) -> Option<tokio::time::Instant> {
        let at = self.access.as_ref()?.expires_at?;
        let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }

    /// A WebSocket ping, and on the legacy protocol a `ka`. Never waits: when the
    /// queue is full the client is not reading, and a ping would not help.
    fn keep_alive(&self) {
        let _ = self.out.try_send(Message::Ping(Default::default()));
        if self.protocol == Protocol::Legacy && self.acknowledged {
            let _ = self.out.try_send(text(json!({"type": "ka"})));
        }
    }

    /// Whether another operation may start; if not, refuses operation `id` with the
    /// protocol's `error` and `TOO_MANY_SUBSCRIPTIONS`.
    pub(super) async fn admit(&mut self, id: &str) -> bool {
        if self.operations.has_room() {
            return true;
        }
        let message = format!(
            "a connection may run at most {} operations at once",
            self.operations.max()
        );
        let errors =
            json!([{"message": message, "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"}}]);
        self.send(self.protocol.error(id, errors)).await;
        false
    }

    /// Runs operation `id` in its own task. The connection's access goes with it; an
    /// operation before authentication (which the protocols prevent) is refused.
    pub(super) async fn start(&mut self, id: String, request: Request) {
        let Some(access) = self.access.clone() else {
            let errors = json!([{"message": "the connection is not authenticated",
                                 "extensions": {"code": "UNAUTHENTICATED"}}]);
            self.send(self.protocol.error(&id, errors)).await;
            return;
        };
        let results = self.schema.execute_stream(request.data(access));
        self.operations
            .start(id, self.protocol, self.out.clone(), results);
    }
}

/// Resolves at `at`, never without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
