//! # `builtin:project`: reshape rows with expressions
//!
//! Either give the whole output row as one multi-select hash:
//!
//! ```yaml
//! transforms:
//!   - plugin: builtin:project
//!     params:
//!       select: "{id: id, name: customer.name, eur: amount * rate, items: length(items)}"
//! ```
//!
//! Input `{"id": "o-1", "amount": 10.0, "rate": 0.9, "customer": {"name": "Ann"}, "items": [{}, {}]}`
//! gives exactly `{"id": "o-1", "name": "Ann", "eur": 9.0, "items": 2}`, with the columns in the
//! hash's order (the host keeps only them: manifest key `select`).
//!
//! Or change some columns and keep the rest:
//!
//! ```yaml
//!     params:
//!       columns: { eur: "amount * rate", tier: "upper(customer.tier)" }   # add or replace
//!       rename: { id: order_id }                                          # old: new
//!       drop: [rate]
//! ```
//!
//! `columns` are evaluated on the input row (one column's expression does not see another's
//! result), then `rename`, then `drop`. A new column, and a renamed one, stands after the columns
//! already there, unless it replaces one of the same name. A key or column that is a plain field
//! (`id`, `customer.name`) and a renamed input column never cross the sandbox: the host copies
//! them from the input itself (manifest `copy`); neither does a dropped one. `select` stands alone: it can't be combined with the others
//! (write them into the hash). Every expression is parsed at init, and a bad one is refused with
//! the param and the position.
//!
//! A row whose expression fails (say `abs(name)` on a string) fails alone: the host sends its
//! message to the dead-letter route with the reason. Only the fields the expressions read cross
//! into the sandbox: `customer.name` takes one field of the struct, `length(items)` a list
//! without its elements.

use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;
use weir_expr::{Ast, Expr, Reads};
use weir_guest_sdk::arrow_array::{new_null_array, Array, ArrayRef, StructArray};
use weir_guest_sdk::arrow_schema::DataType;
use weir_guest_sdk::expr::{self, Columns, RowErrors};
use weir_guest_sdk::{
    abi, export_transform, CopyColumn, Error, Merge, Output, RecordBatch, Transform,
};

/// The plugin's params: `select`, or any of `columns`, `rename` and `drop`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A multi-select hash `{name: expr, ...}`: the output row is exactly these columns.
    #[serde(default)]
    pub select: Option<String>,
    /// Columns to add, or to replace by name: `name: expression`.
    #[serde(default)]
    pub columns: IndexMap<String, String>,
    /// Columns to rename: `old: new`.
    #[serde(default)]
    pub rename: IndexMap<String, String>,
    /// Columns to remove.
    #[serde(default)]
    pub drop: Vec<String>,
}

/// The project transform.
#[derive(Debug)]
pub enum Project {
    /// The output row is the multi-select hash.
    Select {
        /// The hash's keys that are computed, as a hash of their own; `None` when every key
        /// is a plain field the host copies.
        hash: Option<Expr>,
        /// The keys of `hash`, in order.
        computed: Vec<String>,
        /// All the keys, in order: the output columns.
        names: Vec<String>,
        /// Keys that are plain fields (`id: id`, `name: customer.name`): the host copies them.
        copies: Vec<CopyColumn>,
    },
    /// Columns added, renamed and dropped; the rest are kept.
    Reshape {
        /// Added or replaced columns that are computed.
        columns: Columns,
        /// `(old, new)` names of renamed columns that `columns` computes.
        rename: Vec<(String, String)>,
        /// What the host removes afterwards: the `drop` param and the renamed columns' old names.
        drop: Vec<String>,
        /// Plain field columns and renames of input columns: the host copies them.
        copies: Vec<CopyColumn>,
    },
}

impl Transform for Project {
    type Params = Params;

    fn new(p: Params) -> Result<Self, Error> {
        match p.select {
            Some(source) => {
                if !(p.columns.is_empty() && p.rename.is_empty() && p.drop.is_empty()) {
                    return Err(Error::new(
                        "select: gives the whole output row, so it can't be combined with \
                         columns, rename or drop; write those into the hash",
                    ));
                }
                Self::select(&source)
            }
            None => Self::reshape(p),
        }
    }

    fn reads(&self) -> Option<Vec<String>> {
        self.read_set().map(|r| r.paths)
    }

    fn lengths(&self) -> Option<Vec<String>> {
        self.read_set().map(|r| r.lengths)
    }

    fn copies(&self) -> Option<Vec<CopyColumn>> {
        let (Project::Select { copies, .. } | Project::Reshape { copies, .. }) = self;
        (!copies.is_empty()).then(|| copies.clone())
    }

    fn drops(&self) -> Option<Vec<String>> {
        match self {
            Project::Reshape { drop, .. } if !drop.is_empty() => Some(drop.clone()),
            _ => None,
        }
    }

    fn selects(&self) -> Option<Vec<String>> {
        match self {
            Project::Select { names, .. } => Some(names.clone()),
            Project::Reshape { .. } => None,
        }
    }

