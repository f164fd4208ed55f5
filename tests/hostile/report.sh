#!/usr/bin/env bash
# Runs every hostile case against the release binary and prints a markdown table of what the
# host answered and what it cost: exit code, error line, wall seconds and peak RSS.
#
#   bash tests/hostile/report.sh            # builds what it needs first
#
# Timings are measured here, never asserted in tests (they depend on the machine). Each case
# renders beside the redis plugin, as tests/integration/limits.rs does, with a warm compiled-
# plugin cache, so the numbers show the cost of the refusal, not of compiling.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

if [[ ! -x /usr/bin/time ]]; then
    apt-get update -qq && apt-get install -y -qq time >/dev/null
fi

# The same build the integration tests use: the release binary and the guests.
cargo test --release -p mathison-host --test integration --no-run --quiet 2>/dev/null ||
    cargo test --release -p mathison-host --test integration --no-run

# MATHISON_HOST_BINARY runs the cases against another build (e.g. an earlier release).
host="${MATHISON_HOST_BINARY:-$root/target/release/mathison-host}"
guests="$root/target/guests/wasm32-wasip2/plugin"
redis="$guests/mathison_plugin_redis.wasm"
hostile="$guests/mathison_fixture_hostile.wasm"
info="$guests"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export MATHISON_CACHE_DIR="$work/cache"

# Files that are not components, made here as the tests make them.
printf '\0asm\1\0\0\0' >"$work/core.wasm"
: >"$work/empty.wasm"
head -c "$(($(stat -c %s "$redis") / 2))" "$redis" >"$work/truncated.wasm"

# name | plugin | extra arguments (word-split on purpose)
cases=(
    "endless loop in render|$hostile|--set hostile.behaviour=loop"
    "endless loop in info|$guests/mathison_fixture_info_loop.wasm|"
    "sleep for an hour (blocking host call)|$hostile|--set hostile.behaviour=sleep"
    "unbounded allocation (--max-memory 64Mi)|$hostile|--set hostile.behaviour=allocate --max-memory 64Mi"
    "stack overflow|$hostile|--set hostile.behaviour=recurse"
    "panic|$hostile|--set hostile.behaviour=panic"
    "unreachable trap|$hostile|--set hostile.behaviour=unreachable"
    "flood of 1e6 objects|$hostile|--set hostile.behaviour=flood"
    "flood of 1e6 objects (--max-memory 1Gi)|$hostile|--set hostile.behaviour=flood --max-memory 1Gi"
    "one 32 MiB string|$hostile|--set hostile.behaviour=huge-string"
    "plugin-reported error|$hostile|--set hostile.behaviour=invalid-config"
    "undeclared kind|$hostile|--set hostile.behaviour=undeclared-kind"
    "other namespace|$hostile|--set hostile.behaviour=other-namespace"
    "ClusterRoleBinding without --allow-rbac|$hostile|--set hostile.behaviour=cluster-role-binding"
    "Namespace without --allow-cluster-scoped|$hostile|--set hostile.behaviour=namespace"
    "the user's Secret mathison-secrets|$hostile|--set hostile.behaviour=user-secret"
    "bad quantity|$hostile|--set hostile.behaviour=bad-quantity"
    "invalid JSON body|$hostile|--set hostile.behaviour=invalid-json"
    "100 000-deep JSON body|$hostile|--set hostile.behaviour=deep-json"
    "missing apiVersion|$hostile|--set hostile.behaviour=missing-api-version"
    "malformed kind|$hostile|--set hostile.behaviour=bad-kind"
    "one object twice|$hostile|--set hostile.behaviour=duplicate"
    "imports evil:net/socket|$root/target/guests/wat/evil-import.wasm|"
    "imports wasi:http/outgoing-handler|$root/target/guests/wat/http-import.wasm|"
    "WIT mathison:plugin@0.2.0|$guests/mathison_fixture_wit_next.wasm|"
    "core module|$work/core.wasm|"
    "empty file|$work/empty.wasm|"
    "truncated file|$work/truncated.wasm|"
    "too-large file (--max-plugin-size 1Ki)|$redis|--max-plugin-size 1Ki"
    "file, env, socket, clock, random (renders; sees nothing)|$hostile|--set hostile.behaviour=escape"
    "built-in cluster-scoped kind without a type (PriorityClass)|$hostile|--set hostile.behaviour=priority-class"
    "PriorityClass passed off as namespaced|$hostile|--set hostile.behaviour=priority-class-namespaced"
    "unknown kind with a namespace|$hostile|--set hostile.behaviour=unknown-kind"
    "v1 List carrying a RoleBinding|$hostile|--set hostile.behaviour=list"
    "another plugin's secret input (renders; gets nothing)|$hostile|--set hostile.behaviour=steal-secret -p $guests/mathison_plugin_postgres.wasm --secret-input postgres.postgres-password=env:HOME"
    "schema whose \$refs multiply (2^40 nodes)|$info/mathison_fixture_hostile_info_ref_fan_out.wasm|"
    "pattern that needs backtracking|$info/mathison_fixture_hostile_info_lookaround_pattern.wasm|"
    "self-referencing schema (renders)|$info/mathison_fixture_hostile_info_self_reference.wasm|"
    "300 000 declared kinds|$info/mathison_fixture_hostile_info_many_kinds.wasm|"
    "10 million empty log lines|$hostile|--set hostile.behaviour=log-flood"
    "300 000 tiny objects|$hostile|--set hostile.behaviour=tiny-objects"
    "escape sequences in a field error|$hostile|--set hostile.behaviour=terminal"
    "escape sequences in an object name|$hostile|--set hostile.behaviour=terminal-name"
    "escape sequences in a declared kind|$info/mathison_fixture_hostile_info_bad_kind.wasm|"
    "the host's ConfigMap mathison-connections|$hostile|--set hostile.behaviour=host-object"
    "the ApplySet parent Secret|$hostile|--set hostile.behaviour=applyset-parent"
    "a plugin calling itself redis|$info/mathison_fixture_hostile_info_redis.wasm|"
    "a 300-character connection key|$hostile|--set hostile.behaviour=long-key"
    "an invalid label value|$hostile|--set hostile.behaviour=bad-label"
    "an invalid ConfigMap key|$hostile|--set hostile.behaviour=bad-data-key"
)

