//! The Kafka source: a consumer-group member with auto-commit off. weir commits offsets itself,
//! only behind the sinks (see [`crate::offsets`]).
//!
//! Messages are taken many at a time (`rd_kafka_consume_batch_queue`) from a queue of weir's
//! own, to which each assigned partition's fetch queue is forwarded. The rdkafka crate's `poll`
//! hands out one message per call, each wrapped in an event, with two clock reads and a lock:
//! about a quarter of the worker's time at 10k-message batches. The consumer's own queue keeps
//! the events (rebalances, statistics, errors), served by `BaseConsumer::poll` between batches.

use std::collections::BTreeMap;
use std::ffi::{c_int, CStr, CString};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::bindings as rdsys;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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
    /// The [`KafkaSource`]'s message queue, where assigned partitions are forwarded; null
    /// before it exists and once it is gone.
    messages: AtomicPtr<rdsys::rd_kafka_queue_t>,
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
                // Before the fetchers start, so that no message reaches the consumer's queue.
                forward(
                    consumer,
                    self.messages.load(Ordering::Acquire),
                    partitions(tpl),
                );
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

/// The longest a poll waits for messages before it serves the consumer's events again.
const SERVE_EVENTS_EVERY: Duration = Duration::from_millis(100);

/// How often a busy source forwards its partitions again (see [`forward`]): how long a
/// partition's messages may wait after a rebalance race, at most.
const FORWARD_AGAIN_EVERY: Duration = Duration::from_secs(1);

/// A queue of weir's own for the fetched messages (see the module's doc).
struct MessageQueue(NonNull<rdsys::rd_kafka_queue_t>);

// SAFETY: librdkafka's queues may be used from any thread.
unsafe impl Send for MessageQueue {}
unsafe impl Sync for MessageQueue {}

impl Drop for MessageQueue {
    fn drop(&mut self) {
        // SAFETY: created by rd_kafka_queue_new, destroyed once, before the client (see
        // KafkaSource's drop).
        unsafe { rdsys::rd_kafka_queue_destroy(self.0.as_ptr()) }
    }
}

/// Forwards the fetch queues of `parts` to `queue` (nothing if it is null).
///
/// librdkafka clears a partition's forward when its fetcher stops, and once the application
/// has forwarded it, does not forward it again when the fetcher restarts: its messages would
/// then wait in its own queue. So this runs on every assignment, and again whenever the
/// message queue is found empty or [`FORWARD_AGAIN_EVERY`] has passed (a fetcher's stop that
/// lands after the next assignment's forward); forwarding also moves what waits there, in
/// order.
fn forward(
    consumer: &BaseConsumer<SourceContext>,
    queue: *mut rdsys::rd_kafka_queue_t,
    parts: impl IntoIterator<Item = (String, i32)>,
) {
    if queue.is_null() {
        return;
    }
    let rk = consumer.client().native_ptr();
    for (topic, partition) in parts {
        let Ok(name) = CString::new(topic.as_str()) else {
            continue;
        };
        // SAFETY: `rk` is the live consumer; the partition's queue handle is released at once
        // (the forward stays: librdkafka keeps its own reference to `queue`).
        unsafe {
            let q = rdsys::rd_kafka_queue_get_partition(rk, name.as_ptr(), partition);
            if q.is_null() {
                tracing::warn!(%topic, partition, "kafka: no fetch queue to forward");
                continue;
            }
            rdsys::rd_kafka_queue_forward(q, queue);
            rdsys::rd_kafka_queue_destroy(q);
        }
    }
}

/// Spent messages, on their way to the [`Reaper`].
struct Spent(Vec<NonNull<rdsys::rd_kafka_message_t>>);

// SAFETY: librdkafka's messages may be destroyed on any thread.
unsafe impl Send for Spent {}

impl Spent {
    fn destroy(self) {
        for m in self.0 {
            // SAFETY: each message is destroyed once, here, while the consumer lives.
            unsafe { rdsys::rd_kafka_message_destroy(m.as_ptr()) }
        }
    }
}

