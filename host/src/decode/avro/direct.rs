//! weir's own Avro decoder, for the writer schemas it covers: records of the primitive types,
//! strings and bytes, the common logical types (date, time, timestamp), enums, arrays, maps, and
//! unions of `null` with one type. It reads each message straight into column buffers planned
//! once per writer schema, and produces exactly what arrow-avro produces for that schema (the
//! Arrow schema is arrow-avro's, and a property test holds the two to the same batches).
//!
//! Why not arrow-avro alone: in the benchmark, arrow-avro's per-message decode was 40% of the
//! worker's time. This decoder reads a varint in line, checks a string once as it is copied,
//! and, when a message is bad, cuts its columns back to the row before it: no decoding again,
//! no bisecting. Anything it does not cover (schema resolution to a reader schema, decimals,
//! fixed, UUIDs, other unions) stays with arrow-avro.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, DictionaryArray, Float32Array, Float64Array,
    Int32Array, Int64Array, ListArray, MapArray, RecordBatch, StringArray, StructArray,
    Time32MillisecondArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray,
};
use arrow_avro::schema::AvroSchema;
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field, FieldRef, Fields, SchemaRef, TimeUnit};
use serde_json::Value;

use super::qualify;

/// Decodes the bodies (framing stripped) of one writer schema's messages into a batch.
pub struct DirectDecoder {
    schema: SchemaRef,
    columns: Vec<Col>,
    rows: usize,
    /// Check each string as it is read. Off, strings are checked a column at a time when the
    /// batch is finished (much cheaper for short strings), and a batch that fails is decoded
    /// again with this on, to find the messages at fault.
    strict: bool,
}

impl std::fmt::Debug for DirectDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectDecoder")
            .field("columns", &self.columns.len())
            .field("rows", &self.rows)
            .finish()
    }
}

/// Why a message failed. Small (two words), so that the decoder's results stay in registers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    /// The message ends inside a value, or a length claims more bytes than it has.
    Truncated,
    /// Bytes left after the record.
    Trailing(usize),
    /// Anything else that is not valid Avro for the schema. Boxed: one word, not three.
    #[allow(clippy::box_collection)]
    Invalid(Box<String>),
}

fn invalid(why: String) -> Fail {
    Fail::Invalid(Box::new(why))
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Truncated => f.write_str(
                "truncated Avro: the message ends inside a value (or a length claims more bytes than it has)",
            ),
            Fail::Trailing(n) => {
                write!(f, "trailing bytes after the Avro record: {n} byte(s) left")
            }
            Fail::Invalid(why) => f.write_str(why),
        }
    }
}

impl DirectDecoder {
    /// A decoder for the `writer` schema, producing the Arrow schema arrow-avro gives it; `None`
    /// when the schema uses what this decoder does not cover (or arrow-avro refuses it).
    pub fn new(writer: &AvroSchema) -> Option<Self> {
        let schema = super::arrow_schema_of(writer, None).ok()?;
        let root: Value = serde_json::from_str(&writer.json_string).ok()?;
        let mut names = Names::default();
        let Value::Object(o) = &root else { return None };
        if o.get("type")?.as_str()? != "record" {
            return None;
        }
        let fields = Fields::from(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect::<Vec<Field>>(),
        );
        let col = plan(&root, &DataType::Struct(fields), false, "", &mut names)?;
        let Kind::Struct(columns) = col.kind else {
            return None;
        };
        Some(DirectDecoder {
            schema,
            columns,
            rows: 0,
            strict: false,
        })
    }

    /// The Arrow schema of the batches.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Whether no row is waiting (none decoded since the last [`Self::finish`]).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Whether each string is checked for UTF-8 as it is read (see [`Finished::NotUtf8`]).
    pub fn set_strict(&mut self, strict: bool) {
        self.strict = strict;
    }

