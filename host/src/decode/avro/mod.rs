//! Avro to Arrow: one decoder per writer schema, fed the framed messages of a poll, building
//! the columns directly (no per-row `Value` tree). Where it covers the schema and no reader
//! schema applies, that is weir's own decoder ([`direct`]), which cuts a bad message's row off
//! as it fails; elsewhere it is arrow-avro's streaming decoder.
//!
//! arrow-avro's decoder, like arrow-json's, cannot take back a row it failed halfway through. So
//! when a message fails, the rows decoded since the last failure are decoded again into a fresh
//! decoder and flushed, the bad message is rejected, and decoding goes on: each message is
//! decoded at most twice, whatever the number of bad ones. Strings are checked for UTF-8 only
//! when a batch is flushed; a flush that fails is bisected down to the bad messages.

mod direct;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_avro::codec::Tz;
use arrow_avro::reader::{Decoder as ArrowAvroDecoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use arrow_schema::SchemaRef;
use indexmap::IndexMap;

pub use direct::DirectDecoder;

use super::{Framed, Rejected};
use crate::config::{AvroFraming, LoadedConfig};
use crate::registry::{RegistryClient, RegistryError, SchemaType};
use crate::source::Record;

/// What names a message's writer schema: a registry id or a schema fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WriterKey {
    /// A Confluent schema registry id.
    Id(u32),
    /// A CRC-64-AVRO (Rabin) fingerprint, from single-object encoding.
    Rabin(u64),
}

impl std::fmt::Display for WriterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WriterKey::Id(id) => write!(f, "schema id {id}"),
            WriterKey::Rabin(fp) => write!(f, "schema fingerprint {fp:016x}"),
        }
    }
}

impl WriterKey {
    fn fingerprint(self) -> Fingerprint {
        match self {
            WriterKey::Id(id) => Fingerprint::Id(id),
            WriterKey::Rabin(fp) => Fingerprint::Rabin(fp),
        }
    }

    fn algorithm(self) -> FingerprintAlgorithm {
        match self {
            WriterKey::Id(_) => FingerprintAlgorithm::Id,
            WriterKey::Rabin(_) => FingerprintAlgorithm::Rabin,
        }
    }
}

/// How many bytes the framing puts before the Avro body (what [`parse_prefix`] reads).
fn prefix_len(framing: AvroFraming) -> usize {
    match framing {
        AvroFraming::Confluent => 5,
        AvroFraming::SingleObject => 10,
    }
}

/// The writer key in a message's prefix.
pub fn parse_prefix(framing: AvroFraming, value: &[u8]) -> Result<WriterKey, String> {
    match framing {
        AvroFraming::Confluent => match value {
            [0, a, b, c, d, ..] => Ok(WriterKey::Id(u32::from_be_bytes([*a, *b, *c, *d]))),
            [0, ..] => Err(format!(
                "truncated Confluent header: {} byte(s), expected 5 before the Avro body",
                value.len()
            )),
            [] => Err("empty value".into()),
            [first, ..] => Err(format!(
                "not Confluent-framed Avro: first byte is 0x{first:02x}, expected the magic byte 0x00{}",
                if *first == b'{' { " (it looks like JSON)" } else { "" }
            )),
        },
        AvroFraming::SingleObject => match value {
            [0xC3, 0x01, rest @ ..] => rest
                .get(..8)
                .and_then(|fp| fp.try_into().ok())
                .map(|fp| WriterKey::Rabin(u64::from_le_bytes(fp)))
                .ok_or_else(|| "truncated single-object header: expected an 8-byte fingerprint after C3 01".into()),
            _ => Err(format!(
                "not Avro single-object encoding: expected C3 01, found {:02x?}",
                &value[..value.len().min(2)]
            )),
        },
    }
}

/// `name`'s full name in namespace `ns`: a name with dots is already full.
fn qualify(name: &str, ns: &str) -> String {
    if name.contains('.') || ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}.{name}")
    }
}

