//! The GraphQL API: schema, resolvers and the transports that carry it.
//!
//! # Layout
//! - this file: [`GraphqlState`], [`router`] (`/graphql`), and [`access`], the caller's
//!   access as its transport put it in the request.
//! - [`schema`]: builds the schema with its limits.
//! - [`types`]: the input and connection types (`Record` and `RecordChange` are the
//!   shared model's).
//! - [`query`], [`mutation`], [`subscription`]: the root resolvers, adapters over the
//!   service: parse the arguments, call one operation, shape the answer.
//! - [`http`]: `POST`/`GET /graphql` as GraphQL over HTTP specifies it, GraphiQL, and
//!   the dispatch to WebSockets and event streams.
//! - [`ws`]: both WebSocket subprotocols, `graphql-transport-ws` and the legacy
//!   `graphql-ws`.
//! - [`sse`]: subscriptions (and any operation) over server-sent events (graphql-sse).
//! - [`response`]: responses as JSON, and which ones were refused before running.
//! - [`metrics`]: counting operations.
//! - [`limits`]: document limits async-graphql lacks, and the mutation detector.

pub mod documents;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod mutation;
pub mod query;
pub mod response;
pub mod schema;
pub mod sse;
pub mod subscription;
pub mod types;
pub mod ws;

use async_graphql::ErrorExtensions;
use axum::{Router, extract::FromRef, routing::get};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use schema::AppSchema;

use crate::{
    auth::{Access, Authenticator},
    error::Error,
    http::sse::Streams,
};

/// What the GraphQL endpoint needs; every field is a cheap handle.
#[derive(Clone)]
pub struct GraphqlState {
    /// The schema (holds the service as context data).
    pub schema: AppSchema,
    /// Checks credentials.
    pub auth: Authenticator,
    /// The event streams being served, bounded by `--sse-max-streams`.
    pub streams: Streams,
    /// Open WebSocket connections, bounded in total and per client address.
    pub connections: ws::admission::Connections,
    /// Per-connection WebSocket settings.
    pub ws: ws::WsSettings,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Cancelled when the server shuts down: WebSockets close on it.
    pub shutdown: CancellationToken,
    /// WebSocket connections, awaited at shutdown.
    pub tasks: TaskTracker,
}

impl FromRef<GraphqlState> for Authenticator {
    fn from_ref(state: &GraphqlState) -> Self {
        state.auth.clone()
    }
}

/// The `/graphql` route.
pub fn router(state: GraphqlState) -> Router {
    Router::new()
        .route(
            "/graphql",
            get(http::get).post(http::post).fallback(http::other_method),
        )
        .with_state(state)
}

/// The caller's access, as its transport authenticated it. A request that carries none
/// is refused (`INTERNAL_SERVER_ERROR`, logged): a transport that forgot to put it there
/// fails closed rather than granting everything.
pub fn access<'a>(ctx: &'a async_graphql::Context<'_>) -> async_graphql::Result<&'a Access> {
    ctx.data_opt::<Access>().ok_or_else(|| {
        Error::Internal("a GraphQL request reached a resolver without the caller's access".into())
            .extend()
    })
}
