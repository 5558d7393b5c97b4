//! AssemblyScript guests through weir's runtime: the SDK's test module (`echo`) and the
//! AssemblyScript plugins `fx-rate` and `filter-as`, checked value by value against batches
//! arrow-rs builds; malformed params and input through the raw ABI, which must never trap; and
//! fx-rate in a pipeline on the mock cluster, into Parquet read back by pyarrow.
//!
//! The modules are built by `tests/build-assemblyscript.sh` (npm); a missing one fails the test
//! with that hint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow_array::builder::{LargeListBuilder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Date64Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, Int8Array, LargeBinaryArray,
    LargeStringArray, ListArray, NullArray, RecordBatch, StringArray, StructArray,
    TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_buffer::NullBuffer;
use arrow_schema::{DataType, Field, Fields, Schema};
use serde_json::{json, Value};
use weir::runtime::{
    FileGrants, Instance, Limits, Plugin, Runtime, RuntimeError, TransformFailure,
};

use crate::harness::*;
use crate::pyarrow_read;

const ECHO: &str = "guest-sdk/assemblyscript/build/echo.wasm";
const FX_RATE: &str = "plugins/fx-rate/build/fx-rate.wasm";
const FILTER_AS: &str = "plugins/filter-as/build/filter-as.wasm";

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The path of a built AssemblyScript module; fails (never skips) when it is missing.
fn module(rel: &str) -> PathBuf {
    let path = root().join(rel);
    assert!(
        path.is_file(),
        "{rel} is missing: run tests/build-assemblyscript.sh (needs node and npm) before these tests"
    );
    path
}

/// Each module compiled once for all the tests.
fn plugin(rel: &str) -> Plugin {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    static COMPILED: Mutex<Vec<(String, Plugin)>> = Mutex::new(Vec::new());
    let mut compiled = COMPILED.lock().expect("compiled plugins");
    if let Some((_, p)) = compiled.iter().find(|(n, _)| n == rel) {
        return p.clone();
    }
    let rt = RUNTIME.get_or_init(|| {
        Runtime::new(
            Limits {
                time_budget: Duration::from_secs(2),
                memory_limit: 256 << 20,
                ..Limits::default()
            },
            None,
        )
        .expect("runtime")
    });
    let spec = module(rel);
    let p = rt
        .load(spec.to_str().expect("utf-8 path"), Path::new("."))
        .unwrap_or_else(|e| panic!("{rel}: {e}"));
    compiled.push((rel.to_string(), p.clone()));
    p
}

fn instance(rel: &str, params: Value) -> Result<Instance, RuntimeError> {
    plugin(rel).instantiate("as-test", &params, FileGrants::default())
}

fn echo(mode: &str) -> Instance {
    instance(ECHO, json!({ "mode": mode })).expect("echo instance")
}

