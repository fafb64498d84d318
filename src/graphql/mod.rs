//! The GraphQL API: schema, resolvers and the transports that carry it.
//!
//! # Layout
//! - [`schema`]: builds the schema with its limits.
//! - [`types`]: the object, input and connection types.
//! - [`query`], [`mutation`], [`subscription`]: the root resolvers; thin, all work is
//!   in the store and the broker.
//! - [`http`]: `POST`/`GET /graphql` as GraphQL over HTTP specifies it, GraphiQL, and
//!   the dispatch to WebSockets and event streams.
//! - [`ws`]: both WebSocket subprotocols, `graphql-transport-ws` and the legacy
//!   `graphql-ws`.
//! - [`sse`]: subscriptions (and any operation) over server-sent events (graphql-sse).
//! - [`metrics`]: counting operations.
//! - [`limits`]: the alias limit.

pub mod http;
pub mod limits;
pub mod metrics;
pub mod mutation;
pub mod query;
pub mod schema;
pub mod sse;
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
