"""Contract: the rendered Redis command, redis.conf and probes work on a real redis-server."""
from __future__ import annotations

import secrets

import pytest

from oracle_k8s import mount_containing, volumes_by_name
from oracle_quantity import parse_quantity
from oracle_redis import REDIS_FILE, RedisServer, read_redis_layout
from oracle_runtime import LOOPBACK_HOSTS, ProbeRunner, free_loopback_port, give_to_server_user, probe_hosts, \
    which_or_fail

# The file these tests read (see conftest.py).
RENDERED_FILES = (REDIS_FILE,)
CLIENT_BINARIES = ("redis-cli",)
# MANIFESTS.md: keep maxmemory at most 75% of the memory limit (AOF rewrites need headroom).
MAXMEMORY_SHARE_OF_LIMIT = 0.75


@pytest.fixture(scope="module")
def layout(objects):
    return read_redis_layout(objects)


def started_server(layout, make_pod_root, purpose: str, extra_args: tuple[str, ...] = ()) -> RedisServer:
    pod = make_pod_root(purpose)
    server = RedisServer(layout, pod, free_loopback_port(), extra_args)
    give_to_server_user(pod.root)
    server.start()
    return server


def probe_runner(layout, server: RedisServer, make_pod_root) -> ProbeRunner:
    real = {name: which_or_fail(name) for name in CLIENT_BINARIES}
    return ProbeRunner(make_pod_root("redis-probes").root, real, server.port, layout.container)


@pytest.fixture(scope="module")
def server(layout, make_pod_root):
    server = started_server(layout, make_pod_root, "redis")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def password_server(layout, make_pod_root):
    """The same rendered server with a password required: what an unauthenticated probe meets
    if the deployment adds auth (or a client sees NOAUTH)."""
    server = started_server(layout, make_pod_root, "redis-auth", ("--requirepass", secrets.token_hex(16)))
    yield server
    server.stop()


def test_config_dir_is_on_the_persistent_volume(layout):
    (data_dir,) = layout.config["dir"]
    mount, _ = mount_containing(layout.container, data_dir)
    assert "volumeClaimTemplate" in volumes_by_name(layout.workload.obj)[mount["name"]], \
        f"redis.conf dir {data_dir} is on {mount}, not on a claim template"


def test_rendered_probes_pass(layout, server, make_pod_root):
    assert {"readinessProbe", "livenessProbe"} <= set(layout.probes), f"probes: {sorted(layout.probes)}"
    runner = probe_runner(layout, server, make_pod_root)
    for kind, argv in layout.probes.items():
        assert set(probe_hosts(argv)) <= LOOPBACK_HOSTS, f"{kind} must target loopback: {argv}"
        result = runner.run(argv)
        assert result.returncode == 0, f"{kind} failed against a ready server:\n{result.stdout}{result.stderr}"


def test_probes_fail_on_noauth(layout, password_server, make_pod_root):
    runner = probe_runner(layout, password_server, make_pod_root)
    for kind, argv in layout.probes.items():
        result = runner.run(argv)
        assert result.returncode != 0, f"{kind} passed although the server answered NOAUTH: {argv}"


def test_eviction_policy_and_memory_cap(layout, server):
    with server.client() as client:
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        maxmemory = int(client.config_get("maxmemory")["maxmemory"])
    limit = parse_quantity(layout.container["resources"]["limits"]["memory"])
    assert 0 < maxmemory <= limit * MAXMEMORY_SHARE_OF_LIMIT, \
        f"maxmemory {maxmemory} must be > 0 and <= {MAXMEMORY_SHARE_OF_LIMIT:.0%} of the {limit} byte limit"


def test_keys_survive_a_restart(server):
    with server.client() as client:
        assert client.config_get("appendonly")["appendonly"] == "yes", "a PVC-backed Redis must use the AOF"
        client.set("oracle:restart", "kept")
    server.stop()
    server.start()
    with server.client() as client:
        assert client.get("oracle:restart") == "kept"
    assert any(server.data_path.iterdir()), f"nothing was written under dir {server.data_path}"
