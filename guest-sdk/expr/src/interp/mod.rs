//! The reference interpreter: an [`Ast`] evaluated on one [`Value`], with the semantics of the
//! JMESPath specification and its reference implementation (jmespath.py), plus weir's extensions.
//!
//! The column-wise evaluator reproduces these semantics with Arrow kernels. Wherever it needs
//! per-element behaviour (a slice's indices, a number parsed from a string, a hash, a cast), it
//! calls the `pub(crate)` helpers of this module and of [`functions`], so the two paths cannot
//! drift apart.

mod functions;
#[cfg(test)]
mod tests;

use std::cmp::Ordering;

use crate::ast::{ArithOp, Ast, CmpOp};
use crate::value::{format_timestamp, Value};
use crate::EvalError;

// What the column-wise evaluator shares with the row semantics, so the two can't drift.
pub(crate) use functions::{
    call, compiled_regex, date_bytes, date_text, epoch_to_micros, sha256_hex, substr_chars,
    truncate_micros, Arg, CastType, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MILLI,
    MICROS_PER_SECOND,
};

/// Evaluates `ast` on `data`.
pub(crate) fn search(ast: &Ast, data: &Value) -> Result<Value, EvalError> {
    Ok(match ast {
        Ast::Current => data.clone(),
        Ast::Field(name) => field(data, name),
        // As in the reference implementation, the right side runs even on a null left side:
        // fields, indexes and projections of null are null, functions decide for themselves.
        Ast::Subexpr(lhs, rhs) => search(rhs, &search(lhs, data)?)?,
        Ast::Index(i) => match data {
            Value::Array(items) => index(items.len(), *i)
                .map(|i| items[i].clone())
                .unwrap_or_default(),
            _ => Value::Null,
        },
        Ast::Slice { start, stop, step } => match data {
            // As in the reference implementation: an error only when there is an array to slice.
            Value::Array(_) if *step == Some(0) => {
                return Err(EvalError::InvalidValue("a slice step can't be 0".into()))
            }
            Value::Array(items) => Value::Array(
                slice_indices(items.len(), *start, *stop, *step)
                    .into_iter()
                    .map(|i| items[i].clone())
                    .collect(),
            ),
            _ => Value::Null,
        },
        Ast::Projection(lhs, rhs) => match search(lhs, data)? {
            Value::Array(items) => project(items.iter(), rhs)?,
            _ => Value::Null,
        },
        Ast::ValueProjection(lhs, rhs) => match search(lhs, data)? {
            Value::Object(map) => project(map.values(), rhs)?,
            _ => Value::Null,
        },
        Ast::Flatten(lhs) => match search(lhs, data)? {
            Value::Array(items) => Value::Array(flatten(items)),
            _ => Value::Null,
        },
        Ast::FilterProjection {
            lhs,
            predicate,
            rhs,
        } => match search(lhs, data)? {
            Value::Array(items) => {
                let mut out = Vec::new();
                for item in &items {
                    if search(predicate, item)?.is_truthy() {
                        push_non_null(&mut out, search(rhs, item)?);
                    }
                }
                Value::Array(out)
            }
            _ => Value::Null,
        },
        Ast::MultiList(items) => {
            if data.is_null() {
                return Ok(Value::Null);
            }
            Value::Array(
                items
                    .iter()
                    .map(|item| search(item, data))
                    .collect::<Result<_, _>>()?,
            )
        }
        Ast::MultiHash(pairs) => {
            if data.is_null() {
                return Ok(Value::Null);
            }
            let mut map = crate::value::Map::with_capacity(pairs.len());
            for (key, expr) in pairs {
                map.insert(key.clone(), search(expr, data)?);
            }
            Value::Object(map)
        }
        Ast::Literal(v) => v.clone(),
        Ast::Not(e) => Value::Bool(!search(e, data)?.is_truthy()),
        Ast::And(lhs, rhs) => {
            let left = search(lhs, data)?;
            if left.is_truthy() {
                search(rhs, data)?
            } else {
                left
            }
        }
        Ast::Or(lhs, rhs) => {
            let left = search(lhs, data)?;
            if left.is_truthy() {
                left
            } else {
                search(rhs, data)?
            }
        }
        Ast::Compare(op, lhs, rhs) => compare(*op, &search(lhs, data)?, &search(rhs, data)?),
        Ast::Arith(op, lhs, rhs) => arith(*op, &search(lhs, data)?, &search(rhs, data)?)?,
        Ast::Negate(e) => negate(&search(e, data)?)?,
        Ast::Pipe(lhs, rhs) => search(rhs, &search(lhs, data)?)?,
        Ast::Call(f, args) => {
            let args = args
                .iter()
                .map(|arg| match arg {
                    Ast::ExpRef(e) => Ok(Arg::Expr(e)),
                    other => search(other, data).map(Arg::Value),
                })
                .collect::<Result<Vec<_>, _>>()?;
            call(*f, args)?
        }
        // The reference implementation yields an expression object that is not JSON; a value
        // has no such type, so say what went wrong instead of inventing one.
        Ast::ExpRef(_) => {
            return Err(EvalError::InvalidValue(
                "an expression reference (`&expr`) can only be a function argument".into(),
            ))
        }
    })
}

