// The Arrow IPC stream format, as arrow-rs writes and reads it: a Schema message, one RecordBatch
// message, the end-of-stream marker. Each message: 0xFFFFFFFF, the metadata length (i32), a
// flatbuffer `Message` padded to 8 bytes, then the body (the buffers, each 8-aligned).
//
// Flatbuffer field ids below follow Arrow's format/Schema.fbs and format/Message.fbs.

import { Batch } from "./batch";
import { Column, ZEROS } from "./column";
import { FbReader, FbTable, fbPairVector, fbRefVector, fbString, patchRef } from "./flatbuf";
import { Sink } from "./sink";
import { DataType, Field, Metadata, TimeUnit, TypeId } from "./types";

// MessageHeader union.
const HEADER_SCHEMA: u8 = 1;
const HEADER_DICTIONARY: u8 = 2;
const HEADER_RECORD_BATCH: u8 = 3;
// MetadataVersion.
const V4: i16 = 3;
const V5: i16 = 4;
/** Nested types deeper than this are refused. */
const MAX_NESTING: i32 = 64;
/** `DataType.otherLayout` of the view types: two buffers plus variadic data buffers. */
const LAYOUT_VIEW: i32 = -1;

/** The outcome of reading a stream: a batch, or why it could not be read. */
export class ReadResult {
  batch: Batch | null = null;
  error: string | null = null;
}

class Frame {
  /** 0 at end of stream (marker or end of input). */
  metaLen: i32 = 0;
  meta: usize = 0;
  body: usize = 0;
  bodyLen: i32 = 0;
  headerType: u8 = 0;
  header: i32 = -1;
  fb: FbReader | null = null;
  end: i32 = 0;
}

/** @internal Reads the IPC stream at `ptr` in place: columns are views into these bytes. */
export class StreamReader {
  error: string | null = null;
  private nodes: i32 = -1;
  private nodeCount: i32 = 0;
  private nodeIdx: i32 = 0;
  private bufs: i32 = -1;
  private bufCount: i32 = 0;
  private bufIdx: i32 = 0;
  private variadic: i32 = -1;
  private variadicCount: i32 = 0;
  private variadicIdx: i32 = 0;
  private body: usize = 0;
  private bodyLen: i64 = 0;
  private fb: FbReader = new FbReader(0, 0);

  constructor(public ptr: usize, public len: i32) {}

  fail(message: string): void {
    if (this.error == null) this.error = "input is not a valid Arrow IPC stream: " + message;
  }

  /** Reads the frame at `pos`; null on error. */
  private frame(pos: i32): Frame | null {
    const f = new Frame();
    if (pos == this.len) {
      f.end = pos;
      return f;
    }
    if (<i64>pos + 4 > <i64>this.len) {
      this.fail("truncated message header at byte " + pos.toString());
      return null;
    }
    let metaLen = load<i32>(this.ptr + <usize>pos);
    let metaStart = pos + 4;
    if (metaLen == -1) {
      if (<i64>pos + 8 > <i64>this.len) {
        this.fail("truncated message header at byte " + pos.toString());
        return null;
      }
      metaLen = load<i32>(this.ptr + <usize>pos + 4);
      metaStart = pos + 8;
    }
    if (metaLen == 0) {
      f.end = metaStart;
      return f;
    }
    if (metaLen < 0 || <i64>metaStart + <i64>metaLen > <i64>this.len) {
      this.fail("message metadata of " + metaLen.toString() + " bytes at byte " + pos.toString() + " runs past the end");
      return null;
    }
    const fb = new FbReader(this.ptr + <usize>metaStart, metaLen);
    const root = fb.root();
    const version = fb.fieldI16(root, 0, 0);
    f.headerType = fb.fieldU8(root, 1, 0);
    f.header = fb.fieldRef(root, 2);
    const bodyLen = fb.fieldI64(root, 3, 0);
    if (!fb.ok || root < 0) {
      this.fail("malformed message metadata at byte " + pos.toString());
      return null;
    }
    if (version != V4 && version != V5) {
      this.fail("metadata version " + (version + 1).toString() + " (expected V4 or V5)");
      return null;
    }
    const bodyStart = <i64>metaStart + <i64>metaLen;
    if (bodyLen < 0 || bodyStart + bodyLen > <i64>this.len) {
      this.fail("message body of " + bodyLen.toString() + " bytes runs past the end");
      return null;
    }
    f.metaLen = metaLen;
    f.meta = this.ptr + <usize>metaStart;
    f.body = this.ptr + <usize>bodyStart;
    f.bodyLen = <i32>bodyLen;
    f.fb = fb;
    f.end = <i32>(bodyStart + bodyLen);
    return f;
  }