    /// Drops the rows decoded so far.
    pub fn clear(&mut self) {
        self.columns.iter_mut().for_each(|col| col.truncate(0));
        self.rows = 0;
    }

    /// Decodes one message body as a row. A bad one leaves the columns as they were.
    pub fn append(&mut self, body: &[u8]) -> Result<(), Fail> {
        let mut c = Cursor {
            buf: body,
            pos: 0,
            strict: self.strict,
        };
        let read = self.columns.iter_mut().try_for_each(|col| col.read(&mut c));
        let outcome = read.and_then(|()| match body.len() - c.pos {
            0 => Ok(()),
            n => Err(Fail::Trailing(n)),
        });
        match outcome {
            Ok(()) => {
                self.rows += 1;
                Ok(())
            }
            Err(e) => {
                let rows = self.rows;
                self.columns.iter_mut().for_each(|col| col.truncate(rows));
                Err(e)
            }
        }
    }

    /// The rows decoded so far, as a batch; the decoder starts again empty, with room for as
    /// many. Unless strict, a string column that is not UTF-8 fails it as
    /// [`Finished::NotUtf8`], the rows kept.
    pub fn finish(&mut self) -> Result<RecordBatch, Finished> {
        if !self.strict && !self.columns.iter().all(Col::utf8_ok) {
            return Err(Finished::NotUtf8);
        }
        let columns = self
            .columns
            .iter_mut()
            .zip(self.schema.fields())
            .map(|(col, f)| col.finish(f.data_type()))
            .collect::<Result<Vec<_>, _>>();
        let rows = std::mem::take(&mut self.rows);
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = columns.and_then(|columns| {
            RecordBatch::try_new_with_options(self.schema(), columns, &options)
                .map_err(|e| format!("assembling the decoded columns: {e}"))
        });
        // After a failure some columns may be finished and others not: start all again.
        batch.map_err(|e| {
            self.clear();
            Finished::Failed(e)
        })
    }
}

/// Why [`DirectDecoder::finish`] gave no batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// A string is not UTF-8: decode the messages again, strict, to find which.
    NotUtf8,
    /// The columns could not be assembled (a bug if it happens: the plan is checked).
    Failed(String),
}

/// Named types seen so far (records and enums), by full name, for references by name.
#[derive(Default)]
struct Names(std::collections::HashMap<String, Value>);

