//! A minimal `graphql-transport-ws` client: connect, `connection_init` /
//! `connection_ack`, `subscribe` to `recordChanged`, and reading events without
//! building a JSON tree per message.

use std::borrow::Cow;

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, value::RawValue};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream, client_async_with_config,
    tungstenite::{
        Message, client::IntoClientRequest, http::HeaderValue, protocol::WebSocketConfig,
    },
};

use crate::net::Endpoint;

/// An open WebSocket.
pub type Ws = WebSocketStream<TcpStream>;

/// What every subscription selects: the fields a client applying changes needs.
pub const SUBSCRIPTION: &str = "subscription($c: String!, $a: String) { recordChanged(collection: $c, after: $a) { cursor kind changedAt record { id version data } } }";

/// Opens WebSocket number `index` and completes `connection_init`.
pub async fn connect(endpoint: &Endpoint, index: usize) -> anyhow::Result<Ws> {
    let stream = endpoint.connect(index).await.context("connecting")?;
    let mut req = endpoint.ws_url().into_client_request()?;
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    // Small buffers: tens of thousands of mostly idle clients live in this process.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20);
    let (mut ws, _) = client_async_with_config(req, stream, Some(config))
        .await
        .context("WebSocket handshake")?;
    ws.send(Message::text(r#"{"type":"connection_init"}"#))
        .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let msg: Wire<'_> = serde_json::from_str(&t)?;
                if msg.ty == "connection_ack" {
                    return Ok(ws);
                }
                bail!("expected connection_ack, got {t}");
            }
            Some(Ok(Message::Close(frame))) => bail!("closed before ack: {frame:?}"),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.into()),
            None => bail!("closed before ack"),
        }
    }
}

/// The `subscribe` message for operation `id`: `recordChanged` on `collection`,
/// resuming after `after`.
pub fn subscribe_message(id: usize, collection: &str, after: &str) -> Message {
    let msg = json!({
        "type": "subscribe",
        "id": id.to_string(),
        "payload": {"query": SUBSCRIPTION, "variables": {"c": collection, "a": after}},
    });
    Message::text(msg.to_string())
}

/// A protocol message, its payload unparsed.
#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    ty: Cow<'a, str>,
    #[serde(borrow, default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    payload: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct NextPayload<'a> {
    #[serde(borrow, default)]
    data: Option<NextData<'a>>,
    #[serde(borrow, default)]
    errors: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct NextData<'a> {
    #[serde(rename = "recordChanged", borrow)]
    record_changed: Option<ChangeWire<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeWire<'a> {
    #[serde(borrow)]
    cursor: Cow<'a, str>,
    #[serde(borrow)]
    changed_at: Cow<'a, str>,
    record: RecordWire,
}

#[derive(Deserialize)]
struct RecordWire {
    data: Mark,
}

/// What the bench writes into a record's data to recognise it.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub struct Mark {
    /// The writer.
    pub w: Option<u32>,
    /// The writer's sequence number, from 1.
    pub n: Option<u64>,
    /// The writer's send time, microseconds since the Unix epoch.
    pub t: Option<i64>,
    /// The step (rate) of the run it belongs to.
    pub s: Option<u32>,
}

/// One `recordChanged` event.
#[derive(Debug)]
pub struct Event<'a> {
    /// The operation it belongs to.
    pub op: usize,
    /// Its position in the change log (opaque).
    pub cursor: Cow<'a, str>,
    /// The server's commit time, microseconds since the Unix epoch.
    pub changed_at_us: Option<i64>,
    /// The bench's marks in the record's data.
    pub mark: Mark,
}

/// A message from the server, as the bench cares about it.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// A change.
    Event(Event<'a>),
    /// Anything that ends an operation or signals a problem (`error`, `complete`,
    /// `next` with errors), with its text.
    Problem(String),
    /// `ping`, `pong` and the like.
    Other,
}

/// Parses one text message.
pub fn parse(text: &str) -> Incoming<'_> {
    let Ok(msg) = serde_json::from_str::<Wire<'_>>(text) else {
        return Incoming::Problem(format!("unparseable message: {text}"));
    };
    match msg.ty.as_ref() {
        "next" => {}
        "error" | "complete" => return Incoming::Problem(text.to_owned()),
        _ => return Incoming::Other,
    }
    let op = msg.id.as_deref().and_then(|id| id.parse().ok());
    let payload = msg
        .payload
        .and_then(|p| serde_json::from_str::<NextPayload<'_>>(p.get()).ok());
    match (op, payload) {
        (
            Some(op),
            Some(NextPayload {
                data:
                    Some(NextData {
                        record_changed: Some(change),
                    }),
                errors: None,
            }),
        ) => Incoming::Event(Event {
            op,
            changed_at_us: chrono::DateTime::parse_from_rfc3339(&change.changed_at)
                .ok()
                .map(|t| t.timestamp_micros()),
            cursor: change.cursor,
            mark: change.record.data,
        }),
        _ => Incoming::Problem(text.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_with_their_marks() {
        let text = r#"{"type":"next","id":"7","payload":{"data":{"recordChanged":{"cursor":"Y2hnOjQy","kind":"CREATED","changedAt":"2026-01-02T03:04:05.000006Z","record":{"id":"x","version":1,"data":{"n":3,"pad":"..","t":12,"w":2}}}}}}"#;
        let Incoming::Event(e) = parse(text) else {
            panic!("not an event");
        };
        assert_eq!(e.op, 7);
        assert_eq!(e.cursor, "Y2hnOjQy");
        assert_eq!(e.mark.w, Some(2));
        assert_eq!(e.mark.n, Some(3));
        assert_eq!(e.changed_at_us, Some(1_767_323_045_000_006));
    }

    #[test]
    fn errors_and_completions_are_problems() {
        assert!(matches!(
            parse(r#"{"type":"complete","id":"1"}"#),
            Incoming::Problem(_)
        ));
        assert!(matches!(
            parse(r#"{"type":"next","id":"1","payload":{"data":null,"errors":[{"message":"x"}]}}"#),
            Incoming::Problem(_)
        ));
        assert!(matches!(parse(r#"{"type":"pong"}"#), Incoming::Other));
    }
}
