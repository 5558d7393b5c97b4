//! Arrow arrays to row values and back, for the row-by-row fallback and for tests.
//!
//! Arrow to values: numbers keep integer-ness, timestamps and dates become [`Value::Timestamp`],
//! decimals become floats, dictionaries are looked through. Values to Arrow: one type is inferred
//! for the whole column (integers and floats widen to float64; objects become a struct with the
//! union of their keys); values of different kinds in one column are an error.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, ListArray, NullArray, OffsetSizeTrait,
    StringArray, StructArray, TimestampMicrosecondArray,
};
use arrow_buffer::{NullBuffer, OffsetBuffer};
use arrow_schema::{DataType, Field, Fields, TimeUnit};

use crate::value::{Kind, Map, Value};
use crate::EvalError;

/// The timezone weir's expression results carry on timestamps.
pub(crate) const UTC: &str = "UTC";

/// A timestamp or date column as microseconds since the epoch, UTC (timezones are instants
/// already; a timestamp without one is read as UTC). `None` for other types.
pub(crate) fn timestamps(a: &dyn Array) -> Option<TimestampMicrosecondArray> {
    macro_rules! scale {
        ($t:ty, $mul:expr, $div:expr) => {
            a.as_primitive::<$t>()
                .unary::<_, TimestampMicrosecondType>(|v| (v as i64).saturating_mul($mul) / $div)
        };
    }
    let micros = match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => scale!(TimestampSecondType, 1_000_000, 1),
        DataType::Timestamp(TimeUnit::Millisecond, _) => scale!(TimestampMillisecondType, 1_000, 1),
        DataType::Timestamp(TimeUnit::Microsecond, _) => scale!(TimestampMicrosecondType, 1, 1),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => scale!(TimestampNanosecondType, 1, 1_000),
        DataType::Date32 => scale!(Date32Type, 86_400_000_000, 1),
        DataType::Date64 => scale!(Date64Type, 1_000, 1),
        _ => return None,
    };
    Some(micros.with_timezone(UTC))
}

