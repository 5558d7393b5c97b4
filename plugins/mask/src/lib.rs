//! # `builtin:mask`: mask fields, by dotted path
//!
//! ```yaml
//! transforms:
//!   - plugin: builtin:mask
//!     params:
//!       fields:
//!         customer.email: { hash: { salt: "s3cret" } }
//!         card.last4: { fixed: "****" }
//!         phone: { partial: { keep_last: 4, char: "*" } }
//! ```
//!
//! Input `{"customer": {"email": "ann@example.com"}, "card": {"last4": "4242"}, "phone": "+4915112345678"}`
//! goes on as `{"customer": {"email": "<64 lowercase hex digits>"}, "card": {"last4": "****"},
//! "phone": "**********5678"}`.
//!
//! - `hash: { salt }`: the lowercase hex SHA-256 of the salt's bytes followed by the value's,
//!   exactly what the expression `sha256(value, 'salt')` gives, so a hashed column still joins
//!   with values hashed elsewhere. `salt` defaults to empty.
//! - `fixed: TEXT`: every value becomes `TEXT`.
//! - `partial: { keep_first, keep_last, char }`: keeps the first `keep_first` and the last
//!   `keep_last` characters (default 0 each) and writes `char` (default `*`) for each of the
//!   others, so the length shows. A value no longer than `keep_first + keep_last` is masked whole,
//!   so short values never show in clear.
//!
//! A dotted path reaches into structs: the struct column is rebuilt with the masked child, and
//! everything else in it (its other fields, which rows are null) is kept. Null values stay null.
//! Masking works on strings; numbers are masked through their text as JSON writes it (`42`,
//! `1.5`, `2.0`: so `42` hashes as `"42"`, as `sha256(id)` does), and the masked column is a
//! string column. A path the batch lacks is left alone; a path
//! through something that is not a struct, or to a type that is neither string nor number (a
//! boolean, a list, a whole struct), fails the batch with the path. Only the top-level columns the
//! paths start with cross into the sandbox, and the work is column by column.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use weir_guest_sdk::arrow_array::builder::StringBuilder;
use weir_guest_sdk::arrow_array::cast::AsArray;
use weir_guest_sdk::arrow_array::types::{
    ArrowPrimitiveType, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use weir_guest_sdk::arrow_array::{Array, ArrayRef, StringArray, StructArray};
use weir_guest_sdk::arrow_schema::{DataType, Field};
use weir_guest_sdk::{export_transform, Error, Output, RecordBatch, Transform};

/// The plugin's params.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Dotted path to the rule that masks it.
    pub fields: BTreeMap<String, Rule>,
}

/// How a field is masked.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Rule {
    /// Lowercase hex SHA-256 of `salt` followed by the value.
    Hash {
        /// Bytes hashed before each value.
        #[serde(default)]
        salt: String,
    },
    /// Every value becomes this text.
    Fixed(String),
    /// Keeps the first and last characters, writes `char` for the others.
    Partial {
        /// Characters kept at the start.
        #[serde(default)]
        keep_first: usize,
        /// Characters kept at the end.
        #[serde(default)]
        keep_last: usize,
        /// What each hidden character becomes.
        #[serde(default = "default_char")]
        char: char,
    },
}

fn default_char() -> char {
    '*'
}

/// The rules as a tree over the fields: a struct's masked children under it.
#[derive(Debug)]
enum Node {
    Leaf(Masker),
    Struct(BTreeMap<String, Node>),
}

/// A rule, ready to run.
#[derive(Debug)]
enum Masker {
    /// The hasher with the salt already fed.
    Hash(Sha256),
    Fixed(String),
    Partial {
        keep_first: usize,
        keep_last: usize,
        char: char,
    },
}

/// The mask transform.
#[derive(Debug)]
pub struct Mask {
    columns: BTreeMap<String, Node>,
}

impl Transform for Mask {
    type Params = Params;

    fn new(p: Params) -> Result<Self, Error> {
        if p.fields.is_empty() {
            return Err(Error::new("fields: no field to mask"));
        }
        let mut columns = BTreeMap::new();
        for (path, rule) in p.fields {
            insert(&mut columns, &path, rule)
                .map_err(|e| Error::new(format!("fields.{path}: {e}")))?;
        }
        Ok(Mask { columns })
    }

    fn reads(&self) -> Option<Vec<String>> {
        Some(self.columns.keys().cloned().collect())
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (name, node) in &self.columns {
            if let Some(column) = batch.column_by_name(name) {
                out.push((name.clone(), mask(column, node, name)?));
            }
        }
        Ok(Output::with_columns(out))
    }
}

/// Adds the rule for `path` to the tree.
fn insert(tree: &mut BTreeMap<String, Node>, path: &str, rule: Rule) -> Result<(), String> {
    let parts: Vec<&str> = path.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err("not a field path (write names joined by dots: `card.last4`)".into());
    }
    let (leaf, parents) = parts.split_last().ok_or("an empty path")?;
    let mut level = tree;
    for (i, part) in parents.iter().enumerate() {
        let node = level
            .entry(part.to_string())
            .or_insert_with(|| Node::Struct(BTreeMap::new()));
        level = match node {
            Node::Struct(children) => children,
            Node::Leaf(_) => {
                return Err(format!(
                    "`{}` is masked as a whole already",
                    parts[..=i].join(".")
                ))
            }
        };
    }
    if level.contains_key(*leaf) {
        return Err("fields inside it are masked too; mask either the struct or its fields".into());
    }
    level.insert(leaf.to_string(), Node::Leaf(Masker::new(rule)));
    Ok(())
}

