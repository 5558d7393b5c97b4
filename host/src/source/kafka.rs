//! The Kafka source: a consumer-group member with auto-commit off. weir commits offsets itself,
//! only behind the sinks (see [`crate::offsets`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::Record;
use crate::config::KafkaSourceConfig;
use crate::offsets::Partition;

/// Source errors.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Setup(KafkaError),
    /// A commit failed.
    #[error("committing offsets: {0}")]
    Commit(KafkaError),
    /// The committed offsets could not be read back, to seek to them.
    #[error("reading committed offsets: {0}")]
    Seek(KafkaError),
}

/// Where a sink that stores offsets with its data says each partition resumes (the next offset
/// to read), `None` where it knows nothing; asked on every assignment.
pub type Resume = Box<dyn Fn(&[Partition]) -> Result<Vec<Option<i64>>, String> + Send + Sync>;

/// Called when partitions are revoked, before they go (`tpl` holds them), with the consumer:
/// the worker finishes what it can and commits it there.
pub type OnRevoke = Box<dyn Fn(&BaseConsumer<SourceContext>, &TopicPartitionList) + Send + Sync>;

/// Places newly assigned partitions where [`Resume`] says, counts assignments and records
/// revocations, so stages that cache per-partition state (the Delta sink's stored offsets) know to look
/// again, and runs the worker's [`OnRevoke`] before partitions go.
#[derive(Default)]
pub struct SourceContext {
    assignments: AtomicU64,
    /// Partitions revoked since [`KafkaSource::poll_batch`] last looked.
    revoked: std::sync::Mutex<Vec<(String, i32)>>,
    /// Whether `revoked` has entries: the poll loop checks this per message, not the lock.
    any_revoked: std::sync::atomic::AtomicBool,
    resume: Option<Resume>,
    on_revoke: std::sync::OnceLock<OnRevoke>,
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl ClientContext for SourceContext {
    // Every `statistics.interval.ms`: the lag of each partition this member fetches.
    fn stats(&self, statistics: rdkafka::Statistics) {
        let Some(m) = self.metrics.get() else { return };
        let mut total = 0;
        for (topic, t) in &statistics.topics {
            for (&partition, p) in &t.partitions {
                if partition < 0 || !p.desired || p.consumer_lag < 0 {
                    continue;
                }
                m.consumer_lag
                    .get_or_create(&crate::metrics::PartitionLabels {
                        topic: topic.clone(),
                        partition,
                    })
                    .set(p.consumer_lag);
                total += p.consumer_lag;
            }
        }
        m.lag_total.store(total, Ordering::Relaxed);
    }
}

impl ConsumerContext for SourceContext {
    // The default handler with one addition: assigned partitions start where the sink's own
    // record says, when that is past the group's committed offset.
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let parts = || {
            tpl.elements()
                .iter()
                .map(|e| format!("{}/{}", e.topic(), e.partition()))
                .collect::<Vec<_>>()
                .join(",")
        };
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                tracing::info!(partitions = %parts(), "partitions assigned");
                if let Some(resume) = &self.resume {
                    place(consumer, tpl, resume);
                }
                self.assignments.fetch_add(1, Ordering::Relaxed);
                if cooperative {
                    consumer.incremental_assign(tpl)
                } else {
                    consumer.assign(tpl)
                }
            }
            other => {
                tracing::info!(partitions = %parts(), "partitions revoked");
                if other == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS {
                    // Unless the assignment is already lost, what is done is committed first,
                    // so the next owner starts right after it.
                    if !consumer.assignment_lost() {
                        if let Some(f) = self.on_revoke.get() {
                            f(consumer, tpl);
                        }
                    }
                } else {
                    tracing::error!("kafka rebalance: {:?}", other);
                }
                self.revoked
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(partitions(tpl));
                self.any_revoked.store(true, Ordering::Release);
                if cooperative {
                    consumer.incremental_unassign(tpl)
                } else {
                    consumer.unassign()
                }
            }
        };
        if let Err(e) = result {
            tracing::error!("kafka rebalance: {e}");
        }
    }
}