/// A batch with a column of every type the SDK writes, nulls in each, as `n` rows.
fn every_type(n: usize) -> RecordBatch {
    let pick = |k: usize| k % 7 != 3; // row k is valid
    let text = |k: usize| match k % 5 {
        0 => String::new(),
        1 => "héllo wörld ✓ 😀".to_string(),
        _ => format!("row {k}"),
    };
    let point_fields = Fields::from(vec![
        Field::new("x", DataType::Int64, true),
        Field::new("label", DataType::Utf8, true),
    ]);
    let point = StructArray::try_new(
        point_fields,
        vec![
            Arc::new(Int64Array::from_iter(
                (0..n).map(|k| (k % 4 != 1).then_some(k as i64 * 3)),
            )) as ArrayRef,
            Arc::new(StringArray::from_iter(
                (0..n).map(|k| pick(k + 1).then(|| text(k))),
            )),
        ],
        Some(NullBuffer::from_iter((0..n).map(|k| k % 6 != 2))),
    )
    .expect("struct");
    let ints = ListArray::from_iter_primitive::<Int64Type, _, _>((0..n).map(|k| {
        (k % 5 != 4).then(move || (0..k % 4).map(move |j| (j != 2).then_some((k * j) as i64)))
    }));
    let mut words = LargeListBuilder::new(StringBuilder::new());
    for k in 0..n {
        if k % 9 == 8 {
            words.append_null();
        } else {
            for j in 0..k % 3 {
                words.values().append_value(text(k + j));
            }
            words.append(true);
        }
    }
    let columns: Vec<(&str, ArrayRef, bool)> = vec![
        (
            "id",
            Arc::new(Int64Array::from_iter_values(0..n as i64)),
            false,
        ),
        (
            "i8",
            Arc::new(Int8Array::from_iter(
                (0..n).map(|k| pick(k).then_some((k % 256) as u8 as i8)),
            )),
            true,
        ),
        (
            "i16",
            Arc::new(Int16Array::from_iter(
                (0..n).map(|k| pick(k).then_some(i16::MIN + k as i16)),
            )),
            true,
        ),
        (
            "i32",
            Arc::new(Int32Array::from_iter(
                (0..n).map(|k| pick(k).then_some(i32::MAX - k as i32)),
            )),
            true,
        ),
        (
            "i64",
            Arc::new(Int64Array::from_iter(
                (0..n).map(|k| pick(k).then_some(i64::MIN + k as i64)),
            )),
            true,
        ),
        (
            "u8",
            Arc::new(UInt8Array::from_iter(
                (0..n).map(|k| pick(k).then_some(k as u8)),
            )),
            true,
        ),
        (
            "u16",
            Arc::new(UInt16Array::from_iter(
                (0..n).map(|k| pick(k).then_some(u16::MAX - k as u16)),
            )),
            true,
        ),
        (
            "u32",
            Arc::new(UInt32Array::from_iter(
                (0..n).map(|k| pick(k).then_some(u32::MAX - k as u32)),
            )),
            true,
        ),
        (
            "u64",
            Arc::new(UInt64Array::from_iter(
                (0..n).map(|k| pick(k).then_some(u64::MAX - k as u64)),
            )),
            true,
        ),
        (
            "f32",
            Arc::new(Float32Array::from_iter(
                (0..n).map(|k| pick(k).then_some(k as f32 / 3.0)),
            )),
            true,
        ),
        (
            "f64",
            Arc::new(Float64Array::from_iter(
                (0..n).map(|k| pick(k).then_some(-(k as f64) * 1e-3)),
            )),
            true,
        ),
        (
            "flag",
            Arc::new(BooleanArray::from_iter(
                (0..n).map(|k| pick(k).then_some(k % 3 == 0)),
            )),
            true,
        ),
        (
            "s",
            Arc::new(StringArray::from_iter(
                (0..n).map(|k| pick(k).then(|| text(k))),
            )),
            true,
        ),
        (
            "ls",
            Arc::new(LargeStringArray::from_iter(
                (0..n).map(|k| pick(k + 2).then(|| text(k))),
            )),
            true,
        ),
        (
            "bin",
            Arc::new(BinaryArray::from_iter(
                (0..n).map(|k| pick(k).then(|| vec![k as u8; k % 4])),
            )),
            true,
        ),
        (
            "lbin",
            Arc::new(LargeBinaryArray::from_iter(
                (0..n).map(|k| pick(k + 3).then(|| vec![255 - k as u8; k % 3])),
            )),
            true,
        ),
        (
            "ts_ms",
            Arc::new(
                TimestampMillisecondArray::from_iter(
                    (0..n).map(|k| pick(k).then_some(1_700_000_000_000 + k as i64)),
                )
                .with_timezone("UTC"),
            ),
            true,
        ),
        (
            "ts_us",
            Arc::new(TimestampMicrosecondArray::from_iter(
                (0..n).map(|k| pick(k).then_some(k as i64)),
            )),
            true,
        ),
        (
            "ts_ns",
            Arc::new(
                TimestampNanosecondArray::from_iter((0..n).map(|k| pick(k).then_some(-(k as i64))))
                    .with_timezone("+02:00"),
            ),
            true,
        ),
        (
            "ts_s",
            Arc::new(TimestampSecondArray::from_iter(
                (0..n).map(|k| pick(k).then_some(k as i64)),
            )),
            true,
        ),
        (
            "d32",
            Arc::new(Date32Array::from_iter(
                (0..n).map(|k| pick(k).then_some(19_000 + k as i32)),
            )),
            true,
        ),
        (
            "d64",
            Arc::new(Date64Array::from_iter(
                (0..n).map(|k| pick(k).then_some(86_400_000 * k as i64)),
            )),
            true,
        ),
        ("nothing", Arc::new(NullArray::new(n)), true),
        ("point", Arc::new(point), true),
        ("ints", Arc::new(ints), true),
        ("words", Arc::new(words.finish()), true),
    ];
    let fields: Vec<Field> = columns
        .iter()
        .map(|(name, array, nullable)| {
            let f = Field::new(*name, array.data_type().clone(), *nullable);
            if *name == "f64" {
                f.with_metadata([("unit".to_string(), "m/s".to_string())].into())
            } else {
                f
            }
        })
        .collect();
    let schema = Schema::new(fields)
        .with_metadata([("source".to_string(), "arrow-rs ✓".to_string())].into());
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a, _)| a).collect(),
    )
    .expect("every_type batch")
}

