//! The embedded Kafka: librdkafka's in-process mock cluster, and a generator of sample orders
//! and payments, so the demo runs with no broker installed.
//!
//! The mock cluster keeps only a few MB per partition, so the generator produces while the
//! pipeline consumes and stays at most [`MAX_LEAD`] messages ahead of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

use crate::config::GeneratorConfig;

/// How far the generator may run ahead of the consumer.
pub const MAX_LEAD: u64 = 20_000;

/// The sample topics the generator writes: orders and payments alternate.
pub const SAMPLE_TOPICS: [&str; 2] = ["orders", "payments"];

/// A running mock cluster.
pub struct Embedded {
    cluster: MockCluster<'static, DefaultProducerContext>,
}

impl Embedded {
    /// Starts a one-broker mock cluster with `topics` created.
    pub fn start(topics: &[String], partitions: i32) -> Result<Self, KafkaError> {
        let cluster = MockCluster::new(1)?;
        for t in topics {
            cluster.create_topic(t, partitions, 1)?;
        }
        Ok(Embedded { cluster })
    }

    /// `bootstrap.servers` for clients of this cluster (it listens on real TCP ports).
    pub fn bootstrap_servers(&self) -> String {
        self.cluster.bootstrap_servers()
    }
}

/// The sample-data producer thread.
pub struct Generator {
    handle: JoinHandle<Result<u64, KafkaError>>,
    stop: Arc<AtomicBool>,
}

impl Generator {
    /// Starts producing `cfg.messages` messages; `consumed` is how many the pipeline has read.
    pub fn start(
        brokers: &str,
        cfg: &GeneratorConfig,
        consumed: Arc<AtomicU64>,
    ) -> Result<Self, KafkaError> {
        let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("linger.ms", "5")
            .create()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (cfg, stop2) = (cfg.clone(), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name("weir-generator".into())
            .spawn(move || {
                let mut rng = SmallRng::seed_from_u64(cfg.seed);
                for i in 0..cfg.messages {
                    while i.saturating_sub(consumed.load(Ordering::Relaxed)) > MAX_LEAD {
                        if stop2.load(Ordering::Relaxed) {
                            return Ok(i);
                        }
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let malformed = is_malformed(i, cfg.malformed_every);
                    let (topic, key, value) = sample_message(i, malformed, &mut rng);
                    let mut record = BaseRecord::to(topic).key(&key).payload(&value);
                    loop {
                        match producer.send(record) {
                            Ok(()) => break,
                            Err((
                                KafkaError::MessageProduction(
                                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                                ),
                                r,
                            )) => {
                                record = r;
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            Err((e, _)) => return Err(e),
                        }
                    }
                }
                producer.flush(Duration::from_secs(30))?;
                Ok(cfg.messages)
            })
            .map_err(|e| KafkaError::ClientCreation(format!("generator thread: {e}")))?;
        Ok(Generator { handle, stop })
    }

    /// Stops early (if still running) and returns how many messages were produced.
    pub fn finish(self) -> Result<u64, KafkaError> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_else(|_| {
            Err(KafkaError::ClientCreation(
                "generator thread panicked".into(),
            ))
        })
    }
}

/// Whether message `i` is one of the malformed ones: one in `every`, alternating between
/// orders and payments.
pub fn is_malformed(i: u64, every: u64) -> bool {
    every > 1 && i % every == every - 1 - (i / every) % 2
}

const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "CHF"];
const TIERS: [&str; 3] = ["free", "silver", "gold"];
const METHODS: [&str; 3] = ["card", "sepa", "wallet"];
const NAMES: [&str; 6] = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret"];

/// Message `i` of the sample stream: (topic, key, JSON value). Even `i` are orders, odd are
/// payments. A `malformed` message is truncated or carries a wrongly typed field.
pub fn sample_message(
    i: u64,
    malformed: bool,
    rng: &mut SmallRng,
) -> (&'static str, String, String) {
    let ts = 1_767_225_600_000 + i as i64 * 7; // 2026-01-01, a message every 7 ms
    if i.is_multiple_of(2) {
        let id = format!("o-{i}");
        let items: Vec<String> = (0..rng.random_range(1..4))
            .map(|k| {
                format!(
                    r#"{{"sku":"sku-{}","qty":{},"price":{:.2}}}"#,
                    (i + k) % 97,
                    rng.random_range(1..5),
                    rng.random_range(1.0..80.0)
                )
            })
            .collect();
        let amount = if malformed {
            r#""lots""#.to_string()
        } else {
            format!("{:.2}", rng.random_range(5.0..250.0))
        };
        let value = format!(
            r#"{{"id":"{id}","ts":{ts},"amount":{amount},"currency":"{}","customer":{{"id":"c-{}","name":"{}","tier":"{}"}},"items":[{}]}}"#,
            CURRENCIES[rng.random_range(0..CURRENCIES.len())],
            i % 1000,
            NAMES[(i % 6) as usize],
            TIERS[rng.random_range(0..TIERS.len())],
            items.join(",")
        );
        (SAMPLE_TOPICS[0], id, value)
    } else {
        let id = format!("p-{i}");
        let value = format!(
            r#"{{"id":"{id}","order_id":"o-{}","ts":{ts},"amount":{:.2},"method":"{}","card":{{"brand":"visa","last4":"{:04}"}},"status":"captured"}}"#,
            i - 1,
            rng.random_range(5.0..250.0),
            METHODS[rng.random_range(0..METHODS.len())],
            rng.random_range(0..10_000)
        );
        let value = if malformed {
            value[..value.len() / 2].to_string()
        } else {
            value
        };
        (SAMPLE_TOPICS[1], id, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_json_unless_malformed() {
        let mut rng = SmallRng::seed_from_u64(1);
        for i in 0..50 {
            let (_, key, value) = sample_message(i, false, &mut rng);
            let v: serde_json::Value = serde_json::from_str(&value).unwrap();
            assert_eq!(v["id"], key.as_str());
        }
        // A malformed order parses as JSON but carries a string amount; a malformed payment is cut.
        let (_, _, order) = sample_message(0, true, &mut rng);
        let v: serde_json::Value = serde_json::from_str(&order).unwrap();
        assert!(v["amount"].is_string());
        let (_, _, payment) = sample_message(1, true, &mut rng);
        assert!(serde_json::from_str::<serde_json::Value>(&payment).is_err());
        let bad: Vec<u64> = (0..40).filter(|&i| is_malformed(i, 10)).collect();
        assert_eq!(
            bad,
            vec![9, 18, 29, 38],
            "one in ten, orders and payments alike"
        );
    }
}
