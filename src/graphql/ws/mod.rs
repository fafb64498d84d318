//! GraphQL over WebSockets, both subprotocols.
//!
//! # Layout
//! - this file: the upgrade ([`upgrade`]), the subprotocols and their messages, the
//!   per-connection limits.
//! - [`connection`]: one connection's loop: reading, the bounded send queue, timers.
//! - [`operations`]: the operations a connection runs, each in its own task.
//! - [`admission`]: connections in total and per address, and the message rate.
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

pub mod admission;
pub mod connection;
pub mod legacy;
pub mod operations;
pub mod transport;

use std::time::Duration;

use async_graphql::Response;
use axum::{
    extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade},
    http::request::Parts,
    response::{IntoResponse, Response as HttpResponse},
};
use serde_json::{Value, json};

use super::GraphqlState;
use crate::http::authorization;

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
    pub(super) fn next(self, id: &str, response: &Response) -> Message {
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
    pub(super) fn error(self, id: &str, errors: Value) -> Value {
        json!({"type": "error", "id": id, "payload": errors})
    }

    /// The message ending operation `id`.
    pub(super) fn complete(self, id: &str) -> Value {
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

/// Everything the upgrade sets per connection.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// The connection's limits.
    pub limits: WsLimits,
    /// Largest message (and frame) accepted from a client.
    pub max_message_bytes: usize,
    /// The socket's read buffer.
    pub read_buffer_bytes: usize,
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

/// Accepts a WebSocket upgrade of `GET /graphql`: counts the connection against the
/// limits (429 when over) and serves it in the negotiated subprotocol.
pub fn upgrade(state: GraphqlState, upgrade: WebSocketUpgrade, parts: &Parts) -> HttpResponse {
    let credential = authorization(&parts.headers).map(str::to_owned);
    let address = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let slot = match state.connections.admit(address) {
        Ok(slot) => slot,
        Err(err) => return err.into_graphql_response(),
    };
    let settings = &state.ws;
    let upgrade = upgrade
        .protocols(PROTOCOLS)
        .max_message_size(settings.max_message_bytes)
        .max_frame_size(settings.max_message_bytes)
        // tungstenite's default read buffer (128 KiB) is allocated in full per socket.
        .read_buffer_size(settings.read_buffer_bytes);
    let protocol = upgrade
        .selected_protocol()
        .and_then(|p| p.to_str().ok())
        .and_then(Protocol::from_name);
    let tasks = state.tasks.clone();
    upgrade
        .on_upgrade(move |socket| {
            tasks.track_future(async move {
                let _slot = slot;
                match protocol {
                    Some(protocol) => {
                        connection::serve(
                            socket,
                            protocol,
                            state.schema.clone(),
                            state.ws.limits.clone(),
                            state.auth.clone(),
                            credential,
                            state.shutdown.clone(),
                        )
                        .await;
                    }
                    None => reject_subprotocol(socket).await,
                }
            })
        })
        .into_response()
}
