// Builders: new columns, appended row by row into memory they own, handed to a Column by `finish`.

import { Column, bitAt } from "./column";
import { panic } from "./host";
import { DataType, Field, TimeUnit, TypeId } from "./types";

/** Grows a managed buffer to at least `need` bytes (doubling), keeping its contents. */
function grow(buf: ArrayBuffer, need: i32): ArrayBuffer {
  const have = buf.byteLength;
  if (need <= have) return buf;
  let cap = max(have << 1, 64);
  while (cap < need) cap <<= 1;
  return changetype<ArrayBuffer>(__renew(changetype<usize>(buf), <usize>cap));
}

/** The memory a finished column lives in; the column keeps it alive. */
class Owned {
  constructor(public a: ArrayBuffer | null, public b: ArrayBuffer | null, public c: ArrayBuffer | null) {}
}

/**
 * A column under construction. Every builder has `append...` methods for its type (see the
 * subclasses), `appendNull()`, `appendFrom(column, row)` (copies a row of a column of the same
 * type, null included), and `finish()`, which hands the memory to a new `Column` and leaves the
 * builder empty, ready for another column. The validity bitmap is only allocated once a null is
 * appended.
 */
export abstract class Builder {
  /** Rows appended so far. */
  length: i32 = 0;
  /** Null rows appended so far. */
  nullCount: i32 = 0;
  /** @internal Validity bits; null until the first null row. */
  protected bits: ArrayBuffer | null = null;

  constructor(public type: DataType) {}

  /** Appends a null row. */
  appendNull(): void {
    let bits = this.bits;
    if (bits == null) {
      // Every row so far is valid.
      bits = new ArrayBuffer(max((this.length + 64) >> 3, 16));
      const full = this.length >> 3;
      memory.fill(changetype<usize>(bits), 0xff, <usize>full);
      for (let i = full << 3; i < this.length; i++) setBit(changetype<usize>(bits), i);
      this.bits = bits;
    }
    const need = (this.length >> 3) + 1;
    if (need > bits.byteLength) {
      const old = bits.byteLength;
      bits = grow(bits, need);
      memory.fill(changetype<usize>(bits) + <usize>old, 0, <usize>(bits.byteLength - old));
      this.bits = bits;
    }
    clearBit(changetype<usize>(bits), this.length);
    this.appendEmpty();
    this.nullCount++;
    this.length++;
  }

  /** @internal Marks row `length` valid in the bitmap, when there is one. Call before `length++`. */
  @inline protected markValid(): void {
    let bits = this.bits;
    if (bits != null) {
      const need = (this.length >> 3) + 1;
      if (need > bits.byteLength) {
        const old = bits.byteLength;
        bits = grow(bits, need);
        memory.fill(changetype<usize>(bits) + <usize>old, 0, <usize>(bits.byteLength - old));
        this.bits = bits;
      }
      setBit(changetype<usize>(bits), this.length);
    }
  }

  /** @internal Stores the placeholder of a null row (a zero, a repeated offset...), without counting it. */
  protected abstract appendEmpty(): void;

  /** Appends row `i` of `column` (same type as this builder), null or not. */
  abstract appendFrom(column: Column, i: i32): void;

  /** The column built so far; the builder starts over empty. */
  abstract finish(): Column;

  /** @internal Moves the validity to `c` and resets the counts. */
  protected finishInto(c: Column): ArrayBuffer | null {
    const bits = this.bits;
    c.nullCount = this.nullCount;
    c.validity = bits != null && this.nullCount > 0 ? changetype<usize>(bits) : 0;
    this.bits = null;
    this.length = 0;
    this.nullCount = 0;
    return bits;
  }
}

// @ts-ignore: decorator
@inline
function setBit(bits: usize, i: i32): void {
  const p = bits + (<usize>i >> 3);
  store<u8>(p, load<u8>(p) | (<u8>1 << (<u8>i & 7)));
}

