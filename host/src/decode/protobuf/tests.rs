#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    DurationNanosecondType, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampNanosecondType, UInt32Type, UInt64Type,
};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use proptest::prelude::*;
use prost_reflect::prost::Message;
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};

use super::wire::{EGROUP, I64, LEN, SGROUP, VARINT};
use super::*;

const PROTO: &str = r#"
syntax = "proto3";
package t;

import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";

enum Color {
  RED = 0;
  GREEN = 1;
  BLUE = 2;
}

message Inner {
  string name = 1;
  int64 n = 2;
  repeated int32 xs = 3;
}

message All {
  int32 i32 = 1;
  int64 i64 = 2;
  uint32 u32 = 3;
  uint64 u64 = 4;
  sint32 s32 = 5;
  sint64 s64 = 6;
  fixed32 fx32 = 7;
  fixed64 fx64 = 8;
  sfixed32 sfx32 = 9;
  sfixed64 sfx64 = 10;
  float f32 = 11;
  double f64 = 12;
  bool flag = 13;
  string text = 14;
  bytes data = 15;
  Color color = 16;
  Color odd_color = 17;
  Inner inner = 18;
  Inner no_inner = 19;
  repeated int32 packed = 20;
  repeated int64 unpacked = 21 [packed = false];
  repeated double doubles = 22;
  repeated string names = 23;
  repeated Inner inners = 24;
  repeated Color colors = 25;
  map<string, int64> counts = 26;
  map<int32, Inner> by_id = 27;
  oneof choice {
    string label = 28;
    Inner picked = 29;
  }
  optional int32 maybe = 30;
  optional string maybe_text = 31;
  google.protobuf.Timestamp at = 32;
  google.protobuf.Duration took = 33;
  google.protobuf.Int32Value w_i32 = 34;
  google.protobuf.Int64Value w_i64 = 35;
  google.protobuf.UInt32Value w_u32 = 36;
  google.protobuf.UInt64Value w_u64 = 37;
  google.protobuf.FloatValue w_f32 = 38;
  google.protobuf.DoubleValue w_f64 = 39;
  google.protobuf.BoolValue w_bool = 40;
  google.protobuf.StringValue w_str = 41;
  google.protobuf.BytesValue w_bytes = 42;
  google.protobuf.StringValue w_absent = 43;
  repeated google.protobuf.Timestamp times = 44;
  repeated fixed32 fixed_unpacked = 45 [packed = false];
  message Nested {
    message Deeper { bool deep = 1; }
    Deeper deeper = 1;
  }
  Nested nested = 46;
  optional int32 unset_maybe = 47;
}

message Prop {
  int32 a = 1;
  int64 b = 2;
  uint64 c = 3;
  sint32 d = 4;
  double e = 5;
  float f = 6;
  bool g = 7;
  string h = 8;
  bytes i = 9;
  Color j = 10;
  repeated int64 k = 11;
  repeated string l = 12;
  repeated sfixed32 m = 13 [packed = false];
  Inner n = 14;
  repeated Inner o = 15;
  map<string, int32> p = 16;
  map<uint64, Inner> q = 17;
  optional sint64 r = 18;
  oneof s {
    string s1 = 19;
    Inner s2 = 20;
  }
  google.protobuf.Timestamp t = 21;
}
"#;

fn pool() -> DescriptorPool {
    static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| compile_proto("t.proto", &[("t.proto".into(), PROTO.into())]).unwrap())
        .clone()
}

fn desc(name: &str) -> MessageDescriptor {
    pool().get_message_by_name(name).unwrap()
}

fn inner(name: &str, n: i64, xs: &[i32]) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc("t.Inner"));
    m.set_field_by_name("name", Value::String(name.into()));
    m.set_field_by_name("n", Value::I64(n));
    m.set_field_by_name(
        "xs",
        Value::List(xs.iter().map(|&x| Value::I32(x)).collect()),
    );
    m
}

fn wkt(name: &str, fields: &[(&str, Value)]) -> Value {
    let mut m = DynamicMessage::new(pool().get_message_by_name(name).unwrap());
    for (f, v) in fields {
        m.set_field_by_name(f, v.clone());
    }
    Value::Message(m)
}

fn msg(name: &str, fields: Vec<(&str, Value)>) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc(name));
    for (f, v) in fields {
        m.set_field_by_name(f, v);
    }
    m
}

// ---------------------------------------------------------------------------------------------
// An independent view of values: what DynamicMessage holds, mapped by the documented rules, and
// what the Arrow columns hold, read generically by data type.

#[derive(Debug, Clone)]
enum V {
    Null,
    I(i128),
    F(f64),
    B(bool),
    S(String),
    Bin(Vec<u8>),
    List(Vec<V>),
    Map(Vec<(V, V)>),
    Struct(Vec<(String, V)>),
}

impl PartialEq for V {
    fn eq(&self, other: &V) -> bool {
        match (self, other) {
            (V::Null, V::Null) => true,
            (V::I(a), V::I(b)) => a == b,
            (V::F(a), V::F(b)) => a == b || (a.is_nan() && b.is_nan()),
            (V::B(a), V::B(b)) => a == b,
            (V::S(a), V::S(b)) => a == b,
            (V::Bin(a), V::Bin(b)) => a == b,
            (V::List(a), V::List(b)) => a == b,
            (V::Map(a), V::Map(b)) => a == b,
            (V::Struct(a), V::Struct(b)) => a == b,
            _ => false,
        }
    }
}

fn sort_map(mut entries: Vec<(V, V)>) -> V {
    entries.sort_by_key(|(k, _)| format!("{k:?}"));
    V::Map(entries)
}

fn from_message(m: &DynamicMessage) -> V {
    let d = m.descriptor();
    V::Struct(
        d.descriptor_proto()
            .field
            .iter()
            .map(|raw| {
                let fd = d.get_field(raw.number() as u32).unwrap();
                (fd.name().to_string(), from_field(m, &fd))
            })
            .collect(),
    )
}

fn from_field(m: &DynamicMessage, fd: &prost_reflect::FieldDescriptor) -> V {
    let value = m.get_field(fd);
    if fd.is_list() {
        let Value::List(items) = value.as_ref() else {
            panic!("list")
        };
        V::List(items.iter().map(|v| from_value(&fd.kind(), v)).collect())
    } else if fd.is_map() {
        let Kind::Message(entry) = fd.kind() else {
            panic!("map")
        };
        let (kk, vk) = (
            entry.map_entry_key_field().kind(),
            entry.map_entry_value_field().kind(),
        );
        let Value::Map(entries) = value.as_ref() else {
            panic!("map")
        };
        sort_map(
            entries
                .iter()
                .map(|(k, v)| (from_value(&kk, &map_key_value(k)), from_value(&vk, v)))
                .collect(),
        )
    } else if fd.supports_presence() && !m.has_field(fd) {
        V::Null
    } else {
        from_value(&fd.kind(), &value)
    }
}

fn map_key_value(k: &MapKey) -> Value {
    match k {
        MapKey::Bool(b) => Value::Bool(*b),
        MapKey::I32(x) => Value::I32(*x),
        MapKey::I64(x) => Value::I64(*x),
        MapKey::U32(x) => Value::U32(*x),
        MapKey::U64(x) => Value::U64(*x),
        MapKey::String(s) => Value::String(s.clone()),
    }
}

