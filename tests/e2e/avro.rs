//! Avro: weir's decoder and encoder checked against fastavro (an independent implementation)
//! on generated records of every Avro type, alone and through Kafka, with poison messages.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use weir::config::LoadedConfig;
use weir::decode::Decoder;
use weir::source::Record;

use crate::harness::*;

/// Generates `n` records of every type with fastavro into `dir`; returns the framed messages.
fn generate(dir: &Path, n: usize, seed: u64) -> Vec<Vec<u8>> {
    let args = [dir.display().to_string(), n.to_string(), seed.to_string()];
    let mut all = vec!["generate".to_string()];
    all.extend(args);
    let out = python_script("avro_cases.py", &all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let data = std::fs::read(dir.join("messages.bin")).unwrap();
    let mut messages = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        messages.push(data[pos + 4..pos + 4 + n].to_vec());
        pos += 4 + n;
    }
    assert_eq!(messages.len(), n);
    messages
}

fn check(args: &[String]) -> String {
    let out = python_script("avro_cases.py", args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn fastavro_records_of_every_type_decode_to_the_same_values() {
    let w = Workdir::new();
    let messages = generate(w.path(), 300, 7);
    let cfg = LoadedConfig::from_str(
        "source: { kafka: { brokers: embedded, group_id: g, topics: [t] } }\n\
         routes: [ { match: '.*', sink: { parquet: { path: out } } } ]\n\
         decode: { format: avro, avro: { ids: { 1: schema.avsc } } }\n",
        &w.path().join("weir.yaml"),
    )
    .unwrap();
    let records: Vec<Record> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Record::new("t", 0, i as i64, Some(m)))
        .collect();
    let out = Decoder::new(&cfg, None).unwrap().decode(&records);
    assert!(
        out.rejected.is_empty(),
        "{:?}",
        &out.rejected[..out.rejected.len().min(3)]
    );
    assert_eq!(out.batches.len(), 1);
    let b = &out.batches[0];
    assert_eq!(b.type_name, "com.acme.Everything");
    assert_eq!(b.batch.num_rows(), 300);
    let file = w.path().join("decoded.arrow");
    let mut writer = arrow_ipc::writer::FileWriter::try_new(
        std::fs::File::create(&file).unwrap(),
        &b.batch.schema(),
    )
    .unwrap();
    writer.write(&b.batch).unwrap();
    writer.finish().unwrap();
    let said = check(&[
        "check-arrow".into(),
        w.path().display().to_string(),
        file.display().to_string(),
    ]);
    assert!(said.contains("ok 300 rows agree"), "{said}");
}

#[test]
fn avro_round_trips_through_kafka_and_poison_is_dead_lettered() {
    let w = Workdir::new();
    let messages = generate(w.path(), 400, 11);
    let cluster = Cluster::new(&["avro-in", "avro-out", "weir-dlq"]);
    let mut produced: Vec<(String, String, Vec<u8>)> = messages
        .iter()
        .enumerate()
        .map(|(k, m)| ("avro-in".to_string(), format!("m-{k}"), m.clone()))
        .collect();
    // Poison: a truncated record, a bad magic byte, an unknown schema id, a length bomb.
    let good = &messages[5];
    let mut bomb = vec![0, 0, 0, 0, 1, 1, 2, 2];
    bomb.extend_from_slice(&[0; 12]); // float, double
    bomb.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]); // a 2^41-byte string
    let mut unknown = good.clone();
    unknown[1..5].copy_from_slice(&99u32.to_be_bytes());
    let mut bad_magic = good.clone();
    bad_magic[0] = 1;
    let poison: [(&str, Vec<u8>, &str); 4] = [
        ("truncated", good[..good.len() - 7].to_vec(), "truncated"),
        ("bad-magic", bad_magic, "first byte is 0x01"),
        ("unknown-id", unknown, "unknown schema id 99"),
        ("bomb", bomb, "a length claims more bytes"),
    ];
    for (key, value, _) in &poison {
        produced.push(("avro-in".into(), (*key).to_string(), value.clone()));
    }
    let yaml = format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-avro
    topics: [avro-in]
    batch: {{ max_records: 1000, max_wait: 50ms }}
    until_idle: 3s
