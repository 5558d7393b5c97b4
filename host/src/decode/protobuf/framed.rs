//! Confluent-framed Protobuf messages to [`ProtoDecoder`]s: the schema id names a `.proto`
//! schema (from the registry, or a local file or descriptor set), and the message indexes name
//! the message type in it. One decoder per (schema id, message indexes), kept across polls.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use prost_reflect::DescriptorPool;

use super::{
    compile_proto, confluent_prefix, load_descriptor_set, load_proto_files, message_for_indexes,
    ProtoDecoder,
};
use crate::config::LoadedConfig;
use crate::decode::{Framed, Rejected};
use crate::registry::{RegistryClient, RegistryError, SchemaType};
use crate::source::Record;

/// A message's schema id and message indexes.
pub type ProtoKey = (u32, Vec<i32>);

/// A compiled schema: its pool, and the name of its main file in it.
#[derive(Clone)]
struct Schema {
    pool: DescriptorPool,
    file: String,
}

/// Decodes Confluent-framed Protobuf messages of any number of schemas and message types.
pub struct ProtobufDecoder {
    registry: Option<Arc<RegistryClient>>,
    schemas: HashMap<u32, Schema>,
    decoders: HashMap<ProtoKey, ProtoDecoder>,
    fatal: Option<String>,
}

/// Loads a local schema: a `.proto` file (compiled with `include` as import folders), or a
/// descriptor set (`protoc --include_imports --descriptor_set_out`), whose last file is the one
/// the id names (protoc writes the files asked for after their imports).
fn load_local(path: &Path, include: &[std::path::PathBuf]) -> Result<Schema, String> {
    let shown = path.display();
    if path.extension().is_some_and(|e| e == "proto") {
        let pool = load_proto_files(&[path.to_path_buf()], include)
            .map_err(|e| format!("{shown}: {e}"))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        // protox names a file by its path under the include folder: find it by its ending.
        let file = pool
            .files()
            .map(|f| f.name().to_string())
            .find(|f| f == name || f.ends_with(&format!("/{name}")))
            .ok_or_else(|| format!("{shown}: not found among the compiled files"))?;
        Ok(Schema { pool, file })
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("{shown}: {e}"))?;
        let pool = load_descriptor_set(&bytes).map_err(|e| format!("{shown}: {e}"))?;
        let file = pool
            .files()
            .filter(|f| !f.name().starts_with("google/protobuf/"))
            .last()
            .map(|f| f.name().to_string())
            .ok_or_else(|| format!("{shown}: the descriptor set holds no file"))?;
        Ok(Schema { pool, file })
    }
}

/// Checks a `decode.protobuf.ids` entry (for `weir validate`).
pub fn check_local(path: &Path, include: &[std::path::PathBuf]) -> Result<(), String> {
    load_local(path, include).map(|_| ())
}

impl ProtobufDecoder {
    /// A decoder for the config's `decode.protobuf` section, with the `registry` for schema ids
    /// not given locally.
    pub fn new(cfg: &LoadedConfig, registry: Option<Arc<RegistryClient>>) -> Result<Self, String> {
        let p = &cfg.config.decode.protobuf;
        let include: Vec<_> = p.include.iter().map(|d| cfg.resolve(d)).collect();
        let mut schemas = HashMap::new();
        for (id, path) in &p.ids {
            let s = load_local(&cfg.resolve(path), &include)
                .map_err(|e| format!("decode.protobuf.ids.{id}: {e}"))?;
            schemas.insert(*id, s);
        }
        Ok(ProtobufDecoder {
            registry,
            schemas,
            decoders: HashMap::new(),
            fatal: None,
        })
    }

    /// The schema of `id`, fetched from the registry and compiled the first time.
    fn schema(&mut self, id: u32) -> Result<&Schema, String> {
        if !self.schemas.contains_key(&id) {
            let Some(r) = &self.registry else {
                return Err(format!(
                    "unknown schema id {id}: no local schema has it, and no schema_registry is configured"
                ));
            };
            let s = match r.schema_by_id(id) {
                Ok(s) => s,
                Err(RegistryError::NotFound { .. }) => {
                    return Err(format!(
                        "unknown schema id {id}: the schema registry has no such schema"
                    ))
                }
                Err(e) => {
                    let e = format!("schema registry, schema id {id}: {e}");
                    self.fatal = Some(e.clone());
                    return Err(e);
                }
            };
            if s.schema_type != SchemaType::Protobuf {
                return Err(format!(
                    "schema id {id} is a {} schema, but decode.format is protobuf",
                    s.schema_type
                ));
            }
            let main = format!("schema-{id}.proto");
            let mut files: Vec<(String, String)> = s
                .imports()
                .into_iter()
                .map(|(name, r)| (name.to_string(), r.schema.clone()))
                .collect();
            files.push((main.clone(), s.schema.clone()));
            let pool = compile_proto(&main, &files).map_err(|e| format!("schema id {id}: {e}"))?;
            self.schemas.insert(id, Schema { pool, file: main });
        }
        self.schemas
            .get(&id)
            .ok_or_else(|| format!("schema id {id}: not loaded"))
    }
}