/// Plans the column for Avro type `avro` (in namespace `ns`) that arrow-avro decodes to `dt`,
/// nullable or not; `None` when they don't match as expected or the type is not covered.
fn plan(avro: &Value, dt: &DataType, nullable: bool, ns: &str, names: &mut Names) -> Option<Col> {
    if let Value::Array(branches) = avro {
        // A union: only `null` and one other type, which arrow-avro makes a nullable column.
        let [a, b] = branches.as_slice() else {
            return None;
        };
        let null_branch = match (a.as_str() == Some("null"), b.as_str() == Some("null")) {
            (true, false) => 0,
            (false, true) => 1,
            _ => return None,
        };
        if !nullable {
            return None;
        }
        let inner = if null_branch == 0 { b } else { a };
        let mut col = plan(inner, dt, false, ns, names)?;
        col.nulls = Some((null_branch, BooleanBufferBuilder::new(0)));
        return Some(col);
    }
    if nullable {
        return None;
    }
    let (ty, o) = match avro {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => (o.get("type")?.as_str()?, Some(o)),
        _ => return None,
    };
    let logical = o.and_then(|o| o.get("logicalType")).and_then(Value::as_str);
    let prim = |kind: Kind| Some(Col::new(kind));
    match (ty, logical, dt) {
        ("boolean", _, DataType::Boolean) => prim(Kind::Bool(BooleanBufferBuilder::new(0))),
        ("int", None, DataType::Int32)
        | ("int", Some("date"), DataType::Date32)
        | ("int", Some("time-millis"), DataType::Time32(TimeUnit::Millisecond)) => {
            prim(Kind::Int(Vec::new()))
        }
        ("long", None, DataType::Int64)
        | ("long", Some("time-micros"), DataType::Time64(TimeUnit::Microsecond))
        | ("long", Some("timestamp-millis"), DataType::Timestamp(TimeUnit::Millisecond, Some(_)))
        | ("long", Some("timestamp-micros"), DataType::Timestamp(TimeUnit::Microsecond, Some(_)))
        | ("long", Some("timestamp-nanos"), DataType::Timestamp(TimeUnit::Nanosecond, Some(_)))
        | (
            "long",
            Some("local-timestamp-millis"),
            DataType::Timestamp(TimeUnit::Millisecond, None),
        )
        | (
            "long",
            Some("local-timestamp-micros"),
            DataType::Timestamp(TimeUnit::Microsecond, None),
        )
        | (
            "long",
            Some("local-timestamp-nanos"),
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        ) => prim(Kind::Long(Vec::new())),
        ("float", None, DataType::Float32) => prim(Kind::Float(Vec::new())),
        ("double", None, DataType::Float64) => prim(Kind::Double(Vec::new())),
        ("string", None, DataType::Utf8) => prim(Kind::bytes(true)),
        ("bytes", None, DataType::Binary) => prim(Kind::bytes(false)),
        ("record", _, DataType::Struct(fields)) => {
            let o = o?;
            let ns = o.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            let name = o.get("name")?.as_str()?;
            let full = qualify(name, ns);
            // Fields may refer to this record by name: a recursive type, which is not covered.
            names.0.insert(full.clone(), Value::Null);
            let avro_fields = o.get("fields")?.as_array()?;
            if avro_fields.len() != fields.len() {
                return None;
            }
            let inner_ns = full.rsplit_once('.').map_or("", |(ns, _)| ns);
            let children = avro_fields
                .iter()
                .zip(fields.iter())
                .map(|(af, f)| {
                    (af.get("name")?.as_str()? == f.name()).then_some(())?;
                    plan(
                        af.get("type")?,
                        f.data_type(),
                        f.is_nullable(),
                        inner_ns,
                        names,
                    )
                })
                .collect::<Option<Vec<_>>>()?;
            names.0.insert(full, avro.clone());
            prim(Kind::Struct(children))
        }
        ("enum", _, DataType::Dictionary(k, v))
            if **k == DataType::Int32 && **v == DataType::Utf8 =>
        {
            let o = o?;
            let symbols = o
                .get("symbols")?
                .as_array()?
                .iter()
                .map(|s| s.as_str())
                .collect::<Option<Vec<_>>>()?;
            if symbols.is_empty() {
                return None;
            }
            let ns = o.get("namespace").and_then(Value::as_str).unwrap_or(ns);
            names
                .0
                .insert(qualify(o.get("name")?.as_str()?, ns), avro.clone());
            prim(Kind::Enum {
                keys: Vec::new(),
                symbols: Arc::new(StringArray::from(symbols)),
            })
        }
        ("array", _, DataType::List(item)) => {
            let items = plan(
                o?.get("items")?,
                item.data_type(),
                item.is_nullable(),
                ns,
                names,
            )?;
            // A block's count is checked against the bytes left, so each item must take one.
            let min = items.min_bytes();
            (min > 0).then_some(())?;
            prim(Kind::List {
                offsets: vec![0],
                items: Box::new(items),
                min,
                field: Arc::clone(item),
            })
        }
        ("map", _, DataType::Map(entries, false)) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return None;
            };
            let [k, v] = kv.iter().collect::<Vec<_>>()[..] else {
                return None;
            };
            if k.data_type() != &DataType::Utf8 || k.is_nullable() {
                return None;
            }
            let values = plan(o?.get("values")?, v.data_type(), v.is_nullable(), ns, names)?;
            prim(Kind::Map {
                offsets: vec![0],
                keys: Box::new(Col::new(Kind::bytes(true))),
                min: 1 + values.min_bytes(),
                values: Box::new(values),
                entries: Arc::clone(entries),
            })
        }
        (name, None, _) => {
            // A reference to a named type defined earlier.
            let def = names
                .0
                .get(&qualify(name, ns))
                .or_else(|| names.0.get(name))?
                .clone();
            if def.is_null() {
                return None;
            }
            plan(&def, dt, false, ns, names)
        }
        _ => None,
    }
}