/// `array` masked as `node` says; `path` names it in errors.
fn mask(array: &ArrayRef, node: &Node, path: &str) -> Result<ArrayRef, Error> {
    match node {
        Node::Leaf(masker) => Ok(Arc::new(masker.apply(&text(array, path)?))),
        Node::Struct(children) => {
            let Some(parent) = array.as_struct_opt() else {
                return Err(Error::new(format!(
                    "fields: `{path}` is {}, not a struct, so no field inside it can be masked",
                    array.data_type()
                )));
            };
            let mut fields = Vec::with_capacity(parent.num_columns());
            let mut columns = Vec::with_capacity(parent.num_columns());
            for (field, column) in parent.fields().iter().zip(parent.columns()) {
                match children.get(field.name()) {
                    Some(child) => {
                        let masked = mask(column, child, &format!("{path}.{}", field.name()))?;
                        let field = Field::clone(field).with_data_type(masked.data_type().clone());
                        fields.push(Arc::new(field));
                        columns.push(masked);
                    }
                    None => {
                        fields.push(Arc::clone(field));
                        columns.push(Arc::clone(column));
                    }
                }
            }
            let rebuilt = StructArray::try_new(fields.into(), columns, parent.nulls().cloned())?;
            Ok(Arc::new(rebuilt))
        }
    }
}

/// The values of a leaf as strings: strings as they are, numbers as JSON writes them (the text
/// `sha256()` and `to_string()` of the expression language hash and give).
fn text(array: &ArrayRef, path: &str) -> Result<StringArray, Error> {
    macro_rules! ints {
        ($($t:ty),*) => {
            match array.data_type() {
                $(d if *d == <$t>::DATA_TYPE => {
                    return Ok(array.as_primitive::<$t>().iter().map(|v| v.map(|v| v.to_string())).collect());
                })*
                _ => {}
            }
        };
    }
    ints!(Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type, UInt64Type);
    Ok(match array.data_type() {
        DataType::Utf8 => array.as_string::<i32>().clone(),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().collect(),
        DataType::Utf8View => array.as_string_view().iter().collect(),
        DataType::Float32 => floats(
            array
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f64::from)),
        ),
        DataType::Float64 => floats(array.as_primitive::<Float64Type>().iter()),
        t => {
            return Err(Error::new(format!(
                "fields: `{path}` is {t}; only strings and numbers can be masked"
            )))
        }
    })
}

/// Floats as JSON writes them: the shortest text that reads back the same (`1.0`, `0.1`), and
/// `null` for what JSON can't hold.
fn floats(values: impl Iterator<Item = Option<f64>>) -> StringArray {
    values
        .map(|v| {
            v.map(|v| match weir_guest_sdk::serde_json::Number::from_f64(v) {
                Some(n) => n.to_string(),
                None => "null".to_string(),
            })
        })
        .collect()
}

impl Masker {
    fn new(rule: Rule) -> Self {
        match rule {
            Rule::Hash { salt } => {
                let mut salted = Sha256::new();
                salted.update(salt.as_bytes());
                Masker::Hash(salted)
            }
            Rule::Fixed(text) => Masker::Fixed(text),
            Rule::Partial {
                keep_first,
                keep_last,
                char,
            } => Masker::Partial {
                keep_first,
                keep_last,
                char,
            },
        }
    }

    /// Masks every non-null value; nulls stay null.
    fn apply(&self, values: &StringArray) -> StringArray {
        let per_value = match self {
            Masker::Hash(_) => 64,
            Masker::Fixed(text) => text.len(),
            Masker::Partial { .. } => values.value_data().len() / values.len().max(1) + 1,
        };
        let mut out = StringBuilder::with_capacity(values.len(), values.len() * per_value);
        let mut scratch = String::new();
        for value in values {
            let Some(value) = value else {
                out.append_null();
                continue;
            };
            scratch.clear();
            match self {
                Masker::Hash(salted) => hex_sha256(salted, value, &mut scratch),
                Masker::Fixed(text) => scratch.push_str(text),
                Masker::Partial {
                    keep_first,
                    keep_last,
                    char,
                } => partial(value, *keep_first, *keep_last, *char, &mut scratch),
            }
            out.append_value(&scratch);
        }
        out.finish()
    }
}

/// Lowercase hex of SHA-256 over the salt (already in `salted`) and `value`.
fn hex_sha256(salted: &Sha256, value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = salted.clone();
    hasher.update(value.as_bytes());
    for byte in hasher.finalize() {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
}

/// `value` with all but the first `keep_first` and last `keep_last` characters written as `char`;
/// wholly masked when it is no longer than what would be kept.
fn partial(value: &str, keep_first: usize, keep_last: usize, char: char, out: &mut String) {
    let n = value.chars().count();
    let kept = keep_first.saturating_add(keep_last);
    for (i, c) in value.chars().enumerate() {
        let shown = n > kept && (i < keep_first || i >= n - keep_last);
        out.push(if shown { c } else { char });
    }
}

export_transform!(Mask);

#[cfg(test)]
mod tests;
