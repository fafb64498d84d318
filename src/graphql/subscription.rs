//! Subscription resolvers.

use async_graphql::{Context, Result, Subscription};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::types::{ChangeKind, RecordChange};
use crate::error::GqlResult;
use crate::{
    broker::feed,
    store::{Store, changes::ChangeFilter, cursor, validate_collection},
};

/// The root of subscriptions.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every committed change matching the arguments, in commit order, each once.
    ///
    /// With `after` (a `cursor` or `changeCursor`), first replays every matching change
    /// since that position, then continues live with no gap and no duplicate.
    /// `CURSOR_EXPIRED` if that position has been pruned: reload and subscribe anew.
    async fn record_changed(
        &self,
        ctx: &Context<'_>,
        collection: Option<String>,
        id: Option<Uuid>,
        kinds: Option<Vec<ChangeKind>>,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<RecordChange>> + use<>> {
        let store = ctx.data::<Store>()?.clone();
        let access = super::access(ctx);
        access.check_read().gql()?;
        if let Some(c) = &collection {
            validate_collection(c).gql()?;
            access.check_collection(c).gql()?;
        }
        // Without `after`, start at the log's head as the database sees it now, so that
        // nothing committed before the subscription arrives, whichever instance wrote it.
        let after = match after
            .as_deref()
            .map(cursor::decode_change)
            .transpose()
            .gql()?
        {
            Some(after) => {
                store.check_resume(after).await.gql()?;
                after
            }
            None => store.head().await.gql()?,
        };
        let filter = ChangeFilter {
            collection,
            allowed: access.collection_list(),
            id,
            kinds: kinds.map(|ks| ks.into_iter().map(Into::into).collect()),
        };
        Ok(feed::subscribe(store, filter, after).map(|item| item.map(RecordChange).gql()))
    }
}
