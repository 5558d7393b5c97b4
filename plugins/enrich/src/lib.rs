//! # `builtin:enrich`: join a lookup table
//!
//! ```yaml
//! transforms:
//!   - plugin: builtin:enrich
//!     files: { fx: data/fx.csv }          # the config grants the table file
//!     params:
//!       table: fx                         # the grant's name
//!       on: currency                      # an expression over the batch: the join key
//!       key: currency                     # the table's key column
//!       columns: [rate]                   # default: every table column but the key
//!       prefix: fx_                       # optional, before each joined column's name
//!       set: { eur: "amount * fx_rate" }  # optional, evaluated after the join
//! ```
//!
//! With `data/fx.csv` holding `currency,rate` / `EUR,1.0` / `USD,0.92`, the input row
//! `{"amount": 10.0, "currency": "USD"}` goes on as
//! `{"amount": 10.0, "currency": "USD", "fx_rate": 0.92, "eur": 9.2}`.
//!
//! - **The table** is read once, at init, through the file grant, and loaded into Arrow:
//!   `format: csv | jsonl | parquet`, or, when absent, sniffed: Parquet by its `PAR1` magic, JSON
//!   lines by a leading `{`, else CSV with a header row. CSV and JSON types are inferred from the
//!   whole file. A key that stands twice in the table is an init error naming it; null keys are
//!   left out.
//! - **The join** is a left join, vectorized: a hash index from key to table row is built at init,
//!   each batch becomes one list of row indices, and each table column is taken by it. A row whose
//!   key is absent from the table, or null, gets nulls in the joined columns.
//! - **Key types**: keys compare as integers when both sides are integers of any width, and as
//!   text otherwise (a string as it is, a number by its decimal digits): `on: "to_string(id)"`
//!   meets an integer key column, and an integer `on` meets a string key column. Floats compare
//!   by Arrow's text (`1.5`, `1.0`: never equal to the integer `1`), so they make poor keys.
//! - **`set`** columns are evaluated after the join, on the input row with the joined columns
//!   added (each sees those, not the other `set` results); they may also be constants
//!   (`source: "'fx-2024'"`).
//!
//! A row whose `on` or `set` expression fails fails alone: the host sends its message to the
//! dead-letter route with the reason. Only the columns the expressions read cross into the sandbox.

use std::collections::hash_map::{Entry, HashMap};
use std::io::Cursor;
use std::sync::Arc;

use arrow_cast::cast;
use indexmap::IndexMap;
use serde::Deserialize;
use weir_expr::{Expr, Reads};
use weir_guest_sdk::arrow_array::cast::AsArray;
use weir_guest_sdk::arrow_array::types::Int64Type;
use weir_guest_sdk::arrow_array::{Array, ArrayRef, UInt32Array};
use weir_guest_sdk::arrow_schema::{ArrowError, DataType, SchemaRef};
use weir_guest_sdk::expr::{self, Columns, RowErrors};
use weir_guest_sdk::{export_transform, Error, Merge, Output, RecordBatch, Transform};

/// The plugin's params.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// The name the config grants the table file under (`files: { NAME: path }`).
    pub table: String,
    /// The table's format; sniffed from its first bytes when absent.
    #[serde(default)]
    pub format: Option<Format>,
    /// An expression over the batch: each row's join key.
    pub on: String,
    /// The table's key column.
    pub key: String,
    /// The table columns to add (default: all but the key).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Put before each joined column's name.
    #[serde(default)]
    pub prefix: String,
    /// Columns evaluated after the join: `name: expression`.
    #[serde(default)]
    pub set: IndexMap<String, String>,
}

/// Table formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Comma-separated, with a header row.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet (uncompressed, Snappy).
    Parquet,
}

/// The enrich transform.
#[derive(Debug)]
pub struct Enrich {
    on: Expr,
    index: Index,
    /// `(output name, table column)` for each joined column.
    joined: Vec<(String, ArrayRef)>,
    set: Columns,
}

impl Transform for Enrich {
    type Params = Params;

