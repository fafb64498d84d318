//! GraphQL over WebSockets: the connection loop both subprotocols share.
//!
//! # Layout
//! - this file: one connection. A reader loop (the connection's task), a writer task
//!   draining a bounded queue into the socket, one task per operation, keep-alive pings
//!   and the dead-connection check. A slow client fills the queue, which makes its
//!   operations wait; a waiting subscription falls behind the live stream and later
//!   catches up from the change log, so nothing grows without bound.
//! - [`transport`]: `graphql-transport-ws`, the graphql-ws library's protocol (Apollo
//!   Client's `GraphQLWsLink`, GraphiQL).
//! - [`legacy`]: `graphql-ws`, the protocol of the older subscriptions-transport-ws
//!   library (Apollo Client's `WebSocketLink`).
//!
//! Both protocols share the limits: time to `connection_init`, operations per
//! connection, message size (1009 when over), and the keep-alive. The server sends a
//! WebSocket ping every `--keep-alive` (every WebSocket implementation answers it
//! without the application's help); a connection from which nothing has arrived for
//! `--ws-dead-timeout` is dropped with its subscriptions. At shutdown every connection
//! is closed with 1001.

pub mod legacy;
pub mod transport;

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use async_graphql::{Request, Response};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::{
    sync::mpsc,
    task::{AbortHandle, JoinSet},
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use super::AppSchema;
use crate::auth::{Access, Authenticator};

/// The subprotocols served, in the order the server prefers them.
pub const PROTOCOLS: [&str; 2] = [transport::PROTOCOL, legacy::PROTOCOL];

/// Which subprotocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`.
    Transport,
    /// `graphql-ws` (subscriptions-transport-ws).
    Legacy,
}

