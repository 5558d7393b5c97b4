"""The Python route that weir replaces, as the tutorials write it.

It polls with confluent-kafka, decodes with fastavro (Confluent framing) or json, and builds one
pandas DataFrame per batch. It applies the same filter and projection as the benchmark's weir
configs and appends to a Parquet file with pyarrow. host/benches/pipeline.rs runs it and reads
the one JSON line it prints: the messages read and the seconds from the first message to the
last written.
"""

import argparse
import io
import json
import time

import fastavro
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from confluent_kafka import Consumer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--format", choices=["avro", "json"], required=True)
    ap.add_argument("--schema", help="the Avro writer schema (.avsc)")
    ap.add_argument("--messages", type=int, required=True)
    ap.add_argument("--out", required=True, help="the Parquet file to write")
    args = ap.parse_args()

    consumer = Consumer(
        {
            "bootstrap.servers": args.brokers,
            "group.id": args.group,
            "auto.offset.reset": "earliest",
            # Tansu holds a fetch for its full wait; weir and the ceiling set the same.
            "fetch.wait.max.ms": 10,
        }
    )
    consumer.subscribe([args.topic])
    if args.format == "avro":
        schema = fastavro.parse_schema(json.load(open(args.schema)))

        def decode(v):
            # Confluent framing: a magic byte and a 4-byte schema id before the Avro body.
            return fastavro.schemaless_reader(io.BytesIO(v[5:]), schema)
    else:
        decode = json.loads

    consumed = rows_out = 0
    first = None
    writer = None
    idle_since = time.monotonic()
    while consumed < args.messages:
        msgs = consumer.consume(num_messages=10000, timeout=1.0)
        if not msgs:
            if time.monotonic() - idle_since > 60:
                raise SystemExit(f"stalled after {consumed} messages")
            continue
        idle_since = time.monotonic()
        if first is None:
            first = time.perf_counter()
        records = [decode(m.value()) for m in msgs if m.error() is None]
        consumed += len(msgs)
        df = pd.DataFrame.from_records(records)
        df = df[df["amount"] > 100]
        out = pd.DataFrame(
            {
                "id": df["id"],
                "customer": df["customer"].str.get("name"),
                "tier": df["customer"].str.get("tier"),
                "items": df["items"].str.len(),
                "amount": df["amount"],
                "day": pd.to_datetime(df["ts"], unit="ms").dt.date,
            }
        )
        table = pa.Table.from_pandas(out, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(args.out, table.schema, compression="zstd")
        writer.write_table(table)
        rows_out += table.num_rows
    if writer is not None:
        writer.close()
    seconds = time.perf_counter() - first if first is not None else 0.0
    consumer.close()
    print(json.dumps({"messages": consumed, "rows_out": rows_out, "seconds": seconds}))


if __name__ == "__main__":
    main()
