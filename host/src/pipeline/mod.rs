//! The worker: poll a batch -> decode -> route -> wasm transforms -> sink, with offsets committed
//! behind the sinks. One thread drives the stages in order; the Kafka producer delivers on its
//! own thread and completes acks from its delivery reports.

mod reload;
mod summary;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer as _};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::{Config, ErrorPolicy, LoadedConfig, RouteConfig, SinkConfig, SinkFormat};
use crate::decode::{Decoder, TypedBatch};
use crate::metrics::{DeadLetterLabels, Metrics, StageLabels};
use crate::offsets::{OffsetTracker, Partition, Progress, WriteFailed};
use crate::registry::RegistryClient;
use crate::route::{run_chain, Router};
use crate::runtime::{
    FileGrants, Instance, Limits, Plugin, Runtime, RuntimeError, TransformFailure,
};
use crate::sink::avro::AvroEncoder;
use crate::sink::dead_letter::{DeadLetter, Reason};
use crate::sink::delta::DeltaSink;
use crate::sink::kafka::KafkaSink;
use crate::sink::parquet::ParquetSink;
use crate::sink::producer::{self, AckProducer};
use crate::sink::{Sink, SinkError};
use crate::source::embedded::{Embedded, Generator};
use crate::source::kafka::{KafkaSource, SourceContext, SourceError};
use crate::source::Record;

pub use reload::ReloadStats;
pub use summary::{RouteStats, StageTimes, Summary};

/// How long shutdown waits for outstanding Kafka deliveries.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the worker stopped with an error. Nothing past the failure was committed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The config could not be turned into a pipeline.
    #[error("{0}")]
    Setup(String),
    /// A poll could not be decoded for a reason that is not its messages' (the schema registry
    /// refused the credentials, or was still unreachable at shutdown). Nothing of it was committed.
    #[error("{0}; the poll was not committed")]
    Registry(String),
    /// A plugin failed to load.
    #[error("{0}")]
    Plugin(RuntimeError),
    /// The source failed.
    #[error("{0}")]
    Source(SourceError),
    /// A sink failed.
    #[error("route {route}: {cause}")]
    Sink {
        /// The route.
        route: String,
        /// The error.
        cause: SinkError,
    },
    /// A write failed after it was issued.
    #[error("{0}")]
    Write(WriteFailed),
    /// A transform failed and the policy is `stop`.
    #[error("route {route}: plugin {plugin} {failure} (on_error: stop)")]
    Transform {
        /// The route.
        route: String,
        /// The plugin.
        plugin: String,
        /// Why.
        failure: TransformFailure,
    },
    /// Input had to be set aside, and there is no dead-letter route.
    #[error("{topic}/{partition}@{offset}: {reason}; no errors.dead_letter is configured, so the worker stops here")]
    NoDeadLetter {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
        /// Why the message was set aside.
        reason: String,
    },
}

struct RouteState {
    stages: Vec<Instance>,
    /// The route's counters, and what of `stats` they already hold.
    counters: RouteCounters,
    exported: RouteStats,
    /// What a failed batch does (`on_error`, else `errors.on_transform_error`).
    policy: ErrorPolicy,
    /// The schema of the last batch routed here, for the reload check.
    schema: Option<arrow_schema::SchemaRef>,
    sink: Sink,
    stats: RouteStats,
}

/// Everything but the consumer, so a poll's borrowed messages can be processed while the
/// consumer stays borrowed.
struct Stages {
    decoder: Decoder,
    router: Router,
    routes: Vec<RouteState>,
    dead_letter: Option<DeadLetter>,
    tracker: OffsetTracker,
    /// Each route's latest input schema, shared with the reload watcher.
    schemas: reload::Schemas,
    /// An error met in the revocation hook, reported by the worker after the poll.
    deferred: Option<PipelineError>,
    metrics: Arc<Metrics>,
    timers: StageTimers,
    consumed: u64,
    decode_failures: u64,
    unrouted: u64,
    dead_lettered: u64,
}

/// Plugins compiled so far, by their `plugin:` spec: each is compiled once per load.
pub(crate) type Compiled = HashMap<String, Plugin>;

/// Loads every plugin of the config and initializes it with its params, once per route, as a
/// run would. Used by `weir validate` and by [`Worker::new`].
pub fn load_transforms(
    cfg: &LoadedConfig,
    runtime: &Runtime,
) -> Result<Vec<Vec<Instance>>, RuntimeError> {
    let base = cfg.file.parent().unwrap_or(Path::new("."));
    let mut compiled = Compiled::new();
    cfg.config
        .routes
        .iter()
        .map(|route| build_stages(&cfg.config, route, runtime, base, &mut compiled))
        .collect()
}

