//! The built-in functions: JMESPath's, with the specification's type checks, and weir's
//! extensions. The per-element helpers (`to_number_str`, `sha256_hex`, `cast_value`, ...) are
//! `pub(crate)` so the column-wise evaluator computes exactly what this one does.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;
use sha2::{Digest, Sha256};

use super::{number_order, search, to_json_text};
use crate::ast::{Ast, Function};
use crate::value::{format_timestamp, Kind, Map, Value};
use crate::EvalError;

/// Microseconds in a millisecond.
pub(crate) const MICROS_PER_MILLI: i64 = 1_000;
/// Microseconds in a second.
pub(crate) const MICROS_PER_SECOND: i64 = 1_000_000;
/// Microseconds in an hour.
pub(crate) const MICROS_PER_HOUR: i64 = 3_600 * MICROS_PER_SECOND;
/// Microseconds in a day.
pub(crate) const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

/// What `sort`, `min` and `max` take.
const SORTABLE: &str = "array[number]|array[string]";
/// What `concat` and `cast` take: any scalar.
const SCALAR: &str = "string|number|boolean|timestamp|null";
/// What the time functions take: a timestamp, or a number of epoch milliseconds.
const TIME: &str = "timestamp|number";

/// A function argument: a value, or an expression reference (`&expr`).
#[derive(Debug, Clone)]
pub(crate) enum Arg<'a> {
    /// An evaluated argument.
    Value(Value),
    /// `&expr`: evaluated by the function, on what it chooses.
    Expr(&'a Ast),
}

