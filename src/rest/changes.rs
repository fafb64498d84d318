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
use serde_json::{Value, json};

use super::{change_json, parse_limit, query_params};
use crate::{
    AppState,
    auth::Access,
    broker::feed,
    error::Result,
    sse::Event,
    store::{changes::ChangeFilter, cursor, validate_collection},
};

/// The query of both endpoints.
#[derive(Deserialize)]
struct Params {
    after: Option<String>,
    collection: Option<String>,
    limit: Option<String>,
}

impl Params {
    /// The filter for a caller with `access`.
    fn filter(&self, access: &Access) -> Result<ChangeFilter> {
        access.check_read()?;
        if let Some(c) = &self.collection {
            validate_collection(c)?;
            access.check_collection(c)?;
        }
        Ok(ChangeFilter {
            collection: self.collection.clone(),
            allowed: access.collection_list(),
            ..Default::default()
        })
    }
}

/// `GET /api/changes?after=&collection=&limit=`: changes after `after` (from the oldest
/// retained one without it), oldest first: `{"items", "next", "hasMore"}`. Pass `next`
/// as `after` in the next poll; it moves past changes the filter skipped.
pub async fn list(State(state): State<AppState>, access: Access, req: Request) -> Result<Response> {
    let params: Params = query_params(req.uri())?;
    let filter = params.filter(&access)?;
    let after = params
        .after
        .as_deref()
        .map(cursor::decode_change)
        .transpose()?;
    let limit = state
        .store
        .page_size(parse_limit(params.limit.as_deref())?)?;
    let batch = state.store.changes(after, &filter, limit).await?;
    let items: Vec<Value> = batch.changes.iter().map(change_json).collect();
    Ok(Json(json!({
        "items": items,
        "next": cursor::encode_change(batch.through),
        "hasMore": batch.has_more,
    }))
    .into_response())
}

/// `GET /api/changes/stream?after=&collection=`: the change log as server-sent events,
/// live after the replay. Without `after` or `Last-Event-ID`, only changes from now on.
pub async fn stream(
    State(state): State<AppState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let params: Params = query_params(req.uri())?;
    let filter = params.filter(&access)?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let after = last_event_id
        .or(params.after.as_deref())
        .map(cursor::decode_change)
        .transpose()?;
    let after = match after {
        Some(after) => {
            state.store.check_resume(after).await?;
            after
        }
        None => state.store.head().await?,
    };
    let slot = state.streams.admit()?;
    let changes = Box::pin(feed::subscribe(state.store.clone(), filter, after));
    let events = futures_util::stream::unfold(Some(changes), |changes| async move {
        let mut changes = changes?;
        match changes.next().await? {
            Ok(change) => Some((
                Event {
                    name: None,
                    id: Some(cursor::encode_change(change.seq)),
                    data: change_json(&change).to_string(),
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
    });
    Ok(state.streams.respond(slot, events))
}