  /** Reads the stream's single batch; null (and `error`) when it can't. */
  read(): Batch | null {
    const first = this.frame(0);
    if (first == null) return null;
    if (first.metaLen == 0) {
      this.fail("empty stream");
      return null;
    }
    if (first.headerType != HEADER_SCHEMA) {
      this.fail("the first message is not a schema");
      return null;
    }
    const sfb = first.fb!;
    const schema = first.header;
    if (sfb.fieldI16(schema, 0, 0) != 0) {
      this.fail("big-endian data");
      return null;
    }
    const fieldsVec = sfb.fieldRef(schema, 1);
    const n = sfb.vecLen(fieldsVec, 4);
    const fields = new Array<Field>();
    for (let i = 0; i < n && this.error == null; i++) {
      const f = this.field(sfb, sfb.tableAt(fieldsVec, i), 0);
      if (f != null) fields.push(f);
    }
    const metadata = readMetadata(sfb, sfb.fieldRef(schema, 2));
    if (!sfb.ok) this.fail("malformed schema");
    if (this.error != null) return null;

    const second = this.frame(first.end);
    if (second == null) return null;
    if (second.metaLen == 0) {
      this.fail("the stream holds no record batch");
      return null;
    }
    if (second.headerType == HEADER_DICTIONARY) {
      this.fail("dictionary batches are not supported");
      return null;
    }
    if (second.headerType != HEADER_RECORD_BATCH) {
      this.fail("expected a record batch after the schema");
      return null;
    }
    const batch = this.recordBatch(second, fields, metadata);
    if (batch == null) return null;
    const third = this.frame(second.end);
    if (third == null) return null;
    if (third.metaLen != 0) {
      this.fail("expected one record batch in the stream, found more");
      return null;
    }
    return batch;
  }

  private field(fb: FbReader, t: i32, depth: i32): Field | null {
    if (depth > MAX_NESTING) {
      this.fail("types nested deeper than " + MAX_NESTING.toString());
      return null;
    }
    if (t < 0) {
      this.fail("malformed field");
      return null;
    }
    const nameStr = fb.string(fb.fieldRef(t, 0));
    const name = nameStr != null ? nameStr : "";
    const nullable = fb.fieldU8(t, 1, 0) != 0;
    const typeType = fb.fieldU8(t, 2, 0);
    const tt = fb.fieldRef(t, 3);
    if (fb.field(t, 4) >= 0) {
      this.fail("column \"" + name + "\" is dictionary-encoded, which is not supported");
      return null;
    }
    const childVec = fb.fieldRef(t, 5);
    const nc = fb.vecLen(childVec, 4);
    const children = new Array<Field>();
    for (let i = 0; i < nc && this.error == null; i++) {
      const c = this.field(fb, fb.tableAt(childVec, i), depth + 1);
      if (c != null) children.push(c);
    }
    if (this.error != null) return null;
    const type = this.dataType(fb, typeType, tt, name);
    if (type == null) return null;
    type.children = children;
    if ((type.id == TypeId.List || type.id == TypeId.LargeList) && children.length != 1) {
      this.fail("list column \"" + name + "\" needs one child field");
      return null;
    }
    const metadata = readMetadata(fb, fb.fieldRef(t, 6));
    if (!fb.ok) {
      this.fail("malformed field \"" + name + "\"");
      return null;
    }
    return new Field(name, type, nullable, metadata);
  }

