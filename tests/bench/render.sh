#!/usr/bin/env bash
# Measures a render of postgres + redis with the release binary: compiling every time
# (--no-cache), with an empty cache (compile and store), and warm (compiled code from the cache).
# Prints hyperfine's markdown table; copy the figures into BENCHMARKS.md with the machine's specs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
host="$root/target/release/mathison-host"
plugins="${MATHISON_BENCH_PLUGINS:-$root/target/wasm32-wasip2/plugin}"
[ -x "$host" ] || { echo "build the host first: make host" >&2; exit 1; }

if ! command -v hyperfine >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi

cache="$(mktemp -d)"
trap 'rm -rf "$cache"' EXIT
render=("$host" render --plugin-path "$plugins" -p postgres -p redis)

# One --prepare per command: only the empty-cache case clears the cache before each run.
hyperfine --warmup 2 --runs "${RUNS:-20}" --export-markdown /dev/stdout --style none \
    --prepare true --prepare "rm -rf $cache/*" --prepare true \
    -n "no cache (compile every run)" "${render[*]} --no-cache" \
    -n "empty cache (compile + store)" "${render[*]} --cache-dir $cache" \
    -n "warm cache" "${render[*]} --cache-dir $cache"
