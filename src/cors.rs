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

/// Checks one `--cors-origins` entry: `*`, or an origin such as `https://app.example`.
pub fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let well_formed = value == "*"
        || ((value.starts_with("http://") || value.starts_with("https://"))
            && !value.ends_with('/')
            && HeaderValue::from_str(value).is_ok());
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not an origin: use `*` or scheme://host[:port], without a path"
        ))
    }
}

/// The layer for `origins`, or none when no other origin is allowed.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
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
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::ETAG, header::LOCATION, header::ALLOW])
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
