//! The YAML config: typed structs that are also its reference documentation.
//!
//! Unknown keys are refused everywhere (`deny_unknown_fields`), so a typo fails loudly. Parsing
//! errors name the file, line, column and key; [`Config::validate`] then reports every semantic
//! problem at once, not just the first.
//!
//! YAML is read with `serde-saphyr`: `serde_yaml` is deprecated upstream, and saphyr is a pure-Rust
//! parser that never panics on input, bounds alias expansion, and reports located errors.

mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use serde::Deserialize;

pub use types::{parse_type, TypeError};

/// The whole worker config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where messages come from.
    pub source: SourceConfig,
    /// How message bytes become Arrow columns.
    #[serde(default)]
    pub decode: DecodeConfig,
    /// Message type -> transforms -> sink. A type matching no route is dead-lettered.
    pub routes: Vec<RouteConfig>,
    /// Where bad input and failed batches go.
    #[serde(default)]
    pub errors: ErrorsConfig,
    /// Limits for the wasm sandbox.
    #[serde(default)]
    pub runtime: RuntimeConfig,
    /// A Confluent-compatible schema registry, shared by Avro decoding (writer schemas by id)
    /// and the Kafka sink's Avro encoding (register or look up by subject).
    #[serde(default)]
    pub schema_registry: Option<crate::registry::RegistryConfig>,
    /// The Prometheus endpoint (`/metrics`, `/healthz`, `/readyz`); none when left out.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
}

/// The metrics section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address to serve on, e.g. `0.0.0.0:9464` (port 0: any free port, logged).
    pub listen: String,
}

/// The source section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// A Kafka consumer group.
    pub kafka: KafkaSourceConfig,
}

/// A Kafka consumer in a consumer group; offsets are committed by weir, behind the sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port]`, or `embedded` for an in-process mock cluster (demo and tests).
    pub brokers: String,
    /// The consumer group.
    pub group_id: String,
    /// Topics to consume.
    pub topics: Vec<String>,
    /// How a poll gathers a batch.
    #[serde(default)]
    pub batch: BatchConfig,
    /// How often finished offsets are committed.
    #[serde(default = "defaults::commit_interval", with = "humantime_serde")]
    pub commit_interval: Duration,
    /// Stop when no message has arrived for this long (demos, backfills). Runs forever if unset.
    #[serde(default, with = "humantime_serde::option")]
    pub until_idle: Option<Duration>,
    /// librdkafka properties passed through as they are (`security.protocol`, ...).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The embedded cluster, when `brokers: embedded`.
    #[serde(default)]
    pub embedded: EmbeddedConfig,
}

/// How many records, and how long, one poll gathers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// At most this many messages per batch.
    #[serde(default = "defaults::max_records")]
    pub max_records: usize,
    /// At most this long gathering one batch.
    #[serde(default = "defaults::max_wait", with = "humantime_serde")]
    pub max_wait: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_records: defaults::max_records(),
            max_wait: defaults::max_wait(),
        }
    }
}

/// The in-process mock cluster and its sample-data generator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddedConfig {
    /// Partitions per topic.
    #[serde(default = "defaults::partitions")]
    pub partitions: i32,
    /// Produce sample orders and payments while consuming.
    #[serde(default)]
    pub generator: Option<GeneratorConfig>,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        Self {
            partitions: defaults::partitions(),
            generator: None,
        }
    }
}

/// The demo's sample data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Messages to produce, over all topics.
    pub messages: u64,
    /// Every Nth message is malformed, to show the dead-letter route (0: never).
    #[serde(default)]
    pub malformed_every: u64,
    /// Seed of the pseudo-random values.
    #[serde(default)]
    pub seed: u64,
}

/// The decode section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    /// The wire format of message values.
    #[serde(default)]
    pub format: Format,
    /// Where a message's type comes from (default: the writer schema's full name for Avro and
    /// Protobuf, the topic for JSON). See [`DecodeConfig::type_from`].
    #[serde(default, rename = "type_from")]
    pub type_from_setting: Option<TypeFrom>,
    /// Kafka metadata to add as columns.
    #[serde(default)]
    pub metadata: Vec<MetaColumn>,
    /// Schemas per message type. A type not listed here is inferred from its first messages.
    #[serde(default)]
    pub schemas: IndexMap<String, SchemaSpec>,
    /// How many messages inference reads.
    #[serde(default = "defaults::infer_rows")]
    pub infer_rows: usize,
    /// Avro framing and local schemas (`format: avro`).
    #[serde(default)]
    pub avro: AvroDecodeConfig,
    /// Local Protobuf schemas (`format: protobuf`).
    #[serde(default)]
    pub protobuf: ProtobufDecodeConfig,
}

/// Protobuf decoding. Messages carry the Confluent framing (magic byte 0, a 4-byte schema id,
/// then the message indexes that name the message type in the schema); schemas come from the
/// schema registry (`.proto` text with its references as imports) or from the files here.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtobufDecodeConfig {
    /// Local schemas by schema id: a `.proto` file, or a descriptor set written by
    /// `protoc --include_imports --descriptor_set_out` (its last file is the schema). Paths
    /// relative to the config file.
    #[serde(default)]
    pub ids: BTreeMap<u32, PathBuf>,
    /// Import folders for local `.proto` files (default: each file's own folder). The
    /// well-known types (`google/protobuf/timestamp.proto`, ...) are built in.
    #[serde(default)]
    pub include: Vec<PathBuf>,
}

