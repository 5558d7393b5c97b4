//! # weir expressions: JMESPath over Arrow, column by column
//!
//! One expression language for weir's built-in transforms (`project`, `filter`, `enrich`, `mask`)
//! and for anyone's plugins: JMESPath's syntax and semantics, evaluated over whole Arrow record
//! batches with Arrow kernels instead of row by row over JSON values.
//!
//! ```
//! use std::sync::Arc;
//! use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
//! use weir_expr::{Expr, Value};
//!
//! let amount: ArrayRef = Arc::new(Float64Array::from(vec![50.0, 150.0, 300.0]));
//! let currency: ArrayRef = Arc::new(StringArray::from(vec!["EUR", "EUR", "USD"]));
//! let batch = RecordBatch::try_from_iter(vec![("amount", amount), ("currency", currency)]).unwrap();
//!
//! let expr = Expr::parse("amount > `100` && currency == 'EUR'").unwrap();
//! let keep = expr.evaluate(&batch).unwrap(); // one Boolean per row
//! assert_eq!(keep.len(), 3);
//!
//! // The same engine on one JSON document, as `weir eval` runs it:
//! let doc = Value::parse_json(r#"{"amount": 150, "currency": "EUR"}"#).unwrap();
//! assert_eq!(expr.search(&doc).unwrap(), Value::Bool(true));
//! ```
//!
//! ## How it evaluates
//!
//! - [`Expr::search`] evaluates one document: the reference semantics, exactly the JMESPath
//!   specification's, plus weir's extensions.
//! - [`Expr::evaluate`] evaluates a batch column-wise: a field is a child column, a comparison
//!   or `&&` is one kernel over the whole column, a projection runs on a list's flattened values
//!   and rebuilds the offsets. Where a node can't be vectorized (see `docs/EXPRESSIONS.md`), that
//!   node alone runs row by row on values built from its inputs; where the vectorized path would
//!   need to raise an error, the whole batch is evaluated by [`Expr::search`] semantics row by
//!   row, so both paths always agree (property-tested).
//!
//! ## Extensions
//!
//! Arithmetic (`+ - * / % //`, unary `-`), and the functions whose
//! [`Function::is_extension`] is true: `lower`, `upper`, `substr`, `concat`, `replace`,
//! `regex_match`, time helpers, `sha256`, `coalesce`, `cast`. A timestamp is a type of its own
//! (`type()` says `timestamp`); it prints as ISO 8601.
#![deny(missing_docs)]

pub mod ast;
mod columnar;
mod convert;
mod fields;
mod interp;
mod parse;
pub mod value;

use arrow_array::{ArrayRef, RecordBatch};

pub use ast::{Ast, Function};
pub use fields::Reads;
pub use value::{Kind, Value};

/// An expression that does not parse: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Character offset of the error in the expression (0-based).
    pub position: usize,
    /// What is wrong.
    pub message: String,
    /// The expression text.
    pub source: String,
}

/// Shows the message, the expression, and a caret under the position.
impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at position {}\n  {}\n  {}^",
            self.message,
            self.position,
            self.source,
            " ".repeat(self.position)
        )
    }
}

impl std::error::Error for ParseError {}

/// An expression that failed on some data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    /// A function got an argument of a type it does not take (JMESPath's `invalid-type`).
    #[error("{function}(): argument {position} must be {expected}, not {actual}")]
    InvalidType {
        /// The function.
        function: &'static str,
        /// 1-based argument position.
        position: usize,
        /// What it takes, as JMESPath names types: `string|array`.
        expected: &'static str,
        /// What it got.
        actual: Kind,
    },
    /// A value a function can't use (`to_number` of a timestamp range overflow, a bad regex...).
    #[error("{0}")]
    InvalidValue(String),
    /// The results of one batch have no single Arrow type (say, numbers in some rows and strings
    /// in others); `to_string()` or `cast()` makes them one.
    #[error("results have no single Arrow type: {0}")]
    MixedTypes(String),
    /// An Arrow type the expression language does not read (it names the type).
    #[error("cannot evaluate over Arrow type {0}")]
    UnsupportedType(String),
    /// An Arrow kernel failed.
    #[error("arrow: {0}")]
    Arrow(String),
}

impl From<arrow_schema::ArrowError> for EvalError {
    fn from(e: arrow_schema::ArrowError) -> Self {
        EvalError::Arrow(e.to_string())
    }
}

