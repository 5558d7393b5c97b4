use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use proptest::prelude::*;

use super::*;
use crate::config::LoadedConfig;

fn config(decode: &str) -> LoadedConfig {
    let text = format!(
        "source: {{ kafka: {{ brokers: embedded, group_id: g, topics: [t] }} }}\n\
         routes: [ {{ match: '.*', sink: {{ parquet: {{ path: out }} }} }} ]\n\
         decode: {decode}\n"
    );
    LoadedConfig::from_str(&text, Path::new("t.yaml")).unwrap()
}

fn rec<'a>(topic: &'a str, offset: i64, value: Option<&'a [u8]>) -> Record<'a> {
    Record {
        topic,
        partition: 0,
        offset,
        timestamp_ms: Some(1_000 + offset),
        key: Some(b"k"),
        value,
        headers: Default::default(),
    }
}

const SCHEMA: &str = "{ format: json, metadata: [_offset, _key], schemas: { t: { fields: { id: int64, amount: float64, c: 'struct<name: utf8>' } } } }";

#[test]
fn bad_messages_are_rejected_with_reasons_and_the_rest_goes_on() {
    let mut d = Decoder::new(&config(SCHEMA), None).unwrap();
    let values: Vec<Option<&[u8]>> = vec![
        Some(br#"{"id":1,"amount":1.5,"c":{"name":"a"}}"#),
        Some(br#"{"id":2,"amount":"lots"}"#), // wrong type
        Some(br#"{"id":3,"amount":2.5"#),     // truncated
        None,                                 // tombstone
        Some(br#"{"id":5}{"id":6}"#),         // two objects
        Some(b""),                            // nothing
        Some(b"5"),                           // not an object
        Some(br#"{"id":8,"extra":"ignored"}"#),
    ];
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| rec("t", i as i64, *v))
        .collect();
    let out = d.decode(&records);
    let rejected: Vec<u32> = out.rejected.iter().map(|r| r.record).collect();
    assert_eq!(rejected, vec![1, 2, 3, 4, 5, 6]);
    for r in &out.rejected {
        assert!(!r.reason.is_empty());
    }
    assert!(
        out.rejected[0].reason.contains("amount"),
        "{:?}",
        out.rejected[0]
    );
    assert!(
        out.rejected[1].reason.contains("truncated"),
        "{:?}",
        out.rejected[1]
    );
    assert_eq!(out.batches.len(), 1);
    let b = &out.batches[0];
    assert_eq!(b.records, vec![0, 7]);
    let ids = b
        .batch
        .column_by_name("id")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(ids.values().to_vec(), vec![1, 8]);
    let offsets = b
        .batch
        .column_by_name("_offset")
        .unwrap()
        .as_primitive::<Int64Type>();
    assert_eq!(offsets.values().to_vec(), vec![0, 7]);
    let keys = b.batch.column_by_name("_key").unwrap().as_string::<i32>();
    assert_eq!(keys.value(1), "k");
    // The decoder is not poisoned: the next poll decodes normally.
    let again = [rec("t", 9, Some(br#"{"id":9,"amount":0.5}"#))];
    let out = d.decode(&again);
    assert!(out.rejected.is_empty());
    assert_eq!(out.batches[0].batch.num_rows(), 1);
}

#[test]
fn one_batch_per_type_from_a_field_in_order() {
    let mut d = Decoder::new(&config("{ type_from: { field: kind } }"), None).unwrap();
    let values: [&[u8]; 5] = [
        br#"{"kind":"order","amount":1.0}"#,
        br#"{"kind":"payment","method":"card"}"#,
        br#"{"kind":"order","amount":2.0}"#,
        br#"{"amount":3.0}"#,
        br#"{"kind":"payment","method":"sepa"}"#,
    ];
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| rec("t", i as i64, Some(*v)))
        .collect();
    let out = d.decode(&records);
    assert_eq!(out.rejected.len(), 1);
    assert!(out.rejected[0].reason.contains("kind"));
    let types: Vec<&str> = out.batches.iter().map(|b| b.type_name.as_str()).collect();
    assert_eq!(types, vec!["order", "payment"]);
    assert_eq!(out.batches[0].records, vec![0, 2]);
    assert_eq!(out.batches[1].records, vec![1, 4]);
    // Inferred schemas differ per type: each batch is homogeneous.
    assert!(out.batches[0].batch.column_by_name("amount").is_some());
    assert!(out.batches[1].batch.column_by_name("amount").is_none());
    let amounts = out.batches[0].batch.column_by_name("amount").unwrap();
    let amounts = amounts.as_primitive::<Float64Type>();
    assert_eq!(amounts.values().to_vec(), vec![1.0, 2.0]);
}

#[test]
fn type_from_header() {
    let mut d = Decoder::new(&config("{ type_from: { header: t } }"), None).unwrap();
    let mut a = rec("x", 0, Some(br#"{"a":1}"#));
    a.headers = vec![("t", &b"alpha"[..])].into();
    let b = rec("x", 1, Some(br#"{"a":2}"#));
    let out = d.decode(&[a, b]);
    assert_eq!(out.batches.len(), 1);
    assert_eq!(out.batches[0].type_name, "alpha");
    assert_eq!(out.rejected.len(), 1);
    assert!(out.rejected[0].reason.contains("header"));
}

#[test]
fn type_field_scans_without_building_the_document() {
    assert_eq!(
        json::type_field(br#"{"a":[1,{"kind":"no"}],"kind":"yes"}"#, "kind").unwrap(),
        "yes"
    );
    assert!(json::type_field(br#"{"kind":1}"#, "kind").is_err());
    assert!(json::type_field(br#"{"kind":"x"} trailing"#, "kind").is_err());
    assert!(json::type_field(b"[]", "kind").is_err());
}

proptest! {
    /// Whatever the mix of good and bad messages, exactly the good ones come out, in order,
    /// with their values, and exactly the bad ones are rejected.
    #[test]
    fn decode_keeps_exactly_the_good_messages(kinds in proptest::collection::vec(0u8..6, 0..60)) {
        let mut d = Decoder::new(&config(SCHEMA), None).unwrap();
        let values: Vec<Vec<u8>> = kinds.iter().enumerate().map(|(i, k)| match k {
            0..=2 => format!(r#"{{"id":{i},"amount":{i}.5}}"#).into_bytes(),
            3 => format!(r#"{{"id":{i},"amount":"x"}}"#).into_bytes(),
            4 => format!(r#"{{"id":{i},"amo"#).into_bytes(),
            _ => b"[1,2]".to_vec(),
        }).collect();
        let records: Vec<Record> = values.iter().enumerate().map(|(i, v)| rec("t", i as i64, Some(v))).collect();
        let out = d.decode(&records);
        let good: Vec<u32> = kinds.iter().enumerate().filter(|(_, k)| **k <= 2).map(|(i, _)| i as u32).collect();
        let bad: Vec<u32> = kinds.iter().enumerate().filter(|(_, k)| **k > 2).map(|(i, _)| i as u32).collect();
        prop_assert_eq!(out.rejected.iter().map(|r| r.record).collect::<Vec<_>>(), bad);
        let kept: Vec<u32> = out.batches.iter().flat_map(|b| b.records.clone()).collect();
        prop_assert_eq!(&kept, &good);
        if let Some(b) = out.batches.first() {
            let ids = b.batch.column_by_name("id").unwrap().as_primitive::<Int64Type>();
            prop_assert_eq!(ids.values().iter().map(|&v| v as u32).collect::<Vec<_>>(), good);
        }
    }
}
