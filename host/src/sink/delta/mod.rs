//! The Delta Lake sink: exactly once, as kafka-delta-ingest does it. Rows are buffered per table
//! (streamed into Parquet files as they come) and appended in one commit that also carries, per
//! consumed partition, a `txn` action `{app_id}-{topic}-{partition}` whose version is the highest
//! offset the commit covers. Before a batch is transformed the pipeline asks
//! [`DeltaSink::stored_offset`] and drops the rows the table already holds, so a restart (from the
//! consumer group's committed offset, which never runs ahead of the tables) duplicates nothing.
//! If another writer commits a `txn` for a partition this worker holds, the commit fails with
//! [`SinkError::Conflict`]: the buffered rows are dropped and the worker reads them again.
//!
//! When a route writes every message into one table (no `{type}` in its URI, the only route),
//! the stored versions also place the consumer: [`DeltaSink::resume`] gives the source the offset
//! each newly assigned partition resumes at, so nothing the table holds is read again. Dead letters
//! are settled (the producer flushed) before each commit, so everything at or below a stored
//! version is done somewhere.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arrow_array::{new_null_array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::{
    CommitBuilder, CommitConflictError, CommitData, CommitProperties, TransactionError,
};
use deltalake::kernel::{new_metadata, Action, MetadataExt, Protocol, StructType, Transaction};
use deltalake::logstore::CommitOrBytes;
use deltalake::parquet::file::properties::WriterProperties;
use deltalake::protocol::{DeltaOperation, OutputMode, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError};

pub mod maintenance;
mod s3;

use super::producer::{self, AckProducer};
use super::{field_names, writer_properties, SinkError};
use crate::config::{DeltaSinkConfig, SchemaMismatch};
use crate::offsets::{Ack, Partition, Progress};
use crate::source::kafka::Resume;

/// The async runtime the delta-rs calls are driven on, from the pipeline's thread.
fn runtime() -> Result<&'static tokio::runtime::Runtime, SinkError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("weir-delta")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| SinkError::Io(format!("starting the Delta runtime: {e}")))
}

fn delta_err(uri: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError::Io(format!("delta table {uri}: {e}"))
}

/// One table's state.
struct Table {
    uri: String,
    /// `uri` as a URL (`file://` for a local path).
    url: url::Url,
    /// The `txn` application id prefix.
    app_id: String,
    /// `None` until the table exists.
    table: Option<DeltaTable>,
    /// The table's schema as Arrow, the target every batch is cast to.
    schema: Option<SchemaRef>,
    /// Stored `txn` versions, looked up per partition on first use.
    stored: HashMap<Partition, Option<i64>>,
    /// Re-read the table and its versions before the next use (partitions were reassigned).
    stale: bool,
    window: Window,
    /// Data files committed by this sink.
    files: u64,
    /// Bytes of those files.
    bytes: u64,
}

/// What is buffered for the next commit.
#[derive(Default)]
struct Window {
    writer: Option<RecordBatchWriter>,
    /// A schema with new columns, committed as a `metaData` action with the rows.
    evolved: Option<StructType>,
    offsets: BTreeMap<Partition, i64>,
    acks: Vec<Ack>,
    rows: usize,
    since: Option<Instant>,
}

/// Writes a route's rows into one Delta table, or one per message type (`{type}` in the URI).
pub struct DeltaSink {
    template: String,
    cfg: DeltaSinkConfig,
    app_id: String,
    storage: HashMap<String, String>,
    props: WriterProperties,
    tables: HashMap<String, Table>,
    uri_of: HashMap<String, String>,
    /// Delivered before each commit: the dead letters of the rows a commit covers.
    settle: Option<Arc<AckProducer>>,
}

impl DeltaSink {
    /// A sink for `cfg`; `uri` is the configured URI with a local path resolved, `group_id` the
    /// default application id.
    pub fn new(uri: String, cfg: &DeltaSinkConfig, group_id: &str) -> Result<Self, SinkError> {
        runtime()?;
        Ok(DeltaSink {
            template: uri,
            app_id: cfg.app_id.clone().unwrap_or_else(|| group_id.to_string()),
            storage: cfg.storage_options.clone().into_iter().collect(),
            props: writer_properties(cfg.compression)?,
            cfg: cfg.clone(),
            tables: HashMap::new(),
            uri_of: HashMap::new(),
            settle: None,
        })
    }