/// Hands spent messages back to librdkafka on a thread of its own. Each one is an op to free, a
/// buffer reference and a lock: about a tenth of the worker's time per batch, which need not
/// wait for it. Dropped before the consumer, after destroying all it was given.
struct Reaper {
    tx: Option<SyncSender<Spent>>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    fn start() -> std::io::Result<Self> {
        // A batch or two in flight: a slow reaper holds the poll back, not memory.
        let (tx, rx) = sync_channel::<Spent>(2);
        let thread = std::thread::Builder::new()
            .name("weir-reaper".into())
            .spawn(move || rx.into_iter().for_each(Spent::destroy))?;
        Ok(Reaper {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Destroys `spent` on the reaper's thread (here, if it is gone).
    fn reap(&self, spent: Spent) {
        match &self.tx {
            Some(tx) => {
                if let Err(back) = tx.send(spent) {
                    back.0.destroy();
                }
            }
            None => spent.destroy(),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the message reaper panicked");
            }
        }
    }
}

/// The messages of one poll. They borrow librdkafka's buffers, and go back to it when this is
/// dropped.
pub struct Polled<'c> {
    /// From `rd_kafka_consume_batch_queue`: each valid until destroyed (by the reaper).
    messages: Vec<NonNull<rdsys::rd_kafka_message_t>>,
    reaper: &'c Reaper,
    /// Messages that reached the consumer's own queue instead (none, as long as every
    /// partition was forwarded before its fetcher started); they come first.
    strays: Vec<BorrowedMessage<'c>>,
}

impl Drop for Polled<'_> {
    fn drop(&mut self) {
        if !self.messages.is_empty() {
            self.reaper.reap(Spent(std::mem::take(&mut self.messages)));
        }
    }
}

impl Polled<'_> {
    /// How many messages.
    pub fn len(&self) -> usize {
        self.messages.len() + self.strays.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The messages as the decoder sees them, borrowed (no copy).
    pub fn records(&self) -> Vec<Record<'_>> {
        let mut out = Vec::with_capacity(self.len());
        out.extend(self.strays.iter().map(record));
        // A poll comes in runs of one topic: its name is looked up once per run.
        let mut topic: (*mut rdsys::rd_kafka_topic_t, &str) = (std::ptr::null_mut(), "");
        for m in &self.messages {
            // SAFETY: a live message (see `messages`); what it points to lives as long as it.
            let m = unsafe { m.as_ref() };
            if m.rkt != topic.0 {
                topic = (m.rkt, unsafe { topic_name(m.rkt) });
            }
            out.push(Record {
                topic: topic.1,
                partition: m.partition,
                offset: m.offset,
                timestamp_ms: unsafe { timestamp(m) },
                key: unsafe { bytes(m.key, m.key_len) },
                value: unsafe { bytes(m.payload, m.len) },
                // SAFETY: the message lives as long as `self` (see `messages`).
                headers: unsafe { super::Headers::kafka(m) },
            });
        }
        out
    }

    /// Drops (and hands back) the messages of the partitions in `gone`.
    fn drop_partitions(&mut self, gone: &[(String, i32)]) {
        let held = |topic: &str, partition: i32| {
            !gone
                .iter()
                .any(|(t, p)| *p == partition && t.as_str() == topic)
        };
        self.strays.retain(|m| held(m.topic(), m.partition()));
        self.messages.retain(|m| {
            // SAFETY: a live message; a dropped one is destroyed at once, and only once.
            unsafe {
                let r = m.as_ref();
                let keep = held(topic_name(r.rkt), r.partition);
                if !keep {
                    rdsys::rd_kafka_message_destroy(m.as_ptr());
                }
                keep
            }
        });
    }
}

/// A topic's name. Kafka's topic names are ASCII: a name that is not UTF-8 cannot occur.
///
/// # Safety
/// `rkt` must be the topic of a live message; the name lives as long as that message.
unsafe fn topic_name<'a>(rkt: *mut rdsys::rd_kafka_topic_t) -> &'a str {
    // SAFETY: librdkafka's topic name is a NUL-terminated string owned by the topic.
    unsafe { CStr::from_ptr(rdsys::rd_kafka_topic_name(rkt)) }
        .to_str()
        .unwrap_or_default()
}