/// A column being built, and for a union with `null`, the branch that is null and the validity.
struct Col {
    kind: Kind,
    nulls: Option<(i64, BooleanBufferBuilder)>,
}

enum Kind {
    Bool(BooleanBufferBuilder),
    /// `int`, and the logical types on it (date, time-millis).
    Int(Vec<i32>),
    /// `long`, and the logical types on it (timestamps, time-micros).
    Long(Vec<i64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Bytes {
        offsets: Vec<i32>,
        data: Vec<u8>,
        utf8: bool,
    },
    Enum {
        keys: Vec<i32>,
        symbols: ArrayRef,
    },
    Struct(Vec<Col>),
    List {
        offsets: Vec<i32>,
        items: Box<Col>,
        /// The fewest bytes an item takes.
        min: usize,
        field: FieldRef,
    },
    Map {
        offsets: Vec<i32>,
        keys: Box<Col>,
        values: Box<Col>,
        /// The fewest bytes an entry takes.
        min: usize,
        entries: FieldRef,
    },
}

impl Kind {
    fn bytes(utf8: bool) -> Kind {
        Kind::Bytes {
            offsets: vec![0],
            data: Vec::new(),
            utf8,
        }
    }
}

impl Col {
    fn new(kind: Kind) -> Col {
        Col { kind, nulls: None }
    }

    /// The fewest bytes a value takes on the wire.
    fn min_bytes(&self) -> usize {
        if self.nulls.is_some() {
            return 1;
        }
        match &self.kind {
            Kind::Bool(_) | Kind::Int(_) | Kind::Long(_) | Kind::Bytes { .. } => 1,
            Kind::Enum { .. } | Kind::List { .. } | Kind::Map { .. } => 1,
            Kind::Float(_) => 4,
            Kind::Double(_) => 8,
            Kind::Struct(children) => children.iter().map(Col::min_bytes).sum(),
        }
    }

    fn read(&mut self, c: &mut Cursor) -> Result<(), Fail> {
        if let Some((null_branch, valid)) = &mut self.nulls {
            let branch = c.long()?;
            if branch == *null_branch {
                valid.append(false);
                self.kind.push_default();
                return Ok(());
            }
            if branch != 1 - *null_branch {
                return Err(invalid(format!(
                    "union branch {branch} out of range: the union has 2"
                )));
            }
            valid.append(true);
        }
        self.kind.read(c)
    }

    /// A null's place: a null if the column can hold one, else the type's default.
    fn push_null(&mut self) {
        if let Some((_, valid)) = &mut self.nulls {
            valid.append(false);
        }
        self.kind.push_default();
    }

    fn truncate(&mut self, rows: usize) {
        if let Some((_, valid)) = &mut self.nulls {
            valid.truncate(rows);
        }
        self.kind.truncate(rows);
    }

    /// Whether every string in the column (and those under it) is UTF-8: the data checked
    /// whole, and each string's start found on a character's first byte.
    fn utf8_ok(&self) -> bool {
        match &self.kind {
            Kind::Bytes {
                offsets,
                data,
                utf8: true,
            } => {
                std::str::from_utf8(data).is_ok()
                    && offsets
                        .iter()
                        .all(|&o| data.get(o as usize).is_none_or(|&b| (b as i8) >= -0x40))
            }
            Kind::Struct(children) => children.iter().all(Col::utf8_ok),
            Kind::List { items, .. } => items.utf8_ok(),
            Kind::Map { keys, values, .. } => keys.utf8_ok() && values.utf8_ok(),
            _ => true,
        }
    }

