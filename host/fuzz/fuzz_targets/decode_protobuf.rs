//! Confluent-framed Protobuf messages against a local .proto with nested, repeated, map, enum,
//! oneof and well-known types.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use weir::decode::Decoder;

const PROTO: &str = r#"syntax = "proto3";
package acme;
import "google/protobuf/timestamp.proto";
import "google/protobuf/wrappers.proto";
message Order {
  string id = 1;
  double amount = 2;
  int32 n = 3;
  sint64 big = 4;
  bool ok = 5;
  bytes raw = 6;
  enum Kind { A = 0; B = 1; }
  Kind kind = 7;
  repeated string tags = 8;
  repeated int64 packed = 9;
  map<string, int64> attrs = 10;
  oneof either { int32 i = 11; string s = 12; }
  google.protobuf.Timestamp at = 13;
  google.protobuf.Int64Value maybe = 14;
  message Inner { float x = 1; repeated Inner kids = 2; }
  Inner inner = 15;
  fixed32 f32 = 16;
  sfixed64 f64 = 17;
}
"#;

fn decoder() -> &'static Mutex<Decoder> {
    static D: OnceLock<Mutex<Decoder>> = OnceLock::new();
    D.get_or_init(|| {
        Mutex::new(weir_fuzz::decoder(
            "protobuf",
            "{ format: protobuf, protobuf: { ids: { 3: order.proto } } }",
            &[("order.proto", PROTO)],
        ))
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(mut d) = decoder().lock() {
        weir_fuzz::decode_poll(&mut d, data);
    }
});