/// `len` bytes at `ptr`, or `None` for a null pointer (no key, or a tombstone).
///
/// # Safety
/// A non-null `ptr` must point to `len` bytes that outlive `'a`.
unsafe fn bytes<'a>(ptr: *mut std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: as the caller promises.
    (!ptr.is_null()).then(|| unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

/// The message's timestamp in ms, when it has one.
///
/// # Safety
/// `m` must be a live message.
unsafe fn timestamp(m: &rdsys::rd_kafka_message_t) -> Option<i64> {
    let mut kind = rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    // SAFETY: a live message.
    let ts = unsafe { rdsys::rd_kafka_message_timestamp(m, &mut kind) };
    let none = kind == rdsys::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
    (ts != -1 && !none).then_some(ts)
}

/// The message's headers, in order. A header whose name is not UTF-8 is left out (rdkafka's
/// own accessor would panic on it).
///
/// # Safety
/// `m` must be a live message; the headers live as long as it.
pub(super) unsafe fn headers<'a>(m: &rdsys::rd_kafka_message_t) -> Vec<(&'a str, &'a [u8])> {
    let mut hdrs = std::ptr::null_mut();
    // SAFETY: a live message; its headers are parsed once and kept with it.
    let err = unsafe { rdsys::rd_kafka_message_headers(m, &mut hdrs) };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR || hdrs.is_null() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for i in 0.. {
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0);
        // SAFETY: `hdrs` belongs to the live message; past the last header this fails.
        let err =
            unsafe { rdsys::rd_kafka_header_get_all(hdrs, i, &mut name, &mut value, &mut size) };
        if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            break;
        }
        // SAFETY: a NUL-terminated name and `size` value bytes (none when null), owned by
        // the headers.
        let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
            continue;
        };
        let value = unsafe { bytes(value.cast_mut(), size) }.unwrap_or_default();
        out.push((name, value));
    }
    out
}

/// A batching consumer.
pub struct KafkaSource {
    // Declared first, so destroyed before the consumer: librdkafka wants an application's
    // queues and messages gone before the client.
    messages: MessageQueue,
    reaper: Reaper,
    consumer: BaseConsumer<SourceContext>,
    max_records: usize,
    max_wait: Duration,
    /// When the partitions were last forwarded (see [`forward`]).
    forwarded: std::sync::Mutex<Instant>,
}

impl Drop for KafkaSource {
    fn drop(&mut self) {
        // Closing the consumer may run the rebalance handler: it must not forward to a queue
        // that is gone.
        let ctx = self.consumer.context();
        ctx.messages.store(std::ptr::null_mut(), Ordering::Release);
    }
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
        // SAFETY: the consumer is live; the queue is destroyed before it (field order).
        let queue = unsafe { rdsys::rd_kafka_queue_new(consumer.client().native_ptr()) };
        let messages = NonNull::new(queue).map(MessageQueue).ok_or_else(|| {
            SourceError::Setup(KafkaError::ClientCreation("no message queue".into()))
        })?;
        consumer
            .context()
            .messages
            .store(messages.0.as_ptr(), Ordering::Release);
        let reaper = Reaper::start().map_err(|e| {
            SourceError::Setup(KafkaError::ClientCreation(format!("message reaper: {e}")))
        })?;
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(SourceError::Setup)?;
        Ok(KafkaSource {
            messages,
            reaper,
            consumer,
            max_records: cfg.batch.max_records,
            max_wait: cfg.batch.max_wait,
            forwarded: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Polls until `max_records` messages or `max_wait` have passed. The messages borrow the
    /// consumer's buffers until dropped.
    ///
    /// What was polled of a partition before it was revoked is dropped: what was done of it is
    /// committed at the revocation, and its owner from then on (this member again, or another)
    /// reads the rest from there.
    pub fn poll_batch(&self) -> Polled<'_> {
        let deadline = Instant::now() + self.max_wait;
        let mut out = Polled {
            messages: Vec::new(),
            reaper: &self.reaper,
            strays: Vec::new(),
        };
        loop {
            // The events (a rebalance runs its handler here), one per round.
            match self.consumer.poll(Duration::ZERO) {
                Some(Ok(m)) => out.strays.push(m),
                Some(Err(e)) => tracing::warn!("kafka: {e}"),
                None => {}
            }
            self.drop_revoked(&mut out);
            let want = self.max_records.saturating_sub(out.len());
            if want == 0 {
                break;
            }
            // What is already fetched is taken at once; an empty queue is waited on, for what
            // is left of `max_wait` (librdkafka returns when `want` have come).
            let left = deadline.saturating_duration_since(Instant::now());
            let got = self.take(&mut out.messages, want, left.min(SERVE_EVENTS_EVERY));
            self.forward_again(got == 0);
            if left.is_zero() {
                break;
            }
        }
        out
    }

    /// Forwards the held partitions again when the queue ran `dry`, or when it is time.
    fn forward_again(&self, dry: bool) {
        let mut last = self
            .forwarded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !dry && last.elapsed() < FORWARD_AGAIN_EVERY {
            return;
        }
        *last = Instant::now();
        let held = self.consumer.assignment().map(|a| partitions(&a).collect());
        let held: Vec<_> = held.unwrap_or_default();
        forward(&self.consumer, self.messages.0.as_ptr(), held);
    }

    /// Appends up to `want` messages from the message queue to `into`, waiting up to `wait`
    /// for them; returns how many came (errors are logged and handed back, not counted).
    fn take(
        &self,
        into: &mut Vec<NonNull<rdsys::rd_kafka_message_t>>,
        want: usize,
        wait: Duration,
    ) -> usize {
        into.reserve(want.min(PREALLOCATE));
        let room = want.min(into.capacity() - into.len());
        let from = into.len();
        let wait_ms = c_int::try_from(wait.as_millis()).unwrap_or(c_int::MAX);
        // SAFETY: librdkafka writes at most `room` message pointers into the spare capacity
        // (`NonNull<T>` has the layout of `*mut T`), and returns how many, or -1.
        let n = unsafe {
            rdsys::rd_kafka_consume_batch_queue(
                self.messages.0.as_ptr(),
                wait_ms,
                into.spare_capacity_mut().as_mut_ptr().cast(),
                room,
            )
        };
        let Ok(n) = usize::try_from(n) else {
            tracing::warn!("kafka: consuming a batch failed");
            return 0;
        };
        // SAFETY: the first `n` slots were written, with non-null pointers.
        unsafe { into.set_len(from + n) };
        // A message can carry an error instead (a partition's fetch failed): log it.
        // SAFETY: the new messages are live.
        let failed = |m: &NonNull<rdsys::rd_kafka_message_t>| unsafe { m.as_ref() }.err;
        if into[from..]
            .iter()
            .any(|m| failed(m) != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR)
        {
            let mut i = from;
            into.retain(|m| {
                i += 1;
                let err = failed(m);
                if i <= from || err == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                    return true;
                }
                tracing::warn!("kafka: {}", RDKafkaErrorCode::from(err));
                // SAFETY: destroyed once, and out of the vector.
                unsafe { rdsys::rd_kafka_message_destroy(m.as_ptr()) };
                false
            });
        }
        into.len() - from
    }

