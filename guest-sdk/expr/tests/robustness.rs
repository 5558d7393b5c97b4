//! Whatever text a config holds, parsing and evaluating never panic: random token soup either
//! fails to parse with a position inside the text, or evaluates (to a value or an error) on a
//! document and on a batch.

// Test code: a panic is the failure report.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use weir_expr::{Expr, Value};

fn soup() -> impl Strategy<Value = String> {
    let token = prop::sample::select(vec![
        "a",
        "b",
        "items",
        "@",
        ".",
        "*",
        "[",
        "]",
        "[]",
        "[?",
        "{",
        "}",
        "(",
        ")",
        ",",
        ":",
        "|",
        "||",
        "&&",
        "!",
        "==",
        "!=",
        "<",
        ">=",
        "&",
        "+",
        "-",
        "/",
        "//",
        "%",
        "`1`",
        "`\"x\"`",
        "`[1,2]`",
        "'s'",
        "\"q\"",
        "0",
        "-1",
        "2",
        "length",
        "sort_by",
        "abs",
        "not_null",
        "to_string",
        "cast",
        "'int8'",
        "`null`",
        " ",
        "`",
        "'",
        "\"",
        "\\",
        "é",
    ]);
    prop::collection::vec(token, 0..16).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, .. ProptestConfig::default() })]

    #[test]
    fn never_panics(source in soup()) {
        match Expr::parse(&source) {
            Err(e) => prop_assert!(e.position <= source.chars().count(), "{e}"),
            Ok(expr) => {
                let doc = Value::parse_json(r#"{"a": {"b": [1, 2]}, "b": "x", "items": [{"a": 1}, {"a": null}]}"#).unwrap();
                let _ = expr.search(&doc);
                let batch = weir_expr::from_values(std::slice::from_ref(&doc)).unwrap();
                let batch = arrow_array::RecordBatch::from(
                    batch.as_any().downcast_ref::<arrow_array::StructArray>().unwrap().clone(),
                );
                let _ = expr.evaluate_rows(&batch);
            }
        }
    }
}
