//! Query resolvers: each parses its arguments and calls one service operation.

use std::sync::Arc;

use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use super::types::{ChangeConnection, RecordConnection, RecordFilter, RecordOrder};
use crate::{
    error::GqlResult,
    model::{Record, ResponseBudget},
    service::{ChangesQuery, Service},
    store::records::PageRequest,
};

/// The root of queries (`Query` in the schema, the name tools assume).
pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// One record by id, or null.
    async fn record(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Record>> {
        let service = ctx.data::<Service>()?;
        let record = service.record(super::access(ctx)?, id).await.gql()?;
        if let (Some(budget), Some(r)) = (ctx.data_opt::<Arc<ResponseBudget>>(), &record) {
            budget.charge(r.data.len()).gql()?;
        }
        Ok(record)
    }

    /// A page of records (Relay connection; default 50 per page, at most 500).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::limits::page_complexity(first, last, child_complexity)")]
    async fn records(
        &self,
        ctx: &Context<'_>,
        collection: Option<String>,
        filter: Option<RecordFilter>,
        order_by: Option<RecordOrder>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RecordConnection> {
        let service = ctx.data::<Service>()?;
        let query = PageRequest {
            collection,
            filter: filter.unwrap_or_default().into(),
            order: order_by.as_ref().map(|o| o.field.into()),
            descending: order_by.is_some_and(|o| o.direction == super::types::OrderDirection::Desc),
            first,
            after,
            last,
            before,
            budget: ctx.data_opt::<Arc<ResponseBudget>>().cloned(),
            ..Default::default()
        };
        let page = service.records(super::access(ctx)?, query).await.gql()?;
        Ok(RecordConnection(page))
    }

    /// The change log, oldest first, for clients that poll: pass the previous page's
    /// `changeCursor` as `after`.
    #[graphql(complexity = "super::limits::page_complexity(first, None, child_complexity)")]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        collection: Option<String>,
        first: Option<i32>,
    ) -> Result<ChangeConnection> {
        let service = ctx.data::<Service>()?;
        let query = ChangesQuery {
            collection,
            after,
            budget: ctx.data_opt::<Arc<ResponseBudget>>().cloned(),
            ..Default::default()
        };
        let batch = service
            .changes(super::access(ctx)?, query, first)
            .await
            .gql()?;
        Ok(ChangeConnection(batch, service.cursors().clone()))
    }
}
