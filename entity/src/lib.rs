//! SeaORM entities of recordsync.
//!
//! # Layout
//! - [`record`]: the current state of every live record.
//! - [`record_change`]: the change log, one row per committed create, update or delete.
//! - [`change_log_state`]: one row remembering how far the change log has been pruned.
//! - [`server_key`]: one row with the key change cursors are encrypted with.
//! - [`idempotency_key`]: the outcome of each write sent with an idempotency key.

pub mod change_log_state;
pub mod idempotency_key;
pub mod record;
pub mod record_change;
pub mod server_key;
