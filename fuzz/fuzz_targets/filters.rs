//! Any `dataContains` document and collection name a client sends becomes SQL for both
//! backends or `BAD_USER_INPUT`, never a panic, and every key and value it names travels
//! as a bind parameter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use recordsync::store::records::{PageRequest, RecordFilter, filter_condition};
use sea_orm::{DbBackend, EntityTrait, QueryFilter, QueryTrait};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(Value::Array(parts)) = serde_json::from_slice::<Value>(data) else { return };
    let collection = parts.first().and_then(Value::as_str).map(str::to_owned);
    let contains = parts.get(1).cloned();
    let req = PageRequest {
        collection,
        filter: RecordFilter { data_contains: contains, ..Default::default() },
        ..Default::default()
    };
    for backend in [DbBackend::Sqlite, DbBackend::Postgres] {
        if let Ok(cond) = filter_condition(&req, backend, 500) {
            let stmt = entity::record::Entity::find().filter(cond).build(backend);
            if let Some(Value::Object(members)) = &req.filter.data_contains {
                let params = stmt.values.map(|v| v.0.len()).unwrap_or(0);
                // SQLite binds each key (and its value unless it is null or a boolean);
                // PostgreSQL binds the document once, then each key with its value.
                assert!(params >= members.len(), "{} keys, {params} parameters", members.len());
            }
        }
    }
});