    fn new(p: Params) -> Result<Self, Error> {
        let on = expr::parse("on", &p.on)?;
        let set = Columns::parse("set", p.set)?;
        let bytes =
            weir_guest_sdk::read_file(&p.table).map_err(|e| Error::new(format!("table: {e}")))?;
        let format = p.format.unwrap_or_else(|| sniff(&bytes));
        let table = load(bytes, format)
            .map_err(|e| Error::new(format!("table `{}` ({format:?}): {e}", p.table)))?;
        let schema = table.schema();
        let has = |name: &str| schema.index_of(name).is_ok();
        let all = || {
            let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
            names.join(", ")
        };
        if !has(&p.key) {
            return Err(Error::new(format!(
                "key: table `{}` has no column `{}` (it has {})",
                p.table,
                p.key,
                all()
            )));
        }
        let names: Vec<String> = match p.columns {
            Some(names) => {
                if let Some(missing) = names.iter().find(|n| !has(n)) {
                    return Err(Error::new(format!(
                        "columns: table `{}` has no column `{missing}` (it has {})",
                        p.table,
                        all()
                    )));
                }
                names
            }
            None => schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| *n != p.key)
                .collect(),
        };
        let joined = names
            .iter()
            .filter_map(|n| Some((format!("{}{n}", p.prefix), table.column_by_name(n)?.clone())))
            .collect();
        let keys = table
            .column_by_name(&p.key)
            .ok_or_else(|| Error::new(format!("key: no column `{}`", p.key)))?;
        let index =
            Index::new(keys).map_err(|e| Error::new(format!("key: {e} in table `{}`", p.table)))?;
        Ok(Enrich {
            on,
            index,
            joined,
            set,
        })
    }

    fn reads(&self) -> Option<Vec<String>> {
        self.read_set().map(|r| r.paths)
    }

    fn lengths(&self) -> Option<Vec<String>> {
        self.read_set().map(|r| r.lengths)
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        let mut errors = RowErrors::new(batch.num_rows());
        let keys = expr::evaluate("on", &self.on, &batch, &mut errors)?;
        let rows = self.index.lookup(&keys)?;
        let mut columns = self
            .joined
            .iter()
            .map(|(name, column)| {
                Ok((name.clone(), arrow_select::take::take(column, &rows, None)?))
            })
            .collect::<Result<Vec<_>, ArrowError>>()?;
        if !self.set.is_empty() {
            let with_joined = with_columns(&batch, &columns)?;
            for (name, column) in self.set.evaluate("set", &with_joined, &mut errors)? {
                match columns.iter_mut().find(|(n, _)| *n == name) {
                    Some(slot) => slot.1 = column,
                    None => columns.push((name, column)),
                }
            }
        }
        Ok(Output::Merge(Merge {
            keep: None,
            errors: errors.into_array(),
            columns,
        }))
    }
}

impl Enrich {
    /// What `on` and `set` read. `set` may read joined columns: those are made here, not read
    /// from the batch.
    fn read_set(&self) -> Option<Reads> {
        let mut set = expr::reads(self.set.exprs())?;
        let joined = |path: &String| {
            let root = path.split('.').next().unwrap_or(path);
            self.joined.iter().any(|(joined, _)| joined == root)
        };
        set.paths.retain(|p| !joined(p));
        set.lengths.retain(|p| !joined(p));
        set.extend(self.on.reads()?);
        Some(set)
    }
}

/// `batch` with `columns` added, or replacing those of the same name: one new batch for all.
fn with_columns(
    batch: &RecordBatch,
    columns: &[(String, ArrayRef)],
) -> Result<RecordBatch, ArrowError> {
    let mut fields = batch.schema().fields().to_vec();
    let mut arrays = batch.columns().to_vec();
    for (name, column) in columns {
        weir_guest_sdk::abi::upsert_column(&mut fields, &mut arrays, name, Arc::clone(column));
    }
    let schema = weir_guest_sdk::arrow_schema::Schema::new(fields);
    let options = weir_guest_sdk::arrow_array::RecordBatchOptions::new()
        .with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(schema), arrays, &options)
}

/// The format of a table whose params name none: Parquet by its magic, JSON lines by a leading
/// `{`, else CSV.
fn sniff(bytes: &[u8]) -> Format {
    if bytes.starts_with(b"PAR1") {
        Format::Parquet
    } else if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        Format::Jsonl
    } else {
        Format::Csv
    }
}