/// The full name of a schema's top-level type: `namespace.name` for a named type (a name with
/// dots is already full), or the primitive type's name.
pub fn full_name(schema_json: &str) -> Result<String, String> {
    let v: serde_json::Value =
        serde_json::from_str(schema_json).map_err(|e| format!("not an Avro schema (JSON): {e}"))?;
    Ok(match &v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => match o.get("name").and_then(|n| n.as_str()) {
            Some(name) => qualify(
                name,
                o.get("namespace").and_then(|n| n.as_str()).unwrap_or(""),
            ),
            None => o
                .get("type")
                .and_then(|t| t.as_str())
                .ok_or("an Avro schema object needs a `type`")?
                .to_string(),
        },
        serde_json::Value::Array(_) => "union".to_string(),
        _ => return Err("not an Avro schema: expected a string, object or array".into()),
    })
}

/// Reads an `.avsc` file and checks that arrow-avro can decode with it.
pub fn load_schema_file(path: &std::path::Path) -> Result<AvroSchema, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let schema = AvroSchema::new(text);
    arrow_schema_of(&schema, None).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(schema)
}

/// The Arrow schema arrow-avro decodes `writer` into (resolved to `reader` when given).
pub fn arrow_schema_of(
    writer: &AvroSchema,
    reader: Option<&AvroSchema>,
) -> Result<SchemaRef, String> {
    let key = WriterKey::Id(0);
    build_decoder(key, writer, reader, 1).map(|d| d.schema())
}

fn build_decoder(
    key: WriterKey,
    writer: &AvroSchema,
    reader: Option<&AvroSchema>,
    batch_size: usize,
) -> Result<ArrowAvroDecoder, String> {
    let mut store = SchemaStore::new_with_type(key.algorithm());
    store
        .set(key.fingerprint(), writer.clone())
        .map_err(|e| e.to_string())?;
    let mut b = ReaderBuilder::new()
        .with_batch_size(batch_size)
        .with_tz(Tz::Utc)
        .with_writer_schema_store(store)
        .with_active_fingerprint(key.fingerprint());
    if let Some(r) = reader {
        b = b.with_reader_schema(r.clone());
    }
    b.build_decoder().map_err(|e| match reader {
        Some(_) => format!("the writer schema does not resolve to the reader schema: {e}"),
        None => format!("arrow-avro refuses the schema: {e}"),
    })
}

/// One writer schema and its live decoder.
struct Writer {
    type_name: String,
    schema: AvroSchema,
    /// `None` before the first message and after a failure (a failed decoder is unusable).
    decoder: Option<ArrowAvroDecoder>,
    /// Why no decoder can be built for this writer (say, it does not resolve to the reader
    /// schema). Schemas don't change, so every later message is rejected at once with it,
    /// instead of each one building and failing again.
    unusable: Option<String>,
    /// Which decoder reads this writer's messages when no reader schema applies.
    plan: Plan,
}

/// weir's own decoder where it covers the schema (see [`direct`]), else arrow-avro's.
enum Plan {
    Unplanned,
    ArrowAvro,
    Direct(DirectDecoder),
}

impl Writer {
    /// The direct decoder, planned on first use; `None` for arrow-avro.
    fn direct(&mut self) -> Option<&mut DirectDecoder> {
        if let Plan::Unplanned = self.plan {
            self.plan = DirectDecoder::new(&self.schema).map_or(Plan::ArrowAvro, Plan::Direct);
        }
        match &mut self.plan {
            Plan::Direct(d) => Some(d),
            _ => None,
        }
    }
}

