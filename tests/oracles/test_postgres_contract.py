"""Contract: the rendered PostgreSQL settings work on a real PostgreSQL 16 + pgvector."""
from __future__ import annotations

import ipaddress
import os
import posixpath
import signal
import threading
import time

import psycopg
import pytest

from oracle_k8s import volumes_by_name
from oracle_postgres import (POSTGRES_FILE, PostgresServer, alive, pgserver_bin_dir, read_postgres_layout,
                             running_postgres, user_secret_key)
from oracle_quantity import parse_quantity
from oracle_runtime import LOOPBACK_HOSTS, ProbeRunner, give_to_server_user, probe_hosts, run_bounded, wait_until

# The file these tests read (see conftest.py).
RENDERED_FILES = (POSTGRES_FILE,)
CLIENT_BINARIES = ("pg_isready", "psql")
# pg_isready's exit codes: 0 accepting, 1 rejecting (starting, recovering, stopping), 2 no response.
PG_ISREADY_REJECTING, PG_ISREADY_NO_RESPONSE = 1, 2
# Probes that must tolerate a server which is up but not accepting connections yet.
TOLERANT_PROBES = ("startupProbe", "livenessProbe")
# Enough WAL after the last checkpoint that crash recovery has real work to replay; the test
# settings keep a checkpoint from happening in between.
RECOVERY_ROWS = 200_000
NO_CHECKPOINT_SETTINGS = ("max_wal_size=4GB", "checkpoint_timeout=1h")
RECOVERED_TIMEOUT_S = 120
# Settings that name a file; SelectConfigFiles() sets them again from the command line's value.
FILE_LOCATION_SETTINGS = ("hba_file",)
# How long the SIGTERM control waits to see that a smart shutdown does not end on its own; the
# assertion is that the server is still up afterwards, so a slow machine cannot make it pass wrongly.
SMART_SHUTDOWN_WAIT_S = 2


@pytest.fixture(scope="module")
def layout(objects):
    return read_postgres_layout(objects)


@pytest.fixture(scope="module")
def server(layout, make_pod_root):
    with running_postgres(layout, make_pod_root("postgres")) as server:
        yield server


def probe_runner(layout, server: PostgresServer, make_pod_root) -> ProbeRunner:
    real = {name: pgserver_bin_dir() / name for name in CLIENT_BINARIES}
    return ProbeRunner(make_pod_root("postgres-probes").root, real, server.port, layout.container)


@pytest.fixture(scope="module")
def probes(layout, server, make_pod_root):
    return probe_runner(layout, server, make_pod_root)


def connect(server: PostgresServer, password: str | None = None) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=server.port, user=server.layout.user,
                           password=server.password if password is None else password,
                           dbname=server.layout.database, connect_timeout=5, autocommit=True)


def pg_isready(server: PostgresServer) -> int:
    """pg_isready's own verdict on the server's TCP port, apart from the rendered probes."""
    return run_bounded([str(pgserver_bin_dir() / "pg_isready"), "-h", "127.0.0.1", "-p", str(server.port)]).returncode


def update_extensions_container(layout) -> dict:
    found = [c for c in layout.init_containers if c["name"] == "update-extensions"]
    assert len(found) == 1, f"{layout.workload.ref}: no single update-extensions init container"
    return found[0]


def test_pgdata_is_a_subdirectory_of_the_persistent_volume(layout):
    mount = layout.data_mount
    assert "volumeClaimTemplate" in layout.volumes[mount["name"]], f"PGDATA is on {mount}, not on a claim template"
    relative = posixpath.relpath(layout.pgdata, mount["mountPath"])
    assert relative not in (".", "") and not relative.startswith(".."), \
        f"PGDATA {layout.pgdata} must be a subdirectory of the volume mounted at {mount['mountPath']}"


def test_password_file_comes_from_the_user_owned_secret(layout):
    assert user_secret_key(layout)


def test_init_scripts_come_from_a_rendered_configmap(layout):
    assert layout.init_scripts, "no init script is mounted into /docker-entrypoint-initdb.d"


def test_rendered_probes_pass(layout, server, probes):
    assert {"readinessProbe", "livenessProbe"} <= set(layout.probes), f"probes: {sorted(layout.probes)}"
    for kind, argv in layout.probes.items():
        assert set(probe_hosts(argv)) <= LOOPBACK_HOSTS, f"{kind} must target loopback: {argv}"
        result = probes.run(argv)
        assert result.returncode == 0, f"{kind} failed against a ready server:\n{result.stdout}{result.stderr}"


def test_rendered_user_logs_in_with_the_password_over_tcp(server):
    with connect(server, server.password) as connection:
        assert connection.execute("SELECT 1").fetchone() == (1,)


