//! REST under `/api`, for code that does AJAX CRUD. The same service, the same single
//! write path, the same JSON shapes and the same errors as GraphQL, so every REST write
//! reaches GraphQL subscribers and every refusal carries the code GraphQL would give.
//!
//! # Layout
//! - this file: [`RestState`], the routes, entity tags, query parameters.
//! - [`records`]: `GET/POST /api/records`, `GET/PUT/PATCH/DELETE /api/records/{id}`.
//! - [`changes`]: `GET /api/changes` (polling) and `GET /api/changes/stream` (SSE).
//!
//! Errors are `{"error": {"code", "message"}}` with the status of
//! [`crate::error::Error::status`]; that mapping is the only one.

pub mod changes;
pub mod records;

use axum::{
    Router,
    extract::FromRef,
    http::{HeaderMap, HeaderValue, header},
    routing::{MethodRouter, get, post},
};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    auth::Authenticator,
    error::{Error, Result},
    http::sse::Streams,
    service::Service,
};

/// What the REST handlers need; every field is a cheap handle.
#[derive(Clone)]
pub struct RestState {
    /// The operations.
    pub service: Service,
    /// Checks credentials.
    pub auth: Authenticator,
    /// The event streams being served, bounded by `--sse-max-streams`.
    pub streams: Streams,
    /// Largest request body.
    pub max_body_bytes: usize,
}

impl FromRef<RestState> for Authenticator {
    fn from_ref(state: &RestState) -> Self {
        state.auth.clone()
    }
}

/// The routes, to be nested under `/api`.
pub fn router(state: RestState) -> Router {
    Router::new()
        .route(
            "/records",
            not_allowed(get(records::list).post(records::create), "GET, POST"),
        )
        .route(
            "/records/{id}",
            not_allowed(
                get(records::get)
                    .put(records::replace)
                    .patch(records::patch)
                    .delete(records::delete),
                "GET, PUT, PATCH, DELETE",
            ),
        )
        .route("/batch", not_allowed(post(records::batch), "POST"))
        .route("/changes", not_allowed(get(changes::list), "GET"))
        .route("/changes/stream", not_allowed(get(changes::stream), "GET"))
        .fallback(|| async { Error::NoRoute })
        .with_state(state)
}

/// `routes`, answering other methods with 405 and `Allow`.
fn not_allowed(routes: MethodRouter<RestState>, allow: &'static str) -> MethodRouter<RestState> {
    routes.fallback(move || async move {
        Error::MethodNotAllowed {
            message: format!("this resource accepts {allow}"),
            allow,
        }
    })
}

/// The strong entity tag of a record version: `"3"`.
pub fn etag(version: i32) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// A record id from the path; `BAD_USER_INPUT` if it is not a UUID.
fn parse_id(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|_| Error::bad_input(format!("{id:?} is not a record id (a UUID)")))
}

/// What an `If-Match` header asks.
#[derive(Debug, PartialEq, Eq)]
enum IfMatch {
    /// No header, or `*`: no condition on the version.
    Any,
    /// One of these versions. Tags that name no version (weak ones, which never match
    /// under the strong comparison `If-Match` uses, or foreign ones) are left out, so
    /// the list may be empty: then nothing matches.
    Versions(Vec<i32>),
}

/// Reads `If-Match`; `BAD_USER_INPUT` if it is not a list of entity tags.
fn if_match(headers: &HeaderMap) -> Result<IfMatch> {
    let values: Vec<&HeaderValue> = headers.get_all(header::IF_MATCH).iter().collect();
    if values.is_empty() {
        return Ok(IfMatch::Any);
    }
    let invalid = || Error::bad_input("If-Match must be `*` or entity tags such as \"3\"");
    let mut versions = Vec::new();
    for value in values {
        let text = value.to_str().map_err(|_| invalid())?;
        for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if tag == "*" {
                return Ok(IfMatch::Any);
            }
            let weak = tag.starts_with("W/");
            let opaque = tag
                .trim_start_matches("W/")
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .ok_or_else(invalid)?;
            if !weak && let Ok(v) = opaque.parse::<i32>() {
                versions.push(v);
            }
        }
    }
    Ok(IfMatch::Versions(versions))
}

/// Whether `If-None-Match` matches `version` (weak comparison, as RFC 9110 says).
fn if_none_match(headers: &HeaderMap, version: i32) -> bool {
    let tag = format!("\"{version}\"");
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

/// Reads the query string into `T`, mapping failures to `BAD_USER_INPUT`. Empty values
/// (`?collection=`) count as absent, as URL-building code often sends them.
fn query_params<T: serde::de::DeserializeOwned>(uri: &axum::http::Uri) -> Result<T> {
    let pairs: Vec<(String, String)> = axum::extract::Query::try_from_uri(uri)
        .map_err(|e| Error::bad_input(format!("invalid query string: {e}")))?
        .0;
    let object: serde_json::Map<String, Value> = pairs
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    serde_json::from_value(Value::Object(object))
        .map_err(|e| Error::bad_input(format!("invalid query parameters: {e}")))
}

/// A `limit` parameter as a page size.
fn parse_limit(limit: Option<&str>) -> Result<Option<i32>> {
    limit
        .map(|l| {
            l.parse::<i32>()
                .map_err(|_| Error::bad_input("`limit` must be a whole number"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn if_match_reads_strong_version_tags_and_refuses_garbage() {
        assert_eq!(if_match(&HeaderMap::new()).unwrap(), IfMatch::Any);
        assert_eq!(
            if_match(&headers(header::IF_MATCH, "*")).unwrap(),
            IfMatch::Any
        );
        assert_eq!(
            if_match(&headers(header::IF_MATCH, "\"3\"")).unwrap(),
            IfMatch::Versions(vec![3])
        );
        assert_eq!(
            if_match(&headers(header::IF_MATCH, "\"3\", W/\"4\", \"x\", \"5\"")).unwrap(),
            IfMatch::Versions(vec![3, 5])
        );
        assert!(if_match(&headers(header::IF_MATCH, "3")).is_err());
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(if_none_match(&headers(header::IF_NONE_MATCH, "W/\"2\""), 2));
        assert!(if_none_match(
            &headers(header::IF_NONE_MATCH, "\"1\", \"2\""),
            2
        ));
        assert!(!if_none_match(&headers(header::IF_NONE_MATCH, "\"1\""), 2));
    }
}