impl DecodeConfig {
    /// Where a message's type comes from, after format defaults.
    pub fn type_from(&self) -> TypeFrom {
        match (&self.type_from_setting, self.format) {
            (Some(t), _) => t.clone(),
            (None, Format::Json) => TypeFrom::Topic,
            (None, Format::Avro | Format::Protobuf) => TypeFrom::Schema,
        }
    }
}

/// Avro decoding. Writer schemas come from the schema registry (`schema_registry`) or from the
/// local files listed here; messages carry a schema id (Confluent framing) or a fingerprint
/// (Avro single-object encoding) that names theirs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroDecodeConfig {
    /// How each message names its writer schema.
    #[serde(default)]
    pub framing: AvroFraming,
    /// Local writer schemas by Confluent schema id (`{ 1: schemas/order.avsc }`), for Confluent
    /// framing without a registry, or to pin ids ahead of it. Paths relative to the config file.
    #[serde(default)]
    pub ids: BTreeMap<u32, PathBuf>,
    /// Local writer schemas for single-object encoding, found by their CRC-64-AVRO fingerprint.
    #[serde(default)]
    pub schemas: Vec<PathBuf>,
    /// Reader schemas by message type (the record's full name). Every writer schema of that type
    /// is resolved to it (Avro schema resolution: added fields take their defaults, removed ones
    /// are skipped, promotions apply), so the type keeps one Arrow schema as producers evolve.
    /// Without one, each writer schema gives its own batches.
    #[serde(default)]
    pub reader_schemas: IndexMap<String, PathBuf>,
}

/// How an Avro message names its writer schema.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AvroFraming {
    /// Confluent wire format: magic byte 0, then a 4-byte big-endian schema id.
    #[default]
    Confluent,
    /// Avro single-object encoding: `C3 01`, then the schema's 8-byte CRC-64-AVRO fingerprint.
    SingleObject,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        Self {
            format: Format::default(),
            type_from_setting: None,
            metadata: Vec::new(),
            schemas: IndexMap::new(),
            infer_rows: defaults::infer_rows(),
            avro: AvroDecodeConfig::default(),
            protobuf: ProtobufDecodeConfig::default(),
        }
    }
}

/// Value formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per message.
    #[default]
    Json,
    /// Avro binary, framed for the Confluent schema registry or as Avro single-object encoding.
    Avro,
    /// Protobuf, framed for the Confluent schema registry.
    Protobuf,
}

/// Where a message's type (the key routes match) comes from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TypeFrom {
    /// The topic name.
    Topic,
    /// The full name of the message's writer schema (`com.acme.Order`): Avro and Protobuf.
    Schema,
    /// A top-level string field of the JSON value.
    Field(String),
    /// A message header.
    Header(String),
}

/// Kafka metadata columns (invariant 4: metadata is data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum MetaColumn {
    /// Topic (utf8).
    #[serde(rename = "_topic")]
    Topic,
    /// Partition (int32).
    #[serde(rename = "_partition")]
    Partition,
    /// Offset (int64).
    #[serde(rename = "_offset")]
    Offset,
    /// Message timestamp (timestamp, ms, UTC).
    #[serde(rename = "_timestamp")]
    Timestamp,
    /// Message key (utf8; binary keys are read lossily).
    #[serde(rename = "_key")]
    Key,
}

impl MetaColumn {
    /// The column name.
    pub fn name(self) -> &'static str {
        match self {
            MetaColumn::Topic => "_topic",
            MetaColumn::Partition => "_partition",
            MetaColumn::Offset => "_offset",
            MetaColumn::Timestamp => "_timestamp",
            MetaColumn::Key => "_key",
        }
    }
}

/// A schema: fields inline, or a YAML file holding the same `fields:` map.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SchemaSpec {
    /// `name: type` in order, e.g. `amount: float64`, `customer: "struct<name: utf8>"`.
    Fields(IndexMap<String, String>),
    /// A YAML file with one `fields:` map, relative to the config file.
    File(PathBuf),
}

/// One route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// The route's name in logs, metrics and the summary (default: the `match`).
    #[serde(default)]
    pub name: Option<String>,
    /// A regular expression over the message type, anchored at both ends.
    #[serde(rename = "match")]
    pub match_type: String,
    /// wasm transforms, in order.
    #[serde(default)]
    pub transforms: Vec<TransformConfig>,
    /// Where the results go.
    pub sink: SinkConfig,
    /// What a failed transform (or a batch the sink refuses) does on this route; default:
    /// `errors.on_transform_error`.
    #[serde(default)]
    pub on_error: Option<ErrorPolicy>,
}

impl RouteConfig {
    /// The route's display name.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.match_type)
    }
}

