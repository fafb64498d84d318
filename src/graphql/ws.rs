//! The `graphql-transport-ws` protocol (the graphql-ws library's, used by Apollo
//! Client's `GraphQLWsLink` and GraphiQL).
//!
//! One connection is a reader loop (this task), a writer task draining a bounded
//! queue into the socket, and one task per operation. A slow client fills the queue,
//! which makes its operations wait; a waiting subscription falls behind the live stream
//! and later catches up from the change log, so nothing grows without bound.
//!
//! Close codes follow the protocol: 4400 bad message, 4401 subscribe before
//! `connection_ack`, 4408 no `connection_init` in time, 4409 duplicate operation id,
//! 4429 a second `connection_init`, 4406 unsupported subprotocol; 1009 for an oversized
//! message and 1001 when the server shuts down.

use std::{collections::HashMap, time::Duration};

use async_graphql::{Request, Response};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::{
    sync::mpsc,
    task::{AbortHandle, JoinSet},
};
use tokio_util::sync::CancellationToken;

use super::AppSchema;

/// The subprotocol this module speaks.
pub const PROTOCOL: &str = "graphql-transport-ws";

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Time allowed before `connection_init`.
    pub init_timeout: Duration,
    /// Operations one connection may run at once.
    pub max_subscriptions: usize,
    /// Outgoing messages queued before operations wait.
    pub send_queue: usize,
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<Value>,
    },
    Pong {},
    Subscribe {
        id: String,
        payload: Box<Request>,
    },
    Complete {
        id: String,
    },
}

/// Why the server closes the connection.
struct Close(u16, String);