/// Calls `f`. The parser checked the arity; it is checked again for callers that build calls.
pub(crate) fn call(f: Function, args: Vec<Arg<'_>>) -> Result<Value, EvalError> {
    let (min, max) = f.arity();
    if args.len() < min || args.len() > max {
        return Err(EvalError::InvalidValue(format!(
            "{}() does not take {} arguments",
            f.name(),
            args.len()
        )));
    }
    let mut a = Args { f, args };
    Ok(match f {
        Function::Abs => match a.number(0)? {
            Number::Int(i) => i
                .checked_abs()
                .map(Value::Int)
                .unwrap_or(Value::Float((i as f64).abs())),
            Number::Float(x) => Value::Float(x.abs()),
        },
        Function::Avg => {
            let numbers = a.numbers(0)?;
            if numbers.is_empty() {
                Value::Null
            } else {
                let total: f64 = numbers.iter().map(|n| n.as_f64()).sum();
                Value::Float(total / numbers.len() as f64)
            }
        }
        Function::Ceil => match a.number(0)? {
            Number::Int(i) => Value::Int(i),
            Number::Float(x) => int_if_fits(x.ceil()),
        },
        Function::Floor => match a.number(0)? {
            Number::Int(i) => Value::Int(i),
            Number::Float(x) => int_if_fits(x.floor()),
        },
        Function::Contains => {
            let subject = a.value(0, "array|string")?;
            let needle = a.value(1, "any")?;
            match subject {
                Value::Array(items) => Value::Bool(items.contains(&needle)),
                // A string never contains a non-string (the specification's `contains('foobar',
                // 123)` is false, not an error).
                Value::String(s) => Value::Bool(match needle {
                    Value::String(n) => s.contains(n.as_str()),
                    _ => false,
                }),
                other => return Err(a.invalid(0, "array|string", &other)),
            }
        }
        Function::EndsWith => {
            let (s, suffix) = (a.string(0)?, a.string(1)?);
            Value::Bool(s.ends_with(suffix.as_str()))
        }
        Function::StartsWith => {
            let (s, prefix) = (a.string(0)?, a.string(1)?);
            Value::Bool(s.starts_with(prefix.as_str()))
        }
        Function::Join => {
            let glue = a.string(0)?;
            let items = a.array(1, "array[string]")?;
            let mut parts = Vec::with_capacity(items.len());
            for item in &items {
                match item {
                    Value::String(s) => parts.push(s.as_str()),
                    other => return Err(a.invalid(1, "array[string]", other)),
                }
            }
            Value::String(parts.join(&glue))
        }
        Function::Keys => Value::Array(a.object(0)?.into_keys().map(Value::String).collect()),
        Function::Values => Value::Array(a.object(0)?.into_values().collect()),
        Function::Length => match a.value(0, "string|array|object")? {
            Value::String(s) => Value::Int(s.chars().count() as i64),
            Value::Array(items) => Value::Int(items.len() as i64),
            Value::Object(map) => Value::Int(map.len() as i64),
            other => return Err(a.invalid(0, "string|array|object", &other)),
        },
        Function::Map => {
            let expr = a.expr(0)?;
            let items = a.array(1, "array")?;
            // Unlike a projection, map keeps null results.
            Value::Array(
                items
                    .iter()
                    .map(|item| search(expr, item))
                    .collect::<Result<_, _>>()?,
            )
        }
        Function::Max | Function::Min => {
            let items = a.array(0, SORTABLE)?;
            if let Err(bad) = sortable_kind(&items) {
                return Err(a.invalid(0, SORTABLE, bad));
            }
            match extreme(&items, wanted(f)) {
                Some(i) => items.into_iter().nth(i).unwrap_or_default(),
                None => Value::Null,
            }
        }
        Function::MaxBy | Function::MinBy => {
            let items = a.array(0, "array")?;
            let keys = a.sort_keys(&items)?;
            match extreme(&keys, wanted(f)) {
                Some(i) => items.into_iter().nth(i).unwrap_or_default(),
                None => Value::Null,
            }
        }
        Function::Merge => {
            let mut merged = Map::new();
            for i in 0..a.args.len() {
                // Later objects win; a key already present keeps its position.
                merged.extend(a.object(i)?);
            }
            Value::Object(merged)
        }
        Function::NotNull | Function::Coalesce => {
            for i in 0..a.args.len() {
                let v = a.value(i, "any")?;
                if !v.is_null() {
                    return Ok(v);
                }
            }
            Value::Null
        }
        Function::Reverse => match a.value(0, "string|array")? {
            Value::String(s) => Value::String(s.chars().rev().collect()),
            Value::Array(mut items) => {
                items.reverse();
                Value::Array(items)
            }
            other => return Err(a.invalid(0, "string|array", &other)),
        },
        Function::Sort => {
            let mut items = a.array(0, SORTABLE)?;
            if let Err(bad) = sortable_kind(&items) {
                return Err(a.invalid(0, SORTABLE, bad));
            }
            items.sort_by(sort_order); // stable
            Value::Array(items)
        }
        Function::SortBy => {
            let items = a.array(0, "array")?;
            let keys = a.sort_keys(&items)?;
            let mut keyed: Vec<(Value, Value)> = keys.into_iter().zip(items).collect();
            keyed.sort_by(|x, y| sort_order(&x.0, &y.0)); // stable, as the specification asks
            Value::Array(keyed.into_iter().map(|(_, item)| item).collect())
        }
        Function::Sum => sum(&a.numbers(0)?),
        Function::ToArray => match a.value(0, "any")? {
            Value::Array(items) => Value::Array(items),
            other => Value::Array(vec![other]),
        },
        Function::ToNumber => match a.value(0, "any")? {
            n @ (Value::Int(_) | Value::Float(_)) => n,
            Value::String(s) => to_number_str(&s),
            // Timestamps too, like every other non-number: `cast(t, 'int64')` gives micros.
            _ => Value::Null,
        },
        Function::ToString => Value::String(to_string_text(a.value(0, "any")?)),
        Function::Type => Value::String(a.value(0, "any")?.kind().name().to_string()),

        // weir's extensions: each documented where it is implemented, below.
        Function::Lower => lower(&mut a)?,
        Function::Upper => upper(&mut a)?,
        Function::Substr => substr(&mut a)?,
        Function::Concat => concat(&mut a)?,
        Function::Replace => replace(&mut a)?,
        Function::RegexMatch => regex_match(&mut a)?,
        Function::FromEpochSeconds => from_epoch(&mut a, MICROS_PER_SECOND)?,
        Function::FromEpochMillis => from_epoch(&mut a, MICROS_PER_MILLI)?,
        Function::FromEpochMicros => from_epoch(&mut a, 1)?,
        Function::ToIso8601 => to_iso8601(&mut a)?,
        Function::TruncateDay => truncate(&mut a, MICROS_PER_DAY)?,
        Function::TruncateHour => truncate(&mut a, MICROS_PER_HOUR)?,
        Function::Date => date(&mut a)?,
        Function::Sha256 => sha256(&mut a)?,
        Function::Cast => cast(&mut a)?,
    })
}

/// `lower(s)`: `s` in lower case (Unicode); null stays null. `lower('ÀB')` is `"àb"`.
fn lower(a: &mut Args) -> Result<Value, EvalError> {
    Ok(nullable(a.nullable_string(0)?, |s| s.to_lowercase()))
}

