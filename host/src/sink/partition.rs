//! Hive-style partitioning: a batch split by the values of its partition columns into
//! `col=value/...` folders, the partition columns themselves left out of the rows (readers such as
//! pyarrow, Spark and Delta take them from the path).

use std::fmt::Write as _;

use arrow_array::{Array, RecordBatch, UInt32Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::DataType;
use indexmap::IndexMap;

use super::SinkError;

/// The value Hive, Spark and Delta write for a null (or empty) partition value.
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One partition's share of a batch.
pub struct Part {
    /// `col=value/col2=value2`, values escaped as Hive does.
    pub dir: String,
    /// The (column, value) pairs, raw (unescaped; `None` for null), in `partition_by` order.
    pub values: Vec<(String, Option<String>)>,
    /// The rows, without the partition columns.
    pub batch: RecordBatch,
}

/// Splits `batch` by the columns `by`, keeping row order within each part; parts come in the
/// order their first row appears. A missing or non-scalar partition column refuses the batch.
pub fn split(batch: &RecordBatch, by: &[String]) -> Result<Vec<Part>, SinkError> {
    if by.is_empty() {
        // Unpartitioned: one part, without a key per row.
        return Ok(vec![Part {
            dir: String::new(),
            values: Vec::new(),
            batch: batch.clone(),
        }]);
    }
    let schema = batch.schema();
    let mut key_cols = Vec::with_capacity(by.len());
    for name in by {
        let Some((i, field)) = schema.column_with_name(name) else {
            return Err(SinkError::Reject(format!(
                "partition column `{name}` is not in the batch (columns: {})",
                super::field_names(batch.schema_ref().fields())
            )));
        };
        if !partitionable(field.data_type()) {
            return Err(SinkError::Reject(format!(
                "partition column `{name}` is {}, which cannot name a folder; use a string, \
                 integer, boolean or date column (a transform can derive one)",
                field.data_type()
            )));
        }
        key_cols.push(i);
    }
    let rest: Vec<usize> = (0..batch.num_columns())
        .filter(|i| !key_cols.contains(i))
        .collect();
    let data = batch
        .project(&rest)
        .map_err(|e| SinkError::Encode(e.to_string()))?;

    let options = FormatOptions::default();
    let formatters = key_cols
        .iter()
        .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SinkError::Encode(e.to_string()))?;
    // Rows by their key; the common case (one key for the whole batch) costs one key per row
    // and no copy.
    let mut groups: IndexMap<Vec<Option<String>>, Vec<u32>> = IndexMap::new();
    for row in 0..batch.num_rows() {
        let key: Vec<Option<String>> = key_cols
            .iter()
            .zip(&formatters)
            .map(|(&c, f)| {
                if batch.column(c).is_null(row) {
                    return None;
                }
                let v = f.value(row).to_string();
                (!v.is_empty()).then_some(v)
            })
            .collect();
        groups.entry(key).or_default().push(row as u32);
    }
    let single = groups.len() == 1;
    groups
        .into_iter()
        .map(|(key, rows)| {
            let batch = if single {
                data.clone()
            } else {
                let idx = UInt32Array::from(rows);
                arrow_select::take::take_record_batch(&data, &idx)
                    .map_err(|e| SinkError::Encode(e.to_string()))?
            };
            let values: Vec<(String, Option<String>)> = by.iter().cloned().zip(key).collect();
            Ok(Part {
                dir: hive_dir(&values),
                values,
                batch,
            })
        })
        .collect()
}

fn partitionable(t: &DataType) -> bool {
    match t {
        DataType::Dictionary(_, v) => partitionable(v),
        t => {
            t.is_integer()
                || matches!(
                    t,
                    DataType::Utf8
                        | DataType::LargeUtf8
                        | DataType::Utf8View
                        | DataType::Boolean
                        | DataType::Date32
                        | DataType::Date64
                )
        }
    }
}

/// `col=value/...`, with the characters Hive escapes written as `%XX`.
pub fn hive_dir(values: &[(String, Option<String>)]) -> String {
    let mut dir = String::new();
    for (i, (col, value)) in values.iter().enumerate() {
        if i > 0 {
            dir.push('/');
        }
        escape_into(&mut dir, col);
        dir.push('=');
        match value {
            Some(v) => escape_into(&mut dir, v),
            None => dir.push_str(NULL_PARTITION),
        }
    }
    dir
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        // Hive's FileUtils.escapePathName set.
        if c < ' ' || c == '\x7f' || "\"#%'*/:=?\\{[]^".contains(c) {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
        let day: ArrayRef = Arc::new(StringArray::from(vec![
            Some("2026-11-01"),
            Some("2026-11-02"),
            None,
            Some("2026-11-01"),
        ]));
        let cur: ArrayRef = Arc::new(StringArray::from(vec!["EUR", "a/b=c", "EUR", "EUR"]));
        RecordBatch::try_from_iter(vec![("id", id), ("day", day), ("cur", cur)]).unwrap()
    }

    fn ids(b: &RecordBatch) -> Vec<i64> {
        let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        a.values().to_vec()
    }

    #[test]
    fn rows_go_to_folders_by_value_in_first_seen_order() {
        let parts = split(&batch(), &["day".into(), "cur".into()]).unwrap();
        let dirs: Vec<&str> = parts.iter().map(|p| p.dir.as_str()).collect();
        assert_eq!(
            dirs,
            [
                "day=2026-11-01/cur=EUR",
                "day=2026-11-02/cur=a%2Fb%3Dc",
                "day=__HIVE_DEFAULT_PARTITION__/cur=EUR",
            ]
        );
        assert_eq!(ids(&parts[0].batch), [1, 4]);
        assert_eq!(ids(&parts[1].batch), [2]);
        assert_eq!(parts[1].values[1], ("cur".into(), Some("a/b=c".into())));
        assert_eq!(parts[2].values[0], ("day".into(), None));
        // Partition columns are in the path, not the rows.
        assert_eq!(parts[0].batch.num_columns(), 1);
    }

    #[test]
    fn one_value_keeps_the_batch_whole() {
        let parts = split(&batch(), &[]).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].dir, "");
        assert_eq!(parts[0].batch.num_rows(), 4);
        // A partition column with one value in the batch: one part, rows in order.
        let parts = split(&batch().slice(2, 2), &["cur".into()]).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].dir, "cur=EUR");
        assert_eq!(ids(&parts[0].batch), [3, 4]);
        assert_eq!(parts[0].batch.num_columns(), 2);
    }

    #[test]
    fn a_missing_or_nested_column_is_refused_with_its_name() {
        let Err(SinkError::Reject(e)) = split(&batch(), &["nope".into()]) else {
            panic!("missing column accepted")
        };
        assert!(e.contains("`nope`") && e.contains("id, day, cur"), "{e}");
        let f: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![1.0]));
        let b = RecordBatch::try_from_iter(vec![("f", f)]).unwrap();
        let Err(SinkError::Reject(e)) = split(&b, &["f".into()]) else {
            panic!("float partition accepted")
        };
        assert!(e.contains("Float64"), "{e}");
    }
}