decode:
  format: avro
  metadata: [_offset, _key]
  avro: {{ ids: {{ 1: schema.avsc }} }}
routes:
  - match: com.acme.Everything
    sink:
      kafka: {{ topic: avro-out, key: _key, format: avro, avro: {{ schema: schema.avsc, schema_id: 1 }} }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        brokers = cluster.brokers()
    );
    let config = w.write_config(&yaml);
    let mut child = w.spawn(&config, 1);
    cluster.produce(&produced);
    let status = w.wait(&mut child, 1, Duration::from_secs(90));
    assert!(status.success(), "{}", w.logs(1));

    let out = cluster.read_topic("avro-out", 400);
    assert_eq!(out.len(), 400, "{}", w.logs(1));
    // Keys kept: the key column came from the `_key` metadata.
    assert!(out
        .iter()
        .all(|m| m.key.as_deref().is_some_and(|k| k.starts_with("m-"))));
    let mut framed = Vec::new();
    for m in &out {
        framed.extend_from_slice(&(m.value.len() as u32).to_be_bytes());
        framed.extend_from_slice(&m.value);
    }
    let file = w.path().join("out.bin");
    std::fs::write(&file, framed).unwrap();
    let said = check(&[
        "check-avro".into(),
        w.path().display().to_string(),
        file.display().to_string(),
        "--any-order".into(),
    ]);
    assert!(said.contains("ok 400 rows agree"), "{said}");

    let dead = cluster.read_topic("weir-dlq", poison.len());
    assert_decode_dead_letters(&dead, &poison, &w.logs(1));
    assert_eq!(w.committed_total(1), 404);
}

const ORDER_V1: &str = r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[
  {"name":"id","type":"string"},{"name":"amount","type":"double"},
  {"name":"tier","type":{"type":"enum","name":"Tier","symbols":["BRONZE","GOLD"]}}]}"#;
const ORDER_V2: &str = r#"{"type":"record","name":"Order","namespace":"com.acme","fields":[
  {"name":"id","type":"string"},{"name":"amount","type":"double"},
  {"name":"tier","type":{"type":"enum","name":"Tier","symbols":["BRONZE","GOLD"]}},
  {"name":"note","type":["null","string"],"default":null}]}"#;

