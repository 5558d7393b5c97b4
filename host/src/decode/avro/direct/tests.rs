//! The direct decoder against arrow-avro: random schemas of what it covers, random rows encoded
//! by apache-avro (an independent writer), the same batches from both; and bad messages that
//! leave the rows around them as they were.

use apache_avro::types::Value as Avro;
use proptest::collection::{hash_map, vec};
use proptest::prelude::*;
use serde_json::{json, Value};

use arrow_array::cast::AsArray;

use super::*;
use crate::config::AvroFraming;
use crate::decode::avro::{build_decoder, decode_direct, WriterKey};
use crate::decode::Rejected;
use crate::source::Record;

#[derive(Debug, Clone)]
enum Shape {
    Bool,
    Int,
    Long,
    Float,
    Double,
    Str,
    Bytes,
    Date,
    TimeMillis,
    TimeMicros,
    TsMillis,
    TsMicros,
    LocalTsMicros,
    Enum(u32),
    Record(Vec<Shape>),
    Array(Box<Shape>),
    Map(Box<Shape>),
    /// The union of null and a type; `true`: null is the first branch.
    Nullable(Box<Shape>, bool),
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Bool),
        Just(Shape::Int),
        Just(Shape::Long),
        Just(Shape::Float),
        Just(Shape::Double),
        Just(Shape::Str),
        Just(Shape::Bytes),
        Just(Shape::Date),
        Just(Shape::TimeMillis),
        Just(Shape::TimeMicros),
        Just(Shape::TsMillis),
        Just(Shape::TsMicros),
        Just(Shape::LocalTsMicros),
        (1u32..4).prop_map(Shape::Enum),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 1..4).prop_map(Shape::Record),
            inner.clone().prop_map(|s| Shape::Array(Box::new(s))),
            inner.clone().prop_map(|s| Shape::Map(Box::new(s))),
            (inner, any::<bool>()).prop_map(|(s, first)| match s {
                // A union can't hold a union.
                Shape::Nullable(..) => s,
                s => Shape::Nullable(Box::new(s), first),
            }),
        ]
    })
}

/// The Avro schema of `s`; named types get fresh names from `n`.
fn schema(s: &Shape, n: &mut u32) -> Value {
    let logical = |ty: &str, lt: &str| json!({"type": ty, "logicalType": lt});
    match s {
        Shape::Bool => json!("boolean"),
        Shape::Int => json!("int"),
        Shape::Long => json!("long"),
        Shape::Float => json!("float"),
        Shape::Double => json!("double"),
        Shape::Str => json!("string"),
        Shape::Bytes => json!("bytes"),
        Shape::Date => logical("int", "date"),
        Shape::TimeMillis => logical("int", "time-millis"),
        Shape::TimeMicros => logical("long", "time-micros"),
        Shape::TsMillis => logical("long", "timestamp-millis"),
        Shape::TsMicros => logical("long", "timestamp-micros"),
        Shape::LocalTsMicros => logical("long", "local-timestamp-micros"),
        Shape::Enum(k) => {
            *n += 1;
            let symbols: Vec<String> = (0..*k).map(|i| format!("S{i}")).collect();
            json!({"type": "enum", "name": format!("E{n}"), "symbols": symbols})
        }
        Shape::Record(fields) => {
            *n += 1;
            let name = format!("R{n}");
            let fields: Vec<Value> = fields
                .iter()
                .enumerate()
                .map(|(i, f)| json!({"name": format!("f{i}"), "type": schema(f, n)}))
                .collect();
            json!({"type": "record", "name": name, "namespace": "t", "fields": fields})
        }
        Shape::Array(items) => json!({"type": "array", "items": schema(items, n)}),
        Shape::Map(values) => json!({"type": "map", "values": schema(values, n)}),
        Shape::Nullable(inner, true) => json!(["null", schema(inner, n)]),
        Shape::Nullable(inner, false) => json!([schema(inner, n), "null"]),
    }
}