  private dataType(fb: FbReader, typeType: u8, tt: i32, name: string): DataType | null {
    switch (typeType) {
      case 1: return DataType.null();
      case 2: {
        const bits = fb.fieldI32(tt, 0, 0);
        const signed = fb.fieldU8(tt, 1, 0) != 0;
        if (bits == 8) return signed ? DataType.int8() : DataType.uint8();
        if (bits == 16) return signed ? DataType.int16() : DataType.uint16();
        if (bits == 32) return signed ? DataType.int32() : DataType.uint32();
        if (bits == 64) return signed ? DataType.int64() : DataType.uint64();
        this.fail("column \"" + name + "\": integers of " + bits.toString() + " bits");
        return null;
      }
      case 3: {
        const precision = fb.fieldI16(tt, 0, 0);
        if (precision == 1) return DataType.float32();
        if (precision == 2) return DataType.float64();
        return other("float16", 2);
      }
      case 4: return DataType.binary();
      case 5: return DataType.utf8();
      case 6: return DataType.bool();
      case 7: return other("decimal", 2);
      case 8: return fb.fieldI16(tt, 0, 1) == 0 ? DataType.date32() : DataType.date64();
      case 9: return other("time", 2);
      case 10: {
        const unit = fb.fieldI16(tt, 0, 0);
        if (unit < 0 || unit > 3) {
          this.fail("column \"" + name + "\": unknown time unit");
          return null;
        }
        return DataType.timestamp(<TimeUnit>unit, fb.string(fb.fieldRef(tt, 1)));
      }
      case 11: return other("interval", 2);
      case 12: return new DataType(TypeId.List);
      case 13: return new DataType(TypeId.Struct);
      case 14: return other(fb.fieldI16(tt, 0, 0) == 0 ? "sparse_union" : "dense_union", fb.fieldI16(tt, 0, 0) == 0 ? 1 : 2);
      case 15: return other("fixed_size_binary", 2);
      case 16: return other("fixed_size_list", 1);
      case 17: return other("map", 2);
      case 18: return other("duration", 2);
      case 19: return DataType.largeBinary();
      case 20: return DataType.largeUtf8();
      case 21: return new DataType(TypeId.LargeList);
      case 22: return other("run_end_encoded", 0);
      case 23: return other("binary_view", LAYOUT_VIEW);
      case 24: return other("utf8_view", LAYOUT_VIEW);
      case 25: return other("list_view", 3);
      case 26: return other("large_list_view", 3);
      default:
        this.fail("column \"" + name + "\" has an unknown type (" + typeType.toString() + ")");
        return null;
    }
  }

  private recordBatch(f: Frame, fields: Field[], metadata: Metadata | null): Batch | null {
    const fb = f.fb!;
    this.fb = fb;
    const rb = f.header;
    const length = fb.fieldI64(rb, 0, 0);
    this.nodes = fb.fieldRef(rb, 1);
    this.nodeCount = fb.vecLen(this.nodes, 16);
    this.bufs = fb.fieldRef(rb, 2);
    this.bufCount = fb.vecLen(this.bufs, 16);
    if (fb.field(rb, 3) >= 0) {
      this.fail("compressed record batches are not supported");
      return null;
    }
    this.variadic = fb.fieldRef(rb, 4);
    this.variadicCount = fb.vecLen(this.variadic, 8);
    if (!fb.ok || rb < 0) {
      this.fail("malformed record batch");
      return null;
    }
    if (length < 0 || length > 0x7fff_ffff) {
      this.fail("record batch length " + length.toString());
      return null;
    }
    this.body = f.body;
    this.bodyLen = f.bodyLen;
    const columns = new Array<Column>();
    for (let i = 0; i < fields.length; i++) {
      const c = this.column(fields[i], 0);
      if (c == null) return null;
      if (<i64>c.length != length) {
        this.fail("column \"" + fields[i].name + "\" has " + c.length.toString() + " rows, the batch " + length.toString());
        return null;
      }
      c.name = fields[i].name;
      columns.push(c);
    }
    return new Batch(fields, columns, <i32>length, metadata);
  }

