//! Avro to Arrow, for a small flat record (about 100 bytes), a wide nested one, and the pipeline
//! benchmark's order:
//! - weir's decode stage (Confluent framing, weir's own columnar decoder for the schemas it
//!   covers) against the apache-avro `Value` path (one `Value` tree per message, the route that
//!   row-oriented consumers take);
//! - weir's decoder alone against arrow-avro's, fed the same messages one at a time (what weir
//!   used before, and still uses for what its own does not cover).
//!
//! ```sh
//! cargo bench -p weir --bench avro
//! ```
//!
//! The `Value` path stops at the `Value` tree: turning it into Arrow columns would cost more
//! still, so its rows/s are an upper bound for that route. A table at the end gives rows/s,
//! MB/s and the ratio, from this one run.

// Benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use apache_avro::types::Value;
use criterion::{BenchmarkId, Throughput};
use weir::config::LoadedConfig;
use weir::decode::Decoder;
use weir::source::Record;

const ROWS: usize = 10_000;

/// A record shape: its name, its schema, and record number -> record.
type Shape<'a> = (&'a str, &'a str, fn(usize) -> Value);

const SMALL: &str = r#"{"type":"record","name":"Click","namespace":"bench","fields":[
  {"name":"id","type":"long"},{"name":"user","type":"string"},{"name":"session","type":"string"},
  {"name":"url","type":"string"},{"name":"amount","type":"double"},{"name":"country","type":"string"},
  {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"ok","type":"boolean"},{"name":"qty","type":"int"}]}"#;

fn small(i: usize) -> Value {
    Value::Record(vec![
        ("id".into(), Value::Long(i as i64 * 7919)),
        (
            "user".into(),
            Value::String(format!("user-{:06}", i % 100_000)),
        ),
        (
            "session".into(),
            Value::String(format!("s-{:016x}", i * 2654435761)),
        ),
        (
            "url".into(),
            Value::String(format!("https://shop.example/p/{}", i % 5000)),
        ),
        ("amount".into(), Value::Double(i as f64 * 0.37)),
        (
            "country".into(),
            Value::String(["DE", "FR", "US", "JP"][i % 4].into()),
        ),
        (
            "ts".into(),
            Value::TimestampMillis(1_700_000_000_000 + i as i64),
        ),
        ("ok".into(), Value::Boolean(i.is_multiple_of(3))),
        ("qty".into(), Value::Int((i % 17) as i32)),
    ])
}

/// The pipeline benchmark's order (`tests/bench/order.avsc`): strings, a nested record and an
/// array of records, about 85 bytes.
const ORDER: &str = include_str!("../../tests/bench/order.avsc");

/// The demo's sample order `i`, as the pipeline benchmark produces it.
fn order(i: usize) -> Value {
    use rand::SeedableRng;
    static SCHEMA: std::sync::OnceLock<apache_avro::Schema> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| apache_avro::Schema::parse_str(ORDER).unwrap());
    let mut rng = rand::rngs::SmallRng::seed_from_u64(i as u64);
    let (_, _, json) = weir::source::embedded::sample_message(2 * i as u64, false, &mut rng);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    Value::from(json).resolve(schema).unwrap()
}

