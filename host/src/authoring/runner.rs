//! `weir test`: a plugin run on a sample, exactly as a route runs it, with its answer shown.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;

use super::sample::Sample;
use super::AuthoringError;
use crate::runtime::Instance;

/// What became of a sample.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Rows given to the plugin.
    pub rows_in: usize,
    /// Rows it answered.
    pub rows_out: usize,
    /// Rows it filtered out (merge answers only: a replacing answer can't be traced to rows).
    pub filtered: usize,
    /// Rows the plugin failed (`__weir_error`): sample row (0-based) and reason.
    pub row_errors: Vec<(usize, String)>,
    /// Batches the plugin failed as a whole: their sample rows, and why.
    pub failed_batches: Vec<(Range<usize>, String)>,
    /// The answered batches, in order.
    pub output: Vec<RecordBatch>,
    /// Time spent in calls to the plugin (including the copies across the boundary).
    pub plugin_time: Duration,
}

/// Runs every batch of `sample` through `instance`, as a route would.
pub fn run(instance: &mut Instance, sample: &Sample) -> Outcome {
    let mut outcome = Outcome::default();
    let mut first_row = 0;
    for batch in &sample.batches {
        let rows = first_row..first_row + batch.num_rows();
        first_row = rows.end;
        outcome.rows_in += batch.num_rows();
        let started = Instant::now();
        let result = instance.call(batch);
        outcome.plugin_time += started.elapsed();
        match result {
            Ok(applied) => {
                outcome.rows_out += applied.batch.num_rows();
                if applied.rows.is_some() {
                    outcome.filtered +=
                        batch.num_rows() - applied.batch.num_rows() - applied.errors.len();
                }
                outcome.row_errors.extend(
                    applied
                        .errors
                        .into_iter()
                        .map(|(row, reason)| (rows.start + row as usize, reason)),
                );
                outcome.output.push(applied.batch);
            }
            Err(e) => outcome.failed_batches.push((rows, e.to_string())),
        }
    }
    outcome
}

/// Prints the outcome: counts, the first `limit` output rows as a table, then every failure
/// with the sample row it came from.
pub fn render(
    outcome: &Outcome,
    sample: &Sample,
    limit: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let rate = outcome.rows_in as f64 / outcome.plugin_time.as_secs_f64().max(1e-9);
    writeln!(
        out,
        "rows: {} in, {} out, {} filtered, {} failed rows, {} failed batches ({:.1} ms in the plugin, {:.0} rows/s)",
        outcome.rows_in,
        outcome.rows_out,
        outcome.filtered,
        outcome.row_errors.len(),
        outcome.failed_batches.len(),
        outcome.plugin_time.as_secs_f64() * 1e3,
        rate,
    )?;
    let mut shown = Vec::new();
    let mut left = limit;
    for batch in &outcome.output {
        if left == 0 {
            break;
        }
        let take = batch.num_rows().min(left);
        shown.push(batch.slice(0, take));
        left -= take;
    }
    if let Some(first) = outcome.output.first() {
        let table =
            arrow_cast::pretty::pretty_format_batches(&shown).map_err(std::io::Error::other)?;
        if shown.iter().all(|b| b.num_rows() == 0) {
            let names: Vec<&str> = first
                .schema_ref()
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect();
            writeln!(out, "(no rows out; columns: {})", names.join(", "))?;
        } else {
            writeln!(out, "{table}")?;
        }
        if outcome.rows_out > limit {
            writeln!(
                out,
                "... {} more rows (--limit, or --output FILE for all)",
                outcome.rows_out - limit
            )?;
        }
    }
    for (row, reason) in &outcome.row_errors {
        writeln!(out, "{}: failed: {reason}", sample.describe_row(*row))?;
    }
    for (rows, reason) in &outcome.failed_batches {
        let (first, last) = (rows.start, rows.end.saturating_sub(1));
        writeln!(
            out,
            "batch of {} to {}: failed: {reason}",
            sample.describe_row(first),
            sample.describe_row(last)
        )?;
    }
    Ok(())
}

/// Writes every output row to `path`: Parquet for `.parquet`, JSON lines otherwise.
pub fn write_output(outcome: &Outcome, path: &Path) -> Result<(), AuthoringError> {
    let err = |message: String| AuthoringError::Output {
        path: path.to_path_buf(),
        message,
    };
    let Some(schema) = outcome.output.first().map(RecordBatch::schema) else {
        return Err(err("the plugin answered no batch".into()));
    };
    if let Some(other) = outcome.output.iter().find(|b| b.schema() != schema) {
        return Err(err(format!(
            "the plugin answered batches of different schemas ({} and {}); one file holds one",
            schema,
            other.schema()
        )));
    }
    let file = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
    let parquet = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
    if parquet {
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, None)
            .map_err(|e| err(e.to_string()))?;
        for batch in &outcome.output {
            writer.write(batch).map_err(|e| err(e.to_string()))?;
        }
        writer.close().map_err(|e| err(e.to_string()))?;
    } else {
        let mut writer = arrow_json::LineDelimitedWriter::new(std::io::BufWriter::new(file));
        for batch in &outcome.output {
            writer.write(batch).map_err(|e| err(e.to_string()))?;
        }
        writer.finish().map_err(|e| err(e.to_string()))?;
    }
    Ok(())
}

/// Compares the output rows with `expected` (JSON lines, one object per output row, in order):
/// `Ok(n)` when all `n` rows match, else a message naming the first row that differs. Numbers
/// compare by value (`1` equals `1.0`); a null column equals an absent key.
pub fn expect(outcome: &Outcome, expected: &Path) -> Result<Result<usize, String>, AuthoringError> {
    let err = |message: String| AuthoringError::Input {
        path: expected.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(expected).map_err(|e| err(e.to_string()))?;
    let mut want = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(format!("line {}: {e}", i + 1)))?;
        want.push(v);
    }
    let mut got = Vec::new();
    for batch in &outcome.output {
        let mut writer = arrow_json::LineDelimitedWriter::new(Vec::new());
        writer
            .write(batch)
            .and_then(|()| writer.finish())
            .map_err(|e| err(format!("encoding the output: {e}")))?;
        for line in writer.into_inner().split(|&b| b == b'\n') {
            if !line.is_empty() {
                let v = serde_json::from_slice(line)
                    .map_err(|e| err(format!("encoding the output: {e}")))?;
                got.push(v);
            }
        }
    }
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        if !same(g, w) {
            return Ok(Err(format!(
                "output row {} differs:\n  got      {g}\n  expected {w}",
                i + 1
            )));
        }
    }
    Ok(if got.len() == want.len() {
        Ok(got.len())
    } else {
        Err(format!(
            "{} output rows, {} expected",
            got.len(),
            want.len()
        ))
    })
}

/// JSON equality where numbers compare by value and a null member equals a missing one (Arrow's
/// JSON writer leaves nulls out).
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            let member = |o: &serde_json::Map<String, Value>, k: &str| {
                o.get(k).cloned().unwrap_or(Value::Null)
            };
            x.keys()
                .chain(y.keys())
                .all(|k| same(&member(x, k), &member(y, k)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_by_value_and_nulls_equal_absence() {
        assert!(same(&json!({"a": 1, "b": null}), &json!({"a": 1.0})));
        assert!(same(&json!([{"x": [1, 2]}]), &json!([{"x": [1.0, 2]}])));
        assert!(!same(&json!({"a": 1}), &json!({"a": 2})));
        assert!(!same(&json!({"a": 1}), &json!({"a": 1, "b": 0})));
        assert!(!same(&json!("1"), &json!(1)));
    }
}