#[test]
fn echo_answers_every_writable_type_unchanged() {
    let big = every_type(10_000);
    let cases = [
        ("0 rows", every_type(0)),
        ("1 row", every_type(1)),
        ("9 rows", every_type(9)),
        ("10k rows", big.clone()),
        ("sliced", big.slice(1003, 517)),
        ("sliced to 1 row", big.slice(9999, 1)),
    ];
    for mode in ["echo", "pass"] {
        let mut inst = echo(mode);
        for (what, batch) in &cases {
            let out = inst
                .call(batch)
                .unwrap_or_else(|e| panic!("{mode}, {what}: {e}"));
            assert!(out.rows.is_none(), "replace mode");
            assert_eq!(&out.batch, batch, "{mode}, {what}");
        }
    }
}

#[test]
fn echo_reads_struct_fields_and_list_items() {
    let batch = every_type(40);
    let mut inst = instance(
        ECHO,
        json!({"mode": "nested", "reads": ["point", "ints", "words"]}),
    )
    .expect("echo");
    assert_eq!(
        inst.manifest().reads,
        Some(vec!["point".into(), "ints".into(), "words".into()])
    );
    let out = inst.call(&batch).expect("nested").batch;
    let point = batch.column_by_name("point").expect("point").as_struct();
    let ints = batch.column_by_name("ints").expect("ints").as_list::<i32>();
    let words = batch
        .column_by_name("words")
        .expect("words")
        .as_list::<i64>();
    let col = |name: &str| {
        out.column_by_name(name)
            .unwrap_or_else(|| panic!("no column {name}"))
            .clone()
    };
    let x = col("point.x");
    let x = x.as_primitive::<Int64Type>();
    let label = col("point.label");
    let label = label.as_string::<i32>();
    let ints_len = col("ints.len");
    let ints_len = ints_len.as_primitive::<Int32Type>();
    let ints_sum = col("ints.sum");
    let ints_sum = ints_sum.as_primitive::<Float64Type>();
    let words_len = col("words.len");
    let words_len = words_len.as_primitive::<Int32Type>();
    assert!(
        out.column_by_name("words.sum").is_none(),
        "strings are not summed"
    );
    let px = point.column(0).as_primitive::<Int64Type>();
    let plabel = point.column(1).as_string::<i32>();
    for i in 0..batch.num_rows() {
        // A field of a null struct is null.
        let valid = point.is_valid(i);
        assert_eq!(x.is_valid(i), valid && px.is_valid(i), "row {i}");
        if x.is_valid(i) {
            assert_eq!(x.value(i), px.value(i));
        }
        assert_eq!(label.is_valid(i), valid && plabel.is_valid(i), "row {i}");
        if label.is_valid(i) {
            assert_eq!(label.value(i), plabel.value(i));
        }
        assert_eq!(ints_len.is_valid(i), ints.is_valid(i), "row {i}");
        if ints.is_valid(i) {
            let items = ints.value(i);
            let items = items.as_primitive::<Int64Type>();
            assert_eq!(ints_len.value(i) as usize, items.len());
            let sum: i64 = items.iter().flatten().sum();
            assert_eq!(ints_sum.value(i), sum as f64, "row {i}");
        }
        assert_eq!(words_len.is_valid(i), words.is_valid(i), "row {i}");
        if words.is_valid(i) {
            assert_eq!(words_len.value(i) as usize, words.value(i).len());
        }
    }
}

/// fx-rate's rates in these tests.
fn rate(currency: &str) -> Option<f64> {
    match currency {
        "USD" => Some(0.92),
        "EUR" => Some(1.0),
        "GBP" => Some(1.17),
        _ => None,
    }
}

fn fx_params() -> Value {
    json!({"rates": {"USD": 0.92, "EUR": 1.0, "GBP": 1.17}})
}