/// One wasm transform on a route.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransformConfig {
    /// `builtin:NAME`, or a path to a `.wasm` file (relative to the config file).
    pub plugin: String,
    /// The plugin's params; they reach it as JSON.
    #[serde(default = "defaults::params")]
    pub params: serde_json::Value,
    /// Files the plugin may read, by name: `{ fx: data/fx.csv }` (paths relative to the config
    /// file, at most 256 MiB each). They are read once when the transform loads, and the plugin
    /// reads them by name through `weir.read_file`; it can open no other file.
    #[serde(default)]
    pub files: BTreeMap<String, PathBuf>,
    /// This transform's sandbox limits, where they differ from `runtime:`.
    #[serde(default)]
    pub limits: LimitsOverride,
}

/// Per-transform limits; each one left out is `runtime:`'s.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// Wall-clock budget per call.
    #[serde(default, with = "humantime_serde::option")]
    pub time_budget: Option<Duration>,
    /// Linear-memory cap, e.g. `64MiB`.
    #[serde(default, deserialize_with = "de_size_opt")]
    pub memory_limit: Option<u64>,
    /// Largest answer the host copies out of the sandbox, e.g. `64MiB`.
    #[serde(default, deserialize_with = "de_size_opt")]
    pub max_output: Option<u64>,
}

/// Sinks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum SinkConfig {
    /// Parquet files in a folder.
    Parquet(ParquetSinkConfig),
    /// A Kafka topic, one JSON message per row.
    Kafka(KafkaSinkConfig),
    /// A Delta Lake table (or one per message type), offsets stored in its commits.
    Delta(DeltaSinkConfig),
}

/// A Delta Lake table: rows appended in commits that also record the consumed offsets (one
/// `txn` action per partition), so a restart duplicates nothing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaSinkConfig {
    /// The table: a local path (relative to the config file) or `s3://bucket/path`. `{type}`
    /// in it makes one table per message type.
    pub uri: String,
    /// Partition columns of a table this sink creates.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// The application id of the `txn` actions; default: the consumer group id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// Commit at least this often while rows are buffered.
    #[serde(default = "defaults::delta_max_latency", with = "humantime_serde")]
    pub max_latency: Duration,
    /// Commit once this much Parquet is buffered for a table (e.g. `64MiB`).
    #[serde(default = "defaults::delta_min_bytes", deserialize_with = "de_size")]
    pub min_bytes: u64,
    /// Commit once this many rows are buffered for a table.
    #[serde(default = "defaults::delta_max_rows")]
    pub max_rows: usize,
    /// Column compression.
    #[serde(default)]
    pub compression: Compression,
    /// Write a checkpoint every this many commits (0: never).
    #[serde(default = "defaults::delta_checkpoint_every")]
    pub checkpoint_every: u64,
    /// What a batch that does not fit the table becomes (new nullable columns always fit: they
    /// are added to the table in the commit).
    #[serde(default)]
    pub schema_mismatch: SchemaMismatch,
    /// object_store settings, e.g. `AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ALLOW_HTTP` (the
    /// `AWS_*` environment is read too).
    #[serde(default)]
    pub storage_options: BTreeMap<String, String>,
}

/// What a Delta sink does with a batch that does not fit its table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemaMismatch {
    /// The batch follows the error policy (`errors.on_transform_error`), reason included.
    #[default]
    DeadLetter,
    /// The worker stops.
    Stop,
}

/// Parquet files, each written under a temporary name and renamed into place when complete.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// The output folder (relative to the config file).
    pub path: PathBuf,
    /// Close a file at this many rows.
    #[serde(default = "defaults::parquet_max_rows")]
    pub max_rows: usize,
    /// Close a file at about this size (encoded bytes so far, e.g. `128MiB`; the batches its
    /// writer thread has yet to encode, at most 4, are not counted).
    #[serde(default = "defaults::parquet_max_bytes", deserialize_with = "de_size")]
    pub max_bytes: u64,
    /// Close a file when its first row is this old.
    #[serde(default = "defaults::parquet_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// Column compression.
    #[serde(default)]
    pub compression: Compression,
    /// Hive-style partition folders (`col=value/`) from these columns, which then live in the
    /// path, not in the files.
    #[serde(default)]
    pub partition_by: Vec<String>,
    /// At most this many files open at once (one per partition folder); the oldest is closed
    /// to open another.
    #[serde(default = "defaults::parquet_max_open_files")]
    pub max_open_files: usize,
}

/// Parquet compression codecs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    /// zstd, level 1 (Arrow C++'s and so pyarrow's default): about 1% larger files than
    /// level 3, for less CPU per row (docs/BENCHMARKS.md).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// None.
    None,
}

/// A Kafka topic; a row becomes one JSON message.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// The topic.
    pub topic: String,
    /// The column whose value becomes the message key.
    #[serde(default)]
    pub key: Option<String>,
    /// librdkafka producer properties passed through.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The message format.
    #[serde(default)]
    pub format: SinkFormat,
    /// Avro settings (`format: avro`).
    #[serde(default)]
    pub avro: AvroSinkConfig,
}

