//! `/api/records`: list, read, create, replace, merge-patch and delete records.
//!
//! Every handler parses the request, makes one call to the service and shapes the
//! answer; every write goes through the service's single write path. Versions travel as
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
use serde_json::Value;
use uuid::Uuid;

use super::{
    IfMatch, RestState, etag, if_match, if_none_match, parse_id, parse_limit, query_params,
};
use crate::{
    auth::Access,
    error::{Error, Result},
    http::request::{has_media_type, read_body},
    model::Record,
    service::Service,
    store::{Write, WriteOp, Written, records::PageRequest},
};

const JSON: &str = "application/json";
const MERGE_PATCH: &str = "application/merge-patch+json";

/// A record with its `ETag`.
fn with_etag(status: StatusCode, record: impl Into<Record>) -> Response {
    let record: Record = record.into();
    let version = record.version;
    let mut resp = (status, Json(record)).into_response();
    resp.headers_mut().insert(header::ETAG, etag(version));
    resp
}

/// Reads a JSON body of one of the `accepted` media types into `T`.
async fn json_body<T: serde::de::DeserializeOwned>(
    state: &RestState,
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
    let bytes = read_body(body, state.max_body_bytes).await?;
    serde_json::from_slice(&bytes).map_err(|e| Error::bad_input(format!("invalid body: {e}")))
}

/// The version to pass as `expected_version` for an `If-Match` header. A list of
/// several versions is resolved against the record's current one by the service.
async fn expected_version(
    service: &Service,
    access: &Access,
    id: Uuid,
    headers: &HeaderMap,
) -> Result<Option<i32>> {
    match if_match(headers)? {
        IfMatch::Any => Ok(None),
        IfMatch::Versions(versions) if versions.len() == 1 => Ok(Some(versions[0])),
        IfMatch::Versions(versions) => {
            Ok(Some(service.expected_among(access, id, &versions).await?))
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
pub async fn list(
    State(state): State<RestState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let params: ListParams = query_params(req.uri())?;
    let query = PageRequest {
        collection: params.collection,
        first: parse_limit(params.limit.as_deref())?,
        after: params.after,
        ..Default::default()
    };
    let page = state.service.records(&access, query).await?;
    let next = if page.has_next_page {
        page.edges.last().map(|(cursor, _)| cursor.clone())
    } else {
        None
    };
    // A typed body: `json!` would turn each record's data text back into a tree.
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        items: Vec<Record>,
        next: Option<String>,
        change_cursor: String,
    }
    let items = page.edges.into_iter().map(|(_, r)| r).collect();
    Ok(Json(Body {
        items,
        next,
        change_cursor: page.change_cursor,
    })
    .into_response())
}

/// `GET /api/records/{id}`: the record with its `ETag`; 304 when `If-None-Match` names
/// its version.
pub async fn get(
    State(state): State<RestState>,
    access: Access,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let record = state
        .service
        .record(&access, id)
        .await?
        .ok_or(Error::NotFound(id))?;
    if if_none_match(&headers, record.version) {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        resp.headers_mut()
            .insert(header::ETAG, etag(record.version));
        return Ok(resp);
    }
    Ok(with_etag(StatusCode::OK, record))
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
    State(state): State<RestState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let key = idempotency_key(&parts.headers)?;
    let body: CreateBody = json_body(&state, &parts.headers, body, &[JSON]).await?;
    let written = state
        .service
        .create(&access, body.id, body.collection, body.data, key)
        .await?;
    written_response(StatusCode::CREATED, written, true)
}

/// The body of `PUT /api/records/{id}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceBody {
    data: Value,
}

/// `PUT /api/records/{id}` with `{"data"}`: replaces the record's data.
pub async fn replace(
    State(state): State<RestState>,
    access: Access,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    write_with_body(
        &state,
        &access,
        &id,
        req,
        &[JSON],
        |body: ReplaceBody, expected_version| Write::Replace {
            data: body.data,
            expected_version,
        },
    )
    .await
}

/// `PATCH /api/records/{id}` with a JSON Merge Patch document (RFC 7396) as the body,
/// `application/merge-patch+json` (or `application/json`).
pub async fn patch(
    State(state): State<RestState>,
    access: Access,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response> {
    let accepted = [MERGE_PATCH, JSON];
    write_with_body(
        &state,
        &access,
        &id,
        req,
        &accepted,
        |patch: Value, expected_version| Write::Patch {
            patch,
            expected_version,
        },
    )
    .await
}

/// A write to record `id` whose body (of one of the `accepted` media types) `make`
/// turns into the write: 200 with the record and its `ETag`.
async fn write_with_body<T: serde::de::DeserializeOwned>(
    state: &RestState,
    access: &Access,
    id: &str,
    req: Request,
    accepted: &[&str],
    make: impl FnOnce(T, Option<i32>) -> Write,
) -> Result<Response> {
    let id = parse_id(id)?;
    let (parts, body) = req.into_parts();
    let body: T = json_body(state, &parts.headers, body, accepted).await?;
    let written = conditional(state, access, id, &parts.headers, |expected| {
        make(body, expected)
    })
    .await?;
    written_response(StatusCode::OK, written, false)
}

/// `DELETE /api/records/{id}`: deletes the record and answers with its last state.
pub async fn delete(
    State(state): State<RestState>,
    access: Access,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let id = parse_id(&id)?;
    let written = conditional(&state, &access, id, &headers, |expected_version| {
        Write::Delete { expected_version }
    })
    .await?;
    written_response(StatusCode::OK, written, false)
}

/// Applies the write `make` builds for the version `If-Match` asks for.
async fn conditional(
    state: &RestState,
    access: &Access,
    id: Uuid,
    headers: &HeaderMap,
    make: impl FnOnce(Option<i32>) -> Write,
) -> Result<Written> {
    let key = idempotency_key(headers)?;
    let expected = match expected_version(&state.service, access, id, headers).await {
        // With a key, a record gone since the first attempt (a retried delete) must still
        // reach the writer, which answers the stored outcome; without one it is missing.
        Err(Error::NotFound(_)) if key.is_some() => Some(0),
        other => other?,
    };
    let write = make(expected);
    // A list of versions in `If-Match` was resolved against the record as it is now, so
    // the key is bound to what the client sent rather than to the resolved version.
    let request = key.map(|_| {
        let if_match = headers
            .get(header::IF_MATCH)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let body = match &write {
            Write::Replace { data, .. } => data.to_string(),
            Write::Patch { patch, .. } => patch.to_string(),
            _ => String::new(),
        };
        format!("{} {id} if-match={if_match} {body}", kind_name(&write))
    });
    state
        .service
        .apply_request(access, Some(id), write, key, request)
        .await
}

/// The REST method a write came as, for the request an idempotency key is bound to.
fn kind_name(write: &Write) -> &'static str {
    match write {
        Write::Create { .. } => "POST",
        Write::Replace { .. } => "PUT",
        Write::Patch { .. } => "PATCH",
        Write::Delete { .. } => "DELETE",
    }
}

/// The `Idempotency-Key` header, if sent (checked by the service; one that is not
/// even text is `BAD_USER_INPUT` here).
fn idempotency_key(headers: &HeaderMap) -> Result<Option<&str>> {
    headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map_err(|_| {
                Error::bad_input("an idempotency key is 1 to 255 printable ASCII characters")
            })
        })
        .transpose()
}

