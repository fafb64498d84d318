//! The API suite again, with PostgreSQL as the database: the helpers see this binary's
//! name and create a fresh PostgreSQL database per test on the server named by
//! `RECORDSYNC_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

#[path = "api/main.rs"]
mod suite;
