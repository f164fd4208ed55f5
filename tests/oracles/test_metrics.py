"""Contract: the metrics exporter sidecars (`metrics.enabled`) use only their exporters' documented
flags and variables, are probed and served on their own port, are open to scrapers only, and
report `pg_up 1` / `redis_up 1` when the real exporter binaries (Debian's) run them as rendered
beside real servers.

The exporter is found the way Kubernetes finds it: the Service port named `metrics`, its
targetPort, the container that declares that port. Every value comes from the render.
"""
from __future__ import annotations

import copy
import re
import shlex
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from oracle_k8s import (Rendered, container_ports, objects_of_kind, only_statefulset_in, pod_labels, pod_spec,
                        service_selector_matches)
from oracle_postgres import POSTGRES_FILE, read_postgres_layout, running_postgres
from oracle_redis import REDIS_FILE, RedisServer, read_redis_layout
from oracle_runtime import as_server_user, free_loopback_port, give_to_server_user, wait_until

# The files these tests read (see conftest.py); tests/oracles/run renders them with metrics on.
RENDERED_FILES = (POSTGRES_FILE, REDIS_FILE)
METRICS_PORT_NAME = "metrics"
SCRAPE_TIMEOUT_S = 30


@dataclass(frozen=True)
class Documented:
    """What an exporter's README documents: flag names (without dashes), environment variables,
    the HTTP paths it serves, its default listen port, and its binary in the official image."""

    flags: frozenset[str]
    env: frozenset[str]
    paths: frozenset[str]
    default_port: int
    image_binary: str
    # The Debian package's binary (an older release, with the same flags and variables we use).
    debian_binary: str
    up_metric: str


# postgres_exporter v0.20.1, README.md, sections "Flags" and "Environment Variables"; `[no-]`
# flags are listed once, by their positive name. Paths: `/` (the landing page) and `/metrics`
# (`web.telemetry-path`'s default). Binary: its Dockerfile's ENTRYPOINT.
POSTGRES_EXPORTER = Documented(
    flags=frozenset({
        "help", "collector.database", "collector.database_wraparound", "collector.locks",
        "collector.long_running_transactions", "collector.postmaster", "collector.process_idle",
        "collector.replication", "collector.replication_slots", "collector.settings", "collector.stat_activity",
        "collector.stat_activity_autovacuum", "collector.stat_archiver", "collector.stat_bgwriter",
        "collector.stat_checkpointer", "collector.stat_database", "collector.stat_progress_vacuum",
        "collector.stat_replication", "collector.stat_statements", "collector.stat_statements.include_query",
        "collector.stat_statements.query_length", "collector.stat_statements.limit",
        "collector.stat_statements.exclude_databases", "collector.stat_statements.exclude_users",
        "collector.stat_user_tables", "collector.stat_wal_receiver", "collector.statio_user_indexes",
        "collector.statio_user_tables", "collector.wal", "collector.xlog_location", "config.file",
        "web.systemd-socket", "web.listen-address", "web.config.file", "web.telemetry-path",
        "disable-default-metrics", "auto-discover-databases", "extend.query-path", "dumpmaps", "constantLabels",
        "version", "exclude-databases", "include-databases", "log.level", "log.format",
    }),
    env=frozenset({
        "DATA_SOURCE_NAME", "DATA_SOURCE_URI", "DATA_SOURCE_URI_FILE", "DATA_SOURCE_USER", "DATA_SOURCE_USER_FILE",
        "DATA_SOURCE_PASS", "DATA_SOURCE_PASS_FILE", "PG_EXPORTER_COLLECTION_TIMEOUT",
        "PG_EXPORTER_WEB_TELEMETRY_PATH", "PG_EXPORTER_DISABLE_DEFAULT_METRICS",
        "PG_EXPORTER_AUTO_DISCOVER_DATABASES", "PG_EXPORTER_EXTEND_QUERY_PATH", "PG_EXPORTER_CONSTANT_LABELS",
        "PG_EXPORTER_EXCLUDE_DATABASES", "PG_EXPORTER_INCLUDE_DATABASES", "PG_EXPORTER_METRIC_PREFIX",
    }),
    paths=frozenset({"/", "/metrics"}),
    default_port=9187,
    image_binary="/bin/postgres_exporter",
    debian_binary="/usr/bin/prometheus-postgres-exporter",
    up_metric="pg_up",
)

