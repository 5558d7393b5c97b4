//! The weir guest ABI, version 1: names, constants and the wire form of a transform's answer.
//!
//! This module is plain Rust with no wasm in it, so the host links it too: the host and every
//! guest built with this SDK agree on the contract by construction. `guest-sdk/ABI.md` is the
//! normative text for authors in other languages.

use std::sync::Arc;

use arrow_array::cast::AsArray;

use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch, StringArray, UInt32Array};
use arrow_schema::{ArrowError, DataType, Field, FieldRef, Schema, SchemaRef};

/// The ABI version this SDK implements; a guest exports it from `weir_abi_version`.
pub const ABI_VERSION: i32 = 1;

/// Export names the host looks up.
pub mod exports {
    /// `() -> i32`: the ABI version the guest implements.
    pub const ABI_VERSION: &str = "weir_abi_version";
    /// `(len: i32) -> i32`: a guest buffer of `len` bytes, 8-byte aligned; 0 if it can't.
    pub const ALLOC: &str = "weir_alloc";
    /// `(ptr: i32, len: i32)`: gives back a buffer from `weir_alloc` that was not passed on.
    pub const FREE: &str = "weir_free";
    /// `(params_ptr: i32, params_len: i32) -> i64`: params JSON in, manifest JSON out.
    pub const INIT: &str = "weir_init";
    /// `(ipc_ptr: i32, ipc_len: i32) -> i64`: Arrow IPC stream in, Arrow IPC stream out.
    pub const TRANSFORM: &str = "weir_transform";
    /// `() -> i64`: the message of the last failed call.
    pub const LAST_ERROR: &str = "weir_last_error";
    /// The guest's linear memory.
    pub const MEMORY: &str = "memory";
}

/// The import module the host offers; a guest may import nothing else.
pub const IMPORT_MODULE: &str = "weir";
/// `log(level: i32, ptr: i32, len: i32)`: one UTF-8 log line.
pub const IMPORT_LOG: &str = "log";
/// `read_file(name_ptr: i32, name_len: i32, dst_ptr: i32, dst_cap: i32) -> i64`: the size of the
/// granted file `name`, its bytes written at `dst` when `dst_cap` is at least that; `-1` when the
/// config grants no file of that name.
pub const IMPORT_READ_FILE: &str = "read_file";

/// Output schema metadata key that selects how the host applies the answer.
pub const OUTPUT_MODE_KEY: &str = "weir.output";
/// Merge mode (the default): columns are as long as the input and merged into it by name.
pub const OUTPUT_MODE_MERGE: &str = "merge";
/// Replace mode: the answer is the whole new batch.
pub const OUTPUT_MODE_REPLACE: &str = "replace";
/// Merge-mode column: `Boolean`; rows that are false or null are dropped (filtered).
pub const KEEP_COLUMN: &str = "__weir_keep";
/// Merge-mode column: `Utf8`; a non-null value fails that row alone, with that reason.
pub const ERROR_COLUMN: &str = "__weir_error";

/// Packs a guest pointer and length into the `i64` that `weir_init`, `weir_transform` and
/// `weir_last_error` return. Negative values mean failure.
pub fn pack(ptr: u32, len: u32) -> i64 {
    ((u64::from(ptr) << 32) | u64::from(len)) as i64
}

/// Unpacks a non-negative result into (pointer, length); `None` for an error result.
pub fn unpack(value: i64) -> Option<(u32, u32)> {
    (value >= 0).then_some(((value as u64 >> 32) as u32, value as u32))
}

/// Log levels of the `log` import.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// Errors.
    Error = 1,
    /// Warnings.
    Warn = 2,
    /// Information.
    Info = 3,
    /// Debugging detail.
    Debug = 4,
}

impl LogLevel {
    /// The level for a raw value; unknown values read as `Info`.
    pub fn from_i32(v: i32) -> Self {
        match v {
            1 => Self::Error,
            2 => Self::Warn,
            4 => Self::Debug,
            _ => Self::Info,
        }
    }
}

/// What `weir_init` answers: the transform's declaration to the host.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// What the transform reads; `None` means every column. Only this crosses into the sandbox,
    /// so a transform that names it makes every call cheaper. An entry is a top-level column, or
    /// a dotted path into structs (`customer.name`): a struct then crosses with only the fields
    /// on the paths named into it. A column whose name has a dot in it is matched whole first.
    #[serde(default)]
    pub reads: Option<Vec<String>>,
    /// Paths (as in `reads`) of lists the transform reads only the length and nulls of, not the
    /// elements: such a list crosses as a list of nulls, offsets and validity unchanged. A path
    /// also read in full (in `reads`, or under it) crosses whole; anything but a list crosses
    /// whole. Absent from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lengths: Option<Vec<String>>,
    /// Columns removed after the answer is applied. Absent from the JSON when `None`, so a guest
    /// that does not use it still loads on hosts that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop: Option<Vec<String>>,
    /// After the answer is applied (and `drop`), only these columns remain, in this order; names
    /// the batch lacks are left out. Absent from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select: Option<Vec<String>>,
    /// Columns the host sets itself from the input, after it merges the answer's columns: each
    /// the input's field at a dotted path into structs. Pass-through columns (a projection's
    /// `id: id`, `name: customer.name`) thus never cross the boundary. Merge answers only.
    /// Absent from the JSON when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy: Option<Vec<CopyColumn>>,
}