fn from_value(kind: &Kind, v: &Value) -> V {
    match v {
        Value::Bool(b) => V::B(*b),
        Value::I32(x) => V::I(i128::from(*x)),
        Value::I64(x) => V::I(i128::from(*x)),
        Value::U32(x) => V::I(i128::from(*x)),
        Value::U64(x) => V::I(i128::from(*x)),
        Value::F32(x) => V::F(f64::from(*x)),
        Value::F64(x) => V::F(*x),
        Value::String(s) => V::S(s.clone()),
        Value::Bytes(b) => V::Bin(b.to_vec()),
        Value::EnumNumber(n) => {
            let Kind::Enum(e) = kind else { panic!("enum") };
            V::S(
                e.get_value(*n)
                    .map_or_else(|| n.to_string(), |v| v.name().to_string()),
            )
        }
        Value::Message(m) => {
            let get = |n: u32| {
                m.get_field(&m.descriptor().get_field(n).unwrap())
                    .into_owned()
            };
            match m.descriptor().full_name() {
                "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
                    let (Value::I64(s), Value::I32(n)) = (get(1), get(2)) else {
                        panic!("time")
                    };
                    V::I(i128::from(s) * 1_000_000_000 + i128::from(n))
                }
                w if w.starts_with("google.protobuf.") && w.ends_with("Value") => {
                    from_value(&m.descriptor().get_field(1).unwrap().kind(), &get(1))
                }
                _ => from_message(m),
            }
        }
        Value::List(_) | Value::Map(_) => panic!("nested collection"),
    }
}

fn from_arrow(a: &ArrayRef, i: usize) -> V {
    if a.is_null(i) {
        return V::Null;
    }
    match a.data_type() {
        DataType::Int32 => V::I(a.as_primitive::<Int32Type>().value(i).into()),
        DataType::Int64 => V::I(a.as_primitive::<Int64Type>().value(i).into()),
        DataType::UInt32 => V::I(a.as_primitive::<UInt32Type>().value(i).into()),
        DataType::UInt64 => V::I(a.as_primitive::<UInt64Type>().value(i).into()),
        DataType::Float32 => V::F(a.as_primitive::<Float32Type>().value(i).into()),
        DataType::Float64 => V::F(a.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => V::B(a.as_boolean().value(i)),
        DataType::Utf8 => V::S(a.as_string::<i32>().value(i).to_string()),
        DataType::Binary => V::Bin(a.as_binary::<i32>().value(i).to_vec()),
        DataType::Dictionary(..) => {
            let d = a.as_dictionary::<Int32Type>();
            let k = d.keys().value(i) as usize;
            V::S(d.values().as_string::<i32>().value(k).to_string())
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            V::I(a.as_primitive::<TimestampNanosecondType>().value(i).into())
        }
        DataType::Duration(TimeUnit::Nanosecond) => {
            V::I(a.as_primitive::<DurationNanosecondType>().value(i).into())
        }
        DataType::Struct(fields) => {
            let s = a.as_struct();
            V::Struct(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), from_arrow(c, i)))
                    .collect(),
            )
        }
        DataType::List(_) => {
            let v = a.as_list::<i32>().value(i);
            V::List((0..v.len()).map(|j| from_arrow(&v, j)).collect())
        }
        DataType::Map(..) => {
            let e = a.as_map().value(i);
            let (k, v) = (e.column(0), e.column(1));
            sort_map(
                (0..e.len())
                    .map(|j| (from_arrow(k, j), from_arrow(v, j)))
                    .collect(),
            )
        }
        other => panic!("unexpected type {other}"),
    }
}

fn row(batch: &RecordBatch, i: usize) -> V {
    V::Struct(
        batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, c)| (f.name().clone(), from_arrow(c, i)))
            .collect(),
    )
}

/// Checks each row of `batch` against the message it came from.
fn assert_rows(batch: &RecordBatch, messages: &[DynamicMessage]) {
    assert_eq!(batch.num_rows(), messages.len());
    for (i, m) in messages.iter().enumerate() {
        assert_eq!(row(batch, i), from_message(m), "row {i}");
    }
}

/// Decodes bodies into one batch, all expected to decode.
fn decode_all(name: &str, bodies: &[Vec<u8>]) -> RecordBatch {
    let mut d = ProtoDecoder::new(desc(name)).unwrap();
    for b in bodies {
        d.append(b).unwrap();
    }
    let batch = d.finish();
    batch
        .columns()
        .iter()
        .for_each(|c| c.to_data().validate_full().unwrap());
    batch
}

fn col<'a>(batch: &'a RecordBatch, name: &str) -> &'a ArrayRef {
    batch.column_by_name(name).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The full mapping.

fn all_message() -> DynamicMessage {
    let mut counts = HashMap::new();
    counts.insert(MapKey::String("a".into()), Value::I64(1));
    counts.insert(MapKey::String("b".into()), Value::I64(-2));
    let mut by_id = HashMap::new();
    by_id.insert(MapKey::I32(7), Value::Message(inner("seven", 7, &[7])));
    by_id.insert(MapKey::I32(-1), Value::Message(inner("", 0, &[])));
    msg(
        "t.All",
        vec![
            ("i32", Value::I32(-5)),
            ("i64", Value::I64(i64::MIN)),
            ("u32", Value::U32(u32::MAX)),
            ("u64", Value::U64(u64::MAX)),
            ("s32", Value::I32(-123_456)),
            ("s64", Value::I64(-9_876_543_210)),
            ("fx32", Value::U32(4_000_000_000)),
            ("fx64", Value::U64(1 << 63)),
            ("sfx32", Value::I32(-7)),
            ("sfx64", Value::I64(-8)),
            ("f32", Value::F32(1.5)),
            ("f64", Value::F64(-2.25)),
            ("flag", Value::Bool(true)),
            ("text", Value::String("héllo".into())),
            ("data", Value::Bytes(vec![0u8, 255, 1].into())),
            ("color", Value::EnumNumber(2)),
            ("odd_color", Value::EnumNumber(7)),
            ("inner", Value::Message(inner("in", 42, &[1, -2, 3]))),
            (
                "packed",
                Value::List(vec![Value::I32(1), Value::I32(-1), Value::I32(300)]),
            ),
            ("unpacked", Value::List(vec![Value::I64(5), Value::I64(-6)])),
            (
                "doubles",
                Value::List(vec![Value::F64(0.5), Value::F64(f64::INFINITY)]),
            ),
            (
                "names",
                Value::List(vec![Value::String("x".into()), Value::String("".into())]),
            ),
            (
                "inners",
                Value::List(vec![
                    Value::Message(inner("a", 1, &[])),
                    Value::Message(inner("b", 2, &[9, 9])),
                ]),
            ),
            (
                "colors",
                Value::List(vec![Value::EnumNumber(1), Value::EnumNumber(9)]),
            ),
            ("counts", Value::Map(counts)),
            ("by_id", Value::Map(by_id)),
            ("picked", Value::Message(inner("p", 3, &[]))),
            ("maybe", Value::I32(0)),
            (
                "at",
                wkt(
                    "google.protobuf.Timestamp",
                    &[
                        ("seconds", Value::I64(1_700_000_000)),
                        ("nanos", Value::I32(5)),
                    ],
                ),
            ),
            (
                "took",
                wkt(
                    "google.protobuf.Duration",
                    &[("seconds", Value::I64(-3)), ("nanos", Value::I32(-500))],
                ),
            ),
            (
                "w_i32",
                wkt("google.protobuf.Int32Value", &[("value", Value::I32(-9))]),
            ),
            (
                "w_i64",
                wkt(
                    "google.protobuf.Int64Value",
                    &[("value", Value::I64(1 << 40))],
                ),
            ),
            (
                "w_u32",
                wkt("google.protobuf.UInt32Value", &[("value", Value::U32(0))]),
            ),
            (
                "w_u64",
                wkt("google.protobuf.UInt64Value", &[("value", Value::U64(7))]),
            ),
            (
                "w_f32",
                wkt("google.protobuf.FloatValue", &[("value", Value::F32(0.25))]),
            ),
            (
                "w_f64",
                wkt(
                    "google.protobuf.DoubleValue",
                    &[("value", Value::F64(1e300))],
                ),
            ),
            (
                "w_bool",
                wkt("google.protobuf.BoolValue", &[("value", Value::Bool(true))]),
            ),
            (
                "w_str",
                wkt(
                    "google.protobuf.StringValue",
                    &[("value", Value::String("w".into()))],
                ),
            ),
            (
                "w_bytes",
                wkt(
                    "google.protobuf.BytesValue",
                    &[("value", Value::Bytes(vec![1].into()))],
                ),
            ),
            (
                "times",
                Value::List(vec![
                    wkt("google.protobuf.Timestamp", &[("seconds", Value::I64(1))]),
                    wkt("google.protobuf.Timestamp", &[("nanos", Value::I32(2))]),
                ]),
            ),
            (
                "fixed_unpacked",
                Value::List(vec![Value::U32(1), Value::U32(2)]),
            ),
        ],
    )
}

