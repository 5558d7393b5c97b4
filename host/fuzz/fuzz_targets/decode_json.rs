//! JSON messages, into a typed schema (nested struct, list, timestamp) and an inferred one.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use weir::decode::Decoder;

fn decoder() -> &'static Mutex<Decoder> {
    static D: OnceLock<Mutex<Decoder>> = OnceLock::new();
    D.get_or_init(|| {
        Mutex::new(weir_fuzz::decoder(
            "json",
            "{ format: json, type_from: { field: type }, infer_rows: 4, schemas: { order: { fields: \
             { id: utf8, amount: float64, n: int32, at: timestamp_ms, tags: 'list<utf8>', \
             customer: 'struct<name: utf8, tier: int64>' } } } }",
            &[],
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut d) = decoder().lock() {
        weir_fuzz::decode_poll(&mut d, data);
    }
});
