//! Column-wise evaluation equals row-by-row evaluation: random nested documents, decoded to
//! Arrow by arrow-json (an independent reader), and random expressions over their fields. For
//! every row, the batch result equals what the interpreter gives on that document, and a row
//! fails in the batch exactly when it fails alone.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_schema::{DataType, Field, Fields, Schema};
use proptest::prelude::*;
use weir_expr::{EvalError, Expr, Value};

fn schema() -> Arc<Schema> {
    let item = Fields::from(vec![
        Field::new("sku", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
    ]);
    let obj = Fields::from(vec![
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
        Field::new("c", DataType::Int32, true),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("i", DataType::Int64, true),
        Field::new("j", DataType::Int32, true),
        Field::new("f", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("t", DataType::Utf8, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("ts", DataType::Int64, true),
        Field::new("o", DataType::Struct(obj), true),
        Field::new(
            "l",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
        Field::new(
            "items",
            DataType::List(Arc::new(Field::new("item", DataType::Struct(item), true))),
            true,
        ),
        Field::new(
            "ll",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                true,
            ))),
            true,
        ),
    ]))
}

fn opt<T: std::fmt::Debug + Clone + 'static>(
    s: impl Strategy<Value = T> + 'static,
) -> BoxedStrategy<Option<T>> {
    prop_oneof![1 => Just(None), 4 => s.prop_map(Some)].boxed()
}

/// One document with every key present (null where absent), as arrow-json would fill it.
fn document() -> impl Strategy<Value = serde_json::Value> {
    let small_int = -5i64..20;
    let word = prop::sample::select(vec!["", "a", "ab", "Abc", "x-y", "ZZ", "été"]);
    let item = (
        opt(word.clone()),
        opt(small_int.clone()),
        opt(-3.0f64..30.0),
    )
        .prop_map(|(sku, qty, price)| serde_json::json!({"sku": sku, "qty": qty, "price": price}));
    let obj = (opt(small_int.clone()), opt(word.clone()), opt(-3i32..3))
        .prop_map(|(a, b, c)| serde_json::json!({"a": a, "b": b, "c": c}));
    (
        (
            opt(small_int.clone()),
            opt(-3i32..3),
            opt(prop_oneof![Just(0.0), Just(1.0), -10.0f64..10.0]),
            opt(word.clone()),
            opt(word),
            opt(any::<bool>()),
            opt(0i64..4_000_000_000_000),
        ),
        (
            opt(obj),
            opt(prop::collection::vec(opt(small_int.clone()), 0..4)),
            opt(prop::collection::vec(opt(item), 0..4)),
            opt(prop::collection::vec(
                opt(prop::collection::vec(opt(small_int), 0..3)),
                0..3,
            )),
        ),
    )
        .prop_map(|((i, j, f, s, t, b, ts), (o, l, items, ll))| {
            serde_json::json!({
                "i": i, "j": j, "f": f, "s": s, "t": t, "b": b, "ts": ts,
                "o": o, "l": l, "items": items, "ll": ll,
            })
        })
}

