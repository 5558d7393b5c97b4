//! Column-wise evaluation over Arrow.
//!
//! Every node computes one value per row for a whole column at once. The contract that keeps
//! this exact: a vectorized node either computes precisely what the row semantics
//! ([`crate::interp`]) give for every row, or returns `Err`. Any `Err` sends the whole batch to
//! the row interpreter, which then decides (a real error, per row, or a result). So a vectorized
//! node may be conservative (bail out on a null argument a JMESPath function would reject, on a
//! possible overflow, on a zero divisor) but never approximate.
//!
//! Nodes with no vectorized form (sorting, `keys`, deep equality, mixed types...) run row by row
//! on values built from their inputs only ([`call_by_rows`], [`node_by_rows`]), not on the
//! whole row.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    make_array, new_null_array, Array, ArrayRef, BooleanArray, Datum, Float64Array, Int64Array,
    ListArray, NullArray, PrimitiveArray, RecordBatch, Scalar, StringArray, StructArray,
    UInt32Array,
};
use arrow_buffer::{BooleanBuffer, NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields};

use crate::ast::{ArithOp, Ast, CmpOp, Function};
use crate::convert::{from_values, timestamps, to_values, UTC};
use crate::interp::{self, Arg};
use crate::value::{Kind, Value};
use crate::{EvalError, Evaluated};

type Res = Result<Col, EvalError>;

/// An intermediate result: one value per row, or one value for every row (a literal).
#[derive(Debug, Clone)]
enum Col {
    Array(ArrayRef),
    Scalar(Value),
}

impl Col {
    fn into_array(self, n: usize) -> Result<ArrayRef, EvalError> {
        match self {
            Col::Array(a) => Ok(a),
            Col::Scalar(v) => broadcast(&v, n),
        }
    }

    fn values(&self, n: usize) -> Result<Vec<Value>, EvalError> {
        match self {
            Col::Array(a) => to_values(a.as_ref()),
            Col::Scalar(v) => Ok(vec![v.clone(); n]),
        }
    }
}

/// A literal as a column of `n` rows: one row built once, then repeated by `take`.
fn broadcast(v: &Value, n: usize) -> Result<ArrayRef, EvalError> {
    match v {
        Value::Null => Ok(Arc::new(NullArray::new(n))),
        v => {
            let one = from_values(std::slice::from_ref(v), false)?;
            take(&one, &UInt32Array::from(vec![0u32; n]))
        }
    }
}

/// Evaluates `ast` on every row of `batch`.
pub(crate) fn evaluate(ast: &Ast, batch: &RecordBatch) -> Result<Evaluated, EvalError> {
    let n = batch.num_rows();
    let root: ArrayRef = Arc::new(StructArray::from(batch.clone()));
    match eval(ast, &Col::Array(Arc::clone(&root)), n) {
        Ok(col) => Ok(Evaluated {
            array: col.into_array(n)?,
            errors: Vec::new(),
        }),
        Err(_) => by_rows(ast, root.as_ref()),
    }
}

/// Column-wise only: `Err` where [`evaluate`] would fall back to rows.
pub(crate) fn evaluate_vectorized(ast: &Ast, batch: &RecordBatch) -> Result<ArrayRef, EvalError> {
    let n = batch.num_rows();
    let root: ArrayRef = Arc::new(StructArray::from(batch.clone()));
    eval(ast, &Col::Array(root), n)?.into_array(n)
}

/// The reference path: every row as a value, evaluated by the interpreter.
fn by_rows(ast: &Ast, root: &dyn Array) -> Result<Evaluated, EvalError> {
    let rows = to_values(root)?;
    let mut results = Vec::with_capacity(rows.len());
    let mut errors = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match interp::search(ast, row) {
            Ok(v) => results.push(v),
            Err(e) => {
                errors.push((i, e));
                results.push(Value::Null);
            }
        }
    }
    Ok(Evaluated {
        array: cast_types(ast, from_values(&results, true)?)?,
        errors,
    })
}

/// Row results take inferred types; a `cast` at the top, or as a key of a top-level hash (a
/// projection's column), still gets the type it names, as on the column-wise path.
fn cast_types(ast: &Ast, array: ArrayRef) -> Result<ArrayRef, EvalError> {
    match ast {
        Ast::Call(Function::Cast, args) => match args.get(1) {
            Some(Ast::Literal(Value::String(name))) => {
                retype(array, &interp::CastType::from_name(name)?.data_type())
            }
            _ => Ok(array),
        },
        Ast::MultiHash(pairs) => {
            let Some(s) = array.as_any().downcast_ref::<StructArray>() else {
                return Ok(array);
            };
            let (fields, columns, nulls) = s.clone().into_parts();
            let mut new_fields = Vec::with_capacity(fields.len());
            let mut new_columns = Vec::with_capacity(columns.len());
            for (field, column) in fields.iter().zip(columns) {
                // The last pair of a key is the one that made the column.
                let pair = pairs.iter().rev().find(|(k, _)| k == field.name());
                let column = match pair {
                    Some((_, x)) => cast_types(x, column)?,
                    None => column,
                };
                new_fields.push(Field::new(field.name(), column.data_type().clone(), true));
                new_columns.push(column);
            }
            Ok(Arc::new(StructArray::try_new(
                Fields::from(new_fields),
                new_columns,
                nulls,
            )?))
        }
        _ => Ok(array),
    }
}

/// JMESPath truthiness of every row; null is false.
pub(crate) fn truthy(a: &dyn Array) -> BooleanArray {
    let n = a.len();
    let valid = || validity(a);
    let non_empty = |len: &dyn Fn(usize) -> usize| {
        let v = valid();
        BooleanArray::from(BooleanBuffer::collect_bool(n, |i| v.value(i) && len(i) > 0))
    };
    match a.data_type() {
        DataType::Null => BooleanArray::from(vec![false; n]),
        DataType::Boolean => {
            let b = a.as_boolean();
            BooleanArray::from(b.values() & &valid())
        }
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            non_empty(&|i| s.value_length(i) as usize)
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            non_empty(&|i| s.value_length(i) as usize)
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            non_empty(&|i| s.value(i).len())
        }
        DataType::List(_) => {
            let l = a.as_list::<i32>();
            non_empty(&|i| l.value_length(i) as usize)
        }
        DataType::LargeList(_) => {
            let l = a.as_list::<i64>();
            non_empty(&|i| l.value_length(i) as usize)
        }
        DataType::FixedSizeList(_, size) => non_empty(&|_| *size as usize),
        DataType::Map(_, _) => {
            let m = a.as_map();
            non_empty(&|i| m.value_length(i) as usize)
        }
        DataType::Struct(fields) => non_empty(&|_| fields.len()),
        DataType::Dictionary(_, _) => {
            let d = a.as_any_dictionary();
            let t = truthy(d.values().as_ref());
            let keys = d.normalized_keys();
            let v = valid();
            BooleanArray::from(BooleanBuffer::collect_bool(n, |i| {
                v.value(i) && t.value(keys[i])
            }))
        }
        // Numbers, timestamps and anything else non-null are truthy.
        _ => BooleanArray::from(valid()),
    }
}