/// One column the host copies from the input (manifest key `copy`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyColumn {
    /// The column to set (added, or replacing the one of that name).
    pub name: String,
    /// The input field, dotted into structs: `id`, `customer.name`. A field of a null struct is
    /// null; a path the batch lacks, or that meets a value that is not a struct, gives nulls.
    pub path: String,
}

impl Manifest {
    /// What of the input the result of a merge answer with the columns `answered` is made of,
    /// as `reads` entries; `None` for every column. With `select`, that is the selected columns
    /// neither answered nor copied, and the columns `copy` reads from; without it, the columns
    /// keep their places, so all of them.
    pub fn merge_needs(&self, answered: &[&str]) -> Option<Vec<String>> {
        let select = self.select.as_ref()?;
        let copies = self.copy.iter().flatten();
        let mut needs: Vec<String> = select
            .iter()
            .filter(|name| {
                !answered.contains(&name.as_str()) && !copies.clone().any(|c| &c.name == *name)
            })
            .cloned()
            .collect();
        // The root of each copied path, whole: `field_at` splits every path at its dots.
        needs.extend(copies.map(|c| c.path.split('.').next().unwrap_or(&c.path).to_string()));
        Some(needs)
    }

    /// Applies `drop`, then `select`, to the batch that goes on.
    fn shape(&self, batch: RecordBatch) -> Result<RecordBatch, ArrowError> {
        if self.drop.is_none() && self.select.is_none() {
            return Ok(batch);
        }
        let schema = batch.schema();
        let dropped = |name: &str| self.drop.iter().flatten().any(|d| d == name);
        let indices: Vec<usize> = match &self.select {
            Some(names) => {
                let mut indices = Vec::with_capacity(names.len());
                for i in names.iter().filter(|n| !dropped(n)) {
                    // A name selected twice is kept once, where it first stands.
                    match schema.index_of(i) {
                        Ok(i) if !indices.contains(&i) => indices.push(i),
                        _ => {}
                    }
                }
                indices
            }
            None => (0..schema.fields().len())
                .filter(|&i| !dropped(schema.field(i).name()))
                .collect(),
        };
        batch.project(&indices)
    }
}

/// A transform's answer for one batch.
#[derive(Debug, Clone)]
pub enum Output {
    /// Rows and columns relative to the input: untouched data never crosses the boundary.
    Merge(Merge),
    /// A whole new batch (any rows, any columns).
    Replace(RecordBatch),
}

/// The merge-mode answer. Every array has exactly as many rows as the input batch.
#[derive(Debug, Clone, Default)]
pub struct Merge {
    /// Rows to keep (false or null drops the row); `None` keeps every row.
    pub keep: Option<BooleanArray>,
    /// Per-row failures: a non-null entry sends that row to the error policy with the text.
    pub errors: Option<StringArray>,
    /// Columns to add, or to replace by name.
    pub columns: Vec<(String, ArrayRef)>,
}

impl Output {
    /// Keeps the rows where `mask` is true.
    pub fn keep(mask: BooleanArray) -> Self {
        Output::Merge(Merge {
            keep: Some(mask),
            ..Merge::default()
        })
    }

    /// Adds (or replaces) columns, keeping every row.
    pub fn with_columns(columns: Vec<(String, ArrayRef)>) -> Self {
        Output::Merge(Merge {
            columns,
            ..Merge::default()
        })
    }

    /// The answer as one Arrow record batch, ready for the IPC stream.
    pub fn into_batch(self, input_rows: usize) -> Result<RecordBatch, ArrowError> {
        match self {
            Output::Replace(batch) => {
                let mut metadata = batch.schema().metadata().clone();
                metadata.insert(OUTPUT_MODE_KEY.into(), OUTPUT_MODE_REPLACE.into());
                let schema = Schema::new(batch.schema().fields().clone()).with_metadata(metadata);
                batch.with_schema(Arc::new(schema))
            }
            Output::Merge(m) => {
                let mut fields = Vec::with_capacity(m.columns.len() + 2);
                let mut arrays: Vec<ArrayRef> = Vec::with_capacity(m.columns.len() + 2);
                if let Some(keep) = m.keep {
                    fields.push(Field::new(KEEP_COLUMN, DataType::Boolean, true));
                    arrays.push(Arc::new(keep));
                }
                if let Some(errors) = m.errors {
                    fields.push(Field::new(ERROR_COLUMN, DataType::Utf8, true));
                    arrays.push(Arc::new(errors));
                }
                for (name, array) in m.columns {
                    fields.push(Field::new(name, array.data_type().clone(), true));
                    arrays.push(array);
                }
                let schema = Schema::new(fields).with_metadata(
                    [(OUTPUT_MODE_KEY.to_string(), OUTPUT_MODE_MERGE.to_string())].into(),
                );
                let options =
                    arrow_array::RecordBatchOptions::new().with_row_count(Some(input_rows));
                RecordBatch::try_new_with_options(Arc::new(schema), arrays, &options)
            }
        }
    }