// @ts-ignore: decorator
@inline
function clearBit(bits: usize, i: i32): void {
  const p = bits + (<usize>i >> 3);
  store<u8>(p, load<u8>(p) & ~(<u8>1 << (<u8>i & 7)));
}

/** Fixed-width values of type `T` (the integer, float, date and timestamp builders). */
export class PrimitiveBuilder<T> extends Builder {
  protected buf: ArrayBuffer;

  constructor(type: DataType, capacity: i32 = 0) {
    super(type);
    if (type.byteWidth() != sizeof<T>()) panic("PrimitiveBuilder: " + type.toString() + " values are not " + sizeof<T>().toString() + " bytes");
    this.buf = new ArrayBuffer(max(capacity, 0) << alignof<T>());
  }

  /** Appends a value. */
  @inline append(v: T): void {
    const at = <usize>this.length << alignof<T>();
    if (at + sizeof<T>() > <usize>this.buf.byteLength) this.buf = grow(this.buf, <i32>(at + sizeof<T>()));
    store<T>(changetype<usize>(this.buf) + at, v);
    this.markValid();
    this.length++;
  }

  protected appendEmpty(): void {
    const at = <usize>this.length << alignof<T>();
    if (at + sizeof<T>() > <usize>this.buf.byteLength) this.buf = grow(this.buf, <i32>(at + sizeof<T>()));
    store<T>(changetype<usize>(this.buf) + at, <T>0);
  }

  appendFrom(column: Column, i: i32): void {
    if (column.isNull(i)) this.appendNull();
    else this.append(load<T>(column.values + (<usize>i << alignof<T>())));
  }

  finish(): Column {
    const c = new Column(this.type, this.length);
    const bits = this.finishInto(c);
    c.values = changetype<usize>(this.buf);
    c.owner = new Owned(this.buf, bits, null);
    this.buf = new ArrayBuffer(0);
    return c;
  }
}

export class Int8Builder extends PrimitiveBuilder<i8> {
  constructor(capacity: i32 = 0) { super(DataType.int8(), capacity); }
}
export class Int16Builder extends PrimitiveBuilder<i16> {
  constructor(capacity: i32 = 0) { super(DataType.int16(), capacity); }
}
export class Int32Builder extends PrimitiveBuilder<i32> {
  constructor(capacity: i32 = 0) { super(DataType.int32(), capacity); }
}
export class Int64Builder extends PrimitiveBuilder<i64> {
  constructor(capacity: i32 = 0) { super(DataType.int64(), capacity); }
}
export class UInt8Builder extends PrimitiveBuilder<u8> {
  constructor(capacity: i32 = 0) { super(DataType.uint8(), capacity); }
}
export class UInt16Builder extends PrimitiveBuilder<u16> {
  constructor(capacity: i32 = 0) { super(DataType.uint16(), capacity); }
}
export class UInt32Builder extends PrimitiveBuilder<u32> {
  constructor(capacity: i32 = 0) { super(DataType.uint32(), capacity); }
}
export class UInt64Builder extends PrimitiveBuilder<u64> {
  constructor(capacity: i32 = 0) { super(DataType.uint64(), capacity); }
}
export class Float32Builder extends PrimitiveBuilder<f32> {
  constructor(capacity: i32 = 0) { super(DataType.float32(), capacity); }
}
export class Float64Builder extends PrimitiveBuilder<f64> {
  constructor(capacity: i32 = 0) { super(DataType.float64(), capacity); }
}
/** Days since 1970-01-01. */
export class Date32Builder extends PrimitiveBuilder<i32> {
  constructor(capacity: i32 = 0) { super(DataType.date32(), capacity); }
}
/** Milliseconds since 1970-01-01. */
export class Date64Builder extends PrimitiveBuilder<i64> {
  constructor(capacity: i32 = 0) { super(DataType.date64(), capacity); }
}
/** `unit`s since 1970-01-01 00:00 UTC; `timezone` as Arrow keeps it (`UTC`, `+02:00`, or null). */
export class TimestampBuilder extends PrimitiveBuilder<i64> {
  constructor(unit: TimeUnit, timezone: string | null = null, capacity: i32 = 0) {
    super(DataType.timestamp(unit, timezone), capacity);
  }
}

