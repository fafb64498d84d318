//! A record: a JSON object in a named collection, versioned for optimistic concurrency.

use sea_orm::entity::prelude::*;

/// The current state of one record.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "record")]
pub struct Model {
    /// Client-chosen or generated identifier.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The collection the record belongs to (1–64 chars of `A-Z a-z 0-9 _ . -`).
    pub collection: String,
    /// The record's content: always a JSON object, stored with its keys sorted.
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    /// Starts at 1 and grows by one on every change.
    pub version: i32,
    /// When the record was created (UTC, microsecond precision).
    pub created_at: DateTimeUtc,
    /// When the record last changed (UTC, microsecond precision).
    pub updated_at: DateTimeUtc,
    /// The change-log position of the change that produced this version (for records
    /// older than the log's retention: a position at or after it).
    pub change_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
