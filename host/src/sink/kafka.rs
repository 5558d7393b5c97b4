//! The Kafka sink: one message per row (JSON, or framed Avro), keyed by a configured column.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_json::LineDelimitedWriter;

use super::avro::AvroEncoder;
use super::producer::{self, AckProducer};
use super::SinkError;
use crate::config::KafkaSinkConfig;
use crate::offsets::Progress;

/// Writes rows to a topic.
pub struct KafkaSink {
    producer: Arc<AckProducer>,
    topic: String,
    key: Option<String>,
    buf: Vec<u8>,
    /// `Some` for `format: avro`.
    avro: Option<AvroEncoder>,
    /// Bytes of the keys and values sent.
    pub bytes_written: u64,
}

impl KafkaSink {
    /// A sink on the shared producer; `avro` encodes rows when the format is Avro.
    pub fn new(
        producer: Arc<AckProducer>,
        cfg: &KafkaSinkConfig,
        avro: Option<AvroEncoder>,
    ) -> Self {
        KafkaSink {
            producer,
            topic: cfg.topic.clone(),
            key: cfg.key.clone(),
            buf: Vec::new(),
            avro,
            bytes_written: 0,
        }
    }

    /// Sends every row; each message's delivery report completes its ack.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        let keys = self.keys(batch)?;
        if let Some(avro) = &mut self.avro {
            let rows = avro.encode(batch)?;
            if rows.len() != batch.num_rows() {
                return Err(SinkError::Encode(format!(
                    "encoded {} Avro rows for {} rows",
                    rows.len(),
                    batch.num_rows()
                )));
            }
            for (value, key) in rows.iter().zip(&keys) {
                self.send(key.as_deref(), &value, progress)?;
            }
            return Ok(());
        }
        self.buf.clear();
        let mut w = LineDelimitedWriter::new(&mut self.buf);
        w.write(batch)
            .map_err(|e| SinkError::Encode(e.to_string()))?;
        w.finish().map_err(|e| SinkError::Encode(e.to_string()))?;
        // JSON escapes newlines inside strings, so each line is exactly one row.
        let buf = std::mem::take(&mut self.buf);
        let lines = buf.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let mut sent = 0;
        for (line, key) in lines.zip(&keys) {
            self.send(key.as_deref(), line, progress)?;
            sent += 1;
        }
        self.buf = buf;
        if sent != batch.num_rows() {
            return Err(SinkError::Encode(format!(
                "encoded {sent} JSON rows for {} rows",
                batch.num_rows()
            )));
        }
        Ok(())
    }

    fn send(
        &mut self,
        key: Option<&str>,
        value: &[u8],
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        producer::send(
            &self.producer,
            &self.topic,
            key.map(str::as_bytes),
            value,
            None,
            progress.hold(),
        )
        .map_err(|e| SinkError::Kafka(e.to_string()))?;
        self.bytes_written += (key.map_or(0, str::len) + value.len()) as u64;
        Ok(())
    }

    /// Each row's key, from the key column.
    fn keys(&self, batch: &RecordBatch) -> Result<Vec<Option<String>>, SinkError> {
        Ok(match &self.key {
            Some(k) => {
                let col = batch.column_by_name(k).ok_or_else(|| {
                    SinkError::Encode(format!("no key column `{k}` in the batch"))
                })?;
                let f = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())
                    .map_err(|e| SinkError::Encode(e.to_string()))?;
                (0..batch.num_rows())
                    .map(|i| (!col.is_null(i)).then(|| f.value(i).to_string()))
                    .collect()
            }
            None => vec![None; batch.num_rows()],
        })
    }
}

use arrow_array::Array as _;