#[test]
fn schema_maps_every_type() {
    let schema = arrow_schema(&desc("t.All")).unwrap();
    let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let expect: &[(&str, DataType, bool)] = &[
        ("i32", DataType::Int32, false),
        ("i64", DataType::Int64, false),
        ("u32", DataType::UInt32, false),
        ("u64", DataType::UInt64, false),
        ("s32", DataType::Int32, false),
        ("s64", DataType::Int64, false),
        ("fx32", DataType::UInt32, false),
        ("fx64", DataType::UInt64, false),
        ("sfx32", DataType::Int32, false),
        ("sfx64", DataType::Int64, false),
        ("f32", DataType::Float32, false),
        ("f64", DataType::Float64, false),
        ("flag", DataType::Boolean, false),
        ("text", DataType::Utf8, false),
        ("data", DataType::Binary, false),
        ("color", dict.clone(), false),
        ("odd_color", dict.clone(), false),
        ("maybe", DataType::Int32, true),
        ("maybe_text", DataType::Utf8, true),
        (
            "at",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            true,
        ),
        ("took", DataType::Duration(TimeUnit::Nanosecond), true),
        ("w_i32", DataType::Int32, true),
        ("w_i64", DataType::Int64, true),
        ("w_u32", DataType::UInt32, true),
        ("w_u64", DataType::UInt64, true),
        ("w_f32", DataType::Float32, true),
        ("w_f64", DataType::Float64, true),
        ("w_bool", DataType::Boolean, true),
        ("w_str", DataType::Utf8, true),
        ("w_bytes", DataType::Binary, true),
        ("label", DataType::Utf8, true),
    ];
    for (name, t, nullable) in expect {
        let f = schema.field_with_name(name).unwrap();
        assert_eq!(f.data_type(), t, "{name}");
        assert_eq!(f.is_nullable(), *nullable, "{name}");
    }
    // Declaration order, which differs from number order only when the .proto says so.
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[..3], &["i32", "i64", "u32"]);
    assert_eq!(names.len(), 47);
    let inner = schema.field_with_name("inner").unwrap();
    assert!(inner.is_nullable());
    let DataType::Struct(fs) = inner.data_type() else {
        panic!("{inner:?}")
    };
    assert_eq!(fs[0].name(), "name");
    assert!(!fs[0].is_nullable());
    let DataType::List(item) = schema.field_with_name("packed").unwrap().data_type() else {
        panic!()
    };
    assert_eq!(item.data_type(), &DataType::Int32);
    assert!(!schema.field_with_name("packed").unwrap().is_nullable());
    let DataType::Map(entries, false) = schema.field_with_name("counts").unwrap().data_type()
    else {
        panic!()
    };
    let DataType::Struct(kv) = entries.data_type() else {
        panic!()
    };
    assert_eq!(kv[0].name(), "key");
    assert_eq!(kv[0].data_type(), &DataType::Utf8);
    assert!(!kv[0].is_nullable());
    assert_eq!(kv[1].name(), "value");
    assert_eq!(kv[1].data_type(), &DataType::Int64);
}

