//! Expressions on orders-shaped batches: the built-in `filter` and `project` plugins natively
//! and in wasm, against the same expressions evaluated row by row (the `jmespath` crate over
//! `serde_json` values, as kafka-delta-ingest does, and weir's own interpreter).
//!
//! It also runs one filter, `amount > 100`, written three ways: the built-in `filter` (Rust, weir
//! expressions) natively and in wasm, and `plugins/filter-as` (AssemblyScript) in wasm.
//!
//! ```sh
//! ./tests/build-assemblyscript.sh && cargo bench -p weir --bench expressions
//! ```
//!
//! Criterion measures each case; at the end tables give rows/s, the wasm/native ratio and the
//! speed-up over row-by-row `jmespath`, and Rust against AssemblyScript, all from this one run.

// Benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{DataType, Field, Fields};
use criterion::{BenchmarkId, Criterion, Throughput};
use weir::runtime::{FileGrants, Limits, Runtime};
use weir_guest_sdk::testing;

const SIZES: [usize; 2] = [10_000, 100_000];

/// (case, plugin, params, expression as plain JMESPath for the row-by-row baselines)
const CASES: [(&str, &str, &str); 2] = [
    (
        "filter",
        "where",
        "amount > `100` && currency == 'EUR' && customer.tier == 'gold'",
    ),
    (
        "project",
        "select",
        "{id: id, customer: customer.name, tier: customer.tier, n: length(items), skus: items[*].sku}",
    ),
];

