//! Sample input for `weir test`: JSON lines, Parquet or Avro files, read into Arrow batches.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor};
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, Schema, SchemaRef};

use super::AuthoringError;

/// A sample: its batches, and for each row where it came from, so errors can name it.
#[derive(Debug)]
pub struct Sample {
    /// The rows, in batches of at most the requested size, all of one schema.
    pub batches: Vec<RecordBatch>,
    /// The sample's schema (also when it holds no rows).
    pub schema: SchemaRef,
    /// For JSON lines, the 1-based line number of each row; empty for other formats, whose
    /// rows are simply numbered.
    pub lines: Vec<usize>,
}

impl Sample {
    /// Where row `row` (0-based, across batches) came from, for messages: `row 3 (line 5)`.
    pub fn describe_row(&self, row: usize) -> String {
        match self.lines.get(row) {
            Some(line) => format!("row {} (line {line})", row + 1),
            None => format!("row {}", row + 1),
        }
    }

    /// The number of rows.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// Reads a sample file, chosen by its extension: `.jsonl`/`.ndjson`/`.json` (one JSON object per
/// line, schema inferred from all of them), `.parquet`, or `.avro` (an Avro object container
/// file, schema from its header).
pub fn read(path: &Path, batch_rows: usize) -> Result<Sample, AuthoringError> {
    let err = |message: String| AuthoringError::Input {
        path: path.to_path_buf(),
        message,
    };
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let file = File::open(path).map_err(|e| err(e.to_string()))?;
    let batch_rows = batch_rows.max(1);
    match extension.as_str() {
        "jsonl" | "ndjson" | "json" => json_lines(BufReader::new(file), batch_rows).map_err(err),
        "parquet" => {
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .map_err(|e| err(e.to_string()))?
                    .with_batch_size(batch_rows)
                    .build()
                    .map_err(|e| err(e.to_string()))?;
            collect(reader).map_err(|e| err(e.to_string()))
        }
        "avro" => {
            let reader = arrow_avro::reader::ReaderBuilder::new()
                .with_batch_size(batch_rows)
                .build(BufReader::new(file))
                .map_err(|e| err(e.to_string()))?;
            collect(reader).map_err(|e| err(e.to_string()))
        }
        other => Err(err(format!(
            "unknown sample format `.{other}`: use .jsonl, .parquet or .avro"
        ))),
    }
}

fn collect(reader: impl arrow_array::RecordBatchReader) -> Result<Sample, ArrowError> {
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok(Sample {
        batches,
        schema,
        lines: Vec::new(),
    })
}

/// `rows` sample orders, as the demo's generator makes them: the default sample of conformance
/// checks.
pub fn demo_orders(rows: usize, batch_rows: usize) -> Result<Sample, String> {
    use rand::SeedableRng;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut text = String::new();
    for i in 0..rows as u64 {
        let (_, _, value) = crate::source::embedded::sample_message(i * 2, false, &mut rng);
        text.push_str(&value);
        text.push('\n');
    }
    json_lines(text.as_bytes(), batch_rows)
}

/// JSON lines: every non-blank line one JSON object. A line that is not one names itself.
pub fn json_lines(input: impl BufRead, batch_rows: usize) -> Result<Sample, String> {
    let mut values = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if !value.is_object() {
            return Err(format!("line {}: not a JSON object", i + 1));
        }
        values.push(value);
        lines.push(i + 1);
    }
    let schema = if values.is_empty() {
        Arc::new(Schema::empty())
    } else {
        Arc::new(
            arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
                .map_err(|e| e.to_string())?,
        )
    };
    let mut batches = Vec::new();
    for chunk in values.chunks(batch_rows) {
        let mut text = Vec::new();
        for v in chunk {
            serde_json::to_writer(&mut text, v).map_err(|e| e.to_string())?;
            text.push(b'\n');
        }
        let reader = arrow_json::ReaderBuilder::new(Arc::clone(&schema))
            .with_batch_size(batch_rows)
            .build(Cursor::new(text))
            .map_err(|e| e.to_string())?;
        for batch in reader {
            batches.push(batch.map_err(|e| e.to_string())?);
        }
    }
    Ok(Sample {
        batches,
        schema,
        lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;

    #[test]
    fn json_lines_infer_a_schema_and_keep_line_numbers() {
        let text = "{\"a\": 1, \"s\": \"x\"}\n\n{\"a\": 2}\n{\"a\": 3, \"s\": \"z\"}\n";
        let sample = json_lines(text.as_bytes(), 2).expect("valid sample");
        assert_eq!(sample.batches.len(), 2);
        assert_eq!(sample.num_rows(), 3);
        assert_eq!(sample.lines, vec![1, 3, 4]);
        assert_eq!(sample.describe_row(1), "row 2 (line 3)");
        let a = sample.batches[1].column(0).as_primitive::<Int64Type>();
        assert_eq!(a.value(0), 3);
        assert_eq!(sample.schema.field(1).name(), "s");
    }

    #[test]
    fn a_bad_line_names_itself() {
        let err = json_lines("{\"a\": 1}\n{\"a\": \n".as_bytes(), 10).expect_err("bad line");
        assert!(err.starts_with("line 2:"), "{err}");
        let err = json_lines("{\"a\": 1}\n[1]\n".as_bytes(), 10).expect_err("not an object");
        assert_eq!(err, "line 2: not a JSON object");
    }
}