/// A writer schema from the registry, with its references (named types defined in other
/// schemas) inlined where first used, so that it stands alone. `Err(Fatal)` for what waiting or
/// configuration must fix (an outage interrupted by shutdown, refused credentials): the message
/// is fine, and must not be dead-lettered.
fn fetch(registry: &RegistryClient, id: u32) -> Result<String, FetchError> {
    let s = registry.schema_by_id(id).map_err(|e| match e {
        RegistryError::NotFound { .. } => FetchError::Reject(format!(
            "unknown schema id {id}: the schema registry has no such schema"
        )),
        other => FetchError::Fatal(format!("schema registry, schema id {id}: {other}")),
    })?;
    if s.schema_type != SchemaType::Avro {
        return Err(FetchError::Reject(format!(
            "schema id {id} is a {} schema, but decode.format is avro",
            s.schema_type
        )));
    }
    let imports = s.imports();
    if imports.is_empty() {
        return Ok(s.schema.clone());
    }
    inline_references(
        &s.schema,
        &imports
            .iter()
            .map(|(_, r)| r.schema.as_str())
            .collect::<Vec<_>>(),
    )
    .map_err(|e| FetchError::Reject(format!("schema id {id}: {e}")))
}

enum FetchError {
    Reject(String),
    Fatal(String),
}

