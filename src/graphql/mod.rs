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

pub mod http;
pub mod mutation;
pub mod query;
pub mod schema;
pub mod sse;
pub mod subscription;
pub mod types;
pub mod ws;

pub use schema::AppSchema;
