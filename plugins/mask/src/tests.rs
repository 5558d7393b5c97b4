use weir_expr::{Expr, Value};
use weir_guest_sdk::arrow_array::{BooleanArray, Float64Array, Int64Array};
use weir_guest_sdk::arrow_schema::Fields;
use weir_guest_sdk::serde_json::{json, Value as Json};
use weir_guest_sdk::testing;

use super::*;

/// Customers (a struct, null in row 2), cards (a struct), phones, and an integer id.
fn batch() -> RecordBatch {
    let email: ArrayRef = Arc::new(StringArray::from(vec![
        Some("ann@example.com"),
        None,
        Some("ghost@example.com"),
        Some("bob@example.com"),
    ]));
    let name: ArrayRef = Arc::new(StringArray::from(vec!["Ann", "Cy", "Ghost", "Bob"]));
    let customer: ArrayRef = Arc::new(StructArray::new(
        Fields::from(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("email", DataType::Utf8, true),
        ]),
        vec![name, email],
        Some(vec![true, true, false, true].into()),
    ));
    let brand: ArrayRef = Arc::new(StringArray::from(vec!["visa", "amex", "visa", "mc"]));
    let last4: ArrayRef = Arc::new(StringArray::from(vec![
        Some("4242"),
        Some("0005"),
        None,
        Some("4444"),
    ]));
    let card: ArrayRef = Arc::new(StructArray::new(
        Fields::from(vec![
            Field::new("brand", DataType::Utf8, true),
            Field::new("last4", DataType::Utf8, true),
        ]),
        vec![brand, last4],
        None,
    ));
    let phone: ArrayRef = Arc::new(StringArray::from(vec![
        Some("+4915112345678"),
        Some("12345"),
        Some("1234"),
        None,
    ]));
    let id: ArrayRef = Arc::new(Int64Array::from(vec![Some(42), Some(7), None, Some(1000)]));
    let ok: ArrayRef = Arc::new(BooleanArray::from(vec![true, false, true, false]));
    RecordBatch::try_from_iter(vec![
        ("customer", customer),
        ("card", card),
        ("phone", phone),
        ("id", id),
        ("ok", ok),
    ])
    .unwrap()
}

fn init(params: Json) -> Result<Mask, Error> {
    testing::init::<Mask>(&params.to_string())
}

fn run(params: Json) -> RecordBatch {
    testing::run(&mut init(params).unwrap(), &batch())
        .unwrap()
        .batch
}

