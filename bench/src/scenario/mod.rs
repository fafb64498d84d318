//! The scenarios, one module each; each returns a [`crate::report::Report`].

pub mod fanout;
pub mod idle;
pub mod mutate;
pub mod query;
pub mod replay;
