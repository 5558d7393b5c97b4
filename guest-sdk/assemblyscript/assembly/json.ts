// A small, strict JSON parser (RFC 8259) for params, and `Params`: typed getters whose errors
// name the field at fault (`params.rates.USD: expected a number, found a string`).

/** What a JSON value is. */
export enum JsonKind {
  Null,
  Bool,
  Number,
  String,
  Array,
  Object,
}

/** Nesting deeper than this is refused (as serde_json does). */
export const JSON_MAX_DEPTH: i32 = 128;

/** A parsed JSON value. Objects keep their keys in document order; a key may appear once. */
export class JsonValue {
  kind: JsonKind = JsonKind.Null;
  /** The value of a `Bool`. */
  bool: bool = false;
  /** The value of a `Number` (every JSON number is read as an f64). */
  num: f64 = 0;
  /** The value of a `String`. */
  str: string = "";
  /** The items of an `Array`, or the values of an `Object` (in the order of `keys`). */
  items: JsonValue[] = [];
  /** The keys of an `Object`, in document order. */
  keys: string[] = [];

  static null(): JsonValue {
    return new JsonValue();
  }

  static boolean(b: bool): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Bool;
    v.bool = b;
    return v;
  }

  static number(n: f64): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Number;
    v.num = n;
    return v;
  }

  static string(s: string): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.String;
    v.str = s;
    return v;
  }

  /** A `Number` that is a whole number within ±2^53 (exactly representable). */
  isInteger(): bool {
    return this.kind == JsonKind.Number && Math.floor(this.num) == this.num &&
      Math.abs(this.num) <= 9007199254740992.0;
  }

  /** The value of `key` in an `Object`, or null (absent, or not an object). */
  get(key: string): JsonValue | null {
    const keys = this.keys;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] == key) return this.items[i];
    }
    return null;
  }

  /** What the value is, for error messages: `a string`, `an object`, ... */
  describe(): string {
    switch (this.kind) {
      case JsonKind.Null: return "null";
      case JsonKind.Bool: return "a boolean";
      case JsonKind.Number: return "a number";
      case JsonKind.String: return "a string";
      case JsonKind.Array: return "an array";
      default: return "an object";
    }
  }

  /** The value as compact JSON (keys in order; whole numbers without a fraction). */
  toString(): string {
    const out: string[] = [];
    writeJson(this, out);
    return out.join("");
  }
}

function writeJson(v: JsonValue, out: string[]): void {
  switch (v.kind) {
    case JsonKind.Null: out.push("null"); break;
    case JsonKind.Bool: out.push(v.bool ? "true" : "false"); break;
    case JsonKind.Number: out.push(jsonNumber(v.num)); break;
    case JsonKind.String: out.push(jsonString(v.str)); break;
    case JsonKind.Array: {
      out.push("[");
      for (let i = 0; i < v.items.length; i++) {
        if (i) out.push(",");
        writeJson(v.items[i], out);
      }
      out.push("]");
      break;
    }
    default: {
      out.push("{");
      for (let i = 0; i < v.keys.length; i++) {
        if (i) out.push(",");
        out.push(jsonString(v.keys[i]));
        out.push(":");
        writeJson(v.items[i], out);
      }
      out.push("}");
    }
  }
}

/** A number as JSON: whole numbers (up to 1e21) without a fraction. */
export function jsonNumber(n: f64): string {
  if (!isFinite(n)) return "null";
  if (n == 0 && 1 / n < 0) return "-0";
  if (Math.floor(n) == n && Math.abs(n) < 1e21) {
    if (Math.abs(n) <= 9007199254740992.0) return (<i64>n).toString();
  }
  return n.toString();
}

const HEX = "0123456789abcdef";

/** `s` as a JSON string literal, quotes included. */
export function jsonString(s: string): string {
  let out = "\"";
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    out += s.substring(start, i);
    start = i + 1;
    if (c == 0x22) out += "\\\"";
    else if (c == 0x5c) out += "\\\\";
    else if (c == 0x0a) out += "\\n";
    else if (c == 0x0d) out += "\\r";
    else if (c == 0x09) out += "\\t";
    else if (c == 0x08) out += "\\b";
    else if (c == 0x0c) out += "\\f";
    else out += "\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15);
  }
  out += s.substring(start);
  return out + "\"";
}

/** The outcome of a parse: a value, or an error message with its byte position. */
export class JsonResult {
  value: JsonValue | null = null;
  error: string | null = null;
}

/** Parses a JSON document held as UTF-8 bytes at `ptr`. */
export function parseJsonBytes(ptr: usize, len: usize): JsonResult {
  const bad = firstInvalidUtf8(ptr, len);
  if (bad >= 0) {
    const r = new JsonResult();
    r.error = "invalid UTF-8 at byte " + bad.toString();
    return r;
  }
  return parseJson(String.UTF8.decodeUnsafe(ptr, len));
}

