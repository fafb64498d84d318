//! GraphQL over WebSockets, both subprotocols.
//!
//! # Layout
//! - this file: the upgrade ([`upgrade`]) and what it sets per connection.
//! - [`connection`]: one connection's loop: reading, the bounded send queue, timers,
//!   and the dispatch of each message to its protocol.
//! - [`session`]: one connection's state, which the protocols' handlers work on.
//! - [`outbox`]: the send queue, bounded in messages and in bytes.
//! - [`protocol`]: the subprotocols and the messages the server sends in each.
//! - [`operations`]: the operations a connection runs, each in its own task.
//! - [`shared`]: one execution per change for subscriptions of the same shape.
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
pub mod outbox;
pub mod protocol;
pub mod session;
pub mod shared;
pub mod transport;

pub use protocol::{PROTOCOLS, Protocol};
pub use session::WsLimits;

use axum::{
    extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    http::request::Parts,
    response::{IntoResponse, Response as HttpResponse},
};

use super::GraphqlState;
use crate::http::{authorization, client_address};

/// Everything the upgrade sets per connection.
#[derive(Clone)]
pub struct WsSettings {
    /// The connection's limits.
    pub limits: WsLimits,
    /// Largest message (and frame) accepted from a client.
    pub max_message_bytes: usize,
    /// The socket's read buffer.
    pub read_buffer_bytes: usize,
    /// The results subscriptions of the same shape share.
    pub shapes: std::sync::Arc<shared::Shapes>,
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
    let slot = match state.connections.admit(client_address(parts)) {
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
                            state.ws.shapes.clone(),
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