  /** The next field node: (length, null count) checked. */
  private node(name: string): Column | null {
    if (this.nodeIdx >= this.nodeCount) {
      this.fail("fewer field nodes than the schema needs");
      return null;
    }
    const p = this.fb.elem(this.nodes, this.nodeIdx++, 16);
    const length = this.fb.i64(p);
    const nulls = this.fb.i64(p + 8);
    if (length < 0 || length > 0x7fff_ffff || nulls < 0 || nulls > length) {
      this.fail("column \"" + name + "\": bad field node (length " + length.toString() + ", nulls " + nulls.toString() + ")");
      return null;
    }
    const c = new Column(DataType.null(), <i32>length);
    c.nullCount = <i32>nulls;
    return c;
  }

  /**
   * The next buffer: its address, after checking that `need` bytes of it lie in the body. With
   * `empty` (the offsets of a column of 0 rows), a buffer of 0 bytes stands for zeros.
   */
  private buffer(name: string, need: i64, empty: bool = false): usize {
    if (this.bufIdx >= this.bufCount) {
      this.fail("fewer buffers than the schema needs");
      return 0;
    }
    const p = this.fb.elem(this.bufs, this.bufIdx++, 16);
    const offset = this.fb.i64(p);
    const length = this.fb.i64(p + 8);
    if (offset < 0 || length < 0 || offset + length > this.bodyLen) {
      this.fail("column \"" + name + "\": a buffer lies outside the message body");
      return 0;
    }
    if (length < need) {
      if (empty && length == 0 && need <= 16) return ZEROS;
      this.fail("column \"" + name + "\": a buffer of " + length.toString() + " bytes, " + need.toString() + " needed");
      return 0;
    }
    return this.body + <usize>offset;
  }

  /** The validity buffer: its address when the column has nulls, else 0 (the buffer is skipped). */
  private validity(c: Column, name: string): bool {
    if (c.nullCount > 0) {
      c.validity = this.buffer(name, (<i64>c.length + 7) >> 3);
    } else {
      this.buffer(name, 0);
    }
    return this.error == null;
  }

  /** Checks `length + 1` offsets: non-negative, non-decreasing, the last at most `limit`. */
  private offsets(c: Column, name: string, limit: i64): bool {
    const large = c.type.hasLargeOffsets();
    let prev: i64 = large ? load<i64>(c.values) : <i64>load<i32>(c.values);
    if (prev < 0) {
      this.fail("column \"" + name + "\": negative offset");
      return false;
    }
    for (let i = 1; i <= c.length; i++) {
      const o: i64 = large ? load<i64>(c.values + (<usize>i << 3)) : <i64>load<i32>(c.values + (<usize>i << 2));
      if (o < prev) {
        this.fail("column \"" + name + "\": offsets decrease");
        return false;
      }
      prev = o;
    }
    if (prev > limit) {
      this.fail("column \"" + name + "\": offsets run past the data");
      return false;
    }
    return true;
  }