/// `upper(s)`: `s` in upper case (Unicode); null stays null. `upper('straße')` is `"STRASSE"`.
fn upper(a: &mut Args) -> Result<Value, EvalError> {
    Ok(nullable(a.nullable_string(0)?, |s| s.to_uppercase()))
}

/// `substr(s, start, length?)`: the code points of `s` from `start` (0-based; negative counts
/// from the end), `length` of them or all that remain; clamped to the string ([`substr_chars`]).
/// `substr('María', `1`, `3`)` is `"arí"`, `substr('María', `-2`)` is `"ía"`.
fn substr(a: &mut Args) -> Result<Value, EvalError> {
    let s = a.nullable_string(0)?;
    let start = a.integer(1)?;
    let length = a.optional(2, |a| a.integer(2))?;
    Ok(nullable(s, |s| substr_chars(&s, start, length).to_string()))
}

/// `concat(a, b, ...)`: the arguments end to end; numbers, booleans and timestamps as
/// `to_string()` writes them, nulls skipped (null when every one is), arrays and objects refused.
/// `concat('n=', `1`, null_field)` is `"n=1"`.
fn concat(a: &mut Args) -> Result<Value, EvalError> {
    let mut out: Option<String> = None;
    for i in 0..a.args.len() {
        match a.value(i, SCALAR)? {
            Value::Null => {}
            v @ (Value::Array(_) | Value::Object(_)) => return Err(a.invalid(i, SCALAR, &v)),
            v => out
                .get_or_insert_with(String::new)
                .push_str(&to_string_text(v)),
        }
    }
    Ok(out.map(Value::String).unwrap_or_default())
}

/// `replace(s, from, to)`: every occurrence of the literal string `from` in `s` replaced by `to`.
/// `replace('a-b-c', '-', '+')` is `"a+b+c"`.
fn replace(a: &mut Args) -> Result<Value, EvalError> {
    let s = a.nullable_string(0)?;
    let (from, to) = (a.string(1)?, a.string(2)?);
    Ok(nullable(s, |s| s.replace(from.as_str(), &to)))
}

/// `regex_match(s, pattern)`: whether the Rust `regex` `pattern` matches somewhere in `s` (anchor
/// it with `^...$` to match the whole string). An invalid pattern is an error even when `s` is
/// null, so a bad pattern fails every row alike. `regex_match('a-42', '\d+$')` is `true`.
fn regex_match(a: &mut Args) -> Result<Value, EvalError> {
    let s = a.nullable_string(0)?;
    let re = compiled_regex(&a.string(1)?)?;
    Ok(s.map(|s| Value::Bool(re.is_match(&s))).unwrap_or_default())
}

/// `from_epoch_seconds(n)`, `from_epoch_millis(n)`, `from_epoch_micros(n)`: a number of
/// `micros_per_unit`-microsecond units since the Unix epoch as a timestamp (a float rounded to
/// the microsecond); a timestamp stays as it is, null stays null, a point outside the years
/// a timestamp prints in is an error. `from_epoch_millis(`1500`)` is 1970-01-01T00:00:01.500Z.
fn from_epoch(a: &mut Args, micros_per_unit: i64) -> Result<Value, EvalError> {
    Ok(match a.value(0, "number|timestamp")? {
        Value::Null => Value::Null,
        t @ Value::Timestamp(_) => t,
        n @ (Value::Int(_) | Value::Float(_)) => Value::Timestamp(
            epoch_to_micros(&n, micros_per_unit)
                .ok_or_else(|| a.out_of_range(&to_json_text(&n)))?,
        ),
        other => return Err(a.invalid(0, "number|timestamp", &other)),
    })
}

/// `truncate_day(t)`, `truncate_hour(t)`: a timestamp (or a number of epoch milliseconds)
/// truncated to the start of its UTC day or hour, as a timestamp.
/// `truncate_hour(`5400000`)` is 1970-01-01T01:00:00Z.
fn truncate(a: &mut Args, unit: i64) -> Result<Value, EvalError> {
    Ok(match a.timestamp(0)? {
        Some(t) => Value::Timestamp(
            truncate_micros(t, unit).ok_or_else(|| a.out_of_range(&t.to_string()))?,
        ),
        None => Value::Null,
    })
}