/// A batch evaluated row by row where rows failed: the results, null where a row failed, and
/// each failed row with its error.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// One result per row of the input.
    pub array: ArrayRef,
    /// Rows that failed (0-based), with why; empty when none did.
    pub errors: Vec<(usize, EvalError)>,
}

/// A parsed expression, ready to evaluate on documents or batches.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    source: String,
    ast: Ast,
}

impl Expr {
    /// Parses an expression; the error gives the position.
    pub fn parse(source: &str) -> Result<Expr, ParseError> {
        Ok(Expr {
            ast: parse::parse(source)?,
            source: source.to_string(),
        })
    }

    /// An expression from a syntax tree, such as a part of a parsed one; `source` is the text
    /// it shows in messages.
    pub fn from_ast(ast: Ast, source: impl Into<String>) -> Expr {
        Expr {
            source: source.into(),
            ast,
        }
    }

    /// The dotted path (`customer.name`) when the expression is nothing but fields into
    /// objects, which a host can follow without evaluating anything; `None` otherwise.
    pub fn field_path(&self) -> Option<String> {
        fields::path(&self.ast)
    }

    /// The expression text.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree.
    pub fn ast(&self) -> &Ast {
        &self.ast
    }

    /// Evaluates the expression on one document (the reference semantics).
    pub fn search(&self, data: &Value) -> Result<Value, EvalError> {
        interp::search(&self.ast, data)
    }

    /// Evaluates the expression on every row of `batch` at once: one result per row, typed as
    /// Arrow types them (a multi-select hash gives a struct array). The first row that fails
    /// fails the batch; [`Expr::evaluate_rows`] keeps the rows that don't.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef, EvalError> {
        let out = self.evaluate_rows(batch)?;
        match out.errors.into_iter().next() {
            Some((row, e)) => Err(match e {
                EvalError::InvalidValue(m) => EvalError::InvalidValue(format!("row {row}: {m}")),
                other => other,
            }),
            None => Ok(out.array),
        }
    }

    /// Evaluates on every row of `batch`; rows that fail are null in the result and listed with
    /// their errors. An `Err` means the batch as a whole can't be evaluated (an Arrow type the
    /// language does not read, or results of mixed types).
    pub fn evaluate_rows(&self, batch: &RecordBatch) -> Result<Evaluated, EvalError> {
        columnar::evaluate(&self.ast, batch)
    }

    /// Column-wise evaluation without the row fallback: `Err` where [`Expr::evaluate`] would
    /// fall back to row-by-row work. For tests and benchmarks that check what vectorizes.
    #[doc(hidden)]
    pub fn evaluate_vectorized(&self, batch: &RecordBatch) -> Result<ArrayRef, EvalError> {
        columnar::evaluate_vectorized(&self.ast, batch)
    }

    /// The top-level columns the expression reads, or `None` when it may read any (it uses `@`,
    /// a wildcard or a function such as `keys` on the whole row).
    pub fn root_fields(&self) -> Option<Vec<String>> {
        self.reads().map(|r| r.roots())
    }

    /// What the expression reads from the row, finer than [`Expr::root_fields`]: the dotted
    /// paths into structs it follows, and the lists it reads only the length of. `None` when it
    /// may read the whole row. A plugin declares these, so only they cross into the sandbox.
    pub fn reads(&self) -> Option<Reads> {
        fields::reads(&self.ast)
    }
}

/// Every row of an Arrow array as a value, as row-by-row evaluation sees it: integers stay
/// integers, timestamps and dates become timestamps, structs objects, lists arrays. Fails on
/// types the language does not read (binary, for one).
pub fn to_values(array: &dyn arrow_array::Array) -> Result<Vec<Value>, EvalError> {
    convert::to_values(array)
}

/// One Arrow array holding `values`, with one inferred type: integers int64 (float64 when any
/// has a fraction), strings utf8, timestamps microseconds UTC, arrays lists, objects structs
/// with the union of their keys. Values of different kinds are [`EvalError::MixedTypes`].
pub fn from_values(values: &[Value]) -> Result<ArrayRef, EvalError> {
    convert::from_values(values, true)
}

/// JMESPath truthiness of every row of an array (null, false, empty strings, lists and objects
/// are false; every number is true), as a filter keeps rows: null rows are false.
pub fn truthy(array: &dyn arrow_array::Array) -> arrow_array::BooleanArray {
    columnar::truthy(array)
}

impl std::fmt::Display for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}
