use weir_guest_sdk::abi::Applied;
use weir_guest_sdk::arrow_array::types::Float64Type;
use weir_guest_sdk::arrow_array::{Float64Array, Int32Array, Int64Array, StringArray, StructArray};
use weir_guest_sdk::arrow_schema::{Field, Fields};
use weir_guest_sdk::serde_json::{json, Value};
use weir_guest_sdk::testing;

use super::*;

const FX_CSV: &str = "currency,rate,region\nEUR,1.0,eu\nUSD,0.5,us\nGBP,2.0,uk\n";

/// Orders: amounts, currencies (one unknown, one null), an int32 customer id, a struct.
fn batch() -> RecordBatch {
    let amount: ArrayRef = Arc::new(Float64Array::from(vec![10.0, 200.0, 30.0, 40.0]));
    let currency: ArrayRef = Arc::new(StringArray::from(vec![
        Some("USD"),
        Some("EUR"),
        Some("XXX"),
        None,
    ]));
    let customer_id: ArrayRef = Arc::new(Int32Array::from(vec![Some(2), Some(1), None, Some(9)]));
    let country: ArrayRef = Arc::new(StringArray::from(vec!["uk", "eu", "eu", "us"]));
    let customer: ArrayRef = Arc::new(StructArray::new(
        Fields::from(vec![Field::new("country", DataType::Utf8, true)]),
        vec![country],
        None,
    ));
    RecordBatch::try_from_iter(vec![
        ("amount", amount),
        ("currency", currency),
        ("customer_id", customer_id),
        ("customer", customer),
    ])
    .unwrap()
}

fn init(name: &str, table: impl Into<Vec<u8>>, params: Value) -> Result<Enrich, Error> {
    testing::grant_file(name, table);
    testing::init::<Enrich>(&params.to_string())
}

fn run(name: &str, table: impl Into<Vec<u8>>, params: Value) -> Applied {
    let mut t = init(name, table, params).unwrap();
    testing::run(&mut t, &batch()).unwrap()
}

fn floats(applied: &Applied, column: &str) -> Vec<Option<f64>> {
    let column = applied.batch.column_by_name(column).unwrap();
    column.as_primitive::<Float64Type>().iter().collect()
}

fn strings(applied: &Applied, column: &str) -> Vec<Option<String>> {
    let column = applied.batch.column_by_name(column).unwrap();
    let column = cast(column, &DataType::Utf8).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

/// The output's column names, joined by commas.
fn names(applied: &Applied) -> String {
    let schema = applied.batch.schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    names.join(",")
}

#[test]
fn csv_table_joins_by_string_key_and_misses_are_null() {
    let out = run(
        "fx",
        FX_CSV,
        json!({"table": "fx", "on": "currency", "key": "currency"}),
    );
    assert_eq!(
        names(&out),
        "amount,currency,customer_id,customer,rate,region"
    );
    assert_eq!(floats(&out, "rate"), [Some(0.5), Some(1.0), None, None]);
    assert_eq!(
        strings(&out, "region"),
        [Some("us".into()), Some("eu".into()), None, None]
    );
    assert!(out.errors.is_empty());
}

#[test]
fn prefix_columns_and_set_after_the_join() {
    let out = run(
        "fx",
        FX_CSV,
        json!({
            "table": "fx", "on": "currency", "key": "currency", "columns": ["rate"],
            "prefix": "fx_",
            "set": {"eur": "amount * fx_rate", "source": "'fx-2024'"},
        }),
    );
    assert_eq!(
        names(&out),
        "amount,currency,customer_id,customer,fx_rate,eur,source"
    );
    assert_eq!(floats(&out, "eur"), [Some(5.0), Some(200.0), None, None]);
    assert_eq!(strings(&out, "source")[2].as_deref(), Some("fx-2024"));
    let t = init(
        "fx",
        FX_CSV,
        json!({"table": "fx", "on": "currency", "key": "currency", "prefix": "fx_",
               "set": {"eur": "amount * fx_rate"}}),
    )
    .unwrap();
    // `fx_rate` is made by the join, so it is not asked of the batch.
    assert_eq!(
        testing::manifest(&t).reads,
        Some(vec!["amount".into(), "currency".into()])
    );
}

#[test]
fn json_lines_table_with_integer_keys_of_other_widths_and_as_text() {
    let table = "{\"id\": 1, \"name\": \"Ann\"}\n{\"id\": 2, \"name\": \"Bob\"}\n\n";
    // int64 keys in the table and int32 in the batch compare as integers; a string key against
    // integer keys compares as text.
    for on in ["customer_id", "to_string(customer_id)"] {
        let out = run(
            "people",
            table,
            json!({"table": "people", "on": on, "key": "id"}),
        );
        assert_eq!(
            strings(&out, "name"),
            [Some("Bob".into()), Some("Ann".into()), None, None],
            "{on}"
        );
    }
}

#[test]
fn parquet_table_and_nested_keys() {
    let country: ArrayRef = Arc::new(StringArray::from(vec!["eu", "uk", "us"]));
    let vat: ArrayRef = Arc::new(Int64Array::from(vec![Some(20), Some(17), None]));
    let table = RecordBatch::try_from_iter(vec![("country", country), ("vat", vat)]).unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, table.schema(), None).unwrap();
    writer.write(&table).unwrap();
    writer.close().unwrap();
    assert!(bytes.starts_with(b"PAR1"));
    let out = run(
        "vat",
        bytes,
        json!({"table": "vat", "on": "customer.country", "key": "country"}),
    );
    assert_eq!(
        strings(&out, "vat"),
        [
            Some("17".into()),
            Some("20".into()),
            Some("20".into()),
            None
        ]
    );
}