/// Which rows are non-null, as bits (all set when the array has no nulls).
fn validity(a: &dyn Array) -> BooleanBuffer {
    match a.logical_nulls() {
        Some(n) => n.into_inner(),
        None => BooleanBuffer::new_set(a.len()),
    }
}

fn eval(ast: &Ast, cur: &Col, n: usize) -> Res {
    // One value for every row: evaluate it once, exactly.
    let cur_array = match cur {
        Col::Scalar(v) => return Ok(Col::Scalar(interp::search(ast, v)?)),
        Col::Array(a) => a,
    };
    match ast {
        Ast::Current => Ok(cur.clone()),
        Ast::Literal(v) => Ok(Col::Scalar(v.clone())),
        Ast::Field(name) => field(cur_array, name),
        Ast::Subexpr(l, r) | Ast::Pipe(l, r) => {
            let left = eval(l, cur, n)?;
            eval(r, &left, n)
        }
        Ast::Index(i) => index(cur_array, *i),
        Ast::Slice { start, stop, step } => slice(cur_array, *start, *stop, *step),
        Ast::Projection(l, r) => {
            let left = eval(l, cur, n)?;
            project(left, r, n)
        }
        Ast::ValueProjection(l, r) => {
            let left = eval(l, cur, n)?;
            match &left {
                Col::Scalar(_) => eval(ast_value_projection(r).as_ref(), &left, n),
                Col::Array(a) => match object_values(a)? {
                    Some(list) => project(Col::Array(list), r, n),
                    None => node_by_rows(ast_value_projection(r).as_ref(), &left, n),
                },
            }
        }
        Ast::Flatten(x) => {
            let left = eval(x, cur, n)?;
            match left {
                Col::Scalar(_) => eval(&Ast::Flatten(Box::new(Ast::Current)), &left, n),
                Col::Array(a) => flatten(&a),
            }
        }
        Ast::FilterProjection {
            lhs,
            predicate,
            rhs,
        } => {
            let left = eval(lhs, cur, n)?;
            filter_project(left, predicate, rhs, n)
        }
        Ast::MultiList(items) => multi_list(ast, items, cur_array, n),
        Ast::MultiHash(pairs) => multi_hash(pairs, cur_array, n),
        Ast::Not(x) => Ok(match eval(x, cur, n)? {
            Col::Scalar(v) => Col::Scalar(Value::Bool(!v.is_truthy())),
            Col::Array(a) => Col::Array(Arc::new(BooleanArray::from(!truthy(a.as_ref()).values()))),
        }),
        Ast::And(a, b) => and_or(true, a, b, cur, n),
        Ast::Or(a, b) => and_or(false, a, b, cur, n),
        Ast::Compare(op, a, b) => {
            let (a, b) = (eval(a, cur, n)?, eval(b, cur, n)?);
            compare(*op, a, b, n)
        }
        Ast::Arith(op, a, b) => {
            let (a, b) = (eval(a, cur, n)?, eval(b, cur, n)?);
            arith(*op, a, b, n)
        }
        Ast::Negate(x) => negate(eval(x, cur, n)?),
        Ast::Call(f, args) => call(*f, args, cur, n),
        // An expression reference is only meaningful as a function argument.
        Ast::ExpRef(_) => node_by_rows(ast, cur, n),
    }
}

fn ast_value_projection(rhs: &Ast) -> Box<Ast> {
    Box::new(Ast::ValueProjection(
        Box::new(Ast::Current),
        Box::new(rhs.clone()),
    ))
}

