// Runs a weir guest in node's WebAssembly, as the host does (guest-sdk/ABI.md): weir_alloc, copy
// in, call, read the packed answer or weir_last_error.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("..", import.meta.url));

const modules = new Map();
// Every text a guest hands over must be valid UTF-8: decoding fails the test otherwise.
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A fresh instance of build/NAME.wasm (or of the .wasm at a path); `files` are the granted files (name -> bytes). */
export function load(name, files = {}) {
  let module = modules.get(name);
  if (!module) {
    const path = name.includes("/") ? name : `${root}/build/${name}.wasm`;
    module = new WebAssembly.Module(readFileSync(path));
    modules.set(name, module);
  }
  const logs = [];
  let memory;
  const text = (ptr, len) => utf8.decode(new Uint8Array(memory.buffer, ptr >>> 0, len >>> 0));
  const imports = {
    weir: {
      log: (level, ptr, len) => logs.push([level, text(ptr, len)]),
      read_file: (namePtr, nameLen, dst, cap) => {
        const file = files[text(namePtr, nameLen)];
        if (!file) return -1n;
        if ((cap >>> 0) >= file.length) new Uint8Array(memory.buffer, dst >>> 0, file.length).set(file);
        return BigInt(file.length);
      },
    },
  };
  const instance = new WebAssembly.Instance(module, imports);
  const ex = instance.exports;
  memory = ex.memory;
  const call = (fn, bytes) => {
    const ptr = ex.weir_alloc(bytes.length);
    if (ptr === 0) throw new Error("weir_alloc returned 0");
    if (ptr % 8 !== 0) throw new Error(`weir_alloc returned ${ptr}, not 8-aligned`);
    new Uint8Array(memory.buffer, ptr, bytes.length).set(bytes);
    const r = fn(ptr, bytes.length);
    if (r < 0n) {
      const e = ex.weir_last_error();
      return { ok: false, error: text(Number(e >> 32n), Number(e & 0xffffffffn)) };
    }
    const p = Number(r >> 32n), n = Number(r & 0xffffffffn);
    return { ok: true, bytes: Buffer.from(new Uint8Array(memory.buffer, p, n)) };
  };
  return {
    exports: ex,
    logs,
    memory: () => memory,
    init: (params) => {
      const r = call(ex.weir_init, Buffer.from(typeof params === "string" ? params : JSON.stringify(params)));
      return r.ok ? { ok: true, manifest: utf8.decode(r.bytes) } : r;
    },
    initBytes: (bytes) => call(ex.weir_init, bytes),
    transform: (bytes) => call(ex.weir_transform, bytes),
  };
}

/** Calls a test export of build/probe.wasm (`probe_json`, `probe_read`) on `bytes`; its UTF-8 answer. */
export function probe(guest, fn, bytes) {
  const ex = guest.exports;
  const ptr = ex.weir_alloc(bytes.length);
  new Uint8Array(ex.memory.buffer, ptr, bytes.length).set(bytes);
  const r = ex[fn](ptr, bytes.length);
  return utf8.decode(new Uint8Array(ex.memory.buffer, Number(r >> 32n), Number(r & 0xffffffffn)));
}