fn zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn avro_str(out: &mut Vec<u8>, s: &str) {
    zigzag(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

/// An `Order` framed with schema `id`; `note` only for v2 writers.
fn order(id: u32, order_id: &str, amount: f64, gold: bool, note: Option<Option<&str>>) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    avro_str(&mut v, order_id);
    v.extend_from_slice(&amount.to_le_bytes());
    zigzag(&mut v, gold as i64);
    match note {
        None => {}
        Some(None) => zigzag(&mut v, 0),
        Some(Some(n)) => {
            zigzag(&mut v, 1);
            avro_str(&mut v, n);
        }
    }
    v
}

#[test]
fn avro_through_the_schema_registry_survives_an_outage_and_registers_what_it_writes() {
    use crate::registry_server::TestRegistry;
    let registry = TestRegistry::start();
    let v1 = registry.register("orders-value", "AVRO", ORDER_V1, &[]);
    let v2 = registry.register("orders-value", "AVRO", ORDER_V2, &[]);
    assert_ne!(v1, v2);
    let w = Workdir::new();
    std::fs::write(w.path().join("order-v2.avsc"), ORDER_V2).unwrap();
    let cluster = Cluster::new(&["orders", "orders-out", "weir-dlq"]);
    let mut messages = Vec::new();
    for k in 0..300 {
        let key = format!("o-{k}");
        let value = if k % 2 == 0 {
            order(v1, &key, k as f64, k % 3 == 0, None)
        } else {
            order(v2, &key, k as f64, k % 3 == 0, Some(Some("hi")))
        };
        messages.push(("orders".to_string(), key, value));
    }
    messages.push((
        "orders".into(),
        "unknown".into(),
        order(4242, "x", 1.0, false, None),
    ));
    // The registry is down when weir starts: it must wait, not dead-letter good data.
    // One message per batch: rows from each writer reach the sink in batches of their own,
    // whose fields carry different metadata, and must still register one schema.
    registry.fail_next(6, 503);
    let yaml = format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-registry
    topics: [orders]
    batch: {{ max_records: 1, max_wait: 50ms }}
    until_idle: 3s
schema_registry: {{ url: "{url}", max_backoff: 200ms, timeout: 2s }}
decode:
  format: avro
  avro: {{ reader_schemas: {{ com.acme.Order: order-v2.avsc }} }}
routes:
  - match: com.acme.Order
    sink:
      kafka:
        topic: orders-out
        format: avro
        avro: {{ record_name: com.acme.CleanOrder, subject_strategy: record_name }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        brokers = cluster.brokers(),
        url = registry.url()
    );
    let config = w.write_config(&yaml);
    let mut child = w.spawn(&config, 1);
    cluster.produce(&messages);
    let status = w.wait(&mut child, 1, Duration::from_secs(90));
    assert!(status.success(), "{}", w.logs(1));
    assert!(
        w.logs(1).contains("503"),
        "the outage was retried: {}",
        w.logs(1)
    );

    let dead = cluster.read_topic("weir-dlq", 1);
    assert_eq!(dead.len(), 1, "only the unknown id: {}", w.logs(1));
    assert_eq!(dead[0].key.as_deref(), Some("unknown"));
    assert!(
        dead[0].headers["weir.error"].contains("unknown schema id 4242"),
        "{:?}",
        dead[0].headers
    );

    // What weir wrote is registered under the record name, and reads back through the registry.
    let client = weir::registry::RegistryClient::new(&weir::registry::RegistryConfig {
        url: registry.url(),
        ..Default::default()
    })
    .unwrap();
    let written = client.latest("com.acme.CleanOrder").unwrap();
    let out = cluster.read_topic("orders-out", 300);
    assert_eq!(out.len(), 300);
    assert!(out
        .iter()
        .all(|m| m.value[1..5] == written.id.to_be_bytes()));
    let cfg = LoadedConfig::from_str(
        &format!(
            "source: {{ kafka: {{ brokers: embedded, group_id: g, topics: [t] }} }}\n\
             routes: [ {{ match: '.*', sink: {{ parquet: {{ path: out }} }} }} ]\n\
             schema_registry: {{ url: \"{}\" }}\n\
             decode: {{ format: avro }}\n",
            registry.url()
        ),
        &w.path().join("check.yaml"),
    )
    .unwrap();
    let records: Vec<Record> = out
        .iter()
        .enumerate()
        .map(|(i, m)| Record::new("orders-out", 0, i as i64, Some(&m.value)))
        .collect();
    let registry_client = Arc::new(client);
    let decoded = Decoder::new(&cfg, Some(registry_client))
        .unwrap()
        .decode(&records);
    assert!(
        decoded.rejected.is_empty(),
        "{:?}",
        decoded.rejected.first()
    );
    assert_eq!(decoded.batches.len(), 1);
    let b = &decoded.batches[0].batch;
    assert_eq!(decoded.batches[0].type_name, "com.acme.CleanOrder");
    let notes = b.column_by_name("note").unwrap();
    let ids = b.column_by_name("id").unwrap();
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let (ids, notes) = (ids.as_string::<i32>(), notes.as_string::<i32>());
    for i in 0..b.num_rows() {
        let k: usize = ids.value(i)[2..].parse().unwrap();
        // v1 writers had no note: the reader schema's default (null); v2 wrote "hi".
        assert_eq!(
            notes.is_null(i),
            k.is_multiple_of(2),
            "row {i} ({})",
            ids.value(i)
        );
    }
    let tiers = arrow_cast::display::ArrayFormatter::try_new(
        b.column_by_name("tier").unwrap().as_ref(),
        &Default::default(),
    )
    .unwrap();
    let gold = (0..b.num_rows())
        .filter(|&i| tiers.value(i).to_string() == "GOLD")
        .count();
    assert_eq!(gold, 100);
}
