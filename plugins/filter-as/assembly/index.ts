// filter-as: keeps the rows whose number column is above a threshold.
//
// A weir transform written in AssemblyScript with @weir/guest-sdk: the twin of weir's built-in
// `filter` with `where: "amount > \`100\`"`, written for speed (tight loops over the raw column,
// eight rows to a byte of the answer). It reads one column (only it crosses into the sandbox) and
// answers in merge mode with `__weir_keep` alone.
//
// As in weir's expressions (JMESPath), ordering is for numbers only: a null value, a column of
// another type, or a column the batch lacks compares as null, and its rows are dropped. The
// comparison is exact for every integer type (no rounding through f64).
//
// Params (an unknown key, or a field of the wrong type, refuses the plugin at load):
//
//   column: the column to compare (default `amount`); any integer or float type
//   gt:     the threshold, a number (required): rows with `column > gt` are kept
//
// Usage, in a route of weir's YAML config:
//
//   transforms:
//     - plugin: ./plugins/filter-as/build/filter-as.wasm
//       params: { column: amount, gt: 100 }
//
// Build: `npm ci && npm run build` (writes build/filter-as.wasm).

import { Batch, Column, Output, Params, Transform, TypeId, register } from "@weir/guest-sdk/assembly";

class FilterGt extends Transform {
  column: string = "amount";
  gt: f64 = 0;

  init(p: Params): string | null {
    p.allowOnly(["column", "gt"]);
    this.column = p.string("column", "amount");
    this.gt = p.requiredNumber("gt");
    return p.error;
  }

  reads(): string[] | null {
    return [this.column];
  }

  transform(batch: Batch): Output {
    const n = batch.numRows;
    const bits = new ArrayBuffer((n + 7) >> 3);
    const out = changetype<usize>(bits);
    const col = batch.column(this.column);
    if (col != null && n > 0 && compare(col, this.gt, out)) {
      // A null row is dropped: AND the answer with the validity bitmap.
      const valid = col.validity;
      if (valid != 0) {
        const bytes = <usize>((n + 7) >> 3);
        let i: usize = 0;
        for (; i + 8 <= bytes; i += 8) store<u64>(out + i, load<u64>(out + i) & load<u64>(valid + i));
        for (; i < bytes; i++) store<u8>(out + i, load<u8>(out + i) & load<u8>(valid + i));
      }
    }
    return Output.keep(Column.bools(bits, n));
  }
}

/** Writes `col > gt` as bits at `out`; false when no row can pass (`out` left zero). */
function compare(col: Column, gt: f64, out: usize): bool {
  const n = col.length;
  const v = col.values;
  switch (col.type.id) {
    case TypeId.Float64: gtBits<f64, f64>(v, n, gt, out); return true;
    case TypeId.Float32: gtBits<f32, f64>(v, n, gt, out); return true;
    case TypeId.Int8: return intBits<i8>(v, n, gt, -128.0, 127.0, out);
    case TypeId.Int16: return intBits<i16>(v, n, gt, -32768.0, 32767.0, out);
    case TypeId.Int32: return intBits<i32>(v, n, gt, -2147483648.0, 2147483647.0, out);
    case TypeId.Int64: return intBits<i64>(v, n, gt, -9223372036854775808.0, 9223372036854775808.0, out);
    case TypeId.UInt8: return intBits<u8>(v, n, gt, 0, 255.0, out);
    case TypeId.UInt16: return intBits<u16>(v, n, gt, 0, 65535.0, out);
    case TypeId.UInt32: return intBits<u32>(v, n, gt, 0, 4294967295.0, out);
    case TypeId.UInt64: return intBits<u64>(v, n, gt, 0, 18446744073709551616.0, out);
    default: return false; // not a number: null, dropped
  }
}

/**
 * Integers: `v > gt` is `v > floor(gt)`, compared in the column's own type. A threshold below
 * the type's range keeps every row, one at or above its maximum (`max`, or the 2^63 / 2^64
 * bound, exclusive) none.
 */
// @ts-ignore: decorator
@inline
function intBits<T>(v: usize, n: i32, gt: f64, min: f64, max: f64, out: usize): bool {
  if (isNaN(gt)) return false;
  const t = Math.floor(gt);
  if (t < min) {
    memory.fill(out, 0xff, <usize>((n + 7) >> 3));
    return true;
  }
  if (t >= max) return false;
  gtBits<T, T>(v, n, <T>t, out);
  return true;
}

/** Bit i of `out` = `values[i] > t`, eight rows to a byte, no branches. */
// @ts-ignore: decorator
@inline
function gtBits<T, U>(values: usize, n: i32, t: U, out: usize): void {
  const w = sizeof<T>();
  const full = n >> 3;
  let p = values;
  for (let b = 0; b < full; b++) {
    const byte =
      u32(<U>load<T>(p) > t) |
      (u32(<U>load<T>(p + w) > t) << 1) |
      (u32(<U>load<T>(p + 2 * w) > t) << 2) |
      (u32(<U>load<T>(p + 3 * w) > t) << 3) |
      (u32(<U>load<T>(p + 4 * w) > t) << 4) |
      (u32(<U>load<T>(p + 5 * w) > t) << 5) |
      (u32(<U>load<T>(p + 6 * w) > t) << 6) |
      (u32(<U>load<T>(p + 7 * w) > t) << 7);
    store<u8>(out + <usize>b, <u8>byte);
    p += 8 * w;
  }
  let last: u32 = 0;
  for (let i = full << 3; i < n; i++) {
    last |= u32(<U>load<T>(p) > t) << (<u32>i & 7);
    p += w;
  }
  if (n & 7) store<u8>(out + <usize>full, <u8>last);
}

register((): Transform => new FilterGt());

export * from "@weir/guest-sdk/assembly/exports";