# redis_exporter v1.88.0, README.md, section "Command line flags" (each flag with its variable).
# Paths: `/` (the index page) and `/metrics` (`web.telemetry-path`'s default). Binary: its
# Dockerfile's ENTRYPOINT.
_REDIS_FLAGS_AND_ENV = {
    "redis.addr": "REDIS_ADDR", "redis.user": "REDIS_USER", "redis.password": "REDIS_PASSWORD",
    "redis.password-file": "REDIS_PASSWORD_FILE", "check-keys": "REDIS_EXPORTER_CHECK_KEYS",
    "check-single-keys": "REDIS_EXPORTER_CHECK_SINGLE_KEYS", "check-streams": "REDIS_EXPORTER_CHECK_STREAMS",
    "check-single-streams": "REDIS_EXPORTER_CHECK_SINGLE_STREAMS",
    "streams-exclude-consumer-metrics": "REDIS_EXPORTER_STREAMS_EXCLUDE_CONSUMER_METRICS",
    "check-keys-batch-size": "REDIS_EXPORTER_CHECK_KEYS_BATCH_SIZE", "count-keys": "REDIS_EXPORTER_COUNT_KEYS",
    "script": "REDIS_EXPORTER_SCRIPT", "lua-script-read-only": "REDIS_EXPORTER_LUA_SCRIPT_READ_ONLY",
    "debug": "REDIS_EXPORTER_DEBUG", "log-level": "REDIS_EXPORTER_LOG_LEVEL",
    "log-format": "REDIS_EXPORTER_LOG_FORMAT", "namespace": "REDIS_EXPORTER_NAMESPACE",
    "connection-timeout": "REDIS_EXPORTER_CONNECTION_TIMEOUT",
    "web.listen-address": "REDIS_EXPORTER_WEB_LISTEN_ADDRESS",
    "web.telemetry-path": "REDIS_EXPORTER_WEB_TELEMETRY_PATH",
    "redis-only-metrics": "REDIS_EXPORTER_REDIS_ONLY_METRICS",
    "include-go-runtime-metrics": "REDIS_EXPORTER_INCLUDE_GO_RUNTIME_METRICS",
    "include-config-metrics": "REDIS_EXPORTER_INCL_CONFIG_METRICS",
    "include-system-metrics": "REDIS_EXPORTER_INCL_SYSTEM_METRICS",
    "include-rdb-file-size-metric": "REDIS_EXPORTER_INCL_RDB_FILE_SIZE_METRIC",
    "include-modules-metrics": "REDIS_EXPORTER_INCL_MODULES_METRICS",
    "include-search-indexes-metrics": "REDIS_EXPORTER_INCL_SEARCH_INDEXES_METRICS",
    "check-search-indexes": "REDIS_EXPORTER_CHECK_SEARCH_INDEXES",
    "exclude-latency-histogram-metrics": "REDIS_EXPORTER_EXCLUDE_LATENCY_HISTOGRAM_METRICS",
    "redact-config-metrics": "REDIS_EXPORTER_REDACT_CONFIG_METRICS",
    "ping-on-connect": "REDIS_EXPORTER_PING_ON_CONNECT", "is-tile38": "REDIS_EXPORTER_IS_TILE38",
    "is-cluster": "REDIS_EXPORTER_IS_CLUSTER",
    "cluster-discover-hostnames": "REDIS_EXPORTER_CLUSTER_DISCOVER_HOSTNAMES",
    "export-client-list": "REDIS_EXPORTER_EXPORT_CLIENT_LIST",
    "export-client-port": "REDIS_EXPORTER_EXPORT_CLIENT_PORT",
    "skip-tls-verification": "REDIS_EXPORTER_SKIP_TLS_VERIFICATION",
    "tls-server-name": "REDIS_EXPORTER_TLS_SERVER_NAME",
    "tls-client-key-file": "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE",
    "tls-client-cert-file": "REDIS_EXPORTER_TLS_CLIENT_CERT_FILE",
    "tls-server-key-file": "REDIS_EXPORTER_TLS_SERVER_KEY_FILE",
    "tls-server-cert-file": "REDIS_EXPORTER_TLS_SERVER_CERT_FILE",
    "tls-server-ca-cert-file": "REDIS_EXPORTER_TLS_SERVER_CA_CERT_FILE",
    "tls-server-min-version": "REDIS_EXPORTER_TLS_SERVER_MIN_VERSION",
    "tls-ca-cert-file": "REDIS_EXPORTER_TLS_CA_CERT_FILE", "set-client-name": "REDIS_EXPORTER_SET_CLIENT_NAME",
    "check-key-groups": "REDIS_EXPORTER_CHECK_KEY_GROUPS",
    "max-distinct-key-groups": "REDIS_EXPORTER_MAX_DISTINCT_KEY_GROUPS",
    "config-command": "REDIS_EXPORTER_CONFIG_COMMAND", "basic-auth-username": "REDIS_EXPORTER_BASIC_AUTH_USERNAME",
    "basic-auth-password": "REDIS_EXPORTER_BASIC_AUTH_PASSWORD",
    "basic-auth-hash-password": "REDIS_EXPORTER_BASIC_AUTH_HASH_PASSWORD",
    "disable-scrape-endpoint": "REDIS_EXPORTER_DISABLE_SCRAPE_ENDPOINT",
    "include-metrics-for-empty-databases": "REDIS_EXPORTER_INCL_METRICS_FOR_EMPTY_DATABASES",
    "append-instance-role-label": "REDIS_EXPORTER_APPEND_INSTANCE_ROLE_LABEL",
}
REDIS_EXPORTER = Documented(
    flags=frozenset(_REDIS_FLAGS_AND_ENV), env=frozenset(_REDIS_FLAGS_AND_ENV.values()),
    paths=frozenset({"/", "/metrics"}), default_port=9121, image_binary="/redis_exporter",
    debian_binary="/usr/bin/prometheus-redis-exporter", up_metric="redis_up",
)
DOCUMENTED = {POSTGRES_FILE: POSTGRES_EXPORTER, REDIS_FILE: REDIS_EXPORTER}
# A `sh -c` wrapper may do this much and no more: read files into documented variables, export
# them, and exec the exporter with the container's args.
WRAPPER = re.compile(r'set -e; (?P<assignments>(?:[A-Z_]+="\$\(cat [^\s()"]+\)"; export [A-Z_]+; )*)'
                     r'exec (?P<binary>\S+) "\$@"')