    /// Reads an answer back from its record batch (the host's side of `into_batch`).
    pub fn from_batch(batch: RecordBatch) -> Result<Output, ArrowError> {
        let mode = batch.schema().metadata().get(OUTPUT_MODE_KEY).cloned();
        match mode.as_deref() {
            Some(OUTPUT_MODE_REPLACE) => {
                // Drop the mode key, keep the rest of the metadata.
                let mut metadata = batch.schema().metadata().clone();
                metadata.remove(OUTPUT_MODE_KEY);
                let schema = Schema::new(batch.schema().fields().clone()).with_metadata(metadata);
                let options =
                    arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
                let columns = batch.columns().to_vec();
                Ok(Output::Replace(RecordBatch::try_new_with_options(
                    Arc::new(schema),
                    columns,
                    &options,
                )?))
            }
            None | Some(OUTPUT_MODE_MERGE) => {
                let mut merge = Merge::default();
                let schema = batch.schema();
                for (field, array) in schema.fields().iter().zip(batch.columns()) {
                    match field.name().as_str() {
                        KEEP_COLUMN => {
                            let keep = array.as_any().downcast_ref::<BooleanArray>().ok_or_else(
                                || ArrowError::SchemaError(format!("{KEEP_COLUMN} must be Boolean")),
                            )?;
                            merge.keep = Some(keep.clone());
                        }
                        ERROR_COLUMN => {
                            let errors = array.as_any().downcast_ref::<StringArray>().ok_or_else(
                                || ArrowError::SchemaError(format!("{ERROR_COLUMN} must be Utf8")),
                            )?;
                            merge.errors = Some(errors.clone());
                        }
                        name => merge.columns.push((name.to_string(), Arc::clone(array))),
                    }
                }
                Ok(Output::Merge(merge))
            }
            Some(other) => Err(ArrowError::SchemaError(format!(
                "unknown {OUTPUT_MODE_KEY} `{other}` (expected `{OUTPUT_MODE_MERGE}` or `{OUTPUT_MODE_REPLACE}`)"
            ))),
        }
    }
}

/// An answer applied to the full input batch.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The batch that goes on to the next stage.
    pub batch: RecordBatch,
    /// For each output row, the input row it came from; `None` when the transform replaced the
    /// batch and rows can no longer be traced.
    pub rows: Option<UInt32Array>,
    /// Input rows that failed, with the reason.
    pub errors: Vec<(u32, String)>,
}

/// Applies an answer to the input batch the way the host does: merges columns by name, drops
/// the rows that were not kept or that failed, then shapes the columns by the manifest's `drop`
/// and `select` (in either output mode).
pub fn apply(
    input: &RecordBatch,
    output: Output,
    manifest: &Manifest,
) -> Result<Applied, ArrowError> {
    apply_unselected(input, output, manifest)?.select()
}

/// An answer applied to the input, but its rows not yet taken: [`apply`] without its last step.
/// A host running a chain of transforms takes rows once, at the end, and only of the columns
/// still there then.
#[derive(Debug, Clone)]
pub struct Unselected {
    /// The merged and shaped batch, as many rows as the input (a replace answer: its own).
    pub batch: RecordBatch,
    /// The rows of `batch` that go on, in order; `None` for all of them.
    pub rows: Option<UInt32Array>,
    /// Input rows that failed, with the reason.
    pub errors: Vec<(u32, String)>,
    /// The answer replaced the batch: its rows no longer trace back to the input's.
    pub replaced: bool,
}

impl Unselected {
    /// Takes the rows that go on.
    pub fn select(self) -> Result<Applied, ArrowError> {
        if self.replaced {
            return Ok(Applied {
                batch: self.batch,
                rows: None,
                errors: self.errors,
            });
        }
        let n = self.batch.num_rows();
        let (batch, rows) = match self.rows {
            None => (self.batch, UInt32Array::from_iter_values(0..n as u32)),
            Some(rows) => (take_rows(&self.batch, &rows)?, rows),
        };
        Ok(Applied {
            batch,
            rows: Some(rows),
            errors: self.errors,
        })
    }
}

/// The rows of `batch` at `rows` (a batch without columns keeps its row count).
pub fn take_rows(batch: &RecordBatch, rows: &UInt32Array) -> Result<RecordBatch, ArrowError> {
    if batch.num_columns() == 0 {
        let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(rows.len()));
        return RecordBatch::try_new_with_options(batch.schema(), Vec::new(), &options);
    }
    arrow_select::take::take_record_batch(batch, rows)
}

