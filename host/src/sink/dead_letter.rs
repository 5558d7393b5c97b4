//! The dead-letter route: a message that can't go on is written to a topic with its original
//! key, value and headers, and `weir.*` headers saying why and where it came from.

use std::sync::Arc;

use rdkafka::message::{Header, OwnedHeaders};

use super::producer::{self, AckProducer};
use super::SinkError;
use crate::offsets::Progress;
use crate::source::Record;

/// Why and where a message was set aside.
#[derive(Debug, Clone, Copy)]
pub struct Reason<'a> {
    /// The stage: `decode`, `route`, `transform`.
    pub stage: &'a str,
    /// The route, once known.
    pub route: Option<&'a str>,
    /// The plugin, for transform failures.
    pub plugin: Option<&'a str>,
    /// The error.
    pub error: &'a str,
}

/// Writes dead letters.
pub struct DeadLetter {
    producer: Arc<AckProducer>,
    topic: String,
}

impl DeadLetter {
    /// A dead-letter writer on the shared producer.
    pub fn new(producer: Arc<AckProducer>, topic: String) -> Self {
        DeadLetter { producer, topic }
    }

    /// Sends one record; its delivery completes the ack.
    pub fn send(
        &self,
        r: &Record<'_>,
        why: Reason<'_>,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        let partition = r.partition.to_string();
        let offset = r.offset.to_string();
        let timestamp = r.timestamp_ms.map(|t| t.to_string());
        let headers = r.headers.to_vec();
        let mut h = OwnedHeaders::new_with_capacity(headers.len() + 8)
            .insert(Header {
                key: "weir.error",
                value: Some(why.error),
            })
            .insert(Header {
                key: "weir.stage",
                value: Some(why.stage),
            })
            .insert(Header {
                key: "weir.topic",
                value: Some(r.topic),
            })
            .insert(Header {
                key: "weir.partition",
                value: Some(&partition),
            })
            .insert(Header {
                key: "weir.offset",
                value: Some(&offset),
            });
        if let Some(t) = &timestamp {
            h = h.insert(Header {
                key: "weir.timestamp",
                value: Some(t),
            });
        }
        if let Some(route) = why.route {
            h = h.insert(Header {
                key: "weir.route",
                value: Some(route),
            });
        }
        if let Some(plugin) = why.plugin {
            h = h.insert(Header {
                key: "weir.plugin",
                value: Some(plugin),
            });
        }
        for (k, v) in &headers {
            h = h.insert(Header {
                key: k,
                value: Some(*v),
            });
        }
        producer::send(
            &self.producer,
            &self.topic,
            r.key,
            r.value.unwrap_or_default(),
            Some(h),
            progress.hold(),
        )
        .map_err(|e| SinkError::Kafka(e.to_string()))
    }
}