impl Protocol {
    /// The protocol named by a negotiated subprotocol.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            transport::PROTOCOL => Some(Self::Transport),
            legacy::PROTOCOL => Some(Self::Legacy),
            _ => None,
        }
    }

    /// The message carrying one result of operation `id`. Every delivery of every
    /// subscription passes here, so the response is serialized straight into the
    /// message text rather than through an intermediate JSON tree.
    fn next(self, id: &str, response: &Response) -> Message {
        let kind = match self {
            Self::Transport => "next",
            Self::Legacy => "data",
        };
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(br#"{"type":""#);
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(br#"","id":"#);
        let written = serde_json::to_writer(&mut out, id).and_then(|()| {
            out.extend_from_slice(br#","payload":"#);
            serde_json::to_writer(&mut out, response)
        });
        match written.map(|()| String::from_utf8(out)) {
            Ok(Ok(mut text)) => {
                text.push('}');
                Message::Text(Utf8Bytes::from(text))
            }
            // Serializing a response cannot fail; should it, the client gets an error
            // result rather than a broken frame.
            _ => text(json!({"type": kind, "id": id, "payload": {
                "errors": [{"message": "the result could not be serialized",
                            "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}})),
        }
    }

    /// The message refusing operation `id` before it ran (no `complete` follows).
    fn error(self, id: &str, errors: Value) -> Value {
        json!({"type": "error", "id": id, "payload": errors})
    }

    /// The message ending operation `id`.
    fn complete(self, id: &str) -> Value {
        json!({"type": "complete", "id": id})
    }
}

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Time allowed before `connection_init`.
    pub init_timeout: Duration,
    /// Operations one connection may run at once.
    pub max_subscriptions: usize,
    /// Outgoing messages queued before operations wait.
    pub send_queue: usize,
    /// How often the server pings (and, on the legacy protocol, sends `ka`).
    pub keep_alive: Duration,
    /// Silence after which the client is taken for dead.
    pub dead_timeout: Duration,
    /// Messages per second the client may send, in bursts up to as many.
    pub max_messages_per_second: u32,
}

/// Most queued messages written to the socket before one flush.
const WRITE_BATCH: usize = 64;

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

/// How a connection ended.
enum End {
    /// The client closed it or the socket failed.
    Gone,
    /// The server closes it with this frame.
    Close(Close),
    /// Nothing arrived for too long: drop it without waiting on the socket.
    Dead,
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

/// State of one connection, shared by both protocols' message handlers.
pub(crate) struct Connection {
    protocol: Protocol,
    schema: AppSchema,
    limits: WsLimits,
    out: mpsc::Sender<Message>,
    init_received: bool,
    acknowledged: bool,
    /// Checks the credential of `connection_init` (or of the upgrade request).
    auth: Authenticator,
    /// The upgrade request's `Authorization` header, used when `connection_init`
    /// carries none.
    header_credential: Option<String>,
    /// What the connection may do, once `connection_init` authenticated it.
    access: Option<Access>,
    /// Running operations by id, with a generation so a finished task cannot remove
    /// a newer operation that reused its id.
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
    tasks: JoinSet<(String, u64)>,
}

/// Serves one connection speaking `protocol` until either side closes it, the client
/// stops answering, or `shutdown` fires.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
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
        limits,
        out,
        init_received: false,
        acknowledged: false,
        auth,
        header_credential,
        access: None,
        operations: HashMap::new(),
        generation: 0,
        tasks: JoinSet::new(),
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
            Some(done) = conn.tasks.join_next(), if !conn.tasks.is_empty() => {
                if let Ok((id, generation)) = done
                    && conn.operations.get(&id).is_some_and(|(g, _)| *g == generation)
                {
                    conn.operations.remove(&id);
                }
            }
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

    conn.tasks.abort_all();
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
    async fn send(&self, msg: Value) {
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
    fn authenticate(&mut self, payload: Option<&Value>) -> Result<(), Close> {
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

    /// Drops operations whose task has ended, so that their ids may be reused at once.
    fn forget_finished(&mut self) {
        self.operations
            .retain(|_, (_, handle)| !handle.is_finished());
    }

    /// Whether another operation may start; if not, refuses operation `id` with the
    /// protocol's `error` and `TOO_MANY_SUBSCRIPTIONS`.
    async fn admit(&mut self, id: &str) -> bool {
        self.forget_finished();
        if self.operations.len() < self.limits.max_subscriptions {
            return true;
        }
        let message = format!(
            "a connection may run at most {} operations at once",
            self.limits.max_subscriptions
        );
        let errors =
            json!([{"message": message, "extensions": {"code": "TOO_MANY_SUBSCRIPTIONS"}}]);
        self.send(self.protocol.error(id, errors)).await;
        false
    }

    /// Stops operation `id`; whether it was running.
    fn stop(&mut self, id: &str) -> bool {
        match self.operations.remove(id) {
            Some((_, handle)) => {
                handle.abort();
                true
            }
            None => false,
        }
    }

    /// Runs one operation in its own task, sending its results in the protocol's
    /// messages: each result, then `complete`; or `error` alone when the request was
    /// refused before it ran.
    fn start(&mut self, id: String, request: Request) {
        self.generation += 1;
        let generation = self.generation;
        let schema = self.schema.clone();
        let out = self.out.clone();
        let protocol = self.protocol;
        let request = request.data(self.access.clone().unwrap_or_else(Access::full));
        let task_id = id.clone();
        let handle = self.tasks.spawn(async move {
            let id = task_id;
            let mut results = schema.execute_stream(request);
            let mut first = true;
            while let Some(response) = results.next().await {
                let msg = if first && is_request_error(&response) {
                    let errors = serde_json::to_value(&response.errors).unwrap_or(Value::Null);
                    let _ = out.send(text(protocol.error(&id, errors))).await;
                    return (id, generation);
                } else {
                    protocol.next(&id, &response)
                };
                first = false;
                if out.send(msg).await.is_err() {
                    return (id, generation);
                }
            }
            let _ = out.send(text(protocol.complete(&id))).await;
            (id, generation)
        });
        self.operations.insert(id, (generation, handle));
    }
}

/// A response refused before execution (parse or validation errors, which have no
/// path). As in the reference graphql-ws server, only these are sent as `error`; errors
/// raised while executing arrive as results followed by `complete`.
pub fn is_request_error(response: &Response) -> bool {
    response.is_err()
        && matches!(response.data, async_graphql::Value::Null)
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// Resolves at `at`, never without one.
async fn until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A token bucket: `per_second` messages a second, in bursts of up to as many.
struct TokenBucket {
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(per_second: u32) -> Self {
        let per_second = f64::from(per_second.max(1));
        Self {
            per_second,
            tokens: per_second,
            last: Instant::now(),
        }
    }

    /// Takes a token if there is one.
    fn allow(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.last).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + refill).min(self.per_second);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Open WebSocket connections, bounded in total and per client address.
#[derive(Clone)]
pub struct Connections {
    open: Arc<std::sync::Mutex<OpenConnections>>,
    max_total: usize,
    max_per_address: usize,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionSlot {
    connections: Connections,
    address: IpAddr,
}

impl Connections {
    /// At most `max_total` connections, `max_per_address` from one address.
    pub fn new(max_total: usize, max_per_address: usize) -> Self {
        Self {
            open: Arc::default(),
            max_total,
            max_per_address,
        }
    }

    /// A place for a connection from `address`, or `TOO_MANY_CONNECTIONS`.
    pub fn admit(&self, address: IpAddr) -> crate::error::Result<ConnectionSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= self.max_total {
            return Err(crate::error::Error::TooManyConnections(format!(
                "the server holds its maximum of {} WebSocket connections",
                self.max_total
            )));
        }
        let from_address = open.per_address.entry(address).or_default();
        if *from_address >= self.max_per_address {
            return Err(crate::error::Error::TooManyConnections(format!(
                "at most {} WebSocket connections per client address",
                self.max_per_address
            )));
        }
        *from_address += 1;
        open.total += 1;
        metrics::gauge!(crate::metrics::WEBSOCKETS_OPEN).increment(1.0);
        Ok(ConnectionSlot {
            connections: self.clone(),
            address,
        })
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self
            .connections
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.per_address.remove(&self.address);
            }
        }
        metrics::gauge!(crate::metrics::WEBSOCKETS_OPEN).decrement(1.0);
    }
}
