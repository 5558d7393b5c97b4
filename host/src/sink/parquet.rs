//! The Parquet sink: rolling files, each written under a hidden temporary name, synced, and
//! renamed into place when complete, so readers never see a partial file. The acks of a file's
//! rows complete only after the rename (and the folder's sync), so offsets commit behind it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::SinkError;
use crate::config::{Compression, ParquetSinkConfig};
use crate::offsets::{Ack, Progress};

struct OpenFile {
    writer: ArrowWriter<File>,
    tmp: PathBuf,
    dest: PathBuf,
    schema: SchemaRef,
    rows: usize,
    opened: Instant,
    acks: Vec<Ack>,
}

/// Writes a route's rows into a folder of Parquet files.
pub struct ParquetSink {
    dir: PathBuf,
    max_rows: usize,
    max_age: Duration,
    props: WriterProperties,
    current: Option<OpenFile>,
    seq: u64,
    /// Files renamed into place so far.
    pub files_written: u64,
}

impl ParquetSink {
    /// A sink writing into `dir` (created if missing).
    pub fn new(dir: PathBuf, cfg: &ParquetSinkConfig) -> Result<Self, SinkError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| SinkError::Io(format!("{}: {e}", dir.display())))?;
        let codec = match cfg.compression {
            Compression::Zstd => {
                Codec::ZSTD(ZstdLevel::try_new(3).map_err(|e| SinkError::Io(e.to_string()))?)
            }
            Compression::Snappy => Codec::SNAPPY,
            Compression::None => Codec::UNCOMPRESSED,
        };
        Ok(ParquetSink {
            dir,
            max_rows: cfg.max_rows,
            max_age: cfg.max_age,
            props: WriterProperties::builder().set_compression(codec).build(),
            current: None,
            seq: 0,
            files_written: 0,
        })
    }

    /// Appends a batch to the open file (opening one if needed); closes it at `max_rows`.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.schema != batch.schema())
        {
            self.close()?; // a new schema starts a new file
        }
        if self.current.is_none() {
            self.current = Some(self.open(batch.schema())?);
        }
        let Some(file) = self.current.as_mut() else {
            return Err(SinkError::Io("no open file".into()));
        };
        file.writer
            .write(batch)
            .map_err(|e| SinkError::Io(format!("{}: {e}", file.tmp.display())))?;
        file.rows += batch.num_rows();
        file.acks.push(progress.hold());
        if file.rows >= self.max_rows {
            self.close()?;
        }
        Ok(())
    }

    /// Closes the open file if it is older than `max_age`.
    pub fn tick(&mut self) -> Result<(), SinkError> {
        if self
            .current
            .as_ref()
            .is_some_and(|f| f.opened.elapsed() >= self.max_age)
        {
            self.close()?;
        }
        Ok(())
    }

    /// Closes the open file: footer, fsync, rename, fsync the folder, then the acks.
    pub fn close(&mut self) -> Result<(), SinkError> {
        let Some(f) = self.current.take() else {
            return Ok(());
        };
        let io = |e: &dyn std::fmt::Display| SinkError::Io(format!("{}: {e}", f.tmp.display()));
        let file = f.writer.into_inner().map_err(|e| io(&e))?;
        file.sync_all().map_err(|e| io(&e))?;
        drop(file);
        std::fs::rename(&f.tmp, &f.dest).map_err(|e| io(&e))?;
        sync_dir(&self.dir).map_err(|e| io(&e))?;
        self.files_written += 1;
        tracing::debug!(file = %f.dest.display(), rows = f.rows, "parquet file written");
        for ack in f.acks {
            ack.done();
        }
        Ok(())
    }

    fn open(&mut self, schema: SchemaRef) -> Result<OpenFile, SinkError> {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        self.seq += 1;
        // Unique across restarts and concurrent workers: time, process and sequence.
        let name = format!("part-{ms}-{}-{:04}.parquet", std::process::id(), self.seq);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let dest = self.dir.join(name);
        let file =
            File::create(&tmp).map_err(|e| SinkError::Io(format!("{}: {e}", tmp.display())))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(self.props.clone()))
            .map_err(|e| SinkError::Io(format!("{}: {e}", tmp.display())))?;
        Ok(OpenFile {
            writer,
            tmp,
            dest,
            schema,
            rows: 0,
            opened: Instant::now(),
            acks: Vec::new(),
        })
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::OffsetTracker;
    use arrow_array::{ArrayRef, Int64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn batch(from: i64, n: i64) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + n));
        RecordBatch::try_from_iter(vec![("id", a)]).unwrap()
    }

    fn cfg(max_rows: usize) -> ParquetSinkConfig {
        ParquetSinkConfig {
            path: PathBuf::new(),
            max_rows,
            max_age: Duration::from_secs(3600),
            compression: Compression::Zstd,
        }
    }

    fn finished(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn files_appear_whole_and_acks_complete_only_after_the_rename() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = ParquetSink::new(dir.path().to_path_buf(), &cfg(250)).unwrap();
        let mut tracker = OffsetTracker::default();
        let p = tracker.begin([(("t".into(), 0), 99)].into());
        sink.write(&batch(0, 100), &p).unwrap();
        OffsetTracker::seal(&p);
        tracker.advance().unwrap();
        assert!(
            finished(dir.path()).is_empty(),
            "no file before it is complete"
        );
        assert!(
            tracker.to_commit().is_empty(),
            "nothing committable before the rename"
        );

        let q = tracker.begin([(("t".into(), 0), 299)].into());
        sink.write(&batch(100, 200), &q).unwrap(); // crosses max_rows: the file closes
        OffsetTracker::seal(&q);
        tracker.advance().unwrap();
        assert_eq!(tracker.to_commit(), [(("t".into(), 0), 300)].into());
        let files = finished(dir.path());
        assert_eq!(files.len(), 1);
        let rows: usize = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum();
        assert_eq!(rows, 300);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
