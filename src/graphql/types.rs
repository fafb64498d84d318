//! GraphQL object, input and connection types.

use std::sync::Arc;

use async_graphql::{Enum, InputObject, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::record;
use serde_json::Value;
use uuid::Uuid;

use crate::store::{self, Change, changes::ChangeBatch, cursor, records::Page};

/// A record: a JSON object in a collection.
#[derive(SimpleObject, Clone)]
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
    pub created_at: DateTime<Utc>,
    /// When it last changed.
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

/// What happened to a record.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ChangeKind {
    /// The record was created.
    Created,
    /// The record's data was replaced or patched.
    Updated,
    /// The record was deleted; the change carries its last state.
    Deleted,
}

impl From<ChangeKind> for store::ChangeKind {
    fn from(k: ChangeKind) -> Self {
        match k {
            ChangeKind::Created => Self::Created,
            ChangeKind::Updated => Self::Updated,
            ChangeKind::Deleted => Self::Deleted,
        }
    }
}

/// One committed change of a record.
pub struct RecordChange(pub Arc<Change>);

#[Object]
impl RecordChange {
    /// Position in the change log; pass it as `after` to resume right after this change.
    async fn cursor(&self) -> String {
        cursor::encode_change(self.0.seq)
    }

    /// What happened.
    async fn kind(&self) -> ChangeKind {
        match self.0.kind.as_str() {
            "CREATED" => ChangeKind::Created,
            "DELETED" => ChangeKind::Deleted,
            _ => ChangeKind::Updated,
        }
    }

    /// The record after the change (for a delete: its last state).
    async fn record(&self) -> Record {
        let c = &self.0;
        Record {
            id: c.record_id,
            collection: c.collection.clone(),
            data: Json(c.data.clone()),
            version: c.version,
            created_at: c.record_created_at,
            updated_at: c.record_updated_at,
        }
    }

    /// When the change was committed.
    async fn changed_at(&self) -> DateTime<Utc> {
        self.0.changed_at
    }
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// More items follow `endCursor`.
    pub has_next_page: bool,
    /// More items precede `startCursor`.
    pub has_previous_page: bool,
    /// The first edge's cursor.
    pub start_cursor: Option<String>,
    /// The last edge's cursor.
    pub end_cursor: Option<String>,
}

/// A record and its position in the page.
#[derive(SimpleObject)]
pub struct RecordEdge {
    /// Pass as `after`/`before` to page from here.
    pub cursor: String,
    /// The record.
    pub node: Record,
}

/// A page of records (Relay connection).
pub struct RecordConnection(pub Page);

#[Object]
impl RecordConnection {
    /// The records with their cursors.
    async fn edges(&self) -> Vec<RecordEdge> {
        self.0
            .edges
            .iter()
            .map(|(cursor, r)| RecordEdge {
                cursor: cursor.clone(),
                node: r.clone().into(),
            })
            .collect()
    }

    /// The records alone.
    async fn nodes(&self) -> Vec<Record> {
        self.0.edges.iter().map(|(_, r)| r.clone().into()).collect()
    }

    /// Where this page sits.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_next_page,
            has_previous_page: self.0.has_previous_page,
            start_cursor: self.0.edges.first().map(|(c, _)| c.clone()),
            end_cursor: self.0.edges.last().map(|(c, _)| c.clone()),
        }
    }

    /// How many records match the filter, over all pages.
    async fn total_count(&self) -> i64 {
        i64::try_from(self.0.total_count).unwrap_or(i64::MAX)
    }

    /// The change-log position this page was read at: subscribe to `recordChanged`
    /// with `after: changeCursor` to receive exactly the changes made since.
    async fn change_cursor(&self) -> &str {
        &self.0.change_cursor
    }
}

/// A change and its position in the log.
pub struct ChangeEdge(Arc<Change>);

#[Object]
impl ChangeEdge {
    /// The change's position.
    async fn cursor(&self) -> String {
        cursor::encode_change(self.0.seq)
    }

    /// The change.
    async fn node(&self) -> RecordChange {
        RecordChange(Arc::clone(&self.0))
    }
}

/// A page of the change log.
pub struct ChangeConnection(pub ChangeBatch);

#[Object]
impl ChangeConnection {
    /// The changes with their positions, oldest first.
    async fn edges(&self) -> Vec<ChangeEdge> {
        self.0
            .changes
            .iter()
            .map(|c| ChangeEdge(Arc::new(c.clone())))
            .collect()
    }

    /// The changes alone.
    async fn nodes(&self) -> Vec<RecordChange> {
        self.0
            .changes
            .iter()
            .map(|c| RecordChange(Arc::new(c.clone())))
            .collect()
    }

    /// Where this page sits; `hasNextPage` says the log holds more right now.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_more,
            has_previous_page: false,
            start_cursor: self.0.changes.first().map(|c| cursor::encode_change(c.seq)),
            end_cursor: self.0.changes.last().map(|c| cursor::encode_change(c.seq)),
        }
    }

    /// Pass as `after` in the next poll. It is past every change this page considered,
    /// including those the `collection` filter skipped, so it may be beyond `endCursor`.
    async fn change_cursor(&self) -> String {
        cursor::encode_change(self.0.through)
    }
}

/// Input of `createRecord`.
#[derive(InputObject)]
pub struct CreateRecordInput {
    /// The id to use; a new UUID when omitted.
    pub id: Option<Uuid>,
    /// The collection (1–64 chars of `A-Z a-z 0-9 _ . -`).
    pub collection: String,
    /// The record's content: a JSON object.
    pub data: Json<Value>,
}

/// Conditions on `records`; all given conditions must hold.
#[derive(InputObject, Default)]
pub struct RecordFilter {
    /// Only records with these ids.
    pub ids: Option<Vec<Uuid>>,
    /// A JSON object: every top-level key must be present in `data` with an equal value.
    pub data_contains: Option<Json<Value>>,
    /// Created strictly after this time.
    pub created_after: Option<DateTime<Utc>>,
    /// Created strictly before this time.
    pub created_before: Option<DateTime<Utc>>,
    /// Updated strictly after this time.
    pub updated_after: Option<DateTime<Utc>>,
    /// Updated strictly before this time.
    pub updated_before: Option<DateTime<Utc>>,
}

impl From<RecordFilter> for store::records::RecordFilter {
    fn from(f: RecordFilter) -> Self {
        Self {
            ids: f.ids,
            data_contains: f.data_contains.map(|j| j.0),
            created_after: f.created_after,
            created_before: f.created_before,
            updated_after: f.updated_after,
            updated_before: f.updated_before,
        }
    }
}

/// The field `records` are ordered by; ties are broken by id.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum RecordOrderField {
    /// Creation time.
    CreatedAt,
    /// Last change time.
    UpdatedAt,
    /// Id.
    Id,
}

impl From<RecordOrderField> for cursor::OrderField {
    fn from(f: RecordOrderField) -> Self {
        match f {
            RecordOrderField::CreatedAt => Self::CreatedAt,
            RecordOrderField::UpdatedAt => Self::UpdatedAt,
            RecordOrderField::Id => Self::Id,
        }
    }
}

/// Ascending or descending.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum OrderDirection {
    /// Smallest first.
    #[default]
    Asc,
    /// Largest first.
    Desc,
}

/// How `records` are ordered (default: `CREATED_AT` `ASC`).
#[derive(InputObject)]
pub struct RecordOrder {
    /// The field.
    pub field: RecordOrderField,
    /// The direction.
    #[graphql(default)]
    pub direction: OrderDirection,
}
