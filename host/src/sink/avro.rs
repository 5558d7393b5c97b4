//! Avro encoding for the Kafka sink: each row becomes one framed Avro message (Confluent wire
//! format or single-object encoding), written by arrow-avro's row encoder.
//!
//! A batch is first checked against the target schema and coerced to it, as pykafarr did: a
//! column that would lose values (an int64 into an Avro `int`) is refused unless the config
//! opts that column into lossy coercion, and the error names the column and the reason.
//! Columns the schema does not name are left out; a field with no column is written as null
//! when the schema allows it.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, ListArray, RecordBatch, StructArray};
use arrow_avro::schema::{
    AvroSchema, Fingerprint, FingerprintAlgorithm, FingerprintStrategy,
    AVRO_ENUM_SYMBOLS_METADATA_KEY, AVRO_NAMESPACE_METADATA_KEY, AVRO_NAME_METADATA_KEY,
    SCHEMA_METADATA_KEY,
};
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_avro::writer::{EncodedRows, Encoder, WriterBuilder};
use arrow_cast::{can_cast_types, cast_with_options, CastOptions};
use arrow_schema::{DataType, Field, FieldRef, Schema, SchemaRef, TimeUnit};

use crate::config::{AvroFraming, AvroSinkConfig, KafkaSinkConfig, LoadedConfig, SubjectStrategy};
use crate::decode::avro::{arrow_schema_of, full_name, load_schema_file};
use crate::registry::{RegistryClient, RegistryError, SchemaType};
use crate::sink::SinkError;

/// A batch that does not fit the target schema: the rows can't be written as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Mismatch(pub String);

/// One target schema, ready to encode batches.
struct Target {
    arrow: SchemaRef,
    encoder: Encoder,
}

/// Encodes batches to framed Avro messages for one topic.
pub struct AvroEncoder {
    topic: String,
    cfg: AvroSinkConfig,
    /// The configured schema, when one is given.
    fixed: Option<AvroSchema>,
    registry: Option<Arc<RegistryClient>>,
    /// Targets by the schema of the batches that use them (derived schemas follow the batch).
    targets: HashMap<SchemaRef, Target>,
}

impl AvroEncoder {
    /// The encoder of a Kafka sink's `avro` section; `registry` registers and finds schemas.
    pub fn new(
        cfg: &LoadedConfig,
        sink: &KafkaSinkConfig,
        registry: Option<Arc<RegistryClient>>,
    ) -> Result<Self, String> {
        let fixed = match &sink.avro.schema {
            Some(path) => Some(
                load_schema_file(&cfg.resolve(path))
                    .map_err(|e| format!("sink.kafka.avro.schema: {e}"))?,
            ),
            None => None,
        };
        Ok(AvroEncoder {
            topic: sink.topic.clone(),
            cfg: sink.avro.clone(),
            fixed,
            registry,
            targets: HashMap::new(),
        })
    }

    /// Encodes every row of `batch`, one framed message per row. A batch that does not fit the
    /// schema is [`SinkError::Reject`]ed; a registry that can't be reached stops the worker.
    pub fn encode(&mut self, batch: &RecordBatch) -> Result<EncodedRows, SinkError> {
        let schema = batch.schema();
        if !self.targets.contains_key(&schema) {
            let target = self.target(&schema)?;
            // A derived schema per batch schema: bound the cache for batches that keep changing.
            if self.targets.len() > 64 {
                self.targets.clear();
            }
            self.targets.insert(Arc::clone(&schema), target);
        }
        let target = self
            .targets
            .get_mut(&schema)
            .ok_or_else(|| SinkError::Encode("no target schema".into()))?;
        let coerced = coerce_batch(batch, &target.arrow, &self.cfg.lossy).map_err(reject)?;
        target
            .encoder
            .encode(&coerced)
            .map_err(|e| SinkError::Reject(format!("Avro encoding: {e}")))?;
        Ok(target.encoder.flush())
    }