/// `n` rows: `id`, `amount` as `amounts` builds it from f64s (None every 7th row), `currency`
/// (None every 11th row, an unknown one every 5th).
fn orders(n: usize, amounts: impl Fn(Vec<Option<f64>>) -> ArrayRef) -> RecordBatch {
    let amount: Vec<Option<f64>> = (0..n)
        .map(|k| (k % 7 != 6).then_some((k % 120) as f64))
        .collect();
    let currency = StringArray::from_iter(
        (0..n).map(|k| (k % 11 != 10).then_some(["USD", "EUR", "GBP", "CHF", "XYZ"][k % 5])),
    );
    RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|k| format!("o-{k}")),
            )) as ArrayRef,
        ),
        ("amount", amounts(amount)),
        ("currency", Arc::new(currency)),
    ])
    .expect("orders")
}

#[test]
fn fx_rate_converts_every_number_type_and_fails_unknown_currencies() {
    let mut inst = instance(FX_RATE, fx_params()).expect("fx-rate");
    assert_eq!(
        inst.manifest().reads,
        Some(vec!["amount".into(), "currency".into()])
    );
    let types = [
        DataType::Int8,
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::UInt8,
        DataType::UInt16,
        DataType::UInt32,
        DataType::UInt64,
        DataType::Float32,
        DataType::Float64,
    ];
    for ty in types {
        let batch = orders(300, |v| {
            arrow_cast::cast(&Float64Array::from(v), &ty).expect("cast the amounts")
        });
        let out = inst.call(&batch).unwrap_or_else(|e| panic!("{ty}: {e}"));
        let currency = batch.column(2).as_string::<i32>();
        let amount = arrow_cast_f64(batch.column(1));
        // Rows with a currency that has no rate fail alone, with the exact text.
        let mut want_errors = Vec::new();
        let mut kept = Vec::new();
        for (i, a) in amount.iter().enumerate() {
            let unknown = currency.is_valid(i) && a.is_some() && rate(currency.value(i)).is_none();
            if unknown {
                want_errors.push((
                    i as u32,
                    format!("no rate for currency \"{}\"", currency.value(i)),
                ));
            } else {
                kept.push(i);
            }
        }
        assert_eq!(out.errors, want_errors, "{ty}");
        let rows = out.rows.expect("merge mode traces rows");
        assert_eq!(
            rows.values()
                .iter()
                .map(|&r| r as usize)
                .collect::<Vec<_>>(),
            kept,
            "{ty}"
        );
        let names: Vec<&str> = out
            .batch
            .schema_ref()
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        assert_eq!(names, ["id", "amount", "currency", "amount_eur"], "{ty}");
        let eur = out.batch.column(3).as_primitive::<Float64Type>();
        for (j, &i) in kept.iter().enumerate() {
            let want = match (amount[i], currency.is_valid(i)) {
                (Some(a), true) => rate(currency.value(i)).map(|r| a * r),
                _ => None,
            };
            assert_eq!(eur.is_valid(j).then(|| eur.value(j)), want, "{ty}, row {i}");
        }
    }
}

/// The amounts of a numeric column as f64.
fn arrow_cast_f64(a: &ArrayRef) -> Vec<Option<f64>> {
    let cast = arrow_cast::cast(a, &DataType::Float64).expect("cast to f64");
    cast.as_primitive::<Float64Type>().iter().collect()
}

#[test]
fn fx_rate_with_other_names_nulls_and_no_failures() {
    let mut inst = instance(
        FX_RATE,
        json!({"amount": "price", "currency": "cur", "output": "eur", "rates": {"USD": 2, "€": 1}}),
    )
    .expect("fx-rate");
    assert_eq!(
        inst.manifest().reads,
        Some(vec!["price".into(), "cur".into()])
    );
    let batch = RecordBatch::try_from_iter(vec![
        (
            "price",
            Arc::new(Int64Array::from(vec![Some(10), None, Some(-3), Some(7)])) as ArrayRef,
        ),
        (
            "cur",
            Arc::new(StringArray::from(vec![
                Some("USD"),
                Some("USD"),
                Some("€"),
                None,
            ])),
        ),
    ])
    .expect("batch");
    let out = inst.call(&batch).expect("call");
    assert!(out.errors.is_empty());
    assert!(
        out.batch.column_by_name("__weir_error").is_none(),
        "no error column when no row fails"
    );
    let eur = out
        .batch
        .column_by_name("eur")
        .expect("eur")
        .as_primitive::<Float64Type>();
    assert_eq!(
        eur.iter().collect::<Vec<_>>(),
        [Some(20.0), None, Some(-3.0), None]
    );

    // A batch that lacks the currency column gets nulls; a string amount fails the batch.
    let no_currency = batch.project(&[0]).expect("project");
    let out = inst.call(&no_currency).expect("call");
    let eur = out.batch.column_by_name("eur").expect("eur");
    assert_eq!(eur.null_count(), 4);
    let words = RecordBatch::try_from_iter(vec![
        (
            "price",
            Arc::new(StringArray::from(vec!["ten"])) as ArrayRef,
        ),
        ("cur", Arc::new(StringArray::from(vec!["USD"]))),
    ])
    .expect("batch");
    match inst.call(&words) {
        Err(TransformFailure::Guest(m)) => assert_eq!(m, "column \"price\" is utf8, not a number"),
        other => panic!("expected a guest failure, got {other:?}"),
    }
    // The instance goes on after a failed batch.
    assert!(inst.call(&batch).is_ok());
}

