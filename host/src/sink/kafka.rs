//! The Kafka sink: one JSON message per row, keyed by a configured column.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_json::LineDelimitedWriter;

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
}

impl KafkaSink {
    /// A sink on the shared producer.
    pub fn new(producer: Arc<AckProducer>, cfg: &KafkaSinkConfig) -> Self {
        KafkaSink {
            producer,
            topic: cfg.topic.clone(),
            key: cfg.key.clone(),
            buf: Vec::new(),
        }
    }

    /// Sends every row; each message's delivery report completes its ack.
    pub fn write(
        &mut self,
        batch: &RecordBatch,
        progress: &Arc<Progress>,
    ) -> Result<(), SinkError> {
        self.buf.clear();
        let mut w = LineDelimitedWriter::new(&mut self.buf);
        w.write(batch)
            .map_err(|e| SinkError::Encode(e.to_string()))?;
        w.finish().map_err(|e| SinkError::Encode(e.to_string()))?;
        let keys = match &self.key {
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
        };
        // JSON escapes newlines inside strings, so each line is exactly one row.
        let lines = self.buf.split(|b| *b == b'\n').filter(|l| !l.is_empty());
        let mut sent = 0;
        for (line, key) in lines.zip(&keys) {
            producer::send(
                &self.producer,
                &self.topic,
                key.as_deref().map(str::as_bytes),
                line,
                None,
                progress.hold(),
            )
            .map_err(|e| SinkError::Kafka(e.to_string()))?;
            sent += 1;
        }
        if sent != batch.num_rows() {
            return Err(SinkError::Encode(format!(
                "encoded {sent} JSON rows for {} rows",
                batch.num_rows()
            )));
        }
        Ok(())
    }
}

use arrow_array::Array as _;
