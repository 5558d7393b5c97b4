// The guest ABI as the SDK implements it (guest-sdk/ABI.md): imports, allocation, init and its
// manifest, failures as messages, the log and read_file imports, abort as a logged trap.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { load, root } from "./harness.mjs";

const fixture = (name) => readFileSync(`${root}/tests/fixtures/${name}.arrow`);

test("modules import nothing but weir.log and weir.read_file, and export the ABI", () => {
  for (const name of ["echo", "probe"]) {
    const m = new WebAssembly.Module(readFileSync(`${root}/build/${name}.wasm`));
    for (const i of WebAssembly.Module.imports(m)) {
      assert.ok(i.module === "weir" && ["log", "read_file"].includes(i.name), `${name} imports ${i.module}.${i.name}`);
    }
    const exports = WebAssembly.Module.exports(m).map((e) => `${e.name}:${e.kind}`);
    for (const e of ["memory:memory", "weir_abi_version:function", "weir_alloc:function", "weir_free:function",
      "weir_init:function", "weir_transform:function", "weir_last_error:function"]) {
      assert.ok(exports.includes(e), `${name} lacks ${e}`);
    }
  }
  // A module that never calls readFile does not import weir.read_file (it loads on older hosts).
  const probe = new WebAssembly.Module(readFileSync(`${root}/build/probe.wasm`));
  assert.deepEqual(WebAssembly.Module.imports(probe).map((i) => i.name), ["log"]);
});

test("weir_alloc gives 8-aligned, distinct, non-zero buffers; 0 for impossible sizes", () => {
  const ex = load("echo").exports;
  assert.equal(ex.weir_abi_version(), 1);
  const seen = new Set();
  for (const n of [0, 0, 1, 7, 8, 100, 65536, 1 << 20]) {
    const p = ex.weir_alloc(n);
    assert.ok(p !== 0 && p % 8 === 0 && !seen.has(p), `weir_alloc(${n}) = ${p}`);
    seen.add(p);
  }
  assert.equal(ex.weir_alloc(-1), 0);
  assert.equal(ex.weir_alloc(0x7fffffff), 0);
  for (const p of seen) ex.weir_free(p, 0);
  ex.weir_free(0, 0);
});

test("init answers the manifest, leaving out keys that are not used", () => {
  const manifest = (params) => {
    const r = load("echo").init(params);
    assert.ok(r.ok, r.error);
    return r.manifest;
  };
  assert.equal(manifest({}), "{}");
  assert.equal(manifest({ reads: ["a", "b \"c\""] }), '{"reads":["a","b \\"c\\""]}');
  assert.equal(
    manifest({ reads: [], drop: ["x"], select: ["id", "é"], copy: { name: "customer.name", id: "id" } }),
    '{"reads":[],"drop":["x"],"select":["id","é"],"copy":[{"name":"name","path":"customer.name"},{"name":"id","path":"id"}]}',
  );
});

test("bad params fail init with a message naming the field", () => {
  const cases = [
    ["{", /^invalid params: expected a string key at character 1$/],
    ["[1]", /^invalid params: expected an object, found an array$/],
    ["{} x", /^invalid params: trailing characters/],
    [{ mode: 3 }, /^params\.mode: expected a string, found a number$/],
    [{ mode: "dance" }, /^params\.mode: unknown mode dance$/],
    [{ mdoe: "echo" }, /^params: unknown key "mdoe" \(expected one of mode, column, name, reads, drop, select, copy\)$/],
    [{ reads: ["a", 1] }, /^params\.reads: expected an array of strings, item 1 is a number$/],
    [{ copy: { "a b": 1 } }, /^params\.copy\["a b"\]: expected a string, found a number$/],
    [{ copy: [] }, /^params\.copy: expected an object, found an array$/],
  ];
  for (const [params, want] of cases) {
    const r = load("echo").init(params);
    assert.equal(r.ok, false, JSON.stringify(params));
    assert.match(r.error, want);
  }
});

test("transform before init, or on garbage, fails with a message", () => {
  const g = load("echo");
  let r = g.transform(fixture("all_types"));
  assert.deepEqual(r, { ok: false, error: "weir_transform called before a successful weir_init" });
  assert.equal(g.init({ mode: "dance" }).ok, false);
  r = g.transform(fixture("all_types"));
  assert.equal(r.error, "weir_transform called before a successful weir_init");
  assert.equal(g.init({}).ok, true);
  r = g.transform(Buffer.from("not arrow at all"));
  assert.equal(r.ok, false);
  assert.match(r.error, /^input is not a valid Arrow IPC stream: /);
  assert.ok(g.transform(fixture("all_types")).ok, "the instance goes on after a failed call");
});

test("Output.fail fails the batch with its message", () => {
  const g = load("echo");
  g.init({ mode: "fail" });
  assert.deepEqual(g.transform(fixture("all_types")), { ok: false, error: "echo refuses this batch of 4 rows" });
});

test("log lines reach weir.log with their level", () => {
  const g = load("echo");
  g.init({ mode: "log" });
  assert.ok(g.transform(fixture("all_types")).ok);
  assert.deepEqual(g.logs, [[3, "echo saw 4 rows"]]);
});

test("readFile reads a granted file, and only that", () => {
  const content = Buffer.from("currency,rate\nEUR,1.0\n");
  let g = load("echo", { fx: content });
  g.init({ mode: "file", name: "fx" });
  const r = g.transform(fixture("one_row"));
  assert.ok(r.ok, r.error);
  assert.ok(r.bytes.includes(content), "the file's bytes are in the answer");
  g = load("echo", { fx: content });
  g.init({ mode: "file", name: "other" });
  assert.deepEqual(g.transform(fixture("one_row")), { ok: false, error: "no file other" });
});

test("abort logs its message at level error, then traps", () => {
  const g = load("echo");
  g.init({ mode: "trap" });
  // all_types's first column is int8: getF64 reads it fine.
  assert.ok(g.transform(fixture("all_types")).ok);
  const h = load("echo");
  h.init({ mode: "trap" });
  // nested's first column is a struct: getF64 on it is a programming error.
  assert.throws(() => h.transform(fixture("nested")), WebAssembly.RuntimeError);
  assert.equal(h.logs.length, 1);
  assert.equal(h.logs[0][0], 1);
  assert.match(h.logs[0][1], /^abort: column "outer": getF64 on a struct<.*> column$/);
});