/// `to_iso8601(t)`: a timestamp (or a number of epoch milliseconds) as ISO 8601 text in UTC,
/// with as many fraction digits as it needs. `to_iso8601(`1500`)` is `"1970-01-01T00:00:01.500Z"`.
fn to_iso8601(a: &mut Args) -> Result<Value, EvalError> {
    Ok(a.timestamp(0)?
        .map(|t| Value::String(format_timestamp(t)))
        .unwrap_or_default())
}

/// `date(t)`: the UTC calendar date of a timestamp (or of a number of epoch milliseconds),
/// `YYYY-MM-DD`. `date(from_epoch_seconds(`86400`))` is `"1970-01-02"`.
fn date(a: &mut Args) -> Result<Value, EvalError> {
    Ok(match a.timestamp(0)? {
        Some(t) => Value::String(date_text(t).ok_or_else(|| a.out_of_range(&t.to_string()))?),
        None => Value::Null,
    })
}

/// `sha256(v, salt?)`: lowercase hex SHA-256 of the salt's bytes then `v`'s (`v` taken as
/// `to_string()` writes it); null stays null, a salt must be a string.
/// `sha256('abc')` is `"ba7816bf...15ad"`; `sha256('bc', 'a')` is the same.
fn sha256(a: &mut Args) -> Result<Value, EvalError> {
    let v = a.value(0, "any")?;
    let salt = a.optional(1, |a| a.string(1))?;
    Ok(if v.is_null() {
        Value::Null
    } else {
        Value::String(sha256_hex(&to_string_text(v), salt.as_deref()))
    })
}

/// `cast(v, 'type')`: `v` converted to an Arrow type, named `int8` ... `int64`, `uint8` ...
/// `uint64`, `float32`, `float64`, `utf8` (or `string`), `boolean` (or `bool`), `timestamp`;
/// null where it does not convert ([`cast_value`] has the rules). `cast('42', 'int32')` is `42`,
/// `cast(`300`, 'uint8')` is null.
fn cast(a: &mut Args) -> Result<Value, EvalError> {
    let v = a.value(0, SCALAR)?;
    let to = CastType::from_name(&a.string(1)?)?;
    cast_value(v, to)
}

/// A number argument, its integer-ness kept.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(x) => x,
        }
    }
}

/// The arguments of one call, taken one by one, each checked against what the function takes.
struct Args<'a> {
    f: Function,
    args: Vec<Arg<'a>>,
}

impl<'a> Args<'a> {
    /// JMESPath's `invalid-type` for argument `i` (0-based).
    fn invalid(&self, i: usize, expected: &'static str, actual: &Value) -> EvalError {
        EvalError::InvalidType {
            function: self.f.name(),
            position: i + 1,
            expected,
            actual: actual.kind(),
        }
    }

    /// Argument `i` as a value (moved out); an expression reference is a type error.
    fn value(&mut self, i: usize, expected: &'static str) -> Result<Value, EvalError> {
        match self.args.get_mut(i) {
            Some(Arg::Value(v)) => Ok(std::mem::take(v)),
            // `Kind` has no name for an expression, so this is told in words.
            Some(Arg::Expr(_)) => Err(EvalError::InvalidValue(format!(
                "{}(): argument {} must be {expected}, not an expression",
                self.f.name(),
                i + 1
            ))),
            None => Ok(Value::Null),
        }
    }