fn value(s: &Shape) -> BoxedStrategy<Avro> {
    match s {
        Shape::Bool => any::<bool>().prop_map(Avro::Boolean).boxed(),
        Shape::Int => any::<i32>().prop_map(Avro::Int).boxed(),
        Shape::Long => any::<i64>().prop_map(Avro::Long).boxed(),
        Shape::Float => (-1e6f32..1e6).prop_map(Avro::Float).boxed(),
        Shape::Double => (-1e12f64..1e12).prop_map(Avro::Double).boxed(),
        Shape::Str => "\\PC{0,8}".prop_map(Avro::String).boxed(),
        Shape::Bytes => vec(any::<u8>(), 0..8).prop_map(Avro::Bytes).boxed(),
        Shape::Date => any::<i32>().prop_map(Avro::Date).boxed(),
        Shape::TimeMillis => (0..86_400_000i32).prop_map(Avro::TimeMillis).boxed(),
        Shape::TimeMicros => (0..86_400_000_000i64).prop_map(Avro::TimeMicros).boxed(),
        Shape::TsMillis => any::<i64>().prop_map(Avro::TimestampMillis).boxed(),
        Shape::TsMicros => any::<i64>().prop_map(Avro::TimestampMicros).boxed(),
        Shape::LocalTsMicros => any::<i64>().prop_map(Avro::LocalTimestampMicros).boxed(),
        Shape::Enum(k) => (0..*k).prop_map(|i| Avro::Enum(i, format!("S{i}"))).boxed(),
        Shape::Record(fields) => fields
            .iter()
            .map(value)
            .collect::<Vec<_>>()
            .prop_map(|vs| {
                Avro::Record(
                    vs.into_iter()
                        .enumerate()
                        .map(|(i, v)| (format!("f{i}"), v))
                        .collect(),
                )
            })
            .boxed(),
        Shape::Array(items) => vec(value(items), 0..4).prop_map(Avro::Array).boxed(),
        Shape::Map(values) => hash_map("[a-z]{0,3}", value(values), 0..3)
            .prop_map(Avro::Map)
            .boxed(),
        Shape::Nullable(inner, first) => {
            let (null, other) = if *first { (0, 1) } else { (1, 0) };
            proptest::option::of(value(inner))
                .prop_map(move |v| match v {
                    None => Avro::Union(null, Box::new(Avro::Null)),
                    Some(v) => Avro::Union(other, Box::new(v)),
                })
                .boxed()
        }
    }
}

/// A record schema and message bodies of it.
fn messages() -> impl Strategy<Value = (String, Vec<Vec<u8>>)> {
    vec(shape(), 1..5).prop_flat_map(|fields| {
        let top = Shape::Record(fields);
        let text = schema(&top, &mut 0).to_string();
        let parsed = apache_avro::Schema::parse_str(&text).expect("the test's schema");
        vec(value(&top), 1..12).prop_map(move |rows| {
            let bodies = rows
                .into_iter()
                .map(|v| apache_avro::to_avro_datum(&parsed, v).expect("encoding a row"))
                .collect();
            (text.clone(), bodies)
        })
    })
}

/// arrow-avro's batch of `bodies`, each framed as Confluent schema id 1; `None` if it refuses
/// one.
fn arrow_avro(text: &str, bodies: &[Vec<u8>]) -> Option<RecordBatch> {
    let schema = arrow_avro::schema::AvroSchema::new(text.to_string());
    let mut d = build_decoder(WriterKey::Id(1), &schema, None, 1024).expect("arrow-avro decoder");
    for b in bodies {
        let mut framed = vec![0, 0, 0, 0, 1];
        framed.extend_from_slice(b);
        let before = d.capacity();
        match d.decode(&framed) {
            Ok(n) if n == framed.len() && before - d.capacity() == 1 => {}
            _ => return None,
        }
    }
    d.flush().ok().flatten()
}

fn direct(text: &str) -> DirectDecoder {
    DirectDecoder::new(&AvroSchema::new(text.to_string())).expect("a covered schema")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decodes_what_arrow_avro_decodes((text, bodies) in messages()) {
        let mut d = direct(&text);
        for b in &bodies {
            prop_assert_eq!(d.append(b), Ok(()));
        }
        let ours = d.finish().expect("finish");
        prop_assert_eq!(Some(ours.clone()), strict(&text, &bodies));
        let theirs = arrow_avro(&text, &bodies).expect("arrow-avro decodes apache-avro's rows");
        prop_assert_eq!(&ours, &theirs);
        // The decoder starts again empty and decodes the same.
        for b in &bodies {
            prop_assert_eq!(d.append(b), Ok(()));
        }
        prop_assert_eq!(&d.finish().expect("finish again"), &theirs);
    }

    #[test]
    fn a_bad_message_leaves_the_others_as_they_were(
        (text, bodies) in messages(),
        at in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        flip in any::<u8>(),
    ) {
        let i = at.index(bodies.len());
        let mut bad = bodies[i].clone();
        if bad.is_empty() || flip % 2 == 0 {
            bad.truncate(cut.index(bad.len() + 1));
            if bad.len() == bodies[i].len() {
                bad.push(flip);
            }
        } else {
            let j = cut.index(bad.len());
            bad[j] ^= flip | 1;
        }
        let mut messages = bodies.clone();
        messages.insert(i, bad.clone());
        let (batch, good, rejected) = decode(&text, &messages);
        prop_assert!(rejected.iter().all(|r| r.record == i as u32), "{:?}", rejected);
        let kept: Vec<Vec<u8>> = good.iter().map(|&k| messages[k as usize].clone()).collect();
        prop_assert_eq!(batch, strict(&text, &kept));
        let alone = strict(&text, std::slice::from_ref(&bad));
        if rejected.is_empty() {
            // What both accept, both read the same.
            if let Some(theirs) = arrow_avro(&text, std::slice::from_ref(&bad)) {
                prop_assert_eq!(alone, Some(theirs));
            }
        } else {
            prop_assert!(alone.is_none());
        }
    }
}

