//! The change log for clients that poll (`GET /api/changes`) and for clients that
//! stream it as server-sent events (`GET /api/changes/stream`).
//!
//! The stream is the same feed as the `recordChanged` subscription: every matching
//! change in commit order, each once, replaying from `after` (or the `Last-Event-ID` a
//! reconnecting `EventSource` sends, which wins over `after`) before going live. Each
//! event's `id` is the change's cursor. A stream that cannot go on (its position was
//! pruned, the database failed) sends one `error` event with `{"code", "message"}`
//! and ends; reconnecting then answers with the error's status.

use axum::{
    Json,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde::Deserialize;

use super::{RestState, parse_limit, query_params};
use crate::{
    auth::Access,
    error::{Error, Result},
    http::{caller, sse::Event},
    model::RecordChange,
    service::ChangesQuery,
};

/// The query of both endpoints.
#[derive(Deserialize)]
struct Params {
    after: Option<String>,
    collection: Option<String>,
    limit: Option<String>,
}

/// `GET /api/changes?after=&collection=&limit=`: changes after `after` (from the oldest
/// retained one without it), oldest first: `{"items", "next", "hasMore"}`. Pass `next`
/// as `after` in the next poll; it moves past changes the filter skipped.
pub async fn list(
    State(state): State<RestState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let params: Params = query_params(req.uri())?;
    let first = parse_limit(params.limit.as_deref())?;
    let query = ChangesQuery {
        collection: params.collection,
        after: params.after,
        ..Default::default()
    };
    let batch = state.service.changes(&access, query, first).await?;
    let cursors = state.service.cursors();
    let items = batch
        .changes
        .iter()
        .map(|c| RecordChange::new(c, cursors))
        .collect::<Result<Vec<_>>>()?;
    // A typed body: `json!` would turn each record's data text back into a tree.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        items: Vec<RecordChange>,
        next: String,
        has_more: bool,
    }
    Ok(Json(Body {
        items,
        next: cursors.encode(batch.through),
        has_more: batch.has_more,
    })
    .into_response())
}

/// `GET /api/changes/stream?after=&collection=`: the change log as server-sent events,
/// live after the replay. Without `after` or `Last-Event-ID`, only changes from now on.
pub async fn stream(
    State(state): State<RestState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let params: Params = query_params(req.uri())?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned);
    let query = ChangesQuery {
        collection: params.collection,
        after: last_event_id.or(params.after),
        ..Default::default()
    };
    let changes = state.service.subscribe(&access, query).await?;
    let (parts, _body) = req.into_parts();
    let slot = state.streams.admit(caller(&access, &parts))?;
    let changes = Box::pin(changes);
    let cursors = state.service.cursors().clone();
    let events = futures_util::stream::unfold(Some(changes), move |changes| {
        let cursors = cursors.clone();
        async move {
            let mut changes = changes?;
            match changes
                .next()
                .await?
                .and_then(|c| RecordChange::new(&c, &cursors))
            {
                Ok(change) => Some((
                    Event {
                        name: None,
                        id: Some(change.cursor.clone()),
                        data: serde_json::to_string(&change).unwrap_or_default(),
                    },
                    Some(changes),
                )),
                Err(err) => Some((
                    Event {
                        name: Some("error"),
                        id: None,
                        data: err.to_json().to_string(),
                    },
                    None,
                )),
            }
        }
    });
    let expiry = access.expires_at.map(|at| {
        let expired = Error::Unauthenticated("the token expired".into());
        let event = Event {
            name: Some("error"),
            id: None,
            data: expired.to_json().to_string(),
        };
        (at, vec![event])
    });
    Ok(state.streams.respond(slot, events, expiry))
}