    fn finish(&mut self, dt: &DataType) -> Result<ArrayRef, String> {
        let nulls = self
            .nulls
            .as_mut()
            .map(|(_, v)| NullBuffer::new(v.finish()));
        self.kind.finish(dt, nulls)
    }
}

impl Kind {
    fn read(&mut self, c: &mut Cursor) -> Result<(), Fail> {
        match self {
            Kind::Bool(b) => b.append(c.byte()? != 0),
            Kind::Int(v) => v.push(c.int()?),
            Kind::Long(v) => v.push(c.long()?),
            Kind::Float(v) => v.push(f32::from_le_bytes(c.array()?)),
            Kind::Double(v) => v.push(f64::from_le_bytes(c.array()?)),
            Kind::Bytes {
                offsets,
                data,
                utf8,
            } => {
                let bytes = c.bytes()?;
                if *utf8 && c.strict {
                    std::str::from_utf8(bytes)
                        .map_err(|e| invalid(format!("a string is not UTF-8: {e}")))?;
                }
                data.extend_from_slice(bytes);
                offsets.push(offset(data.len())?);
            }
            Kind::Enum { keys, symbols } => {
                let i = c.int()?;
                if i < 0 || i as usize >= symbols.len() {
                    return Err(invalid(format!(
                        "enum index {i} out of range: the enum has {} symbols",
                        symbols.len()
                    )));
                }
                keys.push(i);
            }
            Kind::Struct(children) => {
                for child in children {
                    child.read(c)?;
                }
            }
            Kind::List {
                offsets,
                items,
                min,
                ..
            } => {
                let len = read_blocks(c, *min, |c| items.read(c))?;
                push_len(offsets, len)?;
            }
            Kind::Map {
                offsets,
                keys,
                values,
                min,
                ..
            } => {
                let len = read_blocks(c, *min, |c| {
                    keys.read(c)?;
                    values.read(c)
                })?;
                push_len(offsets, len)?;
            }
        }
        Ok(())
    }

    fn push_default(&mut self) {
        match self {
            Kind::Bool(b) => b.append(false),
            Kind::Int(v) => v.push(0),
            Kind::Long(v) => v.push(0),
            Kind::Float(v) => v.push(0.0),
            Kind::Double(v) => v.push(0.0),
            Kind::Enum { keys, .. } => keys.push(0),
            Kind::Bytes { offsets, .. }
            | Kind::List { offsets, .. }
            | Kind::Map { offsets, .. } => offsets.push(offsets.last().copied().unwrap_or(0)),
            Kind::Struct(children) => children.iter_mut().for_each(Col::push_null),
        }
    }

    fn truncate(&mut self, rows: usize) {
        match self {
            Kind::Bool(b) => b.truncate(rows),
            Kind::Int(v) => v.truncate(rows),
            Kind::Long(v) => v.truncate(rows),
            Kind::Float(v) => v.truncate(rows),
            Kind::Double(v) => v.truncate(rows),
            Kind::Enum { keys, .. } => keys.truncate(rows),
            Kind::Bytes { offsets, data, .. } => {
                offsets.truncate(rows + 1);
                data.truncate(offsets.last().copied().unwrap_or(0) as usize);
            }
            Kind::Struct(children) => children.iter_mut().for_each(|c| c.truncate(rows)),
            Kind::List { offsets, items, .. } => {
                offsets.truncate(rows + 1);
                items.truncate(offsets.last().copied().unwrap_or(0) as usize);
            }
            Kind::Map {
                offsets,
                keys,
                values,
                ..
            } => {
                offsets.truncate(rows + 1);
                let n = offsets.last().copied().unwrap_or(0) as usize;
                keys.truncate(n);
                values.truncate(n);
            }
        }
    }