/// `ast` evaluated row by row on the values of `cur` (which is what `ast` sees as `@`).
fn node_by_rows(ast: &Ast, cur: &Col, n: usize) -> Res {
    let values = cur.values(n)?;
    let results = values
        .iter()
        .map(|v| interp::search(ast, v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Col::Array(from_values(&results, false)?))
}

// ---- fields, indices, slices ------------------------------------------------------------------

fn field(cur: &ArrayRef, name: &str) -> Res {
    match cur.data_type() {
        DataType::Struct(_) => {
            let s = cur.as_struct();
            Ok(Col::Array(match s.column_by_name(name) {
                Some(child) => with_parent_nulls(child, s.nulls())?,
                None => Arc::new(NullArray::new(cur.len())),
            }))
        }
        DataType::Map(_, _) | DataType::Dictionary(_, _) => node_by_rows(
            &Ast::Field(name.to_string()),
            &Col::Array(Arc::clone(cur)),
            cur.len(),
        ),
        // A field of anything but an object is null.
        _ => Ok(Col::Array(Arc::new(NullArray::new(cur.len())))),
    }
}

/// A struct's child with the struct's own nulls added: a field of a null object is null.
fn with_parent_nulls(child: &ArrayRef, parent: Option<&NullBuffer>) -> Result<ArrayRef, EvalError> {
    match parent {
        Some(p) if p.null_count() > 0 => {
            set_nulls(child, NullBuffer::union(child.nulls(), Some(p)))
        }
        _ => Ok(Arc::clone(child)),
    }
}

/// A list column's parts, with offsets rebased to its values' start.
struct Lists {
    offsets: Vec<usize>,
    values: ArrayRef,
    nulls: Option<NullBuffer>,
}

impl Lists {
    fn of(a: &dyn Array) -> Option<Lists> {
        fn generic<O: arrow_array::OffsetSizeTrait>(l: &arrow_array::GenericListArray<O>) -> Lists {
            let raw = l.value_offsets();
            let first = raw[0].as_usize();
            let last = raw[l.len()].as_usize();
            Lists {
                offsets: raw.iter().map(|o| o.as_usize() - first).collect(),
                values: l.values().slice(first, last - first),
                nulls: l.nulls().cloned(),
            }
        }
        match a.data_type() {
            DataType::List(_) => Some(generic(a.as_list::<i32>())),
            DataType::LargeList(_) => Some(generic(a.as_list::<i64>())),
            DataType::FixedSizeList(_, size) => {
                let l = a.as_fixed_size_list();
                let size = *size as usize;
                let values = l.values().slice(l.offset() * size, l.len() * size);
                Some(Lists {
                    offsets: (0..=l.len()).map(|i| i * size).collect(),
                    values,
                    nulls: l.nulls().cloned(),
                })
            }
            _ => None,
        }
    }

    fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    fn is_valid(&self, i: usize) -> bool {
        self.nulls.as_ref().is_none_or(|n| n.is_valid(i))
    }
}

/// A `List<i32>` from offsets (from 0), values and nulls.
fn make_list(
    offsets: Vec<usize>,
    values: ArrayRef,
    nulls: Option<NullBuffer>,
) -> Result<ArrayRef, EvalError> {
    let offsets = offsets
        .into_iter()
        .map(i32::try_from)
        .collect::<Result<Vec<i32>, _>>()
        .map_err(|_| EvalError::InvalidValue("a list column outgrew 2^31 values".into()))?;
    let field = Arc::new(Field::new("item", values.data_type().clone(), true));
    Ok(Arc::new(ListArray::try_new(
        field,
        OffsetBuffer::new(offsets.into()),
        values,
        nulls,
    )?))
}

fn take(values: &ArrayRef, indices: &UInt32Array) -> Result<ArrayRef, EvalError> {
    Ok(arrow_select::take::take(values.as_ref(), indices, None)?)
}

fn index(cur: &ArrayRef, i: i64) -> Res {
    let Some(l) = Lists::of(cur.as_ref()) else {
        return Ok(Col::Array(Arc::new(NullArray::new(cur.len()))));
    };
    let indices: UInt32Array = (0..l.len())
        .map(|r| {
            let (s, e) = (l.offsets[r], l.offsets[r + 1]);
            if !l.is_valid(r) {
                return None;
            }
            interp::index(e - s, i).and_then(|k| u32::try_from(s + k).ok())
        })
        .collect();
    Ok(Col::Array(take(&l.values, &indices)?))
}

fn slice(cur: &ArrayRef, start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Res {
    if step == Some(0) {
        return Err(EvalError::InvalidValue("a slice step can't be 0".into()));
    }
    let Some(l) = Lists::of(cur.as_ref()) else {
        return Ok(Col::Array(Arc::new(NullArray::new(cur.len()))));
    };
    let mut picked = Vec::new();
    let mut offsets = Vec::with_capacity(l.len() + 1);
    offsets.push(0);
    for r in 0..l.len() {
        if l.is_valid(r) {
            let (s, e) = (l.offsets[r], l.offsets[r + 1]);
            for k in interp::slice_indices(e - s, start, stop, step) {
                picked.push(u32::try_from(s + k).map_err(|_| too_long())?);
            }
        }
        offsets.push(picked.len());
    }
    let values = take(&l.values, &UInt32Array::from(picked))?;
    Ok(Col::Array(make_list(offsets, values, l.nulls)?))
}

fn too_long() -> EvalError {
    EvalError::InvalidValue("a list column outgrew 2^32 values".into())
}

// ---- projections ------------------------------------------------------------------------------

/// `rhs` on each element of each list of `left`, null results dropped.
fn project(left: Col, rhs: &Ast, n: usize) -> Res {
    let a = match left {
        Col::Scalar(_) => {
            let ast = Ast::Projection(Box::new(Ast::Current), Box::new(rhs.clone()));
            return eval(&ast, &left, n);
        }
        Col::Array(a) => a,
    };
    let Some(l) = Lists::of(a.as_ref()) else {
        return Ok(Col::Array(Arc::new(NullArray::new(a.len()))));
    };
    let results = match rhs {
        Ast::Current => Arc::clone(&l.values),
        _ => {
            let m = l.values.len();
            eval(rhs, &Col::Array(Arc::clone(&l.values)), m)?.into_array(m)?
        }
    };
    let keep = validity(results.as_ref());
    Ok(Col::Array(keep_elements(&l, &results, &keep)?))
}

/// The lists of `l` with `values` in place of their elements, keeping only elements whose
/// `keep` bit is set.
fn keep_elements(
    l: &Lists,
    values: &ArrayRef,
    keep: &BooleanBuffer,
) -> Result<ArrayRef, EvalError> {
    if keep.count_set_bits() == keep.len() {
        return make_list(l.offsets.clone(), Arc::clone(values), l.nulls.clone());
    }
    let mut offsets = Vec::with_capacity(l.offsets.len());
    offsets.push(0);
    let mut total = 0;
    for r in 0..l.len() {
        total += (l.offsets[r]..l.offsets[r + 1])
            .filter(|&k| keep.value(k))
            .count();
        offsets.push(total);
    }
    let filtered =
        arrow_select::filter::filter(values.as_ref(), &BooleanArray::from(keep.clone()))?;
    make_list(offsets, filtered, l.nulls.clone())
}

fn filter_project(left: Col, predicate: &Ast, rhs: &Ast, n: usize) -> Res {
    let a = match left {
        Col::Scalar(_) => {
            let ast = Ast::FilterProjection {
                lhs: Box::new(Ast::Current),
                predicate: Box::new(predicate.clone()),
                rhs: Box::new(rhs.clone()),
            };
            return eval(&ast, &left, n);
        }
        Col::Array(a) => a,
    };
    let Some(l) = Lists::of(a.as_ref()) else {
        return Ok(Col::Array(Arc::new(NullArray::new(a.len()))));
    };
    let m = l.values.len();
    let keep = match eval(predicate, &Col::Array(Arc::clone(&l.values)), m)? {
        Col::Scalar(v) if v.is_truthy() => BooleanBuffer::new_set(m),
        Col::Scalar(_) => BooleanBuffer::new_unset(m),
        Col::Array(p) => truthy(p.as_ref()).values().clone(),
    };
    let kept = keep_elements(&l, &l.values, &keep)?;
    project(Col::Array(kept), rhs, n)
}

/// The values of each object as a list, when the object's fields share one type.
fn object_values(a: &ArrayRef) -> Result<Option<ArrayRef>, EvalError> {
    let DataType::Struct(fields) = a.data_type() else {
        return Ok(Some(Arc::new(NullArray::new(a.len()))));
    };
    let s = a.as_struct();
    let Some(first) = fields.first() else {
        // Objects without keys: empty lists.
        let empty = Arc::new(NullArray::new(0)) as ArrayRef;
        return make_list(vec![0; a.len() + 1], empty, s.nulls().cloned()).map(Some);
    };
    if fields.iter().any(|f| f.data_type() != first.data_type()) {
        return Ok(None);
    }
    let children: Vec<&dyn Array> = s.columns().iter().map(|c| c.as_ref()).collect();
    Ok(Some(rows_of_columns(&children, s.nulls())?))
}

/// One list per row holding the row's value from each column, in order; null rows give null.
fn rows_of_columns(
    columns: &[&dyn Array],
    nulls: Option<&NullBuffer>,
) -> Result<ArrayRef, EvalError> {
    let n = columns.first().map_or(0, |c| c.len());
    let k = columns.len();
    let mut picks = Vec::with_capacity(n * k);
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0);
    for r in 0..n {
        if nulls.is_none_or(|b| b.is_valid(r)) {
            picks.extend((0..k).map(|c| (c, r)));
        }
        offsets.push(picks.len());
    }
    let values = arrow_select::interleave::interleave(columns, &picks)?;
    make_list(offsets, values, nulls.cloned())
}

fn flatten(a: &ArrayRef) -> Res {
    let Some(outer) = Lists::of(a.as_ref()) else {
        return Ok(Col::Array(Arc::new(NullArray::new(a.len()))));
    };
    let Some(inner) = Lists::of(outer.values.as_ref()) else {
        // Elements that are not arrays are kept as they are.
        return Ok(Col::Array(Arc::clone(a)));
    };
    if inner.nulls.as_ref().is_some_and(|n| n.null_count() > 0) {
        // A null element would stay as an element: not expressible by merging offsets.
        return node_by_rows(
            &Ast::Flatten(Box::new(Ast::Current)),
            &Col::Array(Arc::clone(a)),
            a.len(),
        );
    }
    let offsets = outer.offsets.iter().map(|&o| inner.offsets[o]).collect();
    Ok(Col::Array(make_list(offsets, inner.values, outer.nulls)?))
}

// ---- multi-selects ----------------------------------------------------------------------------

fn multi_list(ast: &Ast, items: &[Ast], cur: &ArrayRef, n: usize) -> Res {
    let current = Col::Array(Arc::clone(cur));
    let mut arrays = items
        .iter()
        .map(|x| eval(x, &current, n)?.into_array(n))
        .collect::<Result<Vec<_>, _>>()?;
    if !unify_all(&mut arrays)? {
        return node_by_rows(ast, &current, n);
    }
    let columns: Vec<&dyn Array> = arrays.iter().map(|c| c.as_ref()).collect();
    Ok(Col::Array(rows_of_columns(
        &columns,
        cur.logical_nulls().as_ref(),
    )?))
}

fn multi_hash(pairs: &[(String, Ast)], cur: &ArrayRef, n: usize) -> Res {
    let current = Col::Array(Arc::clone(cur));
    // A repeated key: the later one wins, in the first one's place, as in a JSON object.
    let mut results: indexmap::IndexMap<&str, ArrayRef> = indexmap::IndexMap::new();
    for (key, x) in pairs {
        results.insert(key, eval(x, &current, n)?.into_array(n)?);
    }
    let (fields, columns): (Vec<Field>, Vec<ArrayRef>) = results
        .into_iter()
        .map(|(k, a)| (Field::new(k, a.data_type().clone(), true), a))
        .unzip();
    let nulls = cur.logical_nulls();
    if fields.is_empty() {
        return Ok(Col::Array(Arc::new(StructArray::new_empty_fields(
            n, nulls,
        ))));
    }
    Ok(Col::Array(Arc::new(StructArray::try_new(
        Fields::from(fields),
        columns,
        nulls,
    )?)))
}

// ---- logic and comparison ---------------------------------------------------------------------

fn and_or(is_and: bool, a: &Ast, b: &Ast, cur: &Col, n: usize) -> Res {
    let left = eval(a, cur, n)?;
    let left = match left {
        // The same for every row: short-circuit exactly as the row semantics do.
        Col::Scalar(v) => {
            return if v.is_truthy() == is_and {
                eval(b, cur, n)
            } else {
                Ok(Col::Scalar(v))
            }
        }
        Col::Array(a) => a,
    };
    let mask = truthy(left.as_ref());
    let set = mask.true_count();
    // `a && b` takes `b` where `a` is truthy; `a || b` takes `b` where `a` is falsy.
    let takes_b = if is_and { set } else { n - set };
    if takes_b == 0 {
        return Ok(Col::Array(left));
    }
    let right = eval(b, cur, n)?.into_array(n)?;
    if takes_b == n {
        return Ok(Col::Array(right));
    }
    let (t, f) = if is_and {
        (&right, &left)
    } else {
        (&left, &right)
    };
    if let Some((t, f)) = unify(t, f, false)? {
        return Ok(Col::Array(arrow_select::zip::zip(&mask, &t, &f)?));
    }
    // Different types: fine when every row that takes the other side is null there.
    let other = if is_and { &left } else { &right };
    let taken = if is_and { &right } else { &left };
    let other_rows = !mask.values();
    if (&other_rows & &validity(other.as_ref())).count_set_bits() == 0 {
        let nulls = NullBuffer::union(
            taken.logical_nulls().as_ref(),
            Some(&NullBuffer::new(mask.values().clone())),
        );
        return Ok(Col::Array(set_nulls(taken, nulls)?));
    }
    let (lv, rv) = (to_values(left.as_ref())?, to_values(right.as_ref())?);
    let results: Vec<Value> = lv
        .into_iter()
        .zip(rv)
        .map(|(l, r)| if l.is_truthy() == is_and { r } else { l })
        .collect();
    Ok(Col::Array(from_values(&results, false)?))
}

/// `a` with these nulls; a null-typed array is all null already and carries no validity.
fn set_nulls(a: &ArrayRef, nulls: Option<NullBuffer>) -> Result<ArrayRef, EvalError> {
    if *a.data_type() == DataType::Null {
        return Ok(Arc::clone(a));
    }
    Ok(make_array(a.to_data().into_builder().nulls(nulls).build()?))
}

/// The JMESPath kind of an Arrow type's values.
fn kind_of(dt: &DataType) -> Option<Kind> {
    Some(match dt {
        DataType::Null => Kind::Null,
        DataType::Boolean => Kind::Boolean,
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal128(_, _) => Kind::Number,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Kind::String,
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => Kind::Array,
        DataType::Struct(_) | DataType::Map(_, _) => Kind::Object,
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => Kind::Timestamp,
        DataType::Dictionary(_, v) => return kind_of(v),
        _ => return None,
    })
}

/// Both arrays as one Arrow type, when their values are of one comparable kind: integers as
/// int64, numbers with floats as float64, strings as utf8, timestamps as microseconds UTC.
/// `None` when they can't be (different kinds, or nested types).
///
/// Integers meet floats only where the result is not a value (comparisons, arithmetic):
/// elsewhere `widen` is false and such a pair is `None`, because a float column would turn
/// `0` into `0.0` in `to_string` or JSON output.
fn unify(
    a: &ArrayRef,
    b: &ArrayRef,
    widen: bool,
) -> Result<Option<(ArrayRef, ArrayRef)>, EvalError> {
    if a.data_type() == b.data_type() && !matches!(a.data_type(), DataType::Dictionary(_, _)) {
        return Ok(Some((Arc::clone(a), Arc::clone(b))));
    }
    if *a.data_type() == DataType::Null {
        return Ok(Some((
            new_null_array(b.data_type(), a.len()),
            Arc::clone(b),
        )));
    }
    if *b.data_type() == DataType::Null {
        return Ok(Some((
            Arc::clone(a),
            new_null_array(a.data_type(), b.len()),
        )));
    }
    let (ka, kb) = (kind_of(a.data_type()), kind_of(b.data_type()));
    if ka != kb {
        return Ok(None);
    }
    let target = match ka {
        Some(Kind::Number) => {
            let ints = |d: &DataType| d.is_integer() && *d != DataType::UInt64;
            let floats = |d: &DataType| d.is_floating();
            if ints(a.data_type()) && ints(b.data_type()) {
                DataType::Int64
            } else if widen || (floats(a.data_type()) && floats(b.data_type())) {
                DataType::Float64
            } else {
                return Ok(None);
            }
        }
        Some(Kind::String) => DataType::Utf8,
        Some(Kind::Timestamp) => {
            DataType::Timestamp(arrow_schema::TimeUnit::Microsecond, Some(UTC.into()))
        }
        _ => return Ok(None),
    };
    match (to_type(a, &target)?, to_type(b, &target)?) {
        (Some(a), Some(b)) => Ok(Some((a, b))),
        _ => Ok(None),
    }
}

/// Makes every array one type, as [`unify`] does pairwise; false when they can't be.
fn unify_all(arrays: &mut [ArrayRef]) -> Result<bool, EvalError> {
    let Some(first) = arrays.first().cloned() else {
        return Ok(true);
    };
    let mut target = first;
    for a in arrays.iter() {
        match unify(&target, a, false)? {
            Some((t, _)) => target = t,
            None => return Ok(false),
        }
    }
    for a in arrays.iter_mut() {
        match unify(&target, a, false)? {
            Some((_, b)) => *a = b,
            None => return Ok(false),
        }
    }
    Ok(true)
}

/// `a` as `target` (int64, float64, utf8 or timestamp µs), for the kinds [`unify`] pairs.
fn to_type(a: &ArrayRef, target: &DataType) -> Result<Option<ArrayRef>, EvalError> {
    if a.data_type() == target {
        return Ok(Some(Arc::clone(a)));
    }
    macro_rules! num {
        ($out:ty, $($t:ty),*) => {
            match a.data_type() {
                $(dt if *dt == <$t>::DATA_TYPE => {
                    let p = a.as_primitive::<$t>();
                    Some(Arc::new(p.unary::<_, $out>(|v| v as <$out as ArrowPrimitiveType>::Native)) as ArrayRef)
                })*
                _ => None,
            }
        };
    }
    Ok(match target {
        DataType::Int64 => {
            num!(Int64Type, Int8Type, Int16Type, Int32Type, UInt8Type, UInt16Type, UInt32Type)
        }
        DataType::Float64 => num!(
            Float64Type,
            Int8Type,
            Int16Type,
            Int32Type,
            Int64Type,
            UInt8Type,
            UInt16Type,
            UInt32Type,
            UInt64Type,
            Float32Type
        ),
        DataType::Utf8 => match a.data_type() {
            DataType::LargeUtf8 => Some(Arc::new(
                a.as_string::<i64>().iter().collect::<StringArray>(),
            )),
            DataType::Utf8View => {
                Some(Arc::new(a.as_string_view().iter().collect::<StringArray>()))
            }
            _ => None,
        },
        DataType::Timestamp(_, _) => timestamps(a.as_ref()).map(|t| Arc::new(t) as ArrayRef),
        _ => None,
    })
}

fn compare(op: CmpOp, a: Col, b: Col, n: usize) -> Res {
    if let (Col::Scalar(x), Col::Scalar(y)) = (&a, &b) {
        return Ok(Col::Scalar(interp::compare(op, x, y)));
    }
    // A literal side stays one row, compared as an Arrow scalar: nothing is broadcast.
    let one_row = |c: Col| -> Result<(ArrayRef, bool), EvalError> {
        match c {
            Col::Scalar(v) => Ok((from_values(std::slice::from_ref(&v), false)?, true)),
            Col::Array(a) => Ok((a, false)),
        }
    };
    let ((a, a_scalar), (b, b_scalar)) = (one_row(a)?, one_row(b)?);
    // Logical nulls: a `NullArray` has no null buffer, yet every row of it is null.
    let valid = |x: &ArrayRef, scalar: bool| match (scalar, x.logical_null_count() == 0) {
        (false, _) => validity(x.as_ref()),
        (true, true) => BooleanBuffer::new_set(n),
        (true, false) => BooleanBuffer::new_unset(n),
    };
    let (ka, kb) = (kind_of(a.data_type()), kind_of(b.data_type()));
    let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
    if ordering {
        let comparable = ka == kb && matches!(ka, Some(Kind::Number | Kind::Timestamp));
        if !comparable {
            // Ordering is defined for numbers (and timestamps) only: null otherwise.
            return Ok(Col::Array(Arc::new(BooleanArray::new_null(n))));
        }
    }
    let same_scalar_kind = ka == kb
        && matches!(
            ka,
            Some(Kind::Number | Kind::String | Kind::Boolean | Kind::Timestamp)
        );
    let (va, vb) = (valid(&a, a_scalar), valid(&b, b_scalar));
    if !same_scalar_kind {
        if ka == kb || ka.is_none() || kb.is_none() {
            // Deep equality of lists or objects (or types we don't know): row by row.
            let rows = |x: &ArrayRef, scalar: bool| -> Result<Vec<Value>, EvalError> {
                match scalar {
                    true => Ok(vec![to_values(x.as_ref())?.remove(0); n]),
                    false => to_values(x.as_ref()),
                }
            };
            let (x, y) = (rows(&a, a_scalar)?, rows(&b, b_scalar)?);
            let r: BooleanArray = x
                .iter()
                .zip(&y)
                .map(|(x, y)| match interp::compare(op, x, y) {
                    Value::Bool(b) => Some(b),
                    _ => None,
                })
                .collect();
            return Ok(Col::Array(Arc::new(r)));
        }
        // Different kinds are never equal; two nulls are.
        let both_null = &!&va & &!&vb;
        let eq = if op == CmpOp::Eq {
            both_null
        } else {
            !&both_null
        };
        return Ok(Col::Array(Arc::new(BooleanArray::from(eq))));
    }
    let Some((a, b)) = unify(&a, &b, true)? else {
        return Err(EvalError::UnsupportedType(a.data_type().to_string()));
    };
    let scalar = |x: &ArrayRef, is: bool| is.then(|| Scalar::new(Arc::clone(x)));
    let (sa, sb) = (scalar(&a, a_scalar), scalar(&b, b_scalar));
    let a: &dyn Datum = match &sa {
        Some(s) => s,
        None => &a,
    };
    let b: &dyn Datum = match &sb {
        Some(s) => s,
        None => &b,
    };
    let r = match op {
        CmpOp::Eq => arrow_ord::cmp::eq(a, b)?,
        CmpOp::Ne => arrow_ord::cmp::neq(a, b)?,
        CmpOp::Lt => arrow_ord::cmp::lt(a, b)?,
        CmpOp::Le => arrow_ord::cmp::lt_eq(a, b)?,
        CmpOp::Gt => arrow_ord::cmp::gt(a, b)?,
        CmpOp::Ge => arrow_ord::cmp::gt_eq(a, b)?,
    };
    if ordering {
        return Ok(Col::Array(Arc::new(r)));
    }
    // Arrow says null where either side is null; JMESPath says null == null and null != 1.
    let both = &va & &vb;
    let neither = &!&va & &!&vb;
    let values = &(r.values() & &both) | &(if op == CmpOp::Eq { neither } else { &va ^ &vb });
    Ok(Col::Array(Arc::new(BooleanArray::from(values))))
}

// ---- arithmetic -------------------------------------------------------------------------------

fn arith(op: ArithOp, a: Col, b: Col, n: usize) -> Res {
    if let (Col::Scalar(x), Col::Scalar(y)) = (&a, &b) {
        return Ok(Col::Scalar(interp::arith(op, x, y)?));
    }
    let (a, b) = (a.into_array(n)?, b.into_array(n)?);
    let (ka, kb) = (kind_of(a.data_type()), kind_of(b.data_type()));
    match (ka, kb) {
        (Some(Kind::Null), Some(Kind::Null | Kind::Number))
        | (Some(Kind::Number), Some(Kind::Null)) => {
            return Ok(Col::Array(Arc::new(NullArray::new(n))))
        }
        (Some(Kind::Number), Some(Kind::Number)) => {}
        // Anything else is a type error, which the row semantics raise with the right row.
        _ => return Err(EvalError::UnsupportedType(a.data_type().to_string())),
    }
    let Some((a, b)) = unify(&a, &b, true)? else {
        return Err(EvalError::UnsupportedType(a.data_type().to_string()));
    };
    let zero = || EvalError::InvalidValue("division by zero".into());
    if *a.data_type() == DataType::Int64 {
        if let Some(f) = int_op(op) {
            let (x, y) = (a.as_primitive::<Int64Type>(), b.as_primitive::<Int64Type>());
            // Overflow and zero divisors are the row semantics' to handle.
            let nulls = NullBuffer::union(x.nulls(), y.nulls());
            let mut values = Vec::with_capacity(x.len());
            for (i, (p, q)) in x.values().iter().zip(y.values().iter()).enumerate() {
                let valid = nulls.as_ref().is_none_or(|n| n.is_valid(i));
                values.push(if valid {
                    f(*p, *q).ok_or_else(|| EvalError::InvalidValue("overflow".into()))?
                } else {
                    0
                });
            }
            return Ok(Col::Array(Arc::new(Int64Array::new(values.into(), nulls))));
        }
    }
    let (x, y) = (
        to_type(&a, &DataType::Float64)?
            .ok_or_else(|| EvalError::UnsupportedType(a.data_type().to_string()))?,
        to_type(&b, &DataType::Float64)?
            .ok_or_else(|| EvalError::UnsupportedType(b.data_type().to_string()))?,
    );
    let (x, y) = (
        x.as_primitive::<Float64Type>(),
        y.as_primitive::<Float64Type>(),
    );
    // A zero divisor is the row semantics' call (error or not), so leave it to them.
    if matches!(op, ArithOp::Div | ArithOp::Rem | ArithOp::IntDiv)
        && y.iter().any(|v| v == Some(0.0))
    {
        return Err(zero());
    }
    let f: fn(f64, f64) -> f64 = match op {
        ArithOp::Add => |p, q| p + q,
        ArithOp::Sub => |p, q| p - q,
        ArithOp::Mul => |p, q| p * q,
        ArithOp::Div => |p, q| p / q,
        ArithOp::Rem => |p, q| p % q,
        ArithOp::IntDiv => |p, q| (p / q).floor(),
    };
    let values: Vec<f64> = x
        .values()
        .iter()
        .zip(y.values().iter())
        .map(|(p, q)| f(*p, *q))
        .collect();
    let r = Float64Array::new(values.into(), NullBuffer::union(x.nulls(), y.nulls()));
    Ok(Col::Array(Arc::new(r)))
}

/// The integer form of an operator (`None` for `/`, which is always a float); each gives
/// `None` on overflow or a zero divisor.
fn int_op(op: ArithOp) -> Option<fn(i64, i64) -> Option<i64>> {
    Some(match op {
        ArithOp::Add => i64::checked_add,
        ArithOp::Sub => i64::checked_sub,
        ArithOp::Mul => i64::checked_mul,
        ArithOp::Rem => i64::checked_rem,
        ArithOp::IntDiv => |p, q| {
            let d = p.checked_div(q)?;
            // Round toward negative infinity.
            Some(if p % q != 0 && ((p < 0) != (q < 0)) {
                d - 1
            } else {
                d
            })
        },
        ArithOp::Div => return None,
    })
}

fn negate(a: Col) -> Res {
    let a = match a {
        Col::Scalar(v) => return Ok(Col::Scalar(interp::negate(&v)?)),
        Col::Array(a) => a,
    };
    match kind_of(a.data_type()) {
        Some(Kind::Null) => Ok(Col::Array(a)),
        Some(Kind::Number) => {
            let Some((a, _)) = unify(&a, &a, false)? else {
                return Err(EvalError::UnsupportedType(a.data_type().to_string()));
            };
            if a.data_type().is_integer() {
                let a = to_type(&a, &DataType::Int64)?
                    .ok_or_else(|| EvalError::UnsupportedType(a.data_type().to_string()))?;
                let r: Int64Array = a.as_primitive::<Int64Type>().try_unary(|v| {
                    v.checked_neg()
                        .ok_or_else(|| arrow_schema::ArrowError::ComputeError("overflow".into()))
                })?;
                Ok(Col::Array(Arc::new(r)))
            } else {
                let a = to_type(&a, &DataType::Float64)?
                    .ok_or_else(|| EvalError::UnsupportedType(a.data_type().to_string()))?;
                let r: Float64Array = a.as_primitive::<Float64Type>().unary(|v| -v);
                Ok(Col::Array(Arc::new(r)))
            }
        }
        _ => Err(EvalError::UnsupportedType(a.data_type().to_string())),
    }
}

// ---- functions --------------------------------------------------------------------------------

fn call(f: Function, args: &[Ast], cur: &Col, n: usize) -> Res {
    if let Some(col) = vectorized_call(f, args, cur, n)? {
        return Ok(col);
    }
    let col = call_by_rows(f, args, cur, n)?;
    match (f, args.get(1)) {
        // `cast` gives the Arrow type it names, not the one values would infer.
        (Function::Cast, Some(Ast::Literal(Value::String(name)))) => {
            let target = interp::CastType::from_name(name)?.data_type();
            Ok(Col::Array(retype(col.into_array(n)?, &target)?))
        }
        _ => Ok(col),
    }
}

/// `a` (int64, float64, or all null, as row results infer) as the numeric `target`; other
/// types already match. Values are in range: `cast` made out-of-range ones null.
fn retype(a: ArrayRef, target: &DataType) -> Result<ArrayRef, EvalError> {
    if a.data_type() == target {
        return Ok(a);
    }
    if *a.data_type() == DataType::Null {
        return Ok(new_null_array(target, a.len()));
    }
    macro_rules! to {
        ($from:ty, $($dt:ident => $t:ty),*) => {
            match target {
                $(DataType::$dt => Arc::new(a.as_primitive::<$from>().unary::<_, $t>(|v| v as <$t as ArrowPrimitiveType>::Native)) as ArrayRef,)*
                _ => a,
            }
        };
    }
    Ok(match a.data_type() {
        DataType::Int64 => to!(Int64Type, Int8 => Int8Type, Int16 => Int16Type, Int32 => Int32Type,
            UInt8 => UInt8Type, UInt16 => UInt16Type, UInt32 => UInt32Type, UInt64 => UInt64Type,
            Float32 => Float32Type, Float64 => Float64Type),
        DataType::Float64 => to!(Float64Type, Float32 => Float32Type),
        _ => a,
    })
}

/// The functions with a column-wise form, on the argument types where it is exact. `None`:
/// evaluate row by row instead.
fn vectorized_call(
    f: Function,
    args: &[Ast],
    cur: &Col,
    n: usize,
) -> Result<Option<Col>, EvalError> {
    let arg = |i: usize| -> Res { eval(&args[i], cur, n) };
    let no_nulls = |a: &ArrayRef| a.logical_null_count() == 0;
    Ok(match f {
        Function::Length => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            if !no_nulls(&a) {
                return Ok(None);
            }
            let r: Option<Int64Array> = match a.data_type() {
                DataType::Utf8 => Some(
                    a.as_string::<i32>()
                        .iter()
                        .map(|s| s.map(|s| s.chars().count() as i64))
                        .collect(),
                ),
                DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => {
                    Lists::of(a.as_ref()).map(|l| {
                        l.offsets
                            .windows(2)
                            .map(|w| Some((w[1] - w[0]) as i64))
                            .collect()
                    })
                }
                DataType::Struct(fields) => {
                    Some(Int64Array::from(vec![fields.len() as i64; a.len()]))
                }
                _ => None,
            };
            r.map(|r| Col::Array(Arc::new(r)))
        }
        Function::NotNull | Function::Coalesce => {
            let mut result: Option<ArrayRef> = None;
            for i in 0..args.len() {
                let next = arg(i)?.into_array(n)?;
                result = Some(match result {
                    None => next,
                    Some(r) => {
                        let Some((r, next)) = unify(&r, &next, false)? else {
                            return Ok(None);
                        };
                        let present = BooleanArray::from(validity(r.as_ref()));
                        arrow_select::zip::zip(&present, &r, &next)?
                    }
                });
            }
            result.map(Col::Array)
        }
        Function::Lower | Function::Upper => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            if *a.data_type() != DataType::Utf8 {
                return Ok(None);
            }
            let upper = f == Function::Upper;
            let r: StringArray = a
                .as_string::<i32>()
                .iter()
                .map(|s| {
                    s.map(|s| {
                        if upper {
                            s.to_uppercase()
                        } else {
                            s.to_lowercase()
                        }
                    })
                })
                .collect();
            Some(Col::Array(Arc::new(r)))
        }
        Function::StartsWith | Function::EndsWith => {
            let (Col::Array(a), Col::Scalar(Value::String(p))) = (arg(0)?, arg(1)?) else {
                return Ok(None);
            };
            if *a.data_type() != DataType::Utf8 || !no_nulls(&a) {
                return Ok(None);
            }
            let starts = f == Function::StartsWith;
            let r: BooleanArray = a
                .as_string::<i32>()
                .iter()
                .map(|s| {
                    s.map(|s| {
                        if starts {
                            s.starts_with(p.as_str())
                        } else {
                            s.ends_with(p.as_str())
                        }
                    })
                })
                .collect();
            Some(Col::Array(Arc::new(r)))
        }
        Function::Abs | Function::Ceil | Function::Floor => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            if !no_nulls(&a) || kind_of(a.data_type()) != Some(Kind::Number) {
                return Ok(None);
            }
            if a.data_type().is_integer() && *a.data_type() != DataType::UInt64 {
                let Some(a) = to_type(&a, &DataType::Int64)? else {
                    return Ok(None);
                };
                let a = a.as_primitive::<Int64Type>();
                if f != Function::Abs {
                    return Ok(Some(Col::Array(Arc::new(a.clone()))));
                }
                if a.values().contains(&i64::MIN) {
                    return Ok(None);
                }
                return Ok(Some(Col::Array(Arc::new(
                    a.unary::<_, Int64Type>(i64::abs),
                ))));
            }
            None
        }
        Function::Type => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            let Some(kind) = kind_of(a.data_type()) else {
                return Ok(None);
            };
            let v = validity(a.as_ref());
            let r: StringArray = (0..a.len())
                .map(|i| Some(if v.value(i) { kind.name() } else { "null" }))
                .collect();
            Some(Col::Array(Arc::new(r)))
        }
        Function::Concat => {
            let mut parts = Vec::with_capacity(args.len());
            for i in 0..args.len() {
                match arg(i)? {
                    Col::Scalar(Value::String(s)) => parts.push(Text::Literal(s)),
                    Col::Scalar(Value::Null) => {}
                    Col::Array(a) if *a.data_type() == DataType::Utf8 => {
                        parts.push(Text::Column(a))
                    }
                    _ => return Ok(None),
                }
            }
            let r: StringArray = (0..n)
                .map(|row| {
                    let mut out: Option<String> = None;
                    for p in &parts {
                        if let Some(s) = p.at(row) {
                            out.get_or_insert_with(String::new).push_str(s);
                        }
                    }
                    out
                })
                .collect();
            Some(Col::Array(Arc::new(r)))
        }
        Function::Sha256 | Function::Replace | Function::RegexMatch | Function::Substr => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            if *a.data_type() != DataType::Utf8 {
                return Ok(None);
            }
            // The other arguments must be literals (the same for every row).
            let mut literals = Vec::with_capacity(2);
            for i in 1..args.len() {
                match arg(i)? {
                    Col::Scalar(v) => literals.push(v),
                    Col::Array(_) => return Ok(None),
                }
            }
            let strings = a.as_string::<i32>();
            let map = |f: &dyn Fn(&str) -> String| -> Option<Col> {
                let r: StringArray = strings.iter().map(|s| s.map(f)).collect();
                Some(Col::Array(Arc::new(r)))
            };
            match (f, literals.as_slice()) {
                (Function::Sha256, []) => map(&|s| interp::sha256_hex(s, None)),
                (Function::Sha256, [Value::String(salt)]) => {
                    map(&|s| interp::sha256_hex(s, Some(salt)))
                }
                (Function::Replace, [Value::String(from), Value::String(to)]) => {
                    map(&|s| s.replace(from.as_str(), to))
                }
                (Function::Substr, [Value::Int(start)]) => {
                    map(&|s| interp::substr_chars(s, *start, None).to_string())
                }
                (Function::Substr, [Value::Int(start), Value::Int(length)]) => {
                    map(&|s| interp::substr_chars(s, *start, Some(*length)).to_string())
                }
                (Function::RegexMatch, [Value::String(pattern)]) => {
                    let Ok(re) = interp::compiled_regex(pattern) else {
                        return Ok(None);
                    };
                    let r: BooleanArray =
                        strings.iter().map(|s| s.map(|s| re.is_match(s))).collect();
                    Some(Col::Array(Arc::new(r)))
                }
                _ => None,
            }
        }
        Function::ToString => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            // `to_string(null)` is the text "null", as for any non-string.
            let text = |v: Option<Value>| Some(interp::to_json_text(&v.unwrap_or_default()));
            let r: StringArray = match a.data_type() {
                DataType::Utf8 if no_nulls(&a) => return Ok(Some(Col::Array(a))),
                DataType::Int64 => a
                    .as_primitive::<Int64Type>()
                    .iter()
                    .map(|v| text(v.map(Value::Int)))
                    .collect(),
                DataType::Float64 => a
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| text(v.map(Value::Float)))
                    .collect(),
                DataType::Boolean => a
                    .as_boolean()
                    .iter()
                    .map(|v| text(v.map(Value::Bool)))
                    .collect(),
                _ => return Ok(None),
            };
            Some(Col::Array(Arc::new(r)))
        }
        Function::FromEpochSeconds | Function::FromEpochMillis | Function::FromEpochMicros => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            if !a.data_type().is_integer() || *a.data_type() == DataType::UInt64 {
                return Ok(None);
            }
            let Some(a) = to_type(&a, &DataType::Int64)? else {
                return Ok(None);
            };
            let unit = match f {
                Function::FromEpochSeconds => interp::MICROS_PER_SECOND,
                Function::FromEpochMillis => interp::MICROS_PER_MILLI,
                _ => 1,
            };
            // The interpreter's own conversion, element by element: the same range rules.
            each(a.as_primitive::<Int64Type>().iter(), |v| {
                interp::epoch_to_micros(&Value::Int(v), unit)
            })
            .map(timestamp_col)
        }
        Function::TruncateDay | Function::TruncateHour | Function::Date => {
            let Col::Array(a) = arg(0)? else {
                return Ok(None);
            };
            let Some(t) = timestamps(a.as_ref()) else {
                return Ok(None);
            };
            if f == Function::Date {
                return Ok(dates(&t).map(|out| Col::Array(Arc::new(out))));
            }
            let unit = if f == Function::TruncateDay {
                interp::MICROS_PER_DAY
            } else {
                interp::MICROS_PER_HOUR
            };
            each(t.iter(), |v| interp::truncate_micros(v, unit)).map(timestamp_col)
        }
        _ => None,
    })
}