/**
 * Parses a JSON document: strict (no trailing commas, comments, leading zeros, control characters
 * in strings, lone surrogates or duplicate keys), nested at most `JSON_MAX_DEPTH` deep, and with
 * nothing but whitespace after the value.
 */
export function parseJson(text: string): JsonResult {
  const p = new Parser(text);
  const r = new JsonResult();
  p.ws();
  const v = p.value(0);
  if (p.error == null) {
    p.ws();
    if (p.pos < text.length) p.fail("trailing characters after the JSON value");
  }
  if (p.error != null) {
    r.error = p.error;
  } else {
    r.value = v;
  }
  return r;
}

/** @internal The index of the first byte that is not valid UTF-8 in `len` bytes at `ptr`, or -1. */
export function firstInvalidUtf8(ptr: usize, len: usize): i32 {
  let i: usize = 0;
  while (i < len) {
    const c = <u32>load<u8>(ptr + i);
    if (c < 0x80) {
      i++;
      continue;
    }
    let n: usize = 0;
    let min: u32 = 0;
    let cp: u32 = 0;
    if ((c & 0xe0) == 0xc0) {
      n = 1; min = 0x80; cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2; min = 0x800; cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3; min = 0x10000; cp = c & 0x07;
    } else {
      return <i32>i;
    }
    if (i + n >= len) return <i32>i;
    for (let k: usize = 1; k <= n; k++) {
      const d = <u32>load<u8>(ptr + i + k);
      if ((d & 0xc0) != 0x80) return <i32>i;
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return <i32>i;
    i += n + 1;
  }
  return -1;
}

class Parser {
  pos: i32 = 0;
  error: string | null = null;

  constructor(public text: string) {}

  fail(message: string): void {
    if (this.error == null) {
      this.error = message + " at character " + this.pos.toString();
    }
  }

  @inline peek(): i32 {
    return this.pos < this.text.length ? this.text.charCodeAt(this.pos) : -1;
  }

  ws(): void {
    const t = this.text;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09) this.pos++;
      else break;
    }
  }

  literal(word: string): bool {
    if (this.text.substr(this.pos, word.length) == word) {
      this.pos += word.length;
      return true;
    }
    this.fail("invalid literal");
    return false;
  }

  value(depth: i32): JsonValue {
    const c = this.peek();
    if ((c == 0x7b || c == 0x5b) && depth >= JSON_MAX_DEPTH) {
      this.fail("nesting deeper than " + JSON_MAX_DEPTH.toString());
      return JsonValue.null();
    }
    if (c == 0x7b) return this.object(depth);
    if (c == 0x5b) return this.array(depth);
    if (c == 0x22) {
      const s = this.string();
      return JsonValue.string(s);
    }
    if (c == 0x74) {
      this.literal("true");
      return JsonValue.boolean(true);
    }
    if (c == 0x66) {
      this.literal("false");
      return JsonValue.boolean(false);
    }
    if (c == 0x6e) {
      this.literal("null");
      return JsonValue.null();
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (c < 0) this.fail("unexpected end of input");
    else this.fail("expected a JSON value");
    return JsonValue.null();
  }

  object(depth: i32): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Object;
    this.pos++; // {
    this.ws();
    if (this.peek() == 0x7d) {
      this.pos++;
      return v;
    }
    while (this.error == null) {
      this.ws();
      if (this.peek() != 0x22) {
        this.fail("expected a string key");
        break;
      }
      const key = this.string();
      if (this.error != null) break;
      if (v.get(key) != null) {
        this.fail("duplicate key " + jsonString(key));
        break;
      }
      this.ws();
      if (this.peek() != 0x3a) {
        this.fail("expected ':'");
        break;
      }
      this.pos++;
      this.ws();
      const item = this.value(depth + 1);
      if (this.error != null) break;
      v.keys.push(key);
      v.items.push(item);
      this.ws();
      const c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        continue;
      }
      if (c == 0x7d) {
        this.pos++;
        break;
      }
      this.fail("expected ',' or '}'");
    }
    return v;
  }

  array(depth: i32): JsonValue {
    const v = new JsonValue();
    v.kind = JsonKind.Array;
    this.pos++; // [
    this.ws();
    if (this.peek() == 0x5d) {
      this.pos++;
      return v;
    }
    while (this.error == null) {
      this.ws();
      const item = this.value(depth + 1);
      if (this.error != null) break;
      v.items.push(item);
      this.ws();
      const c = this.peek();
      if (c == 0x2c) {
        this.pos++;
        continue;
      }
      if (c == 0x5d) {
        this.pos++;
        break;
      }
      this.fail("expected ',' or ']'");
    }
    return v;
  }

  hex4(): i32 {
    if (this.pos + 4 > this.text.length) {
      this.fail("truncated \\u escape");
      return -1;
    }
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.text.charCodeAt(this.pos + k);
      let d = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) {
        this.fail("invalid \\u escape");
        return -1;
      }
      v = (v << 4) | d;
    }
    this.pos += 4;
    return v;
  }

  string(): string {
    const t = this.text;
    this.pos++; // opening quote
    let out = "";
    let start = this.pos;
    while (true) {
      if (this.pos >= t.length) {
        this.fail("unterminated string");
        return "";
      }
      const c = t.charCodeAt(this.pos);
      if (c == 0x22) {
        out += t.substring(start, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) {
        this.fail("control character in string");
        return "";
      }
      if (c != 0x5c) {
        this.pos++;
        continue;
      }
      out += t.substring(start, this.pos);
      this.pos++;
      const e = this.peek();
      this.pos++;
      if (e == 0x22) out += "\"";
      else if (e == 0x5c) out += "\\";
      else if (e == 0x2f) out += "/";
      else if (e == 0x62) out += "\b";
      else if (e == 0x66) out += "\f";
      else if (e == 0x6e) out += "\n";
      else if (e == 0x72) out += "\r";
      else if (e == 0x74) out += "\t";
      else if (e == 0x75) {
        const hi = this.hex4();
        if (hi < 0) return "";
        if (hi >= 0xdc00 && hi <= 0xdfff) {
          this.fail("lone low surrogate in \\u escape");
          return "";
        }
        if (hi >= 0xd800 && hi <= 0xdbff) {
          if (this.peek() != 0x5c || this.pos + 1 >= t.length || t.charCodeAt(this.pos + 1) != 0x75) {
            this.fail("lone high surrogate in \\u escape");
            return "";
          }
          this.pos += 2;
          const lo = this.hex4();
          if (lo < 0) return "";
          if (lo < 0xdc00 || lo > 0xdfff) {
            this.fail("high surrogate not followed by a low one");
            return "";
          }
          out += String.fromCharCode(hi, lo);
        } else {
          out += String.fromCharCode(hi);
        }
      } else {
        this.pos--;
        this.fail("invalid escape");
        return "";
      }
      start = this.pos;
    }
  }

  digits(): i32 {
    const t = this.text;
    const from = this.pos;
    while (this.pos < t.length) {
      const c = t.charCodeAt(this.pos);
      if (c < 0x30 || c > 0x39) break;
      this.pos++;
    }
    return this.pos - from;
  }

  number(): JsonValue {
    const t = this.text;
    const from = this.pos;
    if (this.peek() == 0x2d) this.pos++;
    if (this.peek() == 0x30) {
      this.pos++;
      const c = this.peek();
      if (c >= 0x30 && c <= 0x39) {
        this.fail("leading zero in a number");
        return JsonValue.null();
      }
    } else if (this.digits() == 0) {
      this.fail("expected a digit");
      return JsonValue.null();
    }
    if (this.peek() == 0x2e) {
      this.pos++;
      if (this.digits() == 0) {
        this.fail("expected a digit after the decimal point");
        return JsonValue.null();
      }
    }
    const e = this.peek();
    if (e == 0x65 || e == 0x45) {
      this.pos++;
      const s = this.peek();
      if (s == 0x2b || s == 0x2d) this.pos++;
      if (this.digits() == 0) {
        this.fail("expected a digit in the exponent");
        return JsonValue.null();
      }
    }
    const n = parseFloat(t.substring(from, this.pos));
    if (!isFinite(n)) {
      this.pos = from;
      this.fail("number out of range");
      return JsonValue.null();
    }
    return JsonValue.number(n);
  }
}

