//! What the fuzz targets share: a decoder for a config written once to a scratch folder, and the
//! fuzz input cut into Kafka messages, decoded as one poll with every message accounted for.

use std::path::PathBuf;

use weir::config::LoadedConfig;
use weir::decode::Decoder;
use weir::source::Record;

/// A decoder for `decode` (the YAML of the config's `decode:` section), with `files` (name,
/// text) written beside the config first.
pub fn decoder(name: &str, decode: &str, files: &[(&str, &str)]) -> Decoder {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("weir-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch folder");
    for (file, text) in files {
        std::fs::write(dir.join(file), text).expect("schema file");
    }
    let cfg = LoadedConfig::from_str(
        &format!(
            "source: {{ kafka: {{ brokers: embedded, group_id: g, topics: [t] }} }}\n\
             routes: [ {{ match: '.*', sink: {{ parquet: {{ path: out }} }} }} ]\n\
             decode: {decode}\n"
        ),
        &dir.join("weir.yaml"),
    )
    .expect("fuzz config");
    Decoder::new(&cfg, None).expect("fuzz decoder")
}

/// Cuts `data` into messages at each `0xFF 0x00` pair (a pair no framing starts with), decodes
/// them as one poll, and checks that each one is a row or a rejected message, never both or
/// neither.
pub fn decode_poll(decoder: &mut Decoder, data: &[u8]) {
    let mut messages = Vec::new();
    let mut rest = data;
    while let Some(i) = rest.windows(2).position(|w| w == [0xFF, 0x00]) {
        messages.push(&rest[..i]);
        rest = &rest[i + 2..];
    }
    messages.push(rest);
    let records: Vec<Record> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| Record::new("t", 0, i as i64, Some(m)))
        .collect();
    let out = decoder.decode(&records);
    if out.fatal.is_some() {
        return;
    }
    let rows: usize = out.batches.iter().map(|b| b.batch.num_rows()).sum();
    let listed: usize = out.batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(rows, listed, "each row names its message");
    assert_eq!(
        rows + out.rejected.len(),
        records.len(),
        "every message is a row or rejected"
    );
}
