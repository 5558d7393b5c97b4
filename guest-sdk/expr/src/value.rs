//! The row model: one JSON-like value, as JMESPath sees a document.
//!
//! It is what the reference interpreter evaluates over, and what Arrow rows become when the
//! column-wise evaluator falls back to row-by-row work. Numbers keep whether they are integers,
//! so arithmetic and output types match the column-wise path; timestamps are a type of their own
//! (an extension: JSON has none), microseconds since the Unix epoch, UTC.

use std::fmt;

use indexmap::IndexMap;

/// An object: keys in insertion order (an Arrow struct's field order).
pub type Map = IndexMap<String, Value>;

/// A JMESPath value.
#[derive(Debug, Clone, Default)]
pub enum Value {
    /// `null`, and a missing field.
    #[default]
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number that is an integer.
    Int(i64),
    /// A number with a fraction, or beyond the `i64` range.
    Float(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object.
    Object(Map),
    /// A point in time, microseconds since the Unix epoch, UTC (weir extension).
    Timestamp(i64),
}

/// The JMESPath type of a value, as `type()` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `null`
    Null,
    /// `boolean`
    Boolean,
    /// `number`
    Number,
    /// `string`
    String,
    /// `array`
    Array,
    /// `object`
    Object,
    /// `timestamp` (weir extension)
    Timestamp,
}

impl Kind {
    /// The name `type()` returns.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Boolean => "boolean",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
            Kind::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Value {
    /// The value's JMESPath type.
    pub fn kind(&self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Boolean,
            Value::Int(_) | Value::Float(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
            Value::Timestamp(_) => Kind::Timestamp,
        }
    }

    /// JMESPath truthiness: false, null, empty strings, arrays and objects are false; every
    /// number (zero too) and every timestamp is true.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(_) | Value::Float(_) | Value::Timestamp(_) => true,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(o) => !o.is_empty(),
        }
    }

    /// True for `null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The number as `f64`, for numbers.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// A float that is a whole number within the `i64` range becomes `Int`, as a JSON reader
    /// would read it back.
    pub fn number(f: f64) -> Value {
        if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
            Value::Int(f as i64)
        } else {
            Value::Float(f)
        }
    }

    /// Reads a `serde_json` value.
    pub fn from_json(v: serde_json::Value) -> Value {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => {
                Value::Array(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => Value::Object(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// Parses JSON text, keeping the order of object keys.
    pub fn parse_json(text: &str) -> Result<Value, serde_json::Error> {
        serde_json::from_str::<Value>(text)
    }

    /// The value as `serde_json`; timestamps become ISO 8601 strings, non-finite floats `null`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_json).collect()),
            Value::Object(o) => {
                serde_json::Value::Object(o.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
            Value::Timestamp(t) => serde_json::Value::String(format_timestamp(*t)),
        }
    }
}

impl Value {
    /// Appends compact JSON, object keys in their order; timestamps as ISO 8601 strings,
    /// non-finite floats as `null`.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&crate::interp::float_text(*f)),
            Value::String(s) => write_json_string(s, out),
            Value::Timestamp(t) => write_json_string(&format_timestamp(*t), out),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_json(out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_json_string(key, out);
                    out.push(':');
                    item.write_json(out);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string literal, escaped as serde_json escapes: quotes, backslashes and control
/// characters; everything else verbatim.
pub(crate) fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// JMESPath equality: deep, numbers by value (`1 == 1.0`), objects regardless of key order.
impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Int(a), Value::Int(b)) => a == b,
            (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_)) => {
                self.as_f64() == other.as_f64()
            }
            (Value::String(a), Value::String(b)) => a == b,
            (Value::Array(a), Value::Array(b)) => a == b,
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k) == Some(v))
            }
            (Value::Timestamp(a), Value::Timestamp(b)) => a == b,
            _ => false,
        }
    }
}

/// Reads JSON straight into a value, keeping the order of object keys (`serde_json::Value`
/// would sort them).
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_string()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut obj = Map::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            obj.insert(k, v);
        }
        Ok(Value::Object(obj))
    }
}

/// Compact JSON, as `weir eval` prints results.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        self.write_json(&mut out);
        f.write_str(&out)
    }
}

/// ISO 8601 / RFC 3339 in UTC with as many fraction digits as needed: `2024-05-01T12:00:00Z`,
/// `2024-05-01T12:00:00.250Z`.
pub fn format_timestamp(micros: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(micros) {
        Some(t) => {
            let fmt = if micros.rem_euclid(1_000_000) == 0 {
                "%Y-%m-%dT%H:%M:%SZ"
            } else if micros.rem_euclid(1_000) == 0 {
                "%Y-%m-%dT%H:%M:%S%.3fZ"
            } else {
                "%Y-%m-%dT%H:%M:%S%.6fZ"
            };
            t.format(fmt).to_string()
        }
        None => micros.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equality_is_deep_and_numeric() {
        assert_eq!(Value::Int(1), Value::Float(1.0));
        assert_ne!(Value::Int(1), Value::String("1".into()));
        let a = Value::parse_json(r#"{"a": 1, "b": [1, 2]}"#).unwrap();
        let b = Value::parse_json(r#"{"b": [1, 2.0], "a": 1}"#).unwrap();
        assert_eq!(a, b);
        let Value::Object(o) = b else {
            panic!("an object")
        };
        assert_eq!(
            o.keys().collect::<Vec<_>>(),
            ["b", "a"],
            "key order is kept"
        );
    }

    #[test]
    fn truthiness_follows_the_spec() {
        for falsy in ["null", "false", "\"\"", "[]", "{}"] {
            assert!(!Value::parse_json(falsy).unwrap().is_truthy(), "{falsy}");
        }
        for truthy in ["0", "0.0", "true", "\"a\"", "[0]", "{\"a\": null}"] {
            assert!(Value::parse_json(truthy).unwrap().is_truthy(), "{truthy}");
        }
    }

    #[test]
    fn timestamps_print_as_iso_8601() {
        assert_eq!(format_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_timestamp(1_500), "1970-01-01T00:00:00.001500Z");
        assert_eq!(format_timestamp(250_000), "1970-01-01T00:00:00.250Z");
    }
}
