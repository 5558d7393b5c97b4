// Flatbuffers, by hand: a bounds-checked reader and a forward writer, for Arrow's IPC metadata.
//
// Reader: every position is checked against the buffer before it is read; a bad position sets
// `ok` to false and reads as absent or zero, so a malformed message is an error, never a trap or
// a read out of bounds. Writer: objects are laid out front to back; a table is written before
// the strings, vectors and tables it refers to, whose offsets are patched in when they are
// written (flatbuffer offsets only point forward, so this order is the natural one).

import { firstInvalidUtf8 } from "./json";
import { Sink } from "./sink";

/** @internal A flatbuffer of `len` bytes at `base`. Positions are byte offsets from `base`. */
export class FbReader {
  ok: bool = true;
  /** Tables and vectors visited: a bound against maliciously deep or wide metadata. */
  budget: i32 = 1_000_000;

  constructor(public base: usize, public len: i32) {}

  /** Whether `n` bytes at `pos` lie inside. */
  @inline inside(pos: i64, n: i64): bool {
    if (pos < 0 || n < 0 || pos + n > <i64>this.len) {
      this.ok = false;
      return false;
    }
    return true;
  }

  u8(pos: i32): u8 { return this.inside(pos, 1) ? load<u8>(this.base + <usize>pos) : 0; }
  u16(pos: i32): u16 { return this.inside(pos, 2) ? load<u16>(this.base + <usize>pos) : 0; }
  i32(pos: i32): i32 { return this.inside(pos, 4) ? load<i32>(this.base + <usize>pos) : 0; }
  i64(pos: i32): i64 { return this.inside(pos, 8) ? load<i64>(this.base + <usize>pos) : 0; }

  /** The position an offset field at `pos` refers to, or -1. */
  deref(pos: i32): i32 {
    if (!this.inside(pos, 4)) return -1;
    const target = <i64>pos + <i64>load<u32>(this.base + <usize>pos);
    if (!this.inside(target, 0)) return -1;
    return <i32>target;
  }

  /** The root table's position. */
  root(): i32 {
    return this.deref(0);
  }

  /** The position of field `id` of the table at `table`, or -1 when absent (or malformed). */
  field(table: i32, id: i32): i32 {
    if (table < 0 || !this.inside(table, 4)) return -1;
    if (--this.budget < 0) {
      this.ok = false;
      return -1;
    }
    const vt = <i64>table - <i64>load<i32>(this.base + <usize>table);
    if (!this.inside(vt, 4)) return -1;
    const vtSize = <i32>load<u16>(this.base + <usize>vt);
    const tableSize = <i32>load<u16>(this.base + <usize>vt + 2);
    if (vtSize < 4 || (vtSize & 1) != 0 || !this.inside(vt, vtSize) || !this.inside(table, tableSize)) {
      this.ok = false;
      return -1;
    }
    const slot = 4 + 2 * id;
    if (slot + 2 > vtSize) return -1;
    const off = <i32>load<u16>(this.base + <usize>vt + <usize>slot);
    if (off == 0) return -1;
    if (off < 4 || off >= tableSize) {
      this.ok = false;
      return -1;
    }
    return table + off;
  }

  fieldU8(table: i32, id: i32, def: u8): u8 {
    const p = this.field(table, id);
    return p < 0 ? def : this.u8(p);
  }

  fieldI16(table: i32, id: i32, def: i16): i16 {
    const p = this.field(table, id);
    return p < 0 ? def : <i16>this.u16(p);
  }

  fieldI32(table: i32, id: i32, def: i32): i32 {
    const p = this.field(table, id);
    return p < 0 ? def : this.i32(p);
  }

  fieldI64(table: i32, id: i32, def: i64): i64 {
    const p = this.field(table, id);
    return p < 0 ? def : this.i64(p);
  }

  /** The table, vector or string that field `id` refers to, or -1 when absent. */
  fieldRef(table: i32, id: i32): i32 {
    const p = this.field(table, id);
    return p < 0 ? -1 : this.deref(p);
  }

  /** The length of the vector at `vec` whose elements are `elemSize` bytes (checked), or 0. */
  vecLen(vec: i32, elemSize: i32): i32 {
    if (vec < 0 || !this.inside(vec, 4)) return 0;
    const n = <i64>load<u32>(this.base + <usize>vec);
    if (!this.inside(<i64>vec + 4, n * <i64>elemSize)) return 0;
    this.budget -= <i32>min<i64>(n, 1_000_000);
    if (this.budget < 0) {
      this.ok = false;
      return 0;
    }
    return <i32>n;
  }

  /** The position of element `i` of the vector at `vec`. */
  @inline elem(vec: i32, i: i32, elemSize: i32): i32 {
    return vec + 4 + i * elemSize;
  }

  /** The table element `i` of a vector of tables refers to. */
  tableAt(vec: i32, i: i32): i32 {
    return this.deref(vec + 4 + i * 4);
  }

  /** The string at `pos` (bounds and UTF-8 checked), or null. */
  string(pos: i32): string | null {
    if (pos < 0) return null;
    const n = this.vecLen(pos, 1);
    if (!this.ok) return null;
    const start = this.base + <usize>pos + 4;
    if (firstInvalidUtf8(start, <usize>n) >= 0) {
      this.ok = false;
      return null;
    }
    return String.UTF8.decodeUnsafe(start, <usize>n);
  }
}