    /// Flushes `producer` (the dead-letter route) before each commit.
    pub fn settle_before_commit(&mut self, producer: Arc<AckProducer>) {
        self.settle = Some(producer);
    }

    /// Where each partition resumes, read from the table's stored versions, when the sink
    /// writes one table (no `{type}` in its URI): see [`resume_offsets`].
    pub fn resume(&self) -> Option<Resume> {
        if self.template.contains("{type}") {
            return None;
        }
        let (uri, storage, app_id) = (
            self.template.clone(),
            self.storage.clone(),
            self.app_id.clone(),
        );
        Some(Box::new(move |partitions: &[Partition]| {
            resume_offsets(&uri, &storage, &app_id, partitions).map_err(|e| e.to_string())
        }))
    }

    fn uri(&mut self, type_name: &str) -> String {
        if let Some(u) = self.uri_of.get(type_name) {
            return u.clone();
        }
        let safe: String = type_name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let u = self.template.replace("{type}", &safe);
        self.uri_of.insert(type_name.to_string(), u.clone());
        u
    }

    /// The table for a message type, opened (not created) on first use.
    fn table(&mut self, type_name: &str) -> Result<&mut Table, SinkError> {
        let uri = self.ready(type_name)?;
        self.tables
            .get_mut(&uri)
            .ok_or_else(|| SinkError::Io(format!("delta table {uri}: not open")))
    }

    /// Opens the table of a message type on first use, re-reads it when stale; returns its key.
    fn ready(&mut self, type_name: &str) -> Result<String, SinkError> {
        let uri = self.uri(type_name);
        if !self.tables.contains_key(&uri) {
            let t = open(&uri, &self.storage)?;
            let schema = arrow_schema_of(t.as_ref(), &uri)?;
            let url = storage_url(&uri)?;
            self.tables.insert(
                uri.clone(),
                Table {
                    uri: uri.clone(),
                    url,
                    app_id: self.app_id.clone(),
                    table: t,
                    schema,
                    stored: HashMap::new(),
                    stale: false,
                    window: Window::default(),
                    files: 0,
                    bytes: 0,
                },
            );
        }
        let t = self
            .tables
            .get_mut(&uri)
            .ok_or_else(|| SinkError::Io(format!("delta table {uri}: not open")))?;
        if t.stale && t.window.rows == 0 {
            t.stored.clear();
            if t.table.is_none() {
                t.table = open(&uri, &self.storage)?;
            } else if let Some(table) = t.table.as_mut() {
                runtime()?
                    .block_on(table.update_state())
                    .map_err(|e| delta_err(&uri, e))?;
            }
            t.schema = arrow_schema_of(t.table.as_ref(), &uri)?;
            t.stale = false;
        }
        Ok(uri)
    }

    /// The highest offset of `partition` the table of `type_name` already holds, if any.
    pub fn stored_offset(
        &mut self,
        type_name: &str,
        partition: &Partition,
    ) -> Result<Option<i64>, SinkError> {
        let t = self.table(type_name)?;
        if let Some(v) = t.stored.get(partition) {
            return Ok(*v);
        }
        let app = txn_app_id(&t.app_id, partition);
        let v = match &t.table {
            None => None,
            Some(table) => {
                let snapshot = table.snapshot().map_err(|e| delta_err(&t.uri, e))?;
                runtime()?
                    .block_on(snapshot.transaction_version(table.log_store().as_ref(), app))
                    .map_err(|e| delta_err(&t.uri, e))?
            }
        };
        t.stored.insert(partition.clone(), v);
        Ok(v)
    }

    /// Data files committed so far.
    pub fn files_written(&self) -> u64 {
        self.tables.values().map(|t| t.files).sum()
    }

    /// Bytes of the data files committed so far.
    pub fn bytes_written(&self) -> u64 {
        self.tables.values().map(|t| t.bytes).sum()
    }

    /// Partitions were reassigned: another worker may have written since; look again.
    pub fn invalidate(&mut self) {
        for t in self.tables.values_mut() {
            t.stale = true;
        }
    }

