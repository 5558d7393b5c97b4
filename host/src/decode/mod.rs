//! Decode: message bytes to Arrow record batches, one batch per message type (invariant 3), with
//! the configured Kafka metadata as columns (invariant 4). A message that can't be decoded is
//! rejected with its reason, and the rest of its batch goes on (invariant 7).

mod json;
mod metadata;
pub mod protobuf;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use indexmap::IndexMap;

use crate::config::{LoadedConfig, MetaColumn, TypeFrom};
use crate::source::Record;

pub use json::JsonDecoder;

/// The rows of one message type from one poll.
#[derive(Debug)]
pub struct TypedBatch {
    /// The message type.
    pub type_name: String,
    /// The decoded rows, metadata columns last.
    pub batch: RecordBatch,
    /// For each row, the index of its record in the poll.
    pub records: Vec<u32>,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The index of its record in the poll.
    pub record: u32,
    /// Why.
    pub reason: String,
}

/// What one poll decodes to.
#[derive(Debug, Default)]
pub struct Decoded {
    /// One batch per message type, in order of first appearance.
    pub batches: Vec<TypedBatch>,
    /// The messages that did not decode.
    pub rejected: Vec<Rejected>,
}

/// Decodes polls, keeping a decoder (and its schema) per message type.
pub struct Decoder {
    type_from: TypeFrom,
    metadata: Vec<MetaColumn>,
    configured: HashMap<String, SchemaRef>,
    infer_rows: usize,
    by_type: HashMap<String, JsonDecoder>,
}

impl Decoder {
    /// A decoder for the config's `decode` section. Schemas are loaded here, once.
    pub fn new(cfg: &LoadedConfig) -> Result<Self, String> {
        let d = &cfg.config.decode;
        let configured = d
            .schemas
            .iter()
            .map(|(name, spec)| {
                cfg.load_schema(spec)
                    .map(|s| (name.clone(), Arc::new(s)))
                    .map_err(|e| format!("decode.schemas.{name}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Decoder {
            type_from: d.type_from.clone(),
            metadata: d.metadata.clone(),
            configured,
            infer_rows: d.infer_rows,
            by_type: HashMap::new(),
        })
    }

    /// The message type of a record.
    fn type_of<'r>(&self, r: &'r Record<'_>) -> Result<std::borrow::Cow<'r, str>, String> {
        match &self.type_from {
            TypeFrom::Topic => Ok(r.topic.into()),
            TypeFrom::Header(h) => {
                let v = r
                    .header(h)
                    .ok_or_else(|| format!("no `{h}` header to take the type from"))?;
                std::str::from_utf8(v)
                    .map(|s| s.to_string().into())
                    .map_err(|_| format!("header `{h}` is not UTF-8"))
            }
            TypeFrom::Field(f) => {
                let v = r.value.ok_or("empty value (tombstone)")?;
                json::type_field(v, f).map(Into::into)
            }
        }
    }

    /// Decodes one poll.
    pub fn decode(&mut self, records: &[Record<'_>]) -> Decoded {
        let mut out = Decoded::default();
        let mut groups: IndexMap<String, Vec<u32>> = IndexMap::new();
        for (i, r) in records.iter().enumerate() {
            match self.type_of(r) {
                Ok(t) => match groups.get_mut(t.as_ref()) {
                    Some(g) => g.push(i as u32),
                    None => {
                        groups.insert(t.into_owned(), vec![i as u32]);
                    }
                },
                Err(reason) => out.rejected.push(Rejected {
                    record: i as u32,
                    reason,
                }),
            }
        }
        for (type_name, idx) in groups {
            let decoder = match self.by_type.get_mut(&type_name) {
                Some(d) => d,
                None => {
                    let schema = match self.configured.get(&type_name) {
                        Some(s) => Arc::clone(s),
                        None => match json::infer_schema(
                            idx.iter()
                                .filter_map(|&i| records[i as usize].value)
                                .take(self.infer_rows),
                        ) {
                            Ok(s) => {
                                tracing::info!(r#type = %type_name, schema = %json::describe_schema(&s), "inferred a schema; give one in decode.schemas to pin it");
                                s
                            }
                            Err(reason) => {
                                out.rejected.extend(idx.iter().map(|&record| Rejected {
                                    record,
                                    reason: format!("no schema for type `{type_name}`: {reason}"),
                                }));
                                continue;
                            }
                        },
                    };
                    self.by_type
                        .entry(type_name.clone())
                        .or_insert(JsonDecoder::new(schema))
                }
            };
            let (batch, kept, rejected) = decoder.decode(records, &idx);
            out.rejected.extend(rejected);
            if kept.is_empty() {
                continue;
            }
            match metadata::append(batch, &self.metadata, records, &kept) {
                Ok(batch) => out.batches.push(TypedBatch {
                    type_name,
                    batch,
                    records: kept,
                }),
                Err(e) => out.rejected.extend(kept.into_iter().map(|record| Rejected {
                    record,
                    reason: format!("adding metadata columns: {e}"),
                })),
            }
        }
        out.rejected.sort_by_key(|r| r.record);
        out
    }
}

#[cfg(test)]
mod tests;
