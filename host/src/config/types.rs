//! A compact grammar for Arrow types in YAML schemas:
//! `utf8`, `int64`, `float64`, `bool`, `binary`, `date32`, `timestamp_ms`, `timestamp_us`,
//! `list<T>`, `struct<name: T, other: T>`. Every field is nullable.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

/// A type string that does not parse, with the byte position of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at position {position} of `{input}`")]
pub struct TypeError {
    /// What is wrong.
    pub message: String,
    /// Byte offset into the input.
    pub position: usize,
    /// The type string.
    pub input: String,
}

/// Parses a type string.
pub fn parse_type(input: &str) -> Result<DataType, TypeError> {
    let mut p = Parser { input, pos: 0 };
    let dt = p.data_type()?;
    p.skip_ws();
    if p.pos != input.len() {
        return Err(p.error("unexpected text after the type"));
    }
    Ok(dt)
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> TypeError {
        TypeError {
            message: message.to_string(),
            position: self.pos,
            input: self.input.to_string(),
        }
    }

    fn skip_ws(&mut self) {
        while self.input[self.pos..].starts_with(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn word(&mut self) -> &str {
        self.skip_ws();
        let rest = &self.input[self.pos..];
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn expect(&mut self, c: char) -> Result<(), TypeError> {
        self.skip_ws();
        if self.input[self.pos..].starts_with(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{c}`")))
        }
    }

    fn data_type(&mut self) -> Result<DataType, TypeError> {
        let start = self.pos;
        let word = self.word().to_ascii_lowercase();
        Ok(match word.as_str() {
            "utf8" | "string" => DataType::Utf8,
            "bool" | "boolean" => DataType::Boolean,
            "int8" => DataType::Int8,
            "int16" => DataType::Int16,
            "int32" | "int" => DataType::Int32,
            "int64" | "long" => DataType::Int64,
            "uint8" => DataType::UInt8,
            "uint16" => DataType::UInt16,
            "uint32" => DataType::UInt32,
            "uint64" => DataType::UInt64,
            "float32" | "float" => DataType::Float32,
            "float64" | "double" => DataType::Float64,
            "binary" | "bytes" => DataType::Binary,
            "date32" | "date" => DataType::Date32,
            "timestamp_ms" => DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            "timestamp_us" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            "list" => {
                self.expect('<')?;
                let item = self.data_type()?;
                self.expect('>')?;
                DataType::List(Arc::new(Field::new("item", item, true)))
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = Vec::new();
                loop {
                    let name = self.word().to_string();
                    if name.is_empty() {
                        return Err(self.error("expected a field name"));
                    }
                    self.expect(':')?;
                    fields.push(Field::new(name, self.data_type()?, true));
                    self.skip_ws();
                    if self.input[self.pos..].starts_with(',') {
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect('>')?;
                DataType::Struct(Fields::from(fields))
            }
            "" => return Err(self.error("expected a type")),
            _ => {
                self.pos = start;
                self.skip_ws();
                return Err(self.error(&format!("unknown type `{word}`")));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_and_nesting() {
        assert_eq!(parse_type("int64").unwrap(), DataType::Int64);
        let dt = parse_type("list<struct<sku: utf8, qty: int32>>").unwrap();
        let DataType::List(item) = dt else {
            panic!("{dt}")
        };
        let DataType::Struct(fields) = item.data_type() else {
            panic!()
        };
        assert_eq!(fields.len(), 2);
        assert_eq!(fields[1].data_type(), &DataType::Int32);
    }

    #[test]
    fn errors_carry_a_position() {
        let e = parse_type("struct<a: int64, b: nope>").unwrap_err();
        assert_eq!(e.position, 20);
        assert!(e.message.contains("nope"));
        assert_eq!(
            parse_type("list<int64").unwrap_err().message,
            "expected `>`"
        );
        assert!(parse_type("int64 x").is_err());
        assert!(parse_type("").is_err());
    }
}
