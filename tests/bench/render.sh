#!/usr/bin/env bash
# Whole-process benchmarks of the release binary (see BENCHMARKS.md): renders of postgres + redis
# compiling every time, with an empty cache and warm; `kubectl kustomize` on the same output as
# static files, for comparison; one plugin returning 1000 objects; peak memory of a warm render.
# Medians from hyperfine; copy the figures into BENCHMARKS.md with the machine's description.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
host="$root/target/release/mathison-host"
plugins="${MATHISON_BENCH_PLUGINS:-$root/target/wasm32-wasip2/plugin}"
[ -x "$host" ] || { echo "build the host first: make host" >&2; exit 1; }
[ -e "$plugins/mathison_fixture_hostile.wasm" ] || { echo "build the plugins first: make bench" >&2; exit 1; }

if ! command -v hyperfine >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "hyperfine is missing: apt-get install hyperfine" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cache="$work/cache"
render="$host render --plugin-path $plugins -p postgres -p redis"
runs="${RUNS:-30}"

echo "## postgres + redis to stdout"
# One --prepare per command: only the empty-cache case clears the cache before each run.
hyperfine --warmup 3 --runs "$runs" --style none --export-markdown "$work/render.md" \
    --prepare true --prepare "rm -rf $cache" --prepare true \
    -n "no cache (compile every run)" "$render --no-cache" \
    -n "empty cache (compile + store)" "$render --cache-dir $cache" \
    -n "warm cache" "$render --cache-dir $cache" >/dev/null
cat "$work/render.md"

echo
echo "## against kubectl kustomize on the same objects as static files"
if command -v kubectl >/dev/null; then
    mkdir -p "$work/static"
    $render --cache-dir "$cache" -o "$work/static" 2>/dev/null
    printf 'resources:\n- postgres.yaml\n- redis.yaml\n- mathison-host.yaml\n' > "$work/static/kustomization.yaml"
    hyperfine --warmup 3 --runs "$runs" --style none --export-markdown "$work/kustomize.md" \
        -n "mathison-host render (warm)" "$render --cache-dir $cache" \
        -n "kubectl kustomize (static files)" "kubectl kustomize $work/static" >/dev/null
    cat "$work/kustomize.md"
else
    echo "kubectl is not installed: comparison skipped"
fi

echo
echo "## one plugin returning 1000 objects (warm)"
hyperfine --warmup 3 --runs "$runs" --style none --export-markdown "$work/many.md" \
    -n "1000 ConfigMaps" \
    "$host render --cache-dir $cache -p $plugins/mathison_fixture_hostile.wasm --set hostile.behaviour=many --set hostile.count=1000" >/dev/null
cat "$work/many.md"

echo
echo "## peak memory (max RSS) of a warm render"
/usr/bin/time -f "%M KiB" $render --cache-dir "$cache" 2>&1 >/dev/null | tail -1

echo
echo "## plugin sizes"
ls -l "$plugins"/mathison_plugin_*.wasm | awk '{printf "%s %d bytes\n", $NF, $5}'