    fn drop_revoked(&self, out: &mut Polled<'_>) {
        let ctx = self.consumer.context();
        // A load per round; the swap only after a revocation.
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
        out.drop_partitions(&revoked);
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
    let headers: Vec<_> = m
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
        headers: headers.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

    /// What a record holds, owned, to compare across polls.
    type Seen = (
        String,
        i64,
        Option<i64>,
        Option<Vec<u8>>,
        Option<Vec<u8>>,
        Vec<(String, Vec<u8>)>,
    );

    /// A mock cluster with topic `in` (one partition), and a source's config for it.
    fn cluster(
        max_records: usize,
    ) -> (
        MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        KafkaSourceConfig,
    ) {
        let cluster = MockCluster::new(1).unwrap();
        cluster.create_topic("in", 1, 1).unwrap();
        let cfg: KafkaSourceConfig = serde_json::from_value(serde_json::json!({
            "brokers": cluster.bootstrap_servers(),
            "group_id": "g",
            "topics": ["in"],
            "batch": { "max_records": max_records, "max_wait": "50ms" },
        }))
        .unwrap();
        (cluster, cfg)
    }

    /// Polls until `n` records have come (30 s at most), as (offset, value).
    fn poll_values(source: &KafkaSource, n: usize) -> Vec<(i64, Vec<u8>)> {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.len() < n && Instant::now() < deadline {
            let polled = source.poll_batch();
            seen.extend(
                polled
                    .records()
                    .iter()
                    .map(|r| (r.offset, r.value.unwrap_or_default().to_vec())),
            );
        }
        seen
    }

    #[test]
    fn a_rewind_reads_again_from_where_it_says_and_nothing_older_slips_through() {
        let (cluster, cfg) = cluster(100);
        produce(&cluster, 0..5);
        let source = KafkaSource::new(&cfg, &cfg.brokers, None).unwrap();
        let first = poll_values(&source, 5);
        assert_eq!(
            first.iter().map(|r| r.0).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let at = BTreeMap::from([((Arc::from("in"), 0), 2)]);
        source.rewind(&at).unwrap();
        let again = poll_values(&source, 3);
        assert_eq!(
            again,
            [
                (2, b"v2".to_vec()),
                (3, b"v3".to_vec()),
                (4, b"v4".to_vec())
            ],
            "from offset 2 on, once each"
        );
        // Nothing more comes: no message of before the rewind is left in the queue.
        assert!(source.poll_batch().is_empty());
    }

    fn produce(
        cluster: &MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
        values: std::ops::Range<i32>,
    ) {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        for i in values {
            let v = format!("v{i}");
            producer
                .send(BaseRecord::<(), _>::to("in").payload(&v))
                .unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    }

    #[test]
    fn a_partition_whose_forward_was_cleared_is_forwarded_again() {
        let (cluster, cfg) = cluster(100);
        produce(&cluster, 0..3);
        let source = KafkaSource::new(&cfg, &cfg.brokers, None).unwrap();
        assert_eq!(poll_values(&source, 3).len(), 3);
        // What a fetcher's stop that lands after the next assignment leaves: the partition's
        // queue forwards nowhere, and librdkafka will not forward it again.
        let rk = source.consumer.client().native_ptr();
        let topic = CString::new("in").unwrap();
        // SAFETY: the live consumer; the handle is released at once.
        unsafe {
            let q = rdsys::rd_kafka_queue_get_partition(rk, topic.as_ptr(), 0);
            assert!(!q.is_null());
            rdsys::rd_kafka_queue_forward(q, std::ptr::null_mut());
            rdsys::rd_kafka_queue_destroy(q);
        }
        produce(&cluster, 3..5);
        let offsets: Vec<i64> = poll_values(&source, 2).iter().map(|r| r.0).collect();
        assert_eq!(offsets, [3, 4]);
    }

    #[test]
    fn a_poll_hands_over_keys_values_headers_and_timestamps_as_produced() {
        let (cluster, cfg) = cluster(2);
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", cluster.bootstrap_servers())
            .create()
            .unwrap();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "type",
                value: Some("order"),
            })
            .insert(Header {
                key: "empty",
                value: None::<&[u8]>,
            })
            .insert(Header {
                key: "type",
                value: Some("again"),
            });
        producer
            .send(
                BaseRecord::to("in")
                    .key("k1")
                    .payload("v1")
                    .headers(headers)
                    .timestamp(1_700_000_000_123),
            )
            .unwrap();
        // A tombstone without key or headers.
        producer.send(BaseRecord::<(), ()>::to("in")).unwrap();
        producer
            .send(BaseRecord::<(), _>::to("in").payload("v3"))
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();

        let source = KafkaSource::new(&cfg, &cfg.brokers, None).unwrap();
        let mut seen: Vec<Seen> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while seen.len() < 3 && Instant::now() < deadline {
            let polled = source.poll_batch();
            assert!(polled.len() <= 2, "max_records holds: {}", polled.len());
            for r in polled.records() {
                seen.push((
                    r.topic.to_string(),
                    r.offset,
                    r.timestamp_ms,
                    r.key.map(<[u8]>::to_vec),
                    r.value.map(<[u8]>::to_vec),
                    r.headers
                        .to_vec()
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_vec()))
                        .collect(),
                ));
            }
        }
        assert_eq!(seen.len(), 3, "all three messages within 30 s: {seen:?}");
        let (topic, offset, ts, key, value, headers) = &seen[0];
        assert_eq!((topic.as_str(), *offset), ("in", 0));
        assert_eq!(*ts, Some(1_700_000_000_123));
        assert_eq!(key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(value.as_deref(), Some(&b"v1"[..]));
        let expected: Vec<(String, Vec<u8>)> = vec![
            ("type".into(), b"order".to_vec()),
            ("empty".into(), Vec::new()),
            ("type".into(), b"again".to_vec()),
        ];
        assert_eq!(*headers, expected, "every header, in order");
        assert_eq!(seen[1].1, 1);
        assert_eq!(
            (&seen[1].3, &seen[1].4),
            (&None, &None),
            "a tombstone: no key, no value"
        );
        assert!(seen[1].5.is_empty());
        assert!(seen[1].2.is_some(), "the producer stamps a create time");
        assert_eq!((seen[2].1, seen[2].4.as_deref()), (2, Some(&b"v3"[..])));
    }
}