/** `Bool` values. */
export class BooleanBuilder extends Builder {
  protected buf: ArrayBuffer;

  constructor(capacity: i32 = 0) {
    super(DataType.bool());
    this.buf = new ArrayBuffer((max(capacity, 0) + 7) >> 3);
  }

  @inline private room(): void {
    const need = (this.length >> 3) + 1;
    if (need > this.buf.byteLength) {
      const old = this.buf.byteLength;
      this.buf = grow(this.buf, need);
      memory.fill(changetype<usize>(this.buf) + <usize>old, 0, <usize>(this.buf.byteLength - old));
    }
  }

  /** Appends a value. */
  @inline append(v: bool): void {
    this.room();
    const p = changetype<usize>(this.buf) + (<usize>this.length >> 3);
    const bit = <u8>1 << (<u8>this.length & 7);
    store<u8>(p, v ? load<u8>(p) | bit : load<u8>(p) & ~bit);
    this.markValid();
    this.length++;
  }

  protected appendEmpty(): void {
    this.room();
    clearBit(changetype<usize>(this.buf), this.length);
  }

  appendFrom(column: Column, i: i32): void {
    if (column.isNull(i)) this.appendNull();
    else this.append(bitAt(column.values, i));
  }

  finish(): Column {
    const c = new Column(this.type, this.length);
    const bits = this.finishInto(c);
    c.values = changetype<usize>(this.buf);
    c.owner = new Owned(this.buf, bits, null);
    this.buf = new ArrayBuffer(0);
    return c;
  }
}

/** Variable-size values: `Utf8`, `Binary` and their large (64-bit offset) variants. */
export class VarBuilder extends Builder {
  protected offsets: ArrayBuffer;
  protected bytes: ArrayBuffer;
  /** Bytes of data appended so far. */
  dataLength: i64 = 0;
  private large: bool;

  constructor(type: DataType, capacity: i32 = 0, byteCapacity: i32 = 0) {
    super(type);
    if (!type.isVariableSize()) panic("VarBuilder: " + type.toString() + " is not a variable-size type");
    const large = type.hasLargeOffsets();
    this.offsets = new ArrayBuffer((max(capacity, 0) + 1) << (large ? 3 : 2));
    this.bytes = new ArrayBuffer(max(byteCapacity, 0));
    this.large = large;
  }

  @inline private pushOffset(): void {
    const shift: usize = this.large ? 3 : 2;
    const at = <usize>(this.length + 1) << shift;
    if (at + (<usize>1 << shift) > <usize>this.offsets.byteLength) {
      this.offsets = grow(this.offsets, <i32>(at + (<usize>1 << shift)));
    }
    // Offset 0 is always 0: buffers start zeroed by `new`, and `finish` starts a new one.
    if (this.large) store<i64>(changetype<usize>(this.offsets) + at, this.dataLength);
    else store<i32>(changetype<usize>(this.offsets) + at, <i32>this.dataLength);
  }

  /** Makes room for `n` more bytes of data; returns where they go. */
  @inline private reserveBytes(n: i32): usize {
    const end = this.dataLength + <i64>n;
    if (!this.large && end > 0x7fff_ffff) panic("a " + this.type.toString() + " column holds at most 2 GiB; use the large type");
    if (end > <i64>this.bytes.byteLength) this.bytes = grow(this.bytes, <i32>end);
    return changetype<usize>(this.bytes) + <usize>this.dataLength;
  }

  /** Appends `n` bytes from `ptr`. */
  appendBytes(ptr: usize, n: i32): void {
    const dst = this.reserveBytes(n);
    memory.copy(dst, ptr, <usize>n);
    this.dataLength += n;
    this.pushOffset();
    this.markValid();
    this.length++;
  }

  /** Appends the bytes of `a`. */
  appendArray(a: Uint8Array): void {
    this.appendBytes(a.dataStart, a.length);
  }

