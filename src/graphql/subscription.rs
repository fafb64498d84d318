//! Subscription resolvers.

use std::{borrow::Cow, sync::Arc};

use async_graphql::{
    Context, ContextSelectionSet, OutputType, Positioned, Result, ServerResult, Subscription,
    Value, parser::types::Field, registry::Registry,
};
use futures_util::{Stream, StreamExt};
use uuid::Uuid;

use super::ws::shared::SharedOp;
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
    ) -> Result<impl Stream<Item = Result<Delivery>> + use<>> {
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
        let shared = ctx.data_opt::<Arc<SharedOp>>().cloned();
        Ok(changes.map(move |item| {
            let change = item.inspect_err(|_| {
                if let Some(shared) = &shared {
                    shared.clear();
                }
            });
            let change = change.gql()?;
            if shared.as_ref().is_some_and(|s| s.lookup(change.seq)) {
                return Ok(Delivery::Shared(change.seq));
            }
            RecordChange::new(&change, &cursors)
                .map(Delivery::Resolve)
                .gql()
        }))
    }
}

/// One change a subscription delivers: a `RecordChange` to resolve, or, when another
/// subscription of the same shape has already resolved it (see `ws::shared`), a
/// stand-in holding its position, which the WebSocket operation replaces with that
/// result. In the schema it is `RecordChange`.
pub enum Delivery {
    /// Resolve it.
    Resolve(RecordChange),
    /// Its result is shared: resolves to its position.
    Shared(i64),
}

impl OutputType for Delivery {
    fn type_name() -> Cow<'static, str> {
        RecordChange::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        RecordChange::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self {
            Self::Resolve(change) => change.resolve(ctx, field).await,
            Self::Shared(seq) => Ok(Value::from(*seq)),
        }
    }
}
