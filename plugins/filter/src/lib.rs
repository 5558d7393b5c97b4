//! # `builtin:filter`: keep the rows where an expression is true
//!
//! ```yaml
//! transforms:
//!   - plugin: builtin:filter
//!     params: { where: "amount > `100` && customer.tier == 'gold'" }
//! ```
//!
//! Input rows `{"amount": 150, "customer": {"tier": "gold"}}` and
//! `{"amount": 150, "customer": {"tier": "free"}}`: only the first goes on.
//!
//! `where` is a weir expression (JMESPath with arithmetic and more; see `docs/EXPRESSIONS.md`).
//! A row is kept when the result is truthy as JMESPath defines it: `false`, `null`, `""`, `[]`
//! and `{}` drop the row, and so does an absent field (it reads as `null`). A row whose evaluation
//! fails (say `abs(code) > \`1\`` where `code` is a string) is not dropped silently: it fails
//! alone, and the host sends its message to the dead-letter route with the reason. Only the
//! fields the expression names cross into the sandbox (of a list it only takes the `length` of,
//! not the elements), and the answer is one bitmap.

use serde::Deserialize;
use weir_expr::Expr;
use weir_guest_sdk::expr::{self, RowErrors};
use weir_guest_sdk::{export_transform, Error, Merge, Output, RecordBatch, Transform};

/// The plugin's params.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The condition a row must meet to go on.
    #[serde(rename = "where")]
    pub condition: String,
}

/// The filter transform.
#[derive(Debug)]
pub struct Filter {
    condition: Expr,
}

impl Transform for Filter {
    type Params = Params;

    fn new(p: Params) -> Result<Self, Error> {
        Ok(Filter {
            condition: expr::parse("where", &p.condition)?,
        })
    }

    fn reads(&self) -> Option<Vec<String>> {
        self.condition.reads().map(|r| r.paths)
    }

    fn lengths(&self) -> Option<Vec<String>> {
        self.condition.reads().map(|r| r.lengths)
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        let mut errors = RowErrors::new(batch.num_rows());
        let result = expr::evaluate("where", &self.condition, &batch, &mut errors)?;
        Ok(Output::Merge(Merge {
            keep: Some(weir_expr::truthy(result.as_ref())),
            errors: errors.into_array(),
            columns: Vec::new(),
        }))
    }
}

