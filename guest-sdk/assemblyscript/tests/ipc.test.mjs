// The Arrow IPC reader and writer, on streams pyarrow wrote (tests/fixtures, see generate.py):
// the reader finds every value; what the writer writes reads back the same; malformed streams are
// errors, never traps.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { load, probe, root } from "./harness.mjs";

const fixture = (name) => readFileSync(`${root}/tests/fixtures/${name}.arrow`);
const expected = (name) => JSON.parse(readFileSync(`${root}/tests/fixtures/${name}.json`, "utf8"));
const readable = ["all_types", "empty", "one_row", "sliced", "nested", "opaque", "no_columns"];
const writable = ["all_types", "empty", "one_row", "sliced", "nested", "no_columns"];

const probeGuest = load("probe");
const read = (bytes) => {
  const got = probe(probeGuest, "probe_read", bytes);
  if (got.startsWith("err:")) return { error: got.slice(4) };
  assert.ok(got.startsWith("ok:"), got);
  return JSON.parse(got.slice(3));
};

function echo(mode, bytes, extra = {}) {
  const g = load("echo");
  assert.equal(g.init({ mode, ...extra }).ok, true);
  return g.transform(bytes);
}

/** The expected dump once the answer's mode is in the schema metadata. */
function withMode(want, mode) {
  return { ...want, metadata: { ...want.metadata, "weir.output": mode } };
}

test("the reader finds every field, type, metadata and value", () => {
  for (const name of readable) assert.deepEqual(read(fixture(name)), expected(name), name);
});

test("dictionary-encoded and compressed streams are refused with a clear error", () => {
  for (const name of ["dictionary", "compressed"]) {
    const got = read(fixture(name));
    assert.ok(got.error && got.error.includes(expected(name).error), JSON.stringify(got));
    const answer = echo("echo", fixture(name));
    assert.equal(answer.ok, false);
    assert.match(answer.error, /^input is not a valid Arrow IPC stream: /);
  }
});

test("columns rebuilt with the builders are written back identical (replace mode)", () => {
  for (const name of writable) {
    const r = echo("echo", fixture(name));
    assert.ok(r.ok, `${name}: ${r.error}`);
    assert.deepEqual(read(r.bytes), withMode(expected(name), "replace"), name);
  }
});

test("input columns answered as they are are written back identical", () => {
  for (const name of writable) {
    const r = echo("pass", fixture(name));
    assert.ok(r.ok, `${name}: ${r.error}`);
    assert.deepEqual(read(r.bytes), withMode(expected(name), "replace"), name);
  }
});

test("a batch with types the SDK cannot write fails the call, not the instance", () => {
  for (const mode of ["echo", "pass"]) {
    const r = echo(mode, fixture("opaque"));
    assert.equal(r.ok, false);
    assert.match(r.error, /cannot write decimal/);
  }
});

test("Batch.filter keeps the rows where the mask is true (null is false)", () => {
  const r = echo("filter", fixture("all_types"), { column: "flag" });
  assert.ok(r.ok, r.error);
  const want = expected("all_types");
  const rows = [0, 3]; // flag: true, null, false, true
  const kept = { ...want, rows: 2, columns: want.columns.map((c) => rows.map((i) => c[i])) };
  assert.deepEqual(read(r.bytes), withMode(kept, "replace"));
});

test("struct fields and list items are read", () => {
  const r = echo("nested", fixture("nested"));
  assert.ok(r.ok, r.error);
  const got = read(r.bytes);
  assert.deepEqual(got.metadata, { "weir.output": "merge" });
  const col = (name) => got.columns[got.fields.findIndex((f) => f.name === name)];
  assert.deepEqual(got.fields.map((f) => `${f.name}: ${f.type}`), [
    "outer.id: utf8",
    "outer.inner: struct<a: int32, tags: list<utf8>>",
    "lol.len: int32",
    "los.len: int32",
    "big.len: int32",
    "big.sum: float64",
  ]);
  assert.deepEqual(col("outer.id"), ["1", null, null, "4"]);
  assert.deepEqual(col("outer.inner"), [{ a: "1", tags: ["x", null] }, null, null, { a: null, tags: null }]);
  assert.deepEqual(col("lol.len"), ["3", null, "0", "1"]);
  assert.deepEqual(col("los.len"), ["1", "0", null, "2"]);
  assert.deepEqual(col("big.len"), ["1", null, "2", "0"]);
  assert.deepEqual(col("big.sum"), [1, null, 5, 0]);
});

test("a truncated stream is an error at every length", () => {
  const bytes = fixture("all_types");
  for (let n = 0; n < bytes.length; n++) {
    const got = read(bytes.subarray(0, n));
    // Cut exactly before the end-of-stream marker, the stream is whole but for it: accepted.
    if (!got.error) assert.ok(n >= bytes.length - 8, `accepted ${n} of ${bytes.length} bytes`);
  }
});

test("corrupted streams are errors or batches, never traps or reads out of bounds", () => {
  let seed = 11;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (const name of ["all_types", "nested", "opaque"]) {
    const bytes = fixture(name);
    for (let pos = 0; pos < bytes.length; pos++) {
      for (const v of [0x00, 0xff, 0x80, bytes[pos] ^ 1, Math.floor(rand() * 256)]) {
        const copy = Buffer.from(bytes);
        copy[pos] = v;
        read(copy); // a trap would throw a WebAssembly.RuntimeError
      }
    }
  }
});

test("a steady stream of calls does not grow memory", () => {
  const g = load("echo");
  g.init({ mode: "echo" });
  const bytes = fixture("all_types");
  for (let i = 0; i < 50; i++) assert.ok(g.transform(bytes).ok);
  const size = g.memory().buffer.byteLength;
  for (let i = 0; i < 500; i++) assert.ok(g.transform(bytes).ok);
  assert.equal(g.memory().buffer.byteLength, size);
});