/// The instances of one route's transforms, each under its limits, with its params and files.
pub(crate) fn build_stages(
    cfg: &Config,
    route: &RouteConfig,
    runtime: &Runtime,
    base: &Path,
    compiled: &mut Compiled,
) -> Result<Vec<Instance>, RuntimeError> {
    let defaults = Limits {
        compile_timeout: runtime.limits().compile_timeout,
        ..Limits::from_config(&cfg.runtime)
    };
    let mut stages = Vec::new();
    for t in &route.transforms {
        let plugin = match compiled.get(&t.plugin) {
            Some(p) => p.clone(),
            None => {
                let p = runtime.load(&t.plugin, base)?;
                compiled.insert(t.plugin.clone(), p.clone());
                p
            }
        };
        let plugin = plugin.with_limits(defaults.overridden(&t.limits));
        let files = FileGrants::read(&t.plugin, &t.files, base)?;
        stages.push(plugin.instantiate(route.display_name(), &t.params, files)?);
    }
    Ok(stages)
}

/// A worker bound to a consumer group.
pub struct Worker {
    source: KafkaSource,
    /// Shared with the source's revocation hook, which runs inside a poll.
    stages: Arc<Mutex<Stages>>,
    producer: Option<Arc<AckProducer>>,
    commit_interval: Duration,
    until_idle: Option<Duration>,
    /// Partition assignments seen, to tell the sinks when partitions move.
    assignments: u64,
    /// Cleared at shutdown: closing the consumer revokes with nothing left to do.
    revoke_armed: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    /// Checked new versions of the transforms, from the reload watcher.
    reloads: Option<std::sync::mpsc::Receiver<reload::Prepared>>,
    reload_stats: Arc<ReloadStats>,
}

impl Worker {
    /// Builds the pipeline of `cfg` against `brokers`: plugins compiled and initialized,
    /// sinks opened, consumer subscribed.
    pub fn new(
        cfg: &LoadedConfig,
        brokers: &str,
        runtime: &Runtime,
        stop: &Arc<AtomicBool>,
    ) -> Result<Self, PipelineError> {
        let c = &cfg.config;
        // One client for decode and sinks: one schema cache. A registry outage stalls the worker
        // (retrying) until it is back, or until `stop`.
        let registry = match &c.schema_registry {
            Some(r) => Some(Arc::new(
                RegistryClient::new(r)
                    .map_err(|e| PipelineError::Setup(format!("schema_registry: {e}")))?
                    .with_stop(Arc::clone(stop)),
            )),
            None => None,
        };
        let needs_producer = c.errors.dead_letter.is_some()
            || c.routes
                .iter()
                .any(|r| matches!(r.sink, SinkConfig::Kafka(_)));
        let producer = if needs_producer {
            let settings = c
                .routes
                .iter()
                .find_map(|r| match &r.sink {
                    SinkConfig::Kafka(k) => Some(k.settings.clone()),
                    SinkConfig::Parquet(_) | SinkConfig::Delta(_) => None,
                })
                .unwrap_or_default();
            Some(Arc::new(producer::create(brokers, &settings).map_err(
                |e| PipelineError::Setup(format!("kafka producer: {e}")),
            )?))
        } else {
            None
        };
        let transforms = load_transforms(cfg, runtime).map_err(PipelineError::Plugin)?;
        let metrics = Arc::new(Metrics::new());
        let mut routes = Vec::new();
        for (r, stages) in c.routes.iter().zip(transforms) {
            let name = r.display_name().to_string();
            let sink = match (&r.sink, &producer) {
                (SinkConfig::Parquet(p), _) => {
                    let sink = ParquetSink::new(cfg.resolve(&p.path), p).map_err(|cause| {
                        PipelineError::Sink {
                            route: name.clone(),
                            cause,
                        }
                    })?;
                    Sink::Parquet(Box::new(sink))
                }
                (SinkConfig::Delta(d), prod) => {
                    let uri = if d.uri.contains("://") {
                        d.uri.clone()
                    } else {
                        cfg.resolve(Path::new(&d.uri))
                            .to_string_lossy()
                            .into_owned()
                    };
                    let mut sink =
                        DeltaSink::new(uri, d, &c.source.kafka.group_id).map_err(|cause| {
                            PipelineError::Sink {
                                route: name.clone(),
                                cause,
                            }
                        })?;
                    if let Some(p) = prod {
                        sink.settle_before_commit(Arc::clone(p));
                    }
                    Sink::Delta(Box::new(sink))
                }
                (SinkConfig::Kafka(k), Some(prod)) => {
                    let avro = match k.format {
                        SinkFormat::Json => None,
                        SinkFormat::Avro => Some(
                            AvroEncoder::new(cfg, k, registry.clone())
                                .map_err(|e| PipelineError::Setup(format!("route {name}: {e}")))?,
                        ),
                    };
                    Sink::Kafka(Box::new(KafkaSink::new(Arc::clone(prod), k, avro)))
                }
                (SinkConfig::Kafka(_), None) => {
                    return Err(PipelineError::Setup("no producer for a Kafka sink".into()))
                }
            };
            let mut stages = stages;
            for s in &mut stages {
                s.set_metrics(metrics.calls(&name, s.plugin_name()));
            }
            routes.push(RouteState {
                stages,
                counters: RouteCounters::new(&metrics, &name),
                exported: RouteStats::default(),
                policy: r.on_error.unwrap_or(c.errors.on_transform_error),
                schema: None,
                sink,
                stats: RouteStats::new(name),
            });
        }
        // One route into one Delta table: its stored offsets say where every partition resumes.
        // (With more routes or a table per type, a table's versions say nothing of the rows
        // that went elsewhere: the tables skip what they hold instead.)
        let resume = match routes.as_slice() {
            [only] => match &only.sink {
                Sink::Delta(d) => d.resume(),
                _ => None,
            },
            _ => None,
        };
        let dead_letter = match (&c.errors.dead_letter, &producer) {
            (Some(d), Some(p)) => Some(DeadLetter::new(Arc::clone(p), d.kafka.topic.clone())),
            _ => None,
        };
        let stages = Stages {
            timers: StageTimers::new(&metrics),
            metrics: Arc::clone(&metrics),
            decoder: Decoder::new(cfg, registry).map_err(PipelineError::Setup)?,
            router: Router::new(c.routes.iter().map(|r| r.match_type.as_str()))
                .map_err(|e| PipelineError::Setup(e.to_string()))?,
            routes,
            dead_letter,
            tracker: OffsetTracker::default(),
            schemas: Arc::new(Mutex::new(vec![None; c.routes.len()])),
            deferred: None,
            consumed: 0,
            decode_failures: 0,
            unrouted: 0,
            dead_lettered: 0,
        };
        let source =
            KafkaSource::new(&c.source.kafka, brokers, resume).map_err(PipelineError::Source)?;
        source.report_to(Arc::clone(&metrics));
        let stages = Arc::new(Mutex::new(stages));
        let armed = Arc::new(AtomicBool::new(true));
        {
            let (stages, producer, armed) =
                (Arc::clone(&stages), producer.clone(), Arc::clone(&armed));
            source.on_revoke(Box::new(move |consumer, revoked| {
                if armed.load(Ordering::Relaxed) {
                    lock(&stages).before_revoke(consumer, revoked, producer.as_deref());
                }
            }));
        }
        Ok(Worker {
            source,
            stages,
            producer,
            commit_interval: c.source.kafka.commit_interval,
            until_idle: c.source.kafka.until_idle,
            assignments: 0,
            revoke_armed: armed,
            metrics,
            reloads: None,
            reload_stats: Arc::default(),
        })
    }