    /// `get(self)` when argument `i` was given, `None` otherwise.
    fn optional<T>(
        &mut self,
        i: usize,
        get: impl FnOnce(&mut Self) -> Result<T, EvalError>,
    ) -> Result<Option<T>, EvalError> {
        if i < self.args.len() {
            get(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Argument `i` as an expression reference.
    fn expr(&self, i: usize) -> Result<&'a Ast, EvalError> {
        match self.args.get(i) {
            Some(Arg::Expr(e)) => Ok(e),
            Some(Arg::Value(v)) => Err(self.invalid(i, "expression", v)),
            None => Err(self.invalid(i, "expression", &Value::Null)),
        }
    }

    fn number(&mut self, i: usize) -> Result<Number, EvalError> {
        match self.value(i, "number")? {
            Value::Int(n) => Ok(Number::Int(n)),
            Value::Float(x) => Ok(Number::Float(x)),
            other => Err(self.invalid(i, "number", &other)),
        }
    }

    /// An integer argument: an integer, or a float with no fraction.
    fn integer(&mut self, i: usize) -> Result<i64, EvalError> {
        match self.value(i, "integer")? {
            Value::Int(n) => Ok(n),
            Value::Float(x) if x.fract() == 0.0 && in_i64_range(x) => Ok(x as i64),
            other => Err(self.invalid(i, "integer", &other)),
        }
    }

    fn numbers(&mut self, i: usize) -> Result<Vec<Number>, EvalError> {
        let items = self.array(i, "array[number]")?;
        items
            .iter()
            .map(|item| match item {
                Value::Int(n) => Ok(Number::Int(*n)),
                Value::Float(x) => Ok(Number::Float(*x)),
                other => Err(self.invalid(i, "array[number]", other)),
            })
            .collect()
    }

    fn string(&mut self, i: usize) -> Result<String, EvalError> {
        match self.value(i, "string")? {
            Value::String(s) => Ok(s),
            other => Err(self.invalid(i, "string", &other)),
        }
    }

    /// A string, or `None` for null (the extensions pass a null first argument through).
    fn nullable_string(&mut self, i: usize) -> Result<Option<String>, EvalError> {
        match self.value(i, "string")? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(self.invalid(i, "string", &other)),
        }
    }

    fn array(&mut self, i: usize, expected: &'static str) -> Result<Vec<Value>, EvalError> {
        match self.value(i, expected)? {
            Value::Array(items) => Ok(items),
            other => Err(self.invalid(i, expected, &other)),
        }
    }

    fn object(&mut self, i: usize) -> Result<Map, EvalError> {
        match self.value(i, "object")? {
            Value::Object(map) => Ok(map),
            other => Err(self.invalid(i, "object", &other)),
        }
    }

    /// The keys `sort_by`, `max_by` and `min_by` order `items` by: the expression reference
    /// (argument 2) on each item, all numbers or all strings.
    fn sort_keys(&self, items: &[Value]) -> Result<Vec<Value>, EvalError> {
        let expr = self.expr(1)?;
        let keys = items
            .iter()
            .map(|item| search(expr, item))
            .collect::<Result<Vec<_>, _>>()?;
        if let Err(bad) = sortable_kind(&keys) {
            let expected = match keys.first().map(Value::kind) {
                Some(Kind::Number) => "expression->number",
                Some(Kind::String) => "expression->string",
                _ => "expression->number|expression->string",
            };
            return Err(self.invalid(1, expected, bad));
        }
        Ok(keys)
    }

    /// The first argument as a point in time (a timestamp, or a number of epoch milliseconds);
    /// `None` for null.
    fn timestamp(&mut self, i: usize) -> Result<Option<i64>, EvalError> {
        let v = self.value(i, TIME)?;
        timestamp_arg_micros(self.f, i + 1, &v)
    }

    fn out_of_range(&self, what: &str) -> EvalError {
        out_of_range(self.f, what)
    }
}

/// `some(s)` for a string, null for `None`.
fn nullable(s: Option<String>, some: impl FnOnce(String) -> String) -> Value {
    s.map(|s| Value::String(some(s))).unwrap_or_default()
}

/// The kind all `items` share when they are all numbers or all strings (`None` when there are no
/// items); otherwise the first item that is neither or differs from the first.
fn sortable_kind(items: &[Value]) -> Result<Option<Kind>, &Value> {
    let Some(first) = items.first() else {
        return Ok(None);
    };
    let kind = first.kind();
    if kind != Kind::Number && kind != Kind::String {
        return Err(first);
    }
    match items.iter().find(|v| v.kind() != kind) {
        Some(bad) => Err(bad),
        None => Ok(Some(kind)),
    }
}

/// How `sort` orders two numbers or two strings (strings by code point). A total order, so NaN,
/// which no comparison orders, goes where `f64::total_cmp` puts it.
fn sort_order(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => number_order(a, b).unwrap_or_else(|| match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            _ => Ordering::Equal,
        }),
    }
}

/// What `max` and `max_by` look for (the greatest), and `min` and `min_by` (the least).
fn wanted(f: Function) -> Ordering {
    if matches!(f, Function::Max | Function::MaxBy) {
        Ordering::Greater
    } else {
        Ordering::Less
    }
}

/// The index of the greatest (`want` = Greater) or least item; the first one on ties, as the
/// reference implementation's `max`/`min` do.
fn extreme(items: &[Value], want: Ordering) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, item) in items.iter().enumerate() {
        match best {
            Some(b) if sort_order(item, &items[b]) != want => {}
            _ => best = Some(i),
        }
    }
    best
}