fn orders(n: usize) -> RecordBatch {
    let s = |v: Vec<String>| Arc::new(StringArray::from(v)) as ArrayRef;
    let customer = StructArray::new(
        Fields::from(vec![
            Field::new("id", DataType::Utf8, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("tier", DataType::Utf8, true),
        ]),
        vec![
            s((0..n).map(|i| format!("c-{}", i % 1000)).collect()),
            s((0..n).map(|i| format!("Customer {}", i % 1000)).collect()),
            s((0..n)
                .map(|i| ["gold", "silver", "free"][i % 3].to_string())
                .collect()),
        ],
        None,
    );
    let per_order = |i: usize| i % 4;
    let total: usize = (0..n).map(per_order).sum();
    let mut offsets = vec![0i32];
    for i in 0..n {
        offsets.push(offsets[i] + per_order(i) as i32);
    }
    let item_fields = Fields::from(vec![
        Field::new("sku", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
    ]);
    let items_values = StructArray::new(
        item_fields.clone(),
        vec![
            s((0..total).map(|k| format!("sku-{}", k % 500)).collect()),
            Arc::new(Int64Array::from_iter_values(
                (0..total).map(|k| (k % 5) as i64 + 1),
            )),
            Arc::new(Float64Array::from_iter_values(
                (0..total).map(|k| (k % 50) as f64 + 0.99),
            )),
        ],
        None,
    );
    let items = ListArray::new(
        Arc::new(Field::new("item", DataType::Struct(item_fields), true)),
        OffsetBuffer::new(offsets.into()),
        Arc::new(items_values),
        None,
    );
    RecordBatch::try_from_iter(vec![
        ("id", s((0..n).map(|i| format!("o-{i}")).collect())),
        (
            "ts",
            Arc::new(Int64Array::from_iter_values(
                (0..n).map(|i| 1_700_000_000_000 + i as i64),
            )) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Float64Array::from_iter_values(
                (0..n).map(|i| (i * 37 % 300) as f64 + 0.5),
            )),
        ),
        (
            "currency",
            s((0..n)
                .map(|i| ["EUR", "USD", "GBP"][i % 3].to_string())
                .collect()),
        ),
        ("customer", Arc::new(customer)),
        ("items", Arc::new(items)),
    ])
    .unwrap()
}

/// The batch's rows as values, as weir's row-by-row fallback sees them.
fn weir_rows(batch: &RecordBatch) -> Vec<weir_expr::Value> {
    weir_expr::to_values(&StructArray::from(batch.clone())).unwrap()
}

fn main() {
    let (mut c, dir) = common::criterion(Duration::from_secs(2));
    let runtime = Runtime::new(
        Limits {
            time_budget: Duration::from_secs(60),
            memory_limit: 4 << 30,
            ..Limits::default()
        },
        Runtime::default_cache_dir(),
    )
    .unwrap();
    let batches: Vec<RecordBatch> = SIZES.iter().map(|&n| orders(n)).collect();
    for (case, param, expression) in CASES {
        let params = serde_json::json!({ param: expression });
        let params_text = params.to_string();
        let mut group = c.benchmark_group(case);
        for batch in &batches {
            let n = batch.num_rows();
            group.throughput(Throughput::Elements(n as u64));
            match case {
                "filter" => {
                    let mut t = testing::init::<weir_plugin_filter::Filter>(&params_text).unwrap();
                    group.bench_with_input(BenchmarkId::new("native", n), batch, |b, batch| {
                        b.iter(|| common::native(&mut t, batch))
                    });
                }
                _ => {
                    let mut t =
                        testing::init::<weir_plugin_project::Project>(&params_text).unwrap();
                    group.bench_with_input(BenchmarkId::new("native", n), batch, |b, batch| {
                        b.iter(|| common::native(&mut t, batch))
                    });
                }
            }
            let plugin = runtime
                .load(&format!("builtin:{case}"), Path::new("."))
                .unwrap();
            let mut instance = plugin
                .instantiate("bench", &params, FileGrants::default())
                .unwrap();
            group.bench_with_input(BenchmarkId::new("wasm", n), batch, |b, batch| {
                b.iter(|| instance.call(batch).unwrap().batch.num_rows())
            });
            let rows = weir_rows(batch);
            // As `serde_json` values: what a row-by-row pipeline holds after parsing.
            let docs: Vec<serde_json::Value> = rows.iter().map(weir_expr::Value::to_json).collect();
            let jp = jmespath::compile(expression).unwrap();
            group.bench_with_input(BenchmarkId::new("jmespath-rows", n), &docs, |b, docs| {
                b.iter(|| {
                    docs.iter()
                        .filter(|d| jp.search(*d).unwrap().is_truthy())
                        .count()
                })
            });
            let expr = weir_expr::Expr::parse(expression).unwrap();
            group.bench_with_input(BenchmarkId::new("weir-rows", n), &rows, |b, rows| {
                b.iter(|| {
                    rows.iter()
                        .filter(|r| expr.search(r).unwrap().is_truthy())
                        .count()
                })
            });
        }
        group.finish();
    }
    threshold(&mut c, &runtime, &batches);
    c.final_summary();
    print_table(&dir);
    print_threshold_table(&dir);
}

/// The same filter in Rust and in AssemblyScript (`plugins/filter-as`), on the same batches.
fn threshold(c: &mut Criterion, runtime: &Runtime, batches: &[RecordBatch]) {
    let as_wasm =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/filter-as/build/filter-as.wasm");
    assert!(
        as_wasm.is_file(),
        "{} is missing: run ./tests/build-assemblyscript.sh first",
        as_wasm.display()
    );
    let rust_params = serde_json::json!({"where": "amount > `100`"});
    let as_params = serde_json::json!({"column": "amount", "gt": 100});
    let mut group = c.benchmark_group("threshold");
    for batch in batches {
        let n = batch.num_rows();
        group.throughput(Throughput::Elements(n as u64));
        let mut t = testing::init::<weir_plugin_filter::Filter>(&rust_params.to_string()).unwrap();
        group.bench_with_input(BenchmarkId::new("rust-native", n), batch, |b, batch| {
            b.iter(|| common::native(&mut t, batch))
        });
        for (variant, spec, params) in [
            ("rust-wasm", "builtin:filter".to_string(), &rust_params),
            (
                "assemblyscript-wasm",
                as_wasm.display().to_string(),
                &as_params,
            ),
        ] {
            let mut instance = runtime
                .load(&spec, Path::new("."))
                .unwrap()
                .instantiate("bench", params, FileGrants::default())
                .unwrap();
            group.bench_with_input(BenchmarkId::new(variant, n), batch, |b, batch| {
                b.iter(|| instance.call(batch).unwrap().batch.num_rows())
            });
        }
    }
    group.finish();
}

fn print_threshold_table(dir: &Path) {
    println!("\n| `amount > 100` | rows/batch | Rust native rows/s | Rust wasm rows/s | AssemblyScript wasm rows/s | AssemblyScript / Rust wasm time |");
    println!("|---|---:|---:|---:|---:|---:|");
    for n in SIZES {
        let (Some(native), Some(rust), Some(asc)) = (
            common::median(dir, "threshold", "rust-native", n),
            common::median(dir, "threshold", "rust-wasm", n),
            common::median(dir, "threshold", "assemblyscript-wasm", n),
        ) else {
            continue;
        };
        let rate = |t: f64| format!("{:.1} M", n as f64 / t / 1e6);
        println!(
            "| filter | {n} | {} | {} | {} | {:.2}x |",
            rate(native),
            rate(rust),
            rate(asc),
            asc / rust
        );
    }
}

fn print_table(dir: &Path) {
    println!("\n| case | rows/batch | native rows/s | wasm rows/s | wasm/native time | jmespath rows/s | weir row-by-row rows/s | wasm vs jmespath |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    let rate = |n: usize, t: f64| format!("{:.1} M", n as f64 / t / 1e6);
    for (case, _, _) in CASES {
        for n in SIZES {
            let (Some(native), Some(wasm), Some(jp), Some(rows)) = (
                common::median(dir, case, "native", n),
                common::median(dir, case, "wasm", n),
                common::median(dir, case, "jmespath-rows", n),
                common::median(dir, case, "weir-rows", n),
            ) else {
                continue;
            };
            println!(
                "| {case} | {n} | {} | {} | {:.2}x | {} | {} | {:.0}x faster |",
                rate(n, native),
                rate(n, wasm),
                wasm / native,
                rate(n, jp),
                rate(n, rows),
                jp / wasm
            );
        }
    }
}
