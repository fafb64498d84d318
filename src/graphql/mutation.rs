//! Mutation resolvers: each is one call to the service's single write path.

use async_graphql::{Context, Json, Object, Result};
use serde_json::Value;
use uuid::Uuid;

use super::types::CreateRecordInput;
use crate::{error::GqlResult, model::Record, service::Service};

/// The root of mutations (`Mutation` in the schema).
pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Creates a record. `ALREADY_EXISTS` if the id is taken.
    async fn create_record(&self, ctx: &Context<'_>, input: CreateRecordInput) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let record = service
            .create(access, input.id, input.collection, input.data.0)
            .await;
        Ok(record.gql()?.into())
    }

    /// Replaces a record's data. With `expectedVersion`, refuses (`VERSION_CONFLICT`)
    /// unless the record is at that version.
    async fn update_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        data: Json<Value>,
        expected_version: Option<i32>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let record = service.update(access, id, data.0, expected_version).await;
        Ok(record.gql()?.into())
    }

    /// Applies a JSON Merge Patch (RFC 7396) to a record's data.
    async fn patch_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        patch: Json<Value>,
        expected_version: Option<i32>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let record = service.patch(access, id, patch.0, expected_version).await;
        Ok(record.gql()?.into())
    }

    /// Deletes a record and returns its last state.
    async fn delete_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<Record> {
        let service = ctx.data::<Service>()?;
        let access = super::access(ctx)?;
        let record = service.delete(access, id, expected_version).await;
        Ok(record.gql()?.into())
    }
}
