#!/usr/bin/env bash
# Installs Tansu, a Kafka-protocol broker written in Rust, once per machine, and prints the path of
# its binary. The e2e tests start it on 127.0.0.1 (SQLite storage) for what the in-process mock
# cluster cannot show: kills and restarts against a real broker. The build takes about 25 minutes
# on 2 cores; it is cached in ~/.cache/weir (or $WEIR_CACHE).
set -euo pipefail
version=0.6.0
root="${WEIR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}/tansu-$version"
if [ ! -x "$root/bin/tansu" ]; then
  echo "tests/tansu.sh: building Tansu $version into $root (once; about 25 minutes on 2 cores)" >&2
  # dynostore: memory:// storage (throughput runs); libsql: sqlite:// (tests that resume or seek).
  cargo install tansu --version "$version" --features dynostore,libsql --root "$root" --quiet >&2
fi
echo "$root/bin/tansu"
