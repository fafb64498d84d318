//! What every HTTP endpoint shares, GraphQL's and REST's alike.
//!
//! # Layout
//! - this file: the caller's credential and [`Access`] from the `Authorization` header
//!   (an extractor for any router whose state can give an [`Authenticator`]).
//! - [`request`]: reading bodies within `--max-body-bytes`, media types and `Accept`.
//! - [`sse`]: bounded server-sent event streams.
//! - [`cors`]: cross-origin access for browser pages, when `--cors-origins` allows it.
//! - [`serve`]: accepting connections, with a cap and timeouts.

pub mod cors;
pub mod request;
pub mod serve;
pub mod sse;

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{HeaderMap, header, request::Parts},
};

use crate::{
    auth::{Access, Authenticator},
    error::Error,
};

/// The `Authorization` header's value.
pub fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// The address a request came from (behind a proxy, the proxy's), as the server's
/// accept loop recorded it; `0.0.0.0` for a request that did not come over a socket.
pub fn client_address(parts: &Parts) -> std::net::IpAddr {
    parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// Who a request comes from, for limits per caller: the token's subject when it names
/// one, else the client address.
pub fn caller(access: &Access, parts: &Parts) -> String {
    match &access.subject {
        Some(subject) => format!("sub:{subject}"),
        None => format!("addr:{}", client_address(parts)),
    }
}

/// The caller's access, from its `Authorization` header: `UNAUTHENTICATED` (401)
/// without a valid credential when authentication is on.
impl<S> FromRequestParts<S> for Access
where
    S: Send + Sync,
    Authenticator: FromRef<S>,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Error> {
        Authenticator::from_ref(state).authenticate(authorization(&parts.headers))
    }
}