  private column(field: Field, depth: i32): Column | null {
    const name = field.name;
    const c = this.node(name);
    if (c == null) return null;
    const type = field.type;
    c.type = type;
    c.name = name;
    const n = <i64>c.length;
    switch (type.id) {
      case TypeId.Null:
        c.nullCount = c.length;
        return c;
      case TypeId.Bool:
        if (!this.validity(c, name)) return null;
        c.values = this.buffer(name, (n + 7) >> 3);
        break;
      case TypeId.Utf8: case TypeId.LargeUtf8: case TypeId.Binary: case TypeId.LargeBinary: {
        if (!this.validity(c, name)) return null;
        const ow: i64 = type.hasLargeOffsets() ? 8 : 4;
        c.values = this.buffer(name, (n + 1) * ow, n == 0);
        if (this.error != null) return null;
        // The data buffer's length bounds the offsets.
        const before = this.bufIdx;
        c.data = this.buffer(name, 0);
        if (this.error != null) return null;
        const dataLen = this.fb.i64(this.fb.elem(this.bufs, before, 16) + 8);
        if (!this.offsets(c, name, dataLen)) return null;
        break;
      }
      case TypeId.Struct: {
        if (!this.validity(c, name)) return null;
        for (let k = 0; k < type.children.length; k++) {
          const child = this.column(type.children[k], depth + 1);
          if (child == null) return null;
          if (child.length < c.length) {
            this.fail("column \"" + name + "\": child \"" + child.name + "\" is shorter than the struct");
            return null;
          }
          c.children.push(child);
        }
        break;
      }
      case TypeId.List: case TypeId.LargeList: {
        if (!this.validity(c, name)) return null;
        const ow: i64 = type.id == TypeId.LargeList ? 8 : 4;
        c.values = this.buffer(name, (n + 1) * ow, n == 0);
        if (this.error != null) return null;
        const items = this.column(type.children[0], depth + 1);
        if (items == null) return null;
        c.children.push(items);
        if (!this.offsets(c, name, <i64>items.length)) return null;
        break;
      }
      case TypeId.Other: {
        // Opaque: its buffers are skipped (kept in `raw`), its children read as opaque too.
        let count = type.otherLayout;
        if (count == LAYOUT_VIEW) {
          if (this.variadicIdx >= this.variadicCount) {
            this.fail("column \"" + name + "\": missing variadic buffer count");
            return null;
          }
          const extra = this.fb.i64(this.fb.elem(this.variadic, this.variadicIdx++, 8));
          if (extra < 0 || extra > 1_000_000) {
            this.fail("column \"" + name + "\": bad variadic buffer count");
            return null;
          }
          count = 2 + <i32>extra;
        }
        // Every layout but unions and run-end encoding starts with the validity bitmap.
        const validityFirst = count != 0 && !type.otherName.endsWith("union");
        for (let k = 0; k < count; k++) {
          const bitmap = k == 0 && validityFirst && c.nullCount > 0;
          const p = this.buffer(name, bitmap ? (n + 7) >> 3 : 0);
          if (this.error != null) return null;
          if (bitmap) c.validity = p;
          c.raw.push(p);
        }
        for (let k = 0; k < type.children.length; k++) {
          const child = this.column(type.children[k], depth + 1);
          if (child == null) return null;
          c.children.push(child);
        }
        break;
      }
      default: {
        const w = type.byteWidth();
        if (!this.validity(c, name)) return null;
        c.values = this.buffer(name, n * <i64>w);
      }
    }
    return this.error == null ? c : null;
  }
}

function other(name: string, layout: i32): DataType {
  const t = new DataType(TypeId.Other);
  t.otherName = name;
  t.otherLayout = layout;
  return t;
}

function readMetadata(fb: FbReader, vec: i32): Metadata | null {
  if (vec < 0) return null;
  const n = fb.vecLen(vec, 4);
  const m = new Metadata();
  for (let i = 0; i < n && fb.ok; i++) {
    const kv = fb.tableAt(vec, i);
    const k = fb.string(fb.fieldRef(kv, 0));
    const v = fb.string(fb.fieldRef(kv, 1));
    m.set(k != null ? k : "", v != null ? v : "");
  }
  return m;
}

/** @internal Reads the stream at `ptr` (`len` bytes). */
export function readStream(ptr: usize, len: i32): ReadResult {
  const r = new StreamReader(ptr, len);
  const out = new ReadResult();
  const batch = r.read();
  if (r.error != null || batch == null) {
    out.error = r.error != null ? r.error : "input is not a valid Arrow IPC stream";
  } else {
    out.batch = batch;
  }
  return out;
}

// ---- writing ----

/** Why a batch can't be written, or null when it can. */
export function checkWritable(fields: Field[], columns: Column[], numRows: i32): string | null {
  if (fields.length != columns.length) return "the batch has " + fields.length.toString() + " fields and " + columns.length.toString() + " columns";
  for (let i = 0; i < columns.length; i++) {
    const c = columns[i];
    const f = fields[i];
    if (!c.type.isWritable()) return "column \"" + f.name + "\": the AssemblyScript SDK cannot write " + c.type.toString();
    if (c.length != numRows) return "column \"" + f.name + "\" has " + c.length.toString() + " rows, the batch " + numRows.toString();
    const e = checkColumn(c, f.name);
    if (e != null) return e;
  }
  return null;
}

