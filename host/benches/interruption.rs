//! What bounding a call's time costs: the built-in `filter` and `project` plugins on 10k-row
//! batches, natively and in wasm with epoch interruption (what weir runs), with fuel, and with
//! no time budget at all.
//!
//! ```sh
//! cargo bench -p weir --bench interruption
//! ```
//!
//! At the end a table gives rows/s and each variant's time against the unbounded wasm run and
//! against native, all from this one run.

// Benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, StructArray};
use arrow_schema::{DataType, Field};
use criterion::{BenchmarkId, Throughput};
use weir::runtime::{FileGrants, Interruption, Limits, Runtime};
use weir_guest_sdk::testing;

const ROWS: usize = 10_000;

/// (case, params)
const CASES: [(&str, &str); 2] = [
    (
        "filter",
        r#"{"where": "amount > `100` && currency == 'EUR' && customer.tier == 'gold'"}"#,
    ),
    (
        "project",
        r#"{"select": "{id: id, eur: amount * `0.92`, tier: customer.tier, big: amount > `150`}"}"#,
    ),
];

const VARIANTS: [(&str, Interruption); 3] = [
    ("wasm-epoch", Interruption::Epoch),
    ("wasm-fuel", Interruption::Fuel),
    ("wasm-off", Interruption::Off),
];

fn orders(n: usize) -> RecordBatch {
    let s = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let customer = StructArray::from(vec![(
        Arc::new(Field::new("tier", DataType::Utf8, true)),
        s((0..n)
            .map(|i| ["gold", "free"][i % 2].to_string())
            .collect()),
    )]);
    RecordBatch::try_from_iter(vec![
        ("id", s((0..n).map(|i| format!("o-{i}")).collect())),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| (i * 37 % 300) as f64 + 0.5),
            )) as ArrayRef,
        ),
        (
            "currency",
            s((0..n)
                .map(|i| ["EUR", "USD", "GBP"][i % 3].to_string())
                .collect()),
        ),
        ("customer", Arc::new(customer)),
    ])
    .unwrap()
}

fn main() {
    let (mut c, dir) = common::criterion(Duration::from_secs(3));
    let limits = Limits {
        time_budget: Duration::from_secs(60),
        memory_limit: 1 << 30,
        ..Limits::default()
    };
    let runtimes: Vec<(&str, Runtime)> = VARIANTS
        .iter()
        .map(|(name, i)| {
            let rt = Runtime::with_interruption(limits.clone(), None, *i).unwrap();
            (*name, rt)
        })
        .collect();
    let batch = orders(ROWS);
    for (case, params) in CASES {
        let mut group = c.benchmark_group(format!("interruption-{case}"));
        group.throughput(Throughput::Elements(ROWS as u64));
        if case == "filter" {
            let mut t = testing::init::<weir_plugin_filter::Filter>(params).unwrap();
            group.bench_with_input(BenchmarkId::new("native", ROWS), &batch, |b, batch| {
                b.iter(|| common::native(&mut t, batch))
            });
        } else {
            let mut t = testing::init::<weir_plugin_project::Project>(params).unwrap();
            group.bench_with_input(BenchmarkId::new("native", ROWS), &batch, |b, batch| {
                b.iter(|| common::native(&mut t, batch))
            });
        }
        let params: serde_json::Value = serde_json::from_str(params).unwrap();
        for (variant, rt) in &runtimes {
            let mut instance = rt
                .load(&format!("builtin:{case}"), Path::new("."))
                .unwrap()
                .instantiate("bench", &params, FileGrants::default())
                .unwrap();
            group.bench_with_input(BenchmarkId::new(*variant, ROWS), &batch, |b, batch| {
                b.iter(|| instance.call(batch).unwrap().batch.num_rows())
            });
        }
        group.finish();
    }
    c.final_summary();
    println!("\n| plugin ({ROWS} rows) | variant | rows/s | time / wasm-off | time / native |");
    println!("|---|---|---:|---:|---:|");
    for (case, _) in CASES {
        let group = format!("interruption-{case}");
        let median = |v: &str| common::median(&dir, &group, v, ROWS);
        let (Some(native), Some(off)) = (median("native"), median("wasm-off")) else {
            continue;
        };
        for variant in ["native", "wasm-off", "wasm-epoch", "wasm-fuel"] {
            let Some(t) = median(variant) else { continue };
            println!(
                "| {case} | {variant} | {:.1} M | {:.2}x | {:.2}x |",
                ROWS as f64 / t / 1e6,
                t / off,
                t / native
            );
        }
    }
}