/// Decodes `bodies`, framed as Confluent schema id 1, as the Avro decoder does.
fn decode(text: &str, bodies: &[Vec<u8>]) -> (Option<RecordBatch>, Vec<u32>, Vec<Rejected>) {
    let framed: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| [&[0, 0, 0, 0, 1], &b[..]].concat())
        .collect();
    let records: Vec<Record> = framed
        .iter()
        .enumerate()
        .map(|(k, v)| Record::new("t", 0, k as i64, Some(v)))
        .collect();
    let idx: Vec<u32> = (0..records.len() as u32).collect();
    let mut d = direct(text);
    decode_direct(
        &mut d,
        WriterKey::Id(1),
        AvroFraming::Confluent,
        &records,
        &idx,
    )
}

/// The batch of `bodies` decoded checking each string as it is read; `None` if any fails.
fn strict(text: &str, bodies: &[Vec<u8>]) -> Option<RecordBatch> {
    let mut d = direct(text);
    d.set_strict(true);
    for b in bodies {
        d.append(b).ok()?;
    }
    (!bodies.is_empty()).then(|| d.finish().expect("finish"))
}

#[test]
fn strings_that_are_not_utf8_reject_their_messages_only() {
    let text = r#"{"type":"record","name":"A","fields":[{"name":"s","type":"string"}]}"#;
    let s = |bytes: &[u8]| [&[bytes.len() as u8 * 2][..], bytes].concat();
    // The second and third are each half of "é": together the data is UTF-8, apart they are not.
    let bodies = [
        s(b"ok"),
        s(&[0xC3]),
        s(&[0xA9]),
        s(b"fine"),
        s(&[0xFF]),
        s(b"end"),
    ];
    let (batch, good, rejected) = decode(text, &bodies);
    assert_eq!(good, vec![0, 3, 5]);
    assert_eq!(
        rejected.iter().map(|r| r.record).collect::<Vec<_>>(),
        vec![1, 2, 4]
    );
    assert!(
        rejected.iter().all(|r| r.reason.contains("not UTF-8")),
        "{rejected:?}"
    );
    let batch = batch.expect("the good rows");
    let col = batch.column(0).as_string::<i32>();
    assert_eq!(
        col.iter().flatten().collect::<Vec<_>>(),
        vec!["ok", "fine", "end"]
    );
    // The decoder is back to checking strings a column at a time.
    let (batch, good, _) = decode(text, &bodies[..1]);
    assert_eq!((good.len(), batch.map(|b| b.num_rows())), (1, Some(1)));
}

#[test]
fn what_it_does_not_cover_is_left_to_arrow_avro() {
    let uncovered = [
        r#"{"type":"record","name":"A","fields":[{"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}}]}"#,
        r#"{"type":"record","name":"A","fields":[{"name":"f","type":{"type":"fixed","name":"F","size":4}}]}"#,
        r#"{"type":"record","name":"A","fields":[{"name":"u","type":["null","int","string"]}]}"#,
        r#"{"type":"record","name":"A","fields":[{"name":"u","type":{"type":"string","logicalType":"uuid"}}]}"#,
    ];
    for text in uncovered {
        let schema = AvroSchema::new(text.to_string());
        crate::decode::avro::arrow_schema_of(&schema, None).expect("arrow-avro decodes it");
        assert!(DirectDecoder::new(&schema).is_none(), "{text}");
    }
}

#[test]
fn a_named_type_used_twice_is_covered() {
    let text = r#"{"type":"record","name":"Order","namespace":"a","fields":[
      {"name":"bill","type":{"type":"record","name":"Addr","fields":[{"name":"city","type":"string"}]}},
      {"name":"ship","type":["null","Addr"]},
      {"name":"tier","type":{"type":"enum","name":"Tier","namespace":"b","symbols":["X","Y"]}},
      {"name":"was","type":"b.Tier"}]}"#;
    let mut d = direct(text);
    let mut body = Vec::new();
    for part in [&[4u8, b'B', b'e'][..], &[2, 4, b'P', b'a'], &[2], &[0]] {
        body.extend_from_slice(part);
    }
    d.append(&body).expect("a good row");
    let ours = d.finish().expect("finish");
    assert_eq!(Some(ours), arrow_avro(text, &[body]));
}

#[test]
fn an_array_count_past_the_bytes_left_is_refused_before_allocating() {
    let text = r#"{"type":"record","name":"A","fields":[{"name":"xs","type":{"type":"array","items":"long"}}]}"#;
    let mut d = direct(text);
    // A count of 2^40 items in a 7-byte message.
    let body = [0x80, 0x80, 0x80, 0x80, 0x80, 0x40, 0];
    assert_eq!(d.append(&body), Err(Fail::Truncated));
    assert!(d.is_empty());
}

#[test]
fn the_benchmarks_schema_is_covered() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/bench/order.avsc");
    let text = std::fs::read_to_string(path).expect("tests/bench/order.avsc");
    assert!(DirectDecoder::new(&AvroSchema::new(text)).is_some());
}