#[test]
fn fx_rate_refuses_bad_params_naming_the_field() {
    let cases = [
        (json!({}), "params.rates: required"),
        (
            json!({"rates": {}}),
            "params.rates: must give at least one currency",
        ),
        (
            json!({"rates": [0.9]}),
            "params.rates: expected an object, found an array",
        ),
        (
            json!({"rates": "USD=0.9"}),
            "params.rates: expected an object, found a string",
        ),
        (
            json!({"rates": {"USD": "0.92"}}),
            "params.rates.USD: expected a number, found a string",
        ),
        (
            json!({"rates": {"USD": null}}),
            "params.rates.USD: expected a number, found null",
        ),
        (
            json!({"rates": {"EUR": 1}, "amount": 5}),
            "params.amount: expected a string, found a number",
        ),
        (
            json!({"rates": {"EUR": 1}, "output": ["x"]}),
            "params.output: expected a string, found an array",
        ),
        (
            json!({"rates": {"EUR": 1}, "currncy": "c"}),
            "params: unknown key \"currncy\" (expected one of amount, currency, rates, output)",
        ),
        (
            json!([1, 2]),
            "invalid params: expected an object, found an array",
        ),
        (
            json!("rates"),
            "invalid params: expected an object, found a string",
        ),
    ];
    for (params, want) in cases {
        match instance(FX_RATE, params.clone()) {
            Err(RuntimeError::Init { message, .. }) => assert_eq!(message, want, "{params}"),
            Err(e) => panic!("{params}: not an init failure: {e}"),
            Ok(_) => panic!("{params}: accepted"),
        }
    }
    let err = instance(FX_RATE, json!({"rates": {"USD": true}}))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.ends_with("init failed: params.rates.USD: expected a number, found a boolean"),
        "{err}"
    );
}

