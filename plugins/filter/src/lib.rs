//! # `builtin:filter`: keep the rows where a column compares true against a value
//!
//! ```yaml
//! transforms:
//!   - plugin: builtin:filter
//!     params: { column: customer.tier, op: "==", value: gold }
//! ```
//! Input `{"customer": {"tier": "gold"}}` and `{"customer": {"tier": "free"}}`: only the first
//! row goes on. `column` is a field name, dotted into nested structs; `op` is one of
//! `== != < <= > >=`; `value` is a JSON number, string or boolean. A row whose column is null,
//! or absent, is dropped. Only the column's top-level field crosses into the sandbox.
//!
//! The full expression language (`where: "amount > \`100\` && ..."`) is a separate plugin.

use std::sync::Arc;

use arrow_array::{
    Array, ArrayRef, BooleanArray, Datum, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, Int8Array, LargeStringArray, Scalar, StringArray, StringViewArray, StructArray,
    UInt16Array, UInt32Array, UInt64Array, UInt8Array,
};
use arrow_schema::DataType;
use serde::Deserialize;
use weir_guest_sdk::{export_transform, Error, Output, RecordBatch, Transform};

/// The comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Op {
    /// Equal.
    #[serde(rename = "==")]
    Eq,
    /// Not equal.
    #[serde(rename = "!=")]
    Ne,
    /// Less than.
    #[serde(rename = "<")]
    Lt,
    /// Less than or equal.
    #[serde(rename = "<=")]
    Le,
    /// Greater than.
    #[serde(rename = ">")]
    Gt,
    /// Greater than or equal.
    #[serde(rename = ">=")]
    Ge,
}

/// The plugin's params.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A column, dotted into structs: `amount`, `customer.tier`.
    pub column: String,
    /// The comparison.
    pub op: Op,
    /// What the column is compared with.
    pub value: serde_json::Value,
}

/// The literal side, typed once at init.
#[derive(Debug, Clone)]
enum Literal {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
}

/// The filter transform.
#[derive(Debug)]
pub struct Filter {
    path: Vec<String>,
    op: Op,
    literal: Literal,
}

impl Transform for Filter {
    type Params = Params;

    fn new(p: Params) -> Result<Self, Error> {
        let path: Vec<String> = p.column.split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(Error::new(format!(
                "column: `{}` is not a field name",
                p.column
            )));
        }
        let literal = match &p.value {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Literal::Int(i),
                None => Literal::Float(
                    n.as_f64()
                        .ok_or_else(|| Error::new("value: number out of range"))?,
                ),
            },
            serde_json::Value::String(s) => Literal::Str(s.clone()),
            serde_json::Value::Bool(b) => Literal::Bool(*b),
            other => {
                return Err(Error::new(format!(
                    "value: must be a number, string or boolean, not {other}"
                )))
            }
        };
        if matches!(literal, Literal::Bool(_)) && !matches!(p.op, Op::Eq | Op::Ne) {
            return Err(Error::new("op: booleans compare only with == and !="));
        }
        Ok(Filter {
            path,
            op: p.op,
            literal,
        })
    }

    fn reads(&self) -> Option<Vec<String>> {
        Some(vec![self.path[0].clone()])
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        let Some(column) = self.resolve(&batch)? else {
            // Absent column: every value is null, and null compares as false.
            return Ok(Output::keep(BooleanArray::from(vec![
                false;
                batch.num_rows()
            ])));
        };
        Ok(Output::keep(self.compare(&column)?))
    }
}

impl Filter {
    /// Walks the dotted path; `None` where a field is absent.
    fn resolve(&self, batch: &RecordBatch) -> Result<Option<ArrayRef>, Error> {
        let Some(mut current) = batch.column_by_name(&self.path[0]).cloned() else {
            return Ok(None);
        };
        for name in &self.path[1..] {
            let Some(s) = current.as_any().downcast_ref::<StructArray>() else {
                return Err(Error::new(format!(
                    "column: `{}` is {}, not a struct, so `.{name}` can't apply",
                    self.path.join("."),
                    current.data_type()
                )));
            };
            let Some(child) = s.column_by_name(name) else {
                return Ok(None);
            };
            // A null struct makes its children null too.
            current = match s.nulls() {
                Some(n) if n.null_count() > 0 => {
                    let combined = arrow_buffer_union(child.nulls(), n);
                    arrow_array::make_array(
                        child
                            .to_data()
                            .into_builder()
                            .nulls(Some(combined))
                            .build()?,
                    )
                }
                _ => Arc::clone(child),
            };
        }
        Ok(Some(current))
    }

