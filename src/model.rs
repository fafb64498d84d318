//! The shared model: what a change is, and the one wire shape of records and changes.
//!
//! Every transport shows a record and a change the same way: GraphQL's `Record` and
//! `RecordChange` are these structs, and REST serializes the very same structs to JSON,
//! so a field added here appears everywhere with the same name and format.
//!
//! This module is a leaf: it depends on the entities, the cursor encoding and the error
//! type only, so the store, the broker, the service and the transports can all use it.

use std::{fmt, str::FromStr, sync::Arc};

use async_graphql::{ComplexObject, Enum, ErrorExtensions, Json, SimpleObject};
use chrono::{DateTime, Utc};
use entity::record;
use serde::{Serialize, Serializer};
use serde_json::{Value, value::RawValue};
use uuid::Uuid;

use crate::{
    cursor::ChangeCursors,
    error::{Error, Result},
};

/// A committed change, as it is kept in memory: the data stays the JSON text it was
/// written as, so a change costs what its text does wherever it waits (the broker's
/// buffer, a subscription's catch-up batch), and every subscriber shares one copy.
#[derive(Clone, Debug)]
pub struct Change {
    /// Position in the log.
    pub seq: i64,
    /// The record that changed.
    pub record_id: Uuid,
    /// The record's collection.
    pub collection: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The record's version after the change (for a delete: its last version).
    pub version: i32,
    /// The record's data after the change (for a delete: its last data).
    pub data: Data,
    /// The record's creation time.
    pub record_created_at: DateTime<Utc>,
    /// The record's `updated_at` after the change.
    pub record_updated_at: DateTime<Utc>,
    /// When the change was committed.
    pub changed_at: DateTime<Utc>,
}

impl Change {
    /// Bytes this change holds (what byte budgets count).
    pub fn size(&self) -> usize {
        self.data.len() + self.collection.len() + std::mem::size_of::<Self>()
    }
}

/// A record's `data` as JSON text: written into REST and SSE answers as it is, parsed
/// only where GraphQL needs the tree. Cheap to clone.
#[derive(Clone)]
pub struct Data(Arc<RawValue>);

impl Data {
    /// The text of `value`.
    pub fn from_value(value: &Value) -> Self {
        // Serializing a `Value` cannot fail: its keys are strings.
        let raw = serde_json::value::to_raw_value(value)
            .unwrap_or_else(|_| RawValue::from_string("null".into()).expect("valid JSON"));
        Self(Arc::from(raw))
    }

    /// Text read from the database, checked to be one JSON value (at any depth: the
    /// check does not recurse).
    pub fn from_text(text: String) -> Result<Self> {
        RawValue::from_string(text)
            .map(|raw| Self(Arc::from(raw)))
            .map_err(|e| Error::Internal(format!("stored data is not JSON: {e}")))
    }

    /// The same value in the form the server writes everywhere: compact, keys sorted.
    /// (PostgreSQL gives `jsonb` back with spaces and its own key order.)
    pub fn canonical(&self) -> Result<Self> {
        Ok(Self::from_value(&self.parse()?))
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Length of the text in bytes.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// Whether the text is empty (never, for valid JSON).
    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }

    /// The parsed tree, at whatever depth it was stored: rows written before
    /// `--max-data-depth` existed may nest deeper than serde_json's default limit, and
    /// they must still read back.
    pub fn parse(&self) -> Result<Value> {
        parse_unbounded(self.text())
    }
}

/// Parses JSON text without serde_json's recursion limit (stored data only: what
/// clients send is parsed with the limit and checked against `--max-data-depth`).
pub fn parse_unbounded(text: &str) -> Result<Value> {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = Value::deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| Error::Internal(format!("stored data is not JSON: {e}")))?;
    Ok(value)
}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Data({} bytes)", self.len())
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// What happened to a record.
#[derive(Enum, Serialize, Copy, Clone, Eq, PartialEq, Hash, Debug)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ChangeKind {
    /// The record was created.
    Created,
    /// The record's data was replaced or patched.
    Updated,
    /// The record was deleted; the change carries its last state.
    Deleted,
}