function checkColumn(c: Column, name: string): string | null {
  const need = c.type.id == TypeId.Struct ? c.type.children.length : c.type.isList() ? 1 : 0;
  if (c.children.length != need) return "column \"" + name + "\": " + need.toString() + " children expected, " + c.children.length.toString() + " found";
  for (let k = 0; k < c.children.length; k++) {
    const child = c.children[k];
    if (c.type.id == TypeId.Struct && child.length < c.length) return "column \"" + name + "\": a struct field is shorter than the struct";
    const e = checkColumn(child, name);
    if (e != null) return e;
  }
  return null;
}

/** @internal Writes fields + columns as an IPC stream at the end of `w` (which must be 8-aligned). */
export function writeStream(w: Sink, fields: Field[], columns: Column[], numRows: i32, metadata: Metadata | null): void {
  writeSchema(w, fields, metadata);
  writeRecordBatch(w, columns, numRows);
  w.i32(-1);
  w.i32(0);
}

/** Starts a message; returns its flatbuffer base. */
function beginMessage(w: Sink): usize {
  w.i32(-1);
  w.i32(0); // metadata length, set by endMessage
  const base = w.len;
  w.zeros(4); // root offset
  return base;
}

function endMessage(w: Sink, base: usize): void {
  w.align(8);
  w.setI32(base - 4, <i32>(w.len - base));
}

function writeSchema(w: Sink, fields: Field[], metadata: Metadata | null): void {
  const base = beginMessage(w);
  const msg = new FbTable().i16(0, V5).u8(1, HEADER_SCHEMA).ref(2);
  patchRef(w, base, 0, msg.write(w, base));
  const schema = new FbTable().ref(1);
  const hasMeta = metadata != null && metadata.size > 0;
  if (hasMeta) schema.ref(2);
  const schemaPos = schema.write(w, base);
  msg.patch(w, base, 2, schemaPos);
  schema.patch(w, base, 1, writeFields(w, base, fields));
  if (hasMeta) schema.patch(w, base, 2, writeMetadata(w, base, metadata!));
  endMessage(w, base);
}

function writeFields(w: Sink, base: usize, fields: Field[]): i32 {
  const vec = fbRefVector(w, base, fields.length);
  for (let i = 0; i < fields.length; i++) {
    patchRef(w, base, vec + 4 + 4 * i, writeField(w, base, fields[i]));
  }
  return vec;
}

function writeMetadata(w: Sink, base: usize, m: Metadata): i32 {
  const vec = fbRefVector(w, base, m.keys.length);
  for (let i = 0; i < m.keys.length; i++) {
    const kv = new FbTable().ref(0).ref(1);
    const pos = kv.write(w, base);
    patchRef(w, base, vec + 4 + 4 * i, pos);
    kv.patch(w, base, 0, fbString(w, base, m.keys[i]));
    kv.patch(w, base, 1, fbString(w, base, m.values[i]));
  }
  return vec;
}

function typeTag(t: DataType): u8 {
  switch (t.id) {
    case TypeId.Null: return 1;
    case TypeId.Int8: case TypeId.Int16: case TypeId.Int32: case TypeId.Int64:
    case TypeId.UInt8: case TypeId.UInt16: case TypeId.UInt32: case TypeId.UInt64: return 2;
    case TypeId.Float32: case TypeId.Float64: return 3;
    case TypeId.Binary: return 4;
    case TypeId.Utf8: return 5;
    case TypeId.Bool: return 6;
    case TypeId.Date32: case TypeId.Date64: return 8;
    case TypeId.Timestamp: return 10;
    case TypeId.List: return 12;
    case TypeId.Struct: return 13;
    case TypeId.LargeBinary: return 19;
    case TypeId.LargeUtf8: return 20;
    case TypeId.LargeList: return 21;
    default: return 0;
  }
}

