use weir_guest_sdk::abi::Applied;
use weir_guest_sdk::arrow_array::cast::AsArray;
use weir_guest_sdk::arrow_array::types::{Float64Type, Int64Type};
use weir_guest_sdk::arrow_array::{Float64Array, ListArray, StringArray};
use weir_guest_sdk::arrow_schema::{DataType, Field, Fields};
use weir_guest_sdk::serde_json::{json, Value};
use weir_guest_sdk::testing;

use super::*;

/// Orders: an id, an amount and a rate, a customer struct (null in row 3), a list of items.
fn batch() -> RecordBatch {
    let id: ArrayRef = Arc::new(StringArray::from(vec!["o-0", "o-1", "o-2", "o-3"]));
    let amount: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(50.0),
        Some(150.0),
        None,
        Some(300.0),
    ]));
    let rate: ArrayRef = Arc::new(Float64Array::from(vec![1.0, 0.5, 2.0, 1.0]));
    let name: ArrayRef = Arc::new(StringArray::from(vec![
        Some("Ann"),
        Some("Bob"),
        None,
        Some("ghost"),
    ]));
    let tier: ArrayRef = Arc::new(StringArray::from(vec!["gold", "free", "gold", "free"]));
    let customer: ArrayRef = Arc::new(StructArray::new(
        Fields::from(vec![
            Field::new("name", DataType::Utf8, true),
            Field::new("tier", DataType::Utf8, true),
        ]),
        vec![name, tier],
        Some(vec![true, true, true, false].into()),
    ));
    let items: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
        Some(vec![Some(1), Some(2)]),
        Some(vec![]),
        Some(vec![]),
        Some(vec![Some(3)]),
    ]));
    RecordBatch::try_from_iter(vec![
        ("id", id),
        ("amount", amount),
        ("rate", rate),
        ("customer", customer),
        ("items", items),
    ])
    .unwrap()
}

fn init(params: Value) -> Result<Project, Error> {
    testing::init::<Project>(&params.to_string())
}

fn run(params: Value) -> Applied {
    testing::run(&mut init(params).unwrap(), &batch()).unwrap()
}

