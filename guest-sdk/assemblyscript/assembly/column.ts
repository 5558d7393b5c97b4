// One Arrow array: a typed view over raw buffers (input columns) or builder-owned memory.

import { panic } from "./host";
import { DataType, TypeId } from "./types";

/** 16 zero bytes: the offsets (and bitmap) of empty columns that arrived without buffers. */
export const ZEROS: usize = memory.data(16, 16);

/**
 * A column: `length` values of `type`, as Arrow lays them out in memory.
 *
 * Input columns are zero-copy views into the buffer the host passed: they (and every pointer
 * read from them) are valid only until `transform` returns. Keep values, not columns, across
 * calls. Columns from builders own their memory.
 *
 * Checked accessors (`getF64(i)`, `getString(i)`...) check the row and the type; a wrong one is a
 * programming error: the SDK logs it and traps (the host fails the batch). For tight loops, read
 * the buffers directly: `values` (fixed-width values, `Bool` bits, or the offsets of variable-size
 * types and lists), `validity` (a bitmap, bit `i` set when row `i` is valid; 0 when no row is
 * null) and `data` (the bytes of `Utf8`/`Binary`):
 *
 * ```ts
 * const v = col.values, valid = col.validity;
 * for (let i = 0; i < col.length; i++) {
 *   if (valid != 0 && !bitAt(valid, i)) continue;
 *   sum += load<f64>(v + (<usize>i << 3));
 * }
 * ```
 */
export class Column {
  /** Null count (every row, for a `Null` column). */
  nullCount: i32 = 0;
  /** Validity bitmap (LSB first), or 0 when no row is null. */
  validity: usize = 0;
  /** Fixed-width values; `Bool` bits; offsets (i32, or i64 for the large types) of variable-size types and lists. */
  values: usize = 0;
  /** The bytes of `Utf8`/`Binary` values (offsets index into it). */
  data: usize = 0;
  /** The child columns of `Struct` (one per field) and `List` (one: the items). */
  children: Column[] = [];
  /** The column's name where known, for error messages. */
  name: string = "";
  /** @internal Keeps builder memory alive as long as the column. */
  owner: Object | null = null;
  /** @internal For opaque (`Other`) columns: their raw buffers, as (pointer, length) pairs. */
  raw: usize[] = [];

  constructor(public type: DataType, public length: i32) {}

  /** A column of `length` nulls (type `Null`). */
  static nulls(length: i32): Column {
    const c = new Column(DataType.null(), length);
    c.nullCount = length;
    return c;
  }

  /**
   * A `Bool` column of `length` rows over `bits` (row `i` is bit `i`, LSB first), with no nulls:
   * the fast way to answer a filter (`Output.keep(Column.bools(bits, n))`). Keeps `bits` alive.
   */
  static bools(bits: ArrayBuffer, length: i32): Column {
    if (length < 0 || ((length + 7) >> 3) > bits.byteLength) {
      panic("Column.bools: " + bits.byteLength.toString() + " bytes hold fewer than " + length.toString() + " bits");
    }
    const c = new Column(DataType.bool(), length);
    c.values = changetype<usize>(bits);
    c.owner = bits;
    return c;
  }

  /** Whether row `i` is null. */
  @inline isNull(i: i32): bool {
    this.check(i);
    return this.nullAt(i);
  }

  /** Whether row `i` holds a value. */
  @inline isValid(i: i32): bool {
    return !this.isNull(i);
  }

  /** @internal `isNull` without the row check. */
  @inline nullAt(i: i32): bool {
    const v = this.validity;
    if (v != 0) return !bitAt(v, i);
    return this.type.id == TypeId.Null;
  }

  @inline private check(i: i32): void {
    if (<u32>i >= <u32>this.length) {
      panic(this.label() + ": row " + i.toString() + " out of range (" + this.length.toString() + " rows)");
    }
  }

  private label(): string {
    return this.name.length ? "column \"" + this.name + "\"" : "column";
  }

  private wrongType(what: string): void {
    panic(this.label() + ": " + what + " on a " + this.type.toString() + " column");
  }

  /**
   * Row `i` of an integer, date or timestamp column as an i64 (uint64 values above 2^63 wrap;
   * use `getU64`). 0 for a null row.
   */
  getI64(i: i32): i64 {
    this.check(i);
    const p = this.values;
    const at = <usize>i;
    switch (this.type.id) {
      case TypeId.Int8: return <i64>load<i8>(p + at);
      case TypeId.Int16: return <i64>load<i16>(p + (at << 1));
      case TypeId.Int32: case TypeId.Date32: return <i64>load<i32>(p + (at << 2));
      case TypeId.Int64: case TypeId.UInt64: case TypeId.Date64: case TypeId.Timestamp:
        return load<i64>(p + (at << 3));
      case TypeId.UInt8: return <i64>load<u8>(p + at);
      case TypeId.UInt16: return <i64>load<u16>(p + (at << 1));
      case TypeId.UInt32: return <i64>load<u32>(p + (at << 2));
      default: this.wrongType("getI64");
    }
    return 0;
  }

  /** Row `i` of an unsigned integer column (or a non-negative signed one) as a u64. */
  getU64(i: i32): u64 {
    return <u64>this.getI64(i);
  }

