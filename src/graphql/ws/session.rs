//! One WebSocket connection's state, which both protocols' message handlers work on:
//! whether it is initialised, who it is, its operations, and the send queue.

use std::{sync::Arc, time::Duration};

use async_graphql::Request;
use axum::extract::ws::Message;
use serde_json::{Value, json};

use super::{
    operations::Operations,
    outbox::Outbox,
    protocol::{Protocol, text},
    shared::Shapes,
};
use crate::{
    auth::{Access, Authenticator},
    graphql::AppSchema,
};

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct WsLimits {
    /// Time allowed before `connection_init`.
    pub init_timeout: Duration,
    /// Operations one connection may run at once.
    pub max_subscriptions: usize,
    /// Outgoing messages queued before operations wait.
    pub send_queue: usize,
    /// Outgoing bytes queued before operations wait.
    pub send_queue_bytes: usize,
    /// How often the server pings (and, on the legacy protocol, sends `ka`).
    pub keep_alive: Duration,
    /// Silence after which the client is taken for dead.
    pub dead_timeout: Duration,
    /// Messages per second the client may send, in bursts up to as many.
    pub max_messages_per_second: u32,
}

/// Why the server closes the connection.
pub(super) struct Close(pub(super) u16, pub(super) String);

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

/// State of one connection, shared by both protocols' message handlers.
pub struct Connection {
    pub(super) protocol: Protocol,
    schema: AppSchema,
    pub(super) limits: WsLimits,
    /// The results subscriptions of the same shape share.
    shapes: Arc<Shapes>,
    pub(super) out: Outbox,
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
    /// Set when a reply could not be queued before the client counted as dead.
    stalled: std::sync::atomic::AtomicBool,
    /// The server's shutdown, which a waiting reply must not delay.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Connection {
    /// A connection speaking `protocol`, not yet initialised.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        protocol: Protocol,
        schema: AppSchema,
        limits: WsLimits,
        shapes: Arc<Shapes>,
        out: Outbox,
        auth: Authenticator,
        header_credential: Option<String>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            protocol,
            schema,
            operations: Operations::new(limits.max_subscriptions),
            limits,
            shapes,
            out,
            init_received: false,
            acknowledged: false,
            auth,
            header_credential,
            access: None,
            stalled: std::sync::atomic::AtomicBool::new(false),
            shutdown,
        }
    }

    /// Queues a reply. When the queue is full the client is not reading: the reply
    /// waits at most until the client counts as dead or its credential expires, so the
    /// connection's timers still fire; then the connection is marked stalled and dropped.
    pub(super) async fn send(&self, msg: Value) {
        use tokio::sync::mpsc::error::TrySendError;
        match self.out.try_send(text(msg)) {
            // Closed: the writer is gone, and then the connection is over anyway.
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full(msg)) => {
                let dead = tokio::time::Instant::now() + self.limits.dead_timeout;
                let deadline = self.expires_at().map_or(dead, |exp| exp.min(dead));
                tokio::select! {
                    sent = tokio::time::timeout_at(deadline, self.out.send(msg)) => {
                        if sent.is_err() {
                            self.stalled
                                .store(true, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    // The connection loop sees the shutdown next and closes with 1001.
                    _ = self.shutdown.cancelled() => {}
                }
            }
        }
    }

    /// Whether a reply could not be queued in time (the client does not read).
    pub(super) fn stalled(&self) -> bool {
        self.stalled.load(std::sync::atomic::Ordering::Relaxed)
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
        let access = self
            .auth
            .authenticate(credential.as_deref())
            .map_err(|err| Close::new(4403, format!("Forbidden: {err}")))?;
        // Operations run with the access they started with: a new credential may renew
        // the same rights (a later `exp`), never change them under running operations.
        if let Some(current) = &self.access
            && !self.operations.is_idle()
            && !current.same_rights(&access)
        {
            return Err(Close::new(
                4403,
                "Forbidden: a connection's access cannot change while operations run",
            ));
        }
        self.access = Some(access);
        Ok(())
    }

    /// When the connection's credential expires, if it does.
    pub(super) fn expires_at(&self) -> Option<tokio::time::Instant> {
        let at = self.access.as_ref()?.expires_at?;
        let left = (at - chrono::Utc::now()).to_std().unwrap_or_default();
        Some(tokio::time::Instant::now() + left)
    }

    /// A WebSocket ping, and on the legacy protocol a `ka`. Never waits: when the
    /// queue is full the client is not reading, and a ping would not help.
    pub(super) fn keep_alive(&self) {
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
        let shared = self.shapes.op(&request, &access).map(Arc::new);
        let mut request = request.data(access);
        if let Some(shared) = &shared {
            request = request.data(Arc::clone(shared));
        }
        let results = self.schema.execute_stream(request);
        self.operations
            .start(id, self.protocol, self.out.clone(), results, shared);
    }
}