/// Sets the start offset of each partition in `tpl` that `resume` places past the group's
/// committed offset. If either cannot be read, the partitions start from the committed offsets
/// (the Delta sink still skips what its table holds: slower, never wrong).
fn place(consumer: &BaseConsumer<SourceContext>, tpl: &mut TopicPartitionList, resume: &Resume) {
    let parts: Vec<Partition> = tpl
        .elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect();
    let at = match resume(&parts) {
        Ok(at) => at,
        Err(e) => {
            tracing::warn!("reading the sink's stored offsets: {e}; starting from the group's");
            return;
        }
    };
    let committed = match consumer.committed_offsets(tpl.clone(), Duration::from_secs(10)) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("reading the group's offsets: {e}; starting from them");
            return;
        }
    };
    for ((topic, partition), at) in parts.iter().zip(at) {
        let Some(at) = at else { continue };
        let group = match committed
            .find_partition(topic, *partition)
            .map(|e| e.offset())
        {
            Some(Offset::Offset(o)) => Some(o),
            _ => None,
        };
        if group.is_some_and(|g| g >= at) {
            continue;
        }
        if let Err(e) = tpl.set_partition_offset(topic, *partition, Offset::Offset(at)) {
            tracing::warn!(%topic, partition, "placing the partition: {e}");
            continue;
        }
        tracing::info!(
            %topic,
            partition,
            offset = at,
            group = group.unwrap_or(-1),
            "resuming after what the sink has stored"
        );
    }
}

/// A batch's message vector is allocated for at most this many (`max_records` may be huge).
const PREALLOCATE: usize = 16_384;

/// A batching consumer.
pub struct KafkaSource {
    consumer: BaseConsumer<SourceContext>,
    max_records: usize,
    max_wait: Duration,
}