def test_wrong_password_is_rejected(server):
    # Proves the login test above exercised the password, not a trust rule.
    with pytest.raises(psycopg.OperationalError):
        connect(server, server.password + "-wrong").close()


def test_init_sql_enabled_pgvector(server):
    with connect(server, server.password) as connection:
        found = connection.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'").fetchall()
        assert found == [("vector",)]
        assert connection.execute("SELECT '[1,2,3]'::vector <-> '[1,2,4]'::vector").fetchone() == (1.0,)


def test_rows_survive_a_restart_and_probes_fail_while_down(layout, server, probes):
    with connect(server, server.password) as connection:
        connection.execute("CREATE TABLE oracle_restart (id int PRIMARY KEY, embedding vector(3))")
        connection.execute("INSERT INTO oracle_restart VALUES (1, '[1,2,3]')")
    server.stop()
    try:
        for kind, argv in layout.probes.items():
            down = probes.run(argv)
            assert down.returncode != 0, f"the {kind} passed while postgres was stopped"
    finally:
        server.start()
    with connect(server, server.password) as connection:
        rows = connection.execute("SELECT id, embedding::text FROM oracle_restart").fetchall()
        assert rows == [(1, "[1,2,3]")]


def test_startup_and_liveness_fail_while_only_the_socket_listens(layout, server, probes):
    """The entrypoint's temporary server for initdb and the init scripts listens on no TCP
    address (listen_addresses=''): no probe may pass then, or the kubelet would count the
    server as up halfway through initialisation."""
    server.stop()
    try:
        server.start("listen_addresses=")
        assert pg_isready(server) == PG_ISREADY_NO_RESPONSE
        for kind, argv in layout.probes.items():
            result = probes.run(argv)
            assert result.returncode != 0, f"{kind} passed while only the socket listened: {argv}"
    finally:
        server.stop()
        server.start()


def test_liveness_passes_during_crash_recovery_and_readiness_does_not(layout, make_pod_root):
    """kill -9 of the whole server while it writes, then a restart on the same data directory:
    while it replays WAL, pg_isready says "rejecting connections" (exit 1). Startup and liveness
    must pass then (a restart would begin recovery again), readiness must not."""
    assert set(TOLERANT_PROBES) <= set(layout.probes), f"probes: {sorted(layout.probes)}"
    with running_postgres(layout, make_pod_root("postgres-crash"), *NO_CHECKPOINT_SETTINGS) as server:
        probes = probe_runner(layout, server, make_pod_root)
        with connect(server) as connection:
            connection.execute("CREATE TABLE oracle_wal (id bigserial PRIMARY KEY, filler text)")
            connection.execute("INSERT INTO oracle_wal (filler) SELECT repeat(md5(i::text), 16) "
                               "FROM generate_series(1, %s) AS i", (RECOVERY_ROWS,))
        committed = []
        writing = threading.Event()

        def write_until_killed() -> None:
            try:
                with connect(server) as connection:
                    while True:
                        committed.append(connection.execute(
                            "INSERT INTO oracle_wal (filler) VALUES ('live') RETURNING id").fetchone()[0])
                        writing.set()
            except psycopg.OperationalError:
                return  # the server died under us, as intended

        writer = threading.Thread(target=write_until_killed, daemon=True)
        writer.start()
        assert writing.wait(30), "the writer committed nothing"
        server.kill_pod()
        writer.join(30)
        assert not writer.is_alive() and committed

        server.start(*NO_CHECKPOINT_SETTINGS, wait=False)
        startup_process = server.freeze_startup_process()
        try:
            assert pg_isready(server) == PG_ISREADY_REJECTING, "the recovering server should reject connections"
            for kind in TOLERANT_PROBES:
                result = probes.run(layout.probes[kind])
                assert result.returncode == 0, \
                    f"{kind} failed during crash recovery:\n{result.stdout}{result.stderr}"
            ready = probes.run(layout.probes["readinessProbe"])
            assert ready.returncode != 0, "the readiness probe passed during crash recovery"
        finally:
            os.kill(startup_process, signal.SIGCONT)

        wait_until(lambda: probes.run(layout.probes["readinessProbe"]).returncode == 0, RECOVERED_TIMEOUT_S,
                   "readiness after recovery\n" + server.log_tail())
        for kind, argv in layout.probes.items():
            assert probes.run(argv).returncode == 0, f"{kind} failed after recovery"
        log = server.log.read_text()
        assert "was interrupted" in log and "redo done" in log, f"no crash recovery happened:{server.log_tail()}"
        with connect(server) as connection:
            count, last = connection.execute("SELECT count(*), max(id) FROM oracle_wal").fetchone()
        assert count >= RECOVERY_ROWS + len(committed) and last >= committed[-1], "committed rows were lost"


