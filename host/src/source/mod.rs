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
    /// Headers, in order (empty for most messages, so no allocation).
    pub headers: Vec<(&'a str, &'a [u8])>,
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
            headers: Vec::new(),
        }
    }

    /// The length of the value (0 for a tombstone): what the byte counters count.
    pub fn value_bytes(&self) -> u64 {
        self.value.map_or(0, <[u8]>::len) as u64
    }

    /// The first header with this name.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}
