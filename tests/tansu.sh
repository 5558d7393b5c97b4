#!/usr/bin/env bash
# Installs Tansu, a Kafka-protocol broker written in Rust, once per machine, and prints the path of
# its binary. The e2e tests start it on 127.0.0.1 (SQLite storage) for what the in-process mock
# cluster cannot show: kills and restarts against a real broker. It is cached in ~/.cache/weir (or
# $WEIR_CACHE). The tests' build is unoptimized, without debug info: about 10 minutes on 2 cores
# instead of 25 for a release build, and fast enough for the test loads. `--release` builds (and
# prints) the release build instead, for the benchmark (tests/bench.sh).
set -euo pipefail
version=0.6.0
cache="${WEIR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weir}"
if [ "${1:-}" = --release ]; then
  root="$cache/tansu-$version" profile=() minutes=25
else
  root="$cache/tansu-$version-debug" profile=(--debug) minutes=10
fi
if [ ! -x "$root/bin/tansu" ]; then
  echo "tests/tansu.sh: building Tansu $version into $root (once; about $minutes minutes on 2 cores)" >&2
  # dynostore: memory:// storage (throughput runs); libsql: sqlite:// (tests that resume or seek).
  CARGO_PROFILE_DEV_DEBUG=0 cargo install tansu --version "$version" --features dynostore,libsql \
    "${profile[@]}" --root "$root" --quiet >&2
fi
echo "$root/bin/tansu"
