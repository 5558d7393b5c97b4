#!/usr/bin/env bash
# Runs the pipeline benchmark (host/benches/pipeline.rs): weir against a bare consumer (the
# ceiling), the same transforms compiled natively, and the Python route (confluent-kafka and
# pandas), on the same data on one Tansu broker. Prints a table and writes docs/BENCHMARKS.md.
# Sets up what it needs: a release build of Tansu (cached in ~/.cache/weir; about 25 minutes on 2
# cores the first time), and the Python packages in tests/.venv.
# WEIR_BENCH_MESSAGES (default 1000000) and WEIR_BENCH_ONLY (scenario names) narrow a run.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=tests/.venv
if ! "$venv/bin/python" -c "import confluent_kafka, pandas, pyarrow, fastavro" 2>/dev/null; then
  echo "tests/bench.sh: installing confluent-kafka, pandas, pyarrow and fastavro into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/bench-requirements.txt
fi
export WEIR_PYTHON="$PWD/$venv/bin/python"
WEIR_TANSU="$(./tests/tansu.sh --release)"
export WEIR_TANSU
cargo bench -p weir --bench pipeline
