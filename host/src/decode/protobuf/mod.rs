//! Protobuf to Arrow: Confluent-framed protobuf messages decoded straight into Arrow columns.
//!
//! Descriptors come from `.proto` text (compiled in memory with protox: the Confluent schema
//! registry serves source text, imports as references), `.proto` files, or a `protoc
//! --descriptor_set_out` file. A [`ProtoDecoder`] then reads the wire format of one message type
//! directly into column buffers (no `DynamicMessage` per message), and a message that fails
//! leaves the pending rows untouched, so the good messages of a poll are never lost.
//!
//! # Type mapping
//!
//! One column per field, in declaration order, named as in the `.proto`:
//!
//! | protobuf | Arrow |
//! | --- | --- |
//! | `int32`, `sint32`, `sfixed32` | `Int32` |
//! | `int64`, `sint64`, `sfixed64` | `Int64` |
//! | `uint32`, `fixed32` | `UInt32` |
//! | `uint64`, `fixed64` | `UInt64` |
//! | `float`, `double` | `Float32`, `Float64` |
//! | `bool`, `string`, `bytes` | `Boolean`, `Utf8`, `Binary` |
//! | enum | `Dictionary(Int32, Utf8)` of the value names |
//! | message | `Struct` (nullable: absent = null) |
//! | `repeated T` | `List<T>`, non-null list and items (absent = empty list) |
//! | `map<K, V>` | `Map<entries: Struct<key: K, value: V>>`, non-null, key and value non-null |
//! | `google.protobuf.Timestamp` | `Timestamp(Nanosecond, "UTC")` |
//! | `google.protobuf.Duration` | `Duration(Nanosecond)` |
//! | wrappers (`Int32Value`, `StringValue`, ...) | the wrapped scalar, nullable |
//!
//! # Semantics
//!
//! - Presence: proto3 implicit-presence scalars are non-null and absent means the proto default
//!   (0, "", false, the enum's first value). Fields with presence are nullable and absent means
//!   null: `optional`, oneof members, messages, wrappers, and every singular proto2 field
//!   (proto2 `[default = ...]` values are not applied, and `required` is not enforced).
//! - Enums: a number the enum does not declare (legal in proto3) gets its decimal form as its
//!   name, e.g. `"7"`. Aliases take the first name declared for the number.
//! - Repeated fields concatenate; packed and unpacked encodings are both accepted. A singular
//!   field seen twice keeps the last value; an embedded message seen twice is merged (the
//!   occurrences are read as one message, which is protobuf's merge). Setting a oneof member
//!   clears the member set before it. A map key seen twice keeps the last entry.
//! - A map value is never absent in protobuf: a missing one is its type's default (an empty
//!   message, 0, "", epoch for a Timestamp).
//! - Unknown fields are skipped, groups included. Known proto2 group fields decode like messages.
//! - Recursive message types are refused when the decoder is built, naming the cycle
//!   (`recursive message a.B -> a.B is not supported`): Arrow has no recursive type. This
//!   includes `google.protobuf.Struct`/`Value`/`ListValue`. Message and group nesting is bounded
//!   at 100 levels, in the schema and on the wire.
//! - A Timestamp or Duration beyond 64-bit nanoseconds (years 1677 to 2262) rejects the message.
//! - Strings must be UTF-8; every length is checked against the bytes left before use.

mod decoder;
pub mod framed;
mod wire;

use std::collections::HashMap;
use std::path::PathBuf;

use prost_reflect::{DescriptorPool, MessageDescriptor};
use protox::file::{ChainFileResolver, File, FileResolver, GoogleFileResolver};

pub use decoder::ProtoDecoder;