@dataclass(frozen=True)
class Sidecar:
    workload: Rendered
    service: Rendered
    service_port: dict
    container: dict
    server: dict
    documented: Documented

    @property
    def argv_flags(self) -> list[str]:
        return [arg for arg in self.container.get("args", [])]

    @property
    def env(self) -> dict[str, str]:
        return {item["name"]: item.get("value") for item in self.container.get("env", [])}

    def listen_port(self) -> int:
        address = next((arg.split("=", 1)[1] for arg in self.argv_flags
                        if arg.startswith("--web.listen-address=")), f":{self.documented.default_port}")
        return int(address.rsplit(":", 1)[1])

    def wrapper(self) -> re.Match | None:
        """The `sh -c` script's parts, or None when the image's entrypoint runs the exporter."""
        command = self.container.get("command")
        if command is None:
            return None
        assert command[:2] == ["sh", "-c"] and len(command) == 4, f"{self.ref}: unexpected command {command}"
        match = WRAPPER.fullmatch(command[2])
        assert match, f"{self.ref}: the wrapper does more than read files and exec: {command[2]!r}"
        return match

    @property
    def ref(self) -> str:
        return f"{self.workload.ref} container {self.container['name']}"


def find_sidecar(objects, file: str) -> Sidecar:
    workload = only_statefulset_in(objects, file)
    services = [s for s in objects_of_kind(objects, "Service") if s.file == file
                and service_selector_matches(s.obj["spec"].get("selector") or {}, pod_labels(workload.obj))]
    ports = [(s, p) for s in services for p in s.obj["spec"].get("ports", []) if p.get("name") == METRICS_PORT_NAME]
    assert len(ports) == 1, f"{file}: expected one Service port named {METRICS_PORT_NAME}, found {len(ports)}"
    service, port = ports[0]
    target = port.get("targetPort", port["port"])
    containers = pod_spec(workload.obj)["containers"]
    exporters = [c for c in containers if target in container_ports(c)]
    assert len(exporters) == 1, f"{service.ref}: targetPort {target!r} is not the port of one container"
    servers = [c for c in containers if c is not exporters[0]]
    assert len(servers) == 1, f"{workload.ref}: expected the server and its exporter, found {len(containers)}"
    return Sidecar(workload, service, port, exporters[0], servers[0], DOCUMENTED[file])


@pytest.fixture(scope="module", params=RENDERED_FILES)
def sidecar(request, objects) -> Sidecar:
    return find_sidecar(objects, request.param)


def flag_name(arg: str) -> str:
    assert arg.startswith("--"), f"{arg!r} is not a --flag"
    name = arg[2:].split("=", 1)[0]
    return name[3:] if name.startswith("no-") else name