/// Message formats the Kafka sink writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkFormat {
    /// One JSON object per row.
    #[default]
    Json,
    /// One framed Avro record per row.
    Avro,
}

/// How the Kafka sink writes Avro.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvroSinkConfig {
    /// The schema to write, an `.avsc` file (relative to the config file). Rows are checked and
    /// coerced to it. Without one, a schema is derived from each batch's columns.
    #[serde(default)]
    pub schema: Option<PathBuf>,
    /// The full name of a derived schema's record (default `weir.Row`).
    #[serde(default)]
    pub record_name: Option<String>,
    /// How each message names its schema.
    #[serde(default)]
    pub framing: AvroFraming,
    /// The subject the schema is registered under, with a schema registry.
    #[serde(default)]
    pub subject_strategy: SubjectStrategy,
    /// Register the schema when the subject does not have it yet (as Confluent's serializers
    /// do); when false, it must be registered already.
    #[serde(default = "defaults::yes")]
    pub auto_register: bool,
    /// Confluent framing without a registry: the schema id to write.
    #[serde(default)]
    pub schema_id: Option<u32>,
    /// Columns (or `struct.field` paths) that may be coerced with loss, e.g. an int64 column
    /// into an Avro `int`. A value that does not fit still fails the batch.
    #[serde(default)]
    pub lossy: Vec<String>,
}

impl Default for AvroSinkConfig {
    fn default() -> Self {
        AvroSinkConfig {
            schema: None,
            record_name: None,
            framing: AvroFraming::default(),
            subject_strategy: SubjectStrategy::default(),
            auto_register: true,
            schema_id: None,
            lossy: Vec::new(),
        }
    }
}

/// Confluent subject name strategies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-value`.
    #[default]
    TopicName,
    /// The record's full name.
    RecordName,
    /// `<topic>-<record full name>`.
    TopicRecordName,
}

/// The errors section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorsConfig {
    /// Where undecodable messages, unrouted types and failed batches go, with their reason. Without
    /// one, such input stops the worker (nothing is committed past it, so nothing is lost).
    #[serde(default)]
    pub dead_letter: Option<DeadLetterConfig>,
    /// What a failed transform does to its batch.
    #[serde(default)]
    pub on_transform_error: ErrorPolicy,
}

/// The dead-letter route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterConfig {
    /// A Kafka topic: original bytes as value, key kept, reason and origin in headers.
    pub kafka: DeadLetterKafka,
}

/// The dead-letter topic.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterKafka {
    /// The topic.
    pub topic: String,
}

/// What happens to a batch whose transform fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorPolicy {
    /// The batch's original messages go to the dead-letter route.
    #[default]
    DeadLetter,
    /// The batch is dropped (counted, logged).
    Skip,
    /// The worker stops without committing the batch.
    Stop,
}

/// Sandbox limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Wall-clock budget per transform call.
    #[serde(default = "defaults::time_budget", with = "humantime_serde")]
    pub time_budget: Duration,
    /// Linear-memory cap per transform instance, e.g. `256MiB`.
    #[serde(default = "defaults::memory_limit", deserialize_with = "de_size")]
    pub memory_limit: u64,
    /// Largest answer (and manifest) the host copies out of a sandbox per call.
    #[serde(default = "defaults::max_output", deserialize_with = "de_size")]
    pub max_output: u64,
    /// How long compiling one module may take before the plugin is refused.
    #[serde(default = "defaults::compile_timeout", with = "humantime_serde")]
    pub compile_timeout: Duration,
    /// Where compiled modules are cached (default: `$XDG_CACHE_HOME/weir` or `~/.cache/weir`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Hot reload of plugins and the config.
    #[serde(default)]
    pub reload: ReloadConfig,
    /// After SIGTERM or SIGINT, how long draining, flushing and committing may take before the
    /// process exits anyway (with status 1; what was not committed is read again by the next
    /// run). A second signal exits at once.
    #[serde(default = "defaults::shutdown_timeout", with = "humantime_serde")]
    pub shutdown_timeout: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            time_budget: defaults::time_budget(),
            memory_limit: defaults::memory_limit(),
            max_output: defaults::max_output(),
            compile_timeout: defaults::compile_timeout(),
            cache_dir: None,
            reload: ReloadConfig::default(),
            shutdown_timeout: defaults::shutdown_timeout(),
        }
    }
}

/// Hot reload: plugin files and the config file are checked every `poll_interval`; a changed
/// one is loaded and checked off the hot path, then swapped in between batches. SIGHUP reloads
/// whether or not anything changed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// Watch the files (SIGHUP works either way).
    #[serde(default = "defaults::yes")]
    pub watch: bool,
    /// How often the files are checked. A file must look the same twice in a row before it is
    /// read, so a half-written file is never loaded.
    #[serde(default = "defaults::reload_poll", with = "humantime_serde")]
    pub poll_interval: Duration,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        Self {
            watch: true,
            poll_interval: defaults::reload_poll(),
        }
    }
}

