//! Transforms whose params are weir expressions (feature `expr`, over the `weir-expr` crate):
//! the conventions the built-in plugins share, so every plugin's messages read alike.
//!
//! - An expression is parsed at init; a bad one is refused naming its param and the position,
//!   with the expression and a caret: `where: unexpected ... at position 7`.
//! - A row whose evaluation fails is null in the result and fails alone, through
//!   `__weir_error` ([`RowErrors`]): the host dead-letters it, it is never dropped silently.
//! - What the expressions read is declared ([`reads`]), so only that crosses.

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use weir_expr::{EvalError, Expr, Reads};

use crate::Error;

/// Parses the expression given as the param `param`. The error names the param and the
/// position, then shows the expression with a caret under it.
pub fn parse(param: &str, source: &str) -> Result<Expr, Error> {
    Expr::parse(source).map_err(|e| Error::new(format!("{param}: {e}")))
}

/// What `exprs` read together (paths for [`crate::Transform::reads`], list lengths for
/// [`crate::Transform::lengths`]); `None` when any expression may read every column.
pub fn reads<'a>(exprs: impl IntoIterator<Item = &'a Expr>) -> Option<Reads> {
    let mut all = Reads::default();
    for e in exprs {
        all.extend(e.reads()?);
    }
    Some(all)
}

/// Evaluates `expr` (the param `param`) on every row of `batch`. Rows that fail are null in the
/// result and recorded in `errors`; an `Err` means the batch as a whole can't be evaluated.
pub fn evaluate(
    param: &str,
    expr: &Expr,
    batch: &RecordBatch,
    errors: &mut RowErrors,
) -> Result<ArrayRef, Error> {
    let evaluated = expr
        .evaluate_rows(batch)
        .map_err(|e| Error::new(format!("{param}: {e}")))?;
    errors.add(param, evaluated.errors);
    Ok(evaluated.array)
}

/// Named expressions that become columns (`columns:` of `project`, `set:` of `enrich`), in the
/// order the config gives them.
#[derive(Debug, Clone, Default)]
pub struct Columns(Vec<(String, Expr)>);

impl Columns {
    /// Parses `name: expression` pairs given as the param `param` (errors name `param.name`).
    pub fn parse(
        param: &str,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, Error> {
        let mut columns = Vec::new();
        for (name, source) in pairs {
            if name.is_empty() {
                return Err(Error::new(format!("{param}: a column with no name")));
            }
            let expr = parse(&format!("{param}.{name}"), &source)?;
            columns.push((name, expr));
        }
        Ok(Columns(columns))
    }

    /// The column names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(n, _)| n.as_str())
    }

    /// The expressions, in order.
    pub fn exprs(&self) -> impl Iterator<Item = &Expr> {
        self.0.iter().map(|(_, e)| e)
    }

    /// Takes out the columns that are plain field paths (`id`, `customer.name`) as columns the
    /// host copies itself (manifest key `copy`), so their data never crosses the boundary.
    pub fn take_paths(&mut self) -> Vec<crate::CopyColumn> {
        let mut copies = Vec::new();
        self.0.retain(|(name, expr)| match expr.field_path() {
            Some(path) => {
                copies.push(crate::CopyColumn {
                    name: name.clone(),
                    path,
                });
                false
            }
            None => true,
        });
        copies
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Evaluates every expression on `batch` (each sees the batch as given, not the others'
    /// results), recording failed rows in `errors` under `param.name`.
    pub fn evaluate(
        &self,
        param: &str,
        batch: &RecordBatch,
        errors: &mut RowErrors,
    ) -> Result<Vec<(String, ArrayRef)>, Error> {
        self.0
            .iter()
            .map(|(name, expr)| {
                let array = evaluate(&format!("{param}.{name}"), expr, batch, errors)?;
                Ok((name.clone(), array))
            })
            .collect()
    }
}

/// The first failure of each row of a batch, for `__weir_error` ([`crate::Merge::errors`]).
#[derive(Debug, Clone)]
pub struct RowErrors {
    messages: Vec<Option<String>>,
}

impl RowErrors {
    /// No failure yet, for a batch of `rows` rows.
    pub fn new(rows: usize) -> Self {
        RowErrors {
            messages: vec![None; rows],
        }
    }

    /// Records failed rows as `param: error`; a row that already failed keeps its first reason.
    pub fn add(&mut self, param: &str, failed: Vec<(usize, EvalError)>) {
        for (row, e) in failed {
            if let Some(slot @ None) = self.messages.get_mut(row) {
                *slot = Some(format!("{param}: {e}"));
            }
        }
    }

    /// How many rows failed.
    pub fn count(&self) -> usize {
        self.messages.iter().filter(|m| m.is_some()).count()
    }

    /// The `__weir_error` column, or `None` when no row failed.
    pub fn into_array(self) -> Option<StringArray> {
        self.messages
            .iter()
            .any(Option::is_some)
            .then(|| StringArray::from(self.messages))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Array, Float64Array, Int64Array};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let b: ArrayRef = Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5]));
        RecordBatch::try_from_iter(vec![("a", a), ("b", b)]).unwrap()
    }

    #[test]
    fn parse_errors_name_the_param_and_the_position() {
        let e = parse("where", "a > ").unwrap_err().0;
        assert!(e.starts_with("where: "), "{e}");
        assert!(e.contains("at position"), "{e}");
        assert!(e.contains("\n  a > \n"), "{e}");
    }

    #[test]
    fn reads_unions_and_gives_up_on_any_column() {
        let x = parse("x", "a + b").unwrap();
        let y = parse("y", "c").unwrap();
        let z = parse("z", "length(d.e) + a").unwrap();
        assert_eq!(
            reads([&x, &y, &z]),
            Some(Reads {
                paths: vec!["a".into(), "b".into(), "c".into()],
                lengths: vec!["d.e".into()],
            })
        );
        let any = parse("z", "@").unwrap();
        assert_eq!(reads([&x, &any]), None);
    }

    #[test]
    fn columns_evaluate_in_order_against_the_batch() {
        let c = Columns::parse(
            "columns",
            [
                ("z".to_string(), "a * `2`".to_string()),
                ("y".into(), "b".into()),
            ],
        )
        .unwrap();
        let mut errors = RowErrors::new(3);
        let out = c.evaluate("columns", &batch(), &mut errors).unwrap();
        assert_eq!(
            out.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["z", "y"]
        );
        assert_eq!(out[0].1.len(), 3);
        assert!(errors.into_array().is_none());
        let e = Columns::parse("set", [("k".to_string(), "a ==".to_string())]).unwrap_err();
        assert!(e.0.starts_with("set.k: "), "{e}");
    }

    #[test]
    fn row_errors_keep_the_first_reason_per_row() {
        let mut errors = RowErrors::new(3);
        let e = || EvalError::InvalidValue("bad".into());
        errors.add("x", vec![(1, e())]);
        errors.add("y", vec![(1, e()), (2, e()), (7, e())]);
        assert_eq!(errors.count(), 2);
        let array = errors.into_array().unwrap();
        assert!(array.is_null(0));
        assert_eq!(array.value(1), "x: bad");
        assert_eq!(array.value(2), "y: bad");
    }
}
