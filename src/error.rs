//! The one error type of the service and how each variant reaches a client.
//!
//! Every variant maps once to a stable code ([`Error::code`]) and once to an HTTP status
//! ([`Error::status`]). GraphQL shows the code as `extensions.code`; REST answers with
//! the status and `{"error": {"code", "message"}}`; the GraphQL-over-HTTP endpoint uses
//! the status for requests that are not GraphQL at all. Internal errors are logged with
//! their details and reach the client only as `INTERNAL_SERVER_ERROR`.

use async_graphql::ErrorExtensions;
use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use uuid::Uuid;

/// Everything that can go wrong while serving a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is invalid: the client must change it. Code `BAD_USER_INPUT`, 400.
    #[error("{0}")]
    BadInput(String),
    /// The request is not a well-formed GraphQL request (not JSON, no `query`, a
    /// parameter of the wrong type). Code `BAD_REQUEST`, 400.
    #[error("{0}")]
    BadRequest(String),
    /// No record has this id. Code `NOT_FOUND`, 404.
    #[error("record {0} not found")]
    NotFound(Uuid),
    /// No such route. Code `NOT_FOUND`, 404.
    #[error("no such resource")]
    NoRoute,
    /// The HTTP method is not served here. Code `METHOD_NOT_ALLOWED`, 405, with `Allow`.
    #[error("{message}")]
    MethodNotAllowed {
        /// What the client sees.
        message: String,
        /// The `Allow` header: the methods that are served.
        allow: &'static str,
    },
    /// `expectedVersion` (GraphQL) or `If-Match` (REST) names a version the record no
    /// longer has. Code `VERSION_CONFLICT` with `currentVersion` and, for a caller who
    /// may read the record, `current` (the record as it is now), 412.
    #[error("record {id} is at version {current}, not {expected}")]
    VersionConflict {
        /// The record.
        id: Uuid,
        /// The version the client expected (for `If-Match` lists, the first).
        expected: i32,
        /// The version the record has.
        current: i32,
        /// The record as it is now, in its wire shape, when the caller may read it.
        record: Option<Box<serde_json::Value>>,
    },
    /// Write `index` of an atomic batch was refused with `source`, so the batch was:
    /// the code, status and message of `source`, with `index`.
    #[error("write {index} of the batch: {source}")]
    InBatch {
        /// The refused write's position in the batch, from 0.
        index: usize,
        /// Why it was refused.
        source: Box<Error>,
    },
    /// The idempotency key was used before for a different request. Code
    /// `IDEMPOTENCY_KEY_REUSED`, 422.
    #[error("this idempotency key was used for a different request")]
    IdempotencyKeyReused,
    /// A refusal stored with an idempotency key, repeated: the same code, message and
    /// details as the first time.
    #[error("{message}")]
    Replayed {
        /// The code.
        code: &'static str,
        /// The message.
        message: String,
        /// Everything else the first answer had (`currentVersion`, `current`, `index`).
        details: serde_json::Map<String, serde_json::Value>,
    },
    /// A record with this id exists already. Code `ALREADY_EXISTS`, 409.
    #[error("record {0} already exists")]
    AlreadyExists(Uuid),
    /// No valid credential. Code `UNAUTHENTICATED`, 401.
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential does not allow this. Code `FORBIDDEN`, 403.
    #[error("{0}")]
    Forbidden(String),
    /// The cursor points before the retained change log. Code `CURSOR_EXPIRED`, 410:
    /// reload.
    #[error("cursor is older than the retained change log; reload and subscribe again")]
    CursorExpired,
    /// The `Accept` header accepts no media type the endpoint can answer in. Code
    /// `NOT_ACCEPTABLE`, 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// The request body is over `--max-body-bytes`. Code `PAYLOAD_TOO_LARGE`, 413.
    #[error("request body is over the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// A query would load more record data than `--max-response-bytes`. Code
    /// `RESPONSE_TOO_LARGE` (a GraphQL field error): ask for smaller pages or fewer
    /// aliases.
    #[error(
        "the query would load more than {0} bytes of record data; ask for smaller pages or fewer aliases"
    )]
    ResponseTooLarge(usize),
    /// The body's media type is not one this endpoint reads. Code
    /// `UNSUPPORTED_MEDIA_TYPE`, 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The connection (or the server, for event streams) runs as many subscriptions as
    /// it may. Code `TOO_MANY_SUBSCRIPTIONS`, 429.
    #[error("{0}")]
    TooManySubscriptions(String),
    /// The server (or this client address) has as many WebSocket connections open as it
    /// may. Code `TOO_MANY_CONNECTIONS`, 429.
    #[error("{0}")]
    TooManyConnections(String),
    /// The database cannot be reached right now. Code `SERVICE_UNAVAILABLE`, 503: retry.
    #[error("the database is unavailable; retry shortly")]
    Unavailable(#[source] sea_orm::DbErr),
    /// The database failed. Code `INTERNAL_SERVER_ERROR`, 500; details are only logged.
    #[error("database error: {0}")]
    Database(#[source] sea_orm::DbErr),
    /// Any other internal failure. Code `INTERNAL_SERVER_ERROR`, 500; details are only
    /// logged.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The service's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::BadInput`].
    pub fn bad_input(msg: impl Into<String>) -> Self {
        Self::BadInput(msg.into())
    }

    /// Shorthand for [`Error::BadRequest`].
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::BadRequest(_) => "BAD_REQUEST",
            Self::NotFound(_) | Self::NoRoute => "NOT_FOUND",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::VersionConflict { .. } => "VERSION_CONFLICT",
            Self::InBatch { source, .. } => source.code(),
            Self::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            Self::Replayed { code, .. } => code,
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::CursorExpired => "CURSOR_EXPIRED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::NotAcceptable(_) => "NOT_ACCEPTABLE",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::ResponseTooLarge(_) => "RESPONSE_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::TooManySubscriptions(_) => "TOO_MANY_SUBSCRIPTIONS",
            Self::TooManyConnections(_) => "TOO_MANY_CONNECTIONS",
            Self::Database(_) | Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// The HTTP status an HTTP client sees.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadInput(_) | Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) | Self::NoRoute => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::VersionConflict { .. } => StatusCode::PRECONDITION_FAILED,
            Self::InBatch { source, .. } => source.status(),
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Replayed { code, .. } => status_of(code),
            Self::AlreadyExists(_) => StatusCode::CONFLICT,
            Self::CursorExpired => StatusCode::GONE,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::PayloadTooLarge(_) | Self::ResponseTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManySubscriptions(_) | Self::TooManyConnections(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Database(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Whether the details must stay in the log.
    fn is_internal(&self) -> bool {
        match self {
            Self::Database(_) | Self::Internal(_) => true,
            Self::InBatch { source, .. } => source.is_internal(),
            _ => false,
        }
    }

    /// The message a client sees: generic for internal errors, which are logged here.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            tracing::error!(error = %self, "internal error");
            "internal server error".to_owned()
        } else {
            self.to_string()
        }
    }

    /// What a client reads besides `code` and `message`: `currentVersion` on a version
    /// conflict. Every error shape (REST, GraphQL over HTTP, GraphQL errors) takes them
    /// from here.
    fn details(&self) -> Vec<(String, serde_json::Value)> {
        match self {
            Error::VersionConflict {
                current, record, ..
            } => {
                let mut out = vec![("currentVersion".to_owned(), json!(current))];
                if let Some(record) = record {
                    out.push(("current".to_owned(), (**record).clone()));
                }
                out
            }
            Error::InBatch { index, source } => {
                let mut out = source.details();
                out.push(("index".to_owned(), json!(index)));
                out
            }
            Error::Replayed { details, .. } => details
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The refusal as it is stored with an idempotency key: the client's view of it
    /// (code, message, details). `None` for errors where nothing was decided (the
    /// database unreachable, an internal error), which are never stored: a retry runs
    /// anew.
    pub fn stored(&self) -> Option<serde_json::Value> {
        let decided = match self {
            Error::InBatch { source, .. } => !matches!(
                **source,
                Error::Unavailable(_) | Error::Database(_) | Error::Internal(_)
            ),
            Error::Unavailable(_) | Error::Database(_) | Error::Internal(_) => false,
            _ => true,
        };
        decided.then(|| self.to_json())
    }

    /// A refusal read back from its stored form ([`Error::stored`]).
    pub fn replayed(stored: &serde_json::Value) -> Self {
        let mut details = stored.as_object().cloned().unwrap_or_default();
        let code = details
            .remove("code")
            .and_then(|c| c.as_str().map(static_code))
            .unwrap_or("INTERNAL_SERVER_ERROR");
        let message = details
            .remove("message")
            .and_then(|m| m.as_str().map(str::to_owned))
            .unwrap_or_default();
        Error::Replayed {
            code,
            message,
            details,
        }
    }

    /// The error as a JSON object: `code`, `message` and [`Error::details`].
    pub fn to_json(&self) -> serde_json::Value {
        let mut body = json!({"code": self.code(), "message": self.public_message()});
        for (key, value) in self.details() {
            body[key.as_str()] = value;
        }
        body
    }

    /// Headers that go with the status: `Allow` for 405, the current `ETag` for a
    /// version conflict.
    fn headers(&self, resp: &mut Response) {
        match self {
            Error::MethodNotAllowed { allow, .. } => {
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            Error::VersionConflict { current, .. } => {
                if let Ok(tag) = HeaderValue::from_str(&format!("\"{current}\"")) {
                    resp.headers_mut().insert(header::ETAG, tag);
                }
            }
            Error::InBatch { source, .. } => source.headers(resp),
            Error::Replayed { code, details, .. } => {
                if *code == "VERSION_CONFLICT"
                    && let Some(current) = details.get("currentVersion").and_then(|v| v.as_i64())
                    && let Ok(tag) = HeaderValue::from_str(&format!("\"{current}\""))
                {
                    resp.headers_mut().insert(header::ETAG, tag);
                }
            }
            _ => {}
        }
    }

    /// The response of the GraphQL endpoint to a request it refuses before any GraphQL
    /// runs: the status, and the error in GraphQL shape (no `data` entry).
    pub fn into_graphql_response(self) -> Response {
        let mut error =
            json!({"message": self.public_message(), "extensions": {"code": self.code()}});
        for (key, value) in self.details() {
            error["extensions"][key.as_str()] = value;
        }
        let mut resp = (self.status(), Json(json!({"errors": [error]}))).into_response();
        self.headers(&mut resp);
        resp
    }
}

/// The codes a stored refusal can have, as the static strings [`Error::code`] returns.
fn static_code(code: &str) -> &'static str {
    const CODES: &[&str] = &[
        "BAD_USER_INPUT",
        "NOT_FOUND",
        "VERSION_CONFLICT",
        "ALREADY_EXISTS",
        "FORBIDDEN",
        "PAYLOAD_TOO_LARGE",
    ];
    CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or("INTERNAL_SERVER_ERROR")
}

/// The status of a stored refusal's code, as [`Error::status`] gives it.
fn status_of(code: &str) -> StatusCode {
    match code {
        "BAD_USER_INPUT" => StatusCode::BAD_REQUEST,
        "NOT_FOUND" => StatusCode::NOT_FOUND,
        "VERSION_CONFLICT" => StatusCode::PRECONDITION_FAILED,
        "ALREADY_EXISTS" => StatusCode::CONFLICT,
        "FORBIDDEN" => StatusCode::FORBIDDEN,
        "PAYLOAD_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The REST shape: the status and `{"error": {"code", "message"}}`.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), Json(json!({"error": self.to_json()}))).into_response();
        self.headers(&mut resp);
        resp
    }
}

impl From<sea_orm::DbErr> for Error {
    /// Connection failures become [`Error::Unavailable`], everything else
    /// [`Error::Database`].
    fn from(err: sea_orm::DbErr) -> Self {
        if is_connection_failure(&err) {
            Self::Unavailable(err)
        } else {
            Self::Database(err)
        }
    }
}

/// Whether `err` means the database could not be reached (as opposed to a statement
/// that failed): pool timeouts, broken sockets, and PostgreSQL's connection-exception
/// (class 08) and shutdown (57P01-57P03) codes.
fn is_connection_failure(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr, sqlx};
    let sqlx_err = match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => e,
        _ => return false,
    };
    match &**sqlx_err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

impl ErrorExtensions for Error {
    /// The GraphQL error a client sees: the message (generic for internal errors) and
    /// `extensions.code`, plus [`Error::details`].
    fn extend(&self) -> async_graphql::Error {
        async_graphql::Error::new(self.public_message()).extend_with(|_, ext| {
            ext.set("code", self.code());
            for (key, value) in self.details() {
                if let Ok(value) = async_graphql::Value::from_json(value) {
                    ext.set(key, value);
                }
            }
        })
    }
}

/// Turns a service result into a GraphQL result that keeps the error code.
///
/// async-graphql converts any `Display` error with `?`, dropping the code, so
/// resolvers call `.gql()?` instead.
pub trait GqlResult<T> {
    /// The result with the error extended with its code.
    fn gql(self) -> async_graphql::Result<T>;
}

impl<T> GqlResult<T> for Result<T> {
    fn gql(self) -> async_graphql::Result<T> {
        self.map_err(|e| e.extend())
    }
}