/// `date()` of every timestamp (µs), written straight into one string array; `None` when one
/// is out of range, so the call goes to the row semantics, which raise the error there.
fn dates(t: &arrow_array::TimestampMicrosecondArray) -> Option<StringArray> {
    let mut out = arrow_array::builder::StringBuilder::with_capacity(t.len(), t.len() * 10);
    for v in t.iter() {
        match v {
            None => out.append_null(),
            Some(v) => match interp::date_bytes(v) {
                // ASCII digits and dashes.
                Some(b) => out.append_value(std::str::from_utf8(&b).ok()?),
                None => out.append_value(interp::date_text(v)?),
            },
        }
    }
    Some(out.finish())
}

/// `f` on every non-null element (nulls stay null); `None` when `f` declines one, so the call
/// goes to the row semantics, which raise the error there.
fn each<T, U>(
    values: impl Iterator<Item = Option<T>>,
    f: impl Fn(T) -> Option<U>,
) -> Option<Vec<Option<U>>> {
    values
        .map(|v| match v {
            None => Some(None),
            Some(v) => f(v).map(Some),
        })
        .collect()
}

/// Microsecond timestamps (UTC) as a column.
fn timestamp_col(micros: Vec<Option<i64>>) -> Col {
    let r = PrimitiveArray::<TimestampMicrosecondType>::from(micros).with_timezone(UTC);
    Col::Array(Arc::new(r))
}