    fn finish(&mut self, dt: &DataType, nulls: Option<NullBuffer>) -> Result<ArrayRef, String> {
        let unexpected = || format!("planned column does not match its type {dt}");
        Ok(match self {
            Kind::Bool(b) => Arc::new(BooleanArray::new(b.finish(), nulls)),
            Kind::Int(v) => {
                let v = take(v);
                match dt {
                    DataType::Int32 => Arc::new(Int32Array::new(v, nulls)),
                    DataType::Date32 => Arc::new(Date32Array::new(v, nulls)),
                    DataType::Time32(TimeUnit::Millisecond) => {
                        Arc::new(Time32MillisecondArray::new(v, nulls))
                    }
                    _ => return Err(unexpected()),
                }
            }
            Kind::Long(v) => {
                let v = take(v);
                match dt {
                    DataType::Int64 => Arc::new(Int64Array::new(v, nulls)),
                    DataType::Time64(TimeUnit::Microsecond) => {
                        Arc::new(Time64MicrosecondArray::new(v, nulls))
                    }
                    DataType::Timestamp(TimeUnit::Millisecond, tz) => Arc::new(
                        TimestampMillisecondArray::new(v, nulls).with_timezone_opt(tz.clone()),
                    ),
                    DataType::Timestamp(TimeUnit::Microsecond, tz) => Arc::new(
                        TimestampMicrosecondArray::new(v, nulls).with_timezone_opt(tz.clone()),
                    ),
                    DataType::Timestamp(TimeUnit::Nanosecond, tz) => Arc::new(
                        TimestampNanosecondArray::new(v, nulls).with_timezone_opt(tz.clone()),
                    ),
                    _ => return Err(unexpected()),
                }
            }
            Kind::Float(v) => Arc::new(Float32Array::new(take(v), nulls)),
            Kind::Double(v) => Arc::new(Float64Array::new(take(v), nulls)),
            Kind::Bytes {
                offsets,
                data,
                utf8,
            } => {
                let offsets = take_offsets(offsets);
                let data =
                    Buffer::from_vec(std::mem::replace(data, Vec::with_capacity(data.len())));
                if *utf8 {
                    // SAFETY: the data was checked to be UTF-8, and each offset to fall on a
                    // character's start (`utf8_ok`, or each value as read when strict); the
                    // offsets were pushed as the data grew: they start at 0, never decrease
                    // and end at its length.
                    Arc::new(unsafe { StringArray::new_unchecked(offsets, data, nulls) })
                } else {
                    Arc::new(BinaryArray::new(offsets, data, nulls))
                }
            }
            Kind::Enum { keys, symbols } => {
                let keys = Int32Array::new(take(keys), nulls);
                Arc::new(
                    DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(symbols))
                        .map_err(|e| e.to_string())?,
                )
            }
            Kind::Struct(children) => {
                let DataType::Struct(fields) = dt else {
                    return Err(unexpected());
                };
                let arrays = children
                    .iter_mut()
                    .zip(fields.iter())
                    .map(|(c, f)| c.finish(f.data_type()))
                    .collect::<Result<Vec<_>, _>>()?;
                Arc::new(
                    StructArray::try_new(fields.clone(), arrays, nulls)
                        .map_err(|e| e.to_string())?,
                )
            }
            Kind::List {
                offsets,
                items,
                field,
                ..
            } => {
                let values = items.finish(field.data_type())?;
                Arc::new(
                    ListArray::try_new(Arc::clone(field), take_offsets(offsets), values, nulls)
                        .map_err(|e| e.to_string())?,
                )
            }
            Kind::Map {
                offsets,
                keys,
                values,
                entries,
                ..
            } => {
                let DataType::Struct(kv) = entries.data_type() else {
                    return Err(unexpected());
                };
                let k = keys.finish(&DataType::Utf8)?;
                let v = values.finish(kv[1].data_type())?;
                let entries_array = StructArray::try_new(kv.clone(), vec![k, v], None)
                    .map_err(|e| e.to_string())?;
                Arc::new(
                    MapArray::try_new(
                        Arc::clone(entries),
                        take_offsets(offsets),
                        entries_array,
                        nulls,
                        false,
                    )
                    .map_err(|e| e.to_string())?,
                )
            }
        })
    }
}

