//! The end-of-run summary.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::offsets::Partition;

/// Counters of one route.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RouteStats {
    /// The route's name.
    pub name: String,
    /// Messages that reached the route.
    pub messages_in: u64,
    /// Bytes of their values.
    pub bytes_in: u64,
    /// Bytes the sink wrote: Parquet and Delta data files, Kafka keys and values.
    pub bytes_out: u64,
    /// Rows written to the sink.
    pub rows_out: u64,
    /// Rows a transform removed.
    pub filtered: u64,
    /// Messages dead-lettered by a transform failure.
    pub dead_lettered: u64,
    /// Messages dropped by `on_transform_error: skip`.
    pub skipped: u64,
    /// Batches processed.
    pub batches: u64,
    /// Messages a Delta table already held (read again after a restart), not written twice.
    pub already_written: u64,
    /// Parquet files written.
    pub files_written: u64,
}

impl RouteStats {
    /// Zeroed counters for a route.
    pub fn new(name: String) -> Self {
        RouteStats {
            name,
            ..Default::default()
        }
    }
}

/// Seconds spent in each stage of the worker, summed over batches.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct StageTimes {
    /// Polling Kafka for a batch (the polls that returned messages).
    pub poll: f64,
    /// Decoding polls into Arrow batches.
    pub decode: f64,
    /// The routes' transform chains.
    pub transform: f64,
    /// Writing to the sinks (the final flush included).
    pub sink: f64,
}

/// What a run did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Messages consumed.
    pub consumed: u64,
    /// Messages that did not decode (dead-lettered).
    pub decode_failures: u64,
    /// Messages whose type matched no route (dead-lettered).
    pub unrouted: u64,
    /// All dead letters written.
    pub dead_lettered: u64,
    /// Per route.
    pub routes: Vec<RouteStats>,
    /// Committed offsets (next to read) per topic and partition.
    #[serde(serialize_with = "ser_offsets")]
    pub committed: BTreeMap<Partition, i64>,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Time spent processing messages (excludes waiting for them).
    pub active: Duration,
    /// From the first message received to the last one's output made durable (the final flush
    /// included, the idle wait before stopping not): what the throughput is measured over.
    pub streaming: Duration,
    /// Time spent in each stage, summed over batches.
    pub stages: StageTimes,
    /// Messages the embedded generator produced, if it ran.
    pub generated: Option<u64>,
    /// Hot reloads swapped in.
    pub reloads: u64,
    /// Hot reloads refused (the running version kept going).
    pub reloads_refused: u64,
}

fn ser_offsets<S: serde::Serializer>(
    m: &BTreeMap<Partition, i64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(m.len()))?;
    for ((t, p), o) in m {
        map.serialize_entry(&format!("{t}/{p}"), o)?;
    }
    map.end()
}

impl Summary {
    /// Messages per second from the first message to the last one's output made durable.
    pub fn rate(&self) -> f64 {
        self.consumed as f64 / self.streaming.as_secs_f64().max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "weir run summary")?;
        if let Some(g) = self.generated {
            writeln!(f, "  generated     {g} messages (embedded generator)")?;
        }
        writeln!(
            f,
            "  consumed      {} messages in {:.2?}: {:.0} msg/s over {:.2?} from the first to the last written",
            self.consumed,
            self.elapsed,
            self.rate(),
            self.streaming,
        )?;
        let StageTimes {
            poll,
            decode,
            transform,
            sink,
        } = self.stages;
        writeln!(
            f,
            "  time          polls {poll:.2}s, decode {decode:.2}s, transforms {transform:.2}s, sinks {sink:.2}s, the rest {:.2}s",
            (self.streaming.as_secs_f64() - poll - decode - transform - sink).max(0.0)
        )?;
        writeln!(
            f,
            "  dead letters  {} ({} undecodable, {} unrouted, {} failed in transforms)",
            self.dead_lettered,
            self.decode_failures,
            self.unrouted,
            self.routes.iter().map(|r| r.dead_lettered).sum::<u64>()
        )?;
        writeln!(
            f,
            "  {:<16} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
            "route", "in", "out", "filtered", "dead", "skipped", "files"
        )?;
        for r in &self.routes {
            writeln!(
                f,
                "  {:<16} {:>10} {:>10} {:>10} {:>10} {:>8} {:>7}",
                r.name,
                r.messages_in,
                r.rows_out,
                r.filtered,
                r.dead_lettered,
                r.skipped,
                r.files_written
            )?;
        }
        if self.reloads + self.reloads_refused > 0 {
            writeln!(
                f,
                "  reloads       {} swapped in, {} refused",
                self.reloads, self.reloads_refused
            )?;
        }
        let again: u64 = self.routes.iter().map(|r| r.already_written).sum();
        if again > 0 {
            writeln!(
                f,
                "  re-read       {again} messages already in their Delta tables (not written twice)"
            )?;
        }
        let committed: Vec<String> = self
            .committed
            .iter()
            .map(|((t, p), o)| format!("{t}/{p}={o}"))
            .collect();
        write!(
            f,
            "  committed     {}",
            if committed.is_empty() {
                "nothing".into()
            } else {
                committed.join(" ")
            }
        )
    }
}
