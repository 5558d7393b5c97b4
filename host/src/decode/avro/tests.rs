//! Avro decoding through [`Decoder`]: framing, bad messages, schema evolution.

use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::Array;
use proptest::prelude::*;

use super::*;
use crate::config::LoadedConfig;
use crate::decode::Decoder;

const V1: &str = r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[
  {"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"amount","type":"double"}]}"#;
const V2: &str = r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[
  {"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"amount","type":"double"},
  {"name":"email","type":["null","string"],"default":null}]}"#;
const PAYMENT: &str =
    r#"{"type":"record","name":"com.acme.Payment","fields":[{"name":"ok","type":"boolean"}]}"#;

/// Writes the schemas into a temp folder and loads a config naming them.
fn config(dir: &Path, decode: &str) -> LoadedConfig {
    for (name, text) in [("v1.avsc", V1), ("v2.avsc", V2), ("payment.avsc", PAYMENT)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let text = format!(
        "source: {{ kafka: {{ brokers: embedded, group_id: g, topics: [t] }} }}\n\
         routes: [ {{ match: '.*', sink: {{ parquet: {{ path: out }} }} }} ]\n\
         decode: {decode}\n"
    );
    LoadedConfig::from_str(&text, &dir.join("t.yaml")).unwrap()
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "weir-avro-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

fn string(out: &mut Vec<u8>, s: &str) {
    long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// A Confluent-framed `Order` v1 (or v2 with an email).
fn order(id: u32, order_id: i64, name: &str, amount: f64, email: Option<Option<&str>>) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    long(&mut v, order_id);
    string(&mut v, name);
    v.extend_from_slice(&amount.to_le_bytes());
    match email {
        None => {}
        Some(None) => long(&mut v, 0),
        Some(Some(e)) => {
            long(&mut v, 1);
            string(&mut v, e);
        }
    }
    v
}

fn rec(offset: i64, value: Option<&[u8]>) -> Record<'_> {
    Record::new("t", 0, offset, value)
}

fn ids(b: &RecordBatch) -> Vec<i64> {
    b.column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

#[test]
fn bad_messages_are_rejected_with_reasons_and_the_good_ones_kept() {
    let dir = tempdir();
    let cfg = config(
        &dir,
        "{ format: avro, metadata: [_offset], avro: { ids: { 1: v1.avsc } } }",
    );
    let mut d = Decoder::new(&cfg, None).unwrap();
    let good1 = order(1, 10, "ann", 1.5, None);
    let mut truncated = order(1, 11, "bob", 2.5, None);
    truncated.truncate(truncated.len() - 3);
    let mut trailing = order(1, 12, "cy", 3.5, None);
    trailing.extend_from_slice(&[1, 2]);
    let mut bomb = vec![0, 0, 0, 0, 1];
    long(&mut bomb, 13);
    long(&mut bomb, 1 << 40); // a string "of a terabyte" in a 20-byte message
    bomb.extend_from_slice(b"tiny");
    let unknown = order(9, 14, "dee", 4.5, None);
    let good2 = order(1, 15, "eve", 5.5, None);
    let values: Vec<Option<&[u8]>> = vec![
        Some(&good1),
        Some(&truncated),
        Some(&trailing),
        Some(&bomb),
        Some(br#"{"id": 1}"#),
        Some(&unknown),
        None,
        Some(&good2),
        Some(&[0, 0, 1]),
    ];
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| rec(i as i64, *v))
        .collect();
    let out = d.decode(&records);
    assert_eq!(out.batches.len(), 1);
    let b = &out.batches[0];
    assert_eq!(b.type_name, "com.acme.Order");
    assert_eq!(b.records, vec![0, 7]);
    assert_eq!(ids(&b.batch), vec![10, 15]);
    let names = b.batch.column_by_name("name").unwrap().as_string::<i32>();
    assert_eq!(names.value(1), "eve");
    let amounts = b
        .batch
        .column_by_name("amount")
        .unwrap()
        .as_primitive::<Float64Type>();
    assert_eq!(amounts.value(1), 5.5);
    assert!(b.batch.column_by_name("_offset").is_some());
    let reasons: Vec<(u32, &str)> = out
        .rejected
        .iter()
        .map(|r| (r.record, r.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 7, "{reasons:?}");
    assert!(reasons[0].1.contains("truncated"), "{reasons:?}");
    assert!(reasons[1].1.contains("trailing bytes"), "{reasons:?}");
    assert_eq!(reasons[2].0, 3);
    assert!(
        reasons[3].1.contains("first byte is 0x7b") && reasons[3].1.contains("JSON"),
        "{reasons:?}"
    );
    assert!(reasons[4].1.contains("unknown schema id 9"), "{reasons:?}");
    assert!(reasons[5].1.contains("tombstone"), "{reasons:?}");
    assert!(
        reasons[6].1.contains("truncated Confluent header"),
        "{reasons:?}"
    );
    // The decoder is reusable after failures.
    let again = [good1.clone()];
    let records: Vec<Record> = again.iter().map(|v| rec(0, Some(v))).collect();
    assert_eq!(ids(&d.decode(&records).batches[0].batch), vec![10]);
}

#[test]
fn a_new_writer_schema_starts_a_batch_unless_a_reader_schema_joins_them() {
    let dir = tempdir();
    let msgs = [
        order(1, 1, "a", 1.0, None),
        order(2, 2, "b", 2.0, Some(Some("b@x"))),
        order(1, 3, "c", 3.0, None),
        order(2, 4, "d", 4.0, Some(None)),
    ];
    let records: Vec<Record> = msgs
        .iter()
        .enumerate()
        .map(|(i, v)| rec(i as i64, Some(v)))
        .collect();

    let cfg = config(
        &dir,
        "{ format: avro, avro: { ids: { 1: v1.avsc, 2: v2.avsc } } }",
    );
    let out = Decoder::new(&cfg, None).unwrap().decode(&records);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.batches.len(), 2);
    assert_eq!(ids(&out.batches[0].batch), vec![1, 3]);
    assert_eq!(out.batches[0].batch.num_columns(), 3);
    assert_eq!(ids(&out.batches[1].batch), vec![2, 4]);
    assert_eq!(out.batches[1].batch.num_columns(), 4);

    let cfg = config(
        &dir,
        "{ format: avro, avro: { ids: { 1: v1.avsc, 2: v2.avsc }, reader_schemas: { com.acme.Order: v2.avsc } } }",
    );
    let out = Decoder::new(&cfg, None).unwrap().decode(&records);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    assert_eq!(out.batches.len(), 1, "one batch per type, in poll order");
    let b = &out.batches[0];
    assert_eq!(b.records, vec![0, 1, 2, 3]);
    assert_eq!(ids(&b.batch), vec![1, 2, 3, 4]);
    let email = b.batch.column_by_name("email").unwrap().as_string::<i32>();
    assert!(email.is_null(0), "v1 rows take the default");
    assert_eq!(email.value(1), "b@x");
    assert!(email.is_null(3));

    // A reader schema that projects: only the fields it names.
    std::fs::write(
        dir.join("narrow.avsc"),
        r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"id","type":"long"}]}"#,
    )
    .unwrap();
    let cfg = config(
        &dir,
        "{ format: avro, avro: { ids: { 1: v1.avsc, 2: v2.avsc }, reader_schemas: { com.acme.Order: narrow.avsc } } }",
    );
    let out = Decoder::new(&cfg, None).unwrap().decode(&records);
    assert_eq!(out.batches.len(), 1);
    assert_eq!(out.batches[0].batch.num_columns(), 1);
    assert_eq!(ids(&out.batches[0].batch), vec![1, 2, 3, 4]);
}

#[test]
fn types_come_from_the_writer_schema_and_single_object_encoding_is_read() {
    let dir = tempdir();
    let cfg = config(
        &dir,
        "{ format: avro, avro: { framing: single_object, schemas: [v1.avsc, payment.avsc] } }",
    );
    let fp = |text: &str| {
        crate::sink::avro::rabin(&arrow_avro::schema::AvroSchema::new(text.to_string())).unwrap()
    };
    let mut order_msg = vec![0xC3, 0x01];
    order_msg.extend_from_slice(&fp(V1).to_le_bytes());
    long(&mut order_msg, 7);
    string(&mut order_msg, "x");
    order_msg.extend_from_slice(&1.0f64.to_le_bytes());
    let mut payment = vec![0xC3, 0x01];
    payment.extend_from_slice(&fp(PAYMENT).to_le_bytes());
    payment.push(1);
    let mut unknown = vec![0xC3, 0x01];
    unknown.extend_from_slice(&42u64.to_le_bytes());
    let values = [order_msg, payment, unknown];
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| rec(i as i64, Some(v)))
        .collect();
    let out = Decoder::new(&cfg, None).unwrap().decode(&records);
    let types: Vec<&str> = out.batches.iter().map(|b| b.type_name.as_str()).collect();
    assert_eq!(types, vec!["com.acme.Order", "com.acme.Payment"]);
    assert_eq!(ids(&out.batches[0].batch), vec![7]);
    assert!(out.batches[1].batch.column(0).as_boolean().value(0));
    assert_eq!(out.rejected.len(), 1);
    assert!(
        out.rejected[0]
            .reason
            .contains("fingerprint 000000000000002a"),
        "{:?}",
        out.rejected
    );
}

