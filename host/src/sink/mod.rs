//! Sinks: where a route's results go. Every write takes an ack from the poll's
//! [`Progress`](crate::offsets::Progress) and completes it only when the data is durable.

pub mod avro;
pub mod dead_letter;
pub mod delta;
pub mod kafka;
pub mod parquet;
pub mod partition;
pub mod producer;

use std::sync::Arc;

use arrow_array::RecordBatch;

use ::parquet::basic::{Compression as Codec, ZstdLevel};
use ::parquet::file::properties::WriterProperties;

use crate::config::Compression;
use crate::offsets::Progress;

/// `a, b, c`: field names for messages.
pub(crate) fn field_names(fields: &[arrow_schema::FieldRef]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    names.join(", ")
}

/// Parquet writer settings of the file sinks: the codec (zstd at level 1 by default).
pub(crate) fn writer_properties(c: Compression) -> Result<WriterProperties, SinkError> {
    let codec = match c {
        Compression::Zstd => {
            Codec::ZSTD(ZstdLevel::try_new(1).map_err(|e| SinkError::Io(e.to_string()))?)
        }
        Compression::Snappy => Codec::SNAPPY,
        Compression::None => Codec::UNCOMPRESSED,
    };
    Ok(WriterProperties::builder().set_compression(codec).build())
}

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
    /// Another writer took over a partition this worker holds (a Delta commit found its
    /// offsets stored by someone else). The sink dropped what it buffered; the worker must read
    /// again from what is done.
    #[error("{0}")]
    Conflict(String),
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
    /// Delta Lake tables.
    Delta(Box<delta::DeltaSink>),
}

impl Sink {
    /// Writes a batch of message type `type_name`; its ack completes when the rows are durable.
    pub fn write(
        &mut self,
        type_name: &str,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        match self {
            Sink::Parquet(s) => s.write(batch, progress),
            Sink::Kafka(s) => s.write(batch, progress),
            Sink::Delta(s) => s.write(type_name, batch, progress),
        }
    }

    /// Time-based work (closing old files).
    pub fn tick(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Parquet(s) => s.tick(),
            Sink::Delta(s) => s.tick(),
            Sink::Kafka(_) => Ok(()),
        }
    }

    /// Makes everything written so far durable (the producer is flushed separately).
    pub fn flush(&mut self) -> Result<(), SinkError> {
        match self {
            Sink::Parquet(s) => s.close_all(),
            Sink::Delta(s) => s.close_all(),
            Sink::Kafka(_) => Ok(()),
        }
    }

    /// Bytes written: data files for Parquet and Delta, keys and values for Kafka.
    pub fn bytes_written(&self) -> u64 {
        match self {
            Sink::Parquet(s) => s.bytes_written,
            Sink::Delta(s) => s.bytes_written(),
            Sink::Kafka(s) => s.bytes_written,
        }
    }

    /// Data files written: Parquet files, and Delta data files committed (none for Kafka).
    pub fn files_written(&self) -> u64 {
        match self {
            Sink::Parquet(s) => s.files_written,
            Sink::Delta(s) => s.files_written(),
            Sink::Kafka(_) => 0,
        }
    }
}