/// `sum`: an integer while every number is one and the total fits, else a float.
fn sum(numbers: &[Number]) -> Value {
    let mut total: Option<i64> = Some(0);
    for n in numbers {
        total = match (total, n) {
            (Some(t), Number::Int(i)) => t.checked_add(*i),
            _ => None,
        };
    }
    match total {
        Some(t) => Value::Int(t),
        None => Value::Float(numbers.iter().map(|n| n.as_f64()).sum()),
    }
}

/// True when `x` truncated toward zero fits an `i64`.
fn in_i64_range(x: f64) -> bool {
    // -2^63 and 2^63 are exact as f64; NaN fails both comparisons.
    (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&x.trunc())
}

/// A whole float (from `ceil` or `floor`) as an integer when it fits, as it is otherwise.
pub(crate) fn int_if_fits(x: f64) -> Value {
    if x.is_finite() && in_i64_range(x) {
        Value::Int(x as i64)
    } else {
        Value::Float(x)
    }
}

/// What `to_string()` returns: a string as it is, a timestamp as its ISO 8601 text, anything else
/// as compact JSON ([`to_json_text`]).
pub(crate) fn to_string_text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => to_json_text(&other),
    }
}

/// `to_number()` of a string: the number when the whole string is a JSON number (`-1`, `2.5`,
/// `1e3`), else null. An integer beyond `i64` becomes a float; one beyond `f64`, null.
pub(crate) fn to_number_str(s: &str) -> Value {
    if !is_json_number(s) {
        return Value::Null;
    }
    if !s.contains(['.', 'e', 'E']) {
        if let Ok(i) = s.parse::<i64>() {
            return Value::Int(i);
        }
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() => Value::Float(x),
        _ => Value::Null,
    }
}

/// The JSON `number` production: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if b.first() == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// `substr(s, start, length)` by Unicode code points: `start` 0-based, negative from the end,
/// clamped to the string; `length` (to the end by default, nothing when negative) clamped too.
pub(crate) fn substr_chars(s: &str, start: i64, length: Option<i64>) -> &str {
    let count = s.chars().count() as i128;
    let start = match start as i128 {
        n if n < 0 => (count + n).max(0),
        n => n.min(count),
    };
    let end = match length {
        None => count,
        Some(len) => (start + (len as i128).max(0)).min(count),
    };
    let byte = |chars: i128| {
        s.char_indices()
            .nth(chars as usize)
            .map(|(i, _)| i)
            .unwrap_or(s.len())
    };
    &s[byte(start)..byte(end)]
}

/// Compiled regexes by pattern: a pattern is normally a literal, compiled once per thread.
const REGEX_CACHE_SIZE: usize = 64;

thread_local! {
    static REGEXES: RefCell<HashMap<String, Regex>> = RefCell::new(HashMap::new());
}

/// The compiled `pattern` (Rust `regex` syntax), from a small per-thread cache; an invalid
/// pattern is an `InvalidValue` with the regex error.
pub(crate) fn compiled_regex(pattern: &str) -> Result<Regex, EvalError> {
    REGEXES.with(|cache| {
        if let Some(re) = cache.borrow().get(pattern) {
            return Ok(re.clone());
        }
        let re = Regex::new(pattern)
            .map_err(|e| EvalError::InvalidValue(format!("regex_match(): invalid pattern: {e}")))?;
        let mut cache = cache.borrow_mut();
        // Patterns computed per row could grow the cache without bound; start over instead.
        if cache.len() >= REGEX_CACHE_SIZE {
            cache.clear();
        }
        cache.insert(pattern.to_string(), re.clone());
        Ok(re)
    })
}

/// Lowercase hex of SHA-256 over the salt's bytes followed by `s`'s UTF-8 bytes.
pub(crate) fn sha256_hex(s: &str, salt: Option<&str>) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hasher = Sha256::new();
    if let Some(salt) = salt {
        hasher.update(salt.as_bytes());
    }
    hasher.update(s.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in hasher.finalize() {
        out.push(HEX[usize::from(byte >> 4)] as char);
        out.push(HEX[usize::from(byte & 0xf)] as char);
    }
    out
}

/// A number of `micros_per_unit`-microsecond units since the epoch, as microseconds (a float
/// rounded to the nearest one); `None` for non-numbers and for points outside the range a
/// timestamp can be printed in.
pub(crate) fn epoch_to_micros(n: &Value, micros_per_unit: i64) -> Option<i64> {
    let micros = match n {
        Value::Int(i) => i.checked_mul(micros_per_unit)?,
        Value::Float(x) => {
            let m = (x * micros_per_unit as f64).round();
            if !in_i64_range(m) {
                return None; // NaN and infinities too
            }
            m as i64
        }
        _ => return None,
    };
    chrono::DateTime::from_timestamp_micros(micros).map(|_| micros)
}

