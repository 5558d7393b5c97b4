//! The one Kafka producer that the Kafka sinks and the dead-letter route share. Every message
//! carries an [`Ack`]; its delivery report completes it, so offsets commit only behind what the
//! brokers acknowledged.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

use crate::offsets::Ack;

/// Completes acks from delivery reports, and reports whether the producer reaches a broker.
pub struct AckContext;

impl ClientContext for AckContext {
    // Every `statistics.interval.ms`: with no broker up, the Kafka sinks and the dead-letter
    // route cannot deliver, and `/readyz` says so (an idle producer stays connected, so this
    // holds between messages too).
    fn stats(&self, statistics: rdkafka::Statistics) {
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        crate::metrics::READY.set_unreachable(
            (!up).then(|| "the producer (Kafka sinks, dead letters) reaches no broker".to_string()),
        );
    }
}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Box<Ack>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Self::DeliveryOpaque) {
        match result {
            Ok(_) => ack.done(),
            Err((e, m)) => {
                use rdkafka::Message;
                tracing::error!(topic = m.topic(), "delivery failed: {e}");
                ack.fail(format!("delivery to {} failed: {e}", m.topic()))
            }
        }
    }
}

/// The shared producer.
pub type AckProducer = ThreadedProducer<AckContext>;

/// An idempotent producer (acks=all, no reordering on retry).
pub fn create(
    brokers: &str,
    settings: &std::collections::BTreeMap<String, String>,
) -> Result<AckProducer, KafkaError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("compression.type", "lz4")
        // Broker states for the readiness check.
        .set("statistics.interval.ms", "2000");
    for (k, v) in settings {
        c.set(k, v);
    }
    c.create_with_context(AckContext)
}

/// Sends one message, waiting while the local queue is full.
pub fn send(
    producer: &AckProducer,
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
    headers: Option<OwnedHeaders>,
    ack: Ack,
) -> Result<(), KafkaError> {
    let mut record = BaseRecord::with_opaque_to(topic, Box::new(ack)).payload(value);
    if let Some(k) = key {
        record = record.key(k);
    }
    if let Some(h) = headers {
        record = record.headers(h);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, r)) => {
                r.delivery_opaque
                    .fail(format!("could not send to {topic}: {e}"));
                return Err(e);
            }
        }
    }
}

/// Waits for every outstanding delivery.
pub fn flush(producer: &AckProducer, timeout: Duration) -> Result<(), KafkaError> {
    producer.flush(timeout)
}