/// `name` of an object; null for anything else or a missing key.
fn field(data: &Value, name: &str) -> Value {
    match data {
        Value::Object(map) => map.get(name).cloned().unwrap_or_default(),
        _ => Value::Null,
    }
}

/// `rhs` on each item, null results dropped (a projection).
fn project<'v>(items: impl Iterator<Item = &'v Value>, rhs: &Ast) -> Result<Value, EvalError> {
    let mut out = Vec::new();
    for item in items {
        push_non_null(&mut out, search(rhs, item)?);
    }
    Ok(Value::Array(out))
}

fn push_non_null(out: &mut Vec<Value>, v: Value) {
    if !v.is_null() {
        out.push(v);
    }
}

/// Nested arrays merged one level into their parent (`[]`).
pub(crate) fn flatten(items: Vec<Value>) -> Vec<Value> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Array(inner) => out.extend(inner),
            other => out.push(other),
        }
    }
    out
}

/// The position `i` denotes in an array of `len` elements (negative counts from the end), or
/// `None` when it is outside.
pub(crate) fn index(len: usize, i: i64) -> Option<usize> {
    let len = len as i128;
    let i = i as i128;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// The element indices `[start:stop:step]` picks from an array of `len`, in order: Python's slice
/// semantics (negative positions count from the end, out-of-range positions are clamped, a
/// negative step walks backwards). A step of 0 (an error where it is evaluated) picks nothing.
pub(crate) fn slice_indices(
    len: usize,
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
) -> Vec<usize> {
    let step = step.unwrap_or(1) as i128;
    if step == 0 {
        return Vec::new();
    }
    let len = len as i128;
    // The bounds a position is clamped to: [0, len] forwards, [-1, len - 1] backwards (-1 being
    // "before the first element").
    let (lower, upper) = if step > 0 { (0, len) } else { (-1, len - 1) };
    let resolve = |pos: Option<i64>, default: i128| match pos {
        None => default,
        Some(p) => {
            let p = p as i128;
            if p < 0 {
                (p + len).max(lower)
            } else {
                p.min(upper)
            }
        }
    };
    let (start, stop) = if step > 0 {
        (resolve(start, lower), resolve(stop, upper))
    } else {
        (resolve(start, upper), resolve(stop, lower))
    };
    let mut out = Vec::new();
    let mut i = start;
    while (step > 0 && i < stop) || (step < 0 && i > stop) {
        out.push(i as usize);
        i += step;
    }
    out
}

/// A comparison: `==` and `!=` compare any values deeply; the orderings hold between two numbers
/// or two timestamps (weir extension) and are null for anything else.
pub(crate) fn compare(op: CmpOp, a: &Value, b: &Value) -> Value {
    let holds: fn(Ordering) -> bool = match op {
        CmpOp::Eq => return Value::Bool(a == b),
        CmpOp::Ne => return Value::Bool(a != b),
        CmpOp::Lt => |o| o == Ordering::Less,
        CmpOp::Le => |o| o != Ordering::Greater,
        CmpOp::Gt => |o| o == Ordering::Greater,
        CmpOp::Ge => |o| o != Ordering::Less,
    };
    let ordering = match (a, b) {
        (Value::Timestamp(x), Value::Timestamp(y)) => Some(x.cmp(y)),
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => number_order(a, b),
        _ => return Value::Null,
    };
    // Only NaN leaves two numbers unordered; as in IEEE 754, every ordering with it is false.
    Value::Bool(ordering.is_some_and(holds))
}

/// The order of two numbers, exact between an integer and a float (as Python, the reference
/// implementation's language, compares them); `None` for NaN and for non-numbers.
pub(crate) fn number_order(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y),
        (Value::Int(x), Value::Float(y)) => int_float_order(*x, *y),
        (Value::Float(x), Value::Int(y)) => int_float_order(*y, *x).map(Ordering::reverse),
        _ => None,
    }
}

/// `i` compared with `f` without rounding `i` to a float (which loses digits beyond 2^53).
fn int_float_order(i: i64, f: f64) -> Option<Ordering> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        None
    } else if f >= TWO_63 {
        Some(Ordering::Less)
    } else if f < -TWO_63 {
        Some(Ordering::Greater)
    } else {
        let whole = f.trunc();
        // Equal whole parts: `f`'s fraction decides (positive: `f` is greater).
        Some(
            i.cmp(&(whole as i64))
                .then_with(|| 0.0.partial_cmp(&(f - whole)).unwrap_or(Ordering::Equal)),
        )
    }
}

