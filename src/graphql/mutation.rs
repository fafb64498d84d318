//! Mutation resolvers: each is one call to the service's single write path.

use async_graphql::{Context, Json, Object, Result};
use serde_json::Value;
use uuid::Uuid;

use super::types::{CreateRecordInput, WriteBatch, WriteInput};
use crate::{error::GqlResult, model::Record, service::Service, store::Written};

/// The root of mutations (`Mutation` in the schema).
///
/// Every mutation takes an optional `idempotencyKey` (1–255 printable ASCII
/// characters): a retry with the same key and the same arguments answers the first
/// outcome again, and writes nothing.
pub struct MutationRoot;

/// The single record a one-write request wrote.
fn one(written: Written) -> Result<Record> {
    written
        .records
        .into_iter()
        .next()
        .ok_or_else(|| "a write without a result".into())
}

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a record. `ALREADY_EXISTS` if the id is taken.
    async fn create_record(
        &self,
        ctx: &Context<'_>,
        input: CreateRecordInput,
        idempotency_key: Option<String>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let written = service
            .create(
                access,
                input.id,
                input.collection,
                input.data.0,
                idempotency_key.as_deref(),
            )
            .await;
        one(written.gql()?)
    }

    /// Replaces a record's data. With `expectedVersion`, refuses (`VERSION_CONFLICT`,
    /// with the record as it is now in `extensions.current`) unless the record is at
    /// that version.
    async fn update_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        data: Json<Value>,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let written = service
            .update(
                access,
                id,
                data.0,
                expected_version,
                idempotency_key.as_deref(),
            )
            .await;
        one(written.gql()?)
    }

    /// Applies a JSON Merge Patch (RFC 7396) to a record's data.
    async fn patch_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        patch: Json<Value>,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let written = service
            .patch(
                access,
                id,
                patch.0,
                expected_version,
                idempotency_key.as_deref(),
            )
            .await;
        one(written.gql()?)
    }

    /// Deletes a record and returns its last state.
    async fn delete_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        expected_version: Option<i32>,
        idempotency_key: Option<String>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let written = service
            .delete(access, id, expected_version, idempotency_key.as_deref())
            .await;
        one(written.gql()?)
    }

    /// Applies up to `--max-batch-writes` writes in one transaction, in order, all or
    /// nothing: a later write sees the earlier ones. If one is refused, nothing is
    /// written and the error has its `code` and `extensions.index`. Subscribers receive
    /// the batch's changes one after another, with nothing else between them.
    async fn commit_writes(
        &self,
        ctx: &Context<'_>,
        writes: Vec<WriteInput>,
        idempotency_key: Option<String>,
    ) -> Result<WriteBatch> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let ops = writes.into_iter().map(Into::into).collect();
        let written = service
            .commit_writes(access, ops, idempotency_key.as_deref())
            .await
            .gql()?;
        let change_cursor = written
            .records
            .last()
            .map(|r| r.change_cursor.clone())
            .unwrap_or_default();
        Ok(WriteBatch {
            records: written.records,
            change_cursor,
        })
    }
}