/// The whole table as one batch.
fn load(bytes: Vec<u8>, format: Format) -> Result<RecordBatch, String> {
    let text = |e: ArrowError| e.to_string();
    let (schema, batches): (SchemaRef, Vec<Result<RecordBatch, ArrowError>>) = match format {
        Format::Csv => {
            let csv = arrow_csv::reader::Format::default().with_header(true);
            let (schema, _) = csv.infer_schema(Cursor::new(&bytes), None).map_err(text)?;
            let schema = Arc::new(schema);
            let reader = arrow_csv::ReaderBuilder::new(Arc::clone(&schema))
                .with_format(csv)
                .build(Cursor::new(&bytes))
                .map_err(text)?;
            (schema, reader.collect())
        }
        Format::Jsonl => {
            let (schema, _) =
                arrow_json::reader::infer_json_schema(Cursor::new(&bytes), None).map_err(text)?;
            let schema = Arc::new(schema);
            let reader = arrow_json::ReaderBuilder::new(Arc::clone(&schema))
                .build(Cursor::new(&bytes))
                .map_err(text)?;
            (schema, reader.collect())
        }
        Format::Parquet => {
            let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                bytes::Bytes::from(bytes),
            )
            .map_err(|e| e.to_string())?;
            let schema = Arc::clone(builder.schema());
            (
                schema,
                builder.build().map_err(|e| e.to_string())?.collect(),
            )
        }
    };
    let batches = batches
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(text)?;
    arrow_select::concat::concat_batches(&schema, &batches).map_err(text)
}

/// Key to table row. Integer keys are indexed as integers; every key type can also be indexed
/// by its text, built the first time a batch's keys are not integers.
#[derive(Debug)]
struct Index {
    keys: ArrayRef,
    by_int: Option<HashMap<i64, u32>>,
    by_text: Option<HashMap<String, u32>>,
}

impl Index {
    /// Indexes the table's key column; a key that stands twice is an error naming it.
    fn new(keys: &ArrayRef) -> Result<Self, String> {
        let mut index = Index {
            keys: Arc::clone(keys),
            by_int: None,
            by_text: None,
        };
        if is_int(keys.data_type()) {
            index.by_int = Some(build(
                &cast(keys, &DataType::Int64).map_err(|e| e.to_string())?,
                |a| a.as_primitive::<Int64Type>().iter(),
            )?);
        } else {
            index.by_text = Some(text_index(keys)?);
        }
        Ok(index)
    }

    /// For each key, its table row, or null where the table has no such key (or the key is
    /// null).
    fn lookup(&mut self, keys: &ArrayRef) -> Result<UInt32Array, Error> {
        if let (Some(by_int), true) = (&self.by_int, is_int(keys.data_type())) {
            let keys = cast(keys, &DataType::Int64)?;
            let keys = keys.as_primitive::<Int64Type>();
            return Ok(keys.iter().map(|k| by_int.get(&k?).copied()).collect());
        }
        let by_text = match &mut self.by_text {
            Some(index) => index,
            slot @ None => slot.insert(text_index(&self.keys).map_err(Error::new)?),
        };
        let keys = as_text(keys).map_err(|e| Error::new(format!("on: {e}")))?;
        let keys = keys.as_string::<i32>();
        Ok(keys.iter().map(|k| by_text.get(k?).copied()).collect())
    }
}

fn is_int(t: &DataType) -> bool {
    // u64 beyond i64 would not survive the cast: it compares as text.
    t.is_integer() && *t != DataType::UInt64
}

/// `keys` as Utf8: strings as they are, numbers by their decimal text.
fn as_text(keys: &ArrayRef) -> Result<ArrayRef, String> {
    let t = keys.data_type();
    if t.is_nested() || !arrow_cast::can_cast_types(t, &DataType::Utf8) {
        return Err(format!("keys must be strings or numbers, not {t}"));
    }
    cast(keys, &DataType::Utf8).map_err(|e| e.to_string())
}

fn text_index(keys: &ArrayRef) -> Result<HashMap<String, u32>, String> {
    let text = as_text(keys)?;
    build(&text, |a| {
        a.as_string::<i32>().iter().map(|k| k.map(str::to_string))
    })
}

/// Key to row over the values `iter` reads from `keys`; nulls are left out.
fn build<'a, K, I>(
    keys: &'a ArrayRef,
    iter: impl FnOnce(&'a ArrayRef) -> I,
) -> Result<HashMap<K, u32>, String>
where
    K: std::hash::Hash + Eq + std::fmt::Display,
    I: Iterator<Item = Option<K>>,
{
    let mut index = HashMap::with_capacity(keys.len());
    for (row, key) in iter(keys).enumerate() {
        let Some(key) = key else { continue };
        let row = u32::try_from(row).map_err(|_| "over 2^32 rows".to_string())?;
        match index.entry(key) {
            Entry::Occupied(first) => {
                return Err(format!(
                    "`{}` stands twice, in rows {} and {} (counting from 1)",
                    first.key(),
                    first.get() + 1,
                    row + 1
                ))
            }
            Entry::Vacant(slot) => {
                slot.insert(row);
            }
        }
    }
    Ok(index)
}

export_transform!(Enrich);

#[cfg(test)]
mod tests;