/// How an arithmetic operator is written; the `function` of its type errors.
pub(crate) fn arith_symbol(op: ArithOp) -> &'static str {
    match op {
        ArithOp::Add => "+",
        ArithOp::Sub => "-",
        ArithOp::Mul => "*",
        ArithOp::Div => "/",
        ArithOp::Rem => "%",
        ArithOp::IntDiv => "//",
    }
}

/// Arithmetic (weir extension, as JMESPath's arithmetic proposal spells it). A null operand gives
/// null (as SQL does); any other operand that is not a number is a type error. `+ - * % //` of two
/// integers are integers (`+ - *` fall back to floats on overflow), `/` is always a float; a zero
/// divisor of `/ % //` is an error.
pub(crate) fn arith(op: ArithOp, a: &Value, b: &Value) -> Result<Value, EvalError> {
    if a.is_null() || b.is_null() {
        return Ok(Value::Null);
    }
    let number = |position: usize, v: &Value| match v {
        Value::Int(_) | Value::Float(_) => Ok(()),
        _ => Err(EvalError::InvalidType {
            function: arith_symbol(op),
            position,
            expected: "number",
            actual: v.kind(),
        }),
    };
    number(1, a)?;
    number(2, b)?;
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int_arith(op, *x, *y),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => float_arith(op, x, y),
            _ => Ok(Value::Null), // unreachable: both were checked to be numbers
        },
    }
}

/// [`arith`] on two integers.
pub(crate) fn int_arith(op: ArithOp, x: i64, y: i64) -> Result<Value, EvalError> {
    let overflowed = |r: Option<i64>| -> Result<Value, EvalError> {
        match r {
            Some(r) => Ok(Value::Int(r)),
            None => float_arith(op, x as f64, y as f64),
        }
    };
    match op {
        ArithOp::Add => overflowed(x.checked_add(y)),
        ArithOp::Sub => overflowed(x.checked_sub(y)),
        ArithOp::Mul => overflowed(x.checked_mul(y)),
        ArithOp::Div => float_arith(op, x as f64, y as f64),
        ArithOp::Rem => {
            check_divisor(op, y == 0)?;
            // i64::MIN % -1 overflows in Rust but is 0; wrapping_rem gives exactly that.
            Ok(Value::Int(x.wrapping_rem(y)))
        }
        ArithOp::IntDiv => {
            check_divisor(op, y == 0)?;
            match x.checked_div(y) {
                // Rust truncates toward zero; floor division rounds down.
                Some(q) if x % y != 0 && ((x < 0) != (y < 0)) => Ok(Value::Int(q - 1)),
                q => overflowed(q),
            }
        }
    }
}

/// [`arith`] on two numbers of which one at least is a float.
pub(crate) fn float_arith(op: ArithOp, x: f64, y: f64) -> Result<Value, EvalError> {
    Ok(Value::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => {
            check_divisor(op, y == 0.0)?;
            x / y
        }
        ArithOp::Rem => {
            check_divisor(op, y == 0.0)?;
            x % y
        }
        ArithOp::IntDiv => {
            check_divisor(op, y == 0.0)?;
            (x / y).floor()
        }
    }))
}

fn check_divisor(op: ArithOp, is_zero: bool) -> Result<(), EvalError> {
    if is_zero {
        Err(EvalError::InvalidValue(format!(
            "division by zero in `{}`",
            arith_symbol(op)
        )))
    } else {
        Ok(())
    }
}

/// Unary minus (weir extension): null stays null, numbers are negated (an integer that overflows
/// becomes a float), anything else is a type error.
pub(crate) fn negate(a: &Value) -> Result<Value, EvalError> {
    match a {
        Value::Null => Ok(Value::Null),
        Value::Int(x) => Ok(x
            .checked_neg()
            .map(Value::Int)
            .unwrap_or(Value::Float(-(*x as f64)))),
        Value::Float(x) => Ok(Value::Float(-x)),
        other => Err(EvalError::InvalidType {
            function: "-",
            position: 1,
            expected: "number",
            actual: other.kind(),
        }),
    }
}

/// The JSON text of a value, compact and with object keys in their order, as `to_string()` gives
/// it for every value that is not a string: a timestamp on its own is its bare ISO 8601 text (as
/// `to_string()` gives it), a timestamp inside an array or object a JSON string. Non-finite
/// floats, which JSON cannot hold, are `null`.
pub(crate) fn to_json_text(v: &Value) -> String {
    match v {
        Value::Timestamp(t) => format_timestamp(*t),
        other => {
            let mut out = String::new();
            other.write_json(&mut out);
            out
        }
    }
}

/// A float as serde_json writes it (shortest round-trip form: `1.0`, `0.1`, `1e+100`); `null` when
/// it is not finite.
pub(crate) fn float_text(f: f64) -> String {
    serde_json::Number::from_f64(f)
        .map(|n| n.to_string())
        .unwrap_or_else(|| "null".to_string())
}
