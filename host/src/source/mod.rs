//! Sources: where messages come from. [`kafka`] is a consumer-group member that polls in
//! batches; [`embedded`] is the in-process mock cluster and sample generator for the demo.

pub mod embedded;
pub mod kafka;

/// One message as the decoder sees it, borrowed from the consumer's buffers (no copy).
#[derive(Debug, Clone)]
pub struct Record<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp, ms since the epoch, when the message has one.
    pub timestamp_ms: Option<i64>,
    /// Key.
    pub key: Option<&'a [u8]>,
    /// Value; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers, in order.
    pub headers: Headers<'a>,
}

/// A record's headers, in order. A Kafka message's are read only when asked for: librdkafka
/// parses them into a buffer it allocates, on every call and even for a message without
/// headers, and most pipelines never ask (that was a fifth of the worker's time per message).
#[derive(Clone, Default)]
pub struct Headers<'a>(HeaderSource<'a>);

#[derive(Clone)]
enum HeaderSource<'a> {
    List(Vec<(&'a str, &'a [u8])>),
    Kafka(&'a rdkafka::bindings::rd_kafka_message_t),
}

impl Default for HeaderSource<'_> {
    fn default() -> Self {
        HeaderSource::List(Vec::new())
    }
}

impl<'a> Headers<'a> {
    /// The headers of a message that librdkafka handed out.
    ///
    /// # Safety
    /// `m` must be a consumer's message that is not destroyed while `'a` lasts.
    pub(crate) unsafe fn kafka(m: &'a rdkafka::bindings::rd_kafka_message_t) -> Self {
        Headers(HeaderSource::Kafka(m))
    }

    /// The headers, in order.
    pub fn to_vec(&self) -> Vec<(&'a str, &'a [u8])> {
        match &self.0 {
            HeaderSource::List(v) => v.clone(),
            // SAFETY: a live message for 'a, as `Headers::kafka`'s caller promised.
            HeaderSource::Kafka(m) => unsafe { kafka::headers(m) },
        }
    }

    /// The first header with this name.
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        let first = |v: &[(&'a str, &'a [u8])]| v.iter().find(|(k, _)| *k == name).map(|h| h.1);
        match &self.0 {
            HeaderSource::List(v) => first(v),
            HeaderSource::Kafka(_) => first(&self.to_vec()),
        }
    }
}

impl<'a> From<Vec<(&'a str, &'a [u8])>> for Headers<'a> {
    fn from(v: Vec<(&'a str, &'a [u8])>) -> Self {
        Headers(HeaderSource::List(v))
    }
}

impl std::fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.to_vec()).finish()
    }
}

impl<'a> Record<'a> {
    /// A record with only a value: no key, timestamp or headers (tests, benchmarks, tools).
    pub fn new(topic: &'a str, partition: i32, offset: i64, value: Option<&'a [u8]>) -> Self {
        Record {
            topic,
            partition,
            offset,
            timestamp_ms: None,
            key: None,
            value,
            headers: Headers::default(),
        }
    }

    /// The length of the value (0 for a tombstone): what the byte counters count.
    pub fn value_bytes(&self) -> u64 {
        self.value.map_or(0, <[u8]>::len) as u64
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers.get(name)
    }
}
