//! The API test suite: every test starts the real server on 127.0.0.1:0 with a fresh
//! database and talks to it over HTTP and WebSockets as a client would.
//!
//! Set `TEST_LOG=1` to see the server's logs.

mod helpers;

mod auth;
mod graphql_over_http;
mod graphql_ws_client;
mod hardening;
mod http;
mod legacy_ws;
mod limits;
mod mutations;
mod protocol;
mod queries;
mod rest;
mod resume;
mod service_layer;
mod sse;
mod subscriptions;