  /** Appends `s`, encoded as UTF-8 (a lone surrogate becomes U+FFFD). */
  append(s: string): void {
    const n = String.UTF8.byteLength(s);
    const dst = this.reserveBytes(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, dst, false, String.UTF8.ErrorMode.REPLACE);
    this.dataLength += n;
    this.pushOffset();
    this.markValid();
    this.length++;
  }

  protected appendEmpty(): void {
    this.pushOffset();
  }

  appendFrom(column: Column, i: i32): void {
    if (column.isNull(i)) this.appendNull();
    else this.appendBytes(column.bytesStart(i), column.bytesLength(i));
  }

  finish(): Column {
    // A builder that never appended still has its first (zero) offset.
    const c = new Column(this.type, this.length);
    const bits = this.finishInto(c);
    c.values = changetype<usize>(this.offsets);
    c.data = changetype<usize>(this.bytes);
    c.owner = new Owned(this.offsets, this.bytes, bits);
    this.offsets = new ArrayBuffer(this.large ? 8 : 4);
    this.bytes = new ArrayBuffer(0);
    this.dataLength = 0;
    return c;
  }
}

/** `Utf8` values (strings). */
export class StringBuilder extends VarBuilder {
  constructor(capacity: i32 = 0, byteCapacity: i32 = 0) { super(DataType.utf8(), capacity, byteCapacity); }
}
/** `LargeUtf8` values (strings, 64-bit offsets). */
export class LargeStringBuilder extends VarBuilder {
  constructor(capacity: i32 = 0, byteCapacity: i32 = 0) { super(DataType.largeUtf8(), capacity, byteCapacity); }
}
/** `Binary` values. */
export class BinaryBuilder extends VarBuilder {
  constructor(capacity: i32 = 0, byteCapacity: i32 = 0) { super(DataType.binary(), capacity, byteCapacity); }
}
/** `LargeBinary` values. */
export class LargeBinaryBuilder extends VarBuilder {
  constructor(capacity: i32 = 0, byteCapacity: i32 = 0) { super(DataType.largeBinary(), capacity, byteCapacity); }
}

/** A `Null` column: every row null. */
export class NullBuilder extends Builder {
  constructor() { super(DataType.null()); }

  appendNull(): void {
    this.nullCount++;
    this.length++;
  }

  protected appendEmpty(): void {}

  appendFrom(column: Column, i: i32): void {
    this.appendNull();
  }

  finish(): Column {
    const c = Column.nulls(this.length);
    this.length = 0;
    this.nullCount = 0;
    return c;
  }
}

/**
 * A `Struct` column over one builder per field. For a valid row, append to every field's builder,
 * then call `append()`; `appendNull()` appends a null to every field itself.
 */
export class StructBuilder extends Builder {
  constructor(type: DataType, public fields: Builder[]) {
    super(type);
    if (type.id != TypeId.Struct || type.children.length != fields.length) {
      panic("StructBuilder: needs a struct type and one builder per field");
    }
  }

  /** Closes a valid row (its fields appended to the field builders). */
  append(): void {
    this.markValid();
    this.length++;
  }

  protected appendEmpty(): void {
    for (let k = 0; k < this.fields.length; k++) this.fields[k].appendNull();
  }

  appendFrom(column: Column, i: i32): void {
    if (column.isNull(i)) {
      this.appendNull();
      return;
    }
    for (let k = 0; k < this.fields.length; k++) this.fields[k].appendFrom(column.children[k], i);
    this.append();
  }

  finish(): Column {
    const c = new Column(this.type, this.length);
    for (let k = 0; k < this.fields.length; k++) {
      const child = this.fields[k].finish();
      if (child.length != c.length) {
        panic("StructBuilder: field " + this.type.children[k].name + " has " + child.length.toString() +
          " rows, the struct " + c.length.toString());
      }
      c.children.push(child);
    }
    const bits = this.finishInto(c);
    c.owner = new Owned(bits, null, null);
    return c;
  }
}