/// A time function's argument as microseconds: a timestamp as it is, a number as epoch
/// milliseconds; `None` for null. `f` and `position` (1-based) name the argument in errors.
pub(crate) fn timestamp_arg_micros(
    f: Function,
    position: usize,
    v: &Value,
) -> Result<Option<i64>, EvalError> {
    match v {
        Value::Null => Ok(None),
        Value::Timestamp(t) => Ok(Some(*t)),
        Value::Int(_) | Value::Float(_) => epoch_to_micros(v, MICROS_PER_MILLI)
            .map(Some)
            .ok_or_else(|| out_of_range(f, &to_json_text(v))),
        other => Err(EvalError::InvalidType {
            function: f.name(),
            position,
            expected: TIME,
            actual: other.kind(),
        }),
    }
}

/// `f`'s error for a point in time (`what`) outside the years a timestamp prints in.
fn out_of_range(f: Function, what: &str) -> EvalError {
    EvalError::InvalidValue(format!(
        "{}(): {what} is out of the timestamp range",
        f.name()
    ))
}

/// `t` truncated down to a multiple of `unit` microseconds (the start of its UTC day or hour);
/// `None` on overflow.
pub(crate) fn truncate_micros(t: i64, unit: i64) -> Option<i64> {
    t.checked_sub(t.checked_rem_euclid(unit)?)
}

/// `date(t)`: the UTC calendar date, `YYYY-MM-DD`; `None` outside the range dates print in.
pub(crate) fn date_text(t: i64) -> Option<String> {
    match date_bytes(t) {
        // ASCII digits and dashes.
        Some(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        None => {
            chrono::DateTime::from_timestamp_micros(t).map(|d| d.format("%Y-%m-%d").to_string())
        }
    }
}

/// `YYYY-MM-DD` of `t` (µs since the epoch, UTC) for years 0 to 9999, exactly as chrono's
/// `%Y-%m-%d` writes it, without its format machinery (the columnar `date()` calls this per
/// row); `None` outside those years. Civil date from days: H. Hinnant's `civil_from_days`.
pub(crate) fn date_bytes(t: i64) -> Option<[u8; 10]> {
    const MICROS_PER_DAY: i64 = 86_400_000_000;
    let z = t.div_euclid(MICROS_PER_DAY) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return None;
    }
    let digit = |v: i64| b'0' + v as u8; // 0..=9
    Some([
        digit(year / 1000),
        digit(year / 100 % 10),
        digit(year / 10 % 10),
        digit(year % 10),
        b'-',
        digit(month / 10),
        digit(month % 10),
        b'-',
        digit(day / 10),
        digit(day % 10),
    ])
}

/// A type `cast()` converts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CastType {
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    Utf8,
    Boolean,
    Timestamp,
}

impl CastType {
    /// Every accepted name, with the aliases `string` and `bool`.
    const NAMES: [(&'static str, CastType); 15] = [
        ("int8", CastType::Int8),
        ("int16", CastType::Int16),
        ("int32", CastType::Int32),
        ("int64", CastType::Int64),
        ("uint8", CastType::UInt8),
        ("uint16", CastType::UInt16),
        ("uint32", CastType::UInt32),
        ("uint64", CastType::UInt64),
        ("float32", CastType::Float32),
        ("float64", CastType::Float64),
        ("utf8", CastType::Utf8),
        ("string", CastType::Utf8),
        ("boolean", CastType::Boolean),
        ("bool", CastType::Boolean),
        ("timestamp", CastType::Timestamp),
    ];

    /// The type of this name; an unknown name is an `InvalidValue` listing the accepted ones.
    pub(crate) fn from_name(name: &str) -> Result<CastType, EvalError> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::NAMES.iter().map(|(n, _)| *n).collect();
                EvalError::InvalidValue(format!(
                    "cast(): unknown type '{name}'; expected one of {}",
                    names.join(", ")
                ))
            })
    }

    /// The Arrow type a column of this cast has.
    pub(crate) fn data_type(self) -> arrow_schema::DataType {
        use arrow_schema::DataType as D;
        match self {
            CastType::Int8 => D::Int8,
            CastType::Int16 => D::Int16,
            CastType::Int32 => D::Int32,
            CastType::Int64 => D::Int64,
            CastType::UInt8 => D::UInt8,
            CastType::UInt16 => D::UInt16,
            CastType::UInt32 => D::UInt32,
            CastType::UInt64 => D::UInt64,
            CastType::Float32 => D::Float32,
            CastType::Float64 => D::Float64,
            CastType::Utf8 => D::Utf8,
            CastType::Boolean => D::Boolean,
            CastType::Timestamp => D::Timestamp(
                arrow_schema::TimeUnit::Microsecond,
                Some(crate::convert::UTC.into()),
            ),
        }
    }

    /// The range of an integer type. `uint64` stops at `i64::MAX`: a value holds no more.
    pub(crate) fn int_range(self) -> Option<(i64, i64)> {
        Some(match self {
            CastType::Int8 => (i8::MIN.into(), i8::MAX.into()),
            CastType::Int16 => (i16::MIN.into(), i16::MAX.into()),
            CastType::Int32 => (i32::MIN.into(), i32::MAX.into()),
            CastType::Int64 => (i64::MIN, i64::MAX),
            CastType::UInt8 => (0, u8::MAX.into()),
            CastType::UInt16 => (0, u16::MAX.into()),
            CastType::UInt32 => (0, u32::MAX.into()),
            CastType::UInt64 => (0, i64::MAX),
            _ => return None,
        })
    }
}

