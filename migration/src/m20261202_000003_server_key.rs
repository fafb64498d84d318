//! The key that makes change cursors opaque: one random key per database, so every
//! instance on it, before and after any restart, reads the cursors the others issued.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServerKey {
    Table,
    Id,
    CursorKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServerKey::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ServerKey::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ServerKey::CursorKey).binary().not_null())
                    .to_owned(),
            )
            .await?;
        let mut key = [0u8; 16];
        getrandom::fill(&mut key)
            .map_err(|e| DbErr::Migration(format!("no randomness for the cursor key: {e}")))?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ServerKey::Table)
                    .columns([ServerKey::Id, ServerKey::CursorKey])
                    .values_panic([1.into(), key.to_vec().into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerKey::Table).to_owned())
            .await
    }
}
