#!/usr/bin/env bash
# Runs every test: sets up what the tests need (pyarrow, fastavro and deltalake in tests/.venv; the AssemblyScript SDK and
# plugins, built with npm), then the SDK's own node tests and the whole Rust workspace.
# The wasm target comes from rust-toolchain.toml; the built-in plugins are built by host/build.rs.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=tests/.venv
if ! "$venv/bin/python" -c "import pyarrow, fastavro, deltalake" 2>/dev/null; then
  echo "tests/run.sh: installing pyarrow, fastavro and deltalake into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
export WEIR_PYTHON="$PWD/$venv/bin/python"

# AssemblyScript: npm ci and build (SDK test modules, plugins/fx-rate, plugins/filter-as).
./tests/build-assemblyscript.sh
(cd guest-sdk/assemblyscript && node --test tests/)

# Release builds: the same artifacts as the demo, and wasm compilation at full speed.
cargo test --release --workspace "$@"
