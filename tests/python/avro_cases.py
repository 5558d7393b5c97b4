"""Cross-checks weir's Avro decoder and encoder against fastavro, an independent implementation.

    avro_cases.py generate DIR N SEED   writes DIR/schema.avsc, DIR/messages.bin (Confluent-framed,
                                        schema id 1, each prefixed by its u32 big-endian length)
                                        and DIR/expected.json (the records, normalized)
    avro_cases.py check-arrow DIR FILE  FILE: an Arrow IPC file weir decoded from messages.bin;
                                        read with pyarrow, compared with expected.json
    avro_cases.py check-avro DIR FILE [--any-order]
                                        FILE: weir's framed Avro messages (same framing as
                                        messages.bin), decoded with fastavro and compared (as a
                                        multiset with --any-order: Kafka partitions reorder)

Values are compared in one normal form (see `norm`), driven by the Avro schema, so that
fastavro's Python types, pyarrow's and the generated ones meet.
"""

import datetime as dt
import decimal
import io
import json
import random
import struct
import sys
import uuid

import fastavro

ITEM = {
    "type": "record",
    "name": "Item",
    "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}],
}
SCHEMA = {
    "type": "record",
    "name": "Everything",
    "namespace": "com.acme",
    "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "s", "type": "string"},
        {"name": "by", "type": "bytes"},
        {"name": "nul", "type": "null"},
        {"name": "e", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Hash", "size": 4}},
        {"name": "arr", "type": {"type": "array", "items": "long"}},
        {"name": "items", "type": {"type": "array", "items": ITEM}},
        {"name": "m", "type": {"type": "map", "values": "long"}},
        {"name": "opt", "type": ["null", "string"]},
        {"name": "opt_item", "type": ["null", "Item"]},
        {"name": "u", "type": ["int", "string"]},
        {
            "name": "address",
            "type": {
                "type": "record",
                "name": "Address",
                "fields": [
                    {"name": "city", "type": "string"},
                    {"name": "zip", "type": ["null", "int"]},
                ],
            },
        },
        {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
        {
            "name": "dec_fixed",
            "type": {"type": "fixed", "name": "Dec16", "size": 8, "logicalType": "decimal", "precision": 16, "scale": 4},
        },
        {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}},
        {"name": "date", "type": {"type": "int", "logicalType": "date"}},
        {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
        {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "lts_ms", "type": {"type": "long", "logicalType": "local-timestamp-millis"}},
        {"name": "lts_us", "type": {"type": "long", "logicalType": "local-timestamp-micros"}},
        {"name": "dur", "type": {"type": "fixed", "name": "Dur", "size": 12, "logicalType": "duration"}},
    ],
}

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
I32 = (-(2**31), 2**31 - 1)
I64 = (-(2**63), 2**63 - 1)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def record(rng, k):
    """One record of SCHEMA; the first few carry the edge values."""
    edge = k < 4
    pick = lambda lo, hi: (lo if k % 2 == 0 else hi) if edge else rng.randint(lo, hi)
    text = lambda: rng.choice(["", "a", "héllo", "日本語", "x" * rng.randint(0, 40), "emoji 🚀"])
    item = lambda: {"sku": text(), "qty": rng.randint(*I32)}
    return {
        "b": rng.random() < 0.5,
        "i": pick(*I32),
        "l": pick(*I64),
        "f": f32(rng.uniform(-1e6, 1e6)),
        "d": rng.uniform(-1e300, 1e300) if not edge else [0.0, -0.0, 1e-300, 1.7976931348623157e308][k],
        "s": text(),
        "by": bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 20))),
        "nul": None,
        "e": rng.choice(["RED", "GREEN", "BLUE"]),
        "fx": bytes(rng.getrandbits(8) for _ in range(4)),
        "arr": [rng.randint(*I64) for _ in range(rng.randint(0, 5))],
        "items": [item() for _ in range(rng.randint(0, 3))],
        "m": {text() + str(j): rng.randint(*I64) for j in range(rng.randint(0, 4))},
        "opt": None if rng.random() < 0.3 else text(),
        "opt_item": None if rng.random() < 0.5 else item(),
        "u": rng.randint(*I32) if rng.random() < 0.5 else text(),
        "address": {"city": text(), "zip": None if rng.random() < 0.3 else rng.randint(0, 99999)},
        "dec": decimal.Decimal(rng.randint(-(10**10) + 1, 10**10 - 1)).scaleb(-2),
        "dec_fixed": decimal.Decimal(rng.randint(-(10**16) + 1, 10**16 - 1)).scaleb(-4),
        "uid": str(uuid.UUID(int=rng.getrandbits(128))),
        "date": rng.randint(-50000, 50000),
        "t_ms": rng.randint(0, 86_400_000 - 1),
        "t_us": rng.randint(0, 86_400_000_000 - 1),
        "ts_ms": rng.randint(-(2**40), 2**42),
        "ts_us": rng.randint(-(2**50), 2**52),
        "lts_ms": rng.randint(-(2**40), 2**42),
        "lts_us": rng.randint(-(2**50), 2**52),
        # Arrow's month-day-nano interval holds months and days as i32: up to 2^31 - 1 here.
        "dur": struct.pack("<III", rng.randint(0, 2**31 - 1), rng.randint(0, 2**31 - 1), rng.randint(0, 2**32 - 1)),
    }