    /// The comparison result over `column`, with the literal typed as the column is.
    fn compare(&self, column: &ArrayRef) -> Result<BooleanArray, Error> {
        let dt = column.data_type();
        let mismatch = || {
            Error::new(format!(
                "column `{}` is {dt}; it can't be compared with {:?}",
                self.path.join("."),
                self.literal
            ))
        };
        let (op, literal) = match &self.literal {
            Literal::Int(i) if dt.is_integer() => match int_literal(*i, dt) {
                Some(l) => (self.op, l),
                None => return Ok(constant(column, self.op.out_of_range(*i > 0))),
            },
            Literal::Float(f) if dt.is_integer() => {
                // Fold a fraction into an integer bound: `n > 2.5` is `n > 2`, `n < 2.5` is `n < 3`.
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    return self.compare_with(column, self.op, Literal::Int(*f as i64));
                }
                let bound = match self.op {
                    Op::Gt | Op::Le => f.floor(),
                    Op::Ge | Op::Lt => f.ceil(),
                    Op::Eq => return Ok(constant(column, false)),
                    Op::Ne => return Ok(constant(column, true)),
                };
                if !(-9.0e15..9.0e15).contains(&bound) {
                    return Ok(constant(column, self.op.out_of_range(bound > 0.0)));
                }
                return self.compare_with(column, self.op, Literal::Int(bound as i64));
            }
            Literal::Int(_) | Literal::Float(_) if dt.is_floating() => {
                let v = match self.literal {
                    Literal::Int(i) => i as f64,
                    Literal::Float(f) => f,
                    _ => return Err(mismatch()),
                };
                let lit: ArrayRef = match dt {
                    DataType::Float32 => Arc::new(Float32Array::from(vec![v as f32])),
                    DataType::Float64 => Arc::new(Float64Array::from(vec![v])),
                    _ => return Err(mismatch()),
                };
                (self.op, lit)
            }
            Literal::Str(s) => {
                let lit: ArrayRef = match dt {
                    DataType::Utf8 => Arc::new(StringArray::from(vec![s.as_str()])),
                    DataType::LargeUtf8 => Arc::new(LargeStringArray::from(vec![s.as_str()])),
                    DataType::Utf8View => Arc::new(StringViewArray::from(vec![s.as_str()])),
                    _ => return Err(mismatch()),
                };
                (self.op, lit)
            }
            Literal::Bool(b) if *dt == DataType::Boolean => {
                (self.op, Arc::new(BooleanArray::from(vec![*b])) as ArrayRef)
            }
            _ => return Err(mismatch()),
        };
        let lit = Scalar::new(literal);
        let col: &dyn Datum = column;
        Ok(match op {
            Op::Eq => arrow_ord::cmp::eq(col, &lit),
            Op::Ne => arrow_ord::cmp::neq(col, &lit),
            Op::Lt => arrow_ord::cmp::lt(col, &lit),
            Op::Le => arrow_ord::cmp::lt_eq(col, &lit),
            Op::Gt => arrow_ord::cmp::gt(col, &lit),
            Op::Ge => arrow_ord::cmp::gt_eq(col, &lit),
        }?)
    }

    fn compare_with(
        &self,
        column: &ArrayRef,
        op: Op,
        literal: Literal,
    ) -> Result<BooleanArray, Error> {
        let f = Filter {
            path: self.path.clone(),
            op,
            literal,
        };
        f.compare(column)
    }
}

impl Op {
    /// The result for every row when the literal lies beyond the column type's range
    /// (`above`: beyond its maximum).
    fn out_of_range(self, above: bool) -> bool {
        match self {
            Op::Eq => false,
            Op::Ne => true,
            Op::Lt | Op::Le => above,
            Op::Gt | Op::Ge => !above,
        }
    }
}

/// `value` for every non-null row of `column`, null elsewhere.
fn constant(column: &ArrayRef, value: bool) -> BooleanArray {
    BooleanArray::new(
        arrow_buffer::BooleanBuffer::collect_bool(column.len(), |_| value),
        column.logical_nulls(),
    )
}