#[test]
fn every_type_decodes_to_its_values() {
    let m = all_message();
    // prost-reflect packs every repeated scalar (it ignores `[packed = false]`), so fields 21
    // and 45 are written unpacked by hand, after the rest.
    let mut packed_only = m.clone();
    packed_only.clear_field_by_name("unpacked");
    packed_only.clear_field_by_name("fixed_unpacked");
    let mut body = packed_only.encode_to_vec();
    assert!(
        body.windows(2).any(|w| w == [0xa2, 0x01]),
        "field 20 packed"
    );
    for v in [5i64, -6] {
        body.extend(key(21, VARINT));
        body.extend(varint(v as u64));
    }
    for v in [1u32, 2] {
        body.extend(key(45, 5));
        body.extend(v.to_le_bytes());
    }
    let empty = DynamicMessage::new(desc("t.All"));
    let batch = decode_all("t.All", &[body, empty.encode_to_vec()]);
    assert_rows(&batch, &[m, empty]);

    // And spelled out, for the mapping rules.
    assert_eq!(col(&batch, "i32").as_primitive::<Int32Type>().value(0), -5);
    assert_eq!(
        col(&batch, "i64").as_primitive::<Int64Type>().value(0),
        i64::MIN
    );
    assert_eq!(
        col(&batch, "u32").as_primitive::<UInt32Type>().value(0),
        u32::MAX
    );
    assert_eq!(
        col(&batch, "u64").as_primitive::<UInt64Type>().value(0),
        u64::MAX
    );
    assert_eq!(
        col(&batch, "s32").as_primitive::<Int32Type>().value(0),
        -123_456
    );
    assert_eq!(
        col(&batch, "s64").as_primitive::<Int64Type>().value(0),
        -9_876_543_210
    );
    assert_eq!(
        col(&batch, "fx32").as_primitive::<UInt32Type>().value(0),
        4_000_000_000
    );
    assert_eq!(
        col(&batch, "fx64").as_primitive::<UInt64Type>().value(0),
        1 << 63
    );
    assert_eq!(
        col(&batch, "sfx32").as_primitive::<Int32Type>().value(0),
        -7
    );
    assert_eq!(
        col(&batch, "sfx64").as_primitive::<Int64Type>().value(0),
        -8
    );
    assert_eq!(
        col(&batch, "f32").as_primitive::<Float32Type>().value(0),
        1.5
    );
    assert_eq!(
        col(&batch, "f64").as_primitive::<Float64Type>().value(0),
        -2.25
    );
    assert!(col(&batch, "flag").as_boolean().value(0));
    assert_eq!(col(&batch, "text").as_string::<i32>().value(0), "héllo");
    assert_eq!(
        col(&batch, "data").as_binary::<i32>().value(0),
        &[0, 255, 1]
    );
    let enum_name = |name: &str, i: usize| match from_arrow(col(&batch, name), i) {
        V::S(s) => s,
        other => panic!("{other:?}"),
    };
    assert_eq!(enum_name("color", 0), "BLUE");
    assert_eq!(enum_name("odd_color", 0), "7");
    assert_eq!(enum_name("color", 1), "RED"); // implicit presence: the first value
    let inner = col(&batch, "inner").as_struct();
    assert!(inner.is_valid(0) && inner.is_null(1));
    assert_eq!(inner.column(0).as_string::<i32>().value(0), "in");
    assert_eq!(inner.column(1).as_primitive::<Int64Type>().value(0), 42);
    assert!(col(&batch, "no_inner").is_null(0));
    let ints = |name: &str, i: usize| -> Vec<i128> {
        match from_arrow(col(&batch, name), i) {
            V::List(l) => l
                .into_iter()
                .map(|v| match v {
                    V::I(x) => x,
                    other => panic!("{other:?}"),
                })
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(ints("packed", 0), vec![1, -1, 300]);
    assert_eq!(ints("unpacked", 0), vec![5, -6]);
    assert_eq!(ints("fixed_unpacked", 0), vec![1, 2]);
    assert_eq!(ints("packed", 1), Vec::<i128>::new());
    assert_eq!(
        from_arrow(col(&batch, "colors"), 0),
        V::List(vec![V::S("GREEN".into()), V::S("9".into())])
    );
    assert_eq!(
        from_arrow(col(&batch, "counts"), 0),
        V::Map(vec![
            (V::S("a".into()), V::I(1)),
            (V::S("b".into()), V::I(-2)),
        ])
    );
    // Oneof: the member set is there, the other null.
    assert!(col(&batch, "label").is_null(0));
    assert!(col(&batch, "picked").is_valid(0));
    // proto3 optional: set to its default is not absent.
    assert_eq!(from_arrow(col(&batch, "maybe"), 0), V::I(0));
    assert_eq!(from_arrow(col(&batch, "unset_maybe"), 0), V::Null);
    assert_eq!(
        col(&batch, "at")
            .as_primitive::<TimestampNanosecondType>()
            .value(0),
        1_700_000_000_000_000_005
    );
    assert_eq!(
        col(&batch, "took")
            .as_primitive::<DurationNanosecondType>()
            .value(0),
        -3_000_000_500
    );
    assert_eq!(from_arrow(col(&batch, "w_i32"), 0), V::I(-9));
    assert_eq!(from_arrow(col(&batch, "w_u32"), 0), V::I(0));
    assert_eq!(from_arrow(col(&batch, "w_str"), 0), V::S("w".into()));
    assert_eq!(from_arrow(col(&batch, "w_absent"), 0), V::Null);
    assert_eq!(from_arrow(col(&batch, "w_i32"), 1), V::Null);
    assert_eq!(
        from_arrow(col(&batch, "times"), 0),
        V::List(vec![V::I(1_000_000_000), V::I(2)])
    );
}

// ---------------------------------------------------------------------------------------------
// Protobuf semantics, checked against DynamicMessage's own decoder where it has one.

fn key(number: u32, wt: u8) -> Vec<u8> {
    varint(u64::from(number) << 3 | u64::from(wt))
}

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
    out
}

fn len_field(number: u32, body: &[u8]) -> Vec<u8> {
    let mut out = key(number, LEN);
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// What DynamicMessage makes of `body`: the reference for merge and last-wins semantics.
fn reference(name: &str, body: &[u8]) -> DynamicMessage {
    DynamicMessage::decode(desc(name), body).unwrap()
}

#[test]
fn repeated_fields_merge_and_last_wins() {
    // Two encodings back to back are one message, merged.
    let a = msg(
        "t.All",
        vec![
            ("i32", Value::I32(1)),
            ("text", Value::String("first".into())),
            ("inner", Value::Message(inner("a", 0, &[1]))),
            ("packed", Value::List(vec![Value::I32(1)])),
            ("label", Value::String("l".into())),
            (
                "at",
                wkt("google.protobuf.Timestamp", &[("seconds", Value::I64(10))]),
            ),
            (
                "w_str",
                wkt(
                    "google.protobuf.StringValue",
                    &[("value", Value::String("x".into()))],
                ),
            ),
        ],
    );
    let b = msg(
        "t.All",
        vec![
            ("i32", Value::I32(2)),
            ("inner", Value::Message(inner("", 5, &[2]))),
            ("packed", Value::List(vec![Value::I32(2)])),
            ("picked", Value::Message(inner("p", 0, &[]))),
            (
                "at",
                wkt("google.protobuf.Timestamp", &[("nanos", Value::I32(3))]),
            ),
            ("w_str", wkt("google.protobuf.StringValue", &[])),
        ],
    );
    let mut body = a.encode_to_vec();
    body.extend(b.encode_to_vec());
    // An unpacked occurrence of the packed field, and unknown fields of every wire type.
    body.extend(key(20, VARINT));
    body.extend(varint(3));
    body.extend(key(900, VARINT));
    body.extend(varint(u64::MAX));
    body.extend(key(901, I64));
    body.extend([0; 8]);
    body.extend(len_field(902, b"skip me"));
    body.extend(key(903, 5));
    body.extend([0; 4]);
    body.extend(key(904, SGROUP));
    body.extend(key(905, SGROUP));
    body.extend(key(1, VARINT));
    body.extend(varint(1));
    body.extend(key(905, EGROUP));
    body.extend(key(904, EGROUP));
    let expect = reference("t.All", &body);
    let batch = decode_all("t.All", &[body]);
    assert_rows(&batch, std::slice::from_ref(&expect));
    assert_eq!(from_arrow(col(&batch, "i32"), 0), V::I(2));
    assert_eq!(from_arrow(col(&batch, "text"), 0), V::S("first".into()));
    assert_eq!(
        from_arrow(col(&batch, "inner"), 0),
        V::Struct(vec![
            ("name".into(), V::S("a".into())),
            ("n".into(), V::I(5)),
            ("xs".into(), V::List(vec![V::I(1), V::I(2)])),
        ])
    );
    assert_eq!(
        from_arrow(col(&batch, "packed"), 0),
        V::List(vec![V::I(1), V::I(2), V::I(3)])
    );
    // The later oneof member cleared the earlier one.
    assert_eq!(from_arrow(col(&batch, "label"), 0), V::Null);
    assert!(col(&batch, "picked").is_valid(0));
    // Well-known types merge too.
    assert_eq!(from_arrow(col(&batch, "at"), 0), V::I(10_000_000_003));
    assert_eq!(from_arrow(col(&batch, "w_str"), 0), V::S("x".into()));
}

#[test]
fn repeated_map_keys_keep_the_last_entry() {
    let entry = |k: &str, v: u64| {
        let mut e = len_field(1, k.as_bytes());
        e.extend(key(2, VARINT));
        e.extend(varint(v));
        len_field(26, &e)
    };
    let mut body = Vec::new();
    for (k, v) in [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)] {
        body.extend(entry(k, v));
    }
    // An entry with neither key nor value is key "" and value 0.
    body.extend(len_field(26, &[]));
    // A map<int32, Inner> entry without its value is an empty message, and -1 written in 5
    // bytes or 10 is the same key.
    let mut e = key(1, VARINT);
    e.extend(varint(u64::from(u32::MAX)));
    body.extend(len_field(27, &e));
    let mut e = key(1, VARINT);
    e.extend(varint(u64::MAX));
    e.extend(len_field(2, &len_field(1, b"last")));
    body.extend(len_field(27, &e));
    let expect = reference("t.All", &body);
    let batch = decode_all("t.All", &[body]);
    assert_rows(&batch, std::slice::from_ref(&expect));
    assert_eq!(
        from_arrow(col(&batch, "counts"), 0),
        V::Map(vec![
            (V::S("".into()), V::I(0)),
            (V::S("a".into()), V::I(3)),
            (V::S("b".into()), V::I(5)),
            (V::S("c".into()), V::I(4)),
        ])
    );
    // Wire order of the entries kept.
    let entries = col(&batch, "counts").as_map().value(0);
    let keys: Vec<&str> = entries
        .column(0)
        .as_string::<i32>()
        .iter()
        .flatten()
        .collect();
    assert_eq!(keys, vec!["a", "c", "b", ""]);
    let by_id = col(&batch, "by_id").as_map().value(0);
    assert_eq!(by_id.len(), 1);
    assert_eq!(
        from_arrow(by_id.column(1), 0),
        V::Struct(vec![
            ("name".into(), V::S("last".into())),
            ("n".into(), V::I(0)),
            ("xs".into(), V::List(vec![])),
        ])
    );
}

#[test]
fn decoder_is_reusable_across_batches() {
    let mut d = ProtoDecoder::new(desc("t.All")).unwrap();
    assert!(d.is_empty());
    let empty = d.finish();
    assert_eq!(empty.num_rows(), 0);
    assert_eq!(empty.schema(), d.schema());
    let m = all_message();
    for round in 0..3 {
        for _ in 0..=round {
            d.append(&m.encode_to_vec()).unwrap();
        }
        assert_eq!(d.len(), round + 1);
        let batch = d.finish();
        assert_rows(&batch, &vec![m.clone(); round + 1]);
    }
}

#[test]
fn unknown_enum_numbers_extend_the_dictionary_per_batch() {
    let mut d = ProtoDecoder::new(desc("t.All")).unwrap();
    for n in [7, 1, 7, -3] {
        d.append(&msg("t.All", vec![("color", Value::EnumNumber(n))]).encode_to_vec())
            .unwrap();
    }
    let batch = d.finish();
    let dict = col(&batch, "color").as_dictionary::<Int32Type>();
    let names: Vec<&str> = dict.values().as_string::<i32>().iter().flatten().collect();
    assert_eq!(names, vec!["RED", "GREEN", "BLUE", "7", "-3"]);
    assert_eq!(dict.keys().values().to_vec(), vec![3, 1, 3, 4]);
    d.append(&msg("t.All", vec![("color", Value::EnumNumber(2))]).encode_to_vec())
        .unwrap();
    let batch = d.finish();
    let dict = col(&batch, "color").as_dictionary::<Int32Type>();
    assert_eq!(dict.values().len(), 3);
}

#[test]
fn proto2_fields_and_groups() {
    let src = r#"
        syntax = "proto2";
        package p2;
        message Old {
          optional int32 a = 1 [default = 5];
          required string b = 2;
          optional group G = 3 { optional int32 x = 4; }
          repeated group R = 5 { optional string y = 6; }
          repeated int32 nums = 7;
        }
    "#;
    let pool = compile_proto("old.proto", &[("old.proto".into(), src.into())]).unwrap();
    let old = pool.get_message_by_name("p2.Old").unwrap();
    let schema = arrow_schema(&old).unwrap();
    assert!(schema.field_with_name("a").unwrap().is_nullable());
    assert!(schema.field_with_name("b").unwrap().is_nullable());
    let g = pool.get_message_by_name("p2.Old.G").unwrap();
    let r = pool.get_message_by_name("p2.Old.R").unwrap();
    let mut gm = DynamicMessage::new(g);
    gm.set_field_by_name("x", Value::I32(9));
    let rm = |y: &str| {
        let mut m = DynamicMessage::new(r.clone());
        m.set_field_by_name("y", Value::String(y.into()));
        Value::Message(m)
    };
    let mut full = DynamicMessage::new(old.clone());
    full.set_field_by_name("b", Value::String("bee".into()));
    full.set_field_by_name("g", Value::Message(gm));
    full.set_field_by_name("r", Value::List(vec![rm("r1"), rm("r2")]));
    full.set_field_by_name("nums", Value::List(vec![Value::I32(1), Value::I32(2)]));
    let empty = DynamicMessage::new(old.clone());
    let body = full.encode_to_vec();
    assert!(body.contains(&((3 << 3) | SGROUP)), "encoded as a group");
    let mut d = ProtoDecoder::new(old).unwrap();
    d.append(&body).unwrap();
    d.append(&empty.encode_to_vec()).unwrap();
    let batch = d.finish();
    assert_rows(&batch, &[full, empty]);
    // proto2 optional: absent is null, whatever the declared default.
    assert_eq!(from_arrow(col(&batch, "a"), 0), V::Null);
    assert_eq!(
        from_arrow(col(&batch, "g"), 0),
        V::Struct(vec![("x".into(), V::I(9))])
    );
}

// ---------------------------------------------------------------------------------------------
// Poison: each bad message is refused with a reason, and the good ones around it are intact.

fn good(i: i32) -> DynamicMessage {
    msg(
        "t.All",
        vec![
            ("i32", Value::I32(i)),
            ("text", Value::String(format!("row {i}"))),
            ("inner", Value::Message(inner("in", i64::from(i), &[i]))),
            (
                "inners",
                Value::List(vec![
                    Value::Message(inner("x", 1, &[1, 2])),
                    Value::Message(inner("y", 2, &[])),
                ]),
            ),
            ("names", Value::List(vec![Value::String("n".into())])),
            ("colors", Value::List(vec![Value::EnumNumber(11)])),
            ("packed", Value::List(vec![Value::I32(i); 3])),
            ("flag", Value::Bool(true)),
            ("maybe", Value::I32(i)),
            (
                "counts",
                Value::Map(HashMap::from([(MapKey::String("k".into()), Value::I64(1))])),
            ),
        ],
    )
}

/// Appends a good message, `bad` (expecting an error containing each of `expect`), then
/// another good one, and checks the batch holds exactly the two good rows.
fn assert_poison(bad: &[u8], expect: &[&str]) -> String {
    let mut d = ProtoDecoder::new(desc("t.All")).unwrap();
    d.append(&good(1).encode_to_vec()).unwrap();
    let err = d.append(bad).unwrap_err().to_string();
    for e in expect {
        assert!(err.contains(e), "`{err}` lacks `{e}`");
    }
    assert!(err.starts_with("protobuf"), "{err}");
    assert_eq!(d.len(), 1);
    d.append(&good(2).encode_to_vec()).unwrap();
    let batch = d.finish();
    batch
        .columns()
        .iter()
        .for_each(|c| c.to_data().validate_full().unwrap());
    assert_rows(&batch, &[good(1), good(2)]);
    err
}

/// A good message with `tail` after it: the error comes late, after columns were written.
fn after_good(tail: &[u8]) -> Vec<u8> {
    let mut body = good(99).encode_to_vec();
    body.extend_from_slice(tail);
    body
}

#[test]
fn good_bad_good_keeps_the_two_good_rows() {
    let body = after_good(&[0x08]); // field 1's key, then nothing
    let err = assert_poison(&body, &["truncated varint"]);
    assert_eq!(
        err,
        format!(
            "protobuf: field 1 (i32): truncated varint at byte {}",
            body.len()
        )
    );
}

#[test]
fn poison_truncated() {
    let full = good(99).encode_to_vec();
    // Cut inside the last field, and inside the list of messages.
    assert_poison(
        &full[..full.len() - 1],
        &["field 30 (maybe): truncated varint"],
    );
    let inners = full.windows(2).position(|w| w == [0xc2, 0x01]).unwrap();
    assert_poison(&full[..inners + 6], &["field 24 (inners)"]);
    let mut tail = key(14, LEN);
    tail.extend(varint(10));
    tail.extend(b"abc");
    assert_poison(
        &after_good(&tail),
        &[
            "field 14 (text)",
            "length 10 runs past the end of the message (3 bytes left)",
        ],
    );
    assert_poison(&after_good(&key(12, I64)), &["truncated 64-bit value"]);
    // Every prefix of a good message either decodes or is refused; none panics or leaks rows.
    let mut d = ProtoDecoder::new(desc("t.All")).unwrap();
    let mut ok = 0;
    for cut in 0..full.len() {
        if d.append(&full[..cut]).is_ok() {
            ok += 1;
        }
    }
    let batch = d.finish();
    assert_eq!(batch.num_rows(), ok);
    batch
        .columns()
        .iter()
        .for_each(|c| c.to_data().validate_full().unwrap());
}

#[test]
fn poison_bad_varint() {
    let mut tail = key(2, VARINT);
    tail.extend([0xff; 11]);
    assert_poison(
        &after_good(&tail),
        &[
            "field 2 (i64)",
            "bad varint (longer than 10 bytes or over 64 bits)",
        ],
    );
    // As a key, too.
    assert_poison(&[0xff; 11], &["bad varint"]);
}

#[test]
fn poison_length_bomb() {
    let mut tail = key(15, LEN);
    tail.extend(varint(1 << 40));
    tail.extend(b"xy");
    assert_poison(
        &after_good(&tail),
        &["field 15 (data)", "length 1099511627776 runs past the end"],
    );
    // In a nested message and an unknown field.
    let mut inner_bomb = key(1, LEN);
    inner_bomb.extend(varint(u64::MAX >> 1));
    assert_poison(
        &after_good(&len_field(24, &inner_bomb)),
        &["field 24 (inners) > 1 (name)", "runs past the end"],
    );
    let mut unknown = key(77, LEN);
    unknown.extend(varint(1 << 40));
    assert_poison(&after_good(&unknown), &["length 1099511627776"]);
}

#[test]
fn poison_wrong_wire_type() {
    let body = after_good(&len_field(1, &[1]));
    let at = good(99).encode_to_vec().len();
    let err = assert_poison(&body, &[]);
    assert_eq!(
        err,
        format!("protobuf: field 1 (i32): wire type 2 where a varint was expected at byte {at}")
    );
    let mut tail = key(18, VARINT);
    tail.push(1);
    assert_poison(
        &after_good(&tail),
        &["field 18 (inner): wire type 0 where a length-delimited value was expected"],
    );
    let mut tail = key(11, I64);
    tail.extend([0; 8]);
    assert_poison(&after_good(&tail), &["where a 32-bit value was expected"]);
    assert_poison(
        &after_good(&len_field(22, &[0; 7])),
        &[
            "field 22 (doubles)",
            "packed length 7 is not a multiple of 8",
        ],
    );
    assert_poison(&after_good(&key(1000, 7)), &["invalid wire type 7"]);
    assert_poison(&after_good(&[0]), &["invalid field number 0"]);
    assert_poison(
        &after_good(&key(1000, EGROUP)),
        &["end-group tag of field 1000 without a start-group"],
    );
    let mut unclosed = key(1000, SGROUP);
    unclosed.extend(key(1001, EGROUP));
    assert_poison(
        &after_good(&unclosed),
        &["end-group tag of field 1001 inside the group of field 1000"],
    );
    assert_poison(&after_good(&key(1000, SGROUP)), &["truncated group"]);
}

#[test]
fn poison_invalid_utf8() {
    assert_poison(
        &after_good(&len_field(14, &[b'o', b'k', 0xff, 0xfe])),
        &["field 14 (text): invalid UTF-8 in a string at byte"],
    );
    // In a repeated message's field, a list, a map key and a wrapper.
    assert_poison(
        &after_good(&len_field(24, &len_field(1, &[0xc3]))),
        &["field 24 (inners) > 1 (name): invalid UTF-8"],
    );
    assert_poison(
        &after_good(&len_field(23, &[0x80])),
        &["field 23 (names): invalid UTF-8"],
    );
    assert_poison(
        &after_good(&len_field(26, &len_field(1, &[0xff]))),
        &["field 26 (counts) > 1 (key): invalid UTF-8"],
    );
    assert_poison(
        &after_good(&len_field(41, &len_field(1, &[0xff]))),
        &["field 41 (w_str): invalid UTF-8"],
    );
    // An overridden occurrence is checked too.
    let mut tail = len_field(14, &[0xff]);
    tail.extend(len_field(14, b"fine"));
    assert_poison(&after_good(&tail), &["field 14 (text): invalid UTF-8"]);
}

#[test]
fn poison_nesting_too_deep() {
    let mut tail = Vec::new();
    for _ in 0..150 {
        tail.extend(key(1000, SGROUP));
    }
    for _ in 0..150 {
        tail.extend(key(1000, EGROUP));
    }
    assert_poison(&after_good(&tail), &["nesting deeper than 100 levels"]);
    // 100 levels are fine.
    let mut ok = good(1).encode_to_vec();
    for _ in 0..99 {
        ok.extend(key(1000, SGROUP));
    }
    for _ in 0..99 {
        ok.extend(key(1000, EGROUP));
    }
    let batch = decode_all("t.All", &[ok]);
    assert_rows(&batch, &[good(1)]);
}

#[test]
fn poison_time_out_of_range() {
    let at = wkt(
        "google.protobuf.Timestamp",
        &[("seconds", Value::I64(253_402_300_799))], // 9999-12-31
    );
    let body = msg("t.All", vec![("at", at)]).encode_to_vec();
    assert_poison(
        &after_good(&body),
        &["field 32 (at): timestamp of 253402300799 s 0 ns does not fit 64-bit nanoseconds"],
    );
}

#[test]
fn bad_framing_is_refused() {
    let err = |b: &[u8]| confluent_prefix(b).unwrap_err().to_string();
    assert!(err(&[1, 0, 0, 0, 1, 0, 8]).contains("magic byte 1, expected 0"));
    assert!(err(&[0, 0, 0, 1]).contains("4 bytes is too short"));
    assert!(err(&[]).contains("too short"));
    // A count of 1000 indexes (zigzag 2000).
    let mut bomb = vec![0, 0, 0, 0, 1];
    bomb.extend(varint(2000));
    bomb.extend([0; 8]);
    assert!(
        err(&bomb).contains("message-index count 1000 is out of range"),
        "{}",
        err(&bomb)
    );
    assert!(err(&[0, 0, 0, 0, 1, 1]).contains("count -1 is out of range"));
    // Two indexes announced, one given.
    assert!(err(&[0, 0, 0, 0, 1, 4, 2]).contains("message index: truncated varint"));
    assert!(err(&[0, 0, 0, 0, 1, 2, 3]).contains("message index -2 is out of range"));
    assert!(err(&[0, 0, 0, 0, 1, 0xff, 0xff, 0xff]).contains("truncated varint"));
    assert!(err(&[0, 0, 0, 0, 1, 0xff, 0xff, 0xff]).starts_with("protobuf framing: "));
}

#[test]
fn framing_parses() {
    let p = confluent_prefix(&[0, 0, 0, 1, 2, 0, 8, 1]).unwrap();
    assert_eq!(p.schema_id, 258);
    assert_eq!(p.indexes(), &[0]);
    assert_eq!(p.body_offset, 6);
    // [1, 2]: count 2 (zigzag 4), then 2 and 4.
    let p = confluent_prefix(&[0, 0xff, 0, 0, 0, 4, 2, 4]).unwrap();
    assert_eq!(p.schema_id, 0xff00_0000);
    assert_eq!(p.indexes(), &[1, 2]);
    assert_eq!(p.body_offset, 8);
    let mut full = vec![0, 0, 0, 0, 7];
    full.extend(varint(128));
    full.extend([2; 64]);
    full.push(0x08);
    let p = confluent_prefix(&full).unwrap();
    assert_eq!(p.indexes(), &[1; 64]);
    assert_eq!(&full[p.body_offset..], &[0x08]);
}

// ---------------------------------------------------------------------------------------------
// Loading descriptors.

#[test]
fn compile_proto_resolves_imports_in_files_and_well_known_types() {
    let common = r#"
        syntax = "proto3";
        package common;
        message Money { string currency = 1; int64 units = 2; }
    "#;
    let order = r#"
        syntax = "proto3";
        package shop;
        import "common/money.proto";
        import "google/protobuf/timestamp.proto";
        message Order {
          string id = 1;
          common.Money total = 2;
          google.protobuf.Timestamp placed = 3;
        }
    "#;
    let files = vec![
        ("shop/order.proto".to_string(), order.to_string()),
        ("common/money.proto".to_string(), common.to_string()),
    ];
    let pool = compile_proto("shop/order.proto", &files).unwrap();
    let m = message_for_indexes(&pool, "shop/order.proto", &[0]).unwrap();
    assert_eq!(m.full_name(), "shop.Order");
    let schema = arrow_schema(&m).unwrap();
    assert_eq!(
        schema.field(2).data_type(),
        &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    );
    assert!(matches!(schema.field(1).data_type(), DataType::Struct(f) if f.len() == 2));

    // A missing import and a syntax error say where.
    let err = compile_proto("shop/order.proto", &files[..1])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("import 'common/money.proto' not found"),
        "{err}"
    );
    assert!(err.contains("shop/order.proto:"), "{err}");
    let bad = vec![(
        "x.proto".to_string(),
        "syntax = \"proto3\";\nmessage {".to_string(),
    )];
    let err = compile_proto("x.proto", &bad).unwrap_err().to_string();
    assert!(err.starts_with("protobuf schema: x.proto:2:9: "), "{err}");
    let err = compile_proto("nope.proto", &bad).unwrap_err().to_string();
    assert!(err.contains("nope.proto"), "{err}");
}