def test_rendered_settings_are_what_the_server_runs_with(layout, server):
    """Every `-c` the container passes is accepted (postgres refuses unknown names and bad
    values at start) and is in effect, from the command line, shown as rendered."""
    assert layout.settings, f"{layout.workload.ref}: no server settings in args"
    # A file of the pod (hba_file) is read from the scratch copy of the mounted ConfigMap.
    expected = dict(setting.split("=", 1) for setting in server.pod_settings(layout.server_args)[1::2])
    with connect(server) as connection:
        for name, value in layout.settings.items():
            shown, source = connection.execute(
                "SELECT current_setting(name), source FROM pg_settings WHERE name = %s", (name,)).fetchone()
            # PostgreSQL sets the file locations again, made absolute, as an override.
            wanted_source = "override" if name in FILE_LOCATION_SETTINGS else "command line"
            assert (shown, source) == (expected[name], wanted_source), f"{name}: rendered {value!r}"


def test_memory_settings_fit_the_memory_limit_and_shm(layout, server):
    """What the server runs with, measured against the container's limit and /dev/shm's size:
    shared_buffers a quarter of the limit, effective_cache_size 50-75 %, every connection's two
    sorts or hashes within what shared_buffers and /dev/shm leave, and parallel work within /dev/shm."""
    limit = parse_quantity(layout.container["resources"]["limits"]["memory"])
    (shm_mount,) = [m for m in layout.container["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    shm_volume = volumes_by_name(layout.workload.obj)[shm_mount["name"]]["emptyDir"]
    assert shm_volume.get("medium") == "Memory"
    shm = parse_quantity(shm_volume["sizeLimit"])
    names = ("shared_buffers", "effective_cache_size", "work_mem", "maintenance_work_mem")
    with connect(server) as connection:
        size = {name: connection.execute("SELECT pg_size_bytes(current_setting(%s))", (name,)).fetchone()[0]
                for name in names}
        max_connections = int(connection.execute("SHOW max_connections").fetchone()[0])
    mib = 1024 * 1024
    assert limit // 4 - mib < size["shared_buffers"] <= limit // 4, size
    assert limit // 2 <= size["effective_cache_size"] <= limit * 3 // 4, size
    assert size["shared_buffers"] + shm + 2 * max_connections * size["work_mem"] <= limit, size
    assert 6 * size["work_mem"] <= shm and size["maintenance_work_mem"] <= shm, size


def test_update_extensions_skips_the_first_start(layout, make_pod_root):
    """On an empty volume the entrypoint initialises; the init container must leave it alone."""
    pod = make_pod_root("postgres-empty")
    server = PostgresServer(layout, pod, port=0)  # never started: only its paths are used
    server.pgdata.mkdir(parents=True)
    give_to_server_user(pod.root)
    result = server.run_init_container(update_extensions_container(layout))
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(server.pgdata.iterdir()), "the init container wrote into an empty data directory"


def test_update_extensions_creates_and_updates_each_extension(layout, make_pod_root):
    """The init container, run as rendered before the server: a data directory whose extension
    is older than the image's (as after a newer image was pulled) is updated, a missing one
    created, a current one left as it is; and a failing statement fails the container."""
    container = update_extensions_container(layout)
    assert layout.extensions, "the init scripts create no extension"
    with running_postgres(layout, make_pod_root("postgres-extensions")) as server:
        def versions() -> dict[str, str]:
            with connect(server) as connection:
                return dict(connection.execute("SELECT extname, extversion FROM pg_extension").fetchall())

        def run_init_container():
            server.stop()
            try:
                return server.run_init_container(container)
            finally:
                server.start()

        with connect(server) as connection:
            current = dict(connection.execute(
                "SELECT name, default_version FROM pg_available_extensions WHERE name = ANY(%s)",
                (layout.extensions,)).fetchall())
            assert sorted(current) == sorted(layout.extensions), current
            older = {}
            for name in layout.extensions:
                older[name] = connection.execute(
                    "SELECT source FROM pg_extension_update_paths(%s) WHERE target = %s AND path IS NOT NULL "
                    "ORDER BY length(path) LIMIT 1", (name, current[name])).fetchone()[0]
                # What a data directory made with an older image holds.
                connection.execute("UPDATE pg_extension SET extversion = %s WHERE extname = %s", (older[name], name))
        assert all(versions()[name] == older[name] for name in layout.extensions)
        result = run_init_container()
        assert result.returncode == 0, result.stdout + result.stderr
        assert {name: versions()[name] for name in layout.extensions} == current

        first = layout.extensions[0]
        with connect(server) as connection:
            connection.execute(f"DROP EXTENSION {first} CASCADE")
        result = run_init_container()
        assert result.returncode == 0, result.stdout + result.stderr
        assert versions()[first] == current[first], "a missing extension was not created"
        result = run_init_container()
        assert result.returncode == 0 and versions()[first] == current[first], "not idempotent"

        with connect(server) as connection:
            connection.execute("UPDATE pg_extension SET extversion = 'no-such-version' WHERE extname = %s", (first,))
        result = run_init_container()
        assert result.returncode != 0, "an extension that cannot be updated must fail the init container"


def test_pre_stop_hook_stops_the_server_fast_despite_an_idle_client(layout, make_pod_root):
    """Kubernetes sends SIGTERM, PostgreSQL's smart shutdown: it waits for every client to leave,
    and an idle pooled connection never does, so the pod would be killed at the end of the
    grace period and recover from WAL. The rendered preStop hook asks for a fast shutdown: it
    returns with the server stopped cleanly while the client is still connected."""
    hook = layout.container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    assert hook, f"{layout.workload.ref}: the PostgreSQL container has no preStop exec hook"
    with running_postgres(layout, make_pod_root("postgres-prestop")) as server:
        client = connect(server)
        try:
            postmaster = server.postmaster_pid()
            # The control: SIGTERM alone leaves the server up while the idle client stays.
            os.kill(postmaster, signal.SIGTERM)
            time.sleep(SMART_SHUTDOWN_WAIT_S)
            assert alive(postmaster), "a smart shutdown ended although a client was connected"
            assert client.execute("SELECT 1").fetchone() == (1,), "the smart shutdown dropped the client"

            result = server.run_in_container(layout.container, hook)
            assert result.returncode == 0, result.stdout + result.stderr + server.log_tail()
            assert not alive(postmaster) and not server.is_running(), "the preStop hook left the server running"
            with pytest.raises(psycopg.OperationalError):
                client.execute("SELECT 1")
        finally:
            client.close()
        server.start()
        log = server.log.read_text()
        # A shutdown checkpoint was written: the next start needs no crash recovery.
        assert "database system was shut down at" in log and "was interrupted" not in log, server.log_tail()


def hba_rules(layout) -> list[list[str]]:
    """The words of each rule of the rendered pg_hba.conf (the file `hba_file` names)."""
    text = layout.mounted_files[layout.settings["hba_file"]]
    return [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def first_tcp_match(rules: list[list[str]], database: str, user: str) -> list[str] | None:
    """The rule PostgreSQL applies to a non-SSL TCP connection from 127.0.0.1 (first match wins)."""
    loopback = ipaddress.ip_address("127.0.0.1")
    for rule in rules:
        kind, databases, users, *rest = rule
        if kind not in ("host", "hostnossl"):
            continue  # local lines are for the socket; the test server has no SSL for hostssl
        address = rest[0]
        in_network = address in ("all", "samehost", "samenet") or loopback in ipaddress.ip_network(address)
        if (in_network and ("all" in databases.split(",") or database in databases.split(","))
                and ("all" in users.split(",") or user in users.split(","))):
            return rule
    return None


def test_pg_hba_rules_are_loaded_and_enforced(layout, server):
    """The rendered pg_hba.conf: PostgreSQL loads every line without error, and a TCP login to
    each database a rule names, and to the application's, is rejected or asks for the password
    as the first matching rule says."""
    if "hba_file" not in layout.settings:
        pytest.skip("this render uses the image's pg_hba.conf (no pgHba rules)")
    rules = hba_rules(layout)
    with connect(server) as connection:
        loaded = connection.execute("SELECT line_number, error FROM pg_hba_file_rules").fetchall()
    assert [row for row in loaded if row[1]] == [], loaded
    assert len(loaded) == len(rules), f"PostgreSQL loaded {loaded}, the file has {rules}"
    databases = {layout.database} | {name for rule in rules if rule[0].startswith("host")
                                      for name in rule[1].split(",") if name not in ("all", "sameuser", "samerole")}
    checked = []
    for database in sorted(databases):
        rule = first_tcp_match(rules, database, layout.user)
        assert rule, f"no rule admits or rejects {layout.user}@{database} from 127.0.0.1"
        method = rule[-1]

        def login(password: str, database=database):
            return psycopg.connect(host="127.0.0.1", port=server.port, user=layout.user, password=password,
                                   dbname=database, connect_timeout=5).close()

        if method == "reject":
            with pytest.raises(psycopg.OperationalError, match="rejects connection"):
                login(server.password)
        elif method in ("scram-sha-256", "md5", "password"):
            login(server.password)
            with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
                login(server.password + "-wrong")
        else:
            continue
        checked.append((database, method))
    assert checked, f"no rule was exercised: {rules}"
