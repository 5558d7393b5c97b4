// A map from strings to integers, looked up by raw UTF-8 bytes: a string column's rows are
// found in it without decoding them into strings (no allocation per row).

import { Column } from "./column";

// @ts-ignore: decorator
@inline
function fnv1a(ptr: usize, len: usize): u32 {
  let h: u32 = 0x811c9dc5;
  for (let i: usize = 0; i < len; i++) {
    h = (h ^ <u32>load<u8>(ptr + i)) * 0x01000193;
  }
  return h;
}

/**
 * Strings to i32 values (say, indexes into an array of rates), looked up by UTF-8 bytes:
 *
 * ```ts
 * const idx = map.getRow(currency, i); // -1 when the row's text is not a key
 * ```
 */
export class Utf8Map {
  private keys: ArrayBuffer[] = [];
  private values: i32[] = [];
  /** Open addressing: key index + 1, 0 for an empty slot. */
  private slots: Int32Array = new Int32Array(16);

  /** How many keys the map holds. */
  get size(): i32 {
    return this.keys.length;
  }

  /** Sets `key` to `value` (replacing an earlier value). */
  set(key: string, value: i32): void {
    const bytes = String.UTF8.encode(key);
    const at = this.find(changetype<usize>(bytes), bytes.byteLength);
    if (at >= 0) {
      this.values[at] = value;
      return;
    }
    this.keys.push(bytes);
    this.values.push(value);
    if (this.keys.length * 2 > this.slots.length) {
      this.slots = new Int32Array(this.slots.length * 2);
      for (let i = 0; i < this.keys.length; i++) this.insert(i);
    } else {
      this.insert(this.keys.length - 1);
    }
  }

  private insert(index: i32): void {
    const k = this.keys[index];
    const mask = this.slots.length - 1;
    let s = <i32>fnv1a(changetype<usize>(k), <usize>k.byteLength) & mask;
    while (unchecked(this.slots[s]) != 0) s = (s + 1) & mask;
    this.slots[s] = index + 1;
  }

  private find(ptr: usize, len: i32): i32 {
    const slots = this.slots;
    const mask = slots.length - 1;
    let s = <i32>fnv1a(ptr, <usize>len) & mask;
    while (true) {
      const e = unchecked(slots[s]);
      if (e == 0) return -1;
      const k = unchecked(this.keys[e - 1]);
      if (k.byteLength == len && memory.compare(changetype<usize>(k), ptr, <usize>len) == 0) return e - 1;
      s = (s + 1) & mask;
    }
  }

  /** The value of the key whose UTF-8 bytes are `len` bytes at `ptr`, or -1. */
  get(ptr: usize, len: i32): i32 {
    const at = this.find(ptr, len);
    return at < 0 ? -1 : unchecked(this.values[at]);
  }

  /** The value of `key`, or -1. */
  getString(key: string): i32 {
    const bytes = String.UTF8.encode(key);
    return this.get(changetype<usize>(bytes), bytes.byteLength);
  }

  /** The value of the text of row `i` of a Utf8/Binary column, or -1 (also for a null row). */
  getRow(column: Column, i: i32): i32 {
    if (column.isNull(i)) return -1;
    return this.get(column.bytesStart(i), column.bytesLength(i));
  }
}