impl KafkaSource {
    /// Creates the consumer and subscribes to the configured topics. `brokers` is the resolved
    /// bootstrap list (the embedded cluster's, for `embedded`); `resume` places assigned
    /// partitions past what a sink has stored.
    pub fn new(
        cfg: &KafkaSourceConfig,
        brokers: &str,
        resume: Option<Resume>,
    ) -> Result<Self, SourceError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", brokers)
            .set("group.id", &cfg.group_id)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            // Brokers that hold a fetch for its full wait (Tansu) would otherwise pace the batches.
            .set("fetch.wait.max.ms", "10")
            // Once its queue holds `queued.min.messages`, librdkafka waits this long before it
            // fetches again (1 s by default): a worker that drains a batch at a time would
            // stall for most of each second (7x slower in the pipeline benchmark).
            .set("fetch.queue.backoff.ms", "10")
            // Consumer lag for the metrics.
            .set("statistics.interval.ms", "5000");
        for (k, v) in &cfg.settings {
            client.set(k, v);
        }
        let consumer: BaseConsumer<SourceContext> = client
            .create_with_context(SourceContext {
                resume,
                ..SourceContext::default()
            })
            .map_err(SourceError::Setup)?;
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(SourceError::Setup)?;
        Ok(KafkaSource {
            consumer,
            max_records: cfg.batch.max_records,
            max_wait: cfg.batch.max_wait,
        })
    }

    /// Polls until `max_records` messages or `max_wait` have passed. The messages borrow the
    /// consumer's buffers until dropped.
    ///
    /// What was polled of a partition before it was revoked is dropped: what was done of it is
    /// committed at the revocation, and its owner from then on (this member again, or another)
    /// reads the rest from there.
    pub fn poll_batch(&self) -> Vec<BorrowedMessage<'_>> {
        let deadline = Instant::now() + self.max_wait;
        let mut out = Vec::with_capacity(self.max_records.min(PREALLOCATE));
        while out.len() < self.max_records {
            // What is already fetched is taken without a deadline (no clock read per message);
            // only an empty queue is waited on, for what is left of `max_wait`.
            let mut polled = self.consumer.poll(Duration::ZERO);
            let mut left = Duration::ZERO;
            if polled.is_none() {
                left = deadline.saturating_duration_since(Instant::now());
                if !left.is_zero() {
                    polled = self.consumer.poll(left);
                }
            }
            self.drop_revoked(&mut out);
            match polled {
                Some(Ok(m)) => out.push(m),
                Some(Err(e)) => tracing::warn!("kafka: {e}"),
                None if left.is_zero() => break,
                None => {}
            }
            // `max_wait` holds even while messages keep coming: the clock is read every so often.
            if out.len() % 1024 == 0 && Instant::now() >= deadline {
                break;
            }
        }
        out
    }

    fn drop_revoked(&self, out: &mut Vec<BorrowedMessage<'_>>) {
        let ctx = self.consumer.context();
        // A load per message; the swap only after a revocation.
        if !ctx.any_revoked.load(Ordering::Acquire)
            || !ctx.any_revoked.swap(false, Ordering::Acquire)
        {
            return;
        }
        let revoked = std::mem::take(
            &mut *ctx
                .revoked
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        out.retain(|m| !revoked.contains(&(m.topic().to_string(), m.partition())));
    }

    /// Whether this member holds any partition.
    pub fn has_assignment(&self) -> bool {
        self.consumer.assignment().is_ok_and(|a| a.count() > 0)
    }

    /// The (topic, partition) pairs this member holds now.
    pub fn assignment(&self) -> Result<std::collections::HashSet<(String, i32)>, SourceError> {
        held(&self.consumer).map_err(SourceError::Commit)
    }

    /// How many partition assignments this member has received.
    pub fn assignments(&self) -> u64 {
        self.consumer.context().assignments.load(Ordering::Relaxed)
    }

    /// Where the consumer's lag is reported (once; later calls are ignored).
    pub fn report_to(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.consumer.context().metrics.set(metrics);
    }

    /// Sets what runs before partitions are revoked (once; later calls are ignored).
    pub fn on_revoke(&self, f: OnRevoke) {
        if self.consumer.context().on_revoke.set(f).is_err() {
            tracing::warn!("on_revoke set twice; the first one stays");
        }
    }

    /// Moves every partition this member holds back to `at` (next offset to read), or, for a
    /// partition not in it, to the group's committed offset (the beginning if none).
    pub fn rewind(
        &self,
        at: &BTreeMap<(std::sync::Arc<str>, i32), i64>,
    ) -> Result<(), SourceError> {
        let held = self.consumer.assignment().map_err(SourceError::Seek)?;
        let committed = self
            .consumer
            .committed_offsets(held, Duration::from_secs(10))
            .map_err(SourceError::Seek)?;
        for e in committed.elements() {
            let key = (std::sync::Arc::from(e.topic()), e.partition());
            let to = match (at.get(&key), e.offset()) {
                (Some(&o), _) => Offset::Offset(o),
                (None, Offset::Offset(o)) => Offset::Offset(o),
                (None, _) => Offset::Beginning,
            };
            if let Err(err) =
                self.consumer
                    .seek(e.topic(), e.partition(), to, Duration::from_secs(10))
            {
                // A partition not fetched yet starts from the committed offset anyway.
                tracing::warn!(topic = e.topic(), partition = e.partition(), "seek: {err}");
            }
        }
        Ok(())
    }

    /// Commits `offsets` (each the next offset to read).
    pub fn commit(
        &self,
        offsets: &TopicPartitionList,
        mode: CommitMode,
    ) -> Result<(), SourceError> {
        self.consumer
            .commit(offsets, mode)
            .map_err(SourceError::Commit)
    }
}

/// The (topic, partition) pairs `consumer` holds now.
pub fn held(
    consumer: &BaseConsumer<SourceContext>,
) -> Result<std::collections::HashSet<(String, i32)>, KafkaError> {
    Ok(partitions(&consumer.assignment()?).collect())
}

/// The (topic, partition) pairs of a list.
fn partitions(tpl: &TopicPartitionList) -> impl Iterator<Item = (String, i32)> + '_ {
    tpl.elements()
        .into_iter()
        .map(|e| (e.topic().to_string(), e.partition()))
}

/// A borrowed view of a message for the decoder.
pub fn record<'a>(m: &'a BorrowedMessage<'a>) -> Record<'a> {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| (h.key, h.value.unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic: m.topic(),
        partition: m.partition(),
        offset: m.offset(),
        timestamp_ms: m.timestamp().to_millis(),
        key: m.key(),
        value: m.payload(),
        headers,
    }
}
