//! recordsync: a GraphQL server that keeps CRUD records in sync between many users in
//! real time.
//!
//! Every mutation commits the record and an entry in the change log in one
//! transaction, then publishes the change to the broker. The `recordChanged`
//! subscription reads the broker's live stream and, whenever it resumes from a cursor
//! or falls behind, the change log itself, so each subscriber receives every matching
//! change in commit order exactly once.
//!
//! # Layout
//! The modules, from the top of the graph down; each imports only modules listed after
//! it.
//! - [`app`]: [`App`], which builds everything and serves the router until a shutdown
//!   future resolves (`main` and the tests start the server the same way), readiness,
//!   background work.
//! - [`graphql`]: the GraphQL schema, its resolvers and its transports: GraphQL over
//!   HTTP, both WebSocket subprotocols, server-sent events.
//! - [`rest`]: the REST API under `/api`.
//! - [`http`]: what both share: the credential extractor, reading requests, event
//!   streams, CORS.
//! - [`service`]: every operation a client can ask for, each taking the caller's
//!   access; subscription feeds; the PostgreSQL follower. The only thing transports
//!   call.
//! - [`store`]: all database work, including the single write path.
//! - [`broker`]: fan-out of committed changes.
//! - [`model`]: what a change is and the one wire shape of records and changes.
//! - [`auth`]: JWT authentication and per-collection access.
//! - [`cursor`]: cursor encoding.
//! - [`telemetry`]: logging setup.
//! - [`config`]: every setting and limit, from flags or the environment.
//! - [`validate`]: the input checks every layer shares.
//! - [`error`]: the one error enum and the code each variant shows a client.
//! - [`metrics`]: Prometheus metrics.
//! - [`web`]: GraphiQL's page and the demo, with every browser asset compiled in.
//!
//! # The way of one request
//! A `createRecord` mutation sent over `POST /graphql`:
//! 1. [`graphql::http::post`] reads the body ([`http::request`]), authenticates the
//!    `Authorization` header into an [`auth::Access`] and runs the request on the schema
//!    with that access in its context.
//! 2. The resolver in [`graphql::mutation`] takes the access ([`graphql::access`]) and
//!    calls [`service::Service::create`], which checks the access and hands the write
//!    to [`store::Store::write`].
//! 3. The store validates the data and queues the write; the writer task
//!    (`store/writer.rs`) commits the record and its change-log entry in one
//!    transaction, publishes the change to the [`broker::Broker`] and answers.
//! 4. Every subscription's feed ([`service::feed`]) takes the change from the broker
//!    and, if it matches, its transport sends it as a [`model::RecordChange`].
//!
//! `POST /api/records` takes the same path from step 2, from [`rest::records`].

pub mod app;
pub mod auth;
pub mod broker;
pub mod config;
pub mod cursor;
pub mod error;
pub mod graphql;
pub mod http;
pub mod metrics;
pub mod model;
pub mod rest;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod validate;
pub mod web;

pub use app::{App, run};
pub use config::{Cli, Command, Config};
