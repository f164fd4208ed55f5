#!/usr/bin/env bash
# Whole-process benchmarks of the release binary (see BENCHMARKS.md), one case per goal of the
# performance issues. A render whose inputs did not change is answered from the memo (the text
# it wrote last time); a "memo hit" row measures exactly that. A "memo miss" row either changes
# one value before every run (that plugin runs) or forgets everything remembered (every plugin
# runs); the compiled code stays cached. Cases: postgres + redis
# (hit, and against `kubectl kustomize` on the same objects as static files; miss); first render
# with an empty cache (precompiled official plugins); a new plugin with an empty cache (compiled
# on the spot); 50 plugins and one plugin returning 1000 objects (hit and miss); peak memory;
# `--version` beside an empty Rust binary; plugin sizes. Prints hyperfine medians and ratios from
# this one run; copy them into BENCHMARKS.md with the machine's description.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
host="$root/target/release/mathison-host"
plugins="${MATHISON_BENCH_PLUGINS:-$root/target/wasm32-wasip2/plugin}"
[ -x "$host" ] || { echo "build the host first: make host" >&2; exit 1; }
[ -e "$plugins/mathison_fixture_hostile.wasm" ] || { echo "build the plugins first: make bench" >&2; exit 1; }

for tool in hyperfine perl python3; do
    command -v "$tool" >/dev/null && continue
    [ "$tool" = hyperfine ] && [ "$(id -u)" -eq 0 ] || { echo "$tool is missing" >&2; exit 1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cache="$work/cache"
runs="${RUNS:-40}"

# measure NAME [hyperfine options...] -- COMMAND: runs COMMAND and prints "NAME: median ms".
measure() {
    local name="$1" json="$work/$RANDOM.json"
    shift
    local options=()
    while [ "$1" != "--" ]; do options+=("$1"); shift; done
    shift
    hyperfine -N --warmup 3 --runs "$runs" --style none "${options[@]}" --export-json "$json" "$*" >/dev/null
    python3 - "$name" "$json" <<'EOF'
import json, sys
result = json.load(open(sys.argv[2]))["results"][0]
print(f"{sys.argv[1]}: median {result['median'] * 1e3:.2f} ms (min {result['min'] * 1e3:.2f}, max {result['max'] * 1e3:.2f})")
EOF
}
median() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['results'][0]['median'])" "$1"; }

# The official plugins, precompiled (as `make plugins` ships them), in a folder of their own.
official="$work/official"
mkdir -p "$official"
cp "$plugins"/mathison_plugin_{postgres,redis}.wasm "$official/"
"$host" compile "$official"/mathison_plugin_{postgres,redis}.wasm
render="$host render -p $official/mathison_plugin_postgres.wasm -p $official/mathison_plugin_redis.wasm"

# A plugin of the shape `mathison-host new` scaffolds (a ConfigMap, a Service and a connection
# value), as a user would write one: the "new plugin" case, and 50 same-length renames of it.
scaffold="$root/target/bench/bench-plugin-00"
if [ ! -e "$scaffold" ]; then
    mkdir -p "$(dirname "$scaffold")"
    "$host" new bench-plugin-00 --path "$scaffold" >/dev/null
fi
(cd "$scaffold" && cargo build --quiet --profile plugin --target wasm32-wasip2)
template="$scaffold/target/wasm32-wasip2/plugin/mathison_plugin_bench_plugin_00.wasm"

forget="rm -rf $cache/memo"
# A plugin file that changed in the last two seconds is read and hashed on every render (its
# stamp could not yet tell a later change, see host/src/memo.rs); the files users render are
# older. The plugins above were just written.
sleep 2

echo "## postgres + redis to stdout"
$render --cache-dir "$cache" >/dev/null 2>&1
measure "memo hit (unchanged inputs)" -- "$render --cache-dir $cache"
# A value of one plugin changed before every run (a new database name): that plugin runs, the
# other's answer and both plugins' descriptions come from the memo.
changed="$work/changed-values.yaml"
measure "memo miss (a changed value), compiled code cached" \
    --prepare "sh -c 'printf \"postgres:\\n  database: d%s\\n\" \$(date +%s%N) > $changed'" \
    -- "$render --cache-dir $cache -f $changed"
measure "memo miss (nothing remembered), compiled code cached" --prepare "$forget" -- "$render --cache-dir $cache"
measure "first render, empty cache, precompiled plugins" --prepare "rm -rf $work/empty" \
    -- "$render --cache-dir $work/empty --allow-precompiled"
