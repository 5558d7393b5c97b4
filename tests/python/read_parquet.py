"""Reads weir's Parquet output with pyarrow, an independent reader, and prints what it found.

usage: read_parquet.py DIR  ->  {"rows": N, "ids": [...], "schema": "..."}
Hidden files (weir's temporary names) are skipped, as every Parquet reader does.
"""
import json
import sys

import pyarrow.dataset as ds

dataset = ds.dataset(sys.argv[1], format="parquet")
table = dataset.to_table()
print(json.dumps({
    "rows": table.num_rows,
    "ids": sorted(table.column("id").to_pylist()),
    "schema": str(dataset.schema).replace("\n", "; "),
}))
