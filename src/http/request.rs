//! What every HTTP endpoint reads from a request the same way: the body within
//! `--max-body-bytes`, its media type, and which response type the client prefers.

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, header},
};

use crate::error::{Error, Result};

/// Reads the whole body, refusing (413) as soon as it grows over `limit`, so a large
/// body never sits in memory.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|err| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = source {
            if e.is::<http_body_util::LengthLimitError>() {
                return Error::PayloadTooLarge(limit);
            }
            source = e.source();
        }
        Error::bad_request(format!("cannot read the request body: {err}"))
    })
}

/// The body's media type (`type/subtype`, lower case, parameters dropped), if any.
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim().to_ascii_lowercase();
    (!essence.is_empty()).then_some(essence)
}

/// Whether the body's media type is one of `accepted`.
pub fn has_media_type(headers: &HeaderMap, accepted: &[&str]) -> bool {
    media_type(headers).is_some_and(|m| accepted.contains(&m.as_str()))
}

/// The media type of `offered` the client's `Accept` header prefers: highest `q`, ties
/// in the order of `offered`. Wildcards (`*/*`, `type/*`) stand for `default` only. No
/// `Accept` header selects `default`; one that accepts none of `offered` selects
/// nothing.
pub fn negotiate<'a>(
    headers: &HeaderMap,
    default: &'a str,
    offered: &[&'a str],
) -> Option<&'a str> {
    let accept: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Some(default);
    }
    let mut best: Option<(&str, f32)> = None;
    for range in accept.iter().flat_map(|v| v.split(',')) {
        let mut parts = range.split(';');
        let Some(media) = parts.next().map(|m| m.trim().to_ascii_lowercase()) else {
            continue;
        };
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q <= 0.0 {
            continue;
        }
        let candidate = if media == "*/*" {
            Some(default)
        } else if let Some(ty) = media.strip_suffix("/*") {
            default.starts_with(&format!("{ty}/")).then_some(default)
        } else {
            offered.iter().copied().find(|o| *o == media)
        };
        let Some(candidate) = candidate else { continue };
        let rank = |m: &str| {
            offered
                .iter()
                .position(|o| *o == m)
                .unwrap_or(offered.len())
        };
        let better = match best {
            None => true,
            Some((b, bq)) => q > bq || (q == bq && rank(candidate) < rank(b)),
        };
        if better {
            best = Some((candidate, q));
        }
    }
    best.map(|(m, _)| m)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn accept_negotiation_follows_q_values_and_wildcards_mean_the_default() {
        let offered = ["application/graphql-response+json", "application/json"];
        let preferred = |h: &HeaderMap, o: &[&'static str]| {
            negotiate(h, "application/json", o).unwrap_or("none")
        };
        assert_eq!(preferred(&HeaderMap::new(), &offered), "application/json");
        assert_eq!(
            preferred(
                &accept("application/json, application/graphql-response+json"),
                &offered
            ),
            "application/graphql-response+json"
        );
        assert_eq!(preferred(&accept("*/*"), &offered), "application/json");
        assert_eq!(
            preferred(&accept("application/graphql-response+json"), &offered),
            "application/graphql-response+json"
        );
        assert_eq!(
            preferred(
                &accept("application/graphql-response+json, application/json;q=0.9"),
                &offered
            ),
            "application/graphql-response+json"
        );
        assert_eq!(
            preferred(
                &accept("application/graphql-response+json;q=0.5, application/json"),
                &offered
            ),
            "application/json"
        );
        assert_eq!(preferred(&accept("text/plain"), &offered), "none");
        assert_eq!(preferred(&accept("application/json;q=0"), &offered), "none");
        assert_eq!(
            preferred(&accept("application/*"), &offered),
            "application/json"
        );
    }
}