/// Why a schema could not be loaded or a message not decoded: the text is meant for a
/// dead-letter header, so it says what was wrong and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    /// The `.proto` sources or descriptor set did not load or compile.
    #[error("protobuf schema: {0}")]
    Schema(String),
    /// The message type can't be mapped to Arrow (recursive, too deep...).
    #[error("protobuf: {0}")]
    Unsupported(String),
    /// The Confluent wire-format prefix is malformed.
    #[error("protobuf framing: {0}")]
    Framing(String),
    /// A message body is not valid for its type.
    #[error("protobuf: {}{reason} at byte {offset}", field_prefix(field))]
    Decode {
        /// The field path, outermost first, e.g. `3 (customer) > 1 (name)`; empty when the
        /// failure is not inside a known field.
        field: String,
        /// What was wrong.
        reason: String,
        /// Byte offset from the start of the message body (after the framing).
        offset: usize,
    },
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("field {field}: ")
    }
}

impl ProtoError {
    fn from_fail(fail: wire::Fail) -> Self {
        let fail = fail.into_inner();
        let field = fail
            .path
            .iter()
            .rev()
            .map(|(n, name)| format!("{n} ({name})"))
            .collect::<Vec<_>>()
            .join(" > ");
        ProtoError::Decode {
            field,
            reason: fail.reason.into_owned(),
            offset: fail.offset,
        }
    }
}

fn schema_error(e: &protox::Error) -> ProtoError {
    // The Debug form carries `file:line:column:` for parse errors.
    ProtoError::Schema(format!("{e:?}"))
}

/// Compiles `.proto` sources held in memory: `files` holds `(import name, source text)` pairs,
/// `main_name`'s among them; imports resolve to the other entries by name, then to the
/// well-known `google/protobuf/*.proto` files, which are built in.
pub fn compile_proto(
    main_name: &str,
    files: &[(String, String)],
) -> Result<DescriptorPool, ProtoError> {
    struct InMemory(HashMap<String, String>);
    impl FileResolver for InMemory {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            match self.0.get(name) {
                Some(source) => File::from_source(name, source),
                None => Err(protox::Error::file_not_found(name)),
            }
        }
    }
    let mut resolver = ChainFileResolver::new();
    resolver.add(InMemory(files.iter().cloned().collect()));
    resolver.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler
        .open_file(main_name)
        .map_err(|e| schema_error(&e))?;
    Ok(compiler.descriptor_pool())
}

/// Compiles `.proto` files from disk. Imports are looked up in `include_dirs`, then among the
/// well-known types; with no include directory, each file's own directory is used.
pub fn load_proto_files(
    paths: &[PathBuf],
    include_dirs: &[PathBuf],
) -> Result<DescriptorPool, ProtoError> {
    let includes: Vec<PathBuf> = if include_dirs.is_empty() {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for p in paths {
            let dir = match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => PathBuf::from("."),
            };
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        dirs
    } else {
        include_dirs.to_vec()
    };
    let mut compiler = protox::Compiler::new(&includes).map_err(|e| schema_error(&e))?;
    compiler.open_files(paths).map_err(|e| schema_error(&e))?;
    Ok(compiler.descriptor_pool())
}

/// Loads a `FileDescriptorSet` as written by `protoc --descriptor_set_out`. The well-known
/// types are built in, so a set made without `--include_imports` still resolves them; other
/// imports must be in the set.
pub fn load_descriptor_set(bytes: &[u8]) -> Result<DescriptorPool, ProtoError> {
    let mut pool = DescriptorPool::new();
    let well_known: Vec<_> = DescriptorPool::global()
        .file_descriptor_protos()
        .filter(|f| f.name().starts_with("google/protobuf/"))
        .cloned()
        .collect();
    pool.add_file_descriptor_protos(well_known)
        .map_err(|e| ProtoError::Schema(format!("well-known types: {e}")))?;
    pool.decode_file_descriptor_set(bytes).map_err(|e| {
        ProtoError::Schema(format!(
            "descriptor set: {e:?} (imports must be in the set: protoc --include_imports)"
        ))
    })?;
    Ok(pool)
}