/// [`apply`], but the rows are left for [`Unselected::select`] (or the caller) to take.
pub fn apply_unselected(
    input: &RecordBatch,
    output: Output,
    manifest: &Manifest,
) -> Result<Unselected, ArrowError> {
    let merge = match output {
        Output::Replace(_) if manifest.copy.is_some() => {
            return Err(ArrowError::InvalidArgumentError(
                "manifest `copy` applies to merge answers only".into(),
            ))
        }
        Output::Replace(batch) => {
            return Ok(Unselected {
                batch: manifest.shape(batch)?,
                rows: None,
                errors: Vec::new(),
                replaced: true,
            })
        }
        Output::Merge(merge) => merge,
    };
    let n = input.num_rows();
    let check_len = |what: &str, len: usize| {
        if len == n {
            Ok(())
        } else {
            Err(ArrowError::InvalidArgumentError(format!(
                "{what} has {len} rows, the input has {n}"
            )))
        }
    };
    let mut schema_fields: Vec<FieldRef> = input.schema().fields().iter().cloned().collect();
    let mut columns: Vec<ArrayRef> = input.columns().to_vec();
    for (name, array) in merge.columns {
        check_len(&format!("column `{name}`"), array.len())?;
        upsert_column(&mut schema_fields, &mut columns, &name, array);
    }
    for copy in manifest.copy.iter().flatten() {
        let array = field_at(input, &copy.path)?;
        upsert_column(&mut schema_fields, &mut columns, &copy.name, array);
    }
    let mut errors = Vec::new();
    if let Some(errs) = &merge.errors {
        check_len(ERROR_COLUMN, errs.len())?;
        for (i, e) in errs.iter().enumerate() {
            if let Some(e) = e {
                errors.push((i as u32, e.to_string()));
            }
        }
    }
    if let Some(keep) = &merge.keep {
        check_len(KEEP_COLUMN, keep.len())?;
    }
    let schema: SchemaRef = Arc::new(Schema::new_with_metadata(
        schema_fields,
        input.schema().metadata().clone(),
    ));
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(n));
    // Shaped before rows are taken, so dropped columns are never copied.
    let merged = manifest.shape(RecordBatch::try_new_with_options(
        schema, columns, &options,
    )?)?;
    let rows = if merge.keep.is_none() && errors.is_empty() {
        None
    } else {
        // A row survives when it is kept (true, not null) and did not fail.
        let survives = |i: usize| {
            let kept = merge
                .keep
                .as_ref()
                .is_none_or(|k| k.is_valid(i) && k.value(i));
            let failed = merge.errors.as_ref().is_some_and(|e| e.is_valid(i));
            kept && !failed
        };
        let rows = UInt32Array::from_iter_values((0..n).filter(|&i| survives(i)).map(|i| i as u32));
        // As many as the input means all, in place.
        (rows.len() < n).then_some(rows)
    };
    Ok(Unselected {
        batch: merged,
        rows,
        errors,
        replaced: false,
    })
}

/// What a transform is given of the rows `rows` of `batch` (all when `None`): the columns
/// cut down to what the manifest reads first, so that only those rows are taken.
pub fn input_of(
    batch: &RecordBatch,
    rows: Option<&UInt32Array>,
    manifest: &Manifest,
) -> Result<RecordBatch, ArrowError> {
    let cut = project_reads(batch, manifest)?;
    match rows {
        Some(r) => take_rows(&cut, r),
        None => Ok(cut),
    }
}

/// Applies the answer to [`input_of`] to the rows `rows` of `batch`, taking of them only the
/// columns the result is made of ([`Manifest::merge_needs`]). The rows that go on are left for
/// the caller to take, once, after a chain of transforms.
pub fn apply_to_rows(
    batch: &RecordBatch,
    rows: Option<&UInt32Array>,
    output: Output,
    manifest: &Manifest,
) -> Result<Unselected, ArrowError> {
    let needs = match &output {
        Output::Merge(m) => {
            let answered: Vec<&str> = m.columns.iter().map(|(n, _)| n.as_str()).collect();
            manifest.merge_needs(&answered)
        }
        Output::Replace(_) => Some(Vec::new()),
    };
    let needed = Manifest {
        reads: needs,
        ..Manifest::default()
    };
    apply_unselected(&input_of(batch, rows, &needed)?, output, manifest)
}

