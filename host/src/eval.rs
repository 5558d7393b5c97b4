//! `weir eval`: try an expression on JSON documents, the way `jp` does, with the engine the
//! built-in transforms run.
//!
//! Documents come one per line or as one whole document (any whitespace-separated stream of
//! JSON values reads). By default each is evaluated on its own ([`weir_expr::Expr::search`], the
//! reference semantics); with `arrow`, all of them become one Arrow batch first (their schema
//! inferred, as an untyped topic's would be) and are evaluated column-wise, exactly as a plugin
//! evaluates a batch, so results carry Arrow's types.

use std::io::{BufRead, Write};

use weir_expr::{Expr, ParseError, Value};

/// Why `weir eval` could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum EvalCliError {
    /// The expression does not parse (exit code 2).
    #[error("{0}")]
    Expression(#[from] ParseError),
    /// The input is not JSON.
    #[error("document {document}: invalid JSON: {source}")]
    Json {
        /// 1-based document number.
        document: usize,
        /// The parser's error, with line and column.
        source: serde_json::Error,
    },
    /// `--arrow` input that is not a stream of objects, or no one Arrow schema fits it.
    #[error("--arrow: {0}")]
    Arrow(String),
    /// Reading or writing failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// How the documents went.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct EvalOutcome {
    /// Documents read.
    pub documents: usize,
    /// Documents whose evaluation failed (each reported on `errors`).
    pub failed: usize,
}

/// Evaluates `expression` on every document of `input`, writing one compact JSON result per
/// line to `out` and one line per failed document to `errors`.
pub fn run(
    expression: &str,
    input: impl BufRead,
    arrow: bool,
    out: &mut impl Write,
    errors: &mut impl Write,
) -> Result<EvalOutcome, EvalCliError> {
    let expr = Expr::parse(expression)?;
    let mut outcome = EvalOutcome::default();
    let stream = serde_json::Deserializer::from_reader(input).into_iter::<Value>();
    let mut documents = Vec::new();
    for (i, doc) in stream.enumerate() {
        let doc = doc.map_err(|source| EvalCliError::Json {
            document: i + 1,
            source,
        })?;
        outcome.documents += 1;
        if arrow {
            documents.push(doc);
        } else {
            let result = expr.search(&doc).map_err(|e| e.to_string());
            report(i, result, out, errors, &mut outcome)?;
        }
    }
    if arrow && !documents.is_empty() {
        for (i, result) in columnar(&expr, &documents)?.into_iter().enumerate() {
            report(i, result, out, errors, &mut outcome)?;
        }
    }
    out.flush()?;
    Ok(outcome)
}

/// Prints document `i`'s result, or reports its error and counts it as failed.
fn report(
    i: usize,
    result: Result<Value, String>,
    out: &mut impl Write,
    errors: &mut impl Write,
    outcome: &mut EvalOutcome,
) -> std::io::Result<()> {
    match result {
        Ok(v) => writeln!(out, "{v}"),
        Err(e) => {
            outcome.failed += 1;
            writeln!(errors, "document {}: {e}", i + 1)
        }
    }
}

/// The documents as one Arrow batch (schema inferred as arrow-json infers it), evaluated
/// column-wise; one result or error per document.
fn columnar(expr: &Expr, docs: &[Value]) -> Result<Vec<Result<Value, String>>, EvalCliError> {
    let json: Vec<serde_json::Value> = docs.iter().map(Value::to_json).collect();
    if let Some(i) = json.iter().position(|d| !d.is_object()) {
        return Err(EvalCliError::Arrow(format!(
            "document {} is not an object; a batch holds objects (rows)",
            i + 1
        )));
    }
    let arrow_err = |e: arrow_schema::ArrowError| EvalCliError::Arrow(e.to_string());
    let schema = arrow_json::reader::infer_json_schema_from_iterator(json.iter().map(Ok))
        .map_err(arrow_err)?;
    let mut decoder = arrow_json::ReaderBuilder::new(std::sync::Arc::new(schema))
        .build_decoder()
        .map_err(arrow_err)?;
    decoder.serialize(&json).map_err(arrow_err)?;
    let batch = decoder
        .flush()
        .map_err(arrow_err)?
        .ok_or_else(|| EvalCliError::Arrow("no rows".into()))?;
    let evaluated = expr
        .evaluate_rows(&batch)
        .map_err(|e| EvalCliError::Arrow(e.to_string()))?;
    let values = weir_expr::to_values(evaluated.array.as_ref())
        .map_err(|e| EvalCliError::Arrow(e.to_string()))?;
    let mut results: Vec<Result<Value, String>> = values.into_iter().map(Ok).collect();
    for (row, e) in evaluated.errors {
        if let Some(slot) = results.get_mut(row) {
            *slot = Err(e.to_string());
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str, input: &str, arrow: bool) -> (String, String, EvalOutcome) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let outcome = run(expr, input.as_bytes(), arrow, &mut out, &mut err).unwrap();
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
            outcome,
        )
    }

    #[test]
    fn one_document_per_line_or_one_whole_document() {
        let (out, _, n) = eval(
            "a.b",
            "{\"a\": {\"b\": 1}}\n{\"a\": {\"b\": [2, 3]}}\n",
            false,
        );
        assert_eq!(out, "1\n[2,3]\n");
        assert_eq!(n.documents, 2);
        let (out, _, _) = eval("{y: x, k: keys(@)}", "{\n  \"x\": 1,\n  \"z\": 2\n}", false);
        assert_eq!(out, "{\"y\":1,\"k\":[\"x\",\"z\"]}\n", "key order is kept");
    }

    #[test]
    fn a_failing_document_is_reported_and_the_rest_go_on() {
        let (out, err, n) = eval(
            "length(a)",
            "{\"a\": \"xy\"}\n{\"a\": 1}\n{\"a\": [1]}",
            false,
        );
        assert_eq!(out, "2\n1\n");
        assert!(err.starts_with("document 2: length()"), "{err}");
        assert_eq!(n.failed, 1);
    }

    #[test]
    fn arrow_mode_evaluates_a_batch() {
        let input = "{\"amount\": 150, \"c\": \"EUR\"}\n{\"amount\": 50.5, \"c\": \"USD\"}\n";
        let (out, _, _) = eval("amount > `100` && c == 'EUR'", input, true);
        assert_eq!(out, "true\nfalse\n");
        // Arrow types the column: every amount is a float here, as a pinned schema would be.
        let (out, _, _) = eval("to_string(amount)", input, true);
        assert_eq!(out, "\"150.0\"\n\"50.5\"\n");
        let err = run(
            "a",
            "[1]".as_bytes(),
            true,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not an object"), "{err}");
    }

    #[test]
    fn bad_expression_and_bad_json_are_errors() {
        let e = run(
            "a[",
            "{}".as_bytes(),
            false,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(e, EvalCliError::Expression(_)), "{e}");
        let e = run(
            "a",
            "{} {".as_bytes(),
            false,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("document 2: invalid JSON"), "{e}");
    }
}
