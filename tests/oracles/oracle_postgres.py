"""A real PostgreSQL 16 + pgvector, set up the way the rendered StatefulSet and the official
image's entrypoint would: bootstrap superuser/database from POSTGRES_USER/POSTGRES_DB, password
from POSTGRES_PASSWORD_FILE, PGDATA where the manifest puts it, init SQL from the ConfigMap."""
from __future__ import annotations

import contextlib
import importlib.util
import os
import posixpath
import re
import secrets
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from oracle_k8s import (Rendered, USER_OWNED_SECRET, container_env, iter_configmap_mount_files, mount_containing,
                        only_container, only_statefulset_in, pod_spec, volumes_by_name)
from oracle_runtime import (PodRoot, as_server_user, describe, exec_probes, free_loopback_port, give_to_server_user,
                            run_bounded, wait_until)

POSTGRES_FILE = "postgres.yaml"
# The official image's entrypoint contract (docker-library/postgres), not rendered values.
INITDB_DIR = "/docker-entrypoint-initdb.d"
START_TIMEOUT_S = 30
# The extensions the init scripts create; the update-extensions init container must keep them current.
CREATE_EXTENSION = re.compile(r"CREATE EXTENSION IF NOT EXISTS (\w+);")


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
    # The container's args: what the entrypoint passes on to `postgres` (`-c name=value`...).
    server_args: list[str]
    init_containers: list[dict]
    # Every ConfigMap file mounted into the container: path -> content.
    mounted_files: dict[str, str]

    @property
    def volumes(self) -> dict[str, dict]:
        return volumes_by_name(self.workload.obj)

    @property
    def probes(self) -> dict[str, list[str]]:
        return exec_probes(self.container)

    @property
    def settings(self) -> dict[str, str]:
        """name -> value of each `-c name=value` in the container's args."""
        args = self.server_args
        assert len(args) % 2 == 0 and all(flag == "-c" for flag in args[::2]), \
            f"{self.workload.ref}: args should be `-c name=value` pairs, got {args}"
        return dict(setting.split("=", 1) for setting in args[1::2])

    @property
    def extensions(self) -> list[str]:
        return [name for script in self.init_scripts.values() for name in CREATE_EXTENSION.findall(script)]