    /// Builds the target for batches of `schema`: the Avro schema, its id, its Arrow form.
    fn target(&self, schema: &Schema) -> Result<Target, SinkError> {
        let avro = match &self.fixed {
            Some(s) => s.clone(),
            None => derive(schema, self.cfg.record_name.as_deref()).map_err(reject)?,
        };
        let name = full_name(&avro.json_string).map_err(SinkError::Reject)?;
        let fingerprint = match self.cfg.framing {
            AvroFraming::SingleObject => FingerprintStrategy::Rabin,
            AvroFraming::Confluent => {
                let id = match (&self.registry, self.cfg.schema_id) {
                    (_, Some(id)) => id,
                    (Some(r), None) => {
                        let subject = match self.cfg.subject_strategy {
                            SubjectStrategy::TopicName => format!("{}-value", self.topic),
                            SubjectStrategy::RecordName => name.clone(),
                            SubjectStrategy::TopicRecordName => format!("{}-{name}", self.topic),
                        };
                        schema_id(r, &subject, &avro.json_string, self.cfg.auto_register)?
                    }
                    (None, None) => {
                        return Err(SinkError::Encode(
                            "Confluent framing needs a schema id: set sink.kafka.avro.schema_id or a schema_registry".into(),
                        ))
                    }
                };
                FingerprintStrategy::Id(id)
            }
        };
        let arrow = arrow_schema_of(&avro, None).map_err(SinkError::Reject)?;
        let mut md = arrow.metadata().clone();
        md.insert(SCHEMA_METADATA_KEY.into(), avro.json_string.clone());
        let arrow = Arc::new(Schema::new_with_metadata(arrow.fields().clone(), md));
        let encoder = WriterBuilder::new(arrow.as_ref().clone())
            .with_fingerprint_strategy(fingerprint)
            .build_encoder::<AvroSoeFormat>()
            .map_err(|e| SinkError::Reject(format!("Avro encoder for `{name}`: {e}")))?;
        Ok(Target { arrow, encoder })
    }
}

/// An Avro schema for batches of `schema`, named `record_name` (default `weir.Row`).
///
/// The text is the same for every batch with the same fields, whatever their metadata: a
/// derived schema is registered, and one record type must not become two versions. arrow-avro
/// copies a field's metadata into the schema in hash order, and the decoder adds a reader's
/// defaults only to the rows it resolved from an older writer; so only a field's name, type,
/// doc, aliases and order are kept, and every field whose union starts with null gets the
/// default null (which lets the next version add an optional field compatibly).
fn derive(schema: &Schema, record_name: Option<&str>) -> Result<AvroSchema, Mismatch> {
    let mut md = HashMap::new();
    let full = record_name.unwrap_or("weir.Row");
    match full.rsplit_once('.') {
        Some((ns, name)) => {
            md.insert(AVRO_NAMESPACE_METADATA_KEY.to_string(), ns.to_string());
            md.insert(AVRO_NAME_METADATA_KEY.to_string(), name.to_string());
        }
        None => {
            md.insert(AVRO_NAME_METADATA_KEY.to_string(), full.to_string());
        }
    }
    // Without the decoder's `avro.schema` metadata: the batch may no longer match it.
    let bare = Schema::new_with_metadata(schema.fields().clone(), md);
    let derived = AvroSchema::try_from(&bare)
        .map_err(|e| Mismatch(format!("no Avro schema for the batch: {e}")))?;
    let mut json: serde_json::Value = serde_json::from_str(&derived.json_string)
        .map_err(|e| Mismatch(format!("the derived Avro schema is not JSON: {e}")))?;
    tidy_fields(&mut json);
    Ok(AvroSchema::new(json.to_string()))
}

/// Keeps only the Avro attributes of each record field, in the schema `v` and those it nests.
fn tidy_fields(v: &mut serde_json::Value) {
    use serde_json::Value;
    match v {
        // A union's branches.
        Value::Array(branches) => branches.iter_mut().for_each(tidy_fields),
        Value::Object(o) => {
            if let Some(Value::Array(fields)) = o.get_mut("fields") {
                for field in fields.iter_mut().filter_map(Value::as_object_mut) {
                    field.retain(|k, _| {
                        matches!(k.as_str(), "name" | "type" | "doc" | "aliases" | "order")
                    });
                    let optional = match field.get_mut("type") {
                        Some(t) => {
                            tidy_fields(t);
                            matches!(t, Value::Array(b) if b.first().and_then(Value::as_str) == Some("null"))
                        }
                        None => false,
                    };
                    if optional {
                        field.insert("default".into(), Value::Null);
                    }
                }
            }
            for nested in ["items", "values"] {
                if let Some(t) = o.get_mut(nested) {
                    tidy_fields(t);
                }
            }
        }
        _ => {}
    }
}

fn reject(m: Mismatch) -> SinkError {
    SinkError::Reject(m.0)
}

