//! Opaque cursors: change-log positions and keyset positions in a `records` page.
//!
//! Cursors are base64url strings. A change cursor is encrypted, so it says nothing about
//! how busy other collections are; a record cursor holds only what the page already
//! shows (an ordering value and an id), and the prefix inside it makes a cursor of one
//! kind (or of another ordering) a clear `BAD_USER_INPUT` when used as the other.

use std::{fmt, sync::Arc};

use aes::{
    Aes128,
    cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit},
};
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

/// What follows the position inside a change cursor's block: a cursor that does not
/// decrypt to it was not issued by this database.
const CHANGE_TAG: [u8; 8] = *b"rs.chg\x00\x01";

/// Change cursors: a change-log position encrypted (AES-128, one block) with the
/// database's own key, so a client learns nothing from a cursor, cannot make one up,
/// and every instance on the database reads the cursors the others issued, across
/// restarts.
#[derive(Clone)]
pub struct ChangeCursors(Arc<Aes128>);

impl fmt::Debug for ChangeCursors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChangeCursors")
    }
}

impl ChangeCursors {
    /// Cursors under `key` (the database's `server_key`).
    pub fn new(key: &[u8]) -> Result<Self> {
        let cipher = Aes128::new_from_slice(key)
            .map_err(|_| Error::Internal("the cursor key is not 16 bytes".into()))?;
        Ok(Self(Arc::new(cipher)))
    }

    /// Encodes a change-log position.
    pub fn encode(&self, seq: i64) -> String {
        let mut block = Block::<Aes128>::default();
        block[..8].copy_from_slice(&seq.to_be_bytes());
        block[8..].copy_from_slice(&CHANGE_TAG);
        self.0.encrypt_block(&mut block);
        URL_SAFE_NO_PAD.encode(block)
    }

    /// Decodes a change-log position: `BAD_USER_INPUT` for anything this database did
    /// not issue, `CURSOR_EXPIRED` for a readable cursor of an earlier version (its
    /// client reloads, as after pruning).
    pub fn decode(&self, cursor: &str) -> Result<i64> {
        let invalid = || Error::bad_input("invalid change cursor");
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if let Some(seq) = bytes.strip_prefix(b"chg:")
            && !seq.is_empty()
            && seq.len() <= 19
            && seq.iter().all(u8::is_ascii_digit)
        {
            return Err(Error::CursorExpired);
        }
        let mut block = Block::<Aes128>::try_from(bytes.as_slice()).map_err(|_| invalid())?;
        self.0.decrypt_block(&mut block);
        if block[8..] != CHANGE_TAG {
            return Err(invalid());
        }
        let seq = i64::from_be_bytes(block[..8].try_into().map_err(|_| invalid())?);
        if seq < 0 {
            return Err(invalid());
        }
        Ok(seq)
    }
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

    fn cursors() -> ChangeCursors {
        ChangeCursors::new(&[7; 16]).unwrap()
    }

    #[test]
    fn change_cursors_round_trip_and_reject_garbage() {
        let c = cursors();
        assert_eq!(c.decode(&c.encode(42)).unwrap(), 42);
        assert_eq!(c.decode(&c.encode(0)).unwrap(), 0);
        let other = ChangeCursors::new(&[8; 16]).unwrap();
        assert!(other.decode(&c.encode(42)).is_err());
        for bad in ["", "zzz", "!!", &"a".repeat(500), &"A".repeat(22)] {
            assert!(matches!(c.decode(bad), Err(Error::BadInput(_))), "{bad}");
        }
        // A readable cursor of an earlier version: reload.
        assert!(matches!(c.decode("Y2hnOjQy"), Err(Error::CursorExpired)));
        assert!(matches!(c.decode("Y2hnOi0x"), Err(Error::BadInput(_))));
    }

    #[test]
    fn neighbouring_positions_look_unrelated() {
        let c = cursors();
        let (a, b) = (c.encode(1000), c.encode(1001));
        let same = a.bytes().zip(b.bytes()).filter(|(x, y)| x == y).count();
        assert!(same < 8, "{a} and {b} share {same} characters");
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
        assert!(cursors().decode(&c).is_err());
    }
}
