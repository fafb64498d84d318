//! Subscription resolvers.

use async_graphql::{Context, Result, Subscription};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use crate::{
    error::GqlResult,
    model::{ChangeKind, RecordChange},
    service::{ChangesQuery, Service},
};

/// The root of subscriptions (`Subscription` in the schema).
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
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
        let service = ctx.data::<Service>()?;
        let query = ChangesQuery {
            collection,
            id,
            kinds,
            after,
            budget: None,
        };
        let changes = service.subscribe(super::access(ctx)?, query).await.gql()?;
        let cursors = service.cursors().clone();
        Ok(changes.map(move |item| item.and_then(|c| RecordChange::new(&c, &cursors)).gql()))
    }
}
