//! The shared model: what a change is, and the one wire shape of records and changes.
//!
//! Every transport shows a record and a change the same way: GraphQL's `Record` and
//! `RecordChange` are these structs, and REST serializes the very same structs to JSON,
//! so a field added here appears everywhere with the same name and format.
//!
//! This module is a leaf: it depends on the entities, the cursor encoding and the error
//! type only, so the store, the broker, the service and the transports can all use it.

use std::{fmt, str::FromStr};

use async_graphql::{Enum, Json, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{record, record_change};
use serde::{Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    cursor::ChangeCursors,
    error::{Error, Result},
};

/// A committed change, as the change log holds it.
pub type Change = record_change::Model;

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
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The record's id.
    pub id: Uuid,
    /// The collection it belongs to.
    pub collection: String,
    /// The record's content (a JSON object).
    pub data: Json<Value>,
    /// Starts at 1, +1 on every change. Pass it as `expectedVersion` to update safely.
    pub version: i32,
    /// When it was created.
    #[serde(serialize_with = "rfc3339")]
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    #[serde(serialize_with = "rfc3339")]
    pub updated_at: DateTime<Utc>,
}

impl From<record::Model> for Record {
    fn from(m: record::Model) -> Self {
        Self {
            id: m.id,
            collection: m.collection,
            data: Json(m.data),
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
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
        Ok(Self {
            cursor: cursors.encode(c.seq),
            kind: c.kind.parse()?,
            record: Record {
                id: c.record_id,
                collection: c.collection.clone(),
                data: Json(c.data.clone()),
                version: c.version,
                created_at: c.record_created_at,
                updated_at: c.record_updated_at,
            },
            changed_at: c.changed_at,
        })
    }
}
