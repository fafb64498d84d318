//! GraphQL object, input and connection types.

use async_graphql::{Enum, InputObject, Json, Object, OneofObject, Result, SimpleObject};
use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    cursor::{self, ChangeCursors},
    error::GqlResult,
    model::{Change, Record, RecordChange},
    store::{self, changes::ChangeBatch, records::Page},
};

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
                node: r.clone(),
            })
            .collect()
    }

    /// The records alone.
    async fn nodes(&self) -> Vec<Record> {
        self.0.edges.iter().map(|(_, r)| r.clone()).collect()
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
#[derive(SimpleObject)]
pub struct ChangeEdge {
    /// The change's position.
    pub cursor: String,
    /// The change.
    pub node: RecordChange,
}

/// A page of the change log.
pub struct ChangeConnection(pub ChangeBatch, pub ChangeCursors);

impl ChangeConnection {
    fn changes(&self) -> Result<Vec<RecordChange>> {
        self.0
            .changes
            .iter()
            .map(|c: &Change| RecordChange::new(c, &self.1).gql())
            .collect()
    }
}

#[Object]
impl ChangeConnection {
    /// The changes with their positions, oldest first.
    async fn edges(&self) -> Result<Vec<ChangeEdge>> {
        Ok(self
            .changes()?
            .into_iter()
            .map(|node| ChangeEdge {
                cursor: node.cursor.clone(),
                node,
            })
            .collect())
    }

    /// The changes alone.
    async fn nodes(&self) -> Result<Vec<RecordChange>> {
        self.changes()
    }

    /// Where this page sits; `hasNextPage` says the log holds more right now.
    async fn page_info(&self) -> PageInfo {
        PageInfo {
            has_next_page: self.0.has_more,
            has_previous_page: false,
            start_cursor: self.0.changes.first().map(|c| self.1.encode(c.seq)),
            end_cursor: self.0.changes.last().map(|c| self.1.encode(c.seq)),
        }
    }

    /// Pass as `after` in the next poll. It is past every change this page considered,
    /// including those the `collection` filter skipped, so it may be beyond `endCursor`.
    async fn change_cursor(&self) -> String {
        self.1.encode(self.0.through)
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

/// The replacement of a record's data, in `commitWrites`.
#[derive(InputObject)]
pub struct UpdateWrite {
    /// The record.
    pub id: Uuid,
    /// Its new data: a JSON object.
    pub data: Json<Value>,
    /// Refuse (`VERSION_CONFLICT`) unless the record is at this version.
    pub expected_version: Option<i32>,
}

/// A JSON Merge Patch of a record's data, in `commitWrites`.
#[derive(InputObject)]
pub struct PatchWrite {
    /// The record.
    pub id: Uuid,
    /// The merge patch (RFC 7396).
    pub patch: Json<Value>,
    /// Refuse (`VERSION_CONFLICT`) unless the record is at this version.
    pub expected_version: Option<i32>,
}

/// The deletion of a record, in `commitWrites`.
#[derive(InputObject)]
pub struct DeleteWrite {
    /// The record.
    pub id: Uuid,
    /// Refuse (`VERSION_CONFLICT`) unless the record is at this version.
    pub expected_version: Option<i32>,
}

/// One write of an atomic batch: exactly one of its fields.
#[derive(OneofObject)]
pub enum WriteInput {
    /// Create a record.
    Create(CreateRecordInput),
    /// Replace a record's data.
    Update(UpdateWrite),
    /// Merge-patch a record's data.
    Patch(PatchWrite),
    /// Delete a record.
    Delete(DeleteWrite),
}

impl From<WriteInput> for store::WriteOp {
    fn from(w: WriteInput) -> Self {
        use store::Write;
        match w {
            WriteInput::Create(c) => Self {
                id: c.id,
                write: Write::Create {
                    collection: c.collection,
                    data: c.data.0,
                },
            },
            WriteInput::Update(u) => Self {
                id: Some(u.id),
                write: Write::Replace {
                    data: u.data.0,
                    expected_version: u.expected_version,
                },
            },
            WriteInput::Patch(p) => Self {
                id: Some(p.id),
                write: Write::Patch {
                    patch: p.patch.0,
                    expected_version: p.expected_version,
                },
            },
            WriteInput::Delete(d) => Self {
                id: Some(d.id),
                write: Write::Delete {
                    expected_version: d.expected_version,
                },
            },
        }
    }
}

/// What an atomic batch wrote.
#[derive(SimpleObject)]
pub struct WriteBatch {
    /// The records after each write, in write order (a delete's is the record's last
    /// state).
    pub records: Vec<Record>,
    /// The cursor of the batch's last change: once a subscription has delivered it,
    /// the whole batch has reached it.
    pub change_cursor: String,
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