impl Framed for ProtobufDecoder {
    type Key = ProtoKey;

    fn writer(&mut self, value: &[u8]) -> Result<(ProtoKey, &str), String> {
        let prefix = confluent_prefix(value).map_err(|e| e.to_string())?;
        let key = (prefix.schema_id, prefix.indexes().to_vec());
        if !self.decoders.contains_key(&key) {
            let schema = self.schema(key.0)?;
            let msg = message_for_indexes(&schema.pool, &schema.file, &key.1)
                .map_err(|e| format!("schema id {}: {e}", key.0))?;
            let d = ProtoDecoder::new(msg).map_err(|e| format!("schema id {}: {e}", key.0))?;
            self.decoders.insert(key.clone(), d);
        }
        let name = self
            .decoders
            .get(&key)
            .map(|d| d.message().full_name())
            .unwrap_or_default();
        Ok((key, name))
    }

    fn decode(
        &mut self,
        key: ProtoKey,
        records: &[Record<'_>],
        idx: &[u32],
    ) -> (Option<RecordBatch>, Vec<u32>, Vec<Rejected>) {
        let mut rejected = Vec::new();
        let Some(d) = self.decoders.get_mut(&key) else {
            rejected.extend(idx.iter().map(|&record| Rejected {
                record,
                reason: format!("schema id {}: not resolved before decoding", key.0),
            }));
            return (None, Vec::new(), rejected);
        };
        let mut kept = Vec::with_capacity(idx.len());
        for &i in idx {
            let outcome = match records[i as usize].value {
                None => Err("empty value (tombstone)".to_string()),
                Some(v) => confluent_prefix(v)
                    .map_err(|e| e.to_string())
                    .and_then(|p| d.append(&v[p.body_offset..]).map_err(|e| e.to_string())),
            };
            match outcome {
                Ok(()) => kept.push(i),
                Err(reason) => rejected.push(Rejected { record: i, reason }),
            }
        }
        let batch = (!kept.is_empty()).then(|| d.finish());
        (batch, kept, rejected)
    }

    fn take_fatal(&mut self) -> Option<String> {
        self.fatal.take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use arrow_array::cast::AsArray;
    use prost_reflect::prost::Message;
    use prost_reflect::{DynamicMessage, Value};

    use crate::config::LoadedConfig;
    use crate::decode::Decoder;
    use crate::source::Record;

    const PROTO: &str = "syntax = \"proto3\";\npackage shop;\nmessage A { string id = 1; }\nmessage B { message C { int64 n = 1; } C c = 1; }\n";

    #[test]
    fn local_proto_files_by_id_and_message_indexes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("shop.proto"), PROTO).unwrap();
        let text = "source: { kafka: { brokers: embedded, group_id: g, topics: [t] } }\n\
             routes: [ { match: '.*', sink: { parquet: { path: out } } } ]\n\
             decode: { format: protobuf, protobuf: { ids: { 5: shop.proto } } }\n";
        let cfg = LoadedConfig::from_str(text, &dir.path().join("w.yaml")).unwrap();
        let pool =
            super::compile_proto("shop.proto", &[("shop.proto".into(), PROTO.into())]).unwrap();
        let mut a = DynamicMessage::new(pool.get_message_by_name("shop.A").unwrap());
        a.set_field_by_name("id", Value::String("x".into()));
        let mut c = DynamicMessage::new(pool.get_message_by_name("shop.B.C").unwrap());
        c.set_field_by_name("n", Value::I64(42));
        // [0] as the single byte 0; [1, 0] (B.C) as count 2, 1, 0 zigzagged.
        let mut ma = vec![0, 0, 0, 0, 5, 0];
        ma.extend(a.encode_to_vec());
        let mut mc = vec![0, 0, 0, 0, 5, 4, 2, 0];
        mc.extend(c.encode_to_vec());
        let values = [ma, mc, vec![0, 0, 0, 0, 6, 0]];
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record::new("t", 0, i as i64, Some(v)))
            .collect();
        let out = Decoder::new(&cfg, None).unwrap().decode(&records);
        let types: Vec<&str> = out.batches.iter().map(|b| b.type_name.as_str()).collect();
        assert_eq!(types, ["shop.A", "shop.B.C"]);
        assert_eq!(
            out.batches[0].batch.column(0).as_string::<i32>().value(0),
            "x"
        );
        let n = out.batches[1]
            .batch
            .column(0)
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(n.value(0), 42);
        assert_eq!(out.rejected.len(), 1);
        assert!(
            out.rejected[0].reason.contains("unknown schema id 6"),
            "{:?}",
            out.rejected
        );
    }
}
