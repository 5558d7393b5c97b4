"""Reads a Delta table with the `deltalake` package (delta-rs's Python binding, an independent
reader of what weir writes) and prints what the tests compare, as JSON:

    delta_check.py TABLE --key COLUMN [--txn APP_ID ...] [--storage KEY=VALUE ...]

{"version", "rows", "keys": {key: count}, "schema": str, "partition_columns",
 "operations": [history, oldest first], "txn": {app_id: version or null}}
"""
import argparse
import os
import sys
import collections
import json

import pyarrow as pa
from deltalake import DeltaTable


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("table")
    ap.add_argument("--key", required=True)
    ap.add_argument("--txn", action="append", default=[])
    ap.add_argument("--storage", action="append", default=[])
    args = ap.parse_args()
    options = dict(kv.split("=", 1) for kv in args.storage)
    dt = DeltaTable(args.table, storage_options=options or None)
    table = dt.to_pyarrow_table()
    keys = collections.Counter(str(k) for k in table.column(args.key).to_pylist())
    print(
        json.dumps(
            {
                "version": dt.version(),
                "rows": table.num_rows,
                "keys": keys,
                "schema": str(pa.schema(dt.schema().to_arrow())),
                "partition_columns": dt.metadata().partition_columns,
                "operations": [h["operation"] for h in reversed(dt.history())],
                "txn": {a: dt.transaction_version(a) for a in args.txn},
            }
        )
    )


if __name__ == "__main__":
    main()
    # deltalake's runtime threads can abort the interpreter's shutdown ("terminate called
    # without an active exception") after everything is printed: leave without it.
    sys.stdout.flush()
    os._exit(0)