function writeField(w: Sink, base: usize, f: Field): i32 {
  const t = f.type;
  const md = f.metadata;
  const hasMeta = md != null && md.size > 0;
  const ft = new FbTable().ref(0).bool(1, f.nullable).u8(2, typeTag(t)).ref(3).ref(5);
  if (hasMeta) ft.ref(6);
  const pos = ft.write(w, base);
  ft.patch(w, base, 0, fbString(w, base, f.name));
  // The type's table.
  const tt = new FbTable();
  if (t.isInteger()) {
    tt.i32(0, t.byteWidth() * 8).bool(1, t.isSignedInteger());
  } else if (t.isFloat()) {
    tt.i16(0, t.id == TypeId.Float32 ? 1 : 2);
  } else if (t.id == TypeId.Date32 || t.id == TypeId.Date64) {
    tt.i16(0, t.id == TypeId.Date32 ? 0 : 1);
  } else if (t.id == TypeId.Timestamp) {
    tt.i16(0, <i16>t.unit);
    if (t.timezone != null) tt.ref(1);
  }
  ft.patch(w, base, 3, tt.write(w, base));
  if (t.id == TypeId.Timestamp && t.timezone != null) tt.patch(w, base, 1, fbString(w, base, t.timezone!));
  ft.patch(w, base, 5, writeFields(w, base, t.children));
  if (hasMeta) ft.patch(w, base, 6, writeMetadata(w, base, md!));
  return pos;
}

/** The nodes and buffers of a batch's columns, in IPC order. */
class Layout {
  nodes: i64[] = [];
  ptrs: usize[] = [];
  lens: i64[] = [];

  buffer(ptr: usize, len: i64): void {
    this.ptrs.push(ptr);
    this.lens.push(len);
  }

  column(c: Column): void {
    const n = <i64>c.length;
    const t = c.type;
    if (t.id == TypeId.Null) {
      this.nodes.push(n);
      this.nodes.push(n);
      return;
    }
    this.nodes.push(n);
    this.nodes.push(<i64>c.nullCount);
    if (c.nullCount > 0 && c.validity != 0) this.buffer(c.validity, (n + 7) >> 3);
    else this.buffer(0, 0);
    switch (t.id) {
      case TypeId.Bool:
        this.buffer(c.values, (n + 7) >> 3);
        break;
      case TypeId.Utf8: case TypeId.LargeUtf8: case TypeId.Binary: case TypeId.LargeBinary: {
        const ow: i64 = t.hasLargeOffsets() ? 8 : 4;
        this.buffer(c.values, (n + 1) * ow);
        this.buffer(c.data, c.offsetAt(c.length));
        break;
      }
      case TypeId.Struct:
        for (let k = 0; k < c.children.length; k++) this.column(c.children[k]);
        break;
      case TypeId.List: case TypeId.LargeList: {
        const ow: i64 = t.id == TypeId.LargeList ? 8 : 4;
        this.buffer(c.values, (n + 1) * ow);
        this.column(c.children[0]);
        break;
      }
      default:
        this.buffer(c.values, n * <i64>t.byteWidth());
    }
  }
}

function writeRecordBatch(w: Sink, columns: Column[], numRows: i32): void {
  const layout = new Layout();
  for (let i = 0; i < columns.length; i++) layout.column(columns[i]);
  const pairs = new Array<i64>();
  let offset: i64 = 0;
  for (let i = 0; i < layout.lens.length; i++) {
    const len = layout.lens[i];
    pairs.push(offset);
    pairs.push(len);
    offset += (len + 7) & ~7;
  }
  const base = beginMessage(w);
  const msg = new FbTable().i16(0, V5).u8(1, HEADER_RECORD_BATCH).ref(2).i64(3, offset);
  patchRef(w, base, 0, msg.write(w, base));
  const rb = new FbTable().i64(0, <i64>numRows).ref(1).ref(2);
  msg.patch(w, base, 2, rb.write(w, base));
  rb.patch(w, base, 1, fbPairVector(w, base, layout.nodes));
  rb.patch(w, base, 2, fbPairVector(w, base, pairs));
  endMessage(w, base);
  // The body.
  w.reserve(<usize>offset);
  for (let i = 0; i < layout.lens.length; i++) {
    const len = <usize>layout.lens[i];
    if (len) w.bytes(layout.ptrs[i], len);
    w.align(8);
  }
}