    /// Runs until `stop` is set, the source has been idle for `until_idle`, or an error. In every
    /// case the sinks are flushed and finished offsets committed before it returns.
    pub fn run(
        &mut self,
        stop: &AtomicBool,
        consumed: &AtomicU64,
    ) -> (Summary, Result<(), PipelineError>) {
        let started = Instant::now();
        let mut last_message = Instant::now();
        let mut last_commit = Instant::now();
        let mut progress = Progressed::new(self.metrics.consumed.get());
        let mut active = Duration::ZERO;
        // The first message's arrival and the end of the last batch: the streaming time.
        let mut first: Option<Instant> = None;
        let mut last_done = Instant::now();
        let result = (|| {
            while !stop.load(Ordering::Relaxed) {
                self.swap_reloaded();
                let t = Instant::now();
                let polled = self.source.poll_batch();
                let mut st = lock(&self.stages);
                if !polled.is_empty() {
                    st.timers.poll.observe(t);
                }
                if let Some(e) = st.deferred.take() {
                    return Err(e);
                }
                let held = self.source.has_assignment();
                self.metrics.assigned.set(i64::from(held));
                crate::metrics::READY.set_held(held);
                let assignments = self.source.assignments();
                if assignments != self.assignments {
                    self.assignments = assignments;
                    for r in &mut st.routes {
                        if let Sink::Delta(d) = &mut r.sink {
                            d.invalidate();
                        }
                    }
                }
                let records: Vec<Record> = polled.records();
                if records.is_empty() {
                    drop(st);
                    drop(records);
                    drop(polled);
                    // Idle time counts only once partitions are assigned: joining the group
                    // is not idleness.
                    if !held {
                        last_message = Instant::now();
                    } else if self
                        .until_idle
                        .is_some_and(|idle| last_message.elapsed() >= idle)
                    {
                        break;
                    }
                } else {
                    let t = Instant::now();
                    first.get_or_insert(t);
                    let processed = st.process(&records);
                    let n = records.len() as u64;
                    drop(st);
                    drop(records);
                    drop(polled); // it borrows the consumer, which a rewind seeks
                    self.recover(processed)?;
                    consumed.fetch_add(n, Ordering::Relaxed);
                    active += t.elapsed();
                    last_message = Instant::now();
                    last_done = last_message;
                }
                let ticked = lock(&self.stages).tick();
                self.recover(ticked)?;
                if last_commit.elapsed() >= self.commit_interval {
                    self.commit_or_retry()?;
                    last_commit = Instant::now();
                }
                progress.report(&self.metrics);
            }
            Ok(())
        })();
        crate::metrics::READY.set_held(false);
        let t = Instant::now();
        let shutdown = self.shutdown();
        active += t.elapsed();
        let streaming = first.map_or(Duration::ZERO, |f| last_done - f + t.elapsed());
        let summary = self.summary(started.elapsed(), active, streaming);
        (summary, result.and(shutdown))
    }