/**
 * A `List` (or `LargeList`) column over a builder of its items: append a row's items to `items`,
 * then call `append()` to close the row.
 */
export class ListBuilder extends Builder {
  protected offsets: ArrayBuffer;
  private large: bool;

  constructor(type: DataType, public items: Builder) {
    super(type);
    if (!type.isList()) panic("ListBuilder: " + type.toString() + " is not a list type");
    const large = type.id == TypeId.LargeList;
    this.offsets = new ArrayBuffer(large ? 8 : 4);
    this.large = large;
  }

  private pushOffset(): void {
    const shift: usize = this.large ? 3 : 2;
    const at = <usize>(this.length + 1) << shift;
    if (at + (<usize>1 << shift) > <usize>this.offsets.byteLength) {
      this.offsets = grow(this.offsets, <i32>(at + (<usize>1 << shift)));
    }
    if (this.large) store<i64>(changetype<usize>(this.offsets) + at, <i64>this.items.length);
    else store<i32>(changetype<usize>(this.offsets) + at, this.items.length);
  }

  /** Closes a valid row holding the items appended since the previous row. */
  append(): void {
    this.pushOffset();
    this.markValid();
    this.length++;
  }

  protected appendEmpty(): void {
    this.pushOffset();
  }

  appendFrom(column: Column, i: i32): void {
    if (column.isNull(i)) {
      this.appendNull();
      return;
    }
    const start = column.listStart(i);
    const n = column.listLength(i);
    const src = column.children[0];
    for (let k = 0; k < n; k++) this.items.appendFrom(src, start + k);
    this.append();
  }

  finish(): Column {
    const c = new Column(this.type, this.length);
    c.children.push(this.items.finish());
    const bits = this.finishInto(c);
    c.values = changetype<usize>(this.offsets);
    c.owner = new Owned(this.offsets, bits, null);
    this.offsets = new ArrayBuffer(this.large ? 8 : 4);
    return c;
  }
}

/**
 * A builder for any writable type (nested types get builders for their children). Traps on a
 * type the SDK cannot write (check `type.isWritable()`).
 */
export function builderFor(type: DataType, capacity: i32 = 0): Builder {
  switch (type.id) {
    case TypeId.Null: return new NullBuilder();
    case TypeId.Bool: return new BooleanBuilder(capacity);
    case TypeId.Int8: return new Int8Builder(capacity);
    case TypeId.Int16: return new Int16Builder(capacity);
    case TypeId.Int32: return new Int32Builder(capacity);
    case TypeId.Int64: return new Int64Builder(capacity);
    case TypeId.UInt8: return new UInt8Builder(capacity);
    case TypeId.UInt16: return new UInt16Builder(capacity);
    case TypeId.UInt32: return new UInt32Builder(capacity);
    case TypeId.UInt64: return new UInt64Builder(capacity);
    case TypeId.Float32: return new Float32Builder(capacity);
    case TypeId.Float64: return new Float64Builder(capacity);
    case TypeId.Date32: return new Date32Builder(capacity);
    case TypeId.Date64: return new Date64Builder(capacity);
    case TypeId.Timestamp: return new TimestampBuilder(type.unit, type.timezone, capacity);
    case TypeId.Utf8: case TypeId.LargeUtf8: case TypeId.Binary: case TypeId.LargeBinary:
      return new VarBuilder(type, capacity);
    case TypeId.Struct: {
      const fields = new Array<Builder>();
      for (let k = 0; k < type.children.length; k++) fields.push(builderFor(type.children[k].type, capacity));
      return new StructBuilder(type, fields);
    }
    case TypeId.List: case TypeId.LargeList:
      return new ListBuilder(type, builderFor(type.children[0].type, capacity));
    default:
      panic("no builder for " + type.toString() + ": the AssemblyScript SDK cannot write it");
  }
  return new NullBuilder();
}

/** A list type of `item` values, its item field named `item` and nullable (Arrow's default). */
export function listOf(item: DataType): DataType {
  return DataType.list(new Field("item", item, true));
}
