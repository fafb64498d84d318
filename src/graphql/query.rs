//! Query resolvers.

use async_graphql::{Context, Object, Result};
use uuid::Uuid;

use super::types::{ChangeConnection, Record, RecordConnection, RecordFilter, RecordOrder};
use crate::error::GqlResult;
use crate::store::{
    Store, changes::ChangeFilter, cursor, records::PageRequest, validate_collection,
};

/// The root of queries.
pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// One record by id, or null.
    async fn record(&self, ctx: &Context<'_>, id: Uuid) -> Result<Option<Record>> {
        let access = super::access(ctx);
        access.check_read().gql()?;
        let record = ctx.data::<Store>()?.record(id).await.gql()?;
        // A record the token may not see is indistinguishable from a missing one.
        Ok(record
            .filter(|r| access.allows(&r.collection))
            .map(Into::into))
    }

    /// A page of records (Relay connection; default 50 per page, at most 500).
    #[allow(clippy::too_many_arguments)]
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
        let store = ctx.data::<Store>()?;
        let access = super::access(ctx);
        access.check_read().gql()?;
        if let Some(c) = &collection {
            access.check_collection(c).gql()?;
        }
        let page = store
            .records(PageRequest {
                collection,
                allowed: access.collection_list(),
                filter: filter.unwrap_or_default().into(),
                order: order_by.as_ref().map(|o| o.field.into()),
                descending: order_by
                    .is_some_and(|o| o.direction == super::types::OrderDirection::Desc),
                first,
                after,
                last,
                before,
            })
            .await
            .gql()?;
        Ok(RecordConnection(page))
    }

    /// The change log, oldest first, for clients that poll: pass the previous page's
    /// `changeCursor` as `after`.
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        collection: Option<String>,
        first: Option<i32>,
    ) -> Result<ChangeConnection> {
        let store = ctx.data::<Store>()?;
        let access = super::access(ctx);
        access.check_read().gql()?;
        if let Some(c) = &collection {
            validate_collection(c).gql()?;
            access.check_collection(c).gql()?;
        }
        let after = after
            .as_deref()
            .map(cursor::decode_change)
            .transpose()
            .gql()?;
        let first = store.page_size(first).gql()?;
        let filter = ChangeFilter {
            collection,
            allowed: access.collection_list(),
            ..Default::default()
        };
        Ok(ChangeConnection(
            store.changes(after, &filter, first).await.gql()?,
        ))
    }
}