    /// The worker's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.metrics)
    }

    /// Swaps in the transforms the reload watcher has checked, between two batches.
    fn swap_reloaded(&mut self) {
        let Some(rx) = &self.reloads else { return };
        while let Ok(p) = rx.try_recv() {
            let mut st = lock(&self.stages);
            for (route, (stages, policy)) in st.routes.iter_mut().zip(p.routes) {
                if let Some(stages) = stages {
                    route.stages = stages;
                }
                route.policy = policy;
            }
            self.reload_stats.applied.fetch_add(1, Ordering::Relaxed);
            self.metrics
                .reloads
                .get_or_create(&crate::metrics::OutcomeLabels { outcome: "applied" })
                .inc();
            tracing::info!(what = %p.what, "reloaded");
        }
    }

    /// Another writer took over a partition (a Delta commit conflict): drops what is in
    /// flight and reads again from what is done. Other errors pass through.
    fn recover(&mut self, r: Result<(), PipelineError>) -> Result<(), PipelineError> {
        let Err(PipelineError::Sink {
            route,
            cause: SinkError::Conflict(why),
        }) = r
        else {
            return r;
        };
        tracing::warn!(%route, "{why}; dropping what is in flight and reading again from what is done");
        let at = {
            let mut st = lock(&self.stages);
            for r in &mut st.routes {
                if let Sink::Delta(d) = &mut r.sink {
                    d.abandon();
                }
            }
            st.tracker.rewind()
        };
        self.source.rewind(&at).map_err(PipelineError::Source)
    }

    /// Flushes every sink and the producer, then commits what is done.
    fn shutdown(&mut self) -> Result<(), PipelineError> {
        let mut first_err = lock(&self.stages).flush(self.producer.as_deref()).err();
        if let Err(e) = self.commit() {
            first_err.get_or_insert(e);
        }
        // Closing the consumer revokes its partitions: there is nothing left to do then.
        self.revoke_armed.store(false, Ordering::Relaxed);
        first_err.map_or(Ok(()), Err)
    }

    /// Commits what the sinks have finished, for the partitions this worker still holds.
    fn commit(&mut self) -> Result<(), PipelineError> {
        let held = self.source.assignment().map_err(PipelineError::Source)?;
        lock(&self.stages).commit_done(&held, |tpl| self.source.commit(tpl, CommitMode::Sync))
    }

    /// The periodic commit: a refused commit (a rebalance in progress, a broker away) is retried
    /// at the next interval; the offsets stay pending, so nothing is skipped.
    fn commit_or_retry(&mut self) -> Result<(), PipelineError> {
        match self.commit() {
            Err(PipelineError::Source(e)) => {
                tracing::warn!("{e}; retrying at the next commit interval");
                Ok(())
            }
            other => other,
        }
    }

    fn summary(&self, elapsed: Duration, active: Duration, streaming: Duration) -> Summary {
        let s = lock(&self.stages);
        Summary {
            consumed: s.consumed,
            decode_failures: s.decode_failures,
            unrouted: s.unrouted,
            dead_lettered: s.dead_lettered,
            routes: s
                .routes
                .iter()
                .map(|r| RouteStats {
                    files_written: r.sink.files_written(),
                    bytes_out: r.sink.bytes_written(),
                    ..r.stats.clone()
                })
                .collect(),
            committed: s.tracker.committed_offsets().clone(),
            elapsed,
            active,
            streaming,
            stages: StageTimes {
                poll: s.timers.poll.total,
                decode: s.timers.decode.total,
                transform: s.timers.transform.total,
                sink: s.timers.sink.total,
            },
            generated: None,
            reloads: self.reload_stats.applied.load(Ordering::Relaxed),
            reloads_refused: self.reload_stats.refused.load(Ordering::Relaxed),
        }
    }
}

/// How often a run logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The progress line: messages per second since the last one, and the committed lag.
struct Progressed {
    at: Instant,
    consumed: u64,
}

impl Progressed {
    fn new(consumed: u64) -> Self {
        Progressed {
            at: Instant::now(),
            consumed,
        }
    }

    fn report(&mut self, m: &Metrics) {
        let elapsed = self.at.elapsed();
        if elapsed < PROGRESS_EVERY {
            return;
        }
        let consumed = m.consumed.get();
        let rate = (consumed - self.consumed) as f64 / elapsed.as_secs_f64();
        let lag = m.lag_total.load(Ordering::Relaxed);
        tracing::info!(consumed, rate = format!("{rate:.0} msg/s"), lag, "progress");
        *self = Progressed::new(consumed);
    }
}