def named_types(schema, out=None):
    out = {} if out is None else out
    if isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            out[schema["name"]] = schema
        for f in schema.get("fields", []):
            named_types(f["type"], out)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], out)
    elif isinstance(schema, list):
        for s in schema:
            named_types(s, out)
    return out


NAMED = named_types(SCHEMA)


def branch_for(branches, v):
    for b in branches:
        t = NAMED.get(b, b) if isinstance(b, str) else b
        kind = t if isinstance(t, str) else t["type"]
        if v is None and kind == "null":
            return t
        if isinstance(v, bool):
            if kind == "boolean":
                return t
        elif isinstance(v, int) and kind in ("int", "long"):
            return t
        elif isinstance(v, str) and kind == "string":
            return t
        elif isinstance(v, dict) and kind == "record":
            return t
    raise ValueError(f"no union branch of {branches} for {v!r}")


def micros(v, unit):
    """datetime (aware or naive UTC) or int -> int in `unit` (1000 or 1000000 per second)."""
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        delta = v - EPOCH
        return (delta.days * 86400 + delta.seconds) * unit + delta.microseconds // (1_000_000 // unit)
    return int(v)


def norm(t, v):
    """`v` of Avro type `t` in the normal form both sides are compared in."""
    if isinstance(t, str) and t in NAMED:
        t = NAMED[t]
    if isinstance(t, list):
        return None if v is None else norm(branch_for(t, v), v)
    kind = t if isinstance(t, str) else t["type"]
    logical = None if isinstance(t, str) else t.get("logicalType")
    if logical == "decimal":
        if isinstance(v, (bytes, bytearray)):
            v = decimal.Decimal(int.from_bytes(v, "big", signed=True)).scaleb(-t["scale"])
        return str(decimal.Decimal(v).quantize(decimal.Decimal(1).scaleb(-t["scale"])))
    if logical == "uuid":
        if isinstance(v, (bytes, bytearray)):
            return str(uuid.UUID(bytes=bytes(v)))
        return str(uuid.UUID(str(v)))
    if logical == "date":
        return (v - dt.date(1970, 1, 1)).days if isinstance(v, dt.date) else int(v)
    if logical in ("time-millis", "time-micros"):
        unit = 1000 if logical == "time-millis" else 1_000_000
        if isinstance(v, dt.time):
            return ((v.hour * 60 + v.minute) * 60 + v.second) * unit + v.microsecond // (1_000_000 // unit)
        if isinstance(v, dt.timedelta):
            return (v.days * 86400 + v.seconds) * unit + v.microseconds // (1_000_000 // unit)
        return int(v)
    if logical and logical.endswith(("timestamp-millis", "timestamp-micros")):
        return micros(v, 1000 if logical.endswith("millis") else 1_000_000)
    if logical == "duration":
        if isinstance(v, (bytes, bytearray)):
            return list(struct.unpack("<III", v))
        # pyarrow: MonthDayNano(months, days, nanoseconds)
        return [v.months, v.days, v.nanoseconds // 1_000_000]
    if kind == "null":
        return None
    if kind in ("boolean", "int", "long", "string"):
        return v
    if kind == "float":
        return f32(v)
    if kind == "double":
        return v
    if kind in ("bytes", "fixed"):
        return bytes(v).hex()
    if kind == "enum":
        return v
    if kind == "array":
        return [norm(t["items"], x) for x in v]
    if kind == "map":
        pairs = v.items() if isinstance(v, dict) else v
        return sorted([k, norm(t["values"], x)] for k, x in pairs)
    if kind == "record":
        return {f["name"]: norm(f["type"], v.get(f["name"])) for f in t["fields"]}
    raise ValueError(f"unknown Avro type {t!r}")


def framed(body, schema_id=1):
    return b"\x00" + struct.pack(">I", schema_id) + body


def read_messages(path):
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        out.append(data[pos + 4 : pos + 4 + n])
        pos += 4 + n
    return out


def compare(expected, got, what):
    if len(expected) != len(got):
        sys.exit(f"{what}: {len(got)} rows, expected {len(expected)}")
    for n, (e, g) in enumerate(zip(expected, got)):
        if e != g:
            diff = {k: (e[k], g.get(k)) for k in e if e[k] != g.get(k)}
            sys.exit(f"{what}: row {n} differs (expected, got): {json.dumps(diff, default=str)[:2000]}")
    print(f"ok {len(got)} rows agree ({what})")


def main():
    cmd, d = sys.argv[1], sys.argv[2]
    parsed = fastavro.parse_schema(SCHEMA)
    if cmd == "generate":
        n, seed = int(sys.argv[3]), int(sys.argv[4])
        rng = random.Random(seed)
        recs = [record(rng, k) for k in range(n)]
        with open(f"{d}/schema.avsc", "w") as f:
            json.dump(SCHEMA, f, indent=1)
        with open(f"{d}/messages.bin", "wb") as f:
            for r in recs:
                buf = io.BytesIO()
                fastavro.schemaless_writer(buf, parsed, r)
                m = framed(buf.getvalue())
                f.write(struct.pack(">I", len(m)) + m)
        with open(f"{d}/expected.json", "w") as f:
            json.dump([norm(SCHEMA, r) for r in recs], f)
        print(f"wrote {n} records")
    elif cmd == "check-arrow":
        import pyarrow.ipc

        table = pyarrow.ipc.open_file(sys.argv[3]).read_all()
        rows = table.to_pylist()
        got = [norm(SCHEMA, r) for r in rows]
        compare(json.load(open(f"{d}/expected.json")), got, "fastavro -> weir decode -> pyarrow")
    elif cmd == "check-avro":
        got = []
        for m in read_messages(sys.argv[3]):
            if m[:5] != framed(b""):
                sys.exit(f"bad Confluent header {m[:5].hex()}")
            got.append(norm(SCHEMA, fastavro.schemaless_reader(io.BytesIO(m[5:]), parsed, parsed)))
        expected = json.load(open(f"{d}/expected.json"))
        if "--any-order" in sys.argv:
            key = lambda r: json.dumps(r, sort_keys=True)
            expected, got = sorted(expected, key=key), sorted(got, key=key)
        compare(expected, got, "weir encode -> fastavro decode")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
