//! Kafka metadata as columns (invariant 4): `_topic`, `_partition`, `_offset`, `_timestamp`, `_key`.

use std::sync::Arc;

use arrow_array::{
    ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray,
};
use arrow_schema::{ArrowError, FieldRef, Schema};
use weir_guest_sdk::abi::upsert_column;

use crate::config::MetaColumn;
use crate::source::Record;

/// Appends the chosen metadata columns for the records at `rows` (one per batch row). A decoded
/// field of the same name is replaced: the metadata is the truth about the message.
pub fn append(
    batch: RecordBatch,
    columns: &[MetaColumn],
    records: &[Record<'_>],
    rows: &[u32],
) -> Result<RecordBatch, ArrowError> {
    if columns.is_empty() {
        return Ok(batch);
    }
    let recs = || rows.iter().map(|&i| &records[i as usize]);
    let schema = batch.schema();
    let mut fields: Vec<FieldRef> = schema.fields().iter().cloned().collect();
    let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
    for &c in columns {
        let array: ArrayRef = match c {
            MetaColumn::Topic => Arc::new(StringArray::from_iter_values(recs().map(|r| r.topic))),
            MetaColumn::Partition => {
                Arc::new(Int32Array::from_iter_values(recs().map(|r| r.partition)))
            }
            MetaColumn::Offset => Arc::new(Int64Array::from_iter_values(recs().map(|r| r.offset))),
            MetaColumn::Timestamp => Arc::new(
                TimestampMillisecondArray::from_iter(recs().map(|r| r.timestamp_ms))
                    .with_timezone("UTC"),
            ),
            MetaColumn::Key => Arc::new(StringArray::from_iter(
                recs().map(|r| r.key.map(|k| String::from_utf8_lossy(k).into_owned())),
            )),
        };
        upsert_column(&mut fields, &mut arrays, c.name(), array);
    }
    RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())),
        arrays,
    )
}