/** The first error of a `Params` tree, shared by all its nodes. */
class ParamsState {
  error: string | null = null;
}

/**
 * Typed access to a transform's params (a JSON object), for `Transform.init`. Getters never
 * fail loudly: a missing or mistyped field records the first error, naming the field
 * (`params.rates.USD: expected a number, found a string`), and returns the fallback; `init`
 * returns `params.error` when it is done.
 *
 * ```ts
 * init(p: Params): string | null {
 *   p.allowOnly(["column", "gt"]);
 *   this.column = p.string("column", "amount");
 *   this.gt = p.requiredNumber("gt");
 *   return p.error;
 * }
 * ```
 */
export class Params {
  private state: ParamsState;

  /** `value` at `path` (`params` for the root). */
  constructor(public value: JsonValue, public path: string = "params", state: ParamsState | null = null) {
    this.state = state != null ? state : new ParamsState();
    if (path == "params" && state == null && value.kind != JsonKind.Object) {
      this.fail("expected an object, found " + value.describe());
    }
  }

  /** The first error recorded on this tree, or null. */
  get error(): string | null {
    return this.state.error;
  }

  /** Records an error about this object (`params.rates: must not be empty`); the first wins. */
  fail(message: string): void {
    if (this.state.error == null) this.state.error = this.path + ": " + message;
  }