# Warm the cache for every plugin; a near-zero timeout keeps the endless `info` short.
for plugin in "$redis" "$hostile" "$guests/mathison_fixture_info_loop.wasm" \
    "$guests/mathison_fixture_wit_next.wasm" "$root"/target/guests/wat/*.wasm \
    "$guests"/mathison_fixture_hostile_info_*.wasm; do
    "$host" inspect "$plugin" --timeout 1ms >/dev/null 2>&1 || true
done

echo "Limits: --timeout 10s, --max-memory 256Mi, --max-output 16Mi, --max-plugin-size 64Mi"
echo "(the defaults) unless the case says otherwise. $(nproc) cores; $(uname -sm)."
echo
# A case still running after this long is stopped and shows exit code 124 (an earlier build
# checked some schemas without end).
case_limit=120
echo "| case | exit code | error line | seconds | max RSS MiB |"
echo "| --- | --- | --- | --- | --- |"
for case in "${cases[@]}"; do
    IFS='|' read -r name plugin extra <<<"$case"
    # shellcheck disable=SC2086 # `extra` holds several arguments.
    /usr/bin/time -f '%e %M' -o "$work/time" \
        timeout --kill-after=5 "$case_limit" "$host" render -p "$redis" -p "$plugin" $extra \
        >/dev/null 2>"$work/stderr" &&
        code=0 || code=$?
    # GNU time puts "Command exited with non-zero status N" before its own line.
    read -r seconds rss_kib < <(tail -n1 "$work/time")
    error="$(grep -m1 '^error: ' "$work/stderr" || echo '-')"
    error="${error//$root\//}"
    error="${error//$work\//}"
    error="${error//|/\\|}"
    # An earlier build may have let a plugin's control characters through: show them inert.
    error="$(printf '%s' "$error" | cat -v)"
    printf '| %s | %s | %s | %s | %s |\n' "$name" "$code" "$error" "$seconds" \
        "$(awk -v k="$rss_kib" 'BEGIN { printf "%.0f", k / 1024 }')"
done