/// The id of `schema` under `subject`, registered when `register` is set. The registry refusing
/// the schema (incompatible, invalid) rejects the batch; an unreachable registry stops the worker.
fn schema_id(
    r: &RegistryClient,
    subject: &str,
    schema: &str,
    register: bool,
) -> Result<u32, SinkError> {
    let found = if register {
        r.register(subject, schema, SchemaType::Avro, &[]).map(Some)
    } else {
        r.lookup(subject, schema, SchemaType::Avro, &[])
    };
    match found {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(SinkError::Reject(format!(
            "schema registry: the schema is not registered under subject `{subject}` (auto_register is off)"
        ))),
        Err(e @ (RegistryError::Rejected { .. } | RegistryError::NotFound { .. })) => {
            Err(SinkError::Reject(format!("schema registry, subject `{subject}`: {e}")))
        }
        Err(e) => Err(SinkError::Encode(format!("schema registry, subject `{subject}`: {e}"))),
    }
}

/// The CRC-64-AVRO fingerprint of a schema (single-object encoding).
pub fn rabin(schema: &AvroSchema) -> Option<u64> {
    match schema.fingerprint(FingerprintAlgorithm::Rabin) {
        Ok(Fingerprint::Rabin(fp)) => Some(fp),
        _ => None,
    }
}

/// The batch's columns coerced to `target`'s fields, in its order.
pub fn coerce_batch(
    batch: &RecordBatch,
    target: &SchemaRef,
    lossy: &[String],
) -> Result<RecordBatch, Mismatch> {
    let columns = target
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) => coerce(c, f, f.name(), lossy),
            None => missing(f, f.name(), batch.num_rows()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(target), columns).map_err(|e| Mismatch(e.to_string()))
}

fn missing(f: &Field, path: &str, rows: usize) -> Result<ArrayRef, Mismatch> {
    if f.is_nullable() {
        Ok(arrow_array::new_null_array(f.data_type(), rows))
    } else {
        Err(Mismatch(format!(
            "no column `{path}` for the Avro field `{path}` ({}), which is not nullable",
            f.data_type()
        )))
    }
}

/// How a value converts from one Arrow type to another.
#[derive(Debug, PartialEq, Eq)]
enum Conversion {
    /// Every value is kept exactly.
    Lossless,
    /// Values may be rounded, truncated or out of range.
    Lossy,
    /// Not a conversion weir makes.
    Refused,
}

fn conversion(from: &DataType, to: &DataType) -> Conversion {
    use DataType::*;
    let int_bits = |t: &DataType| match t {
        Int8 => Some((8, true)),
        Int16 => Some((16, true)),
        Int32 => Some((32, true)),
        Int64 => Some((64, true)),
        UInt8 => Some((8, false)),
        UInt16 => Some((16, false)),
        UInt32 => Some((32, false)),
        UInt64 => Some((64, false)),
        _ => None,
    };
    let float_bits = |t: &DataType| match t {
        Float16 => Some(11),
        Float32 => Some(24),
        Float64 => Some(53),
        _ => None,
    };
    let unit_rank = |u: &TimeUnit| match u {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 1,
        TimeUnit::Microsecond => 2,
        TimeUnit::Nanosecond => 3,
    };
    let is_string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let is_binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    match (from, to) {
        (a, b) if a == b => Conversion::Lossless,
        (Null, _) => Conversion::Lossless,
        (a, b) if int_bits(a).is_some() && int_bits(b).is_some() => {
            let ((fb, fs), (tb, ts)) = (
                int_bits(a).unwrap_or_default(),
                int_bits(b).unwrap_or_default(),
            );
            // Wider, and signed enough: i32 -> i64, u32 -> i64; not i8 -> u64.
            if (fs == ts && tb >= fb) || (!fs && ts && tb > fb) {
                Conversion::Lossless
            } else {
                Conversion::Lossy
            }
        }
        (a, b) if int_bits(a).is_some() && float_bits(b).is_some() => {
            if int_bits(a).map_or(64, |(bits, _)| bits) < float_bits(b).unwrap_or(0) {
                Conversion::Lossless
            } else {
                Conversion::Lossy
            }
        }
        (a, b) if float_bits(a).is_some() && float_bits(b).is_some() => {
            if float_bits(a) <= float_bits(b) {
                Conversion::Lossless
            } else {
                Conversion::Lossy
            }
        }
        (a, b) if float_bits(a).is_some() && int_bits(b).is_some() => Conversion::Lossy,
        (a, b) if is_string(a) && (is_string(b) || is_binary(b)) => Conversion::Lossless,
        (a, b) if is_binary(a) && is_binary(b) => Conversion::Lossless,
        (a, Dictionary(_, v)) if is_string(a) && is_string(v) => Conversion::Lossless,
        (Dictionary(_, v), b) if is_string(v) && is_string(b) => Conversion::Lossless,
        (Timestamp(fu, _), Timestamp(tu, _)) => {
            if unit_rank(fu) <= unit_rank(tu) {
                Conversion::Lossless
            } else {
                Conversion::Lossy
            }
        }
        (Date32, Timestamp(..)) | (Date64, Timestamp(..)) => Conversion::Lossless,
        (Timestamp(..), Date32) | (Date64, Date32) => Conversion::Lossy,
        (Decimal128(fp, fs), Decimal128(tp, ts)) | (Decimal256(fp, fs), Decimal256(tp, ts)) => {
            if ts >= fs && (*tp as i16 - *ts as i16) >= (*fp as i16 - *fs as i16) {
                Conversion::Lossless
            } else {
                Conversion::Lossy
            }
        }
        _ => Conversion::Refused,
    }
}

