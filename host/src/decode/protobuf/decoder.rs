//! Wire format straight into Arrow column buffers, one tree node per message field path.
//!
//! Each message is decoded in two steps per level: a scan records, per field, the last value
//! seen (singular scalars), the byte ranges of every occurrence (singular messages, merged by
//! scanning them in order, which is what protobuf's merge means), or appends straight away
//! (repeated values, which concatenate); then an emit writes one row into every column. The
//! buffers are plain vectors, so a message that fails midway is undone by cutting every column
//! back to the row count before it: nothing is copied per message to make that possible.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, DictionaryArray, DurationNanosecondArray, Float32Array,
    Float64Array, Int32Array, Int64Array, ListArray, MapArray, RecordBatch, RecordBatchOptions,
    StringArray, StructArray, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use arrow_buffer::{BooleanBufferBuilder, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow_schema::{DataType, Field as ArrowField, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use prost_reflect::{Kind, MessageDescriptor};

use super::wire::{self, Fail, I32, I64, LEN, MAX_DEPTH, SGROUP, VARINT};
use super::ProtoError;

/// Decodes messages of one type into Arrow record batches.
///
/// Built once per message type (see [`ProtoDecoder::new`]); [`append`](Self::append) one body
/// per message, then [`finish`](Self::finish) a batch; the decoder is then ready for the next.
pub struct ProtoDecoder {
    message: MessageDescriptor,
    schema: SchemaRef,
    root: Node,
}

impl std::fmt::Debug for ProtoDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtoDecoder")
            .field("message", &self.message.full_name())
            .field("rows", &self.root.len)
            .finish()
    }
}

impl ProtoDecoder {
    /// A decoder for `message`. Fails if the type can't be mapped to Arrow (see
    /// [`arrow_schema`](super::arrow_schema)).
    pub fn new(message: MessageDescriptor) -> Result<Self, ProtoError> {
        let root = Node::build(&message, &mut Vec::new())?;
        let schema = Arc::new(Schema::new(root.arrow_fields.clone()));
        Ok(ProtoDecoder {
            message,
            schema,
            root,
        })
    }

    /// The schema of the batches, one column per field in declaration order.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// The message type decoded.
    pub fn message(&self) -> &MessageDescriptor {
        &self.message
    }

    /// Rows appended since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.root.len
    }

    /// Whether no row is pending.
    pub fn is_empty(&self) -> bool {
        self.root.len == 0
    }

    /// Decodes one message body (after any framing) as the next row. On error the pending rows
    /// are left exactly as they were; byte offsets in the error count from the body's start.
    pub fn append(&mut self, body: &[u8]) -> Result<(), ProtoError> {
        let rows = self.root.len;
        match self.root.decode_row(body, &[(0, body.len())], 0) {
            Ok(()) => Ok(()),
            Err(fail) => {
                self.root.truncate(rows);
                Err(ProtoError::from_fail(fail))
            }
        }
    }

    /// The rows appended since the last call, as a batch; the decoder starts afresh.
    pub fn finish(&mut self) -> RecordBatch {
        let rows = self.root.len;
        let columns = self.root.finish_columns();
        self.root.len = 0;
        RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            columns,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .expect("columns are built to match the schema")
    }
}

/// The Arrow schema for `message` (see [`arrow_schema`](super::arrow_schema)).
pub(super) fn schema_of(message: &MessageDescriptor) -> Result<Schema, ProtoError> {
    Ok(Schema::new(
        Node::build(message, &mut Vec::new())?.arrow_fields,
    ))
}

/// One message type at one place in the tree: its fields' columns and per-row scratch.
struct Node {
    fields: Vec<Field>,
    arrow_fields: Fields,
    lookup: Lookup,
    /// Per oneof, the member seen last in the current row.
    oneof_current: Vec<Option<usize>>,
    /// Rows in this node's columns.
    len: usize,
}

/// Where the values of a field go.
enum Shape {
    /// One value per row.
    Single,
    /// A list per row: `offsets` into the target's values.
    List,
    /// A map per row: `offsets` into the entries (a key/value node).
    Map,
}

struct Field {
    number: u32,
    name: String,
    shape: Shape,
    /// Encoded as a group (wire types 3/4) rather than length-delimited.
    group: bool,
    /// Validity, for a nullable single field.
    nulls: Option<BooleanBufferBuilder>,
    /// For lists and maps, starting at 0.
    offsets: Vec<i32>,
    target: Target,
    oneof: Option<usize>,
    /// The last value of a single scalar in the current row.
    slot: Slot,
    /// The occurrences of a single message in the current row (merged), or of map entries.
    ranges: Vec<(usize, usize)>,
    /// Map scratch: each entry's key and index, and the entries a later one overrides.
    map_keys: Vec<(Key, u32)>,
    map_drop: Vec<bool>,
}

/// The values a field holds (the elements, for a list).
enum Target {
    Scalar(Values),
    /// Timestamp or Duration, as nanoseconds.
    Time {
        duration: bool,
        values: Vec<i64>,
    },
    /// A wrapper message (`google.protobuf.Int32Value`...) as its scalar.
    Wrapper(Values),
    Message(Box<Node>),
}

/// The last value of a scalar seen in a row.
#[derive(Clone, Copy)]
enum Slot {
    Absent,
    /// A varint or fixed-width value, as read.
    Num(u64),
    /// A string or bytes value, as a byte range of the body.
    Range(usize, usize),
}

/// A map key, for finding repeated keys.
#[derive(Clone, Copy)]
enum Key {
    Num(u64),
    Range(usize, usize),
}