/// Every row of `array` as a value.
pub(crate) fn to_values(array: &dyn Array) -> Result<Vec<Value>, EvalError> {
    let n = array.len();
    let valid = |i: usize| array.is_valid(i);
    macro_rules! prim {
        ($t:ty, $f:expr) => {{
            let a = array.as_primitive::<$t>();
            (0..n)
                .map(|i| {
                    if valid(i) {
                        $f(a.value(i))
                    } else {
                        Value::Null
                    }
                })
                .collect()
        }};
    }
    let int = |v: i64| Value::Int(v);
    Ok(match array.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let a = array.as_boolean();
            (0..n)
                .map(|i| {
                    if valid(i) {
                        Value::Bool(a.value(i))
                    } else {
                        Value::Null
                    }
                })
                .collect()
        }
        DataType::Int8 => prim!(Int8Type, |v: i8| int(v.into())),
        DataType::Int16 => prim!(Int16Type, |v: i16| int(v.into())),
        DataType::Int32 => prim!(Int32Type, |v: i32| int(v.into())),
        DataType::Int64 => prim!(Int64Type, int),
        DataType::UInt8 => prim!(UInt8Type, |v: u8| int(v.into())),
        DataType::UInt16 => prim!(UInt16Type, |v: u16| int(v.into())),
        DataType::UInt32 => prim!(UInt32Type, |v: u32| int(v.into())),
        DataType::UInt64 => prim!(UInt64Type, |v: u64| i64::try_from(v)
            .map(Value::Int)
            .unwrap_or(Value::Float(v as f64))),
        DataType::Float32 => prim!(Float32Type, |v: f32| Value::Float(v.into())),
        DataType::Float64 => prim!(Float64Type, Value::Float),
        DataType::Utf8 => strings(array.as_string::<i32>().iter()),
        DataType::LargeUtf8 => strings(array.as_string::<i64>().iter()),
        DataType::Utf8View => strings(array.as_string_view().iter()),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
            let t = timestamps(array)
                .ok_or_else(|| EvalError::UnsupportedType(array.data_type().to_string()))?;
            t.iter()
                .map(|v| v.map_or(Value::Null, Value::Timestamp))
                .collect()
        }
        DataType::Decimal128(_, scale) => {
            let s = 10f64.powi(i32::from(*scale));
            prim!(Decimal128Type, |v: i128| Value::Float(v as f64 / s))
        }
        DataType::List(_) => lists(array.as_list::<i32>())?,
        DataType::LargeList(_) => lists(array.as_list::<i64>())?,
        DataType::FixedSizeList(_, size) => {
            let a = array.as_fixed_size_list();
            let mut children = to_values(a.values().as_ref())?.into_iter();
            let size = usize::try_from(*size).unwrap_or(0);
            (0..n)
                .map(|i| {
                    let items: Vec<Value> = children.by_ref().take(size).collect();
                    if valid(i) {
                        Value::Array(items)
                    } else {
                        Value::Null
                    }
                })
                .collect()
        }
        DataType::Struct(fields) => {
            let a = array.as_struct();
            let mut columns: Vec<std::vec::IntoIter<Value>> = a
                .columns()
                .iter()
                .map(|c| to_values(c.as_ref()).map(Vec::into_iter))
                .collect::<Result<_, _>>()?;
            (0..n)
                .map(|i| {
                    let mut obj = Map::with_capacity(fields.len());
                    for (f, col) in fields.iter().zip(columns.iter_mut()) {
                        obj.insert(f.name().clone(), col.next().unwrap_or_default());
                    }
                    if valid(i) {
                        Value::Object(obj)
                    } else {
                        Value::Null
                    }
                })
                .collect()
        }
        DataType::Map(_, _) => {
            let a = array.as_map();
            let keys = to_values(a.keys().as_ref())?;
            let values = to_values(a.values().as_ref())?;
            let offsets = a.value_offsets();
            (0..n)
                .map(|i| {
                    if !valid(i) {
                        return Ok(Value::Null);
                    }
                    let (s, e) = (offsets[i] as usize, offsets[i + 1] as usize);
                    let mut obj = Map::with_capacity(e - s);
                    for j in s..e {
                        let Value::String(k) = &keys[j] else {
                            return Err(EvalError::UnsupportedType(
                                "a map whose keys are not strings".into(),
                            ));
                        };
                        obj.insert(k.clone(), values[j].clone());
                    }
                    Ok(Value::Object(obj))
                })
                .collect::<Result<_, _>>()?
        }
        DataType::Dictionary(_, _) => {
            let a = array.as_any_dictionary();
            let values = to_values(a.values().as_ref())?;
            let keys = a.normalized_keys();
            (0..n)
                .map(|i| {
                    if valid(i) {
                        values.get(keys[i]).cloned().unwrap_or_default()
                    } else {
                        Value::Null
                    }
                })
                .collect()
        }
        other => return Err(EvalError::UnsupportedType(other.to_string())),
    })
}

fn strings<'a>(iter: impl Iterator<Item = Option<&'a str>>) -> Vec<Value> {
    iter.map(|s| s.map_or(Value::Null, |s| Value::String(s.to_string())))
        .collect()
}

fn lists<O: OffsetSizeTrait>(
    a: &arrow_array::GenericListArray<O>,
) -> Result<Vec<Value>, EvalError> {
    let offsets = a.value_offsets();
    let (first, last) = (offsets[0].as_usize(), offsets[a.len()].as_usize());
    let values = a.values().slice(first, last - first);
    let mut children = to_values(values.as_ref())?.into_iter();
    Ok((0..a.len())
        .map(|i| {
            let len = (offsets[i + 1] - offsets[i]).as_usize();
            let items: Vec<Value> = children.by_ref().take(len).collect();
            if a.is_valid(i) {
                Value::Array(items)
            } else {
                Value::Null
            }
        })
        .collect())
}