/// A string argument of `concat`: a utf8 column, or a literal.
enum Text {
    Column(ArrayRef),
    Literal(String),
}

impl Text {
    fn at(&self, row: usize) -> Option<&str> {
        match self {
            Text::Column(a) => {
                let s = a.as_string::<i32>();
                s.is_valid(row).then(|| s.value(row))
            }
            Text::Literal(s) => Some(s),
        }
    }
}

/// A function evaluated row by row on its arguments' values (arguments column-wise).
fn call_by_rows(f: Function, args: &[Ast], cur: &Col, n: usize) -> Res {
    enum Prepared<'a> {
        Values(std::vec::IntoIter<Value>),
        Expr(&'a Ast),
    }
    let mut prepared = args
        .iter()
        .map(|a| match a {
            Ast::ExpRef(inner) => Ok(Prepared::Expr(inner)),
            other => Ok(Prepared::Values(
                eval(other, cur, n)?.values(n)?.into_iter(),
            )),
        })
        .collect::<Result<Vec<_>, EvalError>>()?;
    let mut results = Vec::with_capacity(n);
    for _ in 0..n {
        let row_args = prepared
            .iter_mut()
            .map(|p| match p {
                Prepared::Values(it) => Arg::Value(it.next().unwrap_or_default()),
                Prepared::Expr(ast) => Arg::Expr(ast),
            })
            .collect();
        results.push(interp::call(f, row_args)?);
    }
    Ok(Col::Array(from_values(&results, false)?))
}
