//! The record table, the change log and its bookkeeping row.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Record {
    Table,
    Id,
    Collection,
    Data,
    Version,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RecordChange {
    Table,
    Seq,
    RecordId,
    Collection,
    Kind,
    Version,
    Data,
    RecordCreatedAt,
    RecordUpdatedAt,
    ChangedAt,
}

#[derive(DeriveIden)]
enum ChangeLogState {
    Table,
    Id,
    PrunedThrough,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Record::Table)
                    .col(ColumnDef::new(Record::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Record::Collection).string_len(64).not_null())
                    .col(ColumnDef::new(Record::Data).json_binary().not_null())
                    .col(ColumnDef::new(Record::Version).integer().not_null())
                    .col(
                        ColumnDef::new(Record::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Record::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_record_collection_created", Record::CreatedAt),
            ("idx_record_collection_updated", Record::UpdatedAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Record::Table)
                        .col(Record::Collection)
                        .col(col)
                        .col(Record::Id)
                        .to_owned(),
                )
                .await?;
        }

        // Sequence numbers come from an auto-incrementing key (SQLite AUTOINCREMENT,
        // PostgreSQL BIGSERIAL). Commit order equals sequence order because every writer
        // appends while holding the single change-log write lock (see `store::writer`).
        manager
            .create_table(
                Table::create()
                    .table(RecordChange::Table)
                    .col(
                        ColumnDef::new(RecordChange::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(RecordChange::RecordId).uuid().not_null())
                    .col(
                        ColumnDef::new(RecordChange::Collection)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(RecordChange::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(RecordChange::Version).integer().not_null())
                    .col(ColumnDef::new(RecordChange::Data).json_binary().not_null())
                    .col(
                        ColumnDef::new(RecordChange::RecordCreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RecordChange::RecordUpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RecordChange::ChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_change_collection_seq")
                    .table(RecordChange::Table)
                    .col(RecordChange::Collection)
                    .col(RecordChange::Seq)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_record_change_record_seq")
                    .table(RecordChange::Table)
                    .col(RecordChange::RecordId)
                    .col(RecordChange::Seq)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ChangeLogState::Table)
                    .col(
                        ColumnDef::new(ChangeLogState::Id)
                            .integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ChangeLogState::PrunedThrough)
                            .big_integer()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(ChangeLogState::Table)
                    .columns([ChangeLogState::Id, ChangeLogState::PrunedThrough])
                    .values_panic([1.into(), 0i64.into()])
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ChangeLogState::Table.into_iden(),
            RecordChange::Table.into_iden(),
            Record::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