#[test]
fn message_indexes_pick_nested_messages() {
    let pool = pool();
    let name = |ix: &[i32]| {
        message_for_indexes(&pool, "t.proto", ix)
            .map(|m| m.full_name().to_string())
            .map_err(|e| e.to_string())
    };
    assert_eq!(name(&[]).unwrap(), "t.Inner");
    assert_eq!(name(&[0]).unwrap(), "t.Inner");
    assert_eq!(name(&[1]).unwrap(), "t.All");
    assert_eq!(name(&[2]).unwrap(), "t.Prop");
    // All's nested types in declaration order: the map entries, then Nested.
    assert_eq!(name(&[1, 0]).unwrap(), "t.All.CountsEntry");
    assert_eq!(name(&[1, 2]).unwrap(), "t.All.Nested");
    assert_eq!(name(&[1, 2, 0]).unwrap(), "t.All.Nested.Deeper");
    assert!(name(&[3]).unwrap_err().contains("has 3 top-level messages"));
    assert!(name(&[1, 2, 1])
        .unwrap_err()
        .contains("`t.All.Nested` has 1 nested messages"));
    assert!(name(&[-1]).is_err());
    assert!(message_for_indexes(&pool, "other.proto", &[0])
        .unwrap_err()
        .to_string()
        .contains("no file `other.proto`"));
}