    /// Buffers a batch for its table (creating the table, or adding new nullable columns to
    /// it); commits when the table's window is full.
    pub fn write(
        &mut self,
        type_name: &str,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        let wanted = delta_schema(batch.schema_ref());
        let uri = self.ready(type_name)?;
        let DeltaSink {
            tables,
            cfg,
            storage,
            props,
            settle,
            ..
        } = self;
        let settle = settle.as_deref();
        let mismatch_policy = cfg.schema_mismatch;
        let t = tables
            .get_mut(&uri)
            .ok_or_else(|| delta_err(&uri, "not open"))?;
        if t.table.is_none() {
            create(&t.uri, storage, &wanted, &cfg.partition_by)?;
            t.table = open(&t.uri, storage)?;
            t.schema = arrow_schema_of(t.table.as_ref(), &t.uri)?;
        }
        let Some(current) = t.schema.clone() else {
            return Err(delta_err(&t.uri, "no schema after create"));
        };
        let target = match evolve(&current, &wanted) {
            Ok(None) => current,
            Ok(Some(merged)) => {
                if t.window.rows > 0 {
                    flush(t, cfg.checkpoint_every, settle)?; // the old schema's rows first
                }
                let st: StructType = merged
                    .as_ref()
                    .try_into_kernel()
                    .map_err(|e| mismatch(mismatch_policy, format!("{}: {e}", t.uri)))?;
                tracing::info!(
                    table = %t.uri,
                    "adding columns: {}",
                    field_names(&merged.fields()[current.fields().len()..])
                );
                t.window.evolved = Some(st);
                t.schema = Some(Arc::clone(&merged));
                merged
            }
            Err(why) => return Err(mismatch(mismatch_policy, format!("{}: {why}", t.uri))),
        };
        let cast = conform(batch, &target).map_err(|why| mismatch(mismatch_policy, why))?;
        let rt = runtime()?;
        let w = &mut t.window;
        if w.writer.is_none() {
            let table = t
                .table
                .as_ref()
                .ok_or_else(|| delta_err(&t.uri, "not open"))?;
            let writer = match &w.evolved {
                // The table's metadata does not have the new columns yet.
                Some(_) => RecordBatchWriter::try_new(
                    t.url.as_str(),
                    Arc::clone(&target),
                    Some(cfg.partition_by.clone()).filter(|p| !p.is_empty()),
                    Some(storage.clone()),
                ),
                None => RecordBatchWriter::for_table(table),
            }
            .map_err(|e| delta_err(&t.uri, e))?;
            w.writer = Some(writer.with_writer_properties(props.clone()));
        }
        let Some(writer) = w.writer.as_mut() else {
            return Err(delta_err(&t.uri, "no writer"));
        };
        rt.block_on(writer.write(cast))
            .map_err(|e| delta_err(&t.uri, e))?;
        w.rows += batch.num_rows();
        for (tp, &o) in progress.offsets() {
            let e = w.offsets.entry(tp.clone()).or_insert(o);
            *e = (*e).max(o);
        }
        w.acks.push(progress.hold());
        w.since.get_or_insert_with(Instant::now);
        if writer.buffer_len() as u64 >= cfg.min_bytes || w.rows >= cfg.max_rows {
            flush(t, cfg.checkpoint_every, settle)?;
        }
        Ok(())
    }

    /// Commits the windows older than `max_latency`.
    pub fn tick(&mut self) -> Result<(), SinkError> {
        for t in self.tables.values_mut() {
            if t.window
                .since
                .is_some_and(|s| s.elapsed() >= self.cfg.max_latency)
            {
                flush(t, self.cfg.checkpoint_every, self.settle.as_deref())?;
            }
        }
        Ok(())
    }

    /// Commits every window.
    pub fn close_all(&mut self) -> Result<(), SinkError> {
        for t in self.tables.values_mut() {
            if t.window.rows > 0 {
                flush(t, self.cfg.checkpoint_every, self.settle.as_deref())?;
            }
        }
        Ok(())
    }

