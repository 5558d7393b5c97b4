#!/usr/bin/env bash
# Builds the AssemblyScript side: the SDK's test modules (guest-sdk/assemblyscript/build/*.wasm)
# and the AssemblyScript plugins (plugins/fx-rate, plugins/filter-as -> build/NAME.wasm), for the
# interop tests in tests/e2e/assemblyscript.rs. Installs each package's locked dependencies with
# `npm ci` when they are missing or stale; rebuilds a module only when a source is newer. Quick
# when everything is already built.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v npm >/dev/null; then
  echo "tests/build-assemblyscript.sh: npm is needed (node 20 or later)" >&2
  exit 1
fi

# npm ci, unless node_modules already matches the lockfile.
install() {
  local dir=$1
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "tests/build-assemblyscript.sh: npm ci in $dir" >&2
    local out
    if ! out=$(cd "$dir" && npm ci --no-audit --no-fund 2>&1); then
      echo "$out" >&2
      exit 1
    fi
  fi
}

# Whether any file of the SDK or of the plugin is newer than its output.
stale() {
  local out=$1; shift
  [ ! -f "$out" ] || [ -n "$(find "$@" -newer "$out" \( -name '*.ts' -o -name '*.json' \) -not -path '*/node_modules/*' -print -quit)" ]
}

sdk=guest-sdk/assemblyscript
install "$sdk"
(cd "$sdk" && node build.mjs)

for plugin in fx-rate filter-as; do
  dir=plugins/$plugin
  install "$dir"
  if stale "$dir/build/$plugin.wasm" "$dir/assembly" "$dir/asconfig.json" "$sdk/assembly" "$sdk/plugin.asconfig.json"; then
    (cd "$dir" && npm run --silent build)
    echo "built $dir/build/$plugin.wasm"
  fi
done
