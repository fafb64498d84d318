//! The outcome of each write sent with an idempotency key.

use sea_orm::entity::prelude::*;

/// One key of one caller.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_key")]
pub struct Model {
    /// Whose key: the token's `sub`, or one shared scope in local mode.
    #[sea_orm(primary_key, auto_increment = false)]
    pub scope: String,
    /// The key the client sent.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 (hex) of the request the key was first used for.
    pub fingerprint: String,
    /// The outcome as JSON: the records written, or the refusal.
    #[sea_orm(column_type = "Text")]
    pub outcome: String,
    /// When the write was committed (keys are pruned after `--idempotency-retention`).
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
