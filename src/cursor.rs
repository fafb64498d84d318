//! Opaque cursors: change-log positions and keyset positions in a `records` page.
//!
//! Cursors are base64url strings so clients treat them as opaque; the prefix inside
//! makes a cursor of one kind (or of another ordering) a clear `BAD_USER_INPUT` when
//! used as the other.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Longest cursor accepted; every real cursor is far shorter.
const MAX_CURSOR_LEN: usize = 128;

fn decode_text(cursor: &str) -> Option<String> {
    if cursor.len() > MAX_CURSOR_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    String::from_utf8(bytes).ok()
}

/// Encodes a change-log position.
pub fn encode_change(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("chg:{seq}"))
}

/// Decodes a change-log position, or `BAD_USER_INPUT`.
pub fn decode_change(cursor: &str) -> Result<i64> {
    decode_text(cursor)
        .and_then(|t| t.strip_prefix("chg:")?.parse::<i64>().ok())
        .filter(|seq| *seq >= 0)
        .ok_or_else(|| Error::bad_input("invalid change cursor"))
}

/// The field a `records` page is ordered by; `id` breaks ties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderField {
    /// `created_at`, then `id`.
    CreatedAt,
    /// `updated_at`, then `id`.
    UpdatedAt,
    /// `id` alone.
    Id,
}

impl OrderField {
    fn tag(self) -> &'static str {
        match self {
            Self::CreatedAt => "c",
            Self::UpdatedAt => "u",
            Self::Id => "i",
        }
    }
}

/// A position in a `records` page: the ordering value and the id of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordKey {
    /// The ordering value (absent when ordering by id).
    pub at: Option<DateTime<Utc>>,
    /// The record's id.
    pub id: Uuid,
}

/// Encodes a record's position under `field`.
pub fn encode_record(field: OrderField, key: RecordKey) -> String {
    let at = key
        .at
        .map(|t| t.timestamp_micros().to_string())
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(format!("rec:{}:{}:{}", field.tag(), at, key.id))
}

/// Decodes a record position made under `field`, or `BAD_USER_INPUT`.
pub fn decode_record(field: OrderField, cursor: &str) -> Result<RecordKey> {
    let invalid = || Error::bad_input("invalid record cursor for this ordering");
    let text = decode_text(cursor).ok_or_else(invalid)?;
    let mut parts = text.splitn(4, ':');
    if parts.next() != Some("rec") || parts.next() != Some(field.tag()) {
        return Err(invalid());
    }
    let at = parts.next().ok_or_else(invalid)?;
    let id = parts
        .next()
        .and_then(|s| Uuid::parse_str(s).ok())
        .ok_or_else(invalid)?;
    let at = match (field, at) {
        (OrderField::Id, "") => None,
        (OrderField::Id, _) => return Err(invalid()),
        (_, micros) => Some(
            micros
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_micros)
                .filter(|t| crate::validate::check_time(*t).is_ok())
                .ok_or_else(invalid)?,
        ),
    };
    Ok(RecordKey { at, id })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn change_cursors_round_trip_and_reject_garbage() {
        assert_eq!(decode_change(&encode_change(42)).unwrap(), 42);
        for bad in ["", "zzz", "Y2hnOi0x", "!!", &"a".repeat(500)] {
            assert!(decode_change(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn record_cursors_are_bound_to_their_ordering() {
        let key = RecordKey {
            at: DateTime::from_timestamp_micros(1_700_000_000_123_456),
            id: Uuid::new_v4(),
        };
        let c = encode_record(OrderField::CreatedAt, key);
        assert_eq!(decode_record(OrderField::CreatedAt, &c).unwrap(), key);
        assert!(decode_record(OrderField::UpdatedAt, &c).is_err());
        assert!(decode_record(OrderField::Id, &c).is_err());
        assert!(decode_change(&c).is_err());
    }
}
