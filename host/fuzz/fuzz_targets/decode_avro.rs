//! Confluent-framed Avro messages against local schemas: id 1 has every kind of type (decoded by
//! arrow-avro), id 2 those weir's own decoder covers.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use weir::decode::Decoder;

const SCHEMA: &str = r#"{"type": "record", "name": "Order", "namespace": "acme", "fields": [
  {"name": "id", "type": "string"},
  {"name": "amount", "type": ["null", "double"]},
  {"name": "n", "type": "int"},
  {"name": "big", "type": "long"},
  {"name": "ok", "type": "boolean"},
  {"name": "raw", "type": "bytes"},
  {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
  {"name": "tags", "type": {"type": "array", "items": "string"}},
  {"name": "attrs", "type": {"type": "map", "values": "long"}},
  {"name": "either", "type": ["int", "string", "null"]},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
  {"name": "inner", "type": {"type": "record", "name": "Inner", "fields": [
    {"name": "x", "type": "float"}, {"name": "s", "type": ["null", "string"]}]}}
]}"#;

/// What weir's own decoder covers (see `decode/avro/direct.rs`).
const COVERED: &str = r#"{"type": "record", "name": "Covered", "namespace": "acme", "fields": [
  {"name": "id", "type": "string"},
  {"name": "amount", "type": ["null", "double"]},
  {"name": "n", "type": "int"},
  {"name": "ok", "type": "boolean"},
  {"name": "raw", "type": "bytes"},
  {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B", "C"]}},
  {"name": "tags", "type": {"type": "array", "items": ["string", "null"]}},
  {"name": "attrs", "type": {"type": "map", "values": "long"}},
  {"name": "at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
    {"name": "x", "type": "float"}, {"name": "s", "type": ["null", "string"]}, {"name": "k", "type": "Kind"}]}}}
]}"#;

fn decoder() -> &'static Mutex<Decoder> {
    static D: OnceLock<Mutex<Decoder>> = OnceLock::new();
    D.get_or_init(|| {
        Mutex::new(weir_fuzz::decoder(
            "avro",
            "{ format: avro, avro: { ids: { 1: order.avsc, 2: covered.avsc } } }",
            &[("order.avsc", SCHEMA), ("covered.avsc", COVERED)],
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut d) = decoder().lock() {
        weir_fuzz::decode_poll(&mut d, data);
    }
});