/// Scalar column buffers, one variant per protobuf scalar type (the variant says how to decode).
enum Values {
    Int32(Vec<i32>),
    Sint32(Vec<i32>),
    Sfixed32(Vec<i32>),
    Int64(Vec<i64>),
    Sint64(Vec<i64>),
    Sfixed64(Vec<i64>),
    Uint32(Vec<u32>),
    Fixed32(Vec<u32>),
    Uint64(Vec<u64>),
    Fixed64(Vec<u64>),
    Float(Vec<f32>),
    Double(Vec<f64>),
    Bool(BooleanBufferBuilder),
    Str(ByteCol),
    Bytes(ByteCol),
    Enum(Vec<i32>, Box<EnumDict>),
}

/// Variable-length values: offsets (starting at 0) into data.
struct ByteCol {
    offsets: Vec<i32>,
    data: Vec<u8>,
}

/// An enum's value names: the dictionary of its column.
struct EnumDict {
    /// The declared names, one per number (the first of aliases), in declaration order.
    names: Vec<String>,
    /// The same, as the dictionary of a batch without undeclared numbers.
    array: ArrayRef,
    /// Number -> dictionary key, sorted by number.
    keys: Vec<(i32, i32)>,
    /// The number an absent implicit-presence field has.
    default_number: i32,
}

/// Field number -> index into `fields`.
enum Lookup {
    Dense(Vec<u32>),
    Sorted(Vec<(u32, u32)>),
}

const NONE: u32 = u32::MAX;

impl Lookup {
    fn new(numbers: &[u32]) -> Self {
        let max = numbers.iter().copied().max().unwrap_or(0);
        if max <= 1024 {
            let mut dense = vec![NONE; max as usize + 1];
            for (i, &n) in numbers.iter().enumerate() {
                dense[n as usize] = i as u32;
            }
            Lookup::Dense(dense)
        } else {
            let mut sorted: Vec<(u32, u32)> = numbers
                .iter()
                .enumerate()
                .map(|(i, &n)| (n, i as u32))
                .collect();
            sorted.sort_unstable();
            Lookup::Sorted(sorted)
        }
    }

