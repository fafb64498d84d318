//! The change log: every committed write to a record, in commit order.

use sea_orm::entity::prelude::*;

/// One committed change of one record.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "record_change")]
pub struct Model {
    /// Position in the log; strictly increasing in commit order.
    #[sea_orm(primary_key)]
    pub seq: i64,
    /// The record that changed.
    pub record_id: Uuid,
    /// The record's collection.
    pub collection: String,
    /// `CREATED`, `UPDATED` or `DELETED`.
    pub kind: String,
    /// The record's version after the change (for a delete: its last version).
    pub version: i32,
    /// The record's data after the change (for a delete: its last data).
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    /// The record's creation time.
    pub record_created_at: DateTimeUtc,
    /// The record's `updated_at` after the change.
    pub record_updated_at: DateTimeUtc,
    /// When the change was committed.
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