/// A one-element array of `dt` holding `v`; `None` when `v` doesn't fit.
fn int_literal(v: i64, dt: &DataType) -> Option<ArrayRef> {
    Some(match dt {
        DataType::Int8 => Arc::new(Int8Array::from(vec![i8::try_from(v).ok()?])),
        DataType::Int16 => Arc::new(Int16Array::from(vec![i16::try_from(v).ok()?])),
        DataType::Int32 => Arc::new(Int32Array::from(vec![i32::try_from(v).ok()?])),
        DataType::Int64 => Arc::new(Int64Array::from(vec![v])),
        DataType::UInt8 => Arc::new(UInt8Array::from(vec![u8::try_from(v).ok()?])),
        DataType::UInt16 => Arc::new(UInt16Array::from(vec![u16::try_from(v).ok()?])),
        DataType::UInt32 => Arc::new(UInt32Array::from(vec![u32::try_from(v).ok()?])),
        DataType::UInt64 => Arc::new(UInt64Array::from(vec![u64::try_from(v).ok()?])),
        _ => return None,
    })
}

fn arrow_buffer_union(
    child: Option<&arrow_buffer::NullBuffer>,
    parent: &arrow_buffer::NullBuffer,
) -> arrow_buffer::NullBuffer {
    arrow_buffer::NullBuffer::union(child, Some(parent)).unwrap_or_else(|| parent.clone())
}

export_transform!(Filter);

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_schema::Field;
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
        RecordBatch::try_from_iter(vec![
            ("amount", amount),
            ("customer", customer),
            ("qty", qty),
        ])
        .unwrap()
    }

    fn kept(params: &str) -> Vec<u32> {
        let mut f = testing::init::<Filter>(params).unwrap();
        testing::run(&mut f, &batch())
            .unwrap()
            .rows
            .unwrap()
            .values()
            .to_vec()
    }

    #[test]
    fn numeric_comparisons() {
        assert_eq!(
            kept(r#"{"column":"amount","op":">","value":99}"#),
            vec![1, 2]
        );
        assert_eq!(
            kept(r#"{"column":"amount","op":"<=","value":100.0}"#),
            vec![0, 2]
        );
        assert_eq!(
            kept(r#"{"column":"qty","op":"!=","value":2}"#),
            vec![0, 2, 3]
        );
        assert_eq!(
            kept(r#"{"column":"qty","op":">=","value":2.5}"#),
            vec![2, 3]
        );
        // Beyond i32: compared in i64, not wrapped.
        assert_eq!(
            kept(r#"{"column":"qty","op":"<","value":5000000000}"#),
            vec![0, 1, 2, 3]
        );
        assert_eq!(
            kept(r#"{"column":"qty","op":">","value":5000000000}"#),
            Vec::<u32>::new()
        );
        // A fraction against integers folds into an integer bound.
        assert_eq!(kept(r#"{"column":"qty","op":">","value":2.5}"#), vec![2, 3]);
        assert_eq!(kept(r#"{"column":"qty","op":"<","value":2.5}"#), vec![0, 1]);
        assert_eq!(
            kept(r#"{"column":"qty","op":"<=","value":2.5}"#),
            vec![0, 1]
        );
        assert_eq!(
            kept(r#"{"column":"qty","op":"==","value":2.5}"#),
            Vec::<u32>::new()
        );
        assert_eq!(kept(r#"{"column":"qty","op":"==","value":2.0}"#), vec![1]);
    }

    #[test]
    fn nested_strings_and_null_parents() {
        // Row 3's customer is null, so its tier is null and is dropped.
        assert_eq!(
            kept(r#"{"column":"customer.tier","op":"==","value":"gold"}"#),
            vec![0]
        );
    }

    #[test]
    fn absent_column_drops_everything() {
        assert_eq!(
            kept(r#"{"column":"nope","op":"==","value":1}"#),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn only_the_read_column_crosses() {
        let f =
            testing::init::<Filter>(r#"{"column":"customer.tier","op":"==","value":"x"}"#).unwrap();
        assert_eq!(
            testing::manifest(&f).reads,
            Some(vec!["customer".to_string()])
        );
    }

    #[test]
    fn bad_params_are_refused_with_the_field() {
        let e = testing::init::<Filter>(r#"{"column":"a","op":"~","value":1}"#).unwrap_err();
        assert!(e.0.contains("invalid params"), "{e}");
        let e = testing::init::<Filter>(r#"{"column":"a","op":"==","value":[1]}"#).unwrap_err();
        assert!(e.0.starts_with("value:"), "{e}");
        let e = testing::init::<Filter>(r#"{"column":"a..b","op":"==","value":1}"#).unwrap_err();
        assert!(e.0.starts_with("column:"), "{e}");
    }

    #[test]
    fn type_mismatch_is_an_error() {
        let mut f =
            testing::init::<Filter>(r#"{"column":"amount","op":"==","value":"x"}"#).unwrap();
        let e = testing::run(&mut f, &batch()).unwrap_err();
        assert!(e.0.contains("amount"), "{e}");
    }
}
