//! `/api/records`: list, read, create, replace, merge-patch and delete records.
//!
//! Every write is one call to the store's single write path. Versions travel as
//! strong entity tags (`ETag: "3"`); `If-Match` makes a write conditional, and a stale
//! one is 412 `VERSION_CONFLICT` and changes nothing.

use axum::{
    Json,
    body::Body,
    extract::{Path, Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{
    IfMatch, etag, if_match, if_none_match, parse_id, parse_limit, query_params, record_json,
};
use crate::{
    AppState,
    auth::Access,
    error::{Error, Result},
    request::{has_media_type, read_body},
    store::{Store, Write, records::PageRequest},
};

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// A record with its `ETag`.
fn with_etag(status: StatusCode, record: &entity::record::Model) -> Response {
    let mut resp = (status, Json(record_json(record))).into_response();
    resp.headers_mut()
        .insert(header::ETAG, etag(record.version));
    resp
}

/// Reads a JSON body of one of the `accepted` media types into `T`.
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    accepted: &[&str],
) -> Result<T> {
    if !has_media_type(headers, accepted) {
        return Err(Error::UnsupportedMediaType(format!(
            "send the body as Content-Type: {}",
            accepted.join(" or ")
        )));
    }
    let bytes = read_body(body, state.config.max_body_bytes).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::bad_input(format!("invalid body: {e}")))
}

/// The version to pass as `expected_version` for an `If-Match` header. A list of
/// several versions is resolved against the record's current one; the store then
/// checks that version atomically, so a write racing this one still conflicts.
async fn expected_version(store: &Store, id: Uuid, headers: &HeaderMap) -> Result<Option<i32>> {
    match if_match(headers)? {
        IfMatch::Any => Ok(None),
        IfMatch::Versions(versions) if versions.len() == 1 => Ok(Some(versions[0])),
        IfMatch::Versions(versions) => {
            let current = store.record(id).await?.ok_or(Error::NotFound(id))?;
            if versions.contains(&current.version) {
                Ok(Some(current.version))
            } else {
                // Versions start at 1, so 0 conflicts with any record.
                Ok(Some(versions.first().copied().unwrap_or(0)))
            }
        }
    }
}

/// The query of `GET /api/records`.
#[derive(Deserialize)]
struct ListParams {
    collection: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// `GET /api/records?collection=&limit=&after=`: a page of records, oldest first:
/// `{"items", "next", "changeCursor"}`. `next` is the `after` of the following page,
/// null on the last; `changeCursor` is the change-log position the page was read at,
/// for `GET /api/changes/stream?after=`.
pub async fn list(State(state): State<AppState>, access: Access, req: Request) -> Result<Response> {
    let params: ListParams = query_params(req.uri())?;
    access.check_read()?;
    if let Some(c) = &params.collection {
        access.check_collection(c)?;
    }
    let page = state
        .store
        .records(PageRequest {
            collection: params.collection,
            allowed: access.collection_list(),
            first: parse_limit(params.limit.as_deref())?,
            after: params.after,
            ..Default::default()
        })
        .await?;
    let next = if page.has_next_page {
        page.edges.last().map(|(cursor, _)| cursor.clone())
    } else {
        None
    };
    let items: Vec<Value> = page.edges.iter().map(|(_, r)| record_json(r)).collect();
    Ok(
        Json(json!({"items": items, "next": next, "changeCursor": page.change_cursor}))
            .into_response(),
    )
}

/// `GET /api/records/{id}`: the record with its `ETag`; 304 when `If-None-Match` names
/// its version.
pub async fn get(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    access.check_read()?;
    // A record the token may not see is indistinguishable from a missing one.
    let record = state
        .store
        .record(id)
        .await?
        .filter(|r| access.allows(&r.collection))
        .ok_or(Error::NotFound(id))?;
    if if_none_match(&headers, record.version) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut()
            .insert(header::ETAG, etag(record.version));
        return Ok(resp);
    }
    Ok(with_etag(StatusCode::OK, &record))
}

/// The body of `POST /api/records`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    id: Option<Uuid>,
    collection: String,
    data: Value,
}

/// `POST /api/records` with `{"id"?, "collection", "data"}`: 201 with `Location` and
/// `ETag`; 409 `ALREADY_EXISTS` if the id is taken.
pub async fn create(
    State(state): State<AppState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let body: CreateBody = json_body(&state, &parts.headers, body, &[JSON]).await?;
    let record = state
        .store
        .create_as(&access, body.id, body.collection, body.data)
        .await?;
    let mut resp = with_etag(StatusCode::CREATED, &record);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/records/{}", record.id)) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    Ok(resp)
}

/// The body of `PUT /api/records/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    data: Value,
}

/// `PUT /api/records/{id}` with `{"data"}`: replaces the record's data.
pub async fn replace(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let (parts, body) = req.into_parts();
    let body: ReplaceBody = json_body(&state, &parts.headers, body, &[JSON]).await?;
    let expected_version = expected_version(&state.store, id, &parts.headers).await?;
    let record = state
        .store
        .apply_as(
            &access,
            id,
            Write::Replace {
                data: body.data,
                expected_version,
            },
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &record))
}

/// `PATCH /api/records/{id}` with a JSON Merge Patch document (RFC 7396) as the body,
/// `application/merge-patch+json` (or `application/json`).
pub async fn patch(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let (parts, body) = req.into_parts();
    let patch: Value = json_body(&state, &parts.headers, body, &[MERGE_PATCH, JSON]).await?;
    let expected_version = expected_version(&state.store, id, &parts.headers).await?;
    let record = state
        .store
        .apply_as(
            &access,
            id,
            Write::Patch {
                patch,
                expected_version,
            },
        )
        .await?;
    Ok(with_etag(StatusCode::OK, &record))
}

/// `DELETE /api/records/{id}`: deletes the record and answers with its last state.
pub async fn delete(
    State(state): State<AppState>,
    access: Access,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let expected_version = expected_version(&state.store, id, &headers).await?;
    let record = state
        .store
        .apply_as(&access, id, Write::Delete { expected_version })
        .await?;
    Ok((StatusCode::OK, Json(record_json(&record))).into_response())
}
