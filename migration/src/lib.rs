//! Schema migrations, applied automatically when the server starts.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_tables;
mod m20261126_000002_postgres_data_index;
mod m20261202_000003_server_key;
mod m20261202_000004_receipts_and_keys;

/// Every migration of recordsync, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_tables::Migration),
            Box::new(m20261126_000002_postgres_data_index::Migration),
            Box::new(m20261202_000003_server_key::Migration),
            Box::new(m20261202_000004_receipts_and_keys::Migration),
        ]
    }
}
