//! Avro: weir's decoder and encoder checked against fastavro (an independent implementation)
//! on generated records of every Avro type, alone and through Kafka, with poison messages.

use std::path::Path;
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
        .map(|(i, m)| Record {
            topic: "t",
            partition: 0,
            offset: i as i64,
            timestamp_ms: None,
            key: None,
            value: Some(m),
            headers: Vec::new(),
        })
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
    assert_eq!(dead.len(), poison.len(), "{}", w.logs(1));
    for (key, value, reason) in &poison {
        let d = dead
            .iter()
            .find(|d| d.key.as_deref() == Some(*key))
            .unwrap_or_else(|| panic!("no dead letter for {key}"));
        assert_eq!(&d.value, value, "{key}: original bytes kept");
        let error = &d.headers["weir.error"];
        assert!(error.contains(reason), "{key}: {error}");
        assert_eq!(d.headers["weir.stage"], "decode");
    }
    assert_eq!(w.committed_total(1), 404);
}