/// `main` with each named type that `imports` define written out in full where it is first
/// referenced by name (later references stay names, as Avro requires).
pub fn inline_references(main: &str, imports: &[&str]) -> Result<String, String> {
    use serde_json::Value;
    let mut defs: HashMap<String, Value> = HashMap::new();
    for text in imports {
        let v: Value =
            serde_json::from_str(text).map_err(|e| format!("a referenced schema: {e}"))?;
        defs.insert(full_name(text)?, v);
    }
    fn walk(v: &mut Value, ns: &str, defs: &mut HashMap<String, Value>) {
        match v {
            Value::String(name) => {
                let full = qualify(name, ns);
                if let Some(mut def) = defs.remove(&full).or_else(|| defs.remove(name.as_str())) {
                    walk(&mut def, ns, defs);
                    *v = def;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, ns, defs)),
            Value::Object(o) => {
                let ns = o
                    .get("namespace")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| ns.to_string());
                for key in ["type", "items", "values"] {
                    if let Some(t) = o.get_mut(key) {
                        walk(t, &ns, defs);
                    }
                }
                if let Some(Value::Array(fields)) = o.get_mut("fields") {
                    for f in fields {
                        if let Some(t) = f.get_mut("type") {
                            walk(t, &ns, defs);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut root: Value =
        serde_json::from_str(main).map_err(|e| format!("not an Avro schema (JSON): {e}"))?;
    let ns = match &root {
        Value::Object(o) => o
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    };
    walk(&mut root, &ns, &mut defs);
    Ok(root.to_string())
}

/// Decodes Avro messages of any number of writer schemas.
pub struct AvroDecoder {
    framing: AvroFraming,
    local: HashMap<WriterKey, AvroSchema>,
    registry: Option<Arc<RegistryClient>>,
    /// Set when the registry failed in a way that must stop the worker (see [`Self::take_fatal`]).
    fatal: Option<String>,
    readers: HashMap<String, AvroSchema>,
    /// Never removed from, so an index stays valid.
    writers: IndexMap<WriterKey, Writer>,
    /// The last message's writer and its index: a poll is mostly one writer, which then costs
    /// no hashing per message.
    last: Option<(WriterKey, usize)>,
    batch_size: usize,
}

impl AvroDecoder {
    /// A decoder for the config's `decode.avro` section, with the `registry` for schemas not
    /// found locally.
    pub fn new(cfg: &LoadedConfig, registry: Option<Arc<RegistryClient>>) -> Result<Self, String> {
        let a = &cfg.config.decode.avro;
        let mut local = HashMap::new();
        for (id, path) in &a.ids {
            let s = load_schema_file(&cfg.resolve(path))
                .map_err(|e| format!("decode.avro.ids.{id}: {e}"))?;
            local.insert(WriterKey::Id(*id), s);
        }
        for (i, path) in a.schemas.iter().enumerate() {
            let s = load_schema_file(&cfg.resolve(path))
                .map_err(|e| format!("decode.avro.schemas[{i}]: {e}"))?;
            let fp = match s.fingerprint(FingerprintAlgorithm::Rabin) {
                Ok(Fingerprint::Rabin(fp)) => fp,
                Ok(other) => {
                    return Err(format!("decode.avro.schemas[{i}]: fingerprint {other:?}"))
                }
                Err(e) => return Err(format!("decode.avro.schemas[{i}]: {e}")),
            };
            local.insert(WriterKey::Rabin(fp), s);
        }
        let readers = a
            .reader_schemas
            .iter()
            .map(|(ty, path)| {
                load_schema_file(&cfg.resolve(path))
                    .map(|s| (ty.clone(), s))
                    .map_err(|e| format!("decode.avro.reader_schemas.{ty}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(AvroDecoder {
            framing: a.framing,
            local,
            registry,
            fatal: None,
            readers,
            writers: IndexMap::new(),
            last: None,
            batch_size: cfg.config.source.kafka.batch.max_records.max(1),
        })
    }

    /// The index of `key`'s writer, its schema found locally or in the registry on first use.
    fn resolve(&mut self, key: WriterKey) -> Result<usize, String> {
        if let Some(i) = self.writers.get_index_of(&key) {
            return Ok(i);
        }
        let schema = match (self.local.get(&key), &self.registry, key) {
            (Some(s), _, _) => s.clone(),
            (None, Some(r), WriterKey::Id(id)) => match fetch(r, id) {
                Ok(s) => AvroSchema::new(s),
                Err(FetchError::Reject(e)) => return Err(e),
                Err(FetchError::Fatal(e)) => {
                    self.fatal = Some(e.clone());
                    return Err(e);
                }
            },
            (None, _, _) => {
                let why = "no local schema has it, and no schema_registry is configured";
                return Err(format!("unknown {key}: {why}"));
            }
        };
        let type_name = full_name(&schema.json_string).map_err(|e| format!("{key}: {e}"))?;
        let (i, _) = self.writers.insert_full(
            key,
            Writer {
                type_name,
                schema,
                decoder: None,
                unusable: None,
                plan: Plan::Unplanned,
            },
        );
        Ok(i)
    }
}

impl Framed for AvroDecoder {
    type Key = WriterKey;

    fn writer(&mut self, value: &[u8]) -> Result<(WriterKey, &str), String> {
        let key = parse_prefix(self.framing, value)?;
        let i = match self.last {
            Some((k, i)) if k == key => i,
            _ => {
                let i = self.resolve(key)?;
                self.last = Some((key, i));
                i
            }
        };
        match self.writers.get_index(i) {
            Some((_, w)) => Ok((key, w.type_name.as_str())),
            None => Err(format!("{key}: no writer at index {i}")),
        }
    }

    fn take_fatal(&mut self) -> Option<String> {
        self.fatal.take()
    }

    fn decode(
        &mut self,
        key: WriterKey,
        records: &[Record<'_>],
        idx: &[u32],
    ) -> (Option<RecordBatch>, Vec<u32>, Vec<Rejected>) {
        let mut rejected = Vec::new();
        let reject_all = |reason: String, rejected: &mut Vec<Rejected>| {
            rejected.extend(idx.iter().map(|&record| Rejected {
                record,
                reason: reason.clone(),
            }))
        };
        let Some(w) = self.writers.get_mut(&key) else {
            reject_all(
                format!("{key}: not resolved before decoding"),
                &mut rejected,
            );
            return (None, Vec::new(), rejected);
        };
        let reader = self.readers.get(&w.type_name);
        if reader.is_none() {
            if let Some(d) = w.direct() {
                return decode_direct(d, key, self.framing, records, idx);
            }
        }
        let mut run = Run {
            records,
            w,
            key,
            reader,
            batch_size: self.batch_size,
            parts: Vec::new(),
            good: Vec::with_capacity(idx.len()),
            pending: Vec::new(),
            failed: Vec::new(),
        };
        for &i in idx {
            let Some(value) = records[i as usize].value else {
                rejected.push(Rejected {
                    record: i,
                    reason: "empty value (tombstone)".into(),
                });
                continue;
            };
            if let Err(reason) = run.push(i, value) {
                rejected.push(Rejected { record: i, reason });
            }
        }
        run.flush();
        let Run {
            parts,
            good,
            failed,
            ..
        } = run;
        rejected.extend(failed);
        let batch = match parts.len() {
            0 => None,
            1 => parts.into_iter().next(),
            _ => match arrow_select::concat::concat_batches(&parts[0].schema(), &parts) {
                Ok(b) => Some(b),
                Err(e) => {
                    rejected.extend(good.iter().map(|&record| Rejected {
                        record,
                        reason: format!("joining decoded parts: {e}"),
                    }));
                    return (None, Vec::new(), rejected);
                }
            },
        };
        rejected.sort_by_key(|r| r.record);
        (batch, good, rejected)
    }
}

/// One group's decoding with weir's own decoder: a bad message is cut out as it fails.
fn decode_direct(
    d: &mut DirectDecoder,
    key: WriterKey,
    framing: AvroFraming,
    records: &[Record<'_>],
    idx: &[u32],
) -> (Option<RecordBatch>, Vec<u32>, Vec<Rejected>) {
    let prefix = prefix_len(framing);
    let body = |i: u32| {
        records[i as usize]
            .value
            .map(|v| v.get(prefix..).unwrap_or_default())
    };
    let mut good = Vec::with_capacity(idx.len());
    let mut rejected = Vec::new();
    let append = |d: &mut DirectDecoder, i: u32, rejected: &mut Vec<Rejected>| {
        let Some(body) = body(i) else {
            rejected.push(Rejected {
                record: i,
                reason: "empty value (tombstone)".into(),
            });
            return false;
        };
        let reason = match d.append(body) {
            Ok(()) => return true,
            Err(e @ (direct::Fail::Truncated | direct::Fail::Trailing(_))) => e.to_string(),
            Err(e) => format!("invalid Avro for {key}: {e}"),
        };
        rejected.push(Rejected { record: i, reason });
        false
    };
    good.extend(idx.iter().copied().filter(|&i| append(d, i, &mut rejected)));
    if good.is_empty() {
        return (None, good, rejected);
    }
    let mut finished = d.finish();
    if finished == Err(direct::Finished::NotUtf8) {
        // Rare: decode the batch again checking each string, to reject only the bad messages.
        d.clear();
        d.set_strict(true);
        good.retain(|&i| append(d, i, &mut rejected));
        finished = d.finish();
        d.set_strict(false);
        rejected.sort_by_key(|r| r.record);
    }
    match finished {
        Ok(batch) => (Some(batch), good, rejected),
        Err(e) => {
            let reason = match e {
                direct::Finished::NotUtf8 => format!("{key}: a string is not UTF-8"),
                direct::Finished::Failed(e) => format!("{key}: {e}"),
            };
            rejected.extend(good.iter().map(|&record| Rejected {
                record,
                reason: reason.clone(),
            }));
            rejected.sort_by_key(|r| r.record);
            (None, Vec::new(), rejected)
        }
    }
}

/// One group's decoding: the rows in the live decoder (`pending`) and the flushed parts.
struct Run<'a, 'r> {
    records: &'a [Record<'r>],
    w: &'a mut Writer,
    key: WriterKey,
    reader: Option<&'a AvroSchema>,
    batch_size: usize,
    parts: Vec<RecordBatch>,
    good: Vec<u32>,
    pending: Vec<u32>,
    /// Rows lost to a failure that was not their own (rare: a decoder that won't rebuild).
    failed: Vec<Rejected>,
}

impl Run<'_, '_> {
    fn decoder(&mut self) -> Result<&mut ArrowAvroDecoder, String> {
        if let Some(e) = &self.w.unusable {
            return Err(e.clone());
        }
        if self.w.decoder.is_none() {
            let d = build_decoder(self.key, &self.w.schema, self.reader, self.batch_size)
                .map_err(|e| format!("{} ({}): {e}", self.key, self.w.type_name))
                .inspect_err(|e| self.w.unusable = Some(e.clone()))?;
            self.w.decoder = Some(d);
        }
        self.w
            .decoder
            .as_mut()
            .ok_or_else(|| "no decoder".to_string())
    }

    /// Decodes one message into the live decoder. On failure the decoder is replaced by a fresh
    /// one holding the rows decoded before, flushed, so nothing good is lost.
    fn push(&mut self, i: u32, value: &[u8]) -> Result<(), String> {
        if self.decoder()?.batch_is_full() {
            self.flush();
        }
        let key = self.key;
        let d = self.decoder()?;
        let before = d.capacity();
        let outcome = d.decode(value);
        let rows = before - d.capacity();
        let reason = match outcome {
            Ok(n) if n == value.len() && rows == 1 => {
                self.pending.push(i);
                return Ok(());
            }
            Ok(_) if rows == 0 => {
                "truncated Avro: the message ends inside a value (or a length claims more bytes than it has)".to_string()
            }
            Ok(n) if n < value.len() => {
                format!("{} trailing byte(s) after the Avro record", value.len() - n)
            }
            Ok(_) => "more than one Avro record in the message".to_string(),
            Err(e) if rows == 1 => format!("trailing bytes after the Avro record ({e})"),
            Err(e) => format!("invalid Avro for {key}: {e}"),
        };
        // The failed decoder may hold part of the bad row: decode the rows before it again.
        self.w.decoder = None;
        let pending = std::mem::take(&mut self.pending);
        match self.redo(&pending) {
            Ok(()) => {
                self.pending = pending;
                self.flush();
            }
            Err(e) => {
                self.w.decoder = None;
                self.fail(
                    &pending,
                    &format!("decoding again after a bad message: {e}"),
                );
            }
        }
        Err(reason)
    }

    fn redo(&mut self, rows: &[u32]) -> Result<(), String> {
        for &p in rows {
            let v = self.records[p as usize].value.unwrap_or_default();
            self.decoder()?.decode(v).map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn fail(&mut self, rows: &[u32], reason: &str) {
        self.failed.extend(rows.iter().map(|&record| Rejected {
            record,
            reason: reason.to_string(),
        }));
    }

    /// Moves the live decoder's rows into `parts`. Some checks (UTF-8) run only at flush, for
    /// the whole batch: when it fails, the rows are split in halves, each decoded again and
    /// flushed alone, down to the bad messages, so the good ones are kept.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let rows = std::mem::take(&mut self.pending);
        match self.flush_live(rows.len()) {
            Ok(b) => {
                self.parts.push(b);
                self.good.extend(rows);
            }
            Err(reason) => {
                self.w.decoder = None;
                self.bisect(&rows, reason);
            }
        }
    }

    fn flush_live(&mut self, expected: usize) -> Result<RecordBatch, String> {
        match self.decoder()?.flush() {
            Ok(Some(b)) if b.num_rows() == expected => Ok(b),
            Ok(b) => Err(format!(
                "decoded {} rows for {expected} messages",
                b.map_or(0, |b| b.num_rows())
            )),
            Err(e) => Err(format!("invalid Avro: {e}")),
        }
    }

    fn bisect(&mut self, rows: &[u32], reason: String) {
        if rows.len() == 1 {
            return self.fail(rows, &reason);
        }
        for half in rows.chunks(rows.len().div_ceil(2)) {
            let flushed = self.redo(half).and_then(|()| self.flush_live(half.len()));
            match flushed {
                Ok(b) => {
                    self.parts.push(b);
                    self.good.extend_from_slice(half);
                }
                Err(e) => {
                    self.w.decoder = None;
                    self.bisect(half, e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