#[test]
fn config_problems_are_reported() {
    let dir = tempdir();
    std::fs::write(dir.join("v1.avsc"), V1).unwrap();
    std::fs::write(dir.join("bad.avsc"), "{\"type\": \"record\"").unwrap();
    let text = "source: { kafka: { brokers: embedded, group_id: g, topics: [t] } }\n\
         routes: [ { match: '.*', sink: { parquet: { path: out } } } ]\n\
         decode: { format: avro, type_from: { field: kind }, avro: { framing: single_object, ids: { 1: bad.avsc } } }\n";
    let e = LoadedConfig::from_str(text, &dir.join("t.yaml"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("decode.type_from: `field` is for JSON"), "{e}");
    assert!(
        e.contains("decode.avro.ids.1:") && e.contains("bad.avsc"),
        "{e}"
    );
    assert!(e.contains("framing is single_object"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Good messages mixed with random bytes behind a valid header: every good message comes
    /// out with its values, in order, and every message is either kept or rejected, once.
    #[test]
    fn good_messages_survive_any_garbage_around_them(
        msgs in proptest::collection::vec(
            prop_oneof![
                (any::<i64>(), "[a-zé]{0,12}", any::<f64>())
                    .prop_map(|(id, name, amount)| (true, order(1, id, &name, amount, None))),
                proptest::collection::vec(any::<u8>(), 0..24).prop_map(|tail| {
                    let mut v = vec![0, 0, 0, 0, 1];
                    v.extend(tail);
                    (false, v)
                }),
            ],
            1..40,
        )
    ) {
        let dir = tempdir();
        let cfg = config(&dir, "{ format: avro, avro: { ids: { 1: v1.avsc } } }");
        let mut d = Decoder::new(&cfg, None).unwrap();
        let records: Vec<Record> = msgs.iter().enumerate().map(|(i, (_, v))| rec(i as i64, Some(v))).collect();
        let out = d.decode(&records);
        let kept: Vec<u32> = out.batches.iter().flat_map(|b| b.records.iter().copied()).collect();
        let mut all: Vec<u32> = kept.iter().copied().chain(out.rejected.iter().map(|r| r.record)).collect();
        all.sort_unstable();
        prop_assert_eq!(all, (0..msgs.len() as u32).collect::<Vec<_>>());
        let mut rows = std::collections::HashMap::new();
        for b in &out.batches {
            let got = ids(&b.batch);
            for (row, &r) in b.records.iter().enumerate() {
                rows.insert(r, got[row]);
            }
        }
        for (i, (good, value)) in msgs.iter().enumerate() {
            if *good {
                let id = rows.get(&(i as u32));
                prop_assert!(id.is_some(), "good message {} was rejected: {:?}", i, out.rejected);
                let mut v = Vec::new();
                long(&mut v, *id.unwrap_or(&0));
                prop_assert!(value[5..].starts_with(&v), "message {} decoded to another id", i);
            }
        }
    }
}

#[test]
fn a_writer_that_does_not_resolve_to_the_reader_schema_rejects_each_message_with_why() {
    let dir = tempdir();
    // A field the writer lacks, without a default: v1 can't be read with it.
    std::fs::write(
        dir.join("zip.avsc"),
        r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[{"name":"id","type":"long"},{"name":"zip","type":"string"}]}"#,
    )
    .unwrap();
    let cfg = config(
        &dir,
        "{ format: avro, avro: { ids: { 1: v1.avsc }, reader_schemas: { com.acme.Order: zip.avsc } } }",
    );
    let mut d = Decoder::new(&cfg, None).unwrap();
    let msgs: Vec<Vec<u8>> = (0..3).map(|i| order(1, i, "a", 1.0, None)).collect();
    let records: Vec<Record> = msgs
        .iter()
        .enumerate()
        .map(|(i, v)| rec(i as i64, Some(v)))
        .collect();
    for _ in 0..2 {
        let out = d.decode(&records);
        assert!(out.batches.is_empty());
        assert_eq!(out.rejected.len(), 3);
        for r in &out.rejected {
            assert!(
                r.reason.contains("does not resolve to the reader schema"),
                "{}",
                r.reason
            );
        }
    }
}