/// Whether `path` (`customer.tier`) is opted into lossy coercion: it, or a parent, is listed.
fn lossy_allowed(path: &str, lossy: &[String]) -> bool {
    lossy.iter().any(|l| {
        path == l || (path.starts_with(l.as_str()) && path.as_bytes().get(l.len()) == Some(&b'.'))
    })
}

/// `array` as `target`'s type, checked: structs by field name, lists item by item.
fn coerce(
    array: &ArrayRef,
    target: &Field,
    path: &str,
    lossy: &[String],
) -> Result<ArrayRef, Mismatch> {
    let from = array.data_type();
    let to = target.data_type();
    let symbols = target.metadata().get(AVRO_ENUM_SYMBOLS_METADATA_KEY);
    let out: ArrayRef = match (from, to) {
        // An enum's dictionary must be its symbols, in order: re-key whatever came in.
        (_, DataType::Dictionary(..)) if symbols.is_some() => {
            enum_column(array, symbols.map_or("", |s| s.as_str()), path)?
        }
        (a, b) if a == b => Arc::clone(array),
        (DataType::Struct(_), DataType::Struct(fields)) => {
            let s = array
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| Mismatch(format!("column `{path}`: not a struct array")))?;
            let children = fields
                .iter()
                .map(|f| {
                    let p = format!("{path}.{}", f.name());
                    match s.column_by_name(f.name()) {
                        Some(c) => coerce(c, f, &p, lossy),
                        None => missing(f, &p, s.len()),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(
                StructArray::try_new(fields.clone(), children, s.nulls().cloned())
                    .map_err(|e| Mismatch(format!("column `{path}`: {e}")))?,
            )
        }
        (DataType::List(_) | DataType::LargeList(_), DataType::List(item)) => {
            let list = match from {
                DataType::List(_) => Arc::clone(array),
                _ => cast_with_options(
                    array,
                    &DataType::List(Arc::new(Field::new("item", array_item_type(from), true))),
                    &CastOptions {
                        safe: false,
                        ..Default::default()
                    },
                )
                .map_err(|e| Mismatch(format!("column `{path}`: {e}")))?,
            };
            let l = list
                .as_any()
                .downcast_ref::<ListArray>()
                .ok_or_else(|| Mismatch(format!("column `{path}`: not a list array")))?;
            let values = coerce(l.values(), item, &format!("{path}[]"), lossy)?;
            Arc::new(
                ListArray::try_new(
                    FieldRef::clone(item),
                    l.offsets().clone(),
                    values,
                    l.nulls().cloned(),
                )
                .map_err(|e| Mismatch(format!("column `{path}`: {e}")))?,
            )
        }
        _ => {
            let how = conversion(from, to);
            let allowed = match how {
                Conversion::Lossless => true,
                Conversion::Lossy => lossy_allowed(path.trim_end_matches("[]"), lossy),
                Conversion::Refused => false,
            };
            if !allowed || !can_cast_types(from, to) {
                return Err(Mismatch(match how {
                    Conversion::Lossy => format!(
                        "column `{path}`: {from} into the Avro field's {to} may lose values; list `{}` under sink.kafka.avro.lossy to allow it",
                        path.trim_end_matches("[]")
                    ),
                    _ => format!("column `{path}`: {from} can't be written as the Avro field's {to}"),
                }));
            }
            // Not `safe`: a value that doesn't fit fails the batch instead of becoming null.
            cast_with_options(
                array,
                to,
                &CastOptions {
                    safe: false,
                    ..Default::default()
                },
            )
            .map_err(|e| Mismatch(format!("column `{path}`: {e}")))?
        }
    };
    if !target.is_nullable() && out.null_count() > 0 {
        return Err(Mismatch(format!(
            "column `{path}` has {} null(s), but the Avro field is not nullable",
            out.null_count()
        )));
    }
    Ok(out)
}

/// A string or dictionary column as an Avro enum: keys into `symbols_json`'s symbols.
fn enum_column(array: &ArrayRef, symbols_json: &str, path: &str) -> Result<ArrayRef, Mismatch> {
    let symbols: Vec<String> = serde_json::from_str(symbols_json)
        .map_err(|e| Mismatch(format!("column `{path}`: enum symbols: {e}")))?;
    let index: HashMap<&str, i32> = symbols
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i as i32))
        .collect();
    let strings =
        cast_with_options(array, &DataType::Utf8, &CastOptions::default()).map_err(|e| {
            Mismatch(format!(
                "column `{path}`: {} can't be an Avro enum: {e}",
                array.data_type()
            ))
        })?;
    let strings = strings
        .as_any()
        .downcast_ref::<arrow_array::StringArray>()
        .ok_or_else(|| Mismatch(format!("column `{path}`: not strings")))?;
    let keys = strings
        .iter()
        .map(|v| match v {
            None => Ok(None),
            Some(v) => index.get(v).map(|&k| Some(k)).ok_or_else(|| {
                Mismatch(format!(
                    "column `{path}`: `{v}` is not a symbol of the Avro enum ({})",
                    symbols.join(", ")
                ))
            }),
        })
        .collect::<Result<arrow_array::Int32Array, _>>()?;
    let values = Arc::new(arrow_array::StringArray::from(symbols.clone()));
    Ok(Arc::new(
        arrow_array::DictionaryArray::<arrow_array::types::Int32Type>::try_new(keys, values)
            .map_err(|e| Mismatch(format!("column `{path}`: {e}")))?,
    ))
}