def read_postgres_layout(objects: list[Rendered]) -> PostgresLayout:
    workload = only_statefulset_in(objects, POSTGRES_FILE)
    container = only_container(workload)
    env = container_env(container)
    for name in ("POSTGRES_USER", "POSTGRES_DB", "PGDATA", "POSTGRES_PASSWORD_FILE"):
        assert name in env, f"{workload.ref}: container env lacks a literal {name}"
    mounted_files = dict(iter_configmap_mount_files(objects, workload, container))
    init_scripts = {path: content for path, content in mounted_files.items() if posixpath.dirname(path) == INITDB_DIR}
    return PostgresLayout(
        workload=workload, container=container, user=env["POSTGRES_USER"], database=env["POSTGRES_DB"],
        pgdata=env["PGDATA"], data_mount=mount_containing(container, env["PGDATA"])[0],
        password_file=env["POSTGRES_PASSWORD_FILE"],
        password_mount=mount_containing(container, env["POSTGRES_PASSWORD_FILE"])[0],
        init_scripts=init_scripts, server_args=container.get("args", []),
        init_containers=pod_spec(workload.obj).get("initContainers", []), mounted_files=mounted_files)


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

    def pod_settings(self, args: list[str]) -> list[str]:
        """`-c name=value` arguments whose value is a file of the pod (hba_file) point at the
        scratch copy, as the mount makes them point at the ConfigMap's file; nothing else changes."""
        def mapped(arg: str) -> str:
            name, equals, value = arg.partition("=")
            if equals and posixpath.isabs(value) and self.pod.host_path(value).is_file():
                return f"{name}={self.pod.host_path(value)}"
            return arg
        return [mapped(arg) for arg in args]

    def log_tail(self) -> str:
        return "\n--- server log ---\n" + self.log.read_text()[-3000:] if self.log.exists() else ""

    def prepare_pod_files(self) -> None:
        """The files the pod would see: a fresh volume (whose root is not empty: lost+found, hence
        PGDATA in a subdirectory), the mounted password file and the mounted init scripts."""
        self.pod.mkdir(posixpath.join(self.layout.data_mount["mountPath"], "lost+found"))
        self.pod.write(self.layout.password_file, self.password + "\n")
        for path, content in self.layout.mounted_files.items():
            self.pod.write(path, content)

    def initdb(self) -> None:
        # The image bootstraps POSTGRES_USER as superuser with the password file. Host auth is
        # scram so the TCP login test really checks the password (the image trusts loopback).
        self._run("initdb", "-D", str(self.pgdata), "-U", self.layout.user,
                  f"--pwfile={self.pod.host_path(self.layout.password_file)}",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8")

    def start(self, *extra_settings: str, wait: bool = True) -> None:
        """postgres with the rendered args, as the entrypoint passes them, then the oracle's own
        address, port and socket; `extra_settings` ("name=value") come last and win."""
        options = [*self.pod_settings(self.layout.server_args), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                   "-k", str(self.socket_dir), *(arg for setting in extra_settings for arg in ("-c", setting))]
        # pg_ctl hands -o to /bin/sh, hence shell quoting.
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.log), *(("-w", "-t", str(START_TIMEOUT_S))
                  if wait else ("-W",)), "-o", shlex.join(options), "start")

    def stop(self) -> None:
        # Fast shutdown is what the image does on SIGINT/SIGTERM from the kubelet.
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", str(START_TIMEOUT_S), "stop",
                  check=False)

    def postmaster_pid(self) -> int:
        """The running postmaster's pid; a file left by a killed one names a dead process."""
        path = self.pgdata / "postmaster.pid"

        def live_pid() -> int | None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(path.read_text().split()[0])
                if alive(pid):
                    return pid
            return None

        try:
            wait_until(lambda: live_pid() is not None, START_TIMEOUT_S, f"a live postmaster in {path}")
        except TimeoutError as error:
            raise AssertionError(f"{error}{self.log_tail()}") from None
        return live_pid()

    def kill_pod(self) -> None:
        """SIGKILL to the postmaster and all its children at once, as when the container's
        memory limit or node kills it: nothing gets to clean up or checkpoint."""
        postmaster = self.postmaster_pid()
        for pid in [postmaster, *children(postmaster)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not alive(postmaster), START_TIMEOUT_S, "the postmaster's death")
        # The restarted container is a new PID namespace, where the pid in the lock files names no
        # process and PostgreSQL ignores them. Here the dead postmaster may linger as a zombie
        # until something reaps it, and PostgreSQL would take it for a live one: drop them.
        for lock in [self.pgdata / "postmaster.pid", *self.socket_dir.glob(".s.PGSQL.*.lock")]:
            lock.unlink()

    def freeze_startup_process(self) -> int:
        """SIGSTOPs the startup process as soon as it replays WAL (its title says `recovering`),
        so that the server stays in crash recovery for as long as a test needs; SIGCONT it to
        finish. Polls /proc without pausing: replaying a few hundred MB takes about a second."""
        postmaster = self.postmaster_pid()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for pid in children(postmaster):
                if process_title(pid).startswith("postgres: startup recovering"):
                    os.kill(pid, signal.SIGSTOP)
                    return pid
        raise AssertionError(f"no startup process under postmaster {postmaster}: recovery ended or never began"
                             + self.log_tail())

    def run_init_container(self, container: dict):
        """The rendered init container's command, as is (see run_in_container)."""
        return self.run_in_container(container, [*container["command"], *container.get("args", [])])

    def run_in_container(self, container: dict, argv: list[str]):
        """A rendered command (init container, hook) with the container's environment, the pod's
        PGDATA mapped to the scratch copy and the server binaries on PATH (the image has them there)."""
        env = {**container_env(container), "PATH": f"{self.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        if "PGDATA" in env:
            env["PGDATA"] = str(self.pod.host_path(env["PGDATA"]))
        return run_bounded(as_server_user(self.pod_settings(argv)), env=env)

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


def _stat(pid: int | str) -> list[str]:
    """/proc/PID/stat after the parenthesised command name: state, parent pid, ...; [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def alive(pid: int) -> bool:
    """Running, not a zombie (nothing may reap a daemonised postmaster here)."""
    return _stat(pid)[:1] not in ([], ["Z"])


def children(pid: int) -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and _stat(entry.name)[1:2] == [str(pid)]]


def process_title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def running_postgres(layout: PostgresLayout, pod: PodRoot, *extra_settings: str):
    """A PostgreSQL server on a free loopback port, initialised as the image's entrypoint would
    from the rendered layout, stopped on exit."""
    server = PostgresServer(layout, pod, free_loopback_port())
    server.prepare_pod_files()
    give_to_server_user(pod.root)
    server.initdb()
    server.start(*extra_settings)
    try:
        server.run_entrypoint_init()
        yield server
    finally:
        server.stop()
