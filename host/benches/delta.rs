//! JSON to Delta Lake: messages shaped like kafka-delta-ingest's web-request fixture (about
//! 300 bytes each) decoded into Arrow and appended to a local Delta table through weir's sink
//! (Parquet with zstd, one commit with the `txn` offsets per run of 100k messages).
//!
//! ```sh
//! cargo bench -p weir --bench delta
//! ```
//!
//! No Kafka here: this is the decode + sink cost per message, the ceiling for a JSON-to-Delta
//! route (the full pipeline against a broker is the suite of issue 7). A table at the end gives
//! msgs/s and MB/s for decode alone and for decode + Delta, from this one run.

// Benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use criterion::{BenchmarkId, Throughput};
use weir::config::{DeltaSinkConfig, LoadedConfig};
use weir::decode::Decoder;
use weir::offsets::OffsetTracker;
use weir::sink::delta::DeltaSink;
use weir::source::Record;

const MESSAGES: usize = 100_000;
const BATCH: usize = 10_000;

fn web_request(i: usize) -> Vec<u8> {
    format!(
        r#"{{"meta":{{"producer":{{"timestamp":"2026-11-23T10:{:02}:{:02}.{:03}Z"}},"kafka":{{"topic":"web_requests"}}}},"method":"{}","session_id":"{:08x}-8ee4-4d3b-9c21-{:012x}","status":{},"url":"http://www.example.com/api/v1/orders/{}","uuid":"{:08x}-1d5f-4a9b-b5c1-{:012x}","bytes":{}}}"#,
        i / 60_000 % 60,
        i / 1000 % 60,
        i % 1000,
        ["GET", "POST", "PUT", "DELETE"][i % 4],
        i * 2_654_435_761 % 0xffff_ffff,
        i,
        [200, 201, 404, 500][i % 7 % 4],
        i % 50_000,
        i * 40_503 % 0xffff_ffff,
        i * 7,
        i * 13 % 9000
    )
    .into_bytes()
}

fn decoder(dir: &Path) -> Decoder {
    let cfg = LoadedConfig::from_str(
        "source: { kafka: { brokers: embedded, group_id: g, topics: [web_requests] } }\n\
         routes: [ { match: '.*', sink: { parquet: { path: out } } } ]\n\
         decode: { schemas: { web_requests: { fields: { meta: 'struct<producer: struct<timestamp: utf8>, kafka: struct<topic: utf8>>', method: utf8, session_id: utf8, status: int32, url: utf8, uuid: utf8, bytes: int64 } } } }\n",
        &dir.join("weir.yaml"),
    )
    .unwrap();
    Decoder::new(&cfg, None).unwrap()
}

/// Decodes every batch and, with a sink, writes it; commits at the end.
fn run(decoder: &mut Decoder, batches: &[Vec<Record<'_>>], sink: Option<&mut DeltaSink>) -> usize {
    let mut tracker = OffsetTracker::default();
    let mut rows = 0;
    let mut sink = sink;
    for recs in batches {
        let last = recs.last().map_or(0, |r| r.offset);
        let progress = tracker.begin([(("web_requests".into(), 0), last)].into());
        let out = decoder.decode(recs);
        for typed in &out.batches {
            rows += typed.batch.num_rows();
            if let Some(s) = sink.as_deref_mut() {
                s.write(&typed.type_name, &typed.batch, &progress).unwrap();
            }
        }
        OffsetTracker::seal(&progress);
    }
    if let Some(s) = sink {
        s.close_all().unwrap();
    }
    tracker.advance().unwrap();
    rows
}

fn main() {
    let (mut c, dir) = common::criterion(Duration::from_secs(10));
    let tmp = tempfile::tempdir().unwrap();
    let messages: Vec<Vec<u8>> = (0..MESSAGES).map(web_request).collect();
    let bytes: usize = messages.iter().map(Vec::len).sum();
    let batches: Vec<Vec<Record>> = messages
        .chunks(BATCH)
        .enumerate()
        .map(|(b, chunk)| {
            chunk
                .iter()
                .enumerate()
                .map(|(i, m)| Record::new("web_requests", 0, (b * BATCH + i) as i64, Some(m)))
                .collect()
        })
        .collect();
    let mut d = decoder(tmp.path());
    assert_eq!(
        run(&mut d, &batches, None),
        MESSAGES,
        "every message decodes"
    );
    let cfg: DeltaSinkConfig =
        serde_saphyr::from_str("uri: x\nmax_latency: 1h\nmin_bytes: 1GiB\nmax_rows: 10000000")
            .unwrap();

    let mut group = c.benchmark_group("json-delta");
    group.throughput(Throughput::Elements(MESSAGES as u64));
    group.sample_size(10);
    group.bench_function(BenchmarkId::new("decode", MESSAGES), |b| {
        b.iter(|| run(&mut d, &batches, None))
    });
    let mut n = 0;
    group.bench_function(BenchmarkId::new("decode-delta", MESSAGES), |b| {
        b.iter(|| {
            n += 1; // a new table each time: the create is part of the cost, as on a first run
            let uri = tmp
                .path()
                .join(format!("t{n}"))
                .to_string_lossy()
                .into_owned();
            let mut sink = DeltaSink::new(uri, &cfg, "bench").unwrap();
            run(&mut d, &batches, Some(&mut sink))
        })
    });
    group.finish();

    println!("\n| stage | msgs/s | MB/s |");
    println!("|---|---:|---:|");
    for (variant, label) in [
        ("decode", "JSON decode"),
        ("decode-delta", "JSON decode + Delta append and commit"),
    ] {
        if let Some(t) = common::median(&dir, "json-delta", variant, MESSAGES) {
            println!(
                "| {label} | {:.0} k | {:.0} |",
                MESSAGES as f64 / t / 1e3,
                bytes as f64 / t / 1e6
            );
        }
    }
    println!("({} bytes/msg on average)", bytes / MESSAGES);
}
