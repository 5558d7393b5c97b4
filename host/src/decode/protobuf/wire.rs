//! The protobuf wire format: varints, fixed-width values, lengths and skipping, all bounds-checked.
//!
//! Every reader takes the buffer cut at the end of the region being read (`&body[..end]`), so a
//! value can't run into the next one, and positions stay absolute offsets into the body, which is
//! what an error reports.

use std::borrow::Cow;

/// Wire type of varint-encoded values.
pub const VARINT: u8 = 0;
/// Wire type of 8-byte little-endian values.
pub const I64: u8 = 1;
/// Wire type of length-prefixed values (strings, bytes, messages, packed lists).
pub const LEN: u8 = 2;
/// Wire type opening a (proto2) group.
pub const SGROUP: u8 = 3;
/// Wire type closing a group.
pub const EGROUP: u8 = 4;
/// Wire type of 4-byte little-endian values.
pub const I32: u8 = 5;

/// The deepest nesting of messages and groups accepted, in the schema and on the wire.
pub const MAX_DEPTH: usize = 100;

/// Why a body failed, boxed so that results stay small on the hot path.
#[derive(Debug)]
pub struct Fail(Box<Failure>);

/// A failure: a reason, where, and (filled in while unwinding) the field path.
#[derive(Debug)]
pub struct Failure {
    /// Byte offset into the body.
    pub offset: usize,
    pub reason: Cow<'static, str>,
    /// `(number, name)` of the fields it is in, innermost first.
    pub path: Vec<(u32, String)>,
}

impl Fail {
    #[cold]
    pub fn new(offset: usize, reason: impl Into<Cow<'static, str>>) -> Self {
        Fail(Box::new(Failure {
            offset,
            reason: reason.into(),
            path: Vec::new(),
        }))
    }

    /// Adds the field this failure happened in (called from the inside out).
    #[cold]
    pub fn in_field(mut self, number: u32, name: &str) -> Self {
        self.0.path.push((number, name.to_string()));
        self
    }

    pub fn into_inner(self) -> Failure {
        *self.0
    }
}

/// How the expected wire type is named in errors.
pub fn wire_name(wt: u8) -> &'static str {
    match wt {
        VARINT => "a varint",
        I64 => "a 64-bit value",
        LEN => "a length-delimited value",
        SGROUP => "a group",
        I32 => "a 32-bit value",
        _ => "another wire type",
    }
}

/// The error for a field whose wire type is not the one its type is encoded with.
pub fn wrong_wire_type(tag_pos: usize, got: u8, expected: u8) -> Fail {
    Fail::new(
        tag_pos,
        format!("wire type {got} where {} was expected", wire_name(expected)),
    )
}

/// Reads a varint of at most 10 bytes whose value fits 64 bits.
#[inline]
pub fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, Fail> {
    let start = *pos;
    // Fast path: one byte.
    if let Some(&b) = buf.get(start) {
        if b < 0x80 {
            *pos = start + 1;
            return Ok(u64::from(b));
        }
    }
    let mut value = 0u64;
    let mut shift = 0u32;
    let mut i = start;
    loop {
        let Some(&b) = buf.get(i) else {
            return Err(Fail::new(start, "truncated varint"));
        };
        i += 1;
        // The tenth byte holds the 64th bit only.
        if shift == 63 && b > 1 {
            return Err(Fail::new(
                start,
                "bad varint (longer than 10 bytes or over 64 bits)",
            ));
        }
        value |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            *pos = i;
            return Ok(value);
        }
        shift += 7;
    }
}

/// Reads 4 little-endian bytes.
#[inline]
pub fn fixed32(buf: &[u8], pos: &mut usize) -> Result<u32, Fail> {
    let start = *pos;
    match buf.get(start..start.saturating_add(4)) {
        Some(b) => {
            *pos = start + 4;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        }
        None => Err(Fail::new(start, "truncated 32-bit value")),
    }
}

/// Reads 8 little-endian bytes.
#[inline]
pub fn fixed64(buf: &[u8], pos: &mut usize) -> Result<u64, Fail> {
    let start = *pos;
    match buf.get(start..start.saturating_add(8)) {
        Some(b) => {
            *pos = start + 8;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_le_bytes(a))
        }
        None => Err(Fail::new(start, "truncated 64-bit value")),
    }
}

/// Reads a length prefix and returns the `(start, end)` of the value it announces, checked
/// against what is left before anything is done with it (a length bomb fails here).
#[inline]
pub fn len_delimited(buf: &[u8], pos: &mut usize) -> Result<(usize, usize), Fail> {
    let at = *pos;
    let len = varint(buf, pos)?;
    let left = buf.len().saturating_sub(*pos);
    if len > left as u64 {
        return Err(Fail::new(
            at,
            format!("length {len} runs past the end of the message ({left} bytes left)"),
        ));
    }
    let start = *pos;
    let end = start + len as usize;
    *pos = end;
    Ok((start, end))
}

/// Reads a field key: `(field number, wire type)`.
#[inline]
pub fn tag(buf: &[u8], pos: &mut usize) -> Result<(u32, u8), Fail> {
    let at = *pos;
    let key = varint(buf, pos)?;
    let number = key >> 3;
    if number == 0 || number > 536_870_911 {
        return Err(Fail::new(at, format!("invalid field number {number}")));
    }
    Ok((number as u32, (key & 7) as u8))
}

/// Skips the value of an unknown field (of any wire type, groups included).
pub fn skip(buf: &[u8], pos: &mut usize, number: u32, wt: u8, depth: usize) -> Result<(), Fail> {
    let at = *pos;
    match wt {
        VARINT => varint(buf, pos).map(drop),
        I64 => fixed64(buf, pos).map(drop),
        LEN => len_delimited(buf, pos).map(drop),
        I32 => fixed32(buf, pos).map(drop),
        SGROUP => group(buf, pos, number, depth + 1).map(drop),
        EGROUP => Err(Fail::new(
            at,
            format!("end-group tag of field {number} without a start-group"),
        )),
        _ => Err(Fail::new(at, format!("invalid wire type {wt}"))),
    }
}

/// Reads a group's fields up to its end-group tag, which must name the same field. `pos` is just
/// past the start-group tag; returns where the group's contents end (the end-group tag's offset)
/// and leaves `pos` past the end-group tag.
pub fn group(buf: &[u8], pos: &mut usize, number: u32, depth: usize) -> Result<usize, Fail> {
    if depth > MAX_DEPTH {
        return Err(Fail::new(
            *pos,
            format!("nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    loop {
        if *pos >= buf.len() {
            return Err(Fail::new(
                *pos,
                format!("truncated group: no end-group tag for field {number}"),
            ));
        }
        let at = *pos;
        let (n, wt) = tag(buf, pos)?;
        if wt == EGROUP {
            if n == number {
                return Ok(at);
            }
            return Err(Fail::new(
                at,
                format!("end-group tag of field {n} inside the group of field {number}"),
            ));
        }
        skip(buf, pos, n, wt, depth)?;
    }
}

/// Decodes a zigzag-encoded 32-bit value.
#[inline]
pub fn zigzag32(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

/// Decodes a zigzag-encoded 64-bit value.
#[inline]
pub fn zigzag64(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
