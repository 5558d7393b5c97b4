//! Sinks: where a route's results go. Every write takes an ack from the poll's
//! [`Progress`](crate::offsets::Progress) and completes it only when the data is durable.

pub mod avro;
pub mod dead_letter;
pub mod kafka;
pub mod parquet;
pub mod producer;

use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::offsets::Progress;

/// Sink errors. All but [`SinkError::Reject`] stop the worker before it commits past the failed
/// write.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The rows could not be encoded.
    #[error("encoding rows: {0}")]
    Encode(String),
    /// A file operation failed.
    #[error("writing files: {0}")]
    Io(String),
    /// Kafka refused a message.
    #[error("kafka: {0}")]
    Kafka(String),
    /// The batch does not fit the sink's schema (a column that would lose values, a null in a
    /// required field). Nothing of it was written; its messages go where the error policy says.
    #[error("{0}")]
    Reject(String),
}

/// A route's sink.
pub enum Sink {
    /// Parquet files.
    Parquet(Box<parquet::ParquetSink>),
    /// A Kafka topic.
    Kafka(Box<kafka::KafkaSink>),
}

impl Sink {
    /// Writes a batch; its ack completes when the rows are durable.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        match self {
            Sink::Parquet(s) => s.write(batch, progress),
            Sink::Kafka(s) => s.write(batch, progress),
        }
    }

    /// Time-based work (closing old files).
    pub fn tick(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Parquet(s) => s.tick(),
            Sink::Kafka(_) => Ok(()),
        }
    }

    /// Makes everything written so far durable (the producer is flushed separately).
    pub fn flush(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Parquet(s) => s.close(),
            Sink::Kafka(_) => Ok(()),
        }
    }

    /// Files written, for Parquet.
    pub fn files_written(&self) -> u64 {
        match self {
            Sink::Parquet(s) => s.files_written,
            Sink::Kafka(_) => 0,
        }
    }
}