#[test]
fn filter_as_keeps_the_rows_builtin_filter_keeps() {
    let builtin = |column: &str| {
        let p = plugin_builtin_filter();
        p.instantiate(
            "as-test",
            &json!({ "where": format!("{column} > `100`") }),
            FileGrants::default(),
        )
        .expect("builtin filter")
    };
    for n in [0usize, 1, 7, 8, 9, 63, 64, 65, 10_000] {
        let ints = Int64Array::from_iter(
            (0..n).map(|k| (k % 9 != 4).then_some((k as i64 * 37) % 211 - 5)),
        );
        let floats = Float64Array::from_iter(
            (0..n).map(|k| (k % 13 != 12).then_some(((k * 53) % 241) as f64 * 0.9 - 3.25)),
        );
        let batch = RecordBatch::try_from_iter(vec![
            ("amount", Arc::new(ints.clone()) as ArrayRef),
            ("price", Arc::new(floats.clone())),
            ("id", Arc::new(Int64Array::from_iter_values(0..n as i64))),
        ])
        .expect("batch");
        for (column, values) in [
            ("amount", arrow_cast_f64(batch.column(0))),
            ("price", arrow_cast_f64(batch.column(1))),
        ] {
            let mut inst =
                instance(FILTER_AS, json!({"column": column, "gt": 100})).expect("filter-as");
            assert_eq!(inst.manifest().reads, Some(vec![column.to_string()]));
            let out = inst
                .call(&batch)
                .unwrap_or_else(|e| panic!("{column}, {n} rows: {e}"));
            let rows: Vec<u32> = out.rows.expect("merge").values().to_vec();
            let want: Vec<u32> = (0..n as u32)
                .filter(|&i| values[i as usize].is_some_and(|v| v > 100.0))
                .collect();
            assert_eq!(rows, want, "{column}, {n} rows");
            assert_eq!(out.batch.num_columns(), 3, "the columns stay on the host");
            let twin = builtin(column).call(&batch).expect("builtin filter");
            assert_eq!(
                twin.rows.expect("merge").values().to_vec(),
                want,
                "builtin:filter agrees"
            );
        }
    }
    // Every integer type compares exactly, and a column that is not a number keeps nothing.
    let batch = RecordBatch::try_from_iter(vec![
        (
            "u64",
            Arc::new(UInt64Array::from(vec![u64::MAX, 100, 101, 0])) as ArrayRef,
        ),
        (
            "i8",
            Arc::new(Int8Array::from(vec![
                Some(127),
                Some(-128),
                None,
                Some(101),
            ])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![
                100.5,
                100.0,
                f32::NAN,
                f32::INFINITY,
            ])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec!["200", "300", "x", "y"])),
        ),
    ])
    .expect("batch");
    for (column, gt, want) in [
        ("u64", json!(100), vec![0, 2]),
        ("u64", json!(1.8446744073709552e19), vec![]),
        ("u64", json!(-1), vec![0, 1, 2, 3]),
        ("i8", json!(100.5), vec![0, 3]),
        ("i8", json!(-1000), vec![0, 1, 3]),
        ("i8", json!(127), vec![]),
        ("f32", json!(100), vec![0, 3]),
        ("s", json!(100), vec![]),
        ("absent", json!(100), vec![]),
    ] {
        let mut inst = instance(FILTER_AS, json!({"column": column, "gt": gt})).expect("filter-as");
        let rows = inst
            .call(&batch)
            .expect("call")
            .rows
            .expect("merge")
            .values()
            .to_vec();
        assert_eq!(rows, want, "{column} > {gt}");
    }
    for (params, want) in [
        (json!({"column": "amount"}), "params.gt: required"),
        (
            json!({"gt": "100"}),
            "params.gt: expected a number, found a string",
        ),
        (
            json!({"gt": 1, "lt": 2}),
            "params: unknown key \"lt\" (expected one of column, gt)",
        ),
    ] {
        match instance(FILTER_AS, params.clone()) {
            Err(RuntimeError::Init { message, .. }) => assert_eq!(message, want, "{params}"),
            other => panic!("{params}: {:?}", other.err()),
        }
    }
}

fn plugin_builtin_filter() -> Plugin {
    static P: OnceLock<Plugin> = OnceLock::new();
    P.get_or_init(|| {
        Runtime::new(
            Limits {
                time_budget: Duration::from_secs(2),
                memory_limit: 256 << 20,
                ..Limits::default()
            },
            None,
        )
        .expect("runtime")
        .load("builtin:filter", Path::new("."))
        .expect("builtin:filter")
    })
    .clone()
}

/// A module driven through the raw ABI with wasmtime, for what the host never sends: malformed
/// params JSON and malformed IPC streams.
struct Raw {
    store: wasmtime::Store<()>,
    instance: wasmtime::Instance,
}

impl Raw {
    fn new(rel: &str) -> Raw {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::from_file(&engine, module(rel)).expect("module");
        let mut linker = wasmtime::Linker::new(&engine);
        linker
            .func_wrap("weir", "log", |_: i32, _: i32, _: i32| {})
            .expect("log");
        linker
            .func_wrap(
                "weir",
                "read_file",
                |_: i32, _: i32, _: i32, _: i32| -> i64 { -1 },
            )
            .expect("read_file");
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = linker
            .instantiate(&mut store, &module)
            .expect("instantiate");
        Raw { store, instance }
    }