mod defaults {
    use std::time::Duration;
    pub fn commit_interval() -> Duration {
        Duration::from_secs(1)
    }
    pub fn max_records() -> usize {
        10_000
    }
    pub fn max_wait() -> Duration {
        Duration::from_millis(250)
    }
    pub fn partitions() -> i32 {
        3
    }
    pub fn infer_rows() -> usize {
        100
    }
    pub fn yes() -> bool {
        true
    }
    pub fn params() -> serde_json::Value {
        serde_json::Value::Object(Default::default())
    }
    pub fn parquet_max_rows() -> usize {
        100_000
    }
    pub fn delta_max_latency() -> Duration {
        Duration::from_secs(10)
    }
    pub fn delta_min_bytes() -> u64 {
        64 << 20
    }
    pub fn delta_max_rows() -> usize {
        1_000_000
    }
    pub fn delta_checkpoint_every() -> u64 {
        10
    }
    pub fn parquet_max_bytes() -> u64 {
        128 << 20
    }
    pub fn parquet_max_open_files() -> usize {
        64
    }
    pub fn parquet_max_age() -> Duration {
        Duration::from_secs(10)
    }
    pub fn time_budget() -> Duration {
        Duration::from_millis(500)
    }
    pub fn memory_limit() -> u64 {
        256 << 20
    }
    pub fn max_output() -> u64 {
        256 << 20
    }
    pub fn compile_timeout() -> Duration {
        Duration::from_secs(60)
    }
    pub fn shutdown_timeout() -> Duration {
        Duration::from_secs(30)
    }
    pub fn reload_poll() -> Duration {
        Duration::from_millis(500)
    }
}

/// `humantime` durations (`250ms`, `10s`) for serde.
pub(crate) mod humantime_serde {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!(
                "`{s}` is not a duration ({e}); write e.g. 250ms or 10s"
            ))
        })
    }

    pub mod option {
        use super::*;
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            super::deserialize(d).map(Some)
        }
    }
}

/// What is wrong with sandbox limits (those given).
fn limit_problems(
    at: &str,
    time_budget: Option<Duration>,
    memory_limit: Option<u64>,
    max_output: Option<u64>,
) -> Vec<String> {
    let mut p = Vec::new();
    if memory_limit.is_some_and(|m| m < (1 << 20)) {
        p.push(format!(
            "{at}.memory_limit: under 1MiB; no plugin can run in that"
        ));
    }
    if time_budget.is_some_and(|t| t.is_zero()) {
        p.push(format!("{at}.time_budget: must be more than 0"));
    }
    if max_output.is_some_and(|m| m < (1 << 10)) {
        p.push(format!(
            "{at}.max_output: under 1KiB; no answer fits in that"
        ));
    }
    p
}

/// What is wrong with a sink's `partition_by` list (empty names, repeats).
fn partition_problems(at: &str, by: &[String]) -> Vec<String> {
    let mut p = Vec::new();
    for (i, c) in by.iter().enumerate() {
        if c.trim().is_empty() {
            p.push(format!("{at}.partition_by[{i}]: empty column name"));
        } else if by[..i].contains(c) {
            p.push(format!("{at}.partition_by: `{c}` twice"));
        }
    }
    p
}

/// Parses a byte size: `1048576`, `512KiB`, `256MiB`, `1GiB` (also `KB`, `MB`, `GB` as powers of 1000).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Raw::deserialize(d)? {
        Raw::N(n) => Ok(n),
        Raw::S(s) => parse_size(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not a size; write e.g. 256MiB"))
        }),
    }
}

fn de_size_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    de_size(d).map(Some)
}

/// A config that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML does not parse into a config.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: PathBuf,
        /// The parser's message, with line, column and key.
        message: String,
    },
    /// Semantic problems, all of them.
    #[error("{file}: {} problem(s):\n{}", problems.len(), problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Each problem, prefixed with the key it concerns.
        problems: Vec<String>,
    },
}

/// A loaded config and where it came from (relative paths resolve against its folder).
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The config.
    pub config: Config,
    /// The file it was read from.
    pub file: PathBuf,
}

impl LoadedConfig {
    /// Reads, parses and validates a config file.
    pub fn load(file: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Self::from_str(&text, file)
    }