#[test]
fn descriptor_set_round_trip() {
    let set = prost_reflect::prost_types::FileDescriptorSet {
        file: pool().file_descriptor_protos().cloned().collect(),
    };
    let pool = load_descriptor_set(&set.encode_to_vec()).unwrap();
    let m = all_message();
    let mut d = ProtoDecoder::new(pool.get_message_by_name("t.All").unwrap()).unwrap();
    d.append(&m.encode_to_vec()).unwrap();
    assert_rows(&d.finish(), &[m]);

    // Without the well-known files (protoc without --include_imports): they are built in.
    let set = prost_reflect::prost_types::FileDescriptorSet {
        file: set
            .file
            .into_iter()
            .filter(|f| !f.name().starts_with("google/"))
            .collect(),
    };
    assert_eq!(set.file.len(), 1);
    let pool = load_descriptor_set(&set.encode_to_vec()).unwrap();
    assert!(pool.get_message_by_name("t.All").is_some());
    let err = load_descriptor_set(b"\x0a\x05junk")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("protobuf schema: descriptor set"), "{err}");
}

#[test]
fn proto_files_load_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("common")).unwrap();
    std::fs::write(
        dir.path().join("common/id.proto"),
        "syntax = \"proto3\"; package common; message Id { string v = 1; }",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.proto"),
        "syntax = \"proto3\"; import \"common/id.proto\"; import \"google/protobuf/duration.proto\";\n\
         message M { common.Id id = 1; google.protobuf.Duration d = 2; }",
    )
    .unwrap();
    let main = dir.path().join("main.proto");
    let pool = load_proto_files(std::slice::from_ref(&main), &[]).unwrap();
    assert!(pool.get_message_by_name("M").is_some());
    let pool = load_proto_files(&[main], &[dir.path().to_path_buf()]).unwrap();
    assert!(pool.get_message_by_name("common.Id").is_some());
    let err = load_proto_files(&[dir.path().join("missing.proto")], &[])
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("protobuf schema: "), "{err}");
}