/// The message a Confluent message-index path names: the first index picks a top-level message
/// of `file_name` in declaration order, each next one a message nested in the previous (in
/// declaration order, map entry types included, as in the descriptor). An empty path is `[0]`.
pub fn message_for_indexes(
    pool: &DescriptorPool,
    file_name: &str,
    indexes: &[i32],
) -> Result<MessageDescriptor, ProtoError> {
    let file = pool
        .get_file_by_name(file_name)
        .ok_or_else(|| ProtoError::Schema(format!("no file `{file_name}` in the schema")))?;
    let (first, rest) = indexes.split_first().unwrap_or((&0, &[]));
    let mut msg = usize::try_from(*first)
        .ok()
        .and_then(|i| file.messages().nth(i))
        .ok_or_else(|| {
            ProtoError::Schema(format!(
                "message index {first}: file `{file_name}` has {} top-level messages",
                file.messages().len()
            ))
        })?;
    for &i in rest {
        let next = usize::try_from(i)
            .ok()
            .and_then(|i| msg.child_messages().nth(i))
            .ok_or_else(|| {
                ProtoError::Schema(format!(
                    "message index {i}: `{}` has {} nested messages",
                    msg.full_name(),
                    msg.child_messages().len()
                ))
            })?;
        msg = next;
    }
    Ok(msg)
}

/// The most message indexes a Confluent prefix may hold (more is refused as a length bomb).
pub const MAX_INDEXES: usize = 64;

/// A parsed Confluent protobuf prefix: `0x00`, the schema id (4 bytes, big-endian), then the
/// message-index path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfluentProto {
    /// The registry schema id.
    pub schema_id: u32,
    /// Where the protobuf body starts in the value.
    pub body_offset: usize,
    indexes: [i32; MAX_INDEXES],
    count: u8,
}

impl ConfluentProto {
    /// The message-index path (see [`message_for_indexes`]); `[0]` for the first message.
    pub fn indexes(&self) -> &[i32] {
        &self.indexes[..usize::from(self.count)]
    }
}

/// Parses the Confluent prefix of a Kafka value: magic byte 0, the schema id, then the
/// message-index path as a zigzag varint count and that many zigzag varints; a count of 0 (the
/// single byte 0) means `[0]`. Kept inline (no allocation per message).
pub fn confluent_prefix(bytes: &[u8]) -> Result<ConfluentProto, ProtoError> {
    let framing = |m: String| ProtoError::Framing(m);
    if bytes.len() < 6 {
        return Err(framing(format!(
            "{} bytes is too short for the Confluent wire format (magic byte, 4-byte schema id, message indexes)",
            bytes.len()
        )));
    }
    if bytes[0] != 0 {
        return Err(framing(format!(
            "magic byte {}, expected 0 (not the Confluent wire format)",
            bytes[0]
        )));
    }
    let schema_id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
    let mut pos = 5;
    let zigzag = |what: &str, pos: &mut usize| -> Result<i64, ProtoError> {
        let v = wire::varint(bytes, pos).map_err(|f| {
            let f = f.into_inner();
            framing(format!("{what}: {} at byte {}", f.reason, f.offset))
        })?;
        Ok(wire::zigzag64(v))
    };
    let count = zigzag("message-index count", &mut pos)?;
    let mut out = ConfluentProto {
        schema_id,
        body_offset: 0,
        indexes: [0; MAX_INDEXES],
        count: 1,
    };
    if count < 0 || count > MAX_INDEXES as i64 {
        return Err(framing(format!(
            "message-index count {count} is out of range (0 to {MAX_INDEXES})"
        )));
    }
    if count > 0 {
        out.count = count as u8;
        for i in 0..count as usize {
            let index = zigzag("message index", &mut pos)?;
            out.indexes[i] = i32::try_from(index)
                .ok()
                .filter(|&x| x >= 0)
                .ok_or_else(|| framing(format!("message index {index} is out of range")))?;
        }
    }
    out.body_offset = pos;
    Ok(out)
}

/// The Arrow schema `msg` decodes to: see the module documentation for the mapping. Fails for
/// recursive types and nesting deeper than 100 levels.
pub fn arrow_schema(msg: &MessageDescriptor) -> Result<arrow_schema::Schema, ProtoError> {
    decoder::schema_of(msg)
}

#[cfg(test)]
mod tests;