    /// Parses and validates config text, as if read from `file`.
    pub fn from_str(text: &str, file: &Path) -> Result<Self, ConfigError> {
        // serde_path_to_error adds the key path to saphyr's line, column and snippet.
        let mut key = String::new();
        let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
            serde_path_to_error::deserialize::<_, Config>(de).map_err(|e| {
                key = e.path().to_string();
                e.into_inner()
            })
        });
        let config = parsed.map_err(|e| ConfigError::Parse {
            file: file.to_path_buf(),
            message: match key.as_str() {
                "" | "." => e.to_string(),
                key => format!("at key `{key}`: {e}"),
            },
        })?;
        let mut loaded = LoadedConfig {
            config,
            file: file.to_path_buf(),
        };
        let base = loaded.resolve(Path::new(""));
        if let Some(r) = &mut loaded.config.schema_registry {
            r.resolve_paths(&base);
        }
        let problems = loaded.validate();
        if problems.is_empty() {
            Ok(loaded)
        } else {
            Err(ConfigError::Invalid {
                file: file.to_path_buf(),
                problems,
            })
        }
    }

    /// Resolves a path from the config against the config file's folder.
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.file.parent().unwrap_or(Path::new(".")).join(path)
        }
    }

    /// Every semantic problem, each prefixed with its key. Plugins are checked separately (they
    /// need the wasm runtime): see `weir validate`.
    pub fn validate(&self) -> Vec<String> {
        let c = &self.config;
        let mut p = Vec::new();
        let k = &c.source.kafka;
        if k.brokers.trim().is_empty() {
            p.push("source.kafka.brokers: empty; give host:port or `embedded`".into());
        }
        if k.group_id.trim().is_empty() {
            p.push("source.kafka.group_id: empty".into());
        }
        if k.topics.is_empty() {
            p.push("source.kafka.topics: no topic to consume".into());
        }
        if k.batch.max_records == 0 {
            p.push("source.kafka.batch.max_records: must be at least 1".into());
        }
        if k.embedded.partitions < 1 {
            p.push("source.kafka.embedded.partitions: must be at least 1".into());
        }
        if k.embedded.generator.is_some() && k.brokers != "embedded" {
            p.push("source.kafka.embedded.generator: only with `brokers: embedded`".into());
        }
        for (name, spec) in &c.decode.schemas {
            if let Err(e) = self.load_schema(spec) {
                p.push(format!("decode.schemas.{name}: {e}"));
            }
        }
        p.extend(self.validate_format());
        if let Some(r) = &c.schema_registry {
            p.extend(
                r.validate()
                    .into_iter()
                    .map(|e| format!("schema_registry.{e}")),
            );
        }
        if c.routes.is_empty() {
            p.push("routes: no route; every message type would be dead-lettered".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, r) in c.routes.iter().enumerate() {
            let at = format!("routes[{i}]");
            if let Err(e) = regex::Regex::new(&format!("^(?:{})$", r.match_type)) {
                p.push(format!("{at}.match: not a regular expression: {e}"));
            }
            if !names.insert(r.display_name().to_string()) {
                p.push(format!(
                    "{at}.name: `{}` names two routes",
                    r.display_name()
                ));
            }
            for (j, t) in r.transforms.iter().enumerate() {
                if let Some(name) = t.plugin.strip_prefix("builtin:") {
                    if crate::runtime::builtin(name).is_none() {
                        p.push(format!(
                            "{at}.transforms[{j}].plugin: no built-in `{name}` (built-ins: {})",
                            crate::runtime::builtin_names().join(", ")
                        ));
                    }
                } else if !self.resolve(Path::new(&t.plugin)).is_file() {
                    p.push(format!(
                        "{at}.transforms[{j}].plugin: no file {}",
                        self.resolve(Path::new(&t.plugin)).display()
                    ));
                }
                for (name, path) in &t.files {
                    if name.is_empty() {
                        p.push(format!("{at}.transforms[{j}].files: a grant with no name"));
                    }
                    if let Err(e) = crate::runtime::check_granted_file(&self.resolve(path)) {
                        p.push(format!("{at}.transforms[{j}].files.{name}: {e}"));
                    }
                }
                let l = &t.limits;
                p.extend(limit_problems(
                    &format!("{at}.transforms[{j}].limits"),
                    l.time_budget,
                    l.memory_limit,
                    l.max_output,
                ));
            }
            match &r.sink {
                SinkConfig::Parquet(s) => {
                    let at = format!("{at}.sink.parquet");
                    if s.max_rows == 0 || s.max_open_files == 0 || s.max_bytes == 0 {
                        p.push(format!(
                            "{at}: max_rows, max_bytes and max_open_files must be at least 1"
                        ));
                    }
                    p.extend(partition_problems(&at, &s.partition_by));
                }
                SinkConfig::Delta(s) => {
                    let at = format!("{at}.sink.delta");
                    if s.uri.trim().is_empty() {
                        p.push(format!("{at}.uri: empty"));
                    } else if let Some((scheme, _)) = s.uri.split_once("://") {
                        if !matches!(scheme, "s3" | "s3a" | "file") {
                            p.push(format!(
                                "{at}.uri: `{scheme}://` is not supported (local paths, file://, s3://)"
                            ));
                        }
                    }
                    if s.max_rows == 0 || s.min_bytes == 0 {
                        p.push(format!("{at}: max_rows and min_bytes must be at least 1"));
                    }
                    if s.app_id.as_deref().is_some_and(|a| a.trim().is_empty()) {
                        p.push(format!("{at}.app_id: empty"));
                    }
                    p.extend(partition_problems(&at, &s.partition_by));
                }
                SinkConfig::Kafka(s) if s.topic.trim().is_empty() => {
                    p.push(format!("{at}.sink.kafka.topic: empty"))
                }
                SinkConfig::Kafka(s) if s.format == SinkFormat::Avro => {
                    let a = &s.avro;
                    if let Some(f) = &a.schema {
                        if let Err(e) = crate::decode::avro::load_schema_file(&self.resolve(f)) {
                            p.push(format!("{at}.sink.kafka.avro.schema: {e}"));
                        }
                    }
                    if a.framing == AvroFraming::Confluent
                        && a.schema_id.is_none()
                        && c.schema_registry.is_none()
                    {
                        p.push(format!("{at}.sink.kafka.avro: Confluent framing needs a schema_registry or a schema_id"));
                    }
                    if a.schema_id.is_some() && a.schema.is_none() {
                        p.push(format!("{at}.sink.kafka.avro.schema_id: give the schema it names (avro.schema)"));
                    }
                }
                _ => {}
            }
        }
        if let Some(d) = &c.errors.dead_letter {
            if d.kafka.topic.trim().is_empty() {
                p.push("errors.dead_letter.kafka.topic: empty".into());
            }
        }
        let rt = &c.runtime;
        p.extend(limit_problems(
            "runtime",
            Some(rt.time_budget),
            Some(rt.memory_limit),
            Some(rt.max_output),
        ));
        if rt.compile_timeout.is_zero() {
            p.push("runtime.compile_timeout: must be more than 0".into());
        }
        if rt.reload.poll_interval.is_zero() {
            p.push("runtime.reload.poll_interval: must be more than 0".into());
        }
        p
    }

    /// Problems between `decode.format` and the keys that only some formats take.
    fn validate_format(&self) -> Vec<String> {
        let d = &self.config.decode;
        let mut p = Vec::new();
        let a = &d.avro;
        let avro_set = !a.ids.is_empty() || !a.schemas.is_empty() || !a.reader_schemas.is_empty();
        if avro_set && d.format != Format::Avro {
            p.push("decode.avro: set, but decode.format is not avro".into());
        }
        if !d.protobuf.ids.is_empty() && d.format != Format::Protobuf {
            p.push("decode.protobuf: set, but decode.format is not protobuf".into());
        }
        match d.format {
            Format::Json => {
                if d.type_from() == TypeFrom::Schema {
                    p.push(
                        "decode.type_from: `schema` needs a format with schemas (avro, protobuf)"
                            .into(),
                    );
                }
            }
            Format::Protobuf => {
                if let TypeFrom::Field(_) = d.type_from() {
                    p.push("decode.type_from: `field` is for JSON; Protobuf types come from the schema (`schema`), the topic or a header".into());
                }
                if !d.schemas.is_empty() {
                    p.push("decode.schemas: JSON field lists; Protobuf schemas go in decode.protobuf.ids".into());
                }
                let pb = &d.protobuf;
                if pb.ids.is_empty() && self.config.schema_registry.is_none() {
                    p.push("decode.protobuf: needs a schema_registry, or local schemas by id (decode.protobuf.ids)".into());
                }
                let include: Vec<_> = pb.include.iter().map(|i| self.resolve(i)).collect();
                for (id, file) in &pb.ids {
                    if let Err(e) =
                        crate::decode::protobuf::framed::check_local(&self.resolve(file), &include)
                    {
                        p.push(format!("decode.protobuf.ids.{id}: {e}"));
                    }
                }
            }
            Format::Avro => {
                if let TypeFrom::Field(_) = d.type_from() {
                    p.push("decode.type_from: `field` is for JSON; Avro types come from the writer schema (`schema`), the topic or a header".into());
                }
                if !d.schemas.is_empty() {
                    p.push(
                        "decode.schemas: JSON field lists; for Avro use decode.avro.reader_schemas"
                            .into(),
                    );
                }
                let a = &d.avro;
                let checks = a
                    .ids
                    .iter()
                    .map(|(id, f)| (format!("decode.avro.ids.{id}"), f))
                    .chain(
                        a.schemas
                            .iter()
                            .enumerate()
                            .map(|(i, f)| (format!("decode.avro.schemas[{i}]"), f)),
                    )
                    .chain(
                        a.reader_schemas
                            .iter()
                            .map(|(t, f)| (format!("decode.avro.reader_schemas.{t}"), f)),
                    );
                for (key, file) in checks {
                    if let Err(e) = crate::decode::avro::load_schema_file(&self.resolve(file)) {
                        p.push(format!("{key}: {e}"));
                    }
                }
                if a.framing == AvroFraming::Confluent
                    && a.ids.is_empty()
                    && self.config.schema_registry.is_none()
                {
                    p.push("decode.avro: Confluent framing needs a schema_registry, or local schemas by id (decode.avro.ids)".into());
                }
                match a.framing {
                    AvroFraming::Confluent if !a.schemas.is_empty() => p.push(
                        "decode.avro.schemas: single-object schemas, but framing is confluent (use ids)".into(),
                    ),
                    AvroFraming::SingleObject if !a.ids.is_empty() => p.push(
                        "decode.avro.ids: Confluent ids, but framing is single_object (use schemas)".into(),
                    ),
                    AvroFraming::SingleObject if a.schemas.is_empty() => p.push(
                        "decode.avro.schemas: single-object encoding needs the writer schemas".into(),
                    ),
                    _ => {}
                }
            }
        }
        p
    }

    /// The Arrow schema of a [`SchemaSpec`].
    pub fn load_schema(&self, spec: &SchemaSpec) -> Result<arrow_schema::Schema, String> {
        let fields = match spec {
            SchemaSpec::Fields(f) => f.clone(),
            SchemaSpec::File(path) => {
                #[derive(Deserialize)]
                #[serde(deny_unknown_fields)]
                struct File {
                    fields: IndexMap<String, String>,
                }
                let path = self.resolve(path);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                serde_saphyr::from_str::<File>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .fields
            }
        };
        let fields = fields
            .iter()
            .map(|(name, ty)| {
                parse_type(ty)
                    .map(|dt| arrow_schema::Field::new(name, dt, true))
                    .map_err(|e| format!("field `{name}`: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(arrow_schema::Schema::new(fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
source:
  kafka: { brokers: embedded, group_id: g, topics: [orders] }
routes:
  - match: orders
    sink: { parquet: { path: ./out } }
";

    fn load(text: &str) -> Result<LoadedConfig, ConfigError> {
        LoadedConfig::from_str(text, Path::new("test.yaml"))
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load(MINIMAL).unwrap().config;
        assert_eq!(c.source.kafka.batch.max_records, 10_000);
        assert_eq!(c.runtime.memory_limit, 256 << 20);
        assert_eq!(c.decode.type_from(), TypeFrom::Topic);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let text = MINIMAL.replace("group_id: g,", "group_id: g, bathc: {},");
        let e = load(&text).unwrap_err().to_string();
        assert!(e.starts_with("test.yaml:"), "{e}");
        assert!(e.contains("bathc"), "{e}");
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("at key `source.kafka"), "{e}");
    }

    #[test]
    fn validate_reports_every_problem() {
        let text = "
source:
  kafka: { brokers: embedded, group_id: '', topics: [] }
routes:
  - match: '('
    transforms: [ { plugin: 'builtin:nope' }, { plugin: ./missing.wasm, files: { fx: ./nope.csv } } ]
    sink: { kafka: { topic: '' } }
runtime: { memory_limit: 1KiB }
";
        let ConfigError::Invalid { problems, .. } = load(text).unwrap_err() else {
            panic!("expected validation problems")
        };
        let all = problems.join("\n");
        for key in [
            "source.kafka.group_id",
            "source.kafka.topics",
            "routes[0].match",
            "routes[0].transforms[0].plugin",
            "routes[0].transforms[1].plugin",
            "routes[0].transforms[1].files.fx",
            "routes[0].sink.kafka.topic",
            "runtime.memory_limit",
        ] {
            assert!(all.contains(key), "missing {key} in:\n{all}");
        }
    }

    #[test]
    fn granted_files_resolve_against_the_config_and_are_capped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/fx.csv"), "currency,rate\n").unwrap();
        // A sparse file just over the cap costs no disk.
        let big = std::fs::File::create(dir.path().join("data/big.bin")).unwrap();
        big.set_len(crate::runtime::MAX_FILE_BYTES + 1).unwrap();
        let text = MINIMAL.replace(
            "    sink:",
            "    transforms:\n      - { plugin: 'builtin:filter', files: { fx: data/fx.csv } }\n    sink:",
        );
        let file = dir.path().join("weir.yaml");
        let c = LoadedConfig::from_str(&text, &file).unwrap();
        let t = &c.config.routes[0].transforms[0];
        assert!(c.resolve(&t.files["fx"]).is_file());
        let ConfigError::Invalid { problems, .. } =
            LoadedConfig::from_str(&text.replace("data/fx.csv", "data/big.bin"), &file)
                .unwrap_err()
        else {
            panic!("a file over the cap is refused")
        };
        assert!(
            problems[0].contains("files.fx") && problems[0].contains("256 MiB"),
            "{problems:?}"
        );
    }

    #[test]
    fn params_keep_the_order_the_yaml_gives() {
        // `columns:` of project makes columns in this order.
        let text = MINIMAL.replace(
            "    sink:",
            "    transforms:\n      - plugin: 'builtin:project'\n        params: { columns: { z: a, b: c, m: d } }\n    sink:",
        );
        let c = load(&text).unwrap().config;
        let json = serde_json::to_string(&c.routes[0].transforms[0].params).unwrap();
        assert_eq!(json, r#"{"columns":{"z":"a","b":"c","m":"d"}}"#);
    }

    #[test]
    fn type_from_forms() {
        let text = format!("{MINIMAL}decode: {{ type_from: {{ field: kind }} }}\n");
        assert_eq!(
            load(&text).unwrap().config.decode.type_from(),
            TypeFrom::Field("kind".into())
        );
        let text = format!("{MINIMAL}decode: {{ type_from: {{ header: t }} }}\n");
        assert_eq!(
            load(&text).unwrap().config.decode.type_from(),
            TypeFrom::Header("t".into())
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("256MiB"), Some(256 << 20));
        assert_eq!(parse_size("10"), Some(10));
        assert_eq!(parse_size("2 GB"), Some(2_000_000_000));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("99999999999999999999GiB"), None);
    }

    #[test]
    fn the_shipped_configs_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                LoadedConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n > 0, "no example config in {}", dir.display());
    }
}
