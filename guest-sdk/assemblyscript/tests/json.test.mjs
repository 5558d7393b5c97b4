// The params JSON parser: valid documents round-trip canonically, invalid ones are refused with
// a message and a position, never a trap.
import assert from "node:assert/strict";
import { test } from "node:test";
import { load, probe } from "./harness.mjs";

const guest = load("probe");
const parse = (text) => probe(guest, "probe_json", typeof text === "string" ? Buffer.from(text, "utf8") : text);

test("valid documents parse, keep key order, and re-serialize canonically", () => {
  const cases = [
    ["{}", "{}"],
    [" { \"b\" : 1 , \"a\" : [ true , false , null ] } ", "{\"b\":1,\"a\":[true,false,null]}"],
    ["[]", "[]"],
    ["0", "0"],
    ["-0", "-0"],
    ["-12", "-12"],
    ["1.5", "1.5"],
    ["1e3", "1000"],
    ["1E+2", "100"],
    ["2.5e-3", "0.0025"],
    ["9007199254740993", "9007199254740992"],
    ["\"\"", "\"\""],
    ["\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"", "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\""],
    ["\"\\u00e9\\u20AC\"", "\"é€\""],
    ["\"\\ud83d\\ude00\"", "\"😀\""],
    ["\"héllo ✓ 😀\"", "\"héllo ✓ 😀\""],
    ["\"\\u0001\"", "\"\\u0001\""],
    ["{\"rates\":{\"USD\":0.92,\"EUR\":1}}", "{\"rates\":{\"USD\":0.92,\"EUR\":1}}"],
    ["\t\r\n true \n", "true"],
  ];
  for (const [input, want] of cases) assert.equal(parse(input), "ok:" + want, input);
});

test("numbers are read as the nearest f64", () => {
  for (const n of ["0.1", "123.456", "1e-300", "1.7976931348623157e308", "5e-324", "0.30000000000000004", "3.14159"]) {
    const got = parse(n);
    assert.ok(got.startsWith("ok:"), got);
    assert.equal(Number(got.slice(3)), Number(n), n);
  }
});

test("invalid documents are refused with what and where", () => {
  const cases = [
    ["", "unexpected end of input"],
    ["{", "expected a string key"],
    ["{\"a\" 1}", "expected ':'"],
    ["{\"a\":1,}", "expected a string key"],
    ["[1,]", "expected a JSON value"],
    ["[1 2]", "expected ',' or ']'"],
    ["{\"a\":1 \"b\":2}", "expected ',' or '}'"],
    ["{a:1}", "expected a string key"],
    ["01", "leading zero"],
    ["-", "expected a digit"],
    ["1.", "expected a digit after the decimal point"],
    [".5", "expected a JSON value"],
    ["1e", "expected a digit in the exponent"],
    ["+1", "expected a JSON value"],
    ["1e999", "number out of range"],
    ["NaN", "expected a JSON value"],
    ["tru", "invalid literal"],
    ["nul", "invalid literal"],
    ["truex", "trailing characters"],
    ["{} {}", "trailing characters"],
    ["\"abc", "unterminated string"],
    ["\"a\nb\"", "control character"],
    ["\"\\x\"", "invalid escape"],
    ["\"\\u12zz\"", "invalid \\u escape"],
    ["\"\\u12", "truncated \\u escape"],
    ["\"\\ud800\"", "lone high surrogate"],
    ["\"\\udc00\"", "lone low surrogate"],
    ["\"\\ud800\\u0041\"", "high surrogate not followed by a low one"],
    ["{\"a\":1,\"a\":2}", "duplicate key \"a\""],
    ["// comment\n{}", "expected a JSON value"],
    ["'single'", "expected a JSON value"],
  ];
  for (const [input, want] of cases) {
    const got = parse(input);
    assert.ok(got.startsWith("err:") && got.includes(want), `${JSON.stringify(input)}: ${got}`);
    assert.match(got, /at character \d+/, input);
  }
});

test("invalid UTF-8 is refused with the byte", () => {
  for (const bytes of [[0x22, 0xff, 0x22], [0x22, 0xc3, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xc0, 0xaf, 0x22], [0x22, 0xe2, 0x82]]) {
    const got = parse(Buffer.from(bytes));
    assert.match(got, /^err:invalid UTF-8 at byte \d+$/, String(bytes));
  }
});

test("nesting is limited to 128 levels", () => {
  assert.ok(parse("[".repeat(128) + "]".repeat(128)).startsWith("ok:"));
  assert.ok(parse("{\"a\":".repeat(128) + "1" + "}".repeat(128)).startsWith("ok:"));
  const deep = parse("[".repeat(129) + "]".repeat(129));
  assert.ok(deep.includes("nesting deeper than 128"), deep);
  // Far deeper input is refused the same way, not by exhausting the stack.
  assert.ok(parse("[".repeat(100000)).includes("nesting deeper than 128"));
});

test("random bytes never trap", () => {
  let seed = 7;
  const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const alphabet = "{}[]\":,0123456789.eE+-tfnrule\\u \"abc\n";
  for (let k = 0; k < 3000; k++) {
    const len = Math.floor(rand() * 24);
    let s = "";
    for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
    const got = parse(s);
    assert.ok(got.startsWith("ok:") || got.startsWith("err:"), got);
    if (got.startsWith("ok:")) {
      let js;
      assert.doesNotThrow(() => (js = JSON.parse(s)), `we accepted ${JSON.stringify(s)}, JSON.parse refuses it`);
      void js;
    }
  }
});
