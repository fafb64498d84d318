//! Building the schema.

use async_graphql::Schema;

use super::{mutation::MutationRoot, query::QueryRoot, subscription::SubscriptionRoot};
use crate::{config::Config, store::Store};

/// The recordsync schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema serving `store`, with the query limits of `config`.
pub fn build(store: Store, config: &Config) -> AppSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(store)
        .limit_depth(config.max_query_depth)
        .limit_complexity(config.max_query_complexity)
        .extension(super::metrics::OperationMetrics)
        .finish()
}

/// The schema in SDL, for `recordsync schema`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}