    #[inline]
    fn get(&self, number: u32) -> Option<usize> {
        match self {
            Lookup::Dense(d) => match d.get(number as usize) {
                Some(&i) if i != NONE => Some(i as usize),
                _ => None,
            },
            Lookup::Sorted(s) => s
                .binary_search_by_key(&number, |&(n, _)| n)
                .ok()
                .map(|i| s[i].1 as usize),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building the tree from a descriptor.

fn unsupported(reason: String) -> ProtoError {
    ProtoError::Unsupported(reason)
}

impl Node {
    /// The node for `msg`; `stack` holds the messages it is nested in, to refuse recursion.
    fn build(msg: &MessageDescriptor, stack: &mut Vec<String>) -> Result<Node, ProtoError> {
        let name = msg.full_name();
        if let Some(at) = stack.iter().position(|s| s == name) {
            let mut cycle = stack[at..].join(" -> ");
            cycle.push_str(" -> ");
            cycle.push_str(name);
            return Err(unsupported(format!(
                "recursive message {cycle} is not supported"
            )));
        }
        if stack.len() >= MAX_DEPTH {
            return Err(unsupported(format!(
                "message {name} is nested deeper than {MAX_DEPTH} levels"
            )));
        }
        stack.push(name.to_string());
        // Declaration order: `fields()` iterates by number.
        let mut fields = Vec::new();
        for raw in &msg.descriptor_proto().field {
            let Some(fd) = msg.get_field(raw.number() as u32) else {
                continue;
            };
            fields.push(Field::build(&fd, stack)?);
        }
        stack.pop();
        let mut oneof_count = 0;
        for f in &fields {
            if let Some(o) = f.oneof {
                oneof_count = oneof_count.max(o + 1);
            }
        }
        Ok(Node::new(fields, oneof_count))
    }

    fn new(fields: Vec<Field>, oneof_count: usize) -> Node {
        let numbers: Vec<u32> = fields.iter().map(|f| f.number).collect();
        let arrow_fields: Fields = fields.iter().map(Field::arrow_field).collect();
        Node {
            lookup: Lookup::new(&numbers),
            fields,
            arrow_fields,
            oneof_current: vec![None; oneof_count],
            len: 0,
        }
    }
}

impl Field {
    fn build(
        fd: &prost_reflect::FieldDescriptor,
        stack: &mut Vec<String>,
    ) -> Result<Field, ProtoError> {
        let (shape, target) = if fd.is_map() {
            let Kind::Message(entry) = fd.kind() else {
                return Err(unsupported(format!(
                    "map field {} has no entry type",
                    fd.full_name()
                )));
            };
            let key = Field::new(
                1,
                "key".into(),
                Shape::Single,
                false,
                false,
                Target::build(&entry.map_entry_key_field().kind(), stack)?,
            );
            let value_fd = entry.map_entry_value_field();
            // Map values are never absent in protobuf: a missing one is its type's default.
            let value = Field::new(
                2,
                "value".into(),
                Shape::Single,
                false,
                value_fd.is_group(),
                Target::build(&value_fd.kind(), stack)?,
            );
            (
                Shape::Map,
                Target::Message(Box::new(Node::new(vec![key, value], 0))),
            )
        } else if fd.is_list() {
            (Shape::List, Target::build(&fd.kind(), stack)?)
        } else {
            (Shape::Single, Target::build(&fd.kind(), stack)?)
        };
        let nullable = matches!(shape, Shape::Single) && fd.supports_presence();
        let mut field = Field::new(
            fd.number(),
            fd.name().to_string(),
            shape,
            nullable,
            fd.is_group(),
            target,
        );
        field.oneof = fd.containing_oneof().filter(|_| nullable).and_then(|o| {
            fd.parent_message()
                .oneofs()
                .position(|x| x.full_name() == o.full_name())
        });
        Ok(field)
    }

    fn new(
        number: u32,
        name: String,
        shape: Shape,
        nullable: bool,
        group: bool,
        target: Target,
    ) -> Field {
        let offsets = match shape {
            Shape::Single => Vec::new(),
            Shape::List | Shape::Map => vec![0],
        };
        Field {
            number,
            name,
            shape,
            group,
            nulls: nullable.then(|| BooleanBufferBuilder::new(0)),
            offsets,
            target,
            oneof: None,
            slot: Slot::Absent,
            ranges: Vec::new(),
            map_keys: Vec::new(),
            map_drop: Vec::new(),
        }
    }

    fn arrow_field(&self) -> ArrowField {
        let data_type = match self.shape {
            Shape::Single => self.target.data_type(),
            Shape::List => DataType::List(Arc::new(ArrowField::new(
                "item",
                self.target.data_type(),
                false,
            ))),
            Shape::Map => DataType::Map(self.entries_field(), false),
        };
        ArrowField::new(self.name.clone(), data_type, self.nulls.is_some())
    }

    fn entries_field(&self) -> FieldRef {
        Arc::new(ArrowField::new("entries", self.target.data_type(), false))
    }
}

const WRAPPERS: [&str; 9] = [
    "google.protobuf.DoubleValue",
    "google.protobuf.FloatValue",
    "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value",
    "google.protobuf.Int32Value",
    "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue",
    "google.protobuf.StringValue",
    "google.protobuf.BytesValue",
];

impl Target {
    fn build(kind: &Kind, stack: &mut Vec<String>) -> Result<Target, ProtoError> {
        Ok(match kind {
            Kind::Message(m) => match m.full_name() {
                "google.protobuf.Timestamp" => Target::Time {
                    duration: false,
                    values: Vec::new(),
                },
                "google.protobuf.Duration" => Target::Time {
                    duration: true,
                    values: Vec::new(),
                },
                w if WRAPPERS.contains(&w) => {
                    let value = m
                        .get_field(1)
                        .ok_or_else(|| unsupported(format!("wrapper {w} has no field 1")))?;
                    Target::Wrapper(Values::new(&value.kind())?)
                }
                _ => Target::Message(Box::new(Node::build(m, stack)?)),
            },
            other => Target::Scalar(Values::new(other)?),
        })
    }

    fn data_type(&self) -> DataType {
        match self {
            Target::Scalar(v) | Target::Wrapper(v) => v.data_type(),
            Target::Time {
                duration: false, ..
            } => DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            Target::Time { duration: true, .. } => DataType::Duration(TimeUnit::Nanosecond),
            Target::Message(node) => DataType::Struct(node.arrow_fields.clone()),
        }
    }

    /// Values held (elements, for a list).
    fn len(&self) -> usize {
        match self {
            Target::Scalar(v) | Target::Wrapper(v) => v.len(),
            Target::Time { values, .. } => values.len(),
            Target::Message(node) => node.len,
        }
    }
}

impl Values {
    fn new(kind: &Kind) -> Result<Values, ProtoError> {
        Ok(match kind {
            Kind::Double => Values::Double(Vec::new()),
            Kind::Float => Values::Float(Vec::new()),
            Kind::Int32 => Values::Int32(Vec::new()),
            Kind::Int64 => Values::Int64(Vec::new()),
            Kind::Uint32 => Values::Uint32(Vec::new()),
            Kind::Uint64 => Values::Uint64(Vec::new()),
            Kind::Sint32 => Values::Sint32(Vec::new()),
            Kind::Sint64 => Values::Sint64(Vec::new()),
            Kind::Fixed32 => Values::Fixed32(Vec::new()),
            Kind::Fixed64 => Values::Fixed64(Vec::new()),
            Kind::Sfixed32 => Values::Sfixed32(Vec::new()),
            Kind::Sfixed64 => Values::Sfixed64(Vec::new()),
            Kind::Bool => Values::Bool(BooleanBufferBuilder::new(0)),
            Kind::String => Values::Str(ByteCol::new()),
            Kind::Bytes => Values::Bytes(ByteCol::new()),
            Kind::Enum(e) => {
                let mut seen: Vec<(i32, i32)> = Vec::new();
                let mut names = Vec::new();
                for v in e.values() {
                    if !seen.iter().any(|&(n, _)| n == v.number()) {
                        seen.push((v.number(), names.len() as i32));
                        names.push(v.name().to_string());
                    }
                }
                seen.sort_unstable();
                Values::Enum(
                    Vec::new(),
                    Box::new(EnumDict {
                        array: Arc::new(StringArray::from(names.clone())),
                        names,
                        keys: seen,
                        default_number: e.default_value().number(),
                    }),
                )
            }
            Kind::Message(m) => {
                return Err(unsupported(format!(
                    "message {} where a scalar was expected",
                    m.full_name()
                )))
            }
        })
    }

    fn data_type(&self) -> DataType {
        match self {
            Values::Int32(_) | Values::Sint32(_) | Values::Sfixed32(_) => DataType::Int32,
            Values::Int64(_) | Values::Sint64(_) | Values::Sfixed64(_) => DataType::Int64,
            Values::Uint32(_) | Values::Fixed32(_) => DataType::UInt32,
            Values::Uint64(_) | Values::Fixed64(_) => DataType::UInt64,
            Values::Float(_) => DataType::Float32,
            Values::Double(_) => DataType::Float64,
            Values::Bool(_) => DataType::Boolean,
            Values::Str(_) => DataType::Utf8,
            Values::Bytes(_) => DataType::Binary,
            Values::Enum(..) => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
        }
    }

    /// The wire type this scalar is encoded with (unpacked).
    fn wire_type(&self) -> u8 {
        match self {
            Values::Int32(_)
            | Values::Sint32(_)
            | Values::Int64(_)
            | Values::Sint64(_)
            | Values::Uint32(_)
            | Values::Uint64(_)
            | Values::Bool(_)
            | Values::Enum(..) => VARINT,
            Values::Sfixed32(_) | Values::Fixed32(_) | Values::Float(_) => I32,
            Values::Sfixed64(_) | Values::Fixed64(_) | Values::Double(_) => I64,
            Values::Str(_) | Values::Bytes(_) => LEN,
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Int32(v) | Values::Sint32(v) | Values::Sfixed32(v) | Values::Enum(v, _) => {
                v.len()
            }
            Values::Int64(v) | Values::Sint64(v) | Values::Sfixed64(v) => v.len(),
            Values::Uint32(v) | Values::Fixed32(v) => v.len(),
            Values::Uint64(v) | Values::Fixed64(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::Bool(b) => b.len(),
            Values::Str(c) | Values::Bytes(c) => c.offsets.len() - 1,
        }
    }
}

impl ByteCol {
    fn new() -> Self {
        ByteCol {
            offsets: vec![0],
            data: Vec::new(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding.

impl Node {
    /// Decodes the concatenation of `ranges` of `buf` (one message, merged) as one row.
    fn decode_row(
        &mut self,
        buf: &[u8],
        ranges: &[(usize, usize)],
        depth: usize,
    ) -> Result<(), Fail> {
        if depth > MAX_DEPTH {
            let at = ranges.first().map_or(0, |r| r.0);
            return Err(Fail::new(
                at,
                format!("nesting deeper than {MAX_DEPTH} levels"),
            ));
        }
        for f in &mut self.fields {
            f.slot = Slot::Absent;
            f.ranges.clear();
        }
        self.oneof_current.fill(None);
        for &(start, end) in ranges {
            self.scan(buf, start, end, depth)?;
        }
        for f in &mut self.fields {
            let r = f.emit(buf, depth);
            r.map_err(|e| e.in_field(f.number, &f.name))?;
        }
        self.len += 1;
        Ok(())
    }

    /// Reads the fields in `buf[start..end]` into the row's slots (repeated values are appended).
    fn scan(&mut self, buf: &[u8], start: usize, end: usize, depth: usize) -> Result<(), Fail> {
        let buf = buf
            .get(..end)
            .ok_or_else(|| Fail::new(start, "range past the end of the message"))?;
        let mut pos = start;
        while pos < end {
            let tag_pos = pos;
            let (number, wt) = wire::tag(buf, &mut pos)?;
            let Some(i) = self.lookup.get(number) else {
                wire::skip(buf, &mut pos, number, wt, depth)?;
                continue;
            };
            let Some(field) = self.fields.get_mut(i) else {
                continue;
            };
            let r = field.read(buf, &mut pos, tag_pos, wt, depth);
            r.map_err(|e| e.in_field(field.number, &field.name))?;
            if let Some(o) = field.oneof {
                // Setting a oneof member clears the one set before.
                if let Some(prev) = self.oneof_current.get(o).copied().flatten() {
                    if prev != i {
                        if let Some(p) = self.fields.get_mut(prev) {
                            p.slot = Slot::Absent;
                            p.ranges.clear();
                        }
                    }
                }
                if let Some(c) = self.oneof_current.get_mut(o) {
                    *c = Some(i);
                }
            }
        }
        Ok(())
    }

    /// Cuts every column back to `rows` rows.
    fn truncate(&mut self, rows: usize) {
        self.len = rows;
        for f in &mut self.fields {
            f.truncate(rows);
        }
    }
}

impl Field {
    /// Reads one occurrence of this field, its tag already read.
    #[inline]
    fn read(
        &mut self,
        buf: &[u8],
        pos: &mut usize,
        tag_pos: usize,
        wt: u8,
        depth: usize,
    ) -> Result<(), Fail> {
        match (&self.shape, &mut self.target) {
            (Shape::Single, Target::Scalar(values)) => {
                self.slot =
                    read_scalar(values.wire_type(), values.is_str(), buf, pos, tag_pos, wt)?;
                Ok(())
            }
            (Shape::Single | Shape::Map, _) => {
                let range = read_message(self.group, self.number, buf, pos, tag_pos, wt, depth)?;
                self.ranges.push(range);
                Ok(())
            }
            (Shape::List, Target::Scalar(values)) => {
                let expected = values.wire_type();
                if wt == LEN && expected != LEN {
                    // Packed.
                    let (start, end) = wire::len_delimited(buf, pos)?;
                    return values.push_packed(buf, start, end);
                }
                let slot = read_scalar(expected, values.is_str(), buf, pos, tag_pos, wt)?;
                values.push(buf, slot)
            }
            (Shape::List, Target::Message(node)) => {
                let range = read_message(self.group, self.number, buf, pos, tag_pos, wt, depth)?;
                node.decode_row(buf, &[range], depth + 1)
            }
            (Shape::List, Target::Time { duration, values }) => {
                let range = read_message(self.group, self.number, buf, pos, tag_pos, wt, depth)?;
                values.push(read_time(buf, &[range], *duration)?);
                Ok(())
            }
            (Shape::List, Target::Wrapper(values)) => {
                let range = read_message(self.group, self.number, buf, pos, tag_pos, wt, depth)?;
                let slot = read_wrapper(buf, &[range], values)?;
                values.push(buf, slot)
            }
        }
    }

    /// Writes this field's value for the row just scanned.
    fn emit(&mut self, buf: &[u8], depth: usize) -> Result<(), Fail> {
        match self.shape {
            Shape::Single => {
                let present = match &mut self.target {
                    Target::Scalar(values) => {
                        values.push(buf, self.slot)?;
                        !matches!(self.slot, Slot::Absent)
                    }
                    Target::Time { duration, values } => {
                        if self.ranges.is_empty() {
                            values.push(0);
                            false
                        } else {
                            values.push(read_time(buf, &self.ranges, *duration)?);
                            true
                        }
                    }
                    Target::Wrapper(values) => {
                        if self.ranges.is_empty() {
                            values.push(buf, Slot::Absent)?;
                            false
                        } else {
                            let slot = read_wrapper(buf, &self.ranges, values)?;
                            values.push(buf, slot)?;
                            true
                        }
                    }
                    Target::Message(node) => {
                        // Absent: a row of defaults under a null (or, for a map value, empty
                        // message): the children of a struct have a row for each of its rows.
                        node.decode_row(buf, &self.ranges, depth + 1)?;
                        !self.ranges.is_empty()
                    }
                };
                if let Some(nulls) = &mut self.nulls {
                    nulls.append(present);
                }
            }
            Shape::List => push_offset(&mut self.offsets, self.target.len())?,
            Shape::Map => {
                let Target::Message(entries) = &mut self.target else {
                    return Ok(());
                };
                if self.ranges.len() > 1 {
                    drop_repeated_keys(
                        buf,
                        entries,
                        &self.ranges,
                        &mut self.map_keys,
                        &mut self.map_drop,
                    )?;
                    for (i, &range) in self.ranges.iter().enumerate() {
                        if !self.map_drop.get(i).copied().unwrap_or(false) {
                            entries.decode_row(buf, &[range], depth + 1)?;
                        }
                    }
                } else {
                    for &range in &self.ranges {
                        entries.decode_row(buf, &[range], depth + 1)?;
                    }
                }
                push_offset(&mut self.offsets, entries.len)?;
            }
        }
        Ok(())
    }

    fn truncate(&mut self, rows: usize) {
        let values = match self.shape {
            Shape::Single => {
                if let Some(n) = &mut self.nulls {
                    n.truncate(rows);
                }
                rows
            }
            Shape::List | Shape::Map => {
                self.offsets.truncate(rows + 1);
                self.offsets.last().map_or(0, |&o| o as usize)
            }
        };
        match &mut self.target {
            Target::Scalar(v) | Target::Wrapper(v) => v.truncate(values),
            Target::Time { values: v, .. } => v.truncate(values),
            Target::Message(node) => node.truncate(values),
        }
    }
}

/// Marks in `drop` the map entries whose key a later entry repeats (the last one wins).
fn drop_repeated_keys(
    buf: &[u8],
    entries: &Node,
    ranges: &[(usize, usize)],
    keys: &mut Vec<(Key, u32)>,
    drop: &mut Vec<bool>,
) -> Result<(), Fail> {
    let (key_wt, utf8, width) = match entries.fields.first().map(|f| &f.target) {
        Some(Target::Scalar(v)) => (v.wire_type(), v.is_str(), v.key_width()),
        _ => return Ok(()),
    };
    keys.clear();
    for (i, &(start, end)) in ranges.iter().enumerate() {
        let key =
            map_key(buf, start, end, key_wt, utf8, width).map_err(|e| e.in_field(1, "key"))?;
        keys.push((key, i as u32));
    }
    keys.sort_by(|a, b| cmp_key(buf, a.0, b.0).then(a.1.cmp(&b.1)));
    drop.clear();
    drop.resize(ranges.len(), false);
    for pair in keys.windows(2) {
        if cmp_key(buf, pair[0].0, pair[1].0) == Ordering::Equal {
            if let Some(d) = drop.get_mut(pair[0].1 as usize) {
                *d = true;
            }
        }
    }
    Ok(())
}

fn push_offset(offsets: &mut Vec<i32>, len: usize) -> Result<(), Fail> {
    let o = i32::try_from(len)
        .map_err(|_| Fail::new(0, "more than 2^31 list or map elements in one batch"))?;
    offsets.push(o);
    Ok(())
}

/// Reads a scalar's value after checking its wire type.
#[inline]
fn read_scalar(
    expected: u8,
    utf8: bool,
    buf: &[u8],
    pos: &mut usize,
    tag_pos: usize,
    wt: u8,
) -> Result<Slot, Fail> {
    if wt != expected {
        return Err(wire::wrong_wire_type(tag_pos, wt, expected));
    }
    Ok(match wt {
        VARINT => Slot::Num(wire::varint(buf, pos)?),
        I64 => Slot::Num(wire::fixed64(buf, pos)?),
        I32 => Slot::Num(u64::from(wire::fixed32(buf, pos)?)),
        _ => {
            let (s, e) = wire::len_delimited(buf, pos)?;
            if utf8 {
                check_utf8(buf, s, e)?;
            }
            Slot::Range(s, e)
        }
    })
}

/// Fails unless `buf[s..e]` is UTF-8 (every string occurrence is checked, overridden or not).
fn check_utf8(buf: &[u8], s: usize, e: usize) -> Result<(), Fail> {
    let bytes = buf
        .get(s..e)
        .ok_or_else(|| Fail::new(s, "range past the end of the message"))?;
    match std::str::from_utf8(bytes) {
        Ok(_) => Ok(()),
        Err(err) => Err(Fail::new(
            s + err.valid_up_to(),
            "invalid UTF-8 in a string",
        )),
    }
}

/// Reads an embedded message (or group) occurrence: the byte range of its contents.
#[inline]
fn read_message(
    group: bool,
    number: u32,
    buf: &[u8],
    pos: &mut usize,
    tag_pos: usize,
    wt: u8,
    depth: usize,
) -> Result<(usize, usize), Fail> {
    match (group, wt) {
        (false, LEN) => wire::len_delimited(buf, pos),
        (true, SGROUP) => {
            let start = *pos;
            let end = wire::group(buf, pos, number, depth + 1)?;
            Ok((start, end))
        }
        _ => Err(wire::wrong_wire_type(
            tag_pos,
            wt,
            if group { SGROUP } else { LEN },
        )),
    }
}

/// Scans the merged occurrences of a small well-known message, calling `f` for each field.
fn scan_small(
    buf: &[u8],
    ranges: &[(usize, usize)],
    mut f: impl FnMut(u32, u8, usize, &[u8], &mut usize) -> Result<bool, Fail>,
) -> Result<(), Fail> {
    for &(start, end) in ranges {
        let buf = buf
            .get(..end)
            .ok_or_else(|| Fail::new(start, "range past the end of the message"))?;
        let mut pos = start;
        while pos < end {
            let tag_pos = pos;
            let (number, wt) = wire::tag(buf, &mut pos)?;
            if !f(number, wt, tag_pos, buf, &mut pos)? {
                wire::skip(buf, &mut pos, number, wt, 0)?;
            }
        }
    }
    Ok(())
}

/// A Timestamp or Duration (`seconds` = 1, `nanos` = 2) as nanoseconds; absent = 0.
fn read_time(buf: &[u8], ranges: &[(usize, usize)], duration: bool) -> Result<i64, Fail> {
    let mut seconds = 0i64;
    let mut nanos = 0i32;
    let at = ranges.first().map_or(0, |r| r.0);
    scan_small(buf, ranges, |number, wt, tag_pos, buf, pos| {
        if number != 1 && number != 2 {
            return Ok(false);
        }
        let Slot::Num(v) = read_scalar(VARINT, false, buf, pos, tag_pos, wt)? else {
            return Ok(true);
        };
        if number == 1 {
            seconds = v as i64;
        } else {
            nanos = v as i32;
        }
        Ok(true)
    })?;
    seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(i64::from(nanos)))
        .ok_or_else(|| {
            let what = if duration { "duration" } else { "timestamp" };
            Fail::new(
                at,
                format!(
                    "{what} of {seconds} s {nanos} ns does not fit 64-bit nanoseconds \
                     (about ±292 years{})",
                    if duration { "" } else { " around 1970" }
                ),
            )
        })
}

/// A wrapper message's `value` (field 1); absent = the default.
fn read_wrapper(buf: &[u8], ranges: &[(usize, usize)], values: &Values) -> Result<Slot, Fail> {
    let (expected, utf8) = (values.wire_type(), values.is_str());
    let mut slot = Slot::Absent;
    scan_small(buf, ranges, |number, wt, tag_pos, buf, pos| {
        if number != 1 {
            return Ok(false);
        }
        slot = read_scalar(expected, utf8, buf, pos, tag_pos, wt)?;
        Ok(true)
    })?;
    Ok(slot)
}

/// The key (field 1) of a map entry, normalised so equal keys compare equal.
fn map_key(
    buf: &[u8],
    start: usize,
    end: usize,
    expected: u8,
    utf8: bool,
    narrow: KeyWidth,
) -> Result<Key, Fail> {
    let mut key = match expected {
        LEN => Key::Range(0, 0),
        _ => Key::Num(0),
    };
    scan_small(buf, &[(start, end)], |number, wt, tag_pos, buf, pos| {
        if number != 1 {
            return Ok(false);
        }
        key = match read_scalar(expected, utf8, buf, pos, tag_pos, wt)? {
            Slot::Num(v) => Key::Num(match narrow {
                KeyWidth::Bits32 => u64::from(v as u32),
                KeyWidth::Bool => u64::from(v != 0),
                KeyWidth::Bits64 => v,
            }),
            Slot::Range(s, e) => Key::Range(s, e),
            Slot::Absent => key,
        };
        Ok(true)
    })?;
    Ok(key)
}

fn cmp_key(buf: &[u8], a: Key, b: Key) -> Ordering {
    match (a, b) {
        (Key::Num(x), Key::Num(y)) => x.cmp(&y),
        (Key::Range(s1, e1), Key::Range(s2, e2)) => buf.get(s1..e1).cmp(&buf.get(s2..e2)),
        (Key::Num(_), Key::Range(..)) => Ordering::Less,
        (Key::Range(..), Key::Num(_)) => Ordering::Greater,
    }
}

/// How much of a varint a map key type keeps.
#[derive(Clone, Copy)]
enum KeyWidth {
    Bits32,
    Bits64,
    Bool,
}

impl Values {
    fn is_str(&self) -> bool {
        matches!(self, Values::Str(_))
    }

    fn key_width(&self) -> KeyWidth {
        match self {
            Values::Int32(_)
            | Values::Sint32(_)
            | Values::Sfixed32(_)
            | Values::Uint32(_)
            | Values::Fixed32(_)
            | Values::Float(_)
            | Values::Enum(..) => KeyWidth::Bits32,
            Values::Bool(_) => KeyWidth::Bool,
            _ => KeyWidth::Bits64,
        }
    }

    /// Appends a value as read (or the type's default, for `Slot::Absent`).
    #[inline]
    fn push(&mut self, buf: &[u8], slot: Slot) -> Result<(), Fail> {
        let v = match slot {
            Slot::Num(v) => v,
            Slot::Absent => match self {
                Values::Enum(values, dict) => {
                    values.push(dict.default_number);
                    return Ok(());
                }
                Values::Str(c) | Values::Bytes(c) => return c.push(&[], 0),
                _ => 0,
            },
            Slot::Range(s, e) => {
                let bytes = buf
                    .get(s..e)
                    .ok_or_else(|| Fail::new(s, "range past the end of the message"))?;
                return match self {
                    // Strings were checked for UTF-8 when read (`read_scalar`).
                    Values::Str(c) | Values::Bytes(c) => c.push(bytes, s),
                    // Wire types are checked before a value is read, so this is not reached.
                    _ => Err(Fail::new(s, "length-delimited value for a numeric field")),
                };
            }
        };
        self.push_num(v);
        Ok(())
    }

    /// Appends a varint or fixed-width value, converted per the protobuf type.
    #[inline]
    fn push_num(&mut self, v: u64) {
        match self {
            Values::Int32(x) => x.push(v as i32),
            Values::Sint32(x) => x.push(wire::zigzag32(v as u32)),
            Values::Sfixed32(x) => x.push(v as u32 as i32),
            Values::Int64(x) | Values::Sfixed64(x) => x.push(v as i64),
            Values::Sint64(x) => x.push(wire::zigzag64(v)),
            Values::Uint32(x) | Values::Fixed32(x) => x.push(v as u32),
            Values::Uint64(x) | Values::Fixed64(x) => x.push(v),
            Values::Float(x) => x.push(f32::from_bits(v as u32)),
            Values::Double(x) => x.push(f64::from_bits(v)),
            Values::Bool(x) => x.append(v != 0),
            Values::Enum(x, _) => x.push(v as i32),
            // Strings never take a number (wire types are checked first); keep rows aligned.
            Values::Str(c) | Values::Bytes(c) => {
                let end = c.offsets.last().copied().unwrap_or(0);
                c.offsets.push(end);
            }
        }
    }

    /// Appends the elements of a packed repeated field, `buf[start..end]`.
    fn push_packed(&mut self, buf: &[u8], start: usize, end: usize) -> Result<(), Fail> {
        let buf = buf
            .get(..end)
            .ok_or_else(|| Fail::new(start, "range past the end of the message"))?;
        let mut pos = start;
        match self.wire_type() {
            VARINT => {
                while pos < end {
                    let v = wire::varint(buf, &mut pos)?;
                    self.push_num(v);
                }
            }
            width @ (I32 | I64) => {
                let size = if width == I32 { 4 } else { 8 };
                if !(end - start).is_multiple_of(size) {
                    return Err(Fail::new(
                        start,
                        format!("packed length {} is not a multiple of {size}", end - start),
                    ));
                }
                self.reserve((end - start) / size);
                while pos < end {
                    let v = if size == 4 {
                        u64::from(wire::fixed32(buf, &mut pos)?)
                    } else {
                        wire::fixed64(buf, &mut pos)?
                    };
                    self.push_num(v);
                }
            }
            _ => return Err(Fail::new(start, "strings and bytes can't be packed")),
        }
        Ok(())
    }

    /// Room for `n` more values (`n` is bounded by the bytes they are read from).
    fn reserve(&mut self, n: usize) {
        match self {
            Values::Sfixed32(x) => x.reserve(n),
            Values::Sfixed64(x) => x.reserve(n),
            Values::Fixed32(x) => x.reserve(n),
            Values::Fixed64(x) => x.reserve(n),
            Values::Float(x) => x.reserve(n),
            Values::Double(x) => x.reserve(n),
            _ => {}
        }
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Values::Int32(v) | Values::Sint32(v) | Values::Sfixed32(v) | Values::Enum(v, _) => {
                v.truncate(n)
            }
            Values::Int64(v) | Values::Sint64(v) | Values::Sfixed64(v) => v.truncate(n),
            Values::Uint32(v) | Values::Fixed32(v) => v.truncate(n),
            Values::Uint64(v) | Values::Fixed64(v) => v.truncate(n),
            Values::Float(v) => v.truncate(n),
            Values::Double(v) => v.truncate(n),
            Values::Bool(b) => b.truncate(n),
            Values::Str(c) | Values::Bytes(c) => {
                c.offsets.truncate(n + 1);
                let end = c.offsets.last().map_or(0, |&o| o as usize);
                c.data.truncate(end);
            }
        }
    }
}

impl ByteCol {
    #[inline]
    fn push(&mut self, bytes: &[u8], at: usize) -> Result<(), Fail> {
        let end = i32::try_from(self.data.len() + bytes.len()).map_err(|_| {
            Fail::new(
                at,
                "more than 2 GiB of string or bytes data in one column of a batch",
            )
        })?;
        self.data.extend_from_slice(bytes);
        self.offsets.push(end);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Finishing: buffers to arrays, handing the vectors over without copying.

/// Takes a vector, leaving an empty one with the same capacity for the next batch.
fn take<T>(v: &mut Vec<T>) -> Vec<T> {
    std::mem::replace(v, Vec::with_capacity(v.len()))
}

fn take_offsets(v: &mut Vec<i32>) -> OffsetBuffer<i32> {
    let mut next = Vec::with_capacity(v.len());
    next.push(0);
    OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(v, next)))
}

fn take_nulls(b: &mut BooleanBufferBuilder) -> Option<NullBuffer> {
    let nulls = NullBuffer::new(b.finish());
    (nulls.null_count() > 0).then_some(nulls)
}

impl Node {
    fn finish_columns(&mut self) -> Vec<ArrayRef> {
        self.fields.iter_mut().map(Field::finish).collect()
    }

    fn finish_struct(&mut self, nulls: Option<NullBuffer>) -> ArrayRef {
        let len = self.len;
        self.len = 0;
        let columns = self.finish_columns();
        Arc::new(
            StructArray::try_new_with_length(self.arrow_fields.clone(), columns, nulls, len)
                .expect("struct children are built with one row per struct row"),
        )
    }
}

impl Field {
    fn finish(&mut self) -> ArrayRef {
        match self.shape {
            Shape::Single => {
                let nulls = self.nulls.as_mut().and_then(take_nulls);
                self.target.finish(nulls)
            }
            Shape::List => {
                let offsets = take_offsets(&mut self.offsets);
                let item = Arc::new(ArrowField::new("item", self.target.data_type(), false));
                let values = self.target.finish(None);
                Arc::new(ListArray::new(item, offsets, values, None))
            }
            Shape::Map => {
                let offsets = take_offsets(&mut self.offsets);
                let entries_field = self.entries_field();
                let Target::Message(node) = &mut self.target else {
                    unreachable!("a map's target is its entry node")
                };
                let len = node.len;
                node.len = 0;
                let columns = node.finish_columns();
                let entries =
                    StructArray::try_new_with_length(node.arrow_fields.clone(), columns, None, len)
                        .expect("map entries have one key and one value per entry");
                Arc::new(MapArray::new(entries_field, offsets, entries, None, false))
            }
        }
    }
}

impl Target {
    fn finish(&mut self, nulls: Option<NullBuffer>) -> ArrayRef {
        match self {
            Target::Scalar(v) | Target::Wrapper(v) => v.finish(nulls),
            Target::Time {
                duration: false,
                values,
            } => Arc::new(
                TimestampNanosecondArray::new(take(values).into(), nulls).with_timezone("UTC"),
            ),
            Target::Time {
                duration: true,
                values,
            } => Arc::new(DurationNanosecondArray::new(take(values).into(), nulls)),
            Target::Message(node) => node.finish_struct(nulls),
        }
    }
}

impl Values {
    fn finish(&mut self, nulls: Option<NullBuffer>) -> ArrayRef {
        match self {
            Values::Int32(v) | Values::Sint32(v) | Values::Sfixed32(v) => {
                Arc::new(Int32Array::new(take(v).into(), nulls))
            }
            Values::Int64(v) | Values::Sint64(v) | Values::Sfixed64(v) => {
                Arc::new(Int64Array::new(take(v).into(), nulls))
            }
            Values::Uint32(v) | Values::Fixed32(v) => {
                Arc::new(UInt32Array::new(take(v).into(), nulls))
            }
            Values::Uint64(v) | Values::Fixed64(v) => {
                Arc::new(UInt64Array::new(take(v).into(), nulls))
            }
            Values::Float(v) => Arc::new(Float32Array::new(take(v).into(), nulls)),
            Values::Double(v) => Arc::new(Float64Array::new(take(v).into(), nulls)),
            Values::Bool(b) => Arc::new(BooleanArray::new(b.finish(), nulls)),
            Values::Str(c) => {
                let (offsets, data) = c.take();
                Arc::new(StringArray::new(offsets, data, nulls))
            }
            Values::Bytes(c) => {
                let (offsets, data) = c.take();
                Arc::new(BinaryArray::new(offsets, data, nulls))
            }
            Values::Enum(v, dict) => dict.finish(take(v), nulls),
        }
    }
}

impl ByteCol {
    fn take(&mut self) -> (OffsetBuffer<i32>, Buffer) {
        let offsets = take_offsets(&mut self.offsets);
        let data = Buffer::from_vec(take(&mut self.data));
        (offsets, data)
    }
}

impl EnumDict {
    /// Numbers to dictionary keys; numbers not declared get their decimal form as the name.
    fn finish(&self, numbers: Vec<i32>, nulls: Option<NullBuffer>) -> ArrayRef {
        let mut unknown: HashMap<i32, i32> = HashMap::new();
        let mut extra: Vec<String> = Vec::new();
        let declared = self.keys.len() as i32;
        let keys: Vec<i32> = numbers
            .iter()
            .map(
                |&n| match self.keys.binary_search_by_key(&n, |&(num, _)| num) {
                    Ok(i) => self.keys[i].1,
                    Err(_) => *unknown.entry(n).or_insert_with(|| {
                        extra.push(n.to_string());
                        declared + extra.len() as i32 - 1
                    }),
                },
            )
            .collect();
        let values: ArrayRef = if extra.is_empty() {
            Arc::clone(&self.array)
        } else {
            let all: Vec<&str> = self
                .names
                .iter()
                .chain(extra.iter())
                .map(String::as_str)
                .collect();
            Arc::new(StringArray::from(all))
        };
        Arc::new(DictionaryArray::<Int32Type>::new(
            Int32Array::new(keys.into(), nulls),
            values,
        ))
    }
}