/// The field of `batch` at a dotted path into structs (manifest key `copy`), as JMESPath reads
/// `a.b.c`: a field of a null struct is null, and a missing field or a value that is not a struct
/// gives nulls. A map on the way is an error: its keys are data, not a path the host follows.
pub fn field_at(batch: &RecordBatch, path: &str) -> Result<ArrayRef, ArrowError> {
    let n = batch.num_rows();
    let nulls = || arrow_array::new_null_array(&DataType::Null, n);
    let mut names = path.split('.');
    let Some(mut current) = names.next().and_then(|c| batch.column_by_name(c)).cloned() else {
        return Ok(nulls());
    };
    for name in names {
        match current.data_type() {
            DataType::Struct(_) => {}
            DataType::Map(_, _) => {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "copy `{path}`: `{name}` is read from a map, which the host does not follow"
                )))
            }
            _ => return Ok(nulls()),
        }
        let parent = current.as_struct();
        let Some(child) = parent.column_by_name(name) else {
            return Ok(nulls());
        };
        current = with_parent_nulls(child, parent.nulls())?;
    }
    Ok(current)
}

/// `child` (a struct's field) with the struct's null rows made null too.
pub fn with_parent_nulls(
    child: &ArrayRef,
    parent: Option<&arrow_buffer::NullBuffer>,
) -> Result<ArrayRef, ArrowError> {
    match parent {
        // A null-typed child is all null already, and carries no validity.
        Some(p) if p.null_count() > 0 && !child.data_type().is_null() => {
            let nulls = arrow_buffer::NullBuffer::union(child.nulls(), Some(p));
            let data = child.to_data().into_builder().nulls(nulls).build()?;
            Ok(arrow_array::make_array(data))
        }
        _ => Ok(Arc::clone(child)),
    }
}

/// Sets the column `name` (nullable): replaces the one of that name in place, or appends it.
pub fn upsert_column(
    fields: &mut Vec<FieldRef>,
    columns: &mut Vec<ArrayRef>,
    name: &str,
    array: ArrayRef,
) {
    let field = Arc::new(Field::new(name, array.data_type().clone(), true));
    match fields.iter().position(|f| f.name() == name) {
        Some(i) => {
            fields[i] = field;
            columns[i] = array;
        }
        None => {
            fields.push(field);
            columns.push(array);
        }
    }
}

/// The input a transform is given: `batch` cut down to what the manifest's `reads` and
/// `lengths` name (absent columns and fields are skipped), in the batch's column order.
pub fn project_reads(batch: &RecordBatch, manifest: &Manifest) -> Result<RecordBatch, ArrowError> {
    let Some(reads) = &manifest.reads else {
        return Ok(batch.clone());
    };
    let schema = batch.schema();
    let mut wanted: Vec<(usize, Need)> = Vec::new();
    let lengths = manifest.lengths.iter().flatten();
    for (entry, need) in reads
        .iter()
        .map(|p| (p, Need::All))
        .chain(lengths.map(|p| (p, Need::Length)))
    {
        // A top-level name with a dot in it is that column, not a path.
        let (column, rest) = match schema.index_of(entry) {
            Ok(i) => (i, None),
            Err(_) => match entry.split_once('.') {
                Some((root, rest)) => match schema.index_of(root) {
                    Ok(i) => (i, Some(rest)),
                    Err(_) => continue,
                },
                None => continue,
            },
        };
        let at = match wanted.iter().position(|(i, _)| *i == column) {
            Some(at) => at,
            None => {
                wanted.push((column, Need::Fields(Vec::new())));
                wanted.len() - 1
            }
        };
        let path: Vec<&str> = rest.map(|r| r.split('.').collect()).unwrap_or_default();
        wanted[at].1.add(&path, need);
    }
    wanted.sort_by_key(|(i, _)| *i);
    let mut fields = Vec::with_capacity(wanted.len());
    let mut columns = Vec::with_capacity(wanted.len());
    for (i, need) in &wanted {
        let (field, column) = need.cut(&schema.fields()[*i], batch.column(*i))?;
        fields.push(field);
        columns.push(column);
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    let options = arrow_array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(schema), columns, &options)
}

/// What a transform reads of one value: all of it, the length of a list, or some fields of a
/// struct.
#[derive(Debug)]
enum Need {
    All,
    Length,
    Fields(Vec<(String, Need)>),
}

impl Need {
    /// Adds `need` at `path` below this value.
    fn add(&mut self, path: &[&str], need: Need) {
        let Some((first, rest)) = path.split_first() else {
            *self = match (std::mem::replace(self, Need::All), need) {
                (Need::Fields(f), n) if f.is_empty() => n,
                (Need::Length, Need::Length) => Need::Length,
                // Read whole, or both as a list and as a struct: send it all.
                _ => Need::All,
            };
            return;
        };
        match self {
            Need::All => {}
            Need::Length => *self = Need::All,
            Need::Fields(fields) => {
                let at = match fields.iter().position(|(name, _)| name == first) {
                    Some(at) => at,
                    None => {
                        fields.push((first.to_string(), Need::Fields(Vec::new())));
                        fields.len() - 1
                    }
                };
                fields[at].1.add(rest, need);
            }
        }
    }