    /// Drops every buffered row (they will be read again) and looks at the tables afresh.
    pub fn abandon(&mut self) {
        // A dropped writer aborts its uploads on the runtime it finds.
        let _guard = runtime().ok().map(|rt| rt.enter());
        for t in self.tables.values_mut() {
            let w = std::mem::take(&mut t.window);
            drop(w.writer);
            for ack in w.acks {
                ack.fail("abandoned: the rows will be read again");
            }
            // Re-read the table (and its schema, if this window had evolved it) before use.
            t.stale = true;
        }
    }
}

fn mismatch(policy: SchemaMismatch, why: String) -> SinkError {
    match policy {
        SchemaMismatch::DeadLetter => SinkError::Reject(why),
        SchemaMismatch::Stop => SinkError::Encode(why),
    }
}

/// The URL of a table: `s3://` handlers are registered on first use, a local path is created
/// and made absolute.
fn storage_url(uri: &str) -> Result<url::Url, SinkError> {
    if uri.contains("://") {
        s3::register();
        url::Url::parse(uri).map_err(|e| delta_err(uri, e))
    } else {
        std::fs::create_dir_all(uri).map_err(|e| delta_err(uri, e))?;
        let abs = std::fs::canonicalize(uri).map_err(|e| delta_err(uri, e))?;
        url::Url::from_directory_path(&abs)
            .map_err(|()| delta_err(uri, "not an absolute local path"))
    }
}

/// Opens the table at `uri`; `None` if there is none yet.
fn open(uri: &str, storage: &HashMap<String, String>) -> Result<Option<DeltaTable>, SinkError> {
    let url = storage_url(uri)?;
    // A local folder without a log is no table; asking delta-rs would log an error for it.
    if let Ok(dir) = url.to_file_path() {
        if !dir.join("_delta_log").is_dir() {
            return Ok(None);
        }
    }
    let loaded = runtime()?.block_on(
        DeltaTableBuilder::from_url(url)
            .map_err(|e| delta_err(uri, e))?
            .with_storage_options(storage.clone())
            .load(),
    );
    match loaded {
        Ok(t) => Ok(Some(t)),
        Err(DeltaTableError::NotATable(_)) => Ok(None),
        Err(e) => Err(delta_err(uri, e)),
    }
}

fn arrow_schema_of(t: Option<&DeltaTable>, uri: &str) -> Result<Option<SchemaRef>, SinkError> {
    let Some(t) = t else { return Ok(None) };
    let st = t.snapshot().map_err(|e| delta_err(uri, e))?.schema();
    let schema: Schema = st
        .as_ref()
        .try_into_arrow()
        .map_err(|e| delta_err(uri, e))?;
    Ok(Some(Arc::new(schema)))
}

/// Creates the table as version 0, or finds that another worker just did: a put that only
/// succeeds if the version-0 log entry is absent, so racing creators agree on one table.
fn create(
    uri: &str,
    storage: &HashMap<String, String>,
    schema: &SchemaRef,
    partition_by: &[String],
) -> Result<(), SinkError> {
    for p in partition_by {
        if schema.field_with_name(p).is_err() {
            return Err(SinkError::Reject(format!(
                "{uri}: partition column `{p}` is not in the rows"
            )));
        }
    }
    let st: StructType = schema
        .as_ref()
        .try_into_kernel()
        .map_err(|e| SinkError::Reject(format!("{uri}: {e}")))?;
    let err = |e: &dyn std::fmt::Display| delta_err(uri, e);
    let metadata =
        new_metadata(&st, partition_by, Vec::<(String, String)>::new()).map_err(|e| err(&e))?;
    let protocol: Protocol =
        serde_json::from_value(serde_json::json!({"minReaderVersion": 1, "minWriterVersion": 2}))
            .map_err(|e| err(&e))?;
    let url = storage_url(uri)?;
    let op = DeltaOperation::Create {
        mode: SaveMode::ErrorIfExists,
        location: url.clone(),
        protocol: protocol.clone(),
        metadata: metadata.clone(),
    };
    let bytes = CommitData::new(
        vec![Action::Protocol(protocol), Action::Metadata(metadata)],
        op,
        HashMap::new(),
        Vec::new(),
    )
    .get_bytes()
    .map_err(|e| err(&e))?;
    let table = DeltaTableBuilder::from_url(url)
        .map_err(|e| err(&e))?
        .with_storage_options(storage.clone())
        .build()
        .map_err(|e| err(&e))?;
    let written = runtime()?.block_on(table.log_store().write_commit_entry(
        0,
        CommitOrBytes::LogBytes(bytes),
        uuid::Uuid::new_v4(),
    ));
    match written {
        Ok(()) => {
            tracing::info!(table = uri, "delta table created");
            Ok(())
        }
        Err(TransactionError::VersionAlreadyExists(_)) => Ok(()), // another worker won
        Err(e) => Err(err(&e)),
    }
}

