//! Building the schema.

use async_graphql::{
    Schema,
    extensions::apollo_persisted_queries::{ApolloPersistedQueries, LruCacheStorage},
};

use super::{mutation::MutationRoot, query::QueryRoot, subscription::SubscriptionRoot};
use crate::{config::Config, service::Service};

/// The recordsync schema.
pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The schema serving `service`, with the query limits of `config`.
pub fn build(service: Service, config: &Config) -> AppSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(service)
        .limit_depth(config.max_query_depth)
        .extension(super::limits::DocumentLimits {
            aliases: config.max_aliases,
            fields: config.max_query_fields,
            complexity: config.max_query_complexity,
            response_bytes: config.max_response_bytes,
            documents: std::sync::Arc::new(super::documents::Documents::new(
                config.document_cache_size,
            )),
        })
        .extension(super::metrics::OperationMetrics);
    if config.apq_cache_size > 0 {
        builder = builder.extension(ApolloPersistedQueries::new(LruCacheStorage::new(
            config.apq_cache_size,
        )));
    }
    if config.no_introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The schema in SDL, for `recordsync schema`.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}
