//! The Parquet sink: rolling files, each written under a hidden temporary name, synced, and
//! renamed into place when complete, so readers never see a partial file. The acks of a file's
//! rows complete only after the rename (and the folder's sync), so offsets commit behind it.
//! Each open file is encoded and compressed on a thread of its own while the worker goes on.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use indexmap::IndexMap;

use super::{partition, SinkError};
use crate::config::ParquetSinkConfig;
use crate::offsets::{Ack, Progress};

struct OpenFile {
    writer: FileWriter,
    tmp: PathBuf,
    dest: PathBuf,
    schema: SchemaRef,
    rows: usize,
    opened: Instant,
    acks: Vec<Ack>,
}

/// Writes a route's rows into a folder of Parquet files, one open file per partition folder.
pub struct ParquetSink {
    dir: PathBuf,
    cfg: ParquetSinkConfig,
    props: WriterProperties,
    /// Open files by partition folder (`""` without `partition_by`), oldest first.
    open: IndexMap<String, OpenFile>,
    seq: u64,
    /// Files renamed into place so far.
    pub files_written: u64,
    /// Their bytes.
    pub bytes_written: u64,
}

impl ParquetSink {
    /// A sink writing into `dir` (created if missing).
    pub fn new(dir: PathBuf, cfg: &ParquetSinkConfig) -> Result<Self, SinkError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| SinkError::Io(format!("{}: {e}", dir.display())))?;
        Ok(ParquetSink {
            dir,
            cfg: cfg.clone(),
            props: super::writer_properties(cfg.compression)?,
            open: IndexMap::new(),
            seq: 0,
            files_written: 0,
            bytes_written: 0,
        })
    }

    /// Appends a batch, split by the partition columns, to each partition's open file (opening
    /// one if needed); closes a file that reaches `max_rows` or `max_bytes`.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        for part in partition::split(batch, &self.cfg.partition_by)? {
            self.write_part(part.dir, &part.batch, progress)?;
        }
        Ok(())
    }

    fn write_part(
        &mut self,
        dir: String,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        if self
            .open
            .get(&dir)
            .is_some_and(|f| f.schema != batch.schema())
        {
            self.close(&dir)?; // a new schema starts a new file
        }
        if !self.open.contains_key(&dir) {
            if self.open.len() >= self.cfg.max_open_files {
                self.close_index(0)?; // the oldest
            }
            let file = self.create(&dir, batch.schema())?;
            self.open.insert(dir.clone(), file);
        }
        let Some(file) = self.open.get_mut(&dir) else {
            return Err(SinkError::Io("no open file".into()));
        };
        file.writer
            .write(batch)
            .map_err(|e| SinkError::Io(format!("{}: {e}", file.tmp.display())))?;
        file.rows += batch.num_rows();
        file.acks.push(progress.hold());
        if file.rows >= self.cfg.max_rows || file.writer.encoded_bytes() >= self.cfg.max_bytes {
            self.close(&dir)?;
        }
        Ok(())
    }

    /// Closes the open files older than `max_age`.
    pub fn tick(&mut self) -> Result<(), SinkError> {
        // Oldest first: stop at the first young one.
        while self
            .open
            .first()
            .is_some_and(|(_, f)| f.opened.elapsed() >= self.cfg.max_age)
        {
            self.close_index(0)?;
        }
        Ok(())
    }

    /// Closes every open file.
    pub fn close_all(&mut self) -> Result<(), SinkError> {
        while !self.open.is_empty() {
            self.close_index(0)?;
        }
        Ok(())
    }

    fn close(&mut self, dir: &str) -> Result<(), SinkError> {
        match self.open.get_index_of(dir) {
            Some(i) => self.close_index(i),
            None => Ok(()),
        }
    }

    /// Closes one file: footer, fsync, rename, fsync the folder, then the acks.
    fn close_index(&mut self, i: usize) -> Result<(), SinkError> {
        let Some((_, f)) = self.open.shift_remove_index(i) else {
            return Ok(());
        };
        let io = |e: &dyn std::fmt::Display| SinkError::Io(format!("{}: {e}", f.tmp.display()));
        let mut writer = f.writer;
        let file = writer.finish().map_err(|e| io(&e))?;
        file.sync_all().map_err(|e| io(&e))?;
        let len = file.metadata().map_err(|e| io(&e))?.len();
        drop(file);
        std::fs::rename(&f.tmp, &f.dest).map_err(|e| io(&e))?;
        if let Some(parent) = f.dest.parent() {
            sync_dir(parent).map_err(|e| io(&e))?;
        }
        self.files_written += 1;
        self.bytes_written += len;
        tracing::debug!(file = %f.dest.display(), rows = f.rows, "parquet file written");
        for ack in f.acks {
            ack.done();
        }
        Ok(())
    }

    fn create(&mut self, part: &str, schema: SchemaRef) -> Result<OpenFile, SinkError> {
        let dir = self.dir.join(part);
        if !part.is_empty() && !dir.is_dir() {
            std::fs::create_dir_all(&dir)
                .and_then(|()| sync_parents(&dir, &self.dir))
                .map_err(|e| SinkError::Io(format!("{}: {e}", dir.display())))?;
        }
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        self.seq += 1;
        // Unique across restarts and concurrent workers: time, process and sequence.
        let name = format!("part-{ms}-{}-{:04}.parquet", std::process::id(), self.seq);
        let tmp = dir.join(format!(".{name}.tmp"));
        let dest = dir.join(name);
        let file =
            File::create(&tmp).map_err(|e| SinkError::Io(format!("{}: {e}", tmp.display())))?;
        let writer = FileWriter::start(file, schema.clone(), self.props.clone())
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

/// Batches a file's writer thread may have queued: bounds the memory they hold.
const QUEUED_BATCHES: usize = 4;

/// An [`ArrowWriter`] on a thread of its own: batches are encoded and compressed there. Its
/// errors surface at the next write, or at [`FileWriter::finish`].
struct FileWriter {
    tx: Option<SyncSender<RecordBatch>>,
    thread: Option<JoinHandle<Result<File, String>>>,
    /// Bytes encoded so far (written and buffered), as of the last batch the thread finished.
    encoded: Arc<AtomicU64>,
}

impl FileWriter {
    fn start(file: File, schema: SchemaRef, props: WriterProperties) -> Result<Self, String> {
        let mut writer =
            ArrowWriter::try_new(file, schema, Some(props)).map_err(|e| e.to_string())?;
        let (tx, rx) = std::sync::mpsc::sync_channel::<RecordBatch>(QUEUED_BATCHES);
        let encoded = Arc::new(AtomicU64::new(writer.bytes_written() as u64)); // the header
        let bytes = Arc::clone(&encoded);
        let thread = std::thread::Builder::new()
            .name("weir-parquet".into())
            .spawn(move || {
                for batch in rx {
                    writer.write(&batch).map_err(|e| e.to_string())?;
                    let n = writer.bytes_written() + writer.in_progress_size();
                    bytes.store(n as u64, Ordering::Relaxed);
                }
                writer.into_inner().map_err(|e| e.to_string())
            })
            .map_err(|e| format!("writer thread: {e}"))?;
        Ok(FileWriter {
            tx: Some(tx),
            thread: Some(thread),
            encoded,
        })
    }

    /// Queues a batch (waiting while the queue is full).
    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self.tx.as_ref().map(|tx| tx.send(batch.clone())) {
            Some(Ok(())) => Ok(()),
            // The thread stopped: its error says why.
            _ => Err(match self.finish() {
                Err(e) => e,
                Ok(_) => "the writer thread stopped".into(),
            }),
        }
    }

    /// What `max_bytes` is checked against: it lags the queued batches.
    fn encoded_bytes(&self) -> u64 {
        self.encoded.load(Ordering::Relaxed)
    }

    /// Waits for the queued batches and the footer; the file is complete but not yet synced.
    fn finish(&mut self) -> Result<File, String> {
        drop(self.tx.take());
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err("the writer thread panicked".into())),
            None => Err("the file was already finished".into()),
        }
    }
}