impl ChangeKind {
    /// The name stored in the change log (and shown to clients).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "CREATED",
            Self::Updated => "UPDATED",
            Self::Deleted => "DELETED",
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ChangeKind {
    type Err = Error;

    /// A kind the log does not know is an internal error, never a guess.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "CREATED" => Ok(Self::Created),
            "UPDATED" => Ok(Self::Updated),
            "DELETED" => Ok(Self::Deleted),
            other => Err(Error::Internal(format!(
                "unknown change kind {other:?} in the log"
            ))),
        }
    }
}

/// Times as every transport writes them: RFC 3339, as GraphQL's `DateTime` does.
fn rfc3339<S: Serializer>(at: &DateTime<Utc>, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&at.to_rfc3339())
}

/// A record: a JSON object in a collection.
#[derive(SimpleObject, Serialize, Clone, Debug)]
#[graphql(complex)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The record's id.
    pub id: Uuid,
    /// The collection it belongs to.
    pub collection: String,
    /// The record's content (a JSON object).
    #[graphql(skip)]
    pub data: Data,
    /// Starts at 1, +1 on every change. Pass it as `expectedVersion` to update safely.
    pub version: i32,
    /// When it was created.
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
    /// The cursor of the change that produced this version: exactly the `cursor` of
    /// that change's `RecordChange` event, and accepted as `after` everywhere (a
    /// deleted record's last state carries the delete's). A write's answer is its
    /// receipt: once a subscription has delivered this cursor, the write has reached it.
    pub change_cursor: String,
}

#[ComplexObject]
impl Record {
    /// The record's content (a JSON object).
    async fn data(&self) -> async_graphql::Result<Json<Value>> {
        Ok(Json(self.data.parse().map_err(|e| e.extend())?))
    }
}

impl Record {
    /// The record as clients see it, its change cursor encoded by `cursors`.
    pub fn new(m: &record::Model, cursors: &ChangeCursors) -> Self {
        Self {
            id: m.id,
            collection: m.collection.clone(),
            data: Data::from_value(&m.data),
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
            change_cursor: cursors.encode(m.change_seq),
        }
    }
}

/// A record as stored with an idempotency key's outcome, read back byte for byte.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRecord {
    id: Uuid,
    collection: String,
    data: Box<RawValue>,
    version: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    change_cursor: String,
}

impl<'de> serde::Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let r = StoredRecord::deserialize(d)?;
        Ok(Self {
            id: r.id,
            collection: r.collection,
            data: Data(Arc::from(r.data)),
            version: r.version,
            created_at: r.created_at,
            updated_at: r.updated_at,
            change_cursor: r.change_cursor,
        })
    }
}

/// One committed change of a record.
#[derive(SimpleObject, Serialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct RecordChange {
    /// Position in the change log; pass it as `after` to resume right after this change.
    pub cursor: String,
    /// What happened.
    pub kind: ChangeKind,
    /// The record after the change (for a delete: its last state).
    pub record: Record,
    /// When the change was committed.
    #[serde(serialize_with = "rfc3339")]
    pub changed_at: DateTime<Utc>,
}

impl RecordChange {
    /// The change as clients see it, its position encoded by `cursors`.
    pub fn new(c: &Change, cursors: &ChangeCursors) -> Result<Self> {
        let cursor = cursors.encode(c.seq);
        Ok(Self {
            kind: c.kind,
            record: Record {
                id: c.record_id,
                collection: c.collection.clone(),
                data: c.data.clone(),
                version: c.version,
                created_at: c.record_created_at,
                updated_at: c.record_updated_at,
                change_cursor: cursor.clone(),
            },
            cursor,
            changed_at: c.changed_at,
        })
    }
}

/// How many bytes of record data one GraphQL query may still load
/// (`--max-response-bytes`). Pages charge each record's text as they read it, so a
/// query over the bound stops at the first record past it, before its answer is built.
#[derive(Debug)]
pub struct ResponseBudget {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl ResponseBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: Default::default(),
        }
    }

    /// Takes `bytes` from the budget, or `RESPONSE_TOO_LARGE` once it is spent.
    pub fn charge(&self, bytes: usize) -> Result<()> {
        use std::sync::atomic::Ordering;
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) > self.limit {
            return Err(Error::ResponseTooLarge(self.limit));
        }
        Ok(())
    }
}