/// The answer to a one-record write: the record with its `ETag` (and, for a create,
/// `Location`), and `Idempotent-Replayed: true` when it repeats a stored outcome.
fn written_response(status: StatusCode, written: Written, location: bool) -> Result<Response> {
    let replayed = written.replayed;
    let record = written
        .records
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal("a write without a result".into()))?;
    let path = format!("/api/records/{}", record.id);
    let mut resp = with_etag(status, record);
    if location && let Ok(path) = HeaderValue::from_str(&path) {
        resp.headers_mut().insert(header::LOCATION, path);
    }
    Ok(replayed_header(resp, replayed))
}

/// Marks a response that repeats a stored outcome: `Idempotent-Replayed: true`.
fn replayed_header(mut resp: Response, replayed: bool) -> Response {
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    resp
}

/// One write of `POST /api/batch`: `{"create": {…}}`, `{"update": {…}}`,
/// `{"patch": {…}}` or `{"delete": {…}}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
enum BatchWrite {
    Create(CreateBody),
    Update(UpdateBody),
    Patch(PatchBody),
    Delete(DeleteBody),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateBody {
    id: Uuid,
    data: Value,
    expected_version: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PatchBody {
    id: Uuid,
    patch: Value,
    expected_version: Option<i32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DeleteBody {
    id: Uuid,
    expected_version: Option<i32>,
}

/// The body of `POST /api/batch`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchBody {
    writes: Vec<BatchWrite>,
}

impl From<BatchWrite> for WriteOp {
    fn from(w: BatchWrite) -> Self {
        match w {
            BatchWrite::Create(c) => Self {
                id: c.id,
                write: Write::Create {
                    collection: c.collection,
                    data: c.data,
                },
            },
            BatchWrite::Update(u) => Self {
                id: Some(u.id),
                write: Write::Replace {
                    data: u.data,
                    expected_version: u.expected_version,
                },
            },
            BatchWrite::Patch(p) => Self {
                id: Some(p.id),
                write: Write::Patch {
                    patch: p.patch,
                    expected_version: p.expected_version,
                },
            },
            BatchWrite::Delete(d) => Self {
                id: Some(d.id),
                write: Write::Delete {
                    expected_version: d.expected_version,
                },
            },
        }
    }
}

/// `POST /api/batch` with `{"writes": [{"create": {…}}, {"patch": {"id", "patch",
/// "expectedVersion"}}, …]}`: every write in one transaction, in order, or none (the
/// error then has the refused write's `index`); 200 with `{"records", "changeCursor"}`.
pub async fn batch(
    State(state): State<RestState>,
    access: Access,
    req: Request,
) -> Result<Response> {
    let (parts, body) = req.into_parts();
    let key = idempotency_key(&parts.headers)?;
    let body: BatchBody = json_body(&state, &parts.headers, body, &[JSON]).await?;
    let ops = body.writes.into_iter().map(Into::into).collect();
    let written = state.service.commit_writes(&access, ops, key).await?;
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        change_cursor: String,
        records: Vec<Record>,
    }
    let replayed = written.replayed;
    let answer = Answer {
        change_cursor: written
            .records
            .last()
            .map(|r| r.change_cursor.clone())
            .unwrap_or_default(),
        records: written.records,
    };
    let resp = (StatusCode::OK, Json(answer)).into_response();
    Ok(replayed_header(resp, replayed))
}