#[test]
fn recursive_and_too_deep_types_are_refused() {
    let src = r#"
        syntax = "proto3";
        package a;
        message B { B next = 1; }
        message C { D d = 1; }
        message D { repeated C cs = 1; }
        message E { map<string, C> by = 1; }
        message F { int32 x = 1; }
    "#;
    let pool = compile_proto("a.proto", &[("a.proto".into(), src.into())]).unwrap();
    let err = |n: &str| {
        ProtoDecoder::new(pool.get_message_by_name(n).unwrap())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        err("a.B"),
        "protobuf: recursive message a.B -> a.B is not supported"
    );
    assert_eq!(
        err("a.C"),
        "protobuf: recursive message a.C -> a.D -> a.C is not supported"
    );
    assert!(err("a.E").contains("a.C -> a.D -> a.C"));
    assert!(ProtoDecoder::new(pool.get_message_by_name("a.F").unwrap()).is_ok());

    let chain = |n: usize| {
        let mut src = String::from("syntax = \"proto3\";\n");
        for i in 0..n - 1 {
            src.push_str(&format!("message M{i} {{ M{} m = 1; }}\n", i + 1));
        }
        src.push_str(&format!("message M{} {{ int32 x = 1; }}\n", n - 1));
        let pool = compile_proto("c.proto", &[("c.proto".into(), src)]).unwrap();
        arrow_schema(&pool.get_message_by_name("M0").unwrap())
    };
    assert!(chain(100).is_ok());
    let err = chain(101).unwrap_err().to_string();
    assert!(err.contains("nested deeper than 100 levels"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Property tests.

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..6).prop_map(String::from_iter)
}

fn inner_strategy() -> impl Strategy<Value = DynamicMessage> {
    (
        text(),
        any::<i64>(),
        prop::collection::vec(any::<i32>(), 0..4),
    )
        .prop_map(|(name, n, xs)| inner(&name, n, &xs))
}

fn prop_message() -> impl Strategy<Value = DynamicMessage> {
    let scalars = (
        any::<i32>(),
        any::<i64>(),
        any::<u64>(),
        any::<i32>(),
        any::<f64>(),
        any::<f32>(),
        any::<bool>(),
        text(),
        prop::collection::vec(any::<u8>(), 0..6),
        -2i32..5,
        prop::option::of(any::<i64>()),
    );
    let repeated = (
        prop::collection::vec(any::<i64>(), 0..5),
        prop::collection::vec(text(), 0..4),
        prop::collection::vec(any::<i32>(), 0..4),
        prop::option::of(inner_strategy()),
        prop::collection::vec(inner_strategy(), 0..3),
        prop::collection::hash_map(text(), any::<i32>(), 0..4),
        prop::collection::hash_map(any::<u64>(), inner_strategy(), 0..3),
        prop_oneof![
            Just(None),
            text().prop_map(|s| Some(Value::String(s))),
            inner_strategy().prop_map(|m| Some(Value::Message(m))),
        ],
        prop::option::of((-9_000_000_000i64..9_000_000_000, 0i32..1_000_000_000)),
    );
    (scalars, repeated).prop_map(|(s, r)| {
        let mut m = DynamicMessage::new(desc("t.Prop"));
        let mut set = |name: &str, v: Value| m.set_field_by_name(name, v);
        set("a", Value::I32(s.0));
        set("b", Value::I64(s.1));
        set("c", Value::U64(s.2));
        set("d", Value::I32(s.3));
        set("e", Value::F64(s.4));
        set("f", Value::F32(s.5));
        set("g", Value::Bool(s.6));
        set("h", Value::String(s.7));
        set("i", Value::Bytes(s.8.into()));
        set("j", Value::EnumNumber(s.9));
        if let Some(x) = s.10 {
            set("r", Value::I64(x));
        }
        set("k", Value::List(r.0.into_iter().map(Value::I64).collect()));
        set(
            "l",
            Value::List(r.1.into_iter().map(Value::String).collect()),
        );
        set("m", Value::List(r.2.into_iter().map(Value::I32).collect()));
        if let Some(n) = r.3 {
            set("n", Value::Message(n));
        }
        set(
            "o",
            Value::List(r.4.into_iter().map(Value::Message).collect()),
        );
        set(
            "p",
            Value::Map(
                r.5.into_iter()
                    .map(|(k, v)| (MapKey::String(k), Value::I32(v)))
                    .collect(),
            ),
        );
        set(
            "q",
            Value::Map(
                r.6.into_iter()
                    .map(|(k, v)| (MapKey::U64(k), Value::Message(v)))
                    .collect(),
            ),
        );
        match r.7 {
            Some(v @ Value::String(_)) => set("s1", v),
            Some(v) => set("s2", v),
            None => {}
        }
        if let Some((secs, nanos)) = r.8 {
            set(
                "t",
                wkt(
                    "google.protobuf.Timestamp",
                    &[("seconds", Value::I64(secs)), ("nanos", Value::I32(nanos))],
                ),
            );
        }
        m
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn round_trip(messages in prop::collection::vec(prop_message(), 1..4)) {
        let bodies: Vec<Vec<u8>> = messages.iter().map(|m| m.encode_to_vec()).collect();
        let batch = decode_all("t.Prop", &bodies);
        prop_assert_eq!(batch.num_rows(), messages.len());
        for (i, m) in messages.iter().enumerate() {
            prop_assert_eq!(row(&batch, i), from_message(m), "row {}", i);
        }
    }

    /// Damaged messages: no panic, a refused one leaves nothing behind, and what both decoders
    /// accept decodes the same.
    #[test]
    fn damaged_messages(
        m in prop_message(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut body = m.encode_to_vec();
        if !body.is_empty() {
            for (at, byte) in &edits {
                let i = at.index(body.len());
                body[i] = *byte;
            }
            if truncate {
                body.truncate(cut.index(body.len()));
            }
        }
        let mut d = ProtoDecoder::new(desc("t.Prop")).unwrap();
        let good = m.encode_to_vec();
        d.append(&good).unwrap();
        let accepted = d.append(&body).is_ok();
        d.append(&good).unwrap();
        let batch = d.finish();
        batch.columns().iter().for_each(|c| c.to_data().validate_full().unwrap());
        let rows = if accepted { 3 } else { 2 };
        prop_assert_eq!(batch.num_rows(), rows);
        prop_assert_eq!(row(&batch, 0), from_message(&m));
        prop_assert_eq!(row(&batch, rows - 1), from_message(&m));
        if accepted {
            if let Ok(reference) = DynamicMessage::decode(desc("t.Prop"), body.as_slice()) {
                prop_assert_eq!(row(&batch, 1), from_message(&reference));
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..64)) {
        let mut d = ProtoDecoder::new(desc("t.All")).unwrap();
        let accepted = d.append(&body).is_ok();
        let batch = d.finish();
        prop_assert_eq!(batch.num_rows(), usize::from(accepted));
        let _ = confluent_prefix(&body);
    }
}

#[test]
fn messages_without_fields() {
    let src = "syntax = \"proto3\"; import \"google/protobuf/empty.proto\"; message W { google.protobuf.Empty e = 1; }";
    let pool = compile_proto("w.proto", &[("w.proto".into(), src.into())]).unwrap();
    let w = pool.get_message_by_name("W").unwrap();
    let mut d = ProtoDecoder::new(w.clone()).unwrap();
    d.append(&len_field(1, &[])).unwrap();
    d.append(&[]).unwrap();
    let batch = d.finish();
    let e = col(&batch, "e");
    assert!(e.is_valid(0) && e.is_null(1));
    let empty = pool.get_message_by_name("google.protobuf.Empty").unwrap();
    let mut d = ProtoDecoder::new(empty).unwrap();
    d.append(&[]).unwrap();
    d.append(&key(5, VARINT).into_iter().chain([1]).collect::<Vec<_>>())
        .unwrap();
    assert_eq!(d.finish().num_rows(), 2);
}