/// `cast(v, type)` on one value. A value that does not convert (an unparsable string, a number
/// outside an integer type's range) is null; arrays and objects are type errors, and so are
/// timestamps to boolean and booleans to timestamp, which mean nothing.
///
/// - to integers: numbers truncated toward zero, strings parsed as numbers first, booleans 0/1,
///   timestamps as epoch microseconds;
/// - to floats: numbers, parsed strings, booleans 0/1, timestamps as epoch microseconds;
/// - to `utf8`: what `to_string()` gives;
/// - to `boolean`: `"true"`/`"false"`, numbers other than 0 are true;
/// - to `timestamp`: numbers as epoch milliseconds, strings in RFC 3339.
pub(crate) fn cast_value(v: Value, to: CastType) -> Result<Value, EvalError> {
    let invalid = |v: &Value, expected| EvalError::InvalidType {
        function: "cast",
        position: 1,
        expected,
        actual: v.kind(),
    };
    if matches!(v, Value::Array(_) | Value::Object(_)) {
        return Err(invalid(&v, SCALAR));
    }
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match to {
        CastType::Utf8 => Value::String(to_string_text(v)),
        CastType::Boolean => match v {
            Value::Bool(b) => Value::Bool(b),
            Value::String(s) => match s.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => Value::Null,
            },
            Value::Int(i) => Value::Bool(i != 0),
            Value::Float(x) => Value::Bool(x != 0.0),
            other => return Err(invalid(&other, "string|number|boolean|null")),
        },
        CastType::Timestamp => match v {
            Value::Timestamp(t) => Value::Timestamp(t),
            n @ (Value::Int(_) | Value::Float(_)) => epoch_to_micros(&n, MICROS_PER_MILLI)
                .map(Value::Timestamp)
                .unwrap_or_default(),
            Value::String(s) => chrono::DateTime::parse_from_rfc3339(&s)
                .map(|t| Value::Timestamp(t.timestamp_micros()))
                .unwrap_or_default(),
            other => return Err(invalid(&other, "string|number|timestamp|null")),
        },
        numeric => {
            let n = match v {
                Value::String(s) => to_number_str(&s),
                Value::Bool(b) => Value::Int(i64::from(b)),
                Value::Timestamp(t) => Value::Int(t),
                n => n,
            };
            match (numeric.int_range(), &n) {
                (Some((min, max)), Value::Int(i)) => {
                    Some(Value::Int(*i)).filter(|_| (min..=max).contains(i))
                }
                (Some((min, max)), Value::Float(x)) => {
                    let t = x.trunc();
                    // max + 1 is exact as f64 for every type (a power of two); NaN fails.
                    let above_max = (i128::from(max) + 1) as f64;
                    (t >= min as f64 && t < above_max).then(|| Value::Int(t as i64))
                }
                (None, n) => n.as_f64().map(|x| {
                    Value::Float(if numeric == CastType::Float32 {
                        f64::from(x as f32)
                    } else {
                        x
                    })
                }),
                _ => None,
            }
            .unwrap_or_default()
        }
    })
}
