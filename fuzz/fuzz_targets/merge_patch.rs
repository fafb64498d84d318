//! JSON Merge Patch on arbitrary documents: never panics, applying the same patch twice
//! changes nothing more (RFC 7396 patches are idempotent), and the canonical form keeps
//! the value.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync::store::patch::{canonical, merge_patch};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Array(pair)) = serde_json::from_slice::<Value>(data) else { return };
    let [target, patch] = <[Value; 2]>::try_from(pair).unwrap_or([Value::Null, Value::Null]);
    let mut once = target.clone();
    merge_patch(&mut once, &patch);
    let mut twice = once.clone();
    merge_patch(&mut twice, &patch);
    assert_eq!(once, twice);
    assert_eq!(canonical(once.clone()), once);
});