/// Commits a table's window: the files, the `txn` versions and any new schema in one commit;
/// then a checkpoint if the new version is a multiple of `checkpoint_every`. `settle` is flushed
/// first: the dead letters of offsets the commit covers are delivered before it.
fn flush(
    t: &mut Table,
    checkpoint_every: u64,
    settle: Option<&AckProducer>,
) -> Result<(), SinkError> {
    let rt = runtime()?;
    if t.window.writer.is_none() {
        return Ok(());
    }
    if let Some(p) = settle {
        producer::flush(p, SETTLE_TIMEOUT).map_err(|e| {
            SinkError::Io(format!(
                "delta table {}: delivering dead letters before the commit: {e}",
                t.uri
            ))
        })?;
    }
    let w = std::mem::take(&mut t.window);
    let Some(mut writer) = w.writer else {
        return Ok(());
    };
    let uri = t.uri.clone();
    let table = t
        .table
        .as_mut()
        .ok_or_else(|| delta_err(&uri, "not open"))?;
    let adds = rt
        .block_on(writer.flush())
        .map_err(|e| delta_err(&uri, e))?;
    let files = adds.len() as u64;
    let bytes: u64 = adds.iter().map(|a| a.size.max(0) as u64).sum();
    let mut actions: Vec<Action> = adds.into_iter().map(Action::Add).collect();
    if let Some(st) = &w.evolved {
        let snapshot = table.snapshot().map_err(|e| delta_err(&uri, e))?;
        let metadata = snapshot
            .metadata()
            .clone()
            .with_schema(st)
            .map_err(|e| delta_err(&uri, e))?;
        actions.push(Action::Metadata(metadata));
    }
    let txns: Vec<Transaction> = w
        .offsets
        .iter()
        .map(|(tp, &o)| Transaction::new(txn_app_id(&t.app_id, tp), o))
        .collect();
    let props = CommitProperties::default()
        .with_application_transactions(txns)
        .with_create_checkpoint(false);
    let op = DeltaOperation::StreamingUpdate {
        output_mode: OutputMode::Append,
        query_id: uri.clone(),
        epoch_id: table.version().map_or(0, |v| v as i64 + 1),
    };
    let snapshot = table.snapshot().map_err(|e| delta_err(&uri, e))?;
    let committed = rt.block_on(async {
        CommitBuilder::from(props)
            .with_actions(actions)
            .build(Some(snapshot), table.log_store(), op)
            .await
    });
    let version = match committed {
        Ok(c) => c.version(),
        Err(DeltaTableError::Transaction {
            source: TransactionError::CommitConflict(c),
        }) => {
            let why = match c {
                CommitConflictError::ConcurrentTransaction => {
                    "another writer stored offsets for a partition this worker holds".to_string()
                }
                other => other.to_string(),
            };
            for ack in w.acks {
                ack.fail("delta commit conflict");
            }
            t.stale = true;
            return Err(SinkError::Conflict(format!("delta table {uri}: {why}")));
        }
        Err(e) => return Err(delta_err(&uri, e)),
    };
    rt.block_on(table.update_incremental(Some(version)))
        .map_err(|e| delta_err(&uri, e))?;
    for (tp, o) in &w.offsets {
        t.stored.insert(tp.clone(), Some(*o));
    }
    t.files += files;
    t.bytes += bytes;
    tracing::debug!(table = %uri, version, rows = w.rows, files, "delta commit");
    for ack in w.acks {
        ack.done();
    }
    checkpoint_if_due(t, checkpoint_every)
}

