"""Contract: the rendered Redis command, redis.conf and probes work on a real redis-server."""
from __future__ import annotations

import secrets
import shlex

import pytest
import redis

from oracle_k8s import mount_containing, volumes_by_name
from oracle_quantity import parse_quantity
from oracle_redis import REDIS_FILE, RedisServer, read_redis_layout
from oracle_runtime import LOOPBACK_HOSTS, ProbeRunner, free_loopback_port, give_to_server_user, probe_hosts, \
    wait_until, which_or_fail

# The file these tests read (see conftest.py).
RENDERED_FILES = (REDIS_FILE,)
CLIENT_BINARIES = ("redis-cli",)
# MANIFESTS.md: keep maxmemory at most 75% of the memory limit (AOF rewrites need headroom).
MAXMEMORY_SHARE_OF_LIMIT = 0.75
EVICTION_POLICIES = ("noeviction", "allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-lfu",
                     "volatile-random", "volatile-ttl")
BGSAVE_TIMEOUT_S = 30


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
    (policy,) = layout.config["maxmemory-policy"]
    assert policy in EVICTION_POLICIES, f"maxmemory-policy {policy} is not one of Redis' {EVICTION_POLICIES}"
    with server.client() as client:
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == policy
        maxmemory = int(client.config_get("maxmemory")["maxmemory"])
    limit = parse_quantity(layout.container["resources"]["limits"]["memory"])
    assert 0 < maxmemory <= limit * MAXMEMORY_SHARE_OF_LIMIT, \
        f"maxmemory {maxmemory} must be > 0 and <= {MAXMEMORY_SHARE_OF_LIMIT:.0%} of the {limit} byte limit"


def test_a_full_redis_does_what_its_policy_says(layout, make_pod_root):
    """Past maxmemory, noeviction refuses writes (what a queue such as BullMQ needs) and the
    allkeys-* policies evict keys to accept them (a cache). maxmemory is lowered to just above
    what the empty server uses, so that a few writes reach it."""
    (policy,) = layout.config["maxmemory-policy"]
    if policy.startswith("volatile-"):
        pytest.skip(f"{policy} evicts only keys with a TTL; this test writes keys without one")
    server = started_server(layout, make_pod_root, "redis-full")
    try:
        with server.client() as client:
            used = int(client.info("memory")["used_memory"])
            client.config_set("maxmemory", used + 1024 * 1024)
            refused = None
            for index in range(64):
                try:
                    client.set(f"oracle:fill:{index}", "x" * 100_000)
                except redis.ResponseError as error:
                    refused = error
                    break
            evicted = int(client.info("stats")["evicted_keys"])
        if policy == "noeviction":
            assert isinstance(refused, redis.OutOfMemoryError), f"a write past maxmemory: {refused!r}"
            assert evicted == 0
        else:
            assert refused is None and evicted > 0, f"{policy}: refused {refused}, evicted {evicted}"
    finally:
        server.stop()


def test_rdb_snapshots_are_off(layout, server):
    """No `save` rule: the AOF (when on) is the copy, and a failed snapshot cannot stop writes."""
    with server.client() as client:
        assert client.config_get("save")["save"] == "", "RDB snapshot rules are set"


def test_writes_go_on_after_a_failed_background_save(layout, make_pod_root):
    """A background save that fails (here: its file cannot be renamed into place, as on a full or
    broken disk) must not stop writes, nor fail the probes: with `save` rules set,
    stop-writes-on-bgsave-error would refuse every write with MISCONF."""
    server = started_server(layout, make_pod_root, "redis-bgsave")
    try:
        runner = probe_runner(layout, server, make_pod_root)
        with server.client() as client:
            dbfilename = client.config_get("dbfilename")["dbfilename"]
            # rename(2) onto a non-empty directory fails: the snapshot is written, then lost.
            (server.data_path / dbfilename / "blocker").mkdir(parents=True)
            client.set("oracle:before", "1")
            client.bgsave()
            wait_until(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0, BGSAVE_TIMEOUT_S,
                       "the background save to end")
            assert client.info("persistence")["rdb_last_bgsave_status"] == "err", "the background save did not fail"
            assert client.set("oracle:after", "2") and client.ping()
            assert client.get("oracle:after") == "2"
        for kind, argv in layout.probes.items():
            result = runner.run(argv)
            assert result.returncode == 0, f"{kind} failed after a failed background save:\n{result.stdout}{result.stderr}"
    finally:
        server.stop()


def test_keys_survive_a_restart(server):
    with server.client() as client:
        assert client.config_get("appendonly")["appendonly"] == "yes", "a PVC-backed Redis must use the AOF"
        client.set("oracle:restart", "kept")
    server.stop()
    server.start()
    with server.client() as client:
        assert client.get("oracle:restart") == "kept"
    assert any(server.data_path.iterdir()), f"nothing was written under dir {server.data_path}"


def extra_config_lines(layout) -> list[list[str]]:
    """The words of each redis.conf line after the plugin's `# extraConfig` marker."""
    text = layout.config_text
    marker = "# extraConfig\n"
    if marker not in text:
        return []
    return [words for line in text.split(marker, 1)[1].splitlines() if (words := shlex.split(line, comments=True))]


def test_extra_config_lines_are_in_effect(layout, server):
    """The user's extra redis.conf lines, as rendered: redis-server started with them (it refuses
    an unknown directive or a bad value), and each one-argument directive reads back as given."""
    lines = extra_config_lines(layout)
    if not lines:
        pytest.skip("this render has no extraConfig lines")
    with server.client() as client:
        for directive, *arguments in lines:
            if len(arguments) == 1:
                assert client.config_get(directive)[directive.lower()] == arguments[0], directive