    fn transform(&mut self, batch: RecordBatch) -> Result<Output, Error> {
        let mut errors = RowErrors::new(batch.num_rows());
        let columns = match self {
            Project::Select { hash: None, .. } => Vec::new(),
            Project::Select {
                hash: Some(hash),
                computed,
                ..
            } => {
                let row = expr::evaluate("select", hash, &batch, &mut errors)?;
                split_struct(&row, computed)?
            }
            Project::Reshape {
                columns, rename, ..
            } => {
                let mut out = columns.evaluate("columns", &batch, &mut errors)?;
                // Sources are looked up before any rename applies, so `{a: b, b: a}` swaps.
                let mut renamed = Vec::with_capacity(rename.len());
                for (old, new) in rename.iter() {
                    let source = out.iter().find(|(name, _)| name == old);
                    if let Some((_, array)) = source {
                        renamed.push((new.clone(), Arc::clone(array)));
                    }
                }
                out.retain(|(name, _)| !rename.iter().any(|(old, _)| old == name));
                out.extend(renamed);
                out
            }
        };
        Ok(Output::Merge(Merge {
            keep: None,
            errors: errors.into_array(),
            columns,
        }))
    }
}

impl Project {
    /// What crosses: copied columns never do, only what the computed ones read.
    fn read_set(&self) -> Option<Reads> {
        match self {
            Project::Select { hash: None, .. } => Some(Reads::default()),
            Project::Select { hash: Some(h), .. } => h.reads(),
            Project::Reshape { columns, .. } => expr::reads(columns.exprs()),
        }
    }

    fn select(source: &str) -> Result<Self, Error> {
        let hash = expr::parse("select", source)?;
        let Ast::MultiHash(pairs) = hash.ast() else {
            return Err(Error::new(format!(
                "select: must be a multi-select hash naming each output column, such as \
                 `{{id: id, name: customer.name}}`, not `{source}`"
            )));
        };
        let mut names: Vec<String> = Vec::with_capacity(pairs.len());
        let mut computed = Vec::new();
        let mut copies = Vec::new();
        for (name, ast) in pairs {
            if names.contains(name) {
                return Err(Error::new(format!(
                    "select: the column `{name}` is named twice"
                )));
            }
            names.push(name.clone());
            match Expr::from_ast(ast.clone(), source).field_path() {
                Some(path) => copies.push(CopyColumn {
                    name: name.clone(),
                    path,
                }),
                None => computed.push((name.clone(), ast.clone())),
            }
        }
        let hash = (!computed.is_empty())
            .then(|| Expr::from_ast(Ast::MultiHash(computed.clone()), source));
        Ok(Project::Select {
            hash,
            computed: computed.into_iter().map(|(name, _)| name).collect(),
            names,
            copies,
        })
    }

    fn reshape(p: Params) -> Result<Self, Error> {
        if p.columns.is_empty() && p.rename.is_empty() && p.drop.is_empty() {
            return Err(Error::new(
                "nothing to do: give select, or any of columns, rename and drop",
            ));
        }
        let mut columns = Columns::parse("columns", p.columns)?;
        let defined: Vec<String> = columns.names().map(str::to_string).collect();
        let mut copies = columns.take_paths();
        let is_computed = |name: &str| columns.names().any(|c| c == name);
        let computed: Vec<&str> = defined.iter().map(String::as_str).collect();
        let mut targets: Vec<&str> = Vec::new();
        for (old, new) in &p.rename {
            if new.is_empty() || targets.contains(&new.as_str()) {
                return Err(Error::new(format!(
                    "rename.{old}: `{new}` is empty or the new name of another column"
                )));
            }
            if computed.contains(&new.as_str()) {
                return Err(Error::new(format!(
                    "rename.{old}: `{new}` is also defined in columns"
                )));
            }
            targets.push(new);
        }
        for name in &p.drop {
            if computed.contains(&name.as_str()) || targets.contains(&name.as_str()) {
                return Err(Error::new(format!(
                    "drop: `{name}` is defined by columns or rename, so dropping it undoes that"
                )));
            }
        }
        // A renamed column's old name goes, unless another column is renamed to it.
        let mut drop = p.drop;
        drop.extend(
            p.rename
                .keys()
                .filter(|old| !targets.contains(&old.as_str()))
                .cloned(),
        );
        // Renaming an input column is a copy the host makes; renaming a computed one is not.
        let mut rename = Vec::new();
        for (old, new) in p.rename {
            if is_computed(&old) {
                rename.push((old, new));
            } else {
                copies.push(CopyColumn {
                    name: new,
                    path: old,
                });
            }
        }
        Ok(Project::Reshape {
            rename,
            columns,
            drop,
            copies,
        })
    }
}

/// The children of the multi-select hash's struct, one column per key. A row where the struct is
/// null (a failed row) is null in each of them.
fn split_struct(row: &ArrayRef, names: &[String]) -> Result<Vec<(String, ArrayRef)>, Error> {
    if row.data_type() == &DataType::Null {
        // Every row failed, so no row gave the struct a type: each column is null.
        let nulls = new_null_array(&DataType::Null, row.len());
        return Ok(names.iter().map(|n| (n.clone(), nulls.clone())).collect());
    }
    let Some(row) = row.as_any().downcast_ref::<StructArray>() else {
        return Err(Error::new(format!(
            "select: gave {}, not a struct",
            row.data_type()
        )));
    };
    names
        .iter()
        .map(|name| {
            let child = row
                .column_by_name(name)
                .ok_or_else(|| Error::new(format!("select: the result has no column `{name}`")))?;
            Ok((name.clone(), abi::with_parent_nulls(child, row.nulls())?))
        })
        .collect()
}

export_transform!(Project);

#[cfg(test)]
mod tests;
