//! Any string a client sends as a cursor decodes to a position or to
//! `BAD_USER_INPUT`, never a panic; a decoded position encodes back to a cursor that
//! decodes to the same position.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync::cursor::{self, OrderField};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(seq) = cursor::decode_change(text) {
        assert_eq!(cursor::decode_change(&cursor::encode_change(seq)).ok(), Some(seq));
    }
    for field in [OrderField::CreatedAt, OrderField::UpdatedAt, OrderField::Id] {
        if let Ok(key) = cursor::decode_record(field, text) {
            let again = cursor::decode_record(field, &cursor::encode_record(field, key));
            assert_eq!(again.ok(), Some(key));
        }
    }
});
