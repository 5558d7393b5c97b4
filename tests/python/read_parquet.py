"""Reads weir's Parquet output with pyarrow, an independent reader, and prints what it found.

usage: read_parquet.py DIR [COLUMN,...]
  ->  {"rows": N, "ids": [...], "schema": "...", "records": [{COLUMN: value, ...}, ...]}
"records" (the named columns of every row, in file order) only when columns are named.
Hidden files (weir's temporary names) are skipped, as every Parquet reader does.
"""
import json
import sys

import pyarrow.dataset as ds

dataset = ds.dataset(sys.argv[1], format="parquet")
table = dataset.to_table()
found = {
    "rows": table.num_rows,
    "ids": sorted(table.column("id").to_pylist()),
    "schema": str(dataset.schema).replace("\n", "; "),
}
if len(sys.argv) > 2:
    found["records"] = table.select(sys.argv[2].split(",")).to_pylist()
print(json.dumps(found))
