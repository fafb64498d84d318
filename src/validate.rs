//! Checks on what clients send that every layer shares: collection names, strings
//! every backend can store, and times every backend can compare; and the form of a
//! `--cors-origins` entry.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{Error, Result};

/// A collection name is 1–64 characters of `A-Z a-z 0-9 _ . -`.
pub fn validate_collection(name: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::bad_input(
            "collection must be 1-64 characters of A-Z, a-z, 0-9, '_', '.' or '-'",
        ))
    }
}

/// JSON may carry `\u0000`, PostgreSQL's `jsonb` may not: refuse it on every backend so
/// data moves between them.
pub fn check_no_nul(value: &Value) -> Result<()> {
    let has_nul = |s: &str| s.contains('\0');
    let bad = match value {
        Value::String(s) => has_nul(s),
        Value::Array(items) => return items.iter().try_for_each(check_no_nul),
        Value::Object(map) => {
            if map.keys().any(|k| has_nul(k)) {
                true
            } else {
                return map.values().try_for_each(check_no_nul);
            }
        }
        _ => false,
    };
    if bad {
        Err(Error::bad_input(
            "JSON strings may not contain the NUL character (\\u0000)",
        ))
    } else {
        Ok(())
    }
}

/// Times outside years 0–9999 cannot be stored or compared on every backend
/// (PostgreSQL stops at 4713 BC, SQLite compares text): `BAD_USER_INPUT`.
pub fn check_time(at: DateTime<Utc>) -> Result<()> {
    use chrono::Datelike;
    if (0..=9999).contains(&at.year()) {
        Ok(())
    } else {
        Err(Error::bad_input(
            "times must fall in the years 0000 to 9999",
        ))
    }
}

/// Checks one `--cors-origins` entry: `*`, or an origin such as `https://app.example`.
pub fn parse_origin(value: &str) -> Result<String, String> {
    let value = value.trim();
    let well_formed = value == "*"
        || ((value.starts_with("http://") || value.starts_with("https://"))
            && !value.ends_with('/')
            && axum::http::HeaderValue::from_str(value).is_ok());
    if well_formed {
        Ok(value.to_owned())
    } else {
        Err(format!(
            "{value:?} is not an origin: use `*` or scheme://host[:port], without a path"
        ))
    }
}