/** @internal Kinds of table fields the writer lays out. */
const enum Kind {
  U8 = 1,
  I16 = 2,
  I32 = 4,
  I64 = 8,
  /** An offset, patched when its target is written. */
  Ref = 5,
}

/** @internal One table, declared field by field, then written with `write`. */
export class FbTable {
  private ids: i32[] = [];
  private kinds: i32[] = [];
  private vals: i64[] = [];
  /** After `write`: where each field went (flatbuffer positions). */
  private at: i32[] = [];

  u8(id: i32, v: u8): FbTable { return this.add(id, Kind.U8, <i64>v); }
  bool(id: i32, v: bool): FbTable { return this.add(id, Kind.U8, v ? 1 : 0); }
  i16(id: i32, v: i16): FbTable { return this.add(id, Kind.I16, <i64>v); }
  i32(id: i32, v: i32): FbTable { return this.add(id, Kind.I32, <i64>v); }
  i64(id: i32, v: i64): FbTable { return this.add(id, Kind.I64, v); }
  /** An offset field; write its target later and `patch(id, position)`. */
  ref(id: i32): FbTable { return this.add(id, Kind.Ref, 0); }

  private add(id: i32, kind: i32, v: i64): FbTable {
    this.ids.push(id);
    this.kinds.push(kind);
    this.vals.push(v);
    return this;
  }

  /** Writes the vtable and the table at the end of `w` (flatbuffer starting at `base`); returns the table's position. */
  write(w: Sink, base: usize): i32 {
    let maxId = -1;
    let has8 = false;
    for (let i = 0; i < this.ids.length; i++) {
      maxId = max(maxId, this.ids[i]);
      if (this.kinds[i] == Kind.I64) has8 = true;
    }
    // Layout: the soffset, then fields by decreasing size. The table starts at 4 mod 8 when it
    // has 8-byte fields, so positions are aligned from that start (t0) for them to be 8-aligned.
    const t0 = has8 ? 4 : 0;
    const offs = new Array<i32>(this.ids.length);
    let end = t0 + 4;
    for (let width = 8; width >= 1; width >>= 1) {
      for (let i = 0; i < this.ids.length; i++) {
        const k = this.kinds[i];
        const wk = k == Kind.Ref ? 4 : k;
        if (wk != width) continue;
        end = (end + width - 1) & ~(width - 1);
        offs[i] = end - t0;
        end += width;
      }
    }
    const size = end - t0;
    const vtSize = 4 + 2 * (maxId + 1);
    w.align(2);
    const vt = <i32>(w.len - base);
    w.u16(<u16>vtSize);
    w.u16(<u16>size);
    for (let id = 0; id <= maxId; id++) {
      let off = 0;
      for (let i = 0; i < this.ids.length; i++) if (this.ids[i] == id) off = offs[i];
      w.u16(<u16>off);
    }
    // The table starts 4-aligned; 4 mod 8 when it has 8-byte fields, so that they are 8-aligned.
    w.align(4);
    if (has8 && ((w.len - base) & 7) != 4) w.zeros(4);
    const table = <i32>(w.len - base);
    w.zeros(<usize>size);
    w.setI32(base + <usize>table, table - vt);
    this.at = new Array<i32>(this.ids.length);
    for (let i = 0; i < this.ids.length; i++) {
      const p = base + <usize>table + <usize>offs[i];
      this.at[i] = table + offs[i];
      const v = this.vals[i];
      switch (this.kinds[i]) {
        case Kind.U8: store<u8>(w.ptr + p, <u8>v); break;
        case Kind.I16: store<i16>(w.ptr + p, <i16>v); break;
        case Kind.I32: store<i32>(w.ptr + p, <i32>v); break;
        case Kind.I64: store<i64>(w.ptr + p, v); break;
        default: break;
      }
    }
    return table;
  }

  /** Points the offset field `id` at `target` (written after this table). */
  patch(w: Sink, base: usize, id: i32, target: i32): void {
    for (let i = 0; i < this.ids.length; i++) {
      if (this.ids[i] == id) {
        patchRef(w, base, this.at[i], target);
        return;
      }
    }
  }
}

/** @internal Sets the offset at `slot` to point at `target`. */
export function patchRef(w: Sink, base: usize, slot: i32, target: i32): void {
  w.setU32(base + <usize>slot, <u32>(target - slot));
}

/** @internal Writes a string; returns its position. */
export function fbString(w: Sink, base: usize, s: string): i32 {
  w.align(4);
  const pos = <i32>(w.len - base);
  w.i32(String.UTF8.byteLength(s));
  w.utf8(s);
  w.u8(0);
  return pos;
}

/** @internal Starts a vector of `n` offsets (patched later with `patchRef(vecElem(...))`); returns its position. */
export function fbRefVector(w: Sink, base: usize, n: i32): i32 {
  w.align(4);
  const pos = <i32>(w.len - base);
  w.i32(n);
  w.zeros(<usize>n * 4);
  return pos;
}

/** @internal Starts a vector of `n` structs of two i64 each (Arrow's FieldNode and Buffer); returns its position. */
export function fbPairVector(w: Sink, base: usize, values: i64[]): i32 {
  // The elements must be 8-aligned: the length goes 4 bytes before an 8-aligned position.
  w.align(4);
  if (((w.len - base) & 7) != 4) w.zeros(4);
  const pos = <i32>(w.len - base);
  w.i32(values.length >> 1);
  for (let i = 0; i < values.length; i++) w.i64(values[i]);
  return pos;
}