  /** Records an error about `key` (`params.rates.USD: expected a number`); the first wins. */
  failAt(key: string, message: string): void {
    if (this.state.error == null) this.state.error = this.pathOf(key) + ": " + message;
  }

  /** The path of `key` below this object: `params.rates.USD`, or `params.rates["a b"]`. */
  pathOf(key: string): string {
    return isIdentifier(key) ? this.path + "." + key : this.path + "[" + jsonString(key) + "]";
  }

  /** The keys present, in document order. */
  keys(): string[] {
    return this.value.keys;
  }

  /** Whether `key` is present (null counts as present). */
  has(key: string): bool {
    return this.value.get(key) != null;
  }

  /** The raw value of `key`, or null when absent. */
  get(key: string): JsonValue | null {
    return this.value.get(key);
  }

  /**
   * Refuses keys not in `allowed`: records `params: unknown key "x" (expected one of a, b)` for
   * the first. Returns whether every key is allowed.
   */
  allowOnly(allowed: string[]): bool {
    const keys = this.value.keys;
    for (let i = 0; i < keys.length; i++) {
      if (!allowed.includes(keys[i])) {
        this.fail("unknown key " + jsonString(keys[i]) + " (expected one of " + allowed.join(", ") + ")");
        return false;
      }
    }
    return true;
  }

  private typed(key: string, kind: JsonKind, what: string): JsonValue | null {
    const v = this.value.get(key);
    if (v == null) return null;
    if (v.kind != kind) {
      this.failAt(key, "expected " + what + ", found " + v.describe());
      return null;
    }
    return v;
  }

  private missing(key: string): void {
    this.failAt(key, "required");
  }

  /** The string `key`, or `fallback` when absent (or mistyped, recording an error). */
  string(key: string, fallback: string): string {
    const v = this.typed(key, JsonKind.String, "a string");
    return v != null ? v.str : fallback;
  }

  /** The string `key`; records `required` when absent. */
  requiredString(key: string): string {
    if (!this.has(key)) this.missing(key);
    return this.string(key, "");
  }

  /** The number `key`, or `fallback`. */
  number(key: string, fallback: f64): f64 {
    const v = this.typed(key, JsonKind.Number, "a number");
    return v != null ? v.num : fallback;
  }

  /** The number `key`; records `required` when absent. */
  requiredNumber(key: string): f64 {
    if (!this.has(key)) this.missing(key);
    return this.number(key, 0);
  }

  /** The whole number `key` (within ±2^53), or `fallback`. */
  integer(key: string, fallback: i64): i64 {
    const v = this.typed(key, JsonKind.Number, "a whole number");
    if (v == null) return fallback;
    if (!v.isInteger()) {
      this.failAt(key, "expected a whole number, found " + jsonNumber(v.num));
      return fallback;
    }
    return <i64>v.num;
  }

  /** The boolean `key`, or `fallback`. */
  boolean(key: string, fallback: bool): bool {
    const v = this.typed(key, JsonKind.Bool, "a boolean");
    return v != null ? v.bool : fallback;
  }

  /** The array of strings `key`, or null when absent. */
  strings(key: string): string[] | null {
    const v = this.typed(key, JsonKind.Array, "an array of strings");
    if (v == null) return null;
    const out = new Array<string>();
    for (let i = 0; i < v.items.length; i++) {
      const item = v.items[i];
      if (item.kind != JsonKind.String) {
        this.failAt(key, "expected an array of strings, item " + i.toString() + " is " + item.describe());
        return null;
      }
      out.push(item.str);
    }
    return out;
  }

  /** The object `key` as `Params` (errors name its fields below this path), or null when absent. */
  object(key: string): Params | null {
    const v = this.typed(key, JsonKind.Object, "an object");
    return v != null ? new Params(v, this.pathOf(key), this.state) : null;
  }

  /** The object `key`; records `required` when absent. */
  requiredObject(key: string): Params | null {
    if (!this.has(key)) {
      this.missing(key);
      return null;
    }
    return this.object(key);
  }
}

function isIdentifier(key: string): bool {
  if (key.length == 0) return false;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f ||
      (i > 0 && ((c >= 0x30 && c <= 0x39) || c == 0x2d));
    if (!ok) return false;
  }
  return true;
}
