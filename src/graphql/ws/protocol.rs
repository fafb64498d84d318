//! The two subprotocols and the messages the server sends in each.

use async_graphql::Response;
use axum::extract::ws::{Message, Utf8Bytes};
use serde_json::{Value, json};

/// `graphql-transport-ws`, the graphql-ws library's protocol.
pub const TRANSPORT_WS: &str = "graphql-transport-ws";
/// `graphql-ws`, the subscriptions-transport-ws library's protocol.
pub const LEGACY_WS: &str = "graphql-ws";

/// The subprotocols served, in the order the server prefers them.
pub const PROTOCOLS: [&str; 2] = [TRANSPORT_WS, LEGACY_WS];

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
            TRANSPORT_WS => Some(Self::Transport),
            LEGACY_WS => Some(Self::Legacy),
            _ => None,
        }
    }

    /// The message carrying one result of operation `id`. Every delivery of every
    /// subscription passes here, so the response is serialized straight into the
    /// message text rather than through an intermediate JSON tree.
    pub fn next(self, id: &str, response: &Response) -> Message {
        self.next_with(id, |out| serde_json::to_writer(out, response))
    }

    /// The message carrying operation `id`'s result `payload`, already serialized.
    pub fn next_serialized(self, id: &str, payload: &str) -> Message {
        self.next_with(id, |out| {
            out.extend_from_slice(payload.as_bytes());
            Ok(())
        })
    }

    fn next_with(
        self,
        id: &str,
        payload: impl FnOnce(&mut Vec<u8>) -> serde_json::Result<()>,
    ) -> Message {
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
            payload(&mut out)
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
    pub fn error(self, id: &str, errors: Value) -> Value {
        json!({"type": "error", "id": id, "payload": errors})
    }

    /// The message ending operation `id`.
    pub fn complete(self, id: &str) -> Value {
        json!({"type": "complete", "id": id})
    }
}

/// A text message holding `value`.
pub fn text(value: Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}