fn array_item_type(t: &DataType) -> DataType {
    match t {
        DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow_array::{Float64Array, Int32Array, Int64Array, StringArray};

    fn target(fields: Vec<Field>) -> SchemaRef {
        Arc::new(Schema::new(fields))
    }

    /// Two batches of one record type, decoded from different writers: their fields carry
    /// different metadata, and must still derive one schema text (one registered version).
    #[test]
    fn a_derived_schema_does_not_depend_on_field_metadata() {
        let tier = |order: &[(&str, &str)]| {
            let md: HashMap<String, String> = order
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Field::new_dictionary("tier", DataType::Int32, DataType::Utf8, false).with_metadata(md)
        };
        let enum_md = [
            (AVRO_ENUM_SYMBOLS_METADATA_KEY, r#"["BRONZE","GOLD"]"#),
            (AVRO_NAME_METADATA_KEY, "Tier"),
            (AVRO_NAMESPACE_METADATA_KEY, "com.acme"),
        ];
        let mut reversed = enum_md;
        reversed.reverse();
        let note = Field::new("note", DataType::Utf8, true);
        let inner = |note: Field| {
            Field::new_struct(
                "extra",
                vec![note, Field::new("n", DataType::Int64, false)],
                true,
            )
        };
        let resolved = note.clone().with_metadata(HashMap::from([(
            arrow_avro::schema::AVRO_FIELD_DEFAULT_METADATA_KEY.to_string(),
            "null".to_string(),
        )]));
        let a = Schema::new(vec![tier(&enum_md), note.clone(), inner(note)]);
        let b = Schema::new(vec![tier(&reversed), resolved.clone(), inner(resolved)]);

        let da = derive(&a, Some("com.acme.CleanOrder")).unwrap().json_string;
        let db = derive(&b, Some("com.acme.CleanOrder")).unwrap().json_string;
        assert_eq!(da, db);
        assert!(!da.contains("avro."), "{da}");
        let v: serde_json::Value = serde_json::from_str(&da).unwrap();
        assert_eq!(v["name"], "CleanOrder");
        assert_eq!(v["namespace"], "com.acme");
        let fields = v["fields"].as_array().unwrap();
        assert_eq!(fields[0]["type"]["type"], "enum");
        assert_eq!(fields[0]["type"]["symbols"][1], "GOLD");
        assert!(fields[0].get("default").is_none());
        // Optional fields, nested ones too, default to null; required ones have no default.
        assert!(fields[1]["default"].is_null() && fields[1].get("default").is_some());
        assert!(fields[2].get("default").is_some());
        let nested = fields[2]["type"][1]["fields"].as_array().unwrap();
        assert!(nested[0].get("default").is_some());
        assert!(nested[1].get("default").is_none());
        // And it is a schema arrow-avro reads back.
        arrow_schema_of(&AvroSchema::new(da), None).unwrap();
    }

    #[test]
    fn widening_is_silent_narrowing_needs_an_opt_in() {
        let batch = RecordBatch::try_from_iter([
            ("small", Arc::new(Int32Array::from(vec![1, 2])) as ArrayRef),
            ("big", Arc::new(Int64Array::from(vec![3, 4])) as ArrayRef),
            (
                "extra",
                Arc::new(StringArray::from(vec!["x", "y"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let t = target(vec![
            Field::new("small", DataType::Int64, false),
            Field::new("big", DataType::Int32, false),
        ]);
        let e = coerce_batch(&batch, &t, &[]).unwrap_err();
        assert!(
            e.0.contains("column `big`: Int64 into the Avro field's Int32 may lose values"),
            "{e}"
        );
        assert!(e.0.contains("sink.kafka.avro.lossy"), "{e}");
        let out = coerce_batch(&batch, &t, &["big".into()]).unwrap();
        assert_eq!(out.num_columns(), 2, "the extra column is left out");
        assert_eq!(out.column(0).data_type(), &DataType::Int64);
        let big = out.column(1).as_any().downcast_ref::<Int32Array>().unwrap();
        assert_eq!(big.values(), &[3, 4]);
    }

    #[test]
    fn a_value_out_of_range_fails_even_when_lossy_is_allowed() {
        let batch = RecordBatch::try_from_iter([(
            "big",
            Arc::new(Int64Array::from(vec![1, i64::MAX])) as ArrayRef,
        )])
        .unwrap();
        let t = target(vec![Field::new("big", DataType::Int32, false)]);
        let e = coerce_batch(&batch, &t, &["big".into()]).unwrap_err();
        assert!(e.0.contains("column `big`"), "{e}");
    }

    #[test]
    fn missing_and_null_columns_against_nullability() {
        let batch = RecordBatch::try_from_iter([(
            "a",
            Arc::new(Float64Array::from(vec![Some(1.0), None])) as ArrayRef,
        )])
        .unwrap();
        let t = target(vec![
            Field::new("a", DataType::Float64, true),
            Field::new("b", DataType::Utf8, true),
        ]);
        let out = coerce_batch(&batch, &t, &[]).unwrap();
        assert_eq!(out.column(1).null_count(), 2);
        let t = target(vec![Field::new("a", DataType::Float64, false)]);
        let e = coerce_batch(&batch, &t, &[]).unwrap_err();
        assert_eq!(
            e.0,
            "column `a` has 1 null(s), but the Avro field is not nullable"
        );
        let t = target(vec![Field::new("c", DataType::Int64, false)]);
        assert!(coerce_batch(&batch, &t, &[])
            .unwrap_err()
            .0
            .contains("no column `c`"));
    }

    #[test]
    fn strings_are_not_numbers() {
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(StringArray::from(vec!["1"])) as ArrayRef)])
                .unwrap();
        let t = target(vec![Field::new("n", DataType::Int64, false)]);
        let e = coerce_batch(&batch, &t, &["n".into()]).unwrap_err();
        assert!(e.0.contains("can't be written"), "{e}");
    }

    #[test]
    fn conversions() {
        use DataType::*;
        assert_eq!(conversion(&UInt32, &Int64), Conversion::Lossless);
        assert_eq!(conversion(&Int8, &UInt64), Conversion::Lossy);
        assert_eq!(conversion(&Int32, &Float64), Conversion::Lossless);
        assert_eq!(conversion(&Int64, &Float64), Conversion::Lossy);
        assert_eq!(conversion(&Float64, &Float32), Conversion::Lossy);
        assert_eq!(
            conversion(
                &Timestamp(TimeUnit::Millisecond, None),
                &Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            ),
            Conversion::Lossless
        );
        assert_eq!(
            conversion(
                &Timestamp(TimeUnit::Microsecond, None),
                &Timestamp(TimeUnit::Millisecond, None)
            ),
            Conversion::Lossy
        );
        assert!(lossy_allowed("customer.tier", &["customer".into()]));
        assert!(!lossy_allowed("customers", &["customer".into()]));
    }
}