    /// `array` (described by `field`) cut down to what is needed of it.
    fn cut(&self, field: &FieldRef, array: &ArrayRef) -> Result<(FieldRef, ArrayRef), ArrowError> {
        let whole = || Ok((Arc::clone(field), Arc::clone(array)));
        match (self, array.data_type()) {
            (Need::Length, DataType::List(item)) => {
                let list = array.as_list::<i32>();
                let nulls = arrow_array::new_null_array(&DataType::Null, list.values().len());
                let item = Arc::new(Field::new(item.name(), DataType::Null, true));
                let cut = arrow_array::ListArray::try_new(
                    item,
                    list.offsets().clone(),
                    nulls,
                    list.nulls().cloned(),
                )?;
                let field = Field::new(field.name(), cut.data_type().clone(), field.is_nullable());
                Ok((Arc::new(field), Arc::new(cut)))
            }
            (Need::Fields(needed), DataType::Struct(_)) => {
                let parent = array.as_struct();
                let mut fields = Vec::new();
                for (name, need) in needed {
                    if let Some((i, child_field)) = parent.fields().find(name) {
                        let (f, c) = need.cut(child_field, parent.column(i))?;
                        fields.push((i, f, c));
                    }
                }
                // None of the named fields exists: send the struct as it is (they read null).
                if fields.is_empty() {
                    return whole();
                }
                fields.sort_by_key(|(i, _, _)| *i);
                let (fields, columns): (Vec<FieldRef>, Vec<ArrayRef>) =
                    fields.into_iter().map(|(_, f, c)| (f, c)).unzip();
                let cut = arrow_array::StructArray::try_new(
                    fields.into(),
                    columns,
                    parent.nulls().cloned(),
                )?;
                let field = Field::new(field.name(), cut.data_type().clone(), field.is_nullable());
                Ok((Arc::new(field), Arc::new(cut)))
            }
            _ => whole(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int64Array, StructArray};

    fn input() -> RecordBatch {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3, 4]));
        let b: ArrayRef = Arc::new(StringArray::from(vec!["w", "x", "y", "z"]));
        RecordBatch::try_from_iter(vec![("a", a), ("b", b)]).unwrap()
    }

    #[test]
    fn pack_roundtrip_and_errors() {
        assert_eq!(unpack(pack(0x1234_5678, 42)), Some((0x1234_5678, 42)));
        assert_eq!(unpack(pack(0, 0)), Some((0, 0)));
        assert_eq!(unpack(-1), None);
    }

    #[test]
    fn merge_keeps_selected_rows_and_adds_columns() {
        let out = Output::Merge(Merge {
            keep: Some(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
            ])),
            errors: None,
            columns: vec![(
                "c".into(),
                Arc::new(Int64Array::from(vec![10, 20, 30, 40])) as _,
            )],
        });
        // Through the wire form and back, as between guest and host.
        let out = Output::from_batch(out.into_batch(4).unwrap()).unwrap();
        let applied = apply(&input(), out, &Manifest::default()).unwrap();
        assert_eq!(applied.batch.num_rows(), 2);
        assert_eq!(applied.batch.num_columns(), 3);
        assert_eq!(applied.rows.unwrap().values().to_vec(), vec![0, 3]);
        let c = applied
            .batch
            .column(2)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        assert_eq!(c.values().to_vec(), vec![10, 40]);
    }

    #[test]
    fn merge_replaces_by_name_and_reports_row_errors() {
        let out = Output::Merge(Merge {
            keep: None,
            errors: Some(StringArray::from(vec![None, Some("bad"), None, None])),
            columns: vec![(
                "a".into(),
                Arc::new(Int64Array::from(vec![9, 9, 9, 9])) as _,
            )],
        });
        let applied = apply(&input(), out, &Manifest::default()).unwrap();
        assert_eq!(applied.errors, vec![(1, "bad".to_string())]);
        assert_eq!(applied.batch.num_rows(), 3);
        assert_eq!(applied.batch.num_columns(), 2);
        assert_eq!(applied.rows.unwrap().values().to_vec(), vec![0, 2, 3]);
    }

    fn names(batch: &RecordBatch) -> Vec<String> {
        batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    fn strings(names: &[&str]) -> Option<Vec<String>> {
        Some(names.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn manifest_drop_removes_columns_after_the_merge() {
        let manifest = Manifest {
            drop: strings(&["a", "c", "absent"]),
            ..Manifest::default()
        };
        let out = Output::Merge(Merge {
            keep: Some(BooleanArray::from(vec![true, false, true, true])),
            errors: None,
            columns: vec![
                (
                    "c".into(),
                    Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as _,
                ),
                (
                    "d".into(),
                    Arc::new(Int64Array::from(vec![5, 6, 7, 8])) as _,
                ),
            ],
        });
        let applied = apply(&input(), out, &manifest).unwrap();
        assert_eq!(names(&applied.batch), vec!["b", "d"]);
        assert_eq!(applied.batch.num_rows(), 3);
        assert_eq!(applied.rows.unwrap().values().to_vec(), vec![0, 2, 3]);
    }

    #[test]
    fn manifest_copy_sets_columns_from_input_paths_on_the_host() {
        let tier: ArrayRef = Arc::new(StringArray::from(vec![Some("gold"), None, Some("free")]));
        let customer: ArrayRef = Arc::new(arrow_array::StructArray::new(
            vec![Field::new("tier", DataType::Utf8, true)].into(),
            vec![tier],
            Some(vec![true, true, false].into()),
        ));
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let batch = RecordBatch::try_from_iter(vec![("id", id), ("customer", customer)]).unwrap();
        let copy = |name: &str, path: &str| CopyColumn {
            name: name.into(),
            path: path.into(),
        };
        let manifest = Manifest {
            copy: Some(vec![
                copy("tier", "customer.tier"),
                copy("key", "id"),
                copy("gone", "customer.nope"),
                copy("flat", "id.deeper"),
            ]),
            select: strings(&["key", "tier", "gone", "flat", "n"]),
            ..Manifest::default()
        };
        // The answer's columns are merged first, then the copies.
        let n: ArrayRef = Arc::new(Int64Array::from(vec![7, 8, 9]));
        let applied = apply(
            &batch,
            Output::with_columns(vec![("n".into(), n)]),
            &manifest,
        )
        .unwrap();
        assert_eq!(
            names(&applied.batch),
            vec!["key", "tier", "gone", "flat", "n"]
        );
        let tier = applied.batch.column(1).as_string::<i32>();
        // Row 2's customer is null, so its tier is null though the child holds "free".
        assert_eq!(
            tier.iter().collect::<Vec<_>>(),
            vec![Some("gold"), None, None]
        );
        assert_eq!(applied.batch.column(2).logical_null_count(), 3);
        assert_eq!(applied.batch.column(3).logical_null_count(), 3);
        // A replacing answer has no input rows to copy from.
        assert!(apply(&batch, Output::Replace(batch.clone()), &manifest).is_err());
    }

    #[test]
    fn manifest_select_keeps_only_its_columns_in_its_order() {
        let manifest = Manifest {
            select: strings(&["c", "absent", "a", "c"]),
            ..Manifest::default()
        };
        let out = Output::with_columns(vec![(
            "c".into(),
            Arc::new(Int64Array::from(vec![1, 2, 3, 4])) as _,
        )]);
        let wire = Output::from_batch(out.into_batch(4).unwrap()).unwrap();
        let applied = apply(&input(), wire, &manifest).unwrap();
        assert_eq!(names(&applied.batch), vec!["c", "a"]);
        assert_eq!(applied.batch.num_rows(), 4);
        // Both: drop first, then select; and in replace mode too.
        let manifest = Manifest {
            drop: strings(&["a"]),
            select: strings(&["a", "b"]),
            ..Manifest::default()
        };
        let applied = apply(&input(), Output::Replace(input()), &manifest).unwrap();
        assert_eq!(names(&applied.batch), vec!["b"]);
        // Selecting nothing the batch has leaves its rows, with no columns.
        let manifest = Manifest {
            select: strings(&["absent"]),
            ..Manifest::default()
        };
        let applied = apply(&input(), Output::with_columns(vec![]), &manifest).unwrap();
        assert_eq!(
            (applied.batch.num_rows(), applied.batch.num_columns()),
            (4, 0)
        );
    }

    #[test]
    fn manifest_keys_are_absent_from_the_json_when_unused() {
        // Hosts before `drop`/`select` refuse unknown keys: a guest that does not use them must
        // not send them.
        let json = serde_json::to_string(&Manifest::default()).unwrap();
        assert_eq!(json, r#"{"reads":null}"#);
        let m: Manifest =
            serde_json::from_str(r#"{"reads":["a"],"drop":["b"],"select":null}"#).unwrap();
        assert_eq!(m.drop, strings(&["b"]));
        assert!(serde_json::from_str::<Manifest>(r#"{"dorp":[]}"#).is_err());
    }

    #[test]
    fn merge_with_wrong_length_is_an_error() {
        let out = Output::keep(BooleanArray::from(vec![true]));
        assert!(apply(&input(), out, &Manifest::default()).is_err());
    }

    #[test]
    fn replace_survives_the_wire() {
        let replaced = input().project(&[1]).unwrap();
        let wire = Output::Replace(replaced.clone()).into_batch(4).unwrap();
        match Output::from_batch(wire).unwrap() {
            Output::Replace(b) => assert_eq!(b, replaced),
            Output::Merge(_) => panic!("mode lost on the wire"),
        }
    }

    fn reading(reads: &[&str], lengths: &[&str]) -> Manifest {
        Manifest {
            reads: strings(reads),
            lengths: (!lengths.is_empty()).then(|| strings(lengths)).flatten(),
            ..Manifest::default()
        }
    }

    #[test]
    fn project_reads_skips_absent_columns() {
        let b = project_reads(&input(), &reading(&["b", "nope", "nope.x"], &[])).unwrap();
        assert_eq!(b.num_columns(), 1);
        assert_eq!(b.schema().field(0).name(), "b");
        let all = project_reads(&input(), &Manifest::default()).unwrap();
        assert_eq!(all, input());
    }

    /// `{id, customer: {id, name: null for row 1}, items: [[{sku, qty}], null, []], "a.b"}`,
    /// customer null in row 2.
    fn nested() -> RecordBatch {
        use arrow_array::builder::{Int64Builder, ListBuilder, StringBuilder, StructBuilder};
        let id: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let customer = StructArray::try_new(
            vec![
                Field::new("id", DataType::Utf8, true),
                Field::new("name", DataType::Utf8, true),
            ]
            .into(),
            vec![
                Arc::new(StringArray::from(vec!["c1", "c2", "c3"])),
                Arc::new(StringArray::from(vec![Some("Ann"), None, Some("Cy")])),
            ],
            Some(vec![true, true, false].into()),
        )
        .unwrap();
        let item_fields = vec![
            Field::new("sku", DataType::Utf8, true),
            Field::new("qty", DataType::Int64, true),
        ];
        let mut items = ListBuilder::new(StructBuilder::new(
            item_fields,
            vec![
                Box::new(StringBuilder::new()),
                Box::new(Int64Builder::new()),
            ],
        ));
        for (row, valid) in [
            (vec![("s1", 1), ("s2", 2)], true),
            (vec![], false),
            (vec![], true),
        ] {
            for (sku, qty) in &row {
                let s = items.values();
                s.field_builder::<StringBuilder>(0)
                    .unwrap()
                    .append_value(sku);
                s.field_builder::<Int64Builder>(1)
                    .unwrap()
                    .append_value(*qty);
                s.append(true);
            }
            items.append(valid);
        }
        let items = items.finish();
        let dotted: ArrayRef = Arc::new(StringArray::from(vec!["x", "y", "z"]));
        RecordBatch::try_from_iter(vec![
            ("id", id),
            ("customer", Arc::new(customer) as ArrayRef),
            ("items", Arc::new(items) as ArrayRef),
            ("a.b", dotted),
        ])
        .unwrap()
    }

    #[test]
    fn a_path_sends_only_its_fields_of_a_struct() {
        let b = project_reads(&nested(), &reading(&["customer.name", "id"], &[])).unwrap();
        let schema = b.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            ["id", "customer"],
            "the batch's order, not the manifest's"
        );
        let customer = b.column(1).as_struct();
        assert_eq!(customer.num_columns(), 1);
        assert_eq!(customer.column_names(), ["name"]);
        assert_eq!(
            customer.nulls(),
            nested().column(1).nulls(),
            "the struct's nulls stay"
        );
        // The whole column wins over a path into it, in either order.
        for reads in [["customer", "customer.name"], ["customer.name", "customer"]] {
            let b = project_reads(&nested(), &reading(&reads, &[])).unwrap();
            assert_eq!(b.column(0), nested().column(1));
        }
        // A path to a field the struct lacks sends the struct whole; a path into a
        // non-struct sends that column whole.
        let b = project_reads(&nested(), &reading(&["customer.zip", "id.x"], &[])).unwrap();
        assert_eq!(b.columns(), &nested().columns()[..2]);
    }

    #[test]
    fn a_length_sends_a_list_without_its_elements() {
        let full = nested();
        let b = project_reads(&full, &reading(&[], &["items"])).unwrap();
        let cut = b.column(0).as_list::<i32>();
        let orig = full.column(2).as_list::<i32>();
        assert_eq!(cut.value_type(), DataType::Null);
        assert_eq!(cut.offsets(), orig.offsets());
        assert_eq!(cut.nulls(), orig.nulls());
        assert_eq!(
            (0..3).map(|i| cut.value_length(i)).collect::<Vec<_>>(),
            [2, 0, 0]
        );
        // Read also in full, or a length of something that is not a list: sent whole.
        let b = project_reads(&full, &reading(&["items"], &["items"])).unwrap();
        assert_eq!(b.column(0), full.column(2));
        let b = project_reads(&full, &reading(&[], &["customer", "a.b"])).unwrap();
        assert_eq!(
            b.columns(),
            &[full.column(1).clone(), full.column(3).clone()]
        );
    }

    #[test]
    fn a_top_level_name_with_a_dot_is_that_column() {
        let b = project_reads(&nested(), &reading(&["a.b"], &[])).unwrap();
        assert_eq!(b.schema().field(0).name(), "a.b");
    }

    #[test]
    fn a_cut_batch_survives_the_wire() {
        let b = project_reads(&nested(), &reading(&["customer.name"], &["items"])).unwrap();
        let mut wire = Vec::new();
        crate::ipc::write_stream(&b, &mut wire).unwrap();
        let back = crate::ipc::read_stream(arrow_buffer::Buffer::from_vec(wire)).unwrap();
        assert_eq!(back, b);
    }
}
