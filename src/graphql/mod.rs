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