/// How long a commit waits for the dead letters before it.
const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads, per partition, where a consumer resumes so that it reads nothing the table at `uri`
/// holds: the stored `txn` version + 1, or `None` (no table, or nothing stored for it).
pub fn resume_offsets(
    uri: &str,
    storage: &HashMap<String, String>,
    app_id: &str,
    partitions: &[Partition],
) -> Result<Vec<Option<i64>>, SinkError> {
    let Some(table) = open(uri, storage)? else {
        return Ok(vec![None; partitions.len()]);
    };
    let snapshot = table.snapshot().map_err(|e| delta_err(uri, e))?;
    let rt = runtime()?;
    partitions
        .iter()
        .map(|tp| {
            let v = rt
                .block_on(
                    snapshot
                        .transaction_version(table.log_store().as_ref(), txn_app_id(app_id, tp)),
                )
                .map_err(|e| delta_err(uri, e))?;
            Ok(v.map(|v| v + 1))
        })
        .collect()
}

/// The `txn` application id of a partition: `{app_id}-{topic}-{partition}`.
fn txn_app_id(app_id: &str, tp: &Partition) -> String {
    format!("{app_id}-{}-{}", tp.0, tp.1)
}

/// Writes a checkpoint when the table's version is a multiple of `every`.
fn checkpoint_if_due(t: &Table, every: u64) -> Result<(), SinkError> {
    let Some(table) = &t.table else { return Ok(()) };
    let Some(version) = table.version() else {
        return Ok(());
    };
    if every == 0 || version % every != 0 {
        return Ok(());
    }
    runtime()?
        .block_on(deltalake::checkpoints::create_checkpoint(table, None))
        .map_err(|e| delta_err(&t.uri, format!("checkpoint at version {version}: {e}")))?;
    tracing::debug!(table = %t.uri, version, "delta checkpoint written");
    Ok(())
}

/// The batch schema in the types Delta stores: dictionaries as their values, unsigned integers
/// widened (u64 into i64, checked when cast), timestamps in microseconds UTC (Delta's
/// `timestamp`; naive ones are taken as UTC), large and view strings and binaries as plain ones,
/// all-null columns as strings.
pub fn delta_schema(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<FieldRef> = schema.fields().iter().map(|f| delta_field(f)).collect();
    Arc::new(Schema::new(fields))
}

fn delta_field(f: &Field) -> FieldRef {
    Arc::new(Field::new(
        f.name(),
        delta_type(f.data_type()),
        f.is_nullable(),
    ))
}

fn delta_type(t: &DataType) -> DataType {
    use DataType as D;
    match t {
        D::Dictionary(_, v) => delta_type(v),
        D::UInt8 => D::Int16,
        D::UInt16 => D::Int32,
        D::UInt32 | D::UInt64 => D::Int64,
        D::Float16 => D::Float32,
        D::LargeUtf8 | D::Utf8View | D::Null => D::Utf8,
        D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => D::Binary,
        D::Date64 => D::Date32,
        D::Timestamp(_, _) => D::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        D::List(f)
        | D::LargeList(f)
        | D::FixedSizeList(f, _)
        | D::ListView(f)
        | D::LargeListView(f) => D::List(delta_field(f)),
        D::Struct(fs) => D::Struct(fs.iter().map(|f| delta_field(f)).collect()),
        D::Map(entries, sorted) => D::Map(delta_field(entries), *sorted),
        other => other.clone(),
    }
}

/// Compares the rows' (Delta-typed) schema with the table's: `None` if they fit, the table
/// schema with the new columns (nullable, at the end) if the rows bring some, or why not.
fn evolve(current: &SchemaRef, wanted: &SchemaRef) -> Result<Option<SchemaRef>, String> {
    let cur: StructType = current
        .as_ref()
        .try_into_kernel()
        .map_err(|e| e.to_string())?;
    let want: StructType = wanted
        .as_ref()
        .try_into_kernel()
        .map_err(|e| e.to_string())?;
    let mut new_fields = Vec::new();
    for f in want.fields() {
        match cur.field(f.name()) {
            Some(c) if c.data_type() == f.data_type() => {}
            Some(c) => {
                return Err(format!(
                    "column `{}` is {} in the rows but {} in the table",
                    f.name(),
                    f.data_type(),
                    c.data_type()
                ))
            }
            None => new_fields.push(f.name().to_string()),
        }
    }
    if new_fields.is_empty() {
        return Ok(None);
    }
    let mut fields: Vec<FieldRef> = current.fields().iter().cloned().collect();
    for name in &new_fields {
        if let Ok(f) = wanted.field_with_name(name) {
            fields.push(Arc::new(f.clone().with_nullable(true)));
        }
    }
    Ok(Some(Arc::new(Schema::new(fields))))
}