# Plugins the machine has never seen: the scaffolded one, and postgres without its precompiled
# file.
measure "a new plugin ($(stat -c %s "$template") bytes), empty cache" \
    --prepare "rm -rf $work/empty" -- "$host render --cache-dir $work/empty -p $template"
measure "postgres, not precompiled ($(stat -c %s "$official/mathison_plugin_postgres.wasm") bytes), empty cache" \
    --prepare "rm -rf $work/empty" -- "$host render --cache-dir $work/empty -p $official/mathison_plugin_postgres.wasm"
measure "no cache at all (--no-cache, compile every run)" -- "$render --no-cache"

echo
echo "## against kubectl kustomize on the same objects as static files"
if command -v kubectl >/dev/null; then
    mkdir -p "$work/static"
    $render --cache-dir "$cache" -o "$work/static" 2>/dev/null
    printf 'resources:\n- postgres.yaml\n- redis.yaml\n- mathison-host.yaml\n' > "$work/static/kustomization.yaml"
    hyperfine -N --warmup 3 --runs "$runs" --style none --export-json "$work/ours.json" \
        "$render --cache-dir $cache" >/dev/null
    hyperfine -N --warmup 3 --runs "$runs" --style none --export-json "$work/kustomize.json" \
        "kubectl kustomize $work/static" >/dev/null
    python3 - "$(median "$work/ours.json")" "$(median "$work/kustomize.json")" <<'EOF'
import sys
ours, kustomize = (float(x) * 1e3 for x in sys.argv[1:])
print(f"mathison-host render (memo hit): median {ours:.2f} ms")
print(f"kubectl kustomize (static files): median {kustomize:.2f} ms")
print(f"ratio: {kustomize / ours:.1f}x faster")
EOF
else
    echo "kubectl is not installed: comparison skipped"
fi

echo
echo "## 50 plugins"
fifty=()
for i in $(seq -w 1 50); do
    perl -0777 -pe "s/bench-plugin-00/bench-plugin-$i/g; s/BENCH_PLUGIN_00/BENCH_PLUGIN_$i/g" \
        "$template" > "$work/bench-$i.wasm"
    fifty+=(-p "$work/bench-$i.wasm")
done
sleep 2
"$host" render --cache-dir "$cache" "${fifty[@]}" >/dev/null
measure "50 plugins, memo hit" -- "$host render --cache-dir $cache ${fifty[*]}"
measure "50 plugins, memo miss, compiled code cached" --prepare "$forget" -- "$host render --cache-dir $cache ${fifty[*]}"

echo
echo "## one plugin returning 1000 objects"
many="$host render --cache-dir $cache -p $plugins/mathison_fixture_hostile.wasm --set hostile.behaviour=many --set hostile.count=1000"
$many >/dev/null
measure "1000 ConfigMaps, memo hit" -- "$many"
measure "1000 ConfigMaps, memo miss, compiled code cached" --prepare "$forget" -- "$many"

echo
echo "## peak memory (max RSS) of a memo hit, postgres + redis (median of 11)"
for _ in $(seq 11); do
    /usr/bin/time -f "%M" $render --cache-dir "$cache" 2>&1 >/dev/null | tail -1
done | sort -n | sed -n 6p | awk '{printf "%.1f MB (%d KiB)\n", $1 * 1024 / 1e6, $1}'

echo
echo "## process start: --version beside an empty Rust binary"
printf 'fn main() {}\n' > "$work/empty-binary.rs"
rustc -C opt-level=3 -o "$work/empty-binary" "$work/empty-binary.rs"
# The two start in turns, 1000 times each: sub-millisecond medians measured one series after
# the other drifted apart with the machine's load by more than the difference measured.
python3 - "$work/empty-binary" "$host" <<'EOF'
import os, statistics, sys, time
empty, host = sys.argv[1:]
commands = [[empty], [host, "--version"]]
null = os.open(os.devnull, os.O_WRONLY)
times = [[], []]
for round in range(1010):
    for command, series in zip(commands, times):
        start = time.perf_counter_ns()
        child = os.posix_spawn(command[0], command, os.environ, file_actions=[(os.POSIX_SPAWN_DUP2, null, 1)])
        os.waitpid(child, 0)
        if round >= 10:  # the first rounds warm the page cache
            series.append(time.perf_counter_ns() - start)
empty_ms, version_ms = (statistics.median(series) / 1e6 for series in times)
print(f"mathison-host --version: median {version_ms:.3f} ms; empty Rust binary: {empty_ms:.3f} ms; ratio {version_ms / empty_ms:.2f}x (started in turns, 1000 each)")
EOF

echo
echo "## plugin sizes"
ls -l "$plugins"/mathison_plugin_*.wasm | awk '{printf "%s %d bytes\n", $NF, $5}'