#[test]
fn formats_are_sniffed_or_given() {
    assert_eq!(sniff(b"PAR1...."), Format::Parquet);
    assert_eq!(sniff(b"  \n{\"a\": 1}"), Format::Jsonl);
    assert_eq!(sniff(b"a,b\n1,2\n"), Format::Csv);
    // A CSV file read as JSON lines is an error naming the table and format.
    let e = init(
        "fx",
        FX_CSV,
        json!({"table": "fx", "format": "jsonl", "on": "currency", "key": "currency"}),
    )
    .unwrap_err();
    assert!(e.0.starts_with("table `fx` (Jsonl): "), "{e}");
}

#[test]
fn duplicate_keys_are_refused_naming_the_key() {
    let table = "currency,rate\nEUR,1.0\nUSD,0.5\nEUR,1.1\n";
    let e = init(
        "dup",
        table,
        json!({"table": "dup", "on": "currency", "key": "currency"}),
    )
    .unwrap_err();
    assert!(e.0.contains("`EUR` stands twice, in rows 1 and 3"), "{e}");
    assert!(e.0.starts_with("key: "), "{e}");
}

#[test]
fn failing_rows_fail_alone() {
    let out = run(
        "fx",
        FX_CSV,
        json!({"table": "fx", "on": "currency", "key": "currency",
               "set": {"x": "amount > `100` || abs(currency)"}}),
    );
    let failed: Vec<u32> = out.errors.iter().map(|(row, _)| *row).collect();
    assert_eq!(failed, [0, 2, 3]);
    assert!(
        out.errors[0].1.starts_with("set.x: abs()"),
        "{:?}",
        out.errors
    );
    assert_eq!(out.batch.num_rows(), 1);
}

#[test]
fn bad_params_are_refused_with_the_param() {
    let fx = |params: Value| init("fx", FX_CSV, params).unwrap_err().0;
    let e = fx(json!({"table": "fx", "on": "currency ==", "key": "currency"}));
    assert!(e.starts_with("on: ") && e.contains("at position 11"), "{e}");
    let e = fx(json!({"table": "fx", "on": "currency", "key": "cur"}));
    assert!(e.starts_with("key: table `fx` has no column `cur`"), "{e}");
    assert!(e.contains("currency, rate, region"), "{e}");
    let e = fx(json!({"table": "fx", "on": "currency", "key": "currency", "columns": ["fee"]}));
    assert!(e.starts_with("columns: "), "{e}");
    let e = fx(json!({"table": "fx", "on": "currency", "key": "currency", "set": {"a": "b +"}}));
    assert!(e.starts_with("set.a: "), "{e}");
    let e = fx(json!({"table": "nope", "on": "currency", "key": "currency"}));
    assert!(e.starts_with("table: no file `nope` is granted"), "{e}");
    let e = fx(json!({"table": "fx", "on": "currency", "key": "currency", "jion": "left"}));
    assert!(e.contains("invalid params") && e.contains("jion"), "{e}");
}

#[test]
fn keys_that_are_not_scalars_fail_the_batch() {
    let mut t = init(
        "fx",
        FX_CSV,
        json!({"table": "fx", "on": "customer", "key": "currency"}),
    )
    .unwrap();
    let e = testing::run(&mut t, &batch()).unwrap_err();
    assert!(e.0.contains("keys must be strings or numbers"), "{e}");
}