def test_flags_and_variables_are_documented(sidecar):
    undocumented = [arg for arg in sidecar.argv_flags if flag_name(arg) not in sidecar.documented.flags]
    undocumented += [f"env {name}" for name in sidecar.env if name not in sidecar.documented.env]
    wrapper = sidecar.wrapper()
    if wrapper is not None:
        assert wrapper["binary"] == sidecar.documented.image_binary, wrapper["binary"]
        assigned = re.findall(r'([A-Z_]+)="', wrapper["assignments"])
        undocumented += [f"variable {name}" for name in assigned if name not in sidecar.documented.env]
    assert not undocumented, f"{sidecar.ref}: not in the exporter's README: {undocumented}"


def test_no_secret_in_the_pod_spec_environment(sidecar):
    from_secrets = [item["name"] for item in sidecar.container.get("env", [])
                    if "secretKeyRef" in (item.get("valueFrom") or {})]
    assert not from_secrets, f"{sidecar.ref}: secrets as variables {from_secrets}; mount them as files"


def test_probes_target_the_metrics_port(sidecar):
    port = next(p for p in sidecar.container["ports"] if sidecar.service_port.get("targetPort") in
                (p.get("name"), p["containerPort"]))
    assert port["containerPort"] == sidecar.listen_port(), f"{sidecar.ref}: declares {port}, listens elsewhere"
    for kind in ("livenessProbe", "readinessProbe"):
        http = (sidecar.container.get(kind) or {}).get("httpGet")
        assert http, f"{sidecar.ref}: no HTTP {kind}"
        assert http["port"] in (port.get("name"), port["containerPort"]), f"{sidecar.ref} {kind}: {http}"
        assert http.get("path", "/") in sidecar.documented.paths, f"{sidecar.ref} {kind}: {http}"


def test_service_metrics_port_targets_the_exporter(sidecar):
    target = sidecar.service_port.get("targetPort", sidecar.service_port["port"])
    assert target in container_ports(sidecar.container)
    assert target not in container_ports(sidecar.server), f"{sidecar.service.ref}: metrics reach the server"


def test_hardened_like_the_server(sidecar):
    assert sidecar.container.get("securityContext") == sidecar.server.get("securityContext")
    context = sidecar.container["securityContext"]
    assert context["readOnlyRootFilesystem"] and context["runAsNonRoot"]
    assert not context["allowPrivilegeEscalation"] and context["capabilities"]["drop"] == ["ALL"]
    resources = sidecar.container.get("resources") or {}
    assert set(resources.get("requests", {})) >= {"cpu", "memory"}
    assert set(resources.get("limits", {})) >= {"cpu", "memory"}


def test_network_policy_opens_the_metrics_port_to_scrapers_only(sidecar, objects):
    numbers = {p["name"]: p["containerPort"] for p in sidecar.container["ports"] + sidecar.server["ports"]}
    metrics = sidecar.listen_port()
    server_ports = {p["containerPort"] for p in sidecar.server["ports"]}
    policies = [p for p in objects_of_kind(objects, "NetworkPolicy")
                if service_selector_matches(p.obj["spec"]["podSelector"].get("matchLabels", {}),
                                            pod_labels(sidecar.workload.obj))]
    assert policies, f"no NetworkPolicy selects {sidecar.workload.ref}"
    rules = [rule for policy in policies for rule in policy.obj["spec"].get("ingress", [])]
    ports_of = [{numbers.get(p["port"], p["port"]) for p in rule.get("ports", [])} for rule in rules]
    metric_rules = [rule for rule, ports in zip(rules, ports_of) if metrics in ports]
    assert metric_rules, f"no ingress rule admits scrapers to {metrics}"
    for rule, ports in zip(rules, ports_of):
        assert ports, f"a rule without ports opens every port: {rule}"
        if metrics in ports:
            assert ports == {metrics}, f"the scrapers' rule opens more than the metrics port: {rule}"
            assert all(peer.get("podSelector", {}).get("matchLabels") for peer in rule["from"]), rule
    client_rules = [rule for rule, ports in zip(rules, ports_of) if ports & server_ports]
    assert client_rules and all(rule not in metric_rules for rule in client_rules)


# --- the real exporters ------------------------------------------------------------------------

def without_exporter(objects, sidecar: Sidecar) -> list[Rendered]:
    """The render as the server's contract fixtures read it: its pod without the exporter."""
    obj = copy.deepcopy(sidecar.workload.obj)
    spec = obj["spec"]["template"]["spec"]
    spec["containers"] = [c for c in spec["containers"] if c["name"] != sidecar.container["name"]]
    return [Rendered(item.file, item.index, obj) if item is sidecar.workload else item for item in objects]


