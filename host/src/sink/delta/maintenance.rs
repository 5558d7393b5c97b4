//! Table maintenance beside a live writer: `weir delta optimize` compacts small files and
//! `weir delta vacuum` deletes files no version within the retention period needs.
//!
//! Compaction commits its adds and removes with `dataChange: false`, which the sink's appends do
//! not conflict with, so both can run at once. delta-rs's own optimize needs DataFusion; this
//! one reads and rewrites the Parquet files itself (bin-packing per partition).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, StringArray};
use arrow_schema::{Field, Schema};
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, LogicalFileView};
use deltalake::logstore::object_store::ObjectStoreExt;
use deltalake::protocol::DeltaOperation;
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use futures::TryStreamExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::{arrow_schema_of, conform, delta_err, open, runtime, writer_properties};
use crate::config::Compression;
use crate::sink::SinkError;

/// What `optimize` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct Compacted {
    /// The table version written (none when nothing needed compacting).
    pub version: Option<u64>,
    /// Small files read and removed.
    pub files_removed: usize,
    /// Files written in their place.
    pub files_added: usize,
    /// Rows rewritten.
    pub rows: usize,
}

/// Rewrites the files of each partition that are smaller than `target_size` into as few files
/// as fit `target_size`, in one commit. A partition with fewer than two small files is left.
pub fn optimize(
    uri: &str,
    storage: &HashMap<String, String>,
    target_size: u64,
    compression: Compression,
) -> Result<Compacted, SinkError> {
    let rt = runtime()?;
    let mut table =
        open(uri, storage)?.ok_or_else(|| SinkError::Io(format!("{uri}: no Delta table there")))?;
    let schema = arrow_schema_of(Some(&table), uri)?.ok_or_else(|| delta_err(uri, "no schema"))?;
    let snapshot = table.snapshot().map_err(|e| delta_err(uri, e))?;
    let log_store = table.log_store();
    let views: Vec<LogicalFileView> = rt
        .block_on(
            snapshot
                .snapshot()
                .file_views(log_store.as_ref(), None)
                .try_collect(),
        )
        .map_err(|e| delta_err(uri, e))?;
    let mut small: BTreeMap<Vec<(String, Option<String>)>, Vec<&LogicalFileView>> = BTreeMap::new();
    for v in &views {
        if (v.size() as u64) < target_size {
            let mut key: Vec<_> = v.partition_values_map().into_iter().collect();
            key.sort();
            small.entry(key).or_default().push(v);
        }
    }
    small.retain(|_, files| files.len() > 1);
    if small.is_empty() {
        return Ok(Compacted::default());
    }
    let store = table.object_store();
    let mut done = Compacted::default();
    let mut actions = Vec::new();
    for (partition, files) in &small {
        let mut writer = RecordBatchWriter::for_table(&table)
            .map_err(|e| delta_err(uri, e))?
            .with_writer_properties(writer_properties(compression)?)
            .with_target_file_size(target_size);
        for f in files {
            let bytes = rt
                .block_on(async { store.get(&f.object_store_path()).await?.bytes().await })
                .map_err(|e| delta_err(uri, format!("{}: {e}", f.path())))?;
            let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
                .and_then(|b| b.build())
                .map_err(|e| delta_err(uri, format!("{}: {e}", f.path())))?;
            for batch in reader {
                let batch = batch.map_err(|e| delta_err(uri, format!("{}: {e}", f.path())))?;
                done.rows += batch.num_rows();
                let whole = with_partition_columns(&batch, partition)
                    .and_then(|b| conform(&b, &schema))
                    .map_err(|e| delta_err(uri, format!("{}: {e}", f.path())))?;
                rt.block_on(writer.write(whole))
                    .map_err(|e| delta_err(uri, e))?;
            }
            actions.push(Action::Remove(f.remove_action(false)));
            done.files_removed += 1;
        }
        let adds = rt.block_on(writer.flush()).map_err(|e| delta_err(uri, e))?;
        done.files_added += adds.len();
        actions.extend(adds.into_iter().map(|mut a| {
            a.data_change = false;
            Action::Add(a)
        }));
    }
    let op = DeltaOperation::Optimize {
        predicate: None,
        target_size: target_size as i64,
    };
    let version = rt
        .block_on(async {
            CommitBuilder::default()
                .with_actions(actions)
                .build(Some(snapshot), log_store.clone(), op)
                .await
        })
        .map_err(|e| delta_err(uri, e))?
        .version();
    rt.block_on(table.update_incremental(Some(version)))
        .map_err(|e| delta_err(uri, e))?;
    done.version = Some(version);
    Ok(done)
}