/// Each stage's time-per-batch histogram, resolved once.
struct StageTimers {
    /// Polls that returned messages (idle polls are not a stage's time).
    poll: StageTimer,
    decode: StageTimer,
    transform: StageTimer,
    sink: StageTimer,
}

/// A stage's histogram, and its total for the summary (the client reads back no sums).
struct StageTimer {
    histogram: Histogram,
    total: f64,
}

impl StageTimer {
    fn observe(&mut self, since: Instant) {
        let secs = since.elapsed().as_secs_f64();
        self.histogram.observe(secs);
        self.total += secs;
    }
}

impl StageTimers {
    fn new(m: &Metrics) -> Self {
        let get = |stage| StageTimer {
            histogram: m.stage_seconds.get_or_create_owned(&StageLabels { stage }),
            total: 0.0,
        };
        StageTimers {
            poll: get("poll"),
            decode: get("decode"),
            transform: get("transform"),
            sink: get("sink"),
        }
    }
}

/// A route's counters, resolved once; they follow its [`RouteStats`] after each batch.
struct RouteCounters {
    messages: Counter,
    rows_out: Counter,
    filtered: Counter,
    skipped: Counter,
    bytes_in: Counter,
    bytes_out: Counter,
}

impl RouteCounters {
    fn new(m: &Metrics, route: &str) -> Self {
        RouteCounters {
            messages: Metrics::route(&m.route_messages, route),
            rows_out: Metrics::route(&m.route_rows_out, route),
            filtered: Metrics::route(&m.route_filtered, route),
            skipped: Metrics::route(&m.route_skipped, route),
            bytes_in: Metrics::route(&m.route_bytes_in, route),
            bytes_out: Metrics::route(&m.route_bytes_out, route),
        }
    }
}

impl RouteState {
    /// Adds to the counters what `stats` gained since the last call.
    fn export(&mut self) {
        let bytes_out = self.sink.bytes_written();
        let (s, e, c) = (&self.stats, &mut self.exported, &self.counters);
        c.messages.inc_by(s.messages_in - e.messages_in);
        c.rows_out.inc_by(s.rows_out - e.rows_out);
        c.filtered.inc_by(s.filtered - e.filtered);
        c.skipped.inc_by(s.skipped - e.skipped);
        c.bytes_in.inc_by(s.bytes_in - e.bytes_in);
        c.bytes_out.inc_by(bytes_out - e.bytes_out);
        *e = RouteStats {
            bytes_out,
            ..s.clone()
        };
    }
}