export_transform!(Filter);

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use weir_guest_sdk::abi::Applied;
    use weir_guest_sdk::arrow_array::{
        ArrayRef, Float64Array, Int32Array, ListArray, StringArray, StructArray,
    };
    use weir_guest_sdk::arrow_schema::{DataType, Field};
    use weir_guest_sdk::testing;

    fn batch() -> RecordBatch {
        let tier: ArrayRef = Arc::new(StringArray::from(vec![
            Some("gold"),
            Some("free"),
            None,
            Some("gold"),
        ]));
        let customer: ArrayRef = Arc::new(StructArray::new(
            vec![Field::new("tier", DataType::Utf8, true)].into(),
            vec![tier],
            Some(vec![true, true, true, false].into()),
        ));
        let amount: ArrayRef = Arc::new(Float64Array::from(vec![
            Some(50.0),
            Some(150.0),
            Some(100.0),
            None,
        ]));
        let qty: ArrayRef = Arc::new(Int32Array::from(vec![1, 2, 3, 4]));
        let tags: ArrayRef = Arc::new(ListArray::from_iter_primitive::<
            weir_guest_sdk::arrow_array::types::Int32Type,
            _,
            _,
        >(vec![
            Some(vec![Some(1), Some(5)]),
            Some(vec![]),
            None,
            Some(vec![Some(7)]),
        ]));
        RecordBatch::try_from_iter(vec![
            ("amount", amount),
            ("customer", customer),
            ("qty", qty),
            ("tags", tags),
        ])
        .unwrap()
    }

    fn params(condition: &str) -> String {
        weir_guest_sdk::serde_json::json!({ "where": condition }).to_string()
    }

    fn run(condition: &str) -> Applied {
        let mut f = testing::init::<Filter>(&params(condition)).unwrap();
        testing::run(&mut f, &batch()).unwrap()
    }

    fn kept(condition: &str) -> Vec<u32> {
        run(condition).rows.unwrap().values().to_vec()
    }

    #[test]
    fn comparisons_and_logic() {
        assert_eq!(kept("amount > `99`"), vec![1, 2]);
        assert_eq!(kept("amount <= `100`"), vec![0, 2]);
        assert_eq!(kept("qty != `2`"), vec![0, 2, 3]);
        assert_eq!(kept("qty >= `2` && qty < `4`"), vec![1, 2]);
        assert_eq!(kept("qty == `1` || amount > `120`"), vec![0, 1]);
        assert_eq!(kept("amount * `2` > `250`"), vec![1]);
    }

    #[test]
    fn nested_structs_and_null_parents() {
        // Row 3's customer is null, so its tier reads as null and the row is dropped.
        assert_eq!(kept("customer.tier == 'gold'"), vec![0]);
        assert_eq!(kept("customer.tier"), vec![0, 1]);
    }

    #[test]
    fn lists_and_truthiness() {
        // An empty list is falsy, and so is a null one.
        assert_eq!(kept("tags"), vec![0, 3]);
        assert_eq!(kept("length(tags) > `1`"), vec![0]);
        assert_eq!(kept("tags[?@ > `4`]"), vec![0, 3]);
    }

    #[test]
    fn absent_columns_read_as_null() {
        assert_eq!(kept("nope"), Vec::<u32>::new());
        assert_eq!(kept("!nope"), vec![0, 1, 2, 3]);
    }

    #[test]
    fn only_the_columns_read_cross() {
        let f = testing::init::<Filter>(&params(
            "customer.tier == 'x' && qty > `1` && length(tags) > `0`",
        ))
        .unwrap();
        let m = testing::manifest(&f);
        assert_eq!(
            m.reads,
            Some(vec!["customer.tier".to_string(), "qty".to_string()])
        );
        assert_eq!(m.lengths, Some(vec!["tags".to_string()]));
        // What crosses is the struct with the one field, and the list without its elements.
        let input = weir_guest_sdk::abi::project_reads(&batch(), &m).unwrap();
        let schema = input.schema();
        let customer = schema.field_with_name("customer").unwrap();
        assert!(matches!(customer.data_type(), DataType::Struct(f) if f.len() == 1));
        let tags = schema.field_with_name("tags").unwrap();
        assert!(
            matches!(tags.data_type(), DataType::List(item) if item.data_type() == &DataType::Null)
        );
        // Row 0 is gold with two tags; row 1's tags are empty, row 2's null.
        assert_eq!(
            kept("length(tags) > `1` && customer.tier == 'gold'"),
            vec![0]
        );
        assert_eq!(kept("length(tags) == `0`"), vec![1]);
        let f = testing::init::<Filter>(&params("length(keys(@)) > `1`")).unwrap();
        assert_eq!(testing::manifest(&f).reads, None);
    }

    #[test]
    fn failing_rows_fail_alone_with_the_reason() {
        // `||` stops at rows 2 and 3; rows 0 and 1 reach `abs` of a string, which fails.
        let applied = run("qty > `2` || abs(customer.tier) > `0`");
        assert_eq!(applied.rows.unwrap().values().to_vec(), vec![2, 3]);
        let failed: Vec<u32> = applied.errors.iter().map(|(row, _)| *row).collect();
        assert_eq!(failed, vec![0, 1]);
        let (_, reason) = &applied.errors[0];
        assert!(reason.starts_with("where: abs()"), "{reason}");
    }

    #[test]
    fn bad_expressions_are_refused_with_the_position() {
        let e = testing::init::<Filter>(&params("amount > ")).unwrap_err();
        assert!(e.0.starts_with("where: "), "{e}");
        assert!(e.0.contains("at position 9"), "{e}");
        assert!(e.0.contains("\n  amount > \n"), "{e}");
        let e = testing::init::<Filter>(r#"{"column": "a"}"#).unwrap_err();
        assert!(e.0.contains("invalid params"), "{e}");
    }
}