    /// Calls `weir_init` or `weir_transform` with `bytes`: the answer, or the error message.
    /// A trap fails the test.
    fn call(&mut self, export: &str, bytes: &[u8]) -> Result<Vec<u8>, String> {
        let alloc = self
            .instance
            .get_typed_func::<i32, i32>(&mut self.store, "weir_alloc")
            .expect("weir_alloc");
        let f = self
            .instance
            .get_typed_func::<(i32, i32), i64>(&mut self.store, export)
            .expect("export");
        let memory = self
            .instance
            .get_memory(&mut self.store, "memory")
            .expect("memory");
        let len = i32::try_from(bytes.len()).expect("small input");
        let ptr = alloc.call(&mut self.store, len).expect("weir_alloc traps");
        memory
            .write(&mut self.store, ptr as usize, bytes)
            .expect("write");
        let r = f
            .call(&mut self.store, (ptr, len))
            .unwrap_or_else(|e| panic!("{export} trapped on {} bytes: {e:?}", bytes.len()));
        let read = |store: &wasmtime::Store<()>, packed: i64| {
            let (p, n) = ((packed as u64 >> 32) as usize, packed as u32 as usize);
            memory.data(store)[p..p + n].to_vec()
        };
        if r >= 0 {
            return Ok(read(&self.store, r));
        }
        let last = self
            .instance
            .get_typed_func::<(), i64>(&mut self.store, "weir_last_error")
            .expect("weir_last_error");
        let e = last
            .call(&mut self.store, ())
            .expect("weir_last_error traps");
        Err(String::from_utf8(read(&self.store, e)).expect("utf-8 message"))
    }
}

#[test]
fn malformed_params_and_input_fail_the_call_and_never_trap() {
    let params: &[(&[u8], &str)] = &[
        (
            b"",
            "invalid params: unexpected end of input at character 0",
        ),
        (b"{", "invalid params: expected a string key at character 1"),
        (
            b"{\"rates\": {\"USD\": 1,}}",
            "invalid params: expected a string key at character 20",
        ),
        (
            b"{\"rates\": {\"USD\": 01}}",
            "invalid params: leading zero in a number at character 19",
        ),
        (
            b"{\"rates\": {\"USD\": 1}} x",
            "invalid params: trailing characters after the JSON value at character 22",
        ),
        (
            b"{\"a\": 1, \"a\": 2}",
            "invalid params: duplicate key \"a\" at character 12",
        ),
        (
            b"{\"a\": \"\\ud800\"}",
            "invalid params: lone high surrogate in \\u escape at character 13",
        ),
        (
            b"{\"a\": \"\xff\"}",
            "invalid params: invalid UTF-8 at byte 7",
        ),
        (
            b"NaN",
            "invalid params: expected a JSON value at character 0",
        ),
    ];
    let deep = "[".repeat(200_000);
    let batch = every_type(50);
    let mut stream = Vec::new();
    weir_guest_sdk::ipc::write_stream(&batch, &mut stream).expect("ipc");
    let fx_batch = orders(50, |v| Arc::new(Float64Array::from(v)));
    let mut fx_stream = Vec::new();
    weir_guest_sdk::ipc::write_stream(&fx_batch, &mut fx_stream).expect("ipc");

    for rel in [ECHO, FX_RATE, FILTER_AS] {
        let mut raw = Raw::new(rel);
        for (bytes, want) in params {
            assert_eq!(
                raw.call("weir_init", bytes).err().as_deref(),
                Some(*want),
                "{rel}"
            );
        }
        let e = raw.call("weir_init", deep.as_bytes()).expect_err("deep");
        assert!(e.contains("nesting deeper than 128"), "{rel}: {e}");
        let e = raw
            .call("weir_transform", &stream)
            .expect_err("before init");
        assert_eq!(e, "weir_transform called before a successful weir_init");

        let good = match rel {
            FX_RATE => fx_params().to_string(),
            FILTER_AS => r#"{"column": "amount", "gt": 100}"#.to_string(),
            _ => "{}".to_string(),
        };
        raw.call("weir_init", good.as_bytes()).expect("init");
        let input = if rel == ECHO { &stream } else { &fx_stream };
        raw.call("weir_transform", input).expect("a good stream");
        // Every truncation, and bytes flipped all along the stream: an error or a batch, never a
        // trap (the call panics on one).
        for n in 0..input.len() {
            let r = raw.call("weir_transform", &input[..n]);
            assert!(
                r.is_err() || n >= input.len() - 8,
                "{rel}: {n} bytes accepted"
            );
        }
        for pos in 0..input.len() {
            for v in [0x00, 0xff, input[pos] ^ 0x10] {
                let mut bad = input.clone();
                bad[pos] = v;
                if let Err(e) = raw.call("weir_transform", &bad) {
                    assert!(!e.is_empty());
                }
            }
        }
        raw.call("weir_transform", input)
            .expect("still answers good streams");
    }
}