fn names(applied: &Applied) -> Vec<String> {
    let schema = applied.batch.schema();
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

fn strings(applied: &Applied, column: &str) -> Vec<Option<String>> {
    let column = applied.batch.column_by_name(column).unwrap();
    column
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

#[test]
fn select_gives_exactly_the_hash_in_its_order() {
    let out = run(json!({
        "select": "{eur: amount * rate, id: id, name: customer.name, items: length(items)}"
    }));
    assert_eq!(names(&out), ["eur", "id", "name", "items"]);
    assert_eq!(out.batch.num_rows(), 4);
    let eur = out.batch.column_by_name("eur").unwrap();
    let eur: Vec<Option<f64>> = eur.as_primitive::<Float64Type>().iter().collect();
    assert_eq!(eur, [Some(50.0), Some(75.0), None, Some(300.0)]);
    // Row 3's customer is null, so its name is too.
    assert_eq!(
        strings(&out, "name"),
        [Some("Ann".into()), Some("Bob".into()), None, None]
    );
    let items = out.batch.column_by_name("items").unwrap();
    let items: Vec<Option<i64>> = items.as_primitive::<Int64Type>().iter().collect();
    assert_eq!(items, [Some(2), Some(0), Some(0), Some(1)]);
}

#[test]
fn select_declares_what_it_reads_and_keeps() {
    let p = init(json!({"select": "{id: id, tier: customer.tier}"})).unwrap();
    let m = testing::manifest(&p);
    // Plain fields are copied by the host: nothing crosses the boundary for them.
    assert_eq!(m.reads, Some(vec![]));
    let copy = |name: &str, path: &str| weir_guest_sdk::CopyColumn {
        name: name.into(),
        path: path.into(),
    };
    assert_eq!(
        m.copy,
        Some(vec![copy("id", "id"), copy("tier", "customer.tier")])
    );
    assert_eq!(m.select, Some(vec!["id".into(), "tier".into()]));
    assert_eq!(m.drop, None);
    // A computed key crosses, with only what it reads: of `items`, only the length.
    let p = init(json!({"select": "{id: id, n: length(items)}"})).unwrap();
    let m = testing::manifest(&p);
    assert_eq!(m.reads, Some(vec![]));
    assert_eq!(m.lengths, Some(vec!["items".into()]));
    assert_eq!(m.copy, Some(vec![copy("id", "id")]));
    let p = init(json!({"select": "{n: length(items), s: items[0].sku}"})).unwrap();
    let m = testing::manifest(&p);
    assert_eq!(m.reads, Some(vec!["items".into()]));
    assert_eq!(
        m.lengths,
        Some(vec!["items".into()]),
        "sent whole: read in full too"
    );
}

#[test]
fn columns_rename_and_drop_keep_the_rest() {
    // Raw JSON: the order of `columns` is the order of the new columns.
    let params = r#"{
        "columns": {"tier": "upper(customer.tier)", "eur": "amount * rate"},
        "rename": {"id": "order_id"},
        "drop": ["rate"]
    }"#;
    let out = testing::run(&mut testing::init::<Project>(params).unwrap(), &batch()).unwrap();
    assert_eq!(
        names(&out),
        ["amount", "customer", "items", "tier", "eur", "order_id"]
    );
    assert_eq!(strings(&out, "order_id")[1].as_deref(), Some("o-1"));
    // The struct is null in row 3, so the expression reads null there.
    assert_eq!(
        strings(&out, "tier"),
        [
            Some("GOLD".into()),
            Some("FREE".into()),
            Some("GOLD".into()),
            None
        ]
    );
    let p = init(json!({"columns": {"eur": "amount * rate"}, "rename": {"id": "order_id"}}));
    let m = testing::manifest(&p.unwrap());
    // The renamed column is copied by the host: it does not cross.
    assert_eq!(m.reads, Some(vec!["amount".into(), "rate".into()]));
    assert_eq!(m.drop, Some(vec!["id".into()]));
    assert_eq!(
        m.copy,
        Some(vec![weir_guest_sdk::CopyColumn {
            name: "order_id".into(),
            path: "id".into()
        }])
    );
}

#[test]
fn columns_replace_by_name_and_see_the_input() {
    let out = run(json!({"columns": {"amount": "amount * `2`", "twice": "amount * `2`"}}));
    assert_eq!(
        names(&out),
        ["id", "amount", "rate", "customer", "items", "twice"]
    );
    let amount = out.batch.column_by_name("amount").unwrap();
    let twice = out.batch.column_by_name("twice").unwrap();
    assert_eq!(
        amount, twice,
        "`twice` saw the input amount, not the new one"
    );
}

#[test]
fn renames_can_swap() {
    let out = run(json!({"rename": {"id": "amount", "amount": "id"}}));
    assert_eq!(names(&out), ["id", "amount", "rate", "customer", "items"]);
    assert_eq!(strings(&out, "amount")[0].as_deref(), Some("o-0"));
    let id = out.batch.column_by_name("id").unwrap();
    assert_eq!(id.as_primitive::<Float64Type>().value(1), 150.0);
}

#[test]
fn failing_rows_fail_alone() {
    // Rows 0 and 2 stop at `&&`; rows 1 and 3 take `abs` of a string (or of null).
    let out = run(json!({"columns": {"x": "amount > `100` && abs(customer.name)"}}));
    let failed: Vec<u32> = out.errors.iter().map(|(row, _)| *row).collect();
    assert_eq!(failed, [1, 3]);
    assert!(
        out.errors[0].1.starts_with("columns.x: abs()"),
        "{:?}",
        out.errors
    );
    assert_eq!(out.rows.unwrap().values().to_vec(), [0, 2]);
    let out = run(json!({"select": "{id: id, x: amount > `100` && abs(customer.name)}"}));
    assert_eq!(out.errors.len(), 2);
    assert!(
        out.errors[0].1.starts_with("select: abs()"),
        "{:?}",
        out.errors
    );
    assert_eq!(
        strings(&out, "id"),
        [Some("o-0".into()), Some("o-2".into())]
    );
}

#[test]
fn a_batch_where_every_row_fails_fails_row_by_row() {
    // No row gives the hash a value, so its column has no struct type to split.
    let out = run(json!({"select": "{id: id, x: abs(customer.tier)}"}));
    assert_eq!(out.errors.len(), 4);
    assert_eq!(out.batch.num_rows(), 0);
}

#[test]
fn bad_params_are_refused_with_the_param_and_position() {
    let refused = |params: Value| init(params).unwrap_err().0;
    let e = refused(json!({"select": "{id: id, eur: amount *}"}));
    assert!(
        e.starts_with("select: ") && e.contains("at position 22"),
        "{e}"
    );
    assert!(e.contains("\n  {id: id, eur: amount *}\n"), "{e}");
    let e = refused(json!({"columns": {"eur": "amount + )"}}));
    assert!(
        e.starts_with("columns.eur: ") && e.contains("at position 9"),
        "{e}"
    );
    let e = refused(json!({"select": "[id, amount]"}));
    assert!(e.starts_with("select: must be a multi-select hash"), "{e}");
    let e = refused(json!({"select": "{id: id}", "drop": ["x"]}));
    assert!(
        e.starts_with("select: ") && e.contains("can't be combined"),
        "{e}"
    );
    let e = refused(json!({"select": "{id: id, id: amount}"}));
    assert!(e.contains("`id` is named twice"), "{e}");
    let e = refused(json!({"rename": {"a": "x", "b": "x"}}));
    assert!(e.starts_with("rename.b: "), "{e}");
    let e = refused(json!({"columns": {"x": "a"}, "drop": ["x"]}));
    assert!(e.starts_with("drop: "), "{e}");
    let e = refused(json!({}));
    assert!(e.starts_with("nothing to do"), "{e}");
    let e = refused(json!({"selcet": "{a: a}"}));
    assert!(e.contains("invalid params") && e.contains("selcet"), "{e}");
}

#[test]
fn absent_columns_give_null_columns() {
    // A hash over absent columns gives null columns of the batch's length.
    let out = run(json!({"select": "{id: id, nope: nope}"}));
    assert_eq!(out.batch.num_rows(), 4);
    let nope = out.batch.column_by_name("nope").unwrap();
    assert_eq!(nope.logical_null_count(), 4);
}