/// The stages, locked: by the worker between polls, and by the revocation hook inside one.
fn lock(stages: &Mutex<Stages>) -> MutexGuard<'_, Stages> {
    stages.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Stages {
    /// Lets each sink act on time (roll files, commit tables).
    fn tick(&mut self) -> Result<(), PipelineError> {
        for r in &mut self.routes {
            r.sink.tick().map_err(|cause| PipelineError::Sink {
                route: r.stats.name.clone(),
                cause,
            })?;
        }
        Ok(())
    }

    /// Flushes every sink, then waits for the producer's deliveries.
    fn flush(&mut self, producer: Option<&AckProducer>) -> Result<(), PipelineError> {
        let t = Instant::now();
        let mut first_err = None;
        for r in &mut self.routes {
            if let Err(cause) = r.sink.flush() {
                first_err.get_or_insert(PipelineError::Sink {
                    route: r.stats.name.clone(),
                    cause,
                });
            }
        }
        if let Some(p) = producer {
            if let Err(e) = producer::flush(p, FLUSH_TIMEOUT) {
                first_err
                    .get_or_insert(PipelineError::Setup(format!("flushing the producer: {e}")));
            }
        }
        self.timers.sink.observe(t);
        for r in &mut self.routes {
            r.export();
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Commits, through `commit`, what the sinks have finished of the partitions in `held`, and
    /// forgets the others. A write that failed is reported after what finished before it.
    fn commit_done(
        &mut self,
        held: &std::collections::HashSet<(String, i32)>,
        commit: impl FnOnce(&TopicPartitionList) -> Result<(), SourceError>,
    ) -> Result<(), PipelineError> {
        let advanced = self.tracker.advance();
        self.tracker
            .retain_partitions(|(t, p)| held.contains(&(t.to_string(), *p)));
        let offsets = self.tracker.to_commit();
        if !offsets.is_empty() {
            let mut tpl = TopicPartitionList::new();
            for ((topic, partition), offset) in &offsets {
                tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                    .map_err(|e| PipelineError::Setup(e.to_string()))?;
            }
            let t = Instant::now();
            commit(&tpl).map_err(PipelineError::Source)?;
            self.metrics
                .commit_seconds
                .observe(t.elapsed().as_secs_f64());
            self.tracker.committed(&offsets);
            self.metrics.commits.inc();
            tracing::debug!(partitions = offsets.len(), "offsets committed");
        }
        advanced.map_err(PipelineError::Write)
    }

    /// Partitions are about to be revoked (inside a poll): every sink is flushed and what is
    /// done committed before they go, so their next owner starts right after it. A failure is
    /// kept for the worker to report after the poll; the next owner then re-reads from the last
    /// commit (duplicates at worst, never a loss).
    fn before_revoke(
        &mut self,
        consumer: &BaseConsumer<SourceContext>,
        revoked: &TopicPartitionList,
        producer: Option<&AckProducer>,
    ) {
        let _span = tracing::info_span!("revoke", partitions = revoked.count()).entered();
        let flushed = self.flush(producer);
        let held = match crate::source::kafka::held(consumer) {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!("reading the assignment: {e}; nothing committed before revocation");
                return;
            }
        };
        let committed = self.commit_done(&held, |tpl| {
            consumer
                .commit(tpl, CommitMode::Sync)
                .map_err(SourceError::Commit)
        });
        match flushed.and(committed) {
            Ok(()) => tracing::info!("partitions revoked; what was done is committed"),
            Err(PipelineError::Source(e)) => {
                tracing::warn!("{e}; the next owner re-reads from the last commit")
            }
            Err(e) => {
                self.deferred.get_or_insert(e);
            }
        }
    }

    fn process(&mut self, records: &[Record<'_>]) -> Result<(), PipelineError> {
        let _batch = tracing::debug_span!("batch", messages = records.len()).entered();
        let mut highest: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        // A poll comes in runs of one partition: the map is touched once per run.
        // A topic's name is one string in librdkafka: comparing its address is enough, mostly.
        let same = |a: &Record, b: &Record| {
            a.partition == b.partition && (std::ptr::eq(a.topic, b.topic) || a.topic == b.topic)
        };
        for run in records.chunk_by(same) {
            if let Some(top) = run.iter().map(|r| r.offset).max() {
                let e = highest
                    .entry((run[0].topic, run[0].partition))
                    .or_insert(top);
                *e = (*e).max(top);
            }
        }
        let highest: BTreeMap<Partition, i64> = highest
            .into_iter()
            .map(|((t, p), o)| ((Arc::from(t), p), o))
            .collect();
        let progress = self.tracker.begin(highest);
        self.consumed += records.len() as u64;
        self.metrics.consumed.inc_by(records.len() as u64);
        self.metrics
            .consumed_bytes
            .inc_by(records.iter().map(Record::value_bytes).sum());
        self.metrics.batch_messages.observe(records.len() as f64);
        let t = Instant::now();

        let decoded = tracing::debug_span!("decode").in_scope(|| self.decoder.decode(records));
        self.timers.decode.observe(t);
        if let Some(reason) = decoded.fatal {
            return Err(PipelineError::Registry(reason));
        }
        self.decode_failures += decoded.rejected.len() as u64;
        for rej in &decoded.rejected {
            let why = Reason {
                stage: "decode",
                route: None,
                plugin: None,
                error: &rej.reason,
            };
            self.set_aside(&records[rej.record as usize], why, &progress)?;
        }
        for typed in decoded.batches {
            let Some(ri) = self.router.route(&typed.type_name) else {
                let error = format!("no route matches message type `{}`", typed.type_name);
                self.unrouted += typed.records.len() as u64;
                for &i in &typed.records {
                    let why = Reason {
                        stage: "route",
                        route: None,
                        plugin: None,
                        error: &error,
                    };
                    self.set_aside(&records[i as usize], why, &progress)?;
                }
                continue;
            };
            let route = &mut self.routes[ri];
            route.stats.messages_in += typed.records.len() as u64;
            route.stats.bytes_in += typed
                .records
                .iter()
                .map(|&i| records[i as usize].value_bytes())
                .sum::<u64>();
            route.stats.batches += 1;
            let typed = match &mut route.sink {
                Sink::Delta(d) => {
                    let t =
                        skip_stored(d, typed, records).map_err(|cause| PipelineError::Sink {
                            route: route.stats.name.clone(),
                            cause,
                        })?;
                    route.stats.already_written += t.1 as u64;
                    if t.0.records.is_empty() {
                        continue;
                    }
                    t.0
                }
                _ => typed,
            };
            let schema = typed.batch.schema();
            if route
                .schema
                .as_ref()
                .is_none_or(|s| !Arc::ptr_eq(s, &schema) && **s != *schema)
            {
                route.schema = Some(Arc::clone(&schema));
                if let Some(s) = self
                    .schemas
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .get_mut(ri)
                {
                    *s = Some(schema);
                }
            }
            let span = tracing::debug_span!("route", route = %route.stats.name, rows = typed.records.len());
            let t = Instant::now();
            let chained =
                span.in_scope(|| run_chain(&mut route.stages, typed.batch, &typed.records));
            self.timers.transform.observe(t);
            match chained {
                Ok(out) => {
                    // Rows that failed alone follow the policy too; `stop` stops before the
                    // sink sees any row of the batch.
                    if let (ErrorPolicy::Stop, Some((_, plugin, error))) =
                        (route.policy, out.row_errors.first())
                    {
                        return Err(PipelineError::Transform {
                            route: route.stats.name.clone(),
                            plugin: plugin.clone(),
                            failure: TransformFailure::Guest(format!("a row failed: {error}")),
                        });
                    }
                    route.stats.filtered += out.filtered as u64;
                    if out.batch.num_rows() > 0 {
                        route.stats.rows_out += out.batch.num_rows() as u64;
                        let _sink =
                            tracing::debug_span!("sink", rows = out.batch.num_rows()).entered();
                        let t = Instant::now();
                        let written = route.sink.write(&typed.type_name, &out.batch, &progress);
                        self.timers.sink.observe(t);
                        match written {
                            Ok(()) => {}
                            Err(SinkError::Reject(error)) => {
                                // Not written: the batch's messages take the error policy's way.
                                let name = route.stats.name.clone();
                                route.stats.rows_out -= out.batch.num_rows() as u64;
                                tracing::warn!(route = %name, %error, "sink refused a batch");
                                let failed: std::collections::HashSet<u32> =
                                    out.row_errors.iter().map(|e| e.0).collect();
                                let rest: Vec<u32> = typed
                                    .records
                                    .iter()
                                    .copied()
                                    .filter(|i| !failed.contains(i))
                                    .collect();
                                let stop = |route| PipelineError::Sink {
                                    route,
                                    cause: SinkError::Reject(error.clone()),
                                };
                                self.fail_batch(
                                    records, ri, &rest, "sink", None, &error, &progress, stop,
                                )?;
                            }
                            Err(cause) => {
                                return Err(PipelineError::Sink {
                                    route: route.stats.name.clone(),
                                    cause,
                                })
                            }
                        }
                    }
                    let route = &mut self.routes[ri];
                    let name = route.stats.name.clone();
                    if route.policy == ErrorPolicy::Skip {
                        route.stats.skipped += out.row_errors.len() as u64;
                        continue;
                    }
                    route.stats.dead_lettered += out.row_errors.len() as u64;
                    for (i, plugin, error) in &out.row_errors {
                        let why = Reason {
                            stage: "transform",
                            route: Some(&name),
                            plugin: Some(plugin),
                            error,
                        };
                        self.set_aside(&records[*i as usize], why, &progress)?;
                    }
                }
                Err(f) => {
                    tracing::warn!(route = %route.stats.name, plugin = %f.plugin, "transform {}", f.failure);
                    let error = f.failure.to_string();
                    let plugin = f.plugin.clone();
                    let stop = |route| PipelineError::Transform {
                        route,
                        plugin: f.plugin,
                        failure: f.failure,
                    };
                    self.fail_batch(
                        records,
                        ri,
                        &typed.records,
                        "transform",
                        Some(&plugin),
                        &error,
                        &progress,
                        stop,
                    )?;
                }
            }
        }
        OffsetTracker::seal(&progress);
        for r in &mut self.routes {
            r.export();
        }
        Ok(())
    }

    /// A batch of route `ri` failed whole (in a transform or at the sink): its messages go where
    /// the error policy says.
    #[allow(clippy::too_many_arguments)]
    fn fail_batch(
        &mut self,
        records: &[Record<'_>],
        ri: usize,
        failed: &[u32],
        stage: &str,
        plugin: Option<&str>,
        error: &str,
        progress: &Arc<Progress>,
        stop: impl FnOnce(String) -> PipelineError,
    ) -> Result<(), PipelineError> {
        let route = &mut self.routes[ri];
        let stats = &mut route.stats;
        let name = stats.name.clone();
        match route.policy {
            ErrorPolicy::Stop => return Err(stop(name)),
            ErrorPolicy::Skip => stats.skipped += failed.len() as u64,
            ErrorPolicy::DeadLetter => {
                stats.dead_lettered += failed.len() as u64;
                for &i in failed {
                    let why = Reason {
                        stage,
                        route: Some(&name),
                        plugin,
                        error,
                    };
                    self.set_aside(&records[i as usize], why, progress)?;
                }
            }
        }
        Ok(())
    }

    /// Sends a record to the dead-letter route, or stops the worker when there is none.
    fn set_aside(
        &mut self,
        r: &Record<'_>,
        why: Reason<'_>,
        progress: &Arc<Progress>,
    ) -> Result<(), PipelineError> {
        let Some(dl) = &self.dead_letter else {
            return Err(PipelineError::NoDeadLetter {
                topic: r.topic.to_string(),
                partition: r.partition,
                offset: r.offset,
                reason: why.error.to_string(),
            });
        };
        self.dead_lettered += 1;
        self.metrics
            .dead_letters
            .get_or_create(&DeadLetterLabels {
                stage: why.stage.to_string(),
                route: why.route.unwrap_or_default().to_string(),
            })
            .inc();
        dl.send(r, why, progress)
            .map_err(|cause| PipelineError::Sink {
                route: "dead_letter".into(),
                cause,
            })
    }
}

/// Drops the rows of `typed` that its Delta table already holds (their offset is at or below
/// the partition's stored `txn` version): what a restart re-reads is not written twice. Returns
/// the rest and how many were dropped.
fn skip_stored(
    sink: &mut DeltaSink,
    typed: TypedBatch,
    records: &[Record<'_>],
) -> Result<(TypedBatch, usize), SinkError> {
    let mut stored: HashMap<(&str, i32), Option<i64>> = HashMap::new();
    let mut keep = Vec::with_capacity(typed.records.len());
    for &i in &typed.records {
        let r = &records[i as usize];
        let s = match stored.get(&(r.topic, r.partition)) {
            Some(s) => *s,
            None => {
                let s = sink.stored_offset(&typed.type_name, &(Arc::from(r.topic), r.partition))?;
                stored.insert((r.topic, r.partition), s);
                s
            }
        };
        keep.push(s.is_none_or(|s| r.offset > s));
    }
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped == 0 {
        return Ok((typed, 0));
    }
    let kept = typed
        .records
        .iter()
        .zip(&keep)
        .filter(|(_, k)| **k)
        .map(|(i, _)| *i)
        .collect();
    let mask = arrow_array::BooleanArray::from(keep);
    let batch = arrow_select::filter::filter_record_batch(&typed.batch, &mask)
        .map_err(|e| SinkError::Encode(e.to_string()))?;
    tracing::debug!(type_name = %typed.type_name, dropped, "rows already in the Delta table skipped");
    Ok((
        TypedBatch {
            batch,
            records: kept,
            ..typed
        },
        dropped,
    ))
}

/// Runs a config to the end: starts the embedded cluster and generator when `brokers: embedded`,
/// then the worker, until `stop`, idleness or an error. Meanwhile a watcher reloads the
/// transforms when their files change (`runtime.reload`), or when `reload` is set (SIGHUP).
pub fn run_config(
    cfg: &LoadedConfig,
    runtime: &Runtime,
    stop: &Arc<AtomicBool>,
    reload: &AtomicBool,
) -> (Option<Summary>, Result<(), PipelineError>) {
    let k = &cfg.config.source.kafka;
    let consumed = Arc::new(AtomicU64::new(0));
    let (embedded, brokers) = if k.brokers == "embedded" {
        let mut topics = k.topics.clone();
        for r in &cfg.config.routes {
            if let SinkConfig::Kafka(s) = &r.sink {
                topics.push(s.topic.clone());
            }
        }
        if let Some(d) = &cfg.config.errors.dead_letter {
            topics.push(d.kafka.topic.clone());
        }
        match Embedded::start(&topics, k.embedded.partitions) {
            Ok(e) => {
                let b = e.bootstrap_servers();
                tracing::info!(bootstrap = %b, "embedded Kafka (mock cluster) started");
                (Some(e), b)
            }
            Err(e) => {
                return (
                    None,
                    Err(PipelineError::Setup(format!("embedded kafka: {e}"))),
                )
            }
        }
    } else {
        (None, k.brokers.clone())
    };
    // The files' stamps before the plugins are read: a change from here on is a change.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let reload_stats = Arc::new(ReloadStats::default());
    let watcher = reload::Watcher::new(runtime, cfg, tx, Arc::clone(&reload_stats));
    let mut worker = match Worker::new(cfg, &brokers, runtime, stop) {
        Ok(w) => w,
        Err(e) => return (None, Err(e)),
    };
    let generator = match &k.embedded.generator {
        Some(g) if embedded.is_some() => match Generator::start(&brokers, g, Arc::clone(&consumed))
        {
            Ok(g) => Some(g),
            Err(e) => return (None, Err(PipelineError::Setup(format!("generator: {e}")))),
        },
        _ => None,
    };
    worker.reloads = Some(rx);
    worker.reload_stats = reload_stats;
    let watcher = watcher
        .with_schemas(Arc::clone(&lock(&worker.stages).schemas))
        .with_metrics(worker.metrics());
    if let Some(m) = &cfg.config.metrics {
        if let Err(e) = crate::metrics::serve(worker.metrics(), &m.listen) {
            return (
                None,
                Err(PipelineError::Setup(format!(
                    "metrics.listen {}: {e}",
                    m.listen
                ))),
            );
        }
    }
    tracing::info!(
        topics = ?k.topics,
        group = %k.group_id,
        routes = cfg.config.routes.len(),
        "worker started"
    );
    let done = AtomicBool::new(false);
    let (mut summary, result) = std::thread::scope(|scope| {
        scope.spawn(|| watcher.run(&done, reload));
        let ran = worker.run(stop, &consumed);
        done.store(true, Ordering::Relaxed);
        ran
    });
    if let Some(g) = generator {
        match g.finish() {
            Ok(n) => summary.generated = Some(n),
            Err(e) => tracing::warn!("generator: {e}"),
        }
    }
    drop(worker);
    drop(embedded);
    (Some(summary), result)
}
