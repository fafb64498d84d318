//! `graphql-transport-ws`, the protocol of the graphql-ws library.
//!
//! Close codes follow the protocol: 4400 bad message, 4401 `subscribe` before
//! `connection_ack`, 4408 no `connection_init` in time, 4409 an operation id already in
//! use, 4429 a second `connection_init`, 4406 (in [`super::reject_subprotocol`]) no
//! subprotocol we speak. `ping` is answered with `pong` carrying the same payload;
//! `complete` from the client stops an operation.

use async_graphql::Request;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{Close, Connection};

/// The subprotocol this module speaks.
pub const PROTOCOL: &str = super::protocol::TRANSPORT_WS;

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
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

/// Reads one client frame, or says why it is not a message of this protocol (the
/// connection then closes with 4400). Public for the fuzz target.
pub fn parse(raw: &[u8]) -> Result<ClientMessage, String> {
    serde_json::from_slice(raw).map_err(|e| format!("Invalid message received: {e}"))
}

/// Handles one message; an error closes the connection with its code.
pub(super) async fn handle(conn: &mut Connection, raw: &[u8]) -> Result<(), Close> {
    let msg = parse(raw).map_err(|e| Close::new(4400, e))?;
    match msg {
        ClientMessage::ConnectionInit { payload } => {
            if conn.init_received {
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
            conn.init_received = true;
            conn.authenticate(payload.as_ref())?;
            conn.acknowledged = true;
            conn.send(json!({"type": "connection_ack"})).await;
        }
        ClientMessage::Ping { payload } => {
            let pong = match payload {
                Some(p) => json!({"type": "pong", "payload": p}),
                None => json!({"type": "pong"}),
            };
            conn.send(pong).await;
        }
        ClientMessage::Pong {} => {}
        ClientMessage::Subscribe { id, payload } => {
            if !conn.acknowledged {
                return Err(Close::new(4401, "Unauthorized"));
            }
            if conn.operations.contains(&id) {
                return Err(Close::new(
                    4409,
                    format!("Subscriber for {id} already exists"),
                ));
            }
            if conn.admit(&id).await {
                conn.start(id, *payload).await;
            }
        }
        ClientMessage::Complete { id } => {
            conn.operations.stop(&id);
        }
    }
    Ok(())
}