impl Close {
    /// A close frame; the reason is cut to the 123 bytes a close frame can carry.
    fn new(code: u16, reason: impl Into<String>) -> Self {
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

fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

/// Closes a socket whose client offered no subprotocol we speak.
pub async fn reject_subprotocol(mut socket: WebSocket) {
    let frame = CloseFrame {
        code: 4406,
        reason: "Subprotocol not acceptable".into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

/// State of one connection.
struct Connection {
    schema: AppSchema,
    limits: WsLimits,
    out: mpsc::Sender<Message>,
    init_received: bool,
    acknowledged: bool,
    /// Running operations by id, with a generation so a finished task cannot remove
    /// a newer operation that reused its id.
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    tasks: JoinSet<(String, u64)>,
}

/// Serves one `graphql-transport-ws` connection until either side closes it or
/// `shutdown` fires.
pub async fn serve(
    socket: WebSocket,
    schema: AppSchema,
    limits: WsLimits,
    shutdown: CancellationToken,
) {
    let (mut sink, mut incoming) = socket.split();
    let (out, mut queue) = mpsc::channel::<Message>(limits.send_queue.max(1));
    let writer = tokio::spawn(async move {
        while let Some(msg) = queue.recv().await {
            let closing = matches!(msg, Message::Close(_));
            if sink.send(msg).await.is_err() || closing {
                break;
            }
        }
    });

    let init_timeout = tokio::time::sleep(limits.init_timeout);
    tokio::pin!(init_timeout);
    let mut conn = Connection {
        schema,
        limits,
        out,
        init_received: false,
        acknowledged: false,
        operations: HashMap::new(),
        generation: 0,
        tasks: JoinSet::new(),
    };

    let close = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Some(Close::new(1001, "server shutting down")),
            _ = &mut init_timeout, if !conn.init_received => {
                break Some(Close::new(4408, "Connection initialisation timeout"));
            }
            Some(done) = conn.tasks.join_next(), if !conn.tasks.is_empty() => {
                if let Ok((id, generation)) = done
                    && conn.operations.get(&id).is_some_and(|(g, _)| *g == generation)
                {
                    conn.operations.remove(&id);
                }
            }
            msg = incoming.next() => match msg {
                None | Some(Ok(Message::Close(_))) => break None,
                Some(Err(err)) => break Some(read_error(err)),
                Some(Ok(Message::Text(t))) => {
                    if let Err(close) = conn.handle(t.as_bytes()).await {
                        break Some(close);
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    if let Err(close) = conn.handle(&b).await {
                        break Some(close);
                    }
                }
                // The WebSocket layer answers pings itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            },
        }
    };

    conn.tasks.abort_all();
    if let Some(Close(code, reason)) = close {
        tracing::debug!(code, %reason, "closing websocket");
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = conn.out.send(Message::Close(Some(frame))).await;
    }
    drop(conn);
    // Let queued messages and the close frame reach the client, but not forever.
    let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
}

fn read_error(err: axum::Error) -> Close {
    let too_big = std::error::Error::source(&err)
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
    if too_big {
        Close::new(1009, "message too big")
    } else {
        Close::new(1002, "protocol error")
    }
}

impl Connection {
    async fn send(&self, msg: Value) {
        // A send fails only when the writer is gone, and then the connection is over.
        let _ = self.out.send(text(msg)).await;
    }

    async fn handle(&mut self, raw: &[u8]) -> Result<(), Close> {
        let msg: ClientMessage = serde_json::from_slice(raw)
            .map_err(|e| Close::new(4400, format!("Invalid message received: {e}")))?;
        match msg {
            ClientMessage::ConnectionInit { payload } => {
                if self.init_received {
                    return Err(Close::new(4429, "Too many initialisation requests"));
                }
                if payload
                    .as_ref()
                    .is_some_and(|p| !p.is_object() && !p.is_null())
                {
                    return Err(Close::new(
                        4400,
                        "connection_init payload must be an object",
                    ));
                }
                self.init_received = true;
                self.acknowledged = true;
                self.send(json!({"type": "connection_ack"})).await;
            }
            ClientMessage::Ping { payload } => {
                let pong = match payload {
                    Some(p) => json!({"type": "pong", "payload": p}),
                    None => json!({"type": "pong"}),
                };
                self.send(pong).await;
            }
            ClientMessage::Pong {} => {}
            ClientMessage::Subscribe { id, payload } => {
                if !self.acknowledged {
                    return Err(Close::new(4401, "Unauthorized"));
                }
                // An operation that has just finished is gone, even if its task has
                // not been reaped yet: its id may be reused at once.
                self.operations
                    .retain(|_, (_, handle)| !handle.is_finished());
                if self.operations.contains_key(&id) {
                    return Err(Close::new(
                        4409,
                        format!("Subscriber for {id} already exists"),
                    ));
                }
                if self.operations.len() >= self.limits.max_subscriptions {
                    let message = format!(
                        "a connection may run at most {} operations at once",
                        self.limits.max_subscriptions
                    );
                    self.send(json!({
                        "type": "error",
                        "id": id,
                        "payload": [{"message": message, "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"}}],
                    }))
                    .await;
                    return Ok(());
                }
                self.start(id, *payload);
            }
            ClientMessage::Complete { id } => {
                if let Some((_, handle)) = self.operations.remove(&id) {
                    handle.abort();
                }
            }
        }
        Ok(())
    }

    /// Runs one operation in its own task, sending its results as `next` messages.
    fn start(&mut self, id: String, request: Request) {
        self.generation += 1;
        let generation = self.generation;
        let schema = self.schema.clone();
        let out = self.out.clone();
        let task_id = id.clone();
        let handle = self.tasks.spawn(async move {
            let id = task_id;
            let mut results = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = results.next().await {
                let msg = if first && is_request_error(&response) {
                    // Nothing was executed: the protocol's `error` ends the operation.
                    let msg = json!({"type": "error", "id": id, "payload": response.errors});
                    let _ = out.send(text(msg)).await;
                    return (id, generation);
                } else {
                    json!({"type": "next", "id": id, "payload": response})
                };
                first = false;
                if out.send(text(msg)).await.is_err() {
                    return (id, generation);
                }
            }
            let _ = out.send(text(json!({"type": "complete", "id": id}))).await;
            (id, generation)
        });
        self.operations.insert(id, (generation, handle));
    }
}

/// A response refused before execution (parse or validation errors, which have no
/// path). As in the reference graphql-ws server, only these are sent as `error`; errors
/// raised while executing arrive as `next` followed by `complete`.
fn is_request_error(response: &Response) -> bool {
    response.is_err()
        && matches!(response.data, async_graphql::Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}
