// A test module of the SDK (built to build/probe.wasm): the JSON parser and the IPC reader,
// exposed for node's tests. Both take a buffer from weir_alloc (and free it) and answer a packed
// UTF-8 range: `ok:` + a canonical dump, or `err:` + the error message.
//
// - probe_json: the parsed value, re-serialized (keys in order).
// - probe_read: the batch read from an IPC stream, dumped as JSON: fields (name, type, nullable,
//   metadata), schema metadata, and each column's values (integers and temporals as decimal
//   strings, binary as hex, structs as objects, lists as arrays, opaque values as "?").
import {
  Batch, Column, Field, Metadata, Output, Transform, TypeId, jsonNumber, jsonString, parseJsonBytes, register,
} from "../assembly";
import { readStream } from "../assembly/ipc";
import { Sink } from "../assembly/sink";

const out = new Sink();

function answer(s: string): i64 {
  out.reset();
  out.utf8(s);
  return <i64>((<u64>out.ptr << 32) | <u64>out.len);
}

export function probe_json(ptr: i32, len: i32): i64 {
  const r = parseJsonBytes(<usize>ptr, <usize>len);
  heap.free(<usize>ptr);
  const e = r.error;
  if (e != null) return answer("err:" + e);
  return answer("ok:" + r.value!.toString());
}

export function probe_read(ptr: i32, len: i32): i64 {
  const r = readStream(<usize>ptr, len);
  let s: string;
  const e = r.error;
  if (e != null) s = "err:" + e;
  else if (r.batch!.numRows > 100_000) s = "ok:{\"rows\":" + r.batch!.numRows.toString() + "}";
  else s = "ok:" + dump(r.batch!);
  heap.free(<usize>ptr);
  return answer(s);
}

function metadata(m: Metadata | null): string {
  if (m == null) return "{}";
  const parts = new Array<string>();
  for (let i = 0; i < m.keys.length; i++) parts.push(jsonString(m.keys[i]) + ":" + jsonString(m.values[i]));
  return "{" + parts.join(",") + "}";
}

function field(f: Field): string {
  return "{\"name\":" + jsonString(f.name) + ",\"type\":" + jsonString(f.type.toString()) +
    ",\"nullable\":" + (f.nullable ? "true" : "false") + ",\"metadata\":" + metadata(f.metadata) + "}";
}

const HEX = "0123456789abcdef";

function value(c: Column, i: i32): string {
  if (c.isNull(i)) return "null";
  const t = c.type;
  switch (t.id) {
    case TypeId.Bool: return c.getBool(i) ? "true" : "false";
    case TypeId.UInt64: return "\"" + c.getU64(i).toString() + "\"";
    case TypeId.Float32: case TypeId.Float64: {
      const v = c.getF64(i);
      if (isNaN(v) || !isFinite(v)) return "\"" + v.toString() + "\"";
      return jsonNumber(v);
    }
    case TypeId.Utf8: case TypeId.LargeUtf8: return jsonString(c.getString(i));
    case TypeId.Binary: case TypeId.LargeBinary: {
      const b = c.getBytes(i);
      let s = "";
      for (let k = 0; k < b.length; k++) s += HEX.charAt(b[k] >> 4) + HEX.charAt(b[k] & 15);
      return "\"" + s + "\"";
    }
    case TypeId.Struct: {
      const parts = new Array<string>();
      const fields = t.children;
      for (let k = 0; k < fields.length; k++) parts.push(jsonString(fields[k].name) + ":" + value(c.child(k), i));
      return "{" + parts.join(",") + "}";
    }
    case TypeId.List: case TypeId.LargeList: {
      const parts = new Array<string>();
      const start = c.listStart(i);
      const n = c.listLength(i);
      for (let k = 0; k < n; k++) parts.push(value(c.items, start + k));
      return "[" + parts.join(",") + "]";
    }
    case TypeId.Other: return "\"?\"";
    default: return "\"" + c.getI64(i).toString() + "\"";
  }
}

function dump(b: Batch): string {
  const fields = new Array<string>();
  const columns = new Array<string>();
  for (let k = 0; k < b.numColumns; k++) {
    fields.push(field(b.fields[k]));
    const c = b.columnAt(k);
    const values = new Array<string>();
    for (let i = 0; i < b.numRows; i++) values.push(value(c, i));
    columns.push("[" + values.join(",") + "]");
  }
  return "{\"fields\":[" + fields.join(",") + "],\"metadata\":" + metadata(b.metadata) + ",\"rows\":" +
    b.numRows.toString() + ",\"columns\":[" + columns.join(",") + "]}";
}

class Nothing extends Transform {
  transform(batch: Batch): Output {
    return Output.merge();
  }
}
register((): Transform => new Nothing());
export * from "../assembly/exports";
