//! Cross-origin access for browser pages served from other origins (a front-end dev
//! server, a separate app domain), as `--cors-origins` allows.
//!
//! Browsers send a preflight `OPTIONS` before a JSON `POST`, a `PUT`, `PATCH` or
//! `DELETE`, or a request with `If-Match`; the layer answers it, and marks real answers
//! readable by the page, `ETag` and `Location` included, which REST clients need.
//! WebSockets are not subject to CORS.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use crate::validate::parse_origin;

/// Refuses settings browsers would reject: credentials with any origin.
pub fn check(origins: &[String], allow_credentials: bool) -> Result<(), String> {
    if allow_credentials && origins.iter().any(|o| o == "*") {
        return Err("--cors-allow-credentials needs explicit --cors-origins, not `*`".into());
    }
    Ok(())
}

/// The layer for `origins` (checked with [`check`]). Without origins: in local mode
/// (authentication off) any origin may call without credentials, so a front-end dev
/// server just works; otherwise none, and only same-origin pages may call.
pub fn layer(origins: &[String], allow_credentials: bool, local: bool) -> Option<CorsLayer> {
    let allow_origin = if origins.iter().any(|o| o == "*") || (origins.is_empty() && local) {
        AllowOrigin::any()
    } else if origins.is_empty() {
        return None;
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    let credentials = allow_credentials && !origins.is_empty() && !origins.iter().any(|o| o == "*");
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_credentials(credentials)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::ACCEPT,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                header::AUTHORIZATION,
                HeaderName::from_static("last-event-id"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::ALLOW,
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_a_scheme_and_host_or_a_star() {
        assert!(parse_origin("*").is_ok());
        assert!(parse_origin("http://localhost:3000").is_ok());
        assert!(parse_origin("https://app.example.com").is_ok());
        for bad in ["localhost:3000", "https://app.example.com/", "ftp://x", ""] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
    }
}