fn strings(array: &ArrayRef) -> Vec<Option<String>> {
    array
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn child(batch: &RecordBatch, column: &str, field: &str) -> ArrayRef {
    let s = batch.column_by_name(column).unwrap().as_struct();
    Arc::clone(s.column_by_name(field).unwrap())
}

/// What the expression `sha256(v, salt)` gives for `{"v": value}`: the reference the hash rule
/// must match.
fn sha256_expr(value: Json, salt: &str) -> String {
    let expr = Expr::parse(&format!("sha256(v, '{salt}')")).unwrap();
    match expr
        .search(&Value::from_json(json!({ "v": value })))
        .unwrap()
    {
        Value::String(s) => s,
        other => panic!("sha256 gave {other:?}"),
    }
}

#[test]
fn nested_fields_are_masked_and_the_rest_kept() {
    let out = run(json!({"fields": {
        "customer.email": {"hash": {"salt": "s3cret"}},
        "card.last4": {"fixed": "****"},
        "phone": {"partial": {"keep_last": 4}},
    }}));
    assert_eq!(out.num_columns(), 5);
    // Struct validity and untouched children are kept.
    let customer = out.column_by_name("customer").unwrap();
    assert!(customer.is_null(2) && customer.is_valid(0));
    assert_eq!(
        strings(&child(&out, "customer", "name")),
        strings(&child(&batch(), "customer", "name"))
    );
    let emails = strings(&child(&out, "customer", "email"));
    assert_eq!(
        emails[0].as_deref(),
        Some(sha256_expr(json!("ann@example.com"), "s3cret").as_str())
    );
    assert_eq!(emails[1], None, "null stays null");
    assert_eq!(
        strings(&child(&out, "card", "last4")),
        [
            Some("****".into()),
            Some("****".into()),
            None,
            Some("****".into())
        ]
    );
    assert_eq!(
        strings(&child(&out, "card", "brand"))[0].as_deref(),
        Some("visa")
    );
    // Short values are masked whole.
    assert_eq!(
        strings(out.column_by_name("phone").unwrap()),
        [
            Some("**********5678".into()),
            Some("*2345".into()),
            Some("****".into()),
            None
        ]
    );
}

#[test]
fn hashes_agree_with_the_sha256_expression() {
    let out = run(json!({"fields": {"id": {"hash": {"salt": "pepper"}}, "phone": {"hash": {}}}}));
    // The same columns hashed by the expression language, column-wise and per document.
    for (column, expr) in [("id", "sha256(id, 'pepper')"), ("phone", "sha256(phone)")] {
        let expected = Expr::parse(expr).unwrap().evaluate(&batch()).unwrap();
        assert_eq!(
            strings(out.column_by_name(column).unwrap()),
            strings(&expected),
            "{expr}"
        );
    }
    // Floats hash as JSON writes them, as the expression does.
    let x: ArrayRef = Arc::new(Float64Array::from(vec![
        Some(1.0),
        Some(0.1),
        None,
        Some(1e300),
    ]));
    let floats = RecordBatch::try_from_iter(vec![("x", x)]).unwrap();
    let mut m = init(json!({"fields": {"x": {"hash": {"salt": "s"}}}})).unwrap();
    let out_x = testing::run(&mut m, &floats).unwrap().batch;
    let expected = Expr::parse("sha256(x, 's')")
        .unwrap()
        .evaluate(&floats)
        .unwrap();
    assert_eq!(strings(out_x.column(0)), strings(&expected));
    let ids = strings(out.column_by_name("id").unwrap());
    assert_eq!(
        ids[0].as_deref(),
        Some(sha256_expr(json!(42), "pepper").as_str())
    );
    assert_eq!(ids[2], None);
    assert_eq!(ids[0].as_ref().map(String::len), Some(64));
}

#[test]
fn numbers_are_masked_through_their_text() {
    let out = run(json!({"fields": {"id": {"partial": {"keep_first": 1, "char": "#"}}}}));
    let id = out.column_by_name("id").unwrap();
    assert_eq!(id.data_type(), &DataType::Utf8);
    assert_eq!(
        strings(id),
        [
            Some("4#".into()),
            Some("#".into()),
            None,
            Some("1###".into())
        ]
    );
    let values: Vec<Option<f64>> = vec![Some(2.0), Some(0.25), None];
    assert_eq!(
        strings(&(Arc::new(floats(values.into_iter())) as ArrayRef)),
        [Some("2.0".into()), Some("0.25".into()), None]
    );
}

#[test]
fn only_the_top_level_columns_cross() {
    let m = init(json!({"fields": {"card.last4": {"fixed": "x"}, "card.brand": {"fixed": "y"}, "phone": {"fixed": "z"}}}))
        .unwrap();
    assert_eq!(
        testing::manifest(&m).reads,
        Some(vec!["card".into(), "phone".into()])
    );
    // A path the batch lacks is left alone.
    let out = run(json!({"fields": {"nope.x": {"fixed": "x"}, "card.nope": {"fixed": "x"}}}));
    assert_eq!(out.columns(), batch().columns());
}

#[test]
fn bad_params_and_types_are_refused_with_the_path() {
    let refused = |params: Json| init(params).unwrap_err().0;
    let e = refused(json!({"fields": {"card": {"fixed": "x"}, "card.last4": {"fixed": "y"}}}));
    assert!(e.starts_with("fields.card"), "{e}");
    let e = refused(json!({"fields": {"card..last4": {"fixed": "x"}}}));
    assert!(e.starts_with("fields.card..last4: not a field path"), "{e}");
    let e = refused(json!({"fields": {"phone": {"blur": {}}}}));
    assert!(e.contains("invalid params") && e.contains("blur"), "{e}");
    let e = refused(json!({"fields": {"phone": {"hash": {"salt": "x", "pepper": "y"}}}}));
    assert!(e.contains("pepper"), "{e}");
    let e = refused(json!({"fields": {}}));
    assert!(e.starts_with("fields: "), "{e}");

    let mut m = init(json!({"fields": {"phone.x": {"fixed": "x"}}})).unwrap();
    let e = testing::run(&mut m, &batch()).unwrap_err().0;
    assert!(e.contains("`phone` is Utf8, not a struct"), "{e}");
    let mut m = init(json!({"fields": {"ok": {"fixed": "x"}}})).unwrap();
    let e = testing::run(&mut m, &batch()).unwrap_err().0;
    assert!(e.contains("`ok` is Boolean"), "{e}");
}