/// The one kind of every non-null value (`None`: all null); different kinds are an error.
fn common_kind(values: &[Value]) -> Result<Option<Kind>, EvalError> {
    let mut kind: Option<Kind> = None;
    for v in values {
        match (kind, v.kind()) {
            (_, Kind::Null) => {}
            (None, k) => kind = Some(k),
            (Some(a), b) if a == b => {}
            (Some(a), b) => return Err(EvalError::MixedTypes(format!("{a} and {b}"))),
        }
    }
    Ok(kind)
}

/// One Arrow array holding `values`, with an inferred type. With `widen`, integers and floats
/// in one column make a float column; without, that is [`EvalError::MixedTypes`] (an
/// intermediate result must not turn `0` into `0.0`), and so are objects with different keys
/// (with `widen`, a struct of the union of their keys, absent ones null).
pub(crate) fn from_values(values: &[Value], widen: bool) -> Result<ArrayRef, EvalError> {
    let n = values.len();
    let nulls = || NullBuffer::from_iter(values.iter().map(|v| !v.is_null()));
    Ok(match common_kind(values)? {
        None | Some(Kind::Null) => Arc::new(NullArray::new(n)),
        Some(Kind::Boolean) => Arc::new(BooleanArray::from_iter(values.iter().map(|v| match v {
            Value::Bool(b) => Some(*b),
            _ => None,
        }))),
        // Numbers with a fraction anywhere make the column float.
        Some(Kind::Number) if values.iter().any(|v| matches!(v, Value::Float(_))) => {
            if !widen && values.iter().any(|v| matches!(v, Value::Int(_))) {
                return Err(EvalError::MixedTypes("integers and floats".into()));
            }
            Arc::new(Float64Array::from_iter(values.iter().map(Value::as_f64)))
        }
        Some(Kind::Number) => Arc::new(Int64Array::from_iter(values.iter().map(|v| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        }))),
        Some(Kind::Timestamp) => Arc::new(
            TimestampMicrosecondArray::from_iter(values.iter().map(|v| match v {
                Value::Timestamp(t) => Some(*t),
                _ => None,
            }))
            .with_timezone(UTC),
        ),
        Some(Kind::String) => Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        }))),
        Some(Kind::Array) => {
            let mut offsets = Vec::with_capacity(n + 1);
            offsets.push(0i32);
            let mut items = Vec::new();
            for v in values {
                if let Value::Array(a) = v {
                    items.extend(a.iter().cloned());
                }
                let len = i32::try_from(items.len())
                    .map_err(|_| EvalError::InvalidValue("list too long".into()))?;
                offsets.push(len);
            }
            let child = from_values(&items, widen)?;
            let field = Arc::new(Field::new("item", child.data_type().clone(), true));
            Arc::new(ListArray::try_new(
                field,
                OffsetBuffer::new(offsets.into()),
                child,
                Some(nulls()),
            )?)
        }
        Some(Kind::Object) => {
            let mut keys: Vec<&String> = Vec::new();
            let mut first: Option<&Map> = None;
            for v in values {
                if let Value::Object(o) = v {
                    // Without `widen`, objects must have the same keys: a union would add
                    // null-valued keys, which `keys()` or `to_string()` would show.
                    match first {
                        None => first = Some(o),
                        Some(f) if !widen && !f.keys().eq(o.keys()) => {
                            return Err(EvalError::MixedTypes("objects with different keys".into()))
                        }
                        Some(_) => {}
                    }
                    for k in o.keys() {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
            }
            if keys.is_empty() {
                return Ok(Arc::new(StructArray::new_empty_fields(n, Some(nulls()))));
            }
            let mut fields = Vec::with_capacity(keys.len());
            let mut columns = Vec::with_capacity(keys.len());
            for k in keys {
                let column: Vec<Value> = values
                    .iter()
                    .map(|v| match v {
                        Value::Object(o) => o.get(k).cloned().unwrap_or_default(),
                        _ => Value::Null,
                    })
                    .collect();
                let array = from_values(&column, widen)?;
                fields.push(Field::new(k.as_str(), array.data_type().clone(), true));
                columns.push(array);
            }
            Arc::new(StructArray::try_new(
                Fields::from(fields),
                columns,
                Some(nulls()),
            )?)
        }
    })
}