/// 24 scalar fields, a nested record with an array, an array of records, a map, a union and an
/// enum.
fn wide_schema() -> String {
    let mut fields = Vec::new();
    for k in 0..8 {
        fields.push(format!(r#"{{"name":"l{k}","type":"long"}}"#));
        fields.push(format!(r#"{{"name":"s{k}","type":"string"}}"#));
        fields.push(format!(r#"{{"name":"d{k}","type":"double"}}"#));
    }
    fields.push(
        r#"{"name":"customer","type":{"type":"record","name":"Customer","fields":[
        {"name":"id","type":"string"},{"name":"since","type":"long"},
        {"name":"tags","type":{"type":"array","items":"string"}}]}}"#
            .into(),
    );
    fields.push(r#"{"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
        {"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":"double"}]}}}"#.into());
    fields.push(r#"{"name":"attrs","type":{"type":"map","values":"long"}}"#.into());
    fields.push(r#"{"name":"note","type":["null","string"]}"#.into());
    fields.push(r#"{"name":"tier","type":{"type":"enum","name":"Tier","symbols":["FREE","SILVER","GOLD"]}}"#.into());
    format!(
        r#"{{"type":"record","name":"Order","namespace":"bench","fields":[{}]}}"#,
        fields.join(",")
    )
}

fn wide(i: usize) -> Value {
    let mut f = Vec::new();
    for k in 0..8 {
        f.push((format!("l{k}"), Value::Long((i * (k + 1)) as i64)));
        f.push((
            format!("s{k}"),
            Value::String(format!("value-{k}-{}", i % 1000)),
        ));
        f.push((format!("d{k}"), Value::Double(i as f64 / (k + 1) as f64)));
    }
    f.push((
        "customer".into(),
        Value::Record(vec![
            ("id".into(), Value::String(format!("c-{}", i % 777))),
            ("since".into(), Value::Long(1_600_000_000 + i as i64)),
            (
                "tags".into(),
                Value::Array(vec![Value::String("a".into()), Value::String("vip".into())]),
            ),
        ]),
    ));
    let items = (0..3)
        .map(|j| {
            Value::Record(vec![
                (
                    "sku".into(),
                    Value::String(format!("sku-{}", (i + j) % 300)),
                ),
                ("qty".into(), Value::Int(j as i32 + 1)),
                ("price".into(), Value::Double(9.99 * (j + 1) as f64)),
            ])
        })
        .collect();
    f.push(("items".into(), Value::Array(items)));
    f.push((
        "attrs".into(),
        Value::Map(
            [
                ("x".to_string(), Value::Long(1)),
                ("y".to_string(), Value::Long(i as i64)),
            ]
            .into(),
        ),
    ));
    f.push((
        "note".into(),
        if i.is_multiple_of(2) {
            Value::Union(0, Box::new(Value::Null))
        } else {
            Value::Union(1, Box::new(Value::String("gift".into())))
        },
    ));
    f.push((
        "tier".into(),
        Value::Enum((i % 3) as u32, ["FREE", "SILVER", "GOLD"][i % 3].into()),
    ));
    Value::Record(f)
}

/// Confluent-framed messages (schema id 1) of `n` records.
fn messages(schema: &apache_avro::Schema, n: usize, make: fn(usize) -> Value) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut m = vec![0, 0, 0, 0, 1];
            m.extend(apache_avro::to_avro_datum(schema, make(i)).unwrap());
            m
        })
        .collect()
}

/// weir's own decoder, fed message bodies (the Confluent prefix cut off).
fn direct_decoder(schema: &str) -> weir::decode::avro::DirectDecoder {
    let avro = arrow_avro::schema::AvroSchema::new(schema.to_string());
    weir::decode::avro::DirectDecoder::new(&avro).expect("a covered schema")
}

/// arrow-avro's streaming decoder for Confluent-framed messages of schema id 1.
fn arrow_avro_decoder(schema: &str) -> arrow_avro::reader::Decoder {
    use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    store
        .set(Fingerprint::Id(1), AvroSchema::new(schema.to_string()))
        .unwrap();
    arrow_avro::reader::ReaderBuilder::new()
        .with_batch_size(ROWS)
        .with_tz(arrow_avro::codec::Tz::Utc)
        .with_writer_schema_store(store)
        .with_active_fingerprint(Fingerprint::Id(1))
        .build_decoder()
        .unwrap()
}

