//! GraphQL over server-sent events, in the graphql-sse protocol's "distinct
//! connections" mode: each operation is its own `GET` or `POST` to `/graphql` with
//! `Accept: text/event-stream`, for clients behind proxies that break WebSockets.
//!
//! The request is read exactly as [`super::http`] reads any GraphQL request (so a
//! request that is not GraphQL at all is refused with a status before the stream
//! starts). Every result is a `next` event whose data is the GraphQL response; a
//! request refused during validation is a `next` with only `errors`, as the protocol
//! asks. A `complete` event ends the stream; the client ends a subscription by closing
//! it. Subscriptions resume with `recordChanged(after:)` as on WebSockets.

use axum::response::Response;
use futures_util::StreamExt;

use super::{GraphqlState, response::response_json};
use crate::http::sse::Event;

/// Streams the results of `request`, made by `caller` (counted against the streams
/// each caller may have), whose credential expires at
/// `expires_at`: then a `next` with an `UNAUTHENTICATED` error and `complete` end the
/// stream.
pub fn serve(
    state: &GraphqlState,
    request: async_graphql::Request,
    caller: String,
    expires_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Response {
    let slot = match state.streams.admit(caller) {
        Ok(slot) => slot,
        Err(err) => return err.into_graphql_response(),
    };
    let results = state.schema.execute_stream(request).map(|response| Event {
        name: Some("next"),
        id: None,
        data: response_json(response).1,
    });
    let complete = || Event {
        name: Some("complete"),
        ..Default::default()
    };
    let expired = serde_json::json!({"errors": [{
        "message": "the token expired",
        "extensions": {"code": "UNAUTHENTICATED"},
    }]});
    let expiry = expires_at.map(|at| {
        let next = Event {
            name: Some("next"),
            id: None,
            data: expired.to_string(),
        };
        (at, vec![next, complete()])
    });
    let complete = futures_util::stream::once(async move { complete() });
    state.streams.respond(slot, results.chain(complete), expiry)
}
