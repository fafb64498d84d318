//! The test suite, one binary: every test starts the real server (in process on
//! 127.0.0.1:0, or the `recordsync` binary itself) with a fresh database and talks to it
//! over HTTP and WebSockets as a client would.
//!
//! `RECORDSYNC_TEST_BACKEND` picks the database: `sqlite` (the default) or `postgres`,
//! on the server at `RECORDSYNC_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`; one database per test, dropped after).
//! The `cluster` tests always need PostgreSQL. Set `TEST_LOG=1` to see the server's logs.

mod helpers;

mod bad_input;
mod binary;
mod cluster;
mod crash_safety;

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
mod reconcile;
mod rest;
mod resume;
mod service_layer;
mod sse;
mod subscriptions;