fn decoder(dir: &Path, schema: &str) -> Decoder {
    std::fs::write(dir.join("s.avsc"), schema).unwrap();
    let cfg = LoadedConfig::from_str(
        "source: { kafka: { brokers: embedded, group_id: g, topics: [t], batch: { max_records: 10000 } } }\n\
         routes: [ { match: '.*', sink: { parquet: { path: out } } } ]\n\
         decode: { format: avro, avro: { ids: { 1: s.avsc } } }\n",
        &dir.join("bench.yaml"),
    )
    .unwrap();
    Decoder::new(&cfg, None).unwrap()
}

fn records(messages: &[Vec<u8>]) -> Vec<Record<'_>> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| Record::new("t", 0, i as i64, Some(m)))
        .collect()
}

fn main() {
    let (mut c, dir) = common::criterion(Duration::from_secs(3));
    let tmp = tempfile::tempdir().unwrap();
    let wide_text = wide_schema();
    let shapes: [Shape; 3] = [
        ("small", SMALL, small),
        ("wide", &wide_text, wide),
        ("order", ORDER, order),
    ];
    let mut sizes = Vec::new();
    for (name, text, make) in shapes {
        let schema = apache_avro::Schema::parse_str(text).unwrap();
        let msgs = messages(&schema, ROWS, make);
        let bytes: usize = msgs.iter().map(Vec::len).sum();
        sizes.push((name, bytes));
        let recs = records(&msgs);
        let mut d = decoder(tmp.path(), text);
        let check = d.decode(&recs);
        assert!(check.rejected.is_empty(), "{:?}", check.rejected.first());
        assert_eq!(check.batches[0].batch.num_rows(), ROWS);
        let mut group = c.benchmark_group(format!("avro-{name}"));
        group.throughput(Throughput::Elements(ROWS as u64));
        group.bench_with_input(BenchmarkId::new("weir-arrow", ROWS), &recs, |b, recs| {
            b.iter(|| d.decode(recs).batches[0].batch.num_rows())
        });
        let mut direct = direct_decoder(text);
        group.bench_with_input(BenchmarkId::new("direct", ROWS), &msgs, |b, msgs| {
            b.iter(|| {
                for m in msgs {
                    direct.append(&m[5..]).unwrap();
                }
                direct.finish().unwrap().num_rows()
            })
        });
        let mut arrow_avro = arrow_avro_decoder(text);
        group.bench_with_input(BenchmarkId::new("arrow-avro", ROWS), &msgs, |b, msgs| {
            b.iter(|| {
                for m in msgs {
                    arrow_avro.decode(m).unwrap();
                }
                arrow_avro.flush().unwrap().unwrap().num_rows()
            })
        });
        group.bench_with_input(
            BenchmarkId::new("apache-avro-value", ROWS),
            &msgs,
            |b, msgs| {
                b.iter(|| {
                    msgs.iter()
                        .map(|m| apache_avro::from_avro_datum(&schema, &mut &m[5..], None).unwrap())
                        .filter(|v| matches!(v, Value::Record(_)))
                        .count()
                })
            },
        );
        group.finish();
    }
    println!("\n| record | bytes/msg | weir's decode stage rows/s | MB/s | its decoder alone rows/s | arrow-avro rows/s | arrow-avro / weir's decoder (time) | apache-avro Value rows/s | Value / weir's stage (time) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, bytes) in sizes {
        let median = |variant| common::median(&dir, &format!("avro-{name}"), variant, ROWS);
        let (Some(weir), Some(direct), Some(arrow), Some(value)) = (
            median("weir-arrow"),
            median("direct"),
            median("arrow-avro"),
            median("apache-avro-value"),
        ) else {
            continue;
        };
        let rows = |secs: f64| ROWS as f64 / secs / 1e6;
        println!(
            "| {name} | {} | {:.2} M | {:.0} | {:.2} M | {:.2} M | {:.2}x | {:.2} M | {:.1}x |",
            bytes / ROWS,
            rows(weir),
            bytes as f64 / weir / 1e6,
            rows(direct),
            rows(arrow),
            arrow / direct,
            rows(value),
            value / weir
        );
    }
}