  /** Row `i` of any integer or float column as an f64. 0 for a null row. */
  getF64(i: i32): f64 {
    this.check(i);
    const p = this.values;
    const at = <usize>i;
    switch (this.type.id) {
      case TypeId.Float64: return load<f64>(p + (at << 3));
      case TypeId.Float32: return <f64>load<f32>(p + (at << 2));
      case TypeId.Int8: return <f64>load<i8>(p + at);
      case TypeId.Int16: return <f64>load<i16>(p + (at << 1));
      case TypeId.Int32: return <f64>load<i32>(p + (at << 2));
      case TypeId.Int64: return <f64>load<i64>(p + (at << 3));
      case TypeId.UInt8: return <f64>load<u8>(p + at);
      case TypeId.UInt16: return <f64>load<u16>(p + (at << 1));
      case TypeId.UInt32: return <f64>load<u32>(p + (at << 2));
      case TypeId.UInt64: return <f64>load<u64>(p + (at << 3));
      default: this.wrongType("getF64");
    }
    return 0;
  }

  /** Row `i` of a `Bool` column. false for a null row. */
  getBool(i: i32): bool {
    this.check(i);
    if (this.type.id != TypeId.Bool) this.wrongType("getBool");
    return bitAt(this.values, i);
  }

  /** Where the bytes of row `i` of a Utf8/Binary column start (zero-copy; valid during the call). */
  bytesStart(i: i32): usize {
    this.check(i);
    if (!this.type.isVariableSize()) this.wrongType("bytesStart");
    return this.data + <usize>this.offsetAt(i);
  }

  /** How many bytes row `i` of a Utf8/Binary column holds (0 for a null row). */
  bytesLength(i: i32): i32 {
    this.check(i);
    if (!this.type.isVariableSize()) this.wrongType("bytesLength");
    return <i32>(this.offsetAt(i + 1) - this.offsetAt(i));
  }

  /** Row `i` of a Utf8 (or Binary, read as UTF-8) column as a string; "" for a null row. */
  getString(i: i32): string {
    const start = this.bytesStart(i);
    return String.UTF8.decodeUnsafe(start, <usize>this.bytesLength(i));
  }

  /** A copy of the bytes of row `i` of a Binary (or Utf8) column. */
  getBytes(i: i32): Uint8Array {
    const start = this.bytesStart(i);
    const n = this.bytesLength(i);
    const out = new Uint8Array(n);
    memory.copy(out.dataStart, start, <usize>n);
    return out;
  }

  /** Whether row `i` of a Utf8/Binary column equals `bytes` (no allocation). */
  bytesEqual(i: i32, bytes: Uint8Array): bool {
    const n = this.bytesLength(i);
    return n == bytes.length && memory.compare(this.bytesStart(i), bytes.dataStart, <usize>n) == 0;
  }

  /** @internal Offset `i` of a variable-size column or a list (0..length inclusive). */
  @inline offsetAt(i: i32): i64 {
    return this.type.hasLargeOffsets()
      ? load<i64>(this.values + (<usize>i << 3))
      : <i64>load<i32>(this.values + (<usize>i << 2));
  }

  /** The child `k` of a `Struct` column (or the items, `k` = 0, of a list). */
  child(k: i32): Column {
    if (<u32>k >= <u32>this.children.length) {
      panic(this.label() + ": no child " + k.toString() + " in " + this.type.toString());
    }
    return this.children[k];
  }

  /** The child named `name` of a `Struct` column, or null. A field of a null struct row is garbage: check `isNull` first. */
  field(name: string): Column | null {
    const fields = this.type.children;
    for (let k = 0; k < fields.length; k++) {
      if (fields[k].name == name && k < this.children.length) return this.children[k];
    }
    return null;
  }

  /** The items of a `List`/`LargeList` column: row `i` is items `listStart(i)` to `listStart(i) + listLength(i)`. */
  get items(): Column {
    if (!this.type.isList()) this.wrongType("items");
    return this.children[0];
  }

  /** The index in `items` of the first item of row `i` of a list column. */
  listStart(i: i32): i32 {
    this.check(i);
    if (!this.type.isList()) this.wrongType("listStart");
    return <i32>this.offsetAt(i);
  }

  /** The number of items in row `i` of a list column (0 for a null row). */
  listLength(i: i32): i32 {
    this.check(i);
    if (!this.type.isList()) this.wrongType("listLength");
    return <i32>(this.offsetAt(i + 1) - this.offsetAt(i));
  }

  /**
   * Traps with a message unless the column's values can be read (its type is not `Other`). An
   * opaque column still answers `isNull` (union and run-end encoded ones: never null).
   */
  requireReadable(): void {
    if (this.type.id == TypeId.Other) {
      panic(this.label() + ": type " + this.type.otherName + " is not supported by the AssemblyScript SDK");
    }
  }
}

/** Bit `i` of the bitmap at `bits` (LSB first, as Arrow's validity and Bool values). */
// @ts-ignore: decorator
@inline
export function bitAt(bits: usize, i: i32): bool {
  return ((load<u8>(bits + (<usize>i >> 3)) >> (<u8>i & 7)) & 1) != 0;
}