/// The partition values, which live in the file's path and the log, as columns again.
fn with_partition_columns(
    batch: &RecordBatch,
    partition: &[(String, Option<String>)],
) -> Result<RecordBatch, String> {
    if partition.is_empty() {
        return Ok(batch.clone());
    }
    let mut fields: Vec<Arc<Field>> = batch.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = batch.columns().to_vec();
    for (name, value) in partition {
        let values = StringArray::from(vec![value.as_deref(); batch.num_rows()]);
        fields.push(Arc::new(Field::new(
            name,
            arrow_schema::DataType::Utf8,
            true,
        )));
        columns.push(Arc::new(values));
    }
    // `conform` then casts each to the table's type.
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())
}

/// What `vacuum` did.
#[derive(Debug, serde::Serialize)]
pub struct Vacuumed {
    /// Whether files were only listed.
    pub dry_run: bool,
    /// The files deleted (or that would be).
    pub files: Vec<String>,
}

/// Deletes the files that no version within `retention` refers to (delta-rs's vacuum; the
/// table's own minimum retention is enforced unless `force`).
pub fn vacuum(
    uri: &str,
    storage: &HashMap<String, String>,
    retention: std::time::Duration,
    dry_run: bool,
    force: bool,
) -> Result<Vacuumed, SinkError> {
    let rt = runtime()?;
    let table =
        open(uri, storage)?.ok_or_else(|| SinkError::Io(format!("{uri}: no Delta table there")))?;
    let retention = chrono::Duration::from_std(retention).map_err(|e| delta_err(uri, e))?;
    let (_, metrics) = rt
        .block_on(async {
            table
                .vacuum()
                .with_retention_period(retention)
                .with_enforce_retention_duration(!force)
                .with_dry_run(dry_run)
                .await
        })
        .map_err(|e| delta_err(uri, e))?;
    Ok(Vacuumed {
        dry_run,
        files: metrics.files_deleted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DeltaSinkConfig;
    use crate::offsets::OffsetTracker;
    use crate::sink::delta::DeltaSink;
    use arrow_array::Int64Array;
    use std::time::Duration;

    fn files(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let p = e.as_ref().unwrap().path();
                p.extension().is_some_and(|x| x == "parquet")
            })
            .count()
    }

    #[test]
    fn optimize_compacts_small_files_and_vacuum_removes_them() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("t").to_string_lossy().into_owned();
        let cfg: DeltaSinkConfig = serde_saphyr::from_str("uri: x\nmax_latency: 1h").unwrap();
        let mut sink = DeltaSink::new(uri.clone(), &cfg, "g").unwrap();
        let mut tracker = OffsetTracker::default();
        for i in 0..3 {
            let p = tracker.begin([(("t".into(), 0), i * 10 + 9)].into());
            let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(i * 10..i * 10 + 10));
            sink.write("T", &RecordBatch::try_from_iter([("id", ids)]).unwrap(), &p)
                .unwrap();
            sink.close_all().unwrap(); // one small file per commit
            OffsetTracker::seal(&p);
        }
        assert_eq!(files(dir.path().join("t").as_path()), 3);
        let none = HashMap::new();
        let done = optimize(&uri, &none, 1 << 20, Compression::Zstd).unwrap();
        assert_eq!(
            (done.files_removed, done.files_added, done.rows),
            (3, 1, 30)
        );
        assert_eq!(done.version, Some(4));
        let table = open(&uri, &none).unwrap().unwrap();
        assert_eq!(table.snapshot().unwrap().log_data().num_files(), 1);
        // The offsets stay where the sink stored them.
        let mut again = DeltaSink::new(uri.clone(), &cfg, "g").unwrap();
        assert_eq!(
            again.stored_offset("T", &("t".into(), 0)).unwrap(),
            Some(29)
        );
        // Nothing more to compact.
        let twice = optimize(&uri, &none, 1 << 20, Compression::Zstd).unwrap();
        assert_eq!(twice.version, None);

        let refused = vacuum(&uri, &none, Duration::ZERO, true, false);
        assert!(
            refused.is_err(),
            "a retention under the table's minimum needs --force"
        );
        let listed = vacuum(&uri, &none, Duration::ZERO, true, true).unwrap();
        assert_eq!(listed.files.len(), 3);
        assert_eq!(
            files(dir.path().join("t").as_path()),
            4,
            "a dry run deletes nothing"
        );
        let gone = vacuum(&uri, &none, Duration::ZERO, false, true).unwrap();
        assert_eq!(gone.files.len(), 3);
        assert_eq!(files(dir.path().join("t").as_path()), 1);
    }
}
