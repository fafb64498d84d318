//! Mutation resolvers: each is one call to the store's single write path.

use async_graphql::{Context, Json, Object, Result};
use serde_json::Value;
use uuid::Uuid;

use super::types::{CreateRecordInput, Record};
use crate::error::GqlResult;
use crate::store::{Store, Write};

/// The root of mutations.
pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a record. `ALREADY_EXISTS` if the id is taken.
    async fn create_record(&self, ctx: &Context<'_>, input: CreateRecordInput) -> Result<Record> {
        let store = ctx.data::<Store>()?;
        Ok(store
            .create_as(
                &super::access(ctx),
                input.id,
                input.collection,
                input.data.0,
            )
            .await
            .gql()?
            .into())
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
        let store = ctx.data::<Store>()?;
        Ok(store
            .apply_as(
                &super::access(ctx),
                id,
                Write::Replace {
                    data: data.0,
                    expected_version,
                },
            )
            .await
            .gql()?
            .into())
    }

    /// Applies a JSON Merge Patch (RFC 7396) to a record's data.
    async fn patch_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        patch: Json<Value>,
        expected_version: Option<i32>,
    ) -> Result<Record> {
        let store = ctx.data::<Store>()?;
        Ok(store
            .apply_as(
                &super::access(ctx),
                id,
                Write::Patch {
                    patch: patch.0,
                    expected_version,
                },
            )
            .await
            .gql()?
            .into())
    }

    /// Deletes a record and returns its last state.
    async fn delete_record(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        expected_version: Option<i32>,
    ) -> Result<Record> {
        let store = ctx.data::<Store>()?;
        Ok(store
            .apply_as(&super::access(ctx), id, Write::Delete { expected_version })
            .await
            .gql()?
            .into())
    }
}
