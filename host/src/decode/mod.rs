//! Decode: message bytes to Arrow record batches, one batch per message type (invariant 3), with
//! the configured Kafka metadata as columns (invariant 4). A message that can't be decoded is
//! rejected with its reason, and the rest of its batch goes on (invariant 7).

pub mod avro;
mod json;
mod metadata;
pub mod protobuf;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use indexmap::IndexMap;

use crate::config::{Format, LoadedConfig, MetaColumn, TypeFrom};
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
    /// Set when the poll can't be decoded for a reason that is not the messages' (the schema
    /// registry is unreachable at shutdown, or refuses the credentials): nothing of the poll
    /// may be committed or dead-lettered, and the worker stops.
    pub fatal: Option<String>,
}

/// Decodes polls, keeping a decoder (and its schema) per message type.
pub struct Decoder {
    type_from: TypeFrom,
    metadata: Vec<MetaColumn>,
    format: FormatDecoder,
}

enum FormatDecoder {
    Json(JsonTypes),
    Avro(avro::AvroDecoder),
    Protobuf(protobuf::framed::ProtobufDecoder),
}

/// A format whose messages name their writer schema in a prefix (Avro, Protobuf): messages are
/// grouped by type and writer, and each group is decoded with its writer's decoder.
pub trait Framed {
    /// What names a writer schema (and, for Protobuf, the message type in it).
    type Key: Clone + Eq + std::hash::Hash;
    /// The writer key of a message and its type's full name, loading the schema the first time.
    fn writer(&mut self, value: &[u8]) -> Result<(Self::Key, &str), String>;
    /// Decodes the records at `idx`, all of writer `key`: the batch, the records it holds (in
    /// order), and the rejected ones.
    fn decode(
        &mut self,
        key: Self::Key,
        records: &[Record<'_>],
        idx: &[u32],
    ) -> (Option<RecordBatch>, Vec<u32>, Vec<Rejected>);
    /// A failure that must stop the worker (the registry refused us, or shutdown interrupted
    /// a retry), if one happened since the last call.
    fn take_fatal(&mut self) -> Option<String>;
}

/// JSON decoders by type, with configured or inferred schemas.
struct JsonTypes {
    configured: HashMap<String, SchemaRef>,
    infer_rows: usize,
    by_type: HashMap<String, JsonDecoder>,
}

/// A decoded part: its type, rows and their records.
type Part = (String, RecordBatch, Vec<u32>);

impl Decoder {
    /// A decoder for the config's `decode` section. Schemas are loaded here, once; the
    /// `registry` serves Avro writer schemas not found locally.
    pub fn new(
        cfg: &LoadedConfig,
        registry: Option<Arc<crate::registry::RegistryClient>>,
    ) -> Result<Self, String> {
        let d = &cfg.config.decode;
        let format = match d.format {
            Format::Json => FormatDecoder::Json(JsonTypes {
                configured: d
                    .schemas
                    .iter()
                    .map(|(name, spec)| {
                        cfg.load_schema(spec)
                            .map(|s| (name.clone(), Arc::new(s)))
                            .map_err(|e| format!("decode.schemas.{name}: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
                infer_rows: d.infer_rows,
                by_type: HashMap::new(),
            }),
            Format::Avro => FormatDecoder::Avro(avro::AvroDecoder::new(cfg, registry)?),
            Format::Protobuf => {
                FormatDecoder::Protobuf(protobuf::framed::ProtobufDecoder::new(cfg, registry)?)
            }
        };
        Ok(Decoder {
            type_from: d.type_from(),
            metadata: d.metadata.clone(),
            format,
        })
    }

    /// Decodes one poll.
    pub fn decode(&mut self, records: &[Record<'_>]) -> Decoded {
        let mut out = Decoded::default();
        let parts = match &mut self.format {
            FormatDecoder::Json(_) => self.decode_json(records, &mut out.rejected),
            FormatDecoder::Avro(a) => decode_framed(
                a,
                &self.type_from,
                records,
                &mut out.rejected,
                &mut out.fatal,
            ),
            FormatDecoder::Protobuf(p) => decode_framed(
                p,
                &self.type_from,
                records,
                &mut out.rejected,
                &mut out.fatal,
            ),
        };
        for (type_name, batch, kept) in merge_same_type(parts) {
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

    fn decode_json(&mut self, records: &[Record<'_>], rejected: &mut Vec<Rejected>) -> Vec<Part> {
        let mut groups: IndexMap<String, Vec<u32>> = IndexMap::new();
        for (i, r) in records.iter().enumerate() {
            let t = type_of(&self.type_from, r).unwrap_or_else(|| match &self.type_from {
                TypeFrom::Field(f) => r
                    .value
                    .ok_or_else(|| "empty value (tombstone)".to_string())
                    .and_then(|v| json::type_field(v, f))
                    .map(Into::into),
                _ => Ok(r.topic.into()),
            });
            match t {
                Ok(t) => group(&mut groups, t, i as u32),
                Err(reason) => rejected.push(Rejected {
                    record: i as u32,
                    reason,
                }),
            }
        }
        let FormatDecoder::Json(json) = &mut self.format else {
            return Vec::new();
        };
        let mut parts = Vec::new();
        for (type_name, idx) in groups {
            let decoder = match json.by_type.get_mut(&type_name) {
                Some(d) => d,
                None => {
                    let schema = match json.configured.get(&type_name) {
                        Some(s) => Arc::clone(s),
                        None => match json::infer_schema(
                            idx.iter()
                                .filter_map(|&i| records[i as usize].value)
                                .take(json.infer_rows),
                        ) {
                            Ok(s) => {
                                tracing::info!(r#type = %type_name, schema = %json::describe_schema(&s), "inferred a schema; give one in decode.schemas to pin it");
                                s
                            }
                            Err(reason) => {
                                rejected.extend(idx.iter().map(|&record| Rejected {
                                    record,
                                    reason: format!("no schema for type `{type_name}`: {reason}"),
                                }));
                                continue;
                            }
                        },
                    };
                    json.by_type
                        .entry(type_name.clone())
                        .or_insert(JsonDecoder::new(schema))
                }
            };
            let (batch, kept, bad) = decoder.decode(records, &idx);
            rejected.extend(bad);
            if !kept.is_empty() {
                parts.push((type_name, batch, kept));
            }
        }
        parts
    }
}

/// Decodes a poll of a [`Framed`] format: groups by (type, writer), one decoder per writer.
fn decode_framed<F: Framed>(
    f: &mut F,
    type_from: &TypeFrom,
    records: &[Record<'_>],
    rejected: &mut Vec<Rejected>,
    fatal: &mut Option<String>,
) -> Vec<Part> {
    let mut groups: IndexMap<(String, F::Key), Vec<u32>> = IndexMap::new();
    // The group of the message before: a poll is mostly runs of one type and writer, which
    // then cost no hashing and no allocation per message.
    let mut last: Option<usize> = None;
    for (i, r) in records.iter().enumerate() {
        let i = i as u32;
        let given = match type_of(type_from, r).transpose() {
            Ok(t) => t,
            Err(reason) => {
                rejected.push(Rejected { record: i, reason });
                continue;
            }
        };
        let Some(value) = r.value else {
            rejected.push(Rejected {
                record: i,
                reason: "empty value (tombstone)".into(),
            });
            continue;
        };
        match f.writer(value) {
            Ok((key, name)) => {
                let t = given.as_deref().unwrap_or(name);
                // Without a given type, the writer names it: the same writer, the same type.
                if let Some((_, idx)) = last
                    .and_then(|g| groups.get_index_mut(g))
                    .filter(|((gt, gk), _)| *gk == key && (given.is_none() || gt == t))
                {
                    idx.push(i);
                    continue;
                }
                let entry = groups.entry((t.to_string(), key));
                last = Some(entry.index());
                entry.or_default().push(i);
            }
            Err(reason) => rejected.push(Rejected { record: i, reason }),
        }
    }
    *fatal = f.take_fatal();
    if fatal.is_some() {
        return Vec::new();
    }
    let mut parts = Vec::new();
    for ((type_name, key), idx) in groups {
        let (batch, kept, bad) = f.decode(key, records, &idx);
        rejected.extend(bad);
        if let Some(batch) = batch {
            parts.push((type_name, batch, kept));
        }
    }
    parts
}

/// The message type of a record, from the topic or a header (`None` when the format decides
/// it: a JSON field, the writer schema's name).
fn type_of<'r>(type_from: &TypeFrom, r: &'r Record<'_>) -> Option<Result<Cow<'r, str>, String>> {
    match type_from {
        TypeFrom::Topic => Some(Ok(r.topic.into())),
        TypeFrom::Header(h) => Some(match r.header(h) {
            None => Err(format!("no `{h}` header to take the type from")),
            Some(v) => std::str::from_utf8(v)
                .map(Into::into)
                .map_err(|_| format!("header `{h}` is not UTF-8")),
        }),
        TypeFrom::Field(_) | TypeFrom::Schema => None,
    }
}

fn group<'a>(groups: &mut IndexMap<String, Vec<u32>>, t: Cow<'a, str>, i: u32) {
    match groups.get_mut(t.as_ref()) {
        Some(g) => g.push(i),
        None => {
            groups.insert(t.into_owned(), vec![i]);
        }
    }
}

/// Joins the parts of one type that share their columns (writer schemas resolved to one reader
/// schema; the schema metadata still names each writer), rows back in poll order, so a type keeps one batch per poll (invariant 3). Parts of
/// one type with different schemas stay apart.
fn merge_same_type(parts: Vec<Part>) -> Vec<Part> {
    if parts.len() < 2 {
        return parts;
    }
    let mut merged: Vec<Vec<Part>> = Vec::new();
    for p in parts {
        match merged
            .iter_mut()
            .find(|m| m[0].0 == p.0 && same_columns(&m[0].1, &p.1))
        {
            Some(m) => m.push(p),
            None => merged.push(vec![p]),
        }
    }
    merged
        .into_iter()
        .flat_map(|same| {
            if same.len() == 1 {
                return same;
            }
            match join_in_order(&same) {
                Ok(joined) => vec![joined],
                Err(e) => {
                    // Can't happen with one schema; if it does, the parts still go on apart.
                    tracing::warn!(error = %e, "joining batches of one type");
                    same
                }
            }
        })
        .collect()
}

/// Same column names, types and nullability (field metadata, such as Avro defaults, aside).
fn same_columns(a: &RecordBatch, b: &RecordBatch) -> bool {
    let (a, b) = (a.schema(), b.schema());
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(f, g)| {
            f.name() == g.name()
                && f.is_nullable() == g.is_nullable()
                && f.data_type().equals_datatype(g.data_type())
        })
}

/// Concatenates parts and sorts the rows by record index.
fn join_in_order(parts: &[Part]) -> Result<Part, arrow_schema::ArrowError> {
    let schema = parts[0].1.schema();
    let batches: Vec<&RecordBatch> = parts.iter().map(|p| &p.1).collect();
    let joined = arrow_select::concat::concat_batches(&schema, batches)?;
    let records: Vec<u32> = parts.iter().flat_map(|p| p.2.iter().copied()).collect();
    let mut order: Vec<u32> = (0..records.len() as u32).collect();
    order.sort_by_key(|&i| records[i as usize]);
    let take = arrow_array::UInt32Array::from(order.clone());
    let batch = arrow_select::take::take_record_batch(&joined, &take)?;
    let records = order.iter().map(|&i| records[i as usize]).collect();
    Ok((parts[0].0.clone(), batch, records))
}

#[cfg(test)]
mod tests;
