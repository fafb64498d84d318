//! The one error type of the service and how each variant reaches a client.
//!
//! Every variant maps once to a GraphQL `extensions.code` (and later an HTTP status).
//! Internal errors are logged with their details and reach the client only as
//! `INTERNAL_SERVER_ERROR`.

use async_graphql::ErrorExtensions;
use uuid::Uuid;

/// Everything that can go wrong while serving a client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is invalid: the client must change it. Code `BAD_USER_INPUT`.
    #[error("{0}")]
    BadInput(String),
    /// No record has this id. Code `NOT_FOUND`.
    #[error("record {0} not found")]
    NotFound(Uuid),
    /// `expectedVersion` is stale. Code `VERSION_CONFLICT`, with `currentVersion`.
    #[error("record {id} is at version {current}, not {expected}")]
    VersionConflict {
        /// The record.
        id: Uuid,
        /// The version the client expected.
        expected: i32,
        /// The version the record has.
        current: i32,
    },
    /// A record with this id exists already. Code `ALREADY_EXISTS`.
    #[error("record {0} already exists")]
    AlreadyExists(Uuid),
    /// No valid credential. Code `UNAUTHENTICATED` (HTTP 401).
    #[error("{0}")]
    Unauthenticated(String),
    /// The credential does not allow this. Code `FORBIDDEN` (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The cursor points before the retained change log. Code `CURSOR_EXPIRED`: reload.
    #[error("cursor is older than the retained change log; reload and subscribe again")]
    CursorExpired,
    /// The database cannot be reached right now. Code `SERVICE_UNAVAILABLE`: retry.
    #[error("the database is unavailable; retry shortly")]
    Unavailable(#[source] sea_orm::DbErr),
    /// The database failed. Code `INTERNAL_SERVER_ERROR`; details are only logged.
    #[error("database error: {0}")]
    Database(#[source] sea_orm::DbErr),
    /// Any other internal failure. Code `INTERNAL_SERVER_ERROR`; details are only logged.
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

    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadInput(_) => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::VersionConflict { .. } => "VERSION_CONFLICT",
            Self::AlreadyExists(_) => "ALREADY_EXISTS",
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::CursorExpired => "CURSOR_EXPIRED",
            Self::Unavailable(_) => "SERVICE_UNAVAILABLE",
            Self::Database(_) | Self::Internal(_) => "INTERNAL_SERVER_ERROR",
        }
    }

    /// Whether the details must stay in the log.
    fn is_internal(&self) -> bool {
        matches!(self, Self::Database(_) | Self::Internal(_))
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
    /// `extensions.code`, plus `currentVersion` on a version conflict.
    fn extend(&self) -> async_graphql::Error {
        let message = if self.is_internal() {
            tracing::error!(error = %self, "internal error");
            "internal server error".to_owned()
        } else {
            self.to_string()
        };
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", self.code());
            if let Error::VersionConflict { current, .. } = self {
                ext.set("currentVersion", *current);
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
