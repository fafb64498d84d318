//! Write receipts and idempotency keys.
//!
//! - `record.change_seq`: the change-log position of the change that produced the
//!   record's current version (its `changeCursor`). Existing records take the position
//!   of their last change in the log, or, where the log was pruned, the pruned point:
//!   a position at or after that change, so subscribing after it misses nothing later.
//! - `idempotency_key`: the outcome of each write sent with a key, stored in the same
//!   transaction as the write, per caller (`scope`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Record {
    Table,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum IdempotencyKey {
    Table,
    Scope,
    Key,
    Fingerprint,
    Outcome,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Record::Table)
                    .add_column(
                        ColumnDef::new(Record::ChangeSeq)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE record SET change_seq = COALESCE(\
                   (SELECT MAX(c.seq) FROM record_change c WHERE c.record_id = record.id), \
                   (SELECT s.pruned_through FROM change_log_state s WHERE s.id = 1), 0)",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKey::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(IdempotencyKey::Scope).string().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKey::Key)
                            .string_len(255)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(IdempotencyKey::Fingerprint)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(IdempotencyKey::Outcome).text().not_null())
                    .col(
                        ColumnDef::new(IdempotencyKey::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKey::Scope)
                            .col(IdempotencyKey::Key),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_idempotency_key_created")
                    .table(IdempotencyKey::Table)
                    .col(IdempotencyKey::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKey::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Record::Table)
                    .drop_column(Record::ChangeSeq)
                    .to_owned(),
            )
            .await
    }
}
