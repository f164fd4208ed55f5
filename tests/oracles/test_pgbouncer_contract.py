"""Contract: the rendered PgBouncer (command, pgbouncer.ini, userlist mount) pools connections to a
real PostgreSQL 16 for a client that logs in with the password, on a real PgBouncer."""
from __future__ import annotations

import configparser
import posixpath
import re
import subprocess

import psycopg
import pytest

from oracle_k8s import (Rendered, container_ports, find_object, iter_configmap_mount_files, only_container,
                        volumes_by_name)
from oracle_postgres import POSTGRES_FILE, read_postgres_layout, running_postgres
from oracle_runtime import as_server_user, free_loopback_port, give_to_server_user, wait_until, which_or_fail

PGBOUNCER_FILE = "pgbouncer.yaml"
# The file these tests read (see conftest.py).
RENDERED_FILES = (PGBOUNCER_FILE, POSTGRES_FILE)
START_TIMEOUT_S = 30


@pytest.fixture(scope="module")
def pooler(objects) -> Rendered:
    found = [item for item in objects if item.file == PGBOUNCER_FILE and item.kind == "Deployment"]
    assert len(found) == 1, f"{PGBOUNCER_FILE} must render exactly one Deployment, found {[f.ref for f in found]}"
    return found[0]


@pytest.fixture(scope="module")
def ini_file(objects, pooler) -> tuple[str, str]:
    """(container path, text) of the ConfigMap-mounted file that the command names."""
    container = only_container(pooler)
    argv = [*container.get("command", []), *container.get("args", [])]
    assert argv and posixpath.basename(argv[0]) == "pgbouncer", f"{pooler.ref}: runs {argv}, not pgbouncer"
    files = dict(iter_configmap_mount_files(objects, pooler, container))
    named = [arg for arg in argv[1:] if arg in files]
    assert len(named) == 1, f"{pooler.ref}: {argv} should name one ConfigMap-mounted config file"
    return named[0], files[named[0]]


def parse_ini(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    parser.read_string(text)
    return parser


@pytest.fixture(scope="module")
def postgres(objects, make_pod_root):
    with running_postgres(read_postgres_layout(objects), make_pod_root("pgbouncer-postgres")) as server:
        yield server


@pytest.fixture(scope="module")
def pgbouncer(pooler, ini_file, postgres, make_pod_root):
    """PgBouncer from the rendered command and files; only what names the cluster is rewritten:
    the PostgreSQL Service's address (after the test below checks it) and the listen address."""
    container = only_container(pooler)
    ini_path, ini_text = ini_file
    settings = parse_ini(ini_text)["pgbouncer"]
    pod = make_pod_root("pgbouncer")
    # The userlist, at the path where the rendered Secret volume puts it.
    auth_file = settings["auth_file"]
    pod.write(auth_file, f'"{postgres.layout.user}" "{postgres.password}"\n')
    port = free_loopback_port()
    ini = re.sub(r"host=\S+ port=\d+", f"host=127.0.0.1 port={postgres.port}", ini_text)
    ini = re.sub(r"(?m)^listen_addr = .*$", "listen_addr = 127.0.0.1", ini)
    ini = re.sub(r"(?m)^listen_port = .*$", f"listen_port = {port}", ini)
    ini = ini.replace(auth_file, str(pod.host_path(auth_file)))
    pod.write(ini_path, ini)
    give_to_server_user(pod.root)
    argv = [str(which_or_fail("pgbouncer")), *pod.rewrite_paths(container["command"][1:])]
    log = pod.root / "pgbouncer.log"
    with log.open("w") as out:
        process = subprocess.Popen(as_server_user(argv), stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert process.poll() is None, f"pgbouncer exited {process.returncode}:\n{log.read_text()[-3000:]}"
        return "listening on 127.0.0.1" in log.read_text()

    try:
        wait_until(listening, START_TIMEOUT_S, f"pgbouncer on port {port}")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=START_TIMEOUT_S)


def test_ini_points_at_the_rendered_postgres_service(objects, pooler, ini_file):
    databases = parse_ini(ini_file[1])["databases"]
    assert databases, "pgbouncer.ini names no database"
    for name, spec in databases.items():
        fields = dict(part.split("=", 1) for part in spec.split())
        service_name, _, rest = fields["host"].partition(".")
        assert rest == f"{pooler.namespace}.svc.cluster.local", f"{name}: {fields['host']} is not a Service here"
        service = find_object(objects, "Service", service_name, pooler.namespace)
        assert service is not None, f"{name}: Service {service_name} is not rendered"
        assert int(fields["port"]) in [p["port"] for p in service.obj["spec"]["ports"]], \
            f"{name}: port {fields['port']} is not a port of Service {service_name}"


def test_probes_and_service_use_the_port_pgbouncer_listens_on(pooler, ini_file):
    listen_port = int(parse_ini(ini_file[1])["pgbouncer"]["listen_port"])
    container = only_container(pooler)
    assert listen_port in container_ports(container)
    for probe in ("readinessProbe", "livenessProbe"):
        target = container[probe]["tcpSocket"]["port"]
        numbers = [p["containerPort"] for p in container["ports"] if target in (p["containerPort"], p.get("name"))]
        assert numbers == [listen_port], f"{probe} checks {target}, PgBouncer listens on {listen_port}"


def test_userlist_comes_from_the_secret_mount(pooler, ini_file):
    auth_file = parse_ini(ini_file[1])["pgbouncer"]["auth_file"]
    container = only_container(pooler)
    mounts = [m for m in container["volumeMounts"] if auth_file.startswith(m["mountPath"].rstrip("/") + "/")]
    assert len(mounts) == 1, f"auth_file {auth_file} is on no single volumeMount"
    volume = volumes_by_name(pooler.obj)[mounts[0]["name"]]
    assert "secret" in volume, f"auth_file {auth_file} is not on a Secret volume"
    relative = posixpath.relpath(auth_file, mounts[0]["mountPath"])
    assert relative in [item["path"] for item in volume["secret"].get("items", [])]


def test_a_client_reaches_postgres_through_the_pool(pgbouncer, postgres):
    with psycopg.connect(host="127.0.0.1", port=pgbouncer, user=postgres.layout.user, password=postgres.password,
                         dbname=postgres.layout.database, connect_timeout=5, autocommit=True) as connection:
        assert connection.execute("SELECT current_database(), current_user").fetchone() == \
            (postgres.layout.database, postgres.layout.user)


def test_a_wrong_password_is_refused(pgbouncer, postgres):
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=pgbouncer, user=postgres.layout.user, password="wrong",
                        dbname=postgres.layout.database, connect_timeout=5).close()
