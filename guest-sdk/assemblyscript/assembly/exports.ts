// The weir guest ABI, version 1 (guest-sdk/ABI.md). A plugin's entry file re-exports these:
//
//   export * from "@weir/guest-sdk/assembly/exports";
//
// Memory: `weir_alloc` hands out unmanaged, 16-byte aligned heap blocks. The buffer passed to
// `weir_init`/`weir_transform` belongs to the guest from then on: it is freed once the answer is
// written (input columns are views into it until then). Answers and error messages live in two
// buffers the SDK reuses from call to call. With the minimal runtime, garbage is collected at
// the end of each call, when no managed value is live on the stack.

import { Batch } from "./batch";
import { weirAbort } from "./host";
import { readStream, writeStream, checkWritable } from "./ipc";
import { JsonKind, Params, jsonString, parseJsonBytes } from "./json";
import { OutputKind } from "./output";
import { Sink } from "./sink";
import { Transform, factory } from "./transform";

/** The answer of the last call. */
const answer = new Sink();
/** The message of the last failed call. */
const lastError = new Sink();
/** The transform built by `weir_init`. */
let instance: Transform | null = null;

// Referenced so that asc compiles it: `--use abort=...` points here.
const abortHandler = weirAbort;

// @ts-ignore: decorator
@inline
function pack(ptr: usize, len: usize): i64 {
  return <i64>((<u64>ptr << 32) | <u64>(<u32>len));
}

function fail(message: string): i64 {
  lastError.reset();
  lastError.utf8(message);
  return -1;
}

function done(): void {
  // Everything managed this call made is garbage now, except what the transform keeps.
  // ASC_RUNTIME 1 is the minimal runtime (shared/runtime.ts), whose GC runs only when asked.
  if (ASC_RUNTIME == 1) __collect();
}

/** `() -> i32`: the ABI version this guest speaks. */
export function weir_abi_version(): i32 {
  return 1;
}

/** `(len) -> ptr`: a buffer of `len` bytes, 16-byte aligned; 0 if `len` is out of range. */
export function weir_alloc(len: i32): i32 {
  if (len < 0 || len > 0x3fff_0000) return 0;
  return <i32>heap.alloc(<usize>max(len, 1));
}

/** `(ptr, len)`: gives back a buffer from `weir_alloc` that was not passed on. */
export function weir_free(ptr: i32, len: i32): void {
  if (ptr != 0) heap.free(<usize>ptr);
}

/** `(ptr, len) -> packed manifest`: params JSON in; builds the transform. */
export function weir_init(ptr: i32, len: i32): i64 {
  const make = factory;
  if (make == null) {
    if (ptr != 0) heap.free(<usize>ptr);
    return fail("no transform registered: call register(...) at the top level of the plugin");
  }
  const parsed = parseJsonBytes(<usize>ptr, <usize>max(len, 0));
  if (ptr != 0) heap.free(<usize>ptr);
  const err = parsed.error;
  if (err != null) return fail("invalid params: " + err);
  const value = parsed.value!;
  if (value.kind != JsonKind.Object) return fail("invalid params: expected an object, found " + value.describe());
  const t = make();
  const refused = t.init(new Params(value));
  if (refused != null) {
    instance = null;
    const r = fail(refused);
    done();
    return r;
  }
  instance = t;
  answer.reset();
  answer.utf8(manifest(t));
  done();
  return pack(answer.ptr, answer.len);
}

/** The manifest JSON; keys that are not used are left out (ABI.md). */
function manifest(t: Transform): string {
  const parts = new Array<string>();
  const reads = t.reads();
  if (reads != null) parts.push("\"reads\":" + stringArray(reads));
  const drops = t.drops();
  if (drops != null) parts.push("\"drop\":" + stringArray(drops));
  const selects = t.selects();
  if (selects != null) parts.push("\"select\":" + stringArray(selects));
  const copies = t.copies();
  if (copies != null) {
    const items = new Array<string>();
    for (let i = 0; i < copies.length; i++) {
      items.push("{\"name\":" + jsonString(copies[i].name) + ",\"path\":" + jsonString(copies[i].path) + "}");
    }
    parts.push("\"copy\":[" + items.join(",") + "]");
  }
  return "{" + parts.join(",") + "}";
}

function stringArray(items: string[]): string {
  const quoted = new Array<string>();
  for (let i = 0; i < items.length; i++) quoted.push(jsonString(items[i]));
  return "[" + quoted.join(",") + "]";
}

/** `(ptr, len) -> packed IPC`: one batch in, the answer out. */
export function weir_transform(ptr: i32, len: i32): i64 {
  const r = transformInPlace(<usize>ptr, max(len, 0));
  if (ptr != 0) heap.free(<usize>ptr);
  done();
  return r;
}

function transformInPlace(ptr: usize, len: i32): i64 {
  const t = instance;
  if (t == null) return fail("weir_transform called before a successful weir_init");
  if (ptr == 0) return fail("null input buffer");
  const read = readStream(ptr, len);
  const readErr = read.error;
  if (readErr != null) return fail(readErr);
  const batch: Batch = read.batch!;
  const output = t.transform(batch);
  if (output.kind == OutputKind.Fail) return fail(output.message);
  const out = output.toBatch(batch.numRows);
  const outErr = out.error;
  if (outErr != null) return fail(outErr);
  const unwritable = checkWritable(out.fields, out.columns, out.numRows);
  if (unwritable != null) return fail(unwritable);
  answer.reset();
  writeStream(answer, out.fields, out.columns, out.numRows, out.metadata);
  return pack(answer.ptr, answer.len);
}

/** `() -> packed message`: why the last call failed. */
export function weir_last_error(): i64 {
  return pack(lastError.ptr, lastError.len);
}