/// Makes new partition folders durable: syncs each folder from `dir`'s parent up to `root`.
fn sync_parents(dir: &Path, root: &Path) -> std::io::Result<()> {
    let mut d = dir.parent();
    while let Some(p) = d {
        sync_dir(p)?;
        if p == root {
            break;
        }
        d = p.parent();
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Compression;
    use crate::offsets::OffsetTracker;
    use arrow_array::{ArrayRef, Int64Array};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::time::Duration;

    fn batch(from: i64, n: i64) -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from_iter_values(from..from + n));
        RecordBatch::try_from_iter(vec![("id", a)]).unwrap()
    }

    fn cfg(max_rows: usize) -> ParquetSinkConfig {
        ParquetSinkConfig {
            path: PathBuf::new(),
            max_rows,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(3600),
            compression: Compression::Zstd,
            partition_by: Vec::new(),
            max_open_files: 64,
        }
    }

    /// Every finished file below `dir`, and every leftover temporary one.
    fn files(dir: &Path) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let (mut done, mut tmp) = (Vec::new(), Vec::new());
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                let (d, t) = files(&p);
                done.extend(d);
                tmp.extend(t);
            } else if p.extension().is_some_and(|e| e == "parquet") {
                done.push(p);
            } else {
                tmp.push(p);
            }
        }
        done.sort();
        (done, tmp)
    }

    fn finished(dir: &Path) -> Vec<PathBuf> {
        files(dir).0
    }

    fn read(file: &Path) -> Vec<RecordBatch> {
        ParquetRecordBatchReaderBuilder::try_new(File::open(file).unwrap())
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect()
    }

    fn keyed(n: i64) -> RecordBatch {
        let id: ArrayRef = Arc::new(Int64Array::from_iter_values(0..n));
        let k: ArrayRef = Arc::new(arrow_array::StringArray::from_iter_values(
            (0..n).map(|i| ["a", "b", "c"][i as usize % 3]),
        ));
        RecordBatch::try_from_iter(vec![("id", id), ("k", k)]).unwrap()
    }

    #[test]
    fn partition_folders_get_their_rows_and_the_key_column_stays_in_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(1000);
        c.partition_by = vec!["k".into()];
        let mut sink = ParquetSink::new(dir.path().to_path_buf(), &c).unwrap();
        let mut tracker = OffsetTracker::default();
        let p = tracker.begin([(("t".into(), 0), 8)].into());
        sink.write(&keyed(9), &p).unwrap();
        OffsetTracker::seal(&p);
        sink.close_all().unwrap();
        tracker.advance().unwrap();
        assert_eq!(tracker.to_commit(), [(("t".into(), 0), 9)].into());
        let (done, tmp) = files(dir.path());
        assert!(tmp.is_empty(), "{tmp:?}");
        let got: Vec<(String, Vec<i64>)> = done
            .iter()
            .map(|f| {
                let folder = f.parent().unwrap().file_name().unwrap();
                let b = &read(f)[0];
                assert_eq!(b.num_columns(), 1, "k lives in the path");
                let ids = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                (folder.to_string_lossy().into(), ids.values().to_vec())
            })
            .collect();
        assert_eq!(
            got,
            [
                ("k=a".to_string(), vec![0, 3, 6]),
                ("k=b".to_string(), vec![1, 4, 7]),
                ("k=c".to_string(), vec![2, 5, 8]),
            ]
        );
    }

    #[test]
    fn files_roll_at_max_bytes_and_at_most_max_open_files_stay_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(usize::MAX);
        c.max_bytes = 1; // every write closes its file
        let mut sink = ParquetSink::new(dir.path().to_path_buf(), &c).unwrap();
        let mut tracker = OffsetTracker::default();
        let p = tracker.begin([(("t".into(), 0), 0)].into());
        for i in 0..3 {
            sink.write(&batch(i * 10, 10), &p).unwrap();
        }
        assert_eq!(finished(dir.path()).len(), 3);

        // The size seen lags the batches the writer thread has yet to encode; files still roll.
        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(usize::MAX);
        c.max_bytes = 20_000;
        let mut sink = ParquetSink::new(dir.path().to_path_buf(), &c).unwrap();
        for i in 0..200 {
            sink.write(&batch(i * 1000, 1000), &p).unwrap();
        }
        sink.close_all().unwrap();
        let files = finished(dir.path());
        assert!(files.len() > 1, "{files:?}");
        let rows: usize = files
            .iter()
            .flat_map(|f| read(f))
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 200_000);

        let dir = tempfile::tempdir().unwrap();
        let mut c = cfg(usize::MAX);
        c.partition_by = vec!["k".into()];
        c.max_open_files = 2;
        let mut sink = ParquetSink::new(dir.path().to_path_buf(), &c).unwrap();
        sink.write(&keyed(3), &p).unwrap(); // a, b, c: opening c closes a
        assert_eq!(sink.open.len(), 2);
        let done = finished(dir.path());
        assert_eq!(done.len(), 1);
        assert!(done[0].parent().unwrap().ends_with("k=a"), "{done:?}");
        sink.close_all().unwrap();
        assert_eq!(finished(dir.path()).len(), 3);
        OffsetTracker::seal(&p);
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
