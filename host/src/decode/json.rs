//! JSON to Arrow with arrow-json's decoder.
//!
//! arrow-json's decoder does not skip a bad record: one malformed message fails the whole
//! decode and leaves the decoder unusable. So a poll is decoded in one go (the fast path), and
//! only when that fails is it bisected, each half with a fresh decoder, down to the single bad
//! messages: k bad messages in n cost O(k log n) extra decodes, and good ones are never lost.

use std::fmt;

use arrow_array::RecordBatch;
use arrow_json::ReaderBuilder;
use arrow_schema::{ArrowError, Schema, SchemaRef};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::Rejected;
use crate::source::Record;

/// A decoder for one message type's schema.
pub struct JsonDecoder {
    schema: SchemaRef,
}

impl JsonDecoder {
    /// A decoder producing `schema`.
    pub fn new(schema: SchemaRef) -> Self {
        JsonDecoder { schema }
    }

    /// Decodes the records at `idx`. Returns the batch, the indices of the records it holds (in
    /// order), and the rejected ones.
    pub fn decode(
        &self,
        records: &[Record<'_>],
        idx: &[u32],
    ) -> (RecordBatch, Vec<u32>, Vec<Rejected>) {
        let mut rejected = Vec::new();
        let mut kept = Vec::with_capacity(idx.len());
        let mut values = Vec::with_capacity(idx.len());
        for &i in idx {
            match records[i as usize].value {
                Some(v) => {
                    kept.push(i);
                    values.push(v);
                }
                None => rejected.push(Rejected {
                    record: i,
                    reason: "empty value (tombstone)".into(),
                }),
            }
        }
        let mut parts = Vec::new();
        let mut good = Vec::with_capacity(kept.len());
        self.bisect(&values, &kept, &mut parts, &mut good, &mut rejected);
        let batch = match parts.len() {
            1 => parts
                .pop()
                .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone())),
            0 => RecordBatch::new_empty(self.schema.clone()),
            _ => match arrow_select::concat::concat_batches(&self.schema, &parts) {
                Ok(b) => b,
                Err(e) => {
                    // Same schema throughout, so this can't happen; if it does, lose nothing.
                    rejected.extend(good.drain(..).map(|record| Rejected {
                        record,
                        reason: format!("joining decoded parts: {e}"),
                    }));
                    RecordBatch::new_empty(self.schema.clone())
                }
            },
        };
        (batch, good, rejected)
    }

    fn bisect(
        &self,
        values: &[&[u8]],
        idx: &[u32],
        parts: &mut Vec<RecordBatch>,
        good: &mut Vec<u32>,
        rejected: &mut Vec<Rejected>,
    ) {
        if values.is_empty() {
            return;
        }
        match self.decode_all(values) {
            Ok(batch) => {
                parts.push(batch);
                good.extend_from_slice(idx);
            }
            Err(e) if values.len() == 1 => rejected.push(Rejected {
                record: idx[0],
                reason: e,
            }),
            Err(_) => {
                let mid = values.len() / 2;
                self.bisect(&values[..mid], &idx[..mid], parts, good, rejected);
                self.bisect(&values[mid..], &idx[mid..], parts, good, rejected);
            }
        }
    }

    /// Decodes every value into one batch, or fails if any value is not exactly one JSON object
    /// of the schema.
    fn decode_all(&self, values: &[&[u8]]) -> Result<RecordBatch, String> {
        let mut decoder = ReaderBuilder::new(self.schema.clone())
            .with_batch_size(values.len())
            .build_decoder()
            .map_err(|e| e.to_string())?;
        for (n, v) in values.iter().enumerate() {
            let read = decoder.decode(v).map_err(|e| json_error(&e))?;
            // A message must be complete on its own: a truncated one would run into the next.
            if decoder.has_partial_record() {
                return Err("truncated JSON (the message ends inside a value)".into());
            }
            if read != v.len() || decoder.len() != n + 1 {
                return Err("not exactly one JSON object in the message".into());
            }
        }
        let batch = decoder
            .flush()
            .map_err(|e| json_error(&e))?
            .unwrap_or_else(|| RecordBatch::new_empty(self.schema.clone()));
        if batch.num_rows() != values.len() {
            return Err(format!(
                "expected one JSON object per message, found {} in {}",
                batch.num_rows(),
                values.len()
            ));
        }
        Ok(batch)
    }
}

fn json_error(e: &ArrowError) -> String {
    match e {
        ArrowError::JsonError(m) => format!("invalid JSON for the schema: {m}"),
        other => other.to_string(),
    }
}

/// Infers a schema from sample values; values that don't parse are passed over.
pub fn infer_schema<'a>(values: impl Iterator<Item = &'a [u8]>) -> Result<SchemaRef, String> {
    let parsed: Vec<serde_json::Value> = values
        .filter_map(|v| serde_json::from_slice::<serde_json::Value>(v).ok())
        .filter(serde_json::Value::is_object)
        .collect();
    if parsed.is_empty() {
        return Err("no message parsed as a JSON object to infer it from".into());
    }
    arrow_json::reader::infer_json_schema_from_iterator(parsed.into_iter().map(Ok))
        .map(std::sync::Arc::new)
        .map_err(|e| e.to_string())
}

/// `name: type, ...` for logs.
pub fn describe_schema(s: &Schema) -> String {
    s.fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The string value of the top-level field `name`, scanning the document once and allocating
/// nothing for the fields it skips.
pub fn type_field(value: &[u8], name: &str) -> Result<String, String> {
    struct Seed<'n>(&'n str);
    impl<'de> DeserializeSeed<'de> for Seed<'_> {
        type Value = Option<String>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == self.0 && found.is_none() {
                    found = map.next_value::<Option<String>>()?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(value);
    let found = Seed(name)
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| format!("not a JSON object: {e}"))?;
    found.ok_or_else(|| format!("no string field `{name}` to take the type from"))
}