/// The batch in the table's schema: columns by name, cast where the types differ (checked:
/// a value that does not fit is an error), missing nullable columns as nulls.
fn conform(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch, String> {
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for f in target.fields() {
        let col = match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Arc::clone(c),
            Some(c) => arrow_cast::cast_with_options(c, f.data_type(), &options)
                .map_err(|e| format!("column `{}`: {e}", f.name()))?,
            None if f.is_nullable() => new_null_array(f.data_type(), batch.num_rows()),
            None => {
                return Err(format!(
                    "column `{}` is required by the table and missing from the rows",
                    f.name()
                ))
            }
        };
        columns.push(col);
    }
    RecordBatch::try_new(Arc::clone(target), columns).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offsets::OffsetTracker;
    use arrow_array::{Int64Array, StringArray};

    fn cfg() -> DeltaSinkConfig {
        serde_saphyr::from_str("uri: x\nmax_latency: 1h").unwrap()
    }

    fn batch(ids: std::ops::Range<i64>, extra: Option<&str>) -> RecordBatch {
        let id: ArrayRef = Arc::new(Int64Array::from_iter_values(ids.clone()));
        let name: ArrayRef = Arc::new(StringArray::from_iter_values(
            ids.clone().map(|i| format!("n{i}")),
        ));
        let mut cols = vec![("id", id), ("name", name)];
        if let Some(col) = extra {
            let v: ArrayRef = Arc::new(StringArray::from_iter_values(ids.map(|_| "x")));
            cols.push((col, v));
        }
        RecordBatch::try_from_iter(cols).unwrap()
    }

    fn poll(t: &mut OffsetTracker, partition: i32, last: i64) -> Arc<Progress> {
        t.begin([(("t".into(), partition), last)].into())
    }

    fn rows(uri: &str) -> (u64, usize, Vec<String>) {
        let table = open(uri, &HashMap::new()).unwrap().unwrap();
        let schema = arrow_schema_of(Some(&table), uri).unwrap().unwrap();
        let names = schema.fields().iter().map(|f| f.name().clone()).collect();
        let files = table.snapshot().unwrap().log_data().num_files();
        (table.version().unwrap(), files, names)
    }

    #[test]
    fn offsets_are_stored_with_the_rows_and_found_again_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("t").to_string_lossy().into_owned();
        let mut sink = DeltaSink::new(uri.clone(), &cfg(), "g").unwrap();
        let tp: Partition = ("t".into(), 0);
        assert_eq!(sink.stored_offset("T", &tp).unwrap(), None, "no table yet");
        let mut tracker = OffsetTracker::default();
        let p = poll(&mut tracker, 0, 9);
        sink.write("T", &batch(0..10, None), &p).unwrap();
        OffsetTracker::seal(&p);
        let q = poll(&mut tracker, 0, 19);
        sink.write("T", &batch(10..20, None), &q).unwrap();
        OffsetTracker::seal(&q);
        tracker.advance().unwrap();
        assert!(
            tracker.to_commit().is_empty(),
            "nothing done before the commit"
        );
        sink.close_all().unwrap();
        tracker.advance().unwrap();
        assert_eq!(tracker.to_commit(), [(tp.clone(), 20)].into());
        assert_eq!(sink.stored_offset("T", &tp).unwrap(), Some(19));
        let (version, files, _) = rows(&uri);
        assert_eq!((version, files), (1, 1), "create, then one append");

        let mut again = DeltaSink::new(uri.clone(), &cfg(), "g").unwrap();
        assert_eq!(again.stored_offset("T", &tp).unwrap(), Some(19));
        let other = DeltaSink::new(uri.clone(), &cfg(), "other-app")
            .unwrap()
            .stored_offset("T", &tp);
        assert_eq!(other.unwrap(), None, "offsets are per application id");

        // What the source asks on assignment: the next offset per partition.
        let resume = again
            .resume()
            .expect("one table: the sink places partitions");
        let p1: Partition = ("t".into(), 1);
        let tp0 = tp.clone();
        assert_eq!(resume(&[tp, p1]).unwrap(), vec![Some(20), None]);
        let absent = resume_offsets(&format!("{uri}-absent"), &HashMap::new(), "g", &[tp0]);
        assert_eq!(absent.unwrap(), vec![None], "no table: nothing to place");
        let per_type = DeltaSink::new(format!("{uri}/{{type}}"), &cfg(), "g").unwrap();
        assert!(
            per_type.resume().is_none(),
            "a table per type places nothing"
        );
    }

    #[test]
    fn new_nullable_columns_are_added_and_a_changed_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("{type}").to_string_lossy().into_owned();
        let mut sink = DeltaSink::new(uri, &cfg(), "g").unwrap();
        let mut tracker = OffsetTracker::default();
        let p = poll(&mut tracker, 0, 1);
        sink.write("a.T", &batch(0..2, None), &p).unwrap();
        sink.write("a.T", &batch(2..4, Some("extra")), &p).unwrap();
        // Rows without the new column still fit (nulls).
        sink.write("a.T", &batch(4..6, None), &p).unwrap();
        let id: ArrayRef = Arc::new(StringArray::from(vec!["not a number"]));
        let bad = RecordBatch::try_from_iter(vec![("id", id)]).unwrap();
        let Err(SinkError::Reject(why)) = sink.write("a.T", &bad, &p) else {
            panic!("a changed type was accepted")
        };
        assert!(
            why.contains("column `id` is string in the rows but long in the table"),
            "{why}"
        );
        sink.close_all().unwrap();
        OffsetTracker::seal(&p);
        let table = dir.path().join("a.T").to_string_lossy().into_owned();
        let (version, files, names) = rows(&table);
        assert_eq!(names, ["id", "name", "extra"]);
        assert_eq!(
            (version, files),
            (2, 2),
            "create, old-schema rows, evolved rows"
        );
    }

    #[test]
    fn racing_creators_agree_on_one_table() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("t").to_string_lossy().into_owned();
        let schema = delta_schema(batch(0..1, None).schema_ref());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (uri, schema) = (uri.clone(), Arc::clone(&schema));
                std::thread::spawn(move || create(&uri, &HashMap::new(), &schema, &[]))
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let log: Vec<_> = std::fs::read_dir(dir.path().join("t/_delta_log"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".json"))
            .collect();
        assert_eq!(log, ["00000000000000000000.json"]);
    }

    #[test]
    fn a_second_writer_of_the_same_partition_is_told_to_read_again() {
        let dir = tempfile::tempdir().unwrap();
        let uri = dir.path().join("t").to_string_lossy().into_owned();
        let mut tracker = OffsetTracker::default();
        let mut a = DeltaSink::new(uri.clone(), &cfg(), "g").unwrap();
        let p = poll(&mut tracker, 0, 9);
        a.write("T", &batch(0..10, None), &p).unwrap();
        a.close_all().unwrap();
        // b opened the table before a's next commit, and buffers the same partition.
        let mut b = DeltaSink::new(uri.clone(), &cfg(), "g").unwrap();
        let q = poll(&mut tracker, 0, 19);
        b.write("T", &batch(10..20, None), &q).unwrap();
        a.write("T", &batch(10..20, None), &q).unwrap();
        a.close_all().unwrap();
        let Err(SinkError::Conflict(why)) = b.close_all() else {
            panic!("the second writer committed")
        };
        assert!(why.contains("another writer stored offsets"), "{why}");
        OffsetTracker::seal(&p);
        OffsetTracker::seal(&q);
        assert_eq!(rows(&uri).1, 2, "only a's files are in the table");
        // After the conflict b looks again: it sees a's offsets.
        assert_eq!(b.stored_offset("T", &("t".into(), 0)).unwrap(), Some(19));
    }

    #[test]
    fn delta_types_widen_and_flatten() {
        let s = Arc::new(Schema::new(vec![
            Field::new("u", DataType::UInt32, false),
            Field::new(
                "d",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true),
        ]));
        let d = delta_schema(&s);
        let types: Vec<&DataType> = d.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(
            types,
            [
                &DataType::Int64,
                &DataType::Utf8,
                &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ]
        );
    }
}