/// The finished values; `v` starts again with room for as many (batches come alike).
fn take<T>(v: &mut Vec<T>) -> ScalarBuffer<T>
where
    T: arrow_buffer::ArrowNativeType,
{
    ScalarBuffer::from(std::mem::replace(v, Vec::with_capacity(v.len())))
}

fn take_offsets(offsets: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let mut next = Vec::with_capacity(offsets.len());
    next.push(0);
    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, next)))
}

#[inline]
fn offset(len: usize) -> Result<i32, Fail> {
    i32::try_from(len).map_err(|_| invalid("a column grew past 2 GiB in one batch".into()))
}

/// Appends the offset of a list or map value of `len` entries after the last one.
fn push_len(offsets: &mut Vec<i32>, len: usize) -> Result<(), Fail> {
    let last = offsets.last().copied().unwrap_or(0) as usize;
    offsets.push(offset(last + len)?);
    Ok(())
}

/// Reads an array's or a map's blocks, calling `item` for each item; returns how many there
/// were. A count larger than the bytes left could hold (each item takes at least `min_bytes`)
/// is refused before anything is allocated for it.
fn read_blocks(
    c: &mut Cursor,
    min_bytes: usize,
    mut item: impl FnMut(&mut Cursor) -> Result<(), Fail>,
) -> Result<usize, Fail> {
    let mut total = 0usize;
    loop {
        let mut count = c.long()?;
        if count == 0 {
            return Ok(total);
        }
        if count < 0 {
            count = count.checked_neg().ok_or(Fail::Truncated)?;
            c.long()?; // the block's size in bytes, for readers that skip
        }
        let left = (c.buf.len() - c.pos) as u64;
        if count as u64 > left / min_bytes as u64 {
            return Err(Fail::Truncated);
        }
        for _ in 0..count {
            item(c)?;
        }
        total += count as usize;
    }
}

/// Reads Avro's binary encoding from a message body.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    strict: bool,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn byte(&mut self) -> Result<u8, Fail> {
        let b = *self.buf.get(self.pos).ok_or(Fail::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// A zigzag varint of up to 10 bytes; most are one byte, read in line.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, Fail> {
        match self.buf.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(u64::from(b))
            }
            _ => self.varint_long(),
        }
    }

    #[inline(never)]
    fn varint_long(&mut self) -> Result<u64, Fail> {
        let first = self.byte()?;
        let mut v = u64::from(first & 0x7f);
        let mut shift = 7;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(invalid("a varint longer than 64 bits".into()));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
            shift += 7;
        }
    }

    #[inline]
    fn long(&mut self) -> Result<i64, Fail> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    #[inline]
    fn int(&mut self) -> Result<i32, Fail> {
        let v = u32::try_from(self.varint()?)
            .map_err(|_| invalid("an int's varint is out of range".into()))?;
        Ok((v >> 1) as i32 ^ -((v & 1) as i32))
    }

    #[inline]
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Fail> {
        let end = self.pos.checked_add(N).ok_or(Fail::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Fail::Truncated)?;
        self.pos = end;
        bytes.try_into().map_err(|_| Fail::Truncated)
    }

    #[inline]
    fn bytes(&mut self) -> Result<&'a [u8], Fail> {
        let len = self.long()?;
        let len =
            usize::try_from(len).map_err(|_| invalid(format!("a negative length ({len})")))?;
        let end = self.pos.checked_add(len).ok_or(Fail::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(Fail::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests;
