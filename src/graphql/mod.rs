//! The GraphQL API: schema, resolvers and the transports that carry it.
//!
//! # Layout
//! - [`schema`]: builds the schema with its limits.
//! - [`types`]: the object, input and connection types.
//! - [`query`], [`mutation`], [`subscription`]: the root resolvers; thin, all work is
//!   in the store and the broker.
//! - [`http`]: `POST`/`GET /graphql`, GraphiQL and the WebSocket upgrade.
//! - [`ws`]: the `graphql-transport-ws` protocol.
//! - [`metrics`]: counting operations.

pub mod http;
pub mod metrics;
pub mod mutation;
pub mod query;
pub mod schema;
pub mod subscription;
pub mod types;
pub mod ws;

pub use schema::AppSchema;

/// The caller's access: what its transport authenticated, or everything when the
/// request carries none (authentication off, or an in-process caller).
pub fn access(ctx: &async_graphql::Context<'_>) -> crate::auth::Access {
    ctx.data_opt::<crate::auth::Access>()
        .cloned()
        .unwrap_or_else(crate::auth::Access::full)
}
