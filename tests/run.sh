#!/usr/bin/env bash
# Runs every test: sets up what the tests need (pyarrow, fastavro, deltalake and moto in tests/.venv;
# the Tansu broker, cached in ~/.cache/weir; the AssemblyScript SDK and plugins, built with npm), then
# the SDK's own node tests and the whole Rust workspace.
# The wasm target comes from rust-toolchain.toml; the built-in plugins are built by host/build.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=tests/.venv
if ! "$venv/bin/python" -c "import pyarrow, fastavro, deltalake, moto.server, boto3" 2>/dev/null; then
  echo "tests/run.sh: installing pyarrow, fastavro, deltalake and moto into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
export WEIR_PYTHON="$PWD/$venv/bin/python"

# A real Kafka-protocol broker for the e2e tests that kill and restart workers (built once, cached).
WEIR_TANSU="$(./tests/tansu.sh)"
export WEIR_TANSU

# AssemblyScript: npm ci and build (SDK test modules, plugins/fx-rate, plugins/filter-as).
./tests/build-assemblyscript.sh
(cd guest-sdk/assemblyscript && node --test tests/)

# Release builds: the same artifacts as the demo, and wasm compilation at full speed.
cargo test --release --workspace "$@"