fn expression() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "i",
        "j",
        "f",
        "s",
        "t",
        "b",
        "ts",
        "o",
        "o.a",
        "o.b",
        "o.c",
        "l",
        "items",
        "ll",
        "nope",
        "o.nope",
        "s.nope",
        "l[0]",
        "l[-1]",
        "l[1:]",
        "l[::-1]",
        "l[:2]",
        "items[0].sku",
        "items[*].qty",
        "items[*].price",
        "items[].sku",
        "items[?qty > `1`].sku",
        "items[?sku == 'a'].price",
        "ll[]",
        "ll[*][0]",
        "ll[0][0]",
        "o.*",
        "`1`",
        "`2.5`",
        "`0`",
        "'a'",
        "''",
        "`null`",
        "`true`",
        "`[1, 2]`",
        "`{\"a\": 1}`",
        "@.i",
        "length(l)",
        "length(s)",
        "length(o)",
        "length(items)",
        "length(ll)",
        "sum(l)",
        "max(l)",
        "min(l)",
        "avg(l)",
        "sort(l)",
        "reverse(l)",
        "keys(o)",
        "values(o)",
        "sort_by(items, &qty)",
        "max_by(items, &price)",
        "join(',', items[*].sku)",
        "map(&qty, items)",
        "to_array(i)",
        "type(s)",
        "type(i)",
        "from_epoch_millis(ts)",
        "date(from_epoch_millis(ts))",
        "truncate_day(from_epoch_millis(ts))",
        "to_iso8601(from_epoch_millis(ts))",
        "cast(i, 'int32')",
        "cast(f, 'int64')",
        "cast(s, 'float64')",
        "sha256(s, 'salt')",
        "concat(s, '-', t)",
        "substr(s, `1`)",
        "replace(s, 'a', 'b')",
        "regex_match(s, '^a')",
        "items[*].{k: sku, q: qty}",
        "{a: i, b: s}",
        "[i, j]",
        "[s, t]",
        "[i, f]",
    ])
    .prop_map(str::to_string);
    leaf.prop_recursive(3, 24, 2, |inner| {
        let bin = |op: &'static str| {
            (inner.clone(), inner.clone()).prop_map(move |(a, b)| format!("({a}) {op} ({b})"))
        };
        let un = |f: &'static str| inner.clone().prop_map(move |a| format!("{f}({a})"));
        prop_oneof![
            bin("=="),
            bin("!="),
            bin("<"),
            bin(">="),
            bin("&&"),
            bin("||"),
            bin("+"),
            bin("-"),
            bin("*"),
            bin("/"),
            bin("%"),
            bin("//"),
            inner.clone().prop_map(|a| format!("!({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            un("abs"),
            un("ceil"),
            un("floor"),
            un("length"),
            un("to_string"),
            un("to_number"),
            un("lower"),
            un("upper"),
            un("type"),
            un("not_null"),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("not_null({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("coalesce({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("contains({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("starts_with({a}, {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{{x: {a}, y: {b}}}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) | ({b})")),
            inner.clone().prop_map(|a| format!("items[?({a})].sku")),
            inner.clone().prop_map(|a| format!("[{a}][0]")),
        ]
    })
}

fn batch_of(docs: &[serde_json::Value]) -> RecordBatch {
    let mut decoder = ReaderBuilder::new(schema()).build_decoder().unwrap();
    decoder.serialize(docs).unwrap();
    decoder.flush().unwrap().unwrap()
}

/// The document as a value with its objects' keys in schema order, as Arrow holds them
/// (`serde_json::json!` sorts keys; key order shows in `to_string` and `keys`).
fn in_schema_order(doc: &serde_json::Value, dt: &DataType) -> Value {
    match (doc, dt) {
        (serde_json::Value::Object(o), DataType::Struct(fields)) => Value::Object(
            fields
                .iter()
                .map(|f| {
                    let v = o.get(f.name()).unwrap_or(&serde_json::Value::Null);
                    (f.name().clone(), in_schema_order(v, f.data_type()))
                })
                .collect(),
        ),
        (serde_json::Value::Array(a), DataType::List(item)) => Value::Array(
            a.iter()
                .map(|v| in_schema_order(v, item.data_type()))
                .collect(),
        ),
        (other, _) => Value::from_json(other.clone()),
    }
}

/// Equal as JMESPath values (numbers by value, deep).
fn same(a: &Value, b: &Value) -> bool {
    a == b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn columnwise_equals_row_by_row(
        docs in prop::collection::vec(document(), 1..12),
        source in expression(),
    ) {
        let expr = match Expr::parse(&source) {
            Ok(e) => e,
            Err(e) => return Err(TestCaseError::fail(format!("generated an invalid expression: {e}"))),
        };
        let batch = batch_of(&docs);
        let expected: Vec<Result<Value, EvalError>> = docs
            .iter()
            .map(|d| expr.search(&in_schema_order(d, &DataType::Struct(schema().fields().clone()))))
            .collect();
        match expr.evaluate_rows(&batch) {
            Ok(got) => {
                prop_assert_eq!(got.array.len(), docs.len());
                let values = weir_expr::to_values(got.array.as_ref()).unwrap();
                // The row results as one Arrow column holds them (objects get the union of keys).
                let ok: Vec<Value> = expected.iter().map(|r| r.clone().unwrap_or_default()).collect();
                let as_column = weir_expr::to_values(weir_expr::from_values(&ok).unwrap().as_ref()).unwrap();
                let failed: Vec<usize> = got.errors.iter().map(|(i, _)| *i).collect();
                for (i, want) in expected.iter().enumerate() {
                    match want {
                        Ok(v) => {
                            prop_assert!(!failed.contains(&i), "{source}: row {i} failed in the batch: {:?}; alone it gives {v}", got.errors);
                            prop_assert!(same(&values[i], &as_column[i]), "{source}: row {i}: batch {} vs row {v}\ndoc {}", values[i], docs[i]);
                        }
                        Err(e) => {
                            let in_batch = got.errors.iter().find(|(r, _)| *r == i);
                            prop_assert!(in_batch.is_some(), "{source}: row {i} fails alone ({e}) but not in the batch (gave {})", values[i]);
                            prop_assert_eq!(&in_batch.unwrap().1, e);
                        }
                    }
                }
            }
            Err(EvalError::MixedTypes(m)) => {
                // Only when the rows' own results can't make one column either.
                let rows: Vec<Value> = expected.iter().map(|r| r.clone().unwrap_or_default()).collect();
                prop_assert!(weir_expr::from_values(&rows).is_err(), "{source}: mixed types claimed ({m}), but the rows make one column");
            }
            Err(e) => return Err(TestCaseError::fail(format!("{source}: {e}"))),
        }
    }

    /// The host sends a transform only what its expressions read (manifest `reads` and
    /// `lengths`): on that cut batch every row gives what it gives on the whole batch.
    #[test]
    fn the_cut_batch_gives_the_same_results(
        docs in prop::collection::vec(document(), 1..12),
        source in expression(),
    ) {
        let expr = Expr::parse(&source).unwrap();
        let Some(reads) = expr.reads() else { return Ok(()) };
        let manifest = weir_guest_sdk::abi::Manifest {
            reads: Some(reads.paths),
            lengths: Some(reads.lengths),
            ..Default::default()
        };
        let batch = batch_of(&docs);
        let cut = weir_guest_sdk::abi::project_reads(&batch, &manifest).unwrap();
        let (whole, part) = (expr.evaluate_rows(&batch), expr.evaluate_rows(&cut));
        match (whole, part) {
            (Ok(w), Ok(p)) => {
                prop_assert_eq!(&w.errors, &p.errors, "{}", source);
                let (w, p) = (weir_expr::to_values(w.array.as_ref()).unwrap(), weir_expr::to_values(p.array.as_ref()).unwrap());
                prop_assert_eq!(w, p, "{}", source);
            }
            (w, p) => prop_assert_eq!(w.err(), p.err(), "{}", source),
        }
    }
}