def with_loopback_port(url: str, port: int) -> str:
    """The rendered address with the test server's port; the host must be loopback already."""
    scheme = "" if "://" in url else "x://"
    parts = urlsplit(scheme + url)
    assert parts.hostname in ("127.0.0.1", "localhost"), f"the exporter must reach its own pod: {url}"
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{port}"
    adapted = urlunsplit(parts._replace(netloc=netloc))
    return adapted[len(scheme):]


def run_exporter(sidecar: Sidecar, pod, env: dict[str, str], log: Path) -> tuple[subprocess.Popen, int]:
    """The Debian binary with the rendered args (listening on a free loopback port) and env;
    absolute paths of files in the emulated pod point at their scratch copies."""
    binary = sidecar.documented.debian_binary
    assert Path(binary).is_file(), f"{binary} is missing: run .ci/install-deps"
    port = free_loopback_port()
    args = [f"--web.listen-address=127.0.0.1:{port}" if arg.startswith("--web.listen-address=") else arg
            for arg in sidecar.argv_flags]
    if not any(arg.startswith("--web.listen-address=") for arg in args):
        args.append(f"--web.listen-address=127.0.0.1:{port}")
    env = {name: str(pod.host_path(value)) if value.startswith("/") and pod.host_path(value).exists() else value
           for name, value in env.items()}
    wrapper = sidecar.wrapper()
    if wrapper is None:
        argv = [binary, *args]
    else:
        script = wrapper.group(0).replace(wrapper["binary"], binary)
        script = re.sub(r"\$\(cat ([^\s()\"]+)\)", lambda m: f"$(cat {shlex.quote(str(pod.host_path(m[1])))})", script)
        argv = ["sh", "-c", script, "exporter", *args]
    with log.open("w") as handle:
        process = subprocess.Popen(as_server_user(argv), env={"PATH": "/usr/bin:/bin", **env},
                                   stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT)
    return process, port


def scrape_until_up(sidecar: Sidecar, process: subprocess.Popen, port: int, log: Path) -> str:
    """Waits until the probes' path answers, then for `<up_metric> 1` in /metrics."""
    probe_path = sidecar.container["readinessProbe"]["httpGet"].get("path", "/")
    found = {}

    def get(path: str) -> str | None:
        assert process.poll() is None, f"the exporter exited {process.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
                return response.read().decode() if response.status == 200 else None
        except OSError:
            return None

    def up() -> bool:
        found["metrics"] = get("/metrics") or ""
        return re.search(rf"^{sidecar.documented.up_metric} 1$", found["metrics"], re.MULTILINE) is not None

    try:
        wait_until(lambda: get(probe_path) is not None, SCRAPE_TIMEOUT_S, f"the exporter's {probe_path}")
        wait_until(up, SCRAPE_TIMEOUT_S, f"{sidecar.documented.up_metric} 1\n{log.read_text()[-3000:]}")
    finally:
        process.terminate()
        process.wait(timeout=10)
    return found["metrics"]


def test_postgres_exporter_scrapes_a_real_postgres(objects, make_pod_root):
    sidecar = find_sidecar(objects, POSTGRES_FILE)
    layout = read_postgres_layout(without_exporter(objects, sidecar))
    pod = make_pod_root("postgres-metrics")
    with running_postgres(layout, pod) as server:
        env = dict(sidecar.env)
        env["DATA_SOURCE_URI"] = with_loopback_port(env["DATA_SOURCE_URI"], server.port)
        give_to_server_user(pod.root)
        process, port = run_exporter(sidecar, pod, env, pod.root / "exporter.log")
        metrics = scrape_until_up(sidecar, process, port, pod.root / "exporter.log")
    assert "pg_settings_max_connections" in metrics, "the exporter read the server's settings"


def test_redis_exporter_scrapes_a_real_redis(objects, make_pod_root):
    sidecar = find_sidecar(objects, REDIS_FILE)
    layout = read_redis_layout(without_exporter(objects, sidecar))
    pod = make_pod_root("redis-metrics")
    server = RedisServer(layout, pod, free_loopback_port())
    give_to_server_user(pod.root)
    server.start()
    try:
        env = dict(sidecar.env)
        env["REDIS_ADDR"] = with_loopback_port(env["REDIS_ADDR"], server.port)
        process, port = run_exporter(sidecar, pod, env, pod.root / "exporter.log")
        metrics = scrape_until_up(sidecar, process, port, pod.root / "exporter.log")
    finally:
        server.stop()
    assert re.search(r"^redis_memory_max_bytes \S+$", metrics, re.MULTILINE), "the exporter read INFO"
