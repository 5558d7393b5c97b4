//! The expressions users write most run column-wise, without the row-by-row fallback, on a
//! batch shaped like weir's orders; and they give what the row semantics give.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_schema::{DataType, Field, Fields, Schema, TimeUnit};
use weir_expr::{Expr, Value};

fn orders() -> (Vec<serde_json::Value>, RecordBatch) {
    let item = Fields::from(vec![
        Field::new("sku", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, true),
        Field::new("price", DataType::Float64, true),
    ]);
    let customer = Fields::from(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("tier", DataType::Utf8, true),
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
        Field::new("amount", DataType::Float64, true),
        Field::new("currency", DataType::Utf8, true),
        Field::new("customer", DataType::Struct(customer), true),
        Field::new(
            "items",
            DataType::List(Arc::new(Field::new("item", DataType::Struct(item), true))),
            true,
        ),
        Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
            true,
        ),
    ]));
    let docs: Vec<serde_json::Value> = (0..50)
        .map(|i| {
            let currency = ["EUR", "USD", "GBP"][i as usize % 3];
            let tier = match i % 4 {
                0 => serde_json::Value::Null,
                k => ["gold", "free"][k as usize % 2].into(),
            };
            serde_json::json!({
                "id": format!("o-{i}"),
                "ts": 1_700_000_000_000i64 + i * 3_600_000,
                "amount": (i * 37 % 300) as f64 + 0.5,
                "currency": currency,
                "customer": {"id": format!("c-{}", i % 7), "name": format!("Name {i}"),
                             "tier": tier},
                "items": (0..(i % 4)).map(|k| serde_json::json!({"sku": format!("s{k}"), "qty": k + 1, "price": 2.5 * k as f64})).collect::<Vec<_>>(),
                "_timestamp": 1_700_000_000_000i64 + i * 3_600_000,
            })
        })
        .collect();
    let mut decoder = ReaderBuilder::new(schema).build_decoder().unwrap();
    decoder.serialize(&docs).unwrap();
    (docs, decoder.flush().unwrap().unwrap())
}

const VECTORIZED: &[&str] = &[
    "amount > `100`",
    "amount > `100` && currency == 'EUR'",
    "customer.tier == 'gold' || amount >= `200`",
    "!(currency == 'USD')",
    "customer.tier != `null`",
    "{id: id, name: customer.name, n: length(items), eur: amount * `0.9`}",
    "items[*].sku",
    "items[?qty > `1`].sku",
    "items[0].price",
    "items[-1]",
    "items[:2].qty",
    "items[].price",
    "amount - `1`",
    "amount / `2`",
    "lower(currency)",
    "upper(customer.name)",
    "not_null(customer.tier, 'none')",
    "coalesce(customer.tier, 'none')",
    "date(_timestamp)",
    "truncate_day(from_epoch_millis(ts))",
    "type(amount)",
    "length(customer.name)",
    "starts_with(id, 'o-')",
    "[id, currency]",
    "customer.*",
    "ts > `1700000000000` && items[0].qty == `1`",
    "concat(id, '-', currency, customer.tier)",
    "sha256(customer.name, 'pepper')",
    "sha256(id)",
    "replace(id, 'o-', 'order-')",
    "substr(id, `0`, `2`)",
    "regex_match(id, '^o-1')",
    "to_string(amount)",
    "to_string(ts)",
    "cast(amount, 'int32')",
];

#[test]
fn common_expressions_run_column_wise_and_agree_with_rows() {
    let (docs, batch) = orders();
    for source in VECTORIZED {
        let expr = Expr::parse(source).unwrap();
        let array = expr
            .evaluate_vectorized(&batch)
            .unwrap_or_else(|e| panic!("{source} fell back to rows: {e}"));
        let got = weir_expr::to_values(array.as_ref()).unwrap();
        let rows = weir_expr::to_values(&arrow_array::StructArray::from(batch.clone())).unwrap();
        for (i, row) in rows.iter().enumerate() {
            let want = expr.search(row).unwrap();
            assert_eq!(got[i], want, "{source}, row {i}: {}", docs[i]);
        }
    }
}

#[test]
fn a_row_that_fails_fails_alone() {
    let (_, batch) = orders();
    // `length(null)` is a type error in JMESPath: rows whose tier is null fail, the rest go on.
    let out = Expr::parse("length(customer.tier)")
        .unwrap()
        .evaluate_rows(&batch)
        .unwrap();
    let failed: Vec<usize> = out.errors.iter().map(|(i, _)| *i).collect();
    assert_eq!(failed, (0..50).step_by(4).collect::<Vec<_>>());
    assert!(
        out.errors[0].1.to_string().contains("length()"),
        "{}",
        out.errors[0].1
    );
    assert_eq!(
        weir_expr::to_values(out.array.as_ref()).unwrap()[1],
        Value::Int(4)
    );
}

#[test]
fn cast_gives_the_arrow_type_it_names() {
    let (_, batch) = orders();
    for (source, want) in [
        ("cast(amount, 'int32')", DataType::Int32),
        ("cast(amount, 'float32')", DataType::Float32),
        ("cast(ts, 'uint64')", DataType::UInt64),
        ("cast(id, 'int64')", DataType::Int64), // nothing parses: all null, still int64
        ("cast(amount, 'utf8')", DataType::Utf8),
        (
            "cast(ts, 'timestamp')",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        ),
    ] {
        let out = Expr::parse(source).unwrap().evaluate(&batch).unwrap();
        assert_eq!(out.data_type(), &want, "{source}");
    }
    let out = Expr::parse("cast(amount, 'int32')")
        .unwrap()
        .evaluate(&batch)
        .unwrap();
    let v = weir_expr::to_values(out.as_ref()).unwrap();
    assert_eq!(v[1], Value::Int(37), "37.5 truncates toward zero");
}
