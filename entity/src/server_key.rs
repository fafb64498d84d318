//! Secrets the server keeps in its database, so that every instance shares them.

use sea_orm::entity::prelude::*;

/// The single row (id 1), written when the database is created.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "server_key")]
pub struct Model {
    /// Always 1.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// The AES-128 key change cursors are encrypted with (16 random bytes).
    pub cursor_key: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
