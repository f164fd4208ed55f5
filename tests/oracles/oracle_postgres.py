"""A real PostgreSQL 16 + pgvector, set up the way the rendered StatefulSet and the official
image's entrypoint would: bootstrap superuser/database from POSTGRES_USER/POSTGRES_DB, password
from POSTGRES_PASSWORD_FILE, PGDATA where the manifest puts it, init SQL from the ConfigMap."""
from __future__ import annotations

import contextlib
import importlib.util
import posixpath
import secrets
from dataclasses import dataclass
from pathlib import Path

from oracle_k8s import (Rendered, USER_OWNED_SECRET, container_env, iter_configmap_mount_files, mount_containing,
                        only_container, only_statefulset_in, volumes_by_name)
from oracle_runtime import (PodRoot, as_server_user, describe, exec_probes, free_loopback_port, give_to_server_user,
                            run_bounded)

POSTGRES_FILE = "postgres.yaml"
# The official image's entrypoint contract (docker-library/postgres), not rendered values.
INITDB_DIR = "/docker-entrypoint-initdb.d"
START_TIMEOUT_S = 30


def pgserver_bin_dir() -> Path:
    """pgserver's wheel carries a whole PostgreSQL install at <package>/pginstall/bin.

    find_spec locates the package without importing it (its import starts nothing, but we want
    only the binaries, not its server manager).
    """
    spec = importlib.util.find_spec("pgserver")
    assert spec and spec.submodule_search_locations, "pgserver is not installed: run .ci/install-deps"
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    assert (bin_dir / "postgres").is_file(), f"no postgres binary under {bin_dir}"
    return bin_dir


@dataclass(frozen=True)
class PostgresLayout:
    """What the rendered manifest says about the database container."""

    workload: Rendered
    container: dict
    user: str
    database: str
    pgdata: str
    data_mount: dict
    password_file: str
    password_mount: dict
    init_scripts: dict[str, str]

    @property
    def volumes(self) -> dict[str, dict]:
        return volumes_by_name(self.workload.obj)

    @property
    def probes(self) -> dict[str, list[str]]:
        return exec_probes(self.container)


def read_postgres_layout(objects: list[Rendered]) -> PostgresLayout:
    workload = only_statefulset_in(objects, POSTGRES_FILE)
    container = only_container(workload)
    env = container_env(container)
    for name in ("POSTGRES_USER", "POSTGRES_DB", "PGDATA", "POSTGRES_PASSWORD_FILE"):
        assert name in env, f"{workload.ref}: container env lacks a literal {name}"
    init_scripts = {path: content for path, content in iter_configmap_mount_files(objects, workload, container)
                    if posixpath.dirname(path) == INITDB_DIR}
    return PostgresLayout(
        workload=workload, container=container, user=env["POSTGRES_USER"], database=env["POSTGRES_DB"],
        pgdata=env["PGDATA"], data_mount=mount_containing(container, env["PGDATA"])[0],
        password_file=env["POSTGRES_PASSWORD_FILE"],
        password_mount=mount_containing(container, env["POSTGRES_PASSWORD_FILE"])[0],
        init_scripts=init_scripts)


def user_secret_key(layout: PostgresLayout) -> str:
    """The key of the user-owned Secret that the password file shows; fails if it comes from elsewhere."""
    volume = layout.volumes[layout.password_mount["name"]]
    assert volume.get("secret", {}).get("secretName") == USER_OWNED_SECRET, \
        f"POSTGRES_PASSWORD_FILE is on volume {volume}, not on Secret {USER_OWNED_SECRET}"
    _, relative = mount_containing(layout.container, layout.password_file)
    path_in_volume = posixpath.join(layout.password_mount.get("subPath", ""), relative)
    items = volume["secret"].get("items")
    if not items:
        return path_in_volume
    keys = {item["path"]: item["key"] for item in items}
    assert path_in_volume in keys, f"{path_in_volume} is not among the Secret items {items}"
    return keys[path_in_volume]


class PostgresServer:
    """One data directory and a postgres process listening on 127.0.0.1:port only."""

    def __init__(self, layout: PostgresLayout, pod: PodRoot, port: int):
        self.layout = layout
        self.pod = pod
        self.port = port
        self.bin_dir = pgserver_bin_dir()
        self.password = secrets.token_urlsafe(24)
        self.pgdata = pod.host_path(layout.pgdata)
        self.socket_dir = pod.mkdir("/oracle-run")  # outside the rendered paths: only our server uses it
        self.log = pod.root / "postgres.log"

    def _run(self, binary: str, *args: str, check: bool = True):
        result = run_bounded(as_server_user([str(self.bin_dir / binary), *args]))
        assert not check or result.returncode == 0, describe(result) + self.log_tail()
        return result

    def log_tail(self) -> str:
        return "\n--- server log ---\n" + self.log.read_text()[-3000:] if self.log.exists() else ""

    def prepare_pod_files(self) -> None:
        """The files the pod would see: a fresh volume (whose root is not empty: lost+found, hence
        PGDATA in a subdirectory), the mounted password file and the mounted init scripts."""
        self.pod.mkdir(posixpath.join(self.layout.data_mount["mountPath"], "lost+found"))
        self.pod.write(self.layout.password_file, self.password + "\n")
        for path, content in self.layout.init_scripts.items():
            self.pod.write(path, content)

    def initdb(self) -> None:
        # The image bootstraps POSTGRES_USER as superuser with the password file. Host auth is
        # scram so the TCP login test really checks the password (the image trusts loopback).
        self._run("initdb", "-D", str(self.pgdata), "-U", self.layout.user,
                  f"--pwfile={self.pod.host_path(self.layout.password_file)}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.socket_dir}"
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", str(START_TIMEOUT_S),
                  "-o", options, "start")

    def stop(self) -> None:
        # Fast shutdown is what the image does on SIGINT/SIGTERM from the kubelet.
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(START_TIMEOUT_S), "stop",
                  check=False)

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.pgdata), "status", check=False).returncode == 0

    def psql_as_superuser(self, database: str, *args: str):
        """Over the socket, as the entrypoint does (local trust, ON_ERROR_STOP)."""
        return self._run("psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.layout.user,
                         "-d", database, "-v", "ON_ERROR_STOP=1", "--no-password", "--no-psqlrc", *args)

    def run_entrypoint_init(self) -> None:
        """Create POSTGRES_DB, then run the init scripts by name order, as docker-entrypoint.sh does."""
        if self.layout.database != "postgres":
            quoted = '"' + self.layout.database.replace('"', '""') + '"'
            self.psql_as_superuser("postgres", "-c", f"CREATE DATABASE {quoted}")
        for path in sorted(self.layout.init_scripts):
            assert path.endswith(".sql"), f"the oracle only runs .sql init scripts, got {path}"
            self.psql_as_superuser(self.layout.database, "-f", str(self.pod.host_path(path)))


@contextlib.contextmanager
def running_postgres(layout: PostgresLayout, pod: PodRoot):
    """A PostgreSQL server on a free loopback port, initialised as the image's entrypoint would
    from the rendered layout, stopped on exit."""
    server = PostgresServer(layout, pod, free_loopback_port())
    server.prepare_pod_files()
    give_to_server_user(pod.root)
    server.initdb()
    server.start()
    try:
        server.run_entrypoint_init()
        yield server
    finally:
        server.stop()
