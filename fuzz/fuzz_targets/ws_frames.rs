//! Any bytes a WebSocket client sends are a message of either subprotocol or a reason
//! to refuse it, never a panic; a legacy frame that names an `id` keeps it for the
//! `error` answer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync::graphql::ws::{legacy, transport};

fuzz_target!(|data: &[u8]| {
    let _ = transport::parse(data);
    if let Err((Some(id), _)) = legacy::parse(data) {
        assert!(!id.is_empty() || data.windows(2).any(|w| w == b"\"\""));
    }
});
