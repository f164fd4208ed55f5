"""Contract: the rendered PostgreSQL settings work on a real PostgreSQL 16 + pgvector."""
from __future__ import annotations

import posixpath

import psycopg
import pytest

from oracle_postgres import POSTGRES_FILE, PostgresServer, pgserver_bin_dir, read_postgres_layout, running_postgres, user_secret_key
from oracle_runtime import LOOPBACK_HOSTS, ProbeRunner, probe_hosts

# The file these tests read (see conftest.py).
RENDERED_FILES = (POSTGRES_FILE,)
CLIENT_BINARIES = ("pg_isready", "psql")


@pytest.fixture(scope="module")
def layout(objects):
    return read_postgres_layout(objects)


@pytest.fixture(scope="module")
def server(layout, make_pod_root):
    with running_postgres(layout, make_pod_root("postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def probes(layout, server, make_pod_root):
    real = {name: pgserver_bin_dir() / name for name in CLIENT_BINARIES}
    shim_dir = make_pod_root("postgres-probes").root
    return ProbeRunner(shim_dir, real, server.port, layout.container)


def connect(server: PostgresServer, password: str) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=server.port, user=server.layout.user, password=password,
                           dbname=server.layout.database, connect_timeout=5, autocommit=True)


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
        down = probes.run(layout.probes["readinessProbe"])
        assert down.returncode != 0, "the readiness probe passed while postgres was stopped"
    finally:
        server.start()
    with connect(server, server.password) as connection:
        rows = connection.execute("SELECT id, embedding::text FROM oracle_restart").fetchall()
        assert rows == [(1, "[1,2,3]")]
