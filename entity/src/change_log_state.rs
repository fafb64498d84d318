//! Bookkeeping of the change log that must survive its rows being pruned.

use sea_orm::entity::prelude::*;

/// The single row (id 1) describing the change log as a whole.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_log_state")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// Every change with a sequence number at or below this has been pruned; a cursor
    /// before it can no longer be resumed.
    pub pruned_through: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
