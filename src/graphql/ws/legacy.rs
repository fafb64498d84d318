//! `graphql-ws`, the protocol of the subscriptions-transport-ws library, which older
//! Apollo clients (`WebSocketLink`) still speak.
//!
//! The client sends `connection_init`, `start` (an operation), `stop` and
//! `connection_terminate`; the server answers `connection_ack` followed by `ka` every
//! `--keep-alive` (the client takes a missing `ka` for a dead server), `data` for each
//! result, `error` for an operation refused before it ran, and `complete`. This
//! protocol has no close codes for its errors, so, as its reference server does, the
//! server answers a bad message with `error` and keeps the connection. A `start` with an
//! id in use replaces that operation; a `start` before `connection_init` is refused with
//! `error`. Time to `connection_init` (4408), operations per connection and message
//! size are limited as on `graphql-transport-ws`.

use async_graphql::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{Close, Connection};

/// The subprotocol this module speaks.
pub const PROTOCOL: &str = super::protocol::LEGACY_WS;

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    /// Its `payload` (connection parameters) may carry `Authorization`.
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Start {
        id: String,
        payload: Box<Request>,
    },
    Stop {
        id: String,
    },
    ConnectionTerminate {},
}

/// The protocol's `error` for a message that is not one of the above.
fn bad_message(id: Option<&str>, message: String) -> Value {
    match id {
        Some(id) => json!({"type": "error", "id": id, "payload": {"message": message}}),
        None => json!({"type": "error", "payload": {"message": message}}),
    }
}

/// Reads one client frame: the message, or why it is not one, with the id to answer
/// (the protocol answers a bad message with `error` and keeps the connection). Public for
/// the fuzz target.
pub fn parse(raw: &[u8]) -> Result<ClientMessage, (Option<String>, String)> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| (None, format!("Message must be JSON-parseable: {e}")))?;
    let id = value.get("id").and_then(Value::as_str).map(str::to_owned);
    serde_json::from_value(value).map_err(|e| (id, format!("Invalid message: {e}")))
}

/// Handles one message; an error closes the connection.
pub(super) async fn handle(conn: &mut Connection, raw: &[u8]) -> Result<(), Close> {
    let msg = match parse(raw) {
        Ok(m) => m,
        Err((id, message)) => {
            conn.send(bad_message(id.as_deref(), message)).await;
            return Ok(());
        }
    };
    match msg {
        ClientMessage::ConnectionInit { payload } => {
            // The reference server acknowledges a repeated `connection_init` again: with
            // a fresh token for the same rights, that renews the connection's access. New
            // rights while operations run close the connection (4403) instead: each
            // operation keeps the rights it was started with.
            conn.init_received = true;
            conn.authenticate(payload.as_ref())?;
            conn.acknowledged = true;
            conn.send(json!({"type": "connection_ack"})).await;
            conn.send(json!({"type": "ka"})).await;
        }
        ClientMessage::Start { id, payload } => {
            if !conn.acknowledged {
                let errors = json!([{"message": "send connection_init first", "extensions": {"code": "BAD_REQUEST"}}]);
                conn.send(conn.protocol.error(&id, errors)).await;
                return Ok(());
            }
            conn.operations.stop(&id);
            if conn.admit(&id).await {
                conn.start(id, *payload).await;
            }
        }
        ClientMessage::Stop { id } => {
            if conn.operations.stop(&id) {
                conn.send(conn.protocol.complete(&id)).await;
            }
        }
        ClientMessage::ConnectionTerminate {} => {
            return Err(Close::new(1000, "connection terminated"));
        }
    }
    Ok(())
}