fn pipeline_config(brokers: &str, out: &Path) -> String {
    let wasm = |rel: &str| module(rel).display().to_string();
    format!(
        r#"source:
  kafka:
    brokers: "{brokers}"
    group_id: weir-e2e-as
    topics: [orders]
    batch: {{ max_records: 500, max_wait: 50ms }}
    commit_interval: 200ms
    until_idle: 2s
decode:
  schemas:
    orders: {{ fields: {{ id: utf8, amount: float64, currency: utf8 }} }}
routes:
  - name: orders
    match: orders
    transforms:
      - plugin: "{filter}"
        params: {{ column: amount, gt: 100 }}
      - plugin: "{fx}"
        params:
          rates: {{ USD: 0.92, EUR: 1.0, GBP: 1.17 }}
    sink:
      parquet: {{ path: "{out}", max_rows: 1000, max_age: 1s }}
errors:
  dead_letter: {{ kafka: {{ topic: weir-dlq }} }}
"#,
        filter = wasm(FILTER_AS),
        fx = wasm(FX_RATE),
        out = out.display(),
    )
}

#[test]
fn fx_rate_in_a_pipeline_into_parquet() {
    let cluster = Cluster::new(&["orders", "weir-dlq"]);
    let work = Workdir::new();
    let out = work.path().join("orders");
    let cfg = work.write_config(&pipeline_config(&cluster.brokers(), &out));
    // id -> (amount, currency); what becomes of each: kept with its EUR amount, filtered, failed.
    let mut kept: BTreeMap<String, (f64, Option<String>)> = BTreeMap::new();
    let mut filtered = BTreeSet::new();
    let mut failed = BTreeSet::new();
    let mut messages = Vec::new();
    for k in 0..2500 {
        let id = format!("o-{k}");
        let amount = (k * 37 % 200) as f64 + 0.5;
        let currency = ["USD", "EUR", "GBP", "XYZ"][k % 4];
        let value = if k % 10 == 9 {
            // No currency: a null currency gives a null amount_eur, not a failure.
            format!(r#"{{"id":"{id}","amount":{amount}}}"#)
        } else {
            format!(r#"{{"id":"{id}","amount":{amount},"currency":"{currency}"}}"#)
        };
        let has_currency = k % 10 != 9;
        if amount <= 100.0 {
            filtered.insert(id.clone());
        } else if has_currency && rate(currency).is_none() {
            failed.insert(id.clone());
        } else {
            kept.insert(
                id.clone(),
                (amount, has_currency.then(|| currency.to_string())),
            );
        }
        messages.push(("orders".to_string(), id, value.into_bytes()));
    }
    assert!(!kept.is_empty() && !filtered.is_empty() && !failed.is_empty());
    cluster.produce(&messages);
    let mut child = work.spawn(&cfg, 1);
    let status = work.wait(&mut child, 1, Duration::from_secs(120));
    assert!(status.success(), "weir failed\n{}", work.logs(1));

    let read = pyarrow_read(&out, &["id", "amount", "currency", "amount_eur"]);
    assert!(
        read["schema"]
            .as_str()
            .expect("schema")
            .starts_with("id: string; amount: double; currency: string; amount_eur: double"),
        "{}",
        read["schema"]
    );
    let mut seen = BTreeSet::new();
    for r in read["records"].as_array().expect("records") {
        let id = r["id"].as_str().expect("id");
        assert!(seen.insert(id.to_string()), "{id} written twice");
        let (amount, currency) = kept
            .get(id)
            .unwrap_or_else(|| panic!("{id} should not be in Parquet"));
        match currency {
            Some(c) => {
                let eur = r["amount_eur"].as_f64().unwrap_or_else(|| panic!("{r}"));
                let want = amount * rate(c).expect("a known currency");
                assert!((eur - want).abs() < 1e-9, "{r}: {amount} {c}");
            }
            None => assert!(r["amount_eur"].is_null(), "{r}"),
        }
    }
    assert_eq!(seen, kept.keys().cloned().collect());

    let dead = cluster.read_topic("weir-dlq", failed.len());
    assert_eq!(keys(&dead), crate::once(&failed));
    for d in &dead {
        assert_eq!(d.headers["weir.stage"], "transform");
        assert!(
            d.headers["weir.error"].contains("no rate for currency \"XYZ\""),
            "{:?}",
            d.headers
        );
    }
    let s = work.summary(1);
    assert_eq!(s["consumed"], messages.len());
    assert_eq!(s["routes"][0]["filtered"], filtered.len());
    assert_eq!(s["routes"][0]["rows_out"], kept.len());
    assert_eq!(work.committed_total(1), messages.len() as i64);
}
