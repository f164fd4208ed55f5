"""Contract of the postgres-backup plugin: its CronJob's containers, run as rendered, dump a real
PostgreSQL 16 + pgvector into a real S3-compatible server (moto) and keep only what retention
says; its restore Job's containers, run as rendered, bring the rows back into a fresh server.

The manifests are rendered by the real binary with the plugin, with values pointing the database
and the endpoint at the loopback servers. Each container runs its rendered command and only its
rendered environment (plus PATH, which the image would give: pg_dump and pg_restore from the
pgserver wheel, rclone from Debian) as an unprivileged user, in a private mount namespace where
the root filesystem is read-only and every volume the pod mounts is bind-mounted at its
mountPath: emptyDirs as scratch directories shared by the pod's containers, Secret volumes as
files of the test's fake Secret, owned by root with the pod's fsGroup and the volume's mode, as
the kubelet projects them. The only difference from a pod is the binaries' builds: Debian's
rclone is 1.60, the image's is the one the plugin pins.
"""
from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import psycopg
import pytest

from oracle_k8s import container_env, load_rendered, objects_of_kind, pod_labels, pod_spec
from oracle_postgres import pgserver_bin_dir
from oracle_runtime import (as_server_user, describe, free_loopback_port, give_to_server_user, run_bounded,
                            server_user, wait_until, which_or_fail)

RENDERED_FILES = ("postgres-backup.yaml",)
ROOT = Path(__file__).resolve().parents[2]
HOST = Path(os.environ.get("MATHISON_HOST_BINARY", ROOT / "target/release/mathison-host"))
PLUGIN = Path(os.environ.get("MATHISON_BACKUP_PLUGIN",
                             ROOT / "target/guests/wasm32-wasip2/plugin/mathison_plugin_postgres_backup.wasm"))
BUCKET = "mathison-backups"
PREFIX = "mathison/postgres"
KEEP_LAST = 3
PASSWORD_KEY = "postgres-password"
ACCESS_KEY, SECRET_KEY = "AKIAMATHISONTEST", secrets.token_urlsafe(24)
# Rows with the vector column's edge cases: exact binary fractions, values that need every digit
# of a float4, negative zero, a NULL vector, and text that needs escaping.
ROWS = [
    (1, "plain", "[1,2,3]"),
    (2, "fractions", "[0.5,-0.25,0.125]"),
    (3, "float4 digits", "[0.1,3.4028235e+38,-1.1754944e-38]"),
    (4, "it's \"quoted\"\n\ttabbed", "[-0,1e-45,42]"),
    (5, None, None),
]


# --- servers ------------------------------------------------------------------------------------

class Postgres:
    """A PostgreSQL 16 + pgvector of the pgserver wheel on 127.0.0.1, with the database and
    extension the postgres plugin's first start creates, and password login over TCP."""

    def __init__(self, scratch: Path, user: str, database: str, password: str):
        self.bin = pgserver_bin_dir()
        self.port = free_loopback_port()
        self.user, self.database, self.password = user, database, password
        self.pgdata = scratch / "pgdata"
        self.socket_dir = scratch / "run"
        self.socket_dir.mkdir()
        pwfile = scratch / "pwfile"
        pwfile.write_text(password + "\n")
        give_to_server_user(scratch)
        # No fsync: these servers are scratch, and durability is not what this contract is about.
        self._run("initdb", "-D", str(self.pgdata), "-U", user, f"--pwfile={pwfile}", "--auth-local=trust",
                  "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync")
        options = shlex.join(["-p", str(self.port), "-c", "listen_addresses=127.0.0.1", "-k", str(self.socket_dir),
                              "-c", "fsync=off"])
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(scratch / "log"), "-w", "-o", options, "start")
        with self.connect("postgres") as conn:
            conn.autocommit = True
            conn.execute(f"CREATE DATABASE {database}")
        with self.connect() as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    def _run(self, binary: str, *args: str) -> None:
        result = run_bounded(as_server_user([str(self.bin / binary), *args]))
        assert result.returncode == 0, describe(result)

    def connect(self, database: str | None = None) -> psycopg.Connection:
        return psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, password=self.password,
                               dbname=database or self.database)

    def rows(self) -> list[tuple]:
        with self.connect() as conn:
            return conn.execute("SELECT id, label, embedding::text FROM items ORDER BY id").fetchall()

    def stop(self) -> None:
        run_bounded(as_server_user([str(self.bin / "pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "stop"]))


@pytest.fixture(scope="module")
def scratch():
    # Under /tmp with a+x: the unprivileged server user must reach the data directories.
    path = Path(tempfile.mkdtemp(prefix="mathison-oracle-backup-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def s3():
    port = free_loopback_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY)

    def up() -> bool:
        with contextlib.suppress(Exception):
            client.list_buckets()
            return True
        return False

    try:
        wait_until(up, 30, "moto's S3 server")
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.terminate()
        server.wait(10)


@pytest.fixture(scope="module")
def source(scratch):
    (scratch / "source").mkdir()
    server = Postgres(scratch / "source", "mathison", "mathison", secrets.token_urlsafe(18))
    with server.connect() as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text, embedding vector(3))")
        conn.cursor().executemany("INSERT INTO items VALUES (%s, %s, %s::vector)", ROWS)
    yield server
    server.stop()


# --- the manifests --------------------------------------------------------------------------------

def render(scratch: Path, name: str, *settings: str) -> list:
    assert HOST.is_file() and PLUGIN.is_file(), f"{HOST} or {PLUGIN} is missing: run `make test-rust` first"
    out = scratch / name
    args = [str(HOST), "render", "--no-cache", "-p", str(PLUGIN), "-o", str(out)]
    for setting in settings:
        args += ["--set", f"postgres-backup.{setting}"]
    result = run_bounded(args)
    assert result.returncode == 0, describe(result)
    return load_rendered(out)


def loopback_settings(endpoint: str, server: Postgres) -> list[str]:
    return ["database.host=127.0.0.1", f"database.port={server.port}", f"s3.endpoint={endpoint}",
            f"s3.bucket={BUCKET}", f"s3.prefix={PREFIX}", f"retention.keepLast={KEEP_LAST}",
            "retention.keepDays=3650"]


def only(objects: list, kind: str):
    found = objects_of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, found {[item.ref for item in found]}"
    return found[0]


# --- running a pod's containers as rendered ------------------------------------------------------

def containers_of(workload) -> list[dict]:
    """Init containers first, as they run."""
    spec = pod_spec(workload.obj)
    return [*spec.get("initContainers", []), *spec["containers"]]


class Pod:
    """One run of a Job's pod: its volumes, made as the kubelet makes them, shared by its
    containers, which run one after the other (init containers first)."""

    def __init__(self, workload, scratch: Path, secrets_data: dict[str, dict[str, str]], path: str):
        self.spec = pod_spec(workload.obj)
        self.path = path
        self.root = Path(tempfile.mkdtemp(prefix="pod-", dir=scratch))
        self.root.chmod(0o755)
        user = server_user()
        entry = pwd.getpwnam(user) if user else pwd.getpwuid(os.getuid())
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        self.volumes = {}
        for volume in self.spec["volumes"]:
            directory = self.root / volume["name"]
            directory.mkdir()
            if "emptyDir" in volume:
                directory.chmod(0o777)
            elif "secret" in volume:
                source = volume["secret"]
                data = secrets_data[source["secretName"]]
                for item in source["items"]:
                    file = directory / item["path"]
                    file.write_text(data[item["key"]])
                    # root-owned, group fsGroup (the user's group here), mode defaultMode
                    os.chown(file, 0, self.gid)
                    file.chmod(source["defaultMode"])
            else:
                raise AssertionError(f"the test cannot provide volume {volume}")
            self.volumes[volume["name"]] = directory

    def run(self, container: dict) -> subprocess.CompletedProcess:
        """The container's command and args with its env only, as the pod's user, in a mount
        namespace with a read-only root and the pod's volumes at their mountPaths."""
        assert not container.get("envFrom") and all("value" in item for item in container.get("env", [])), \
            f"{container['name']}: the test gives literal env only"
        mounts = sorted(container["volumeMounts"], key=lambda mount: mount["mountPath"] == "/tmp")
        setup = ["set -e"]
        for mount in mounts:
            setup.append(f"mount --bind {shlex.quote(str(self.volumes[mount['name']]))} "
                         f"{shlex.quote(mount['mountPath'])}")
            if mount.get("readOnly"):
                setup.append(f"mount -o remount,bind,ro {shlex.quote(mount['mountPath'])}")
        setup.append("mount -o remount,bind,ro /")
        env = [f"{name}={value}" for name, value in {"PATH": self.path, **container_env(container)}.items()]
        argv = [*container.get("command", []), *container.get("args", [])]
        script = "\n".join(setup) + '\nexec "$@"'
        return run_bounded(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script, "pod",
                            "setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--",
                            "env", "-i", *env, *argv], timeout=120)

    def run_all(self) -> list[subprocess.CompletedProcess]:
        results = []
        for container in [*self.spec.get("initContainers", []), *self.spec["containers"]]:
            result = self.run(container)
            results.append(result)
            if result.returncode != 0:
                break
        return results


@pytest.fixture(scope="module")
def mount_points(objects):
    """The mountPaths a pod has and this machine lacks, created empty for the bind mounts and
    removed afterwards."""
    wanted = set()
    for workload in [*objects_of_kind(objects, "CronJob"), *objects_of_kind(objects, "Job")]:
        for container in containers_of(workload):
            wanted |= {mount["mountPath"] for mount in container["volumeMounts"]}
    created = [Path(path) for path in sorted(wanted) if not Path(path).exists()]
    for path in created:
        path.mkdir(parents=True)
    yield
    for path in reversed(created):
        with contextlib.suppress(OSError):
            path.rmdir()


def tool_path() -> str:
    """PATH as the images give it: PostgreSQL's client binaries and rclone."""
    rclone = which_or_fail("rclone")
    return f"{pgserver_bin_dir()}:{rclone.parent}:/usr/bin:/bin"


def fake_secrets(server: Postgres) -> dict[str, dict[str, str]]:
    return {"mathison-secrets": {PASSWORD_KEY: server.password},
            "mathison-backup-s3": {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}}


def keys(client) -> list[str]:
    listing = client.list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def next_second() -> None:
    """Sleeps into the next UTC second, so that the next backup's name differs."""
    time.sleep(1.05 - time.time() % 1)


# --- the contract ----------------------------------------------------------------------------------

def test_rendered_commands_are_those_tested(objects, scratch, s3, source):
    """The scripts do not depend on the values: what runs here is what the default render ships."""
    endpoint, _ = s3
    tested = render(scratch, "same", *loopback_settings(endpoint, source))
    restore = render(scratch, "same-restore", *loopback_settings(endpoint, source), "restore.from=20260102T023000Z-x.dump")
    for kind, rendered in (("CronJob", tested), ("Job", restore)):
        shipped, ours = only(objects, kind), only(rendered, kind)
        assert [c["command"] for c in containers_of(shipped)] == [c["command"] for c in containers_of(ours)]


def test_backups_upload_keep_the_newest_and_restore_exactly(scratch, s3, source, mount_points):
    endpoint, client = s3
    objects = render(scratch, "backup", *loopback_settings(endpoint, source))
    cron = only(objects, "CronJob")
    spec = cron.obj["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and not spec["suspend"]
    # The job's pod is one PostgreSQL admits: it carries the postgres plugin's client label.
    assert pod_labels(cron.obj)["mathison.dev/postgres-client"] == "true"

    # Retention touches only backups of its folder: an old backup goes (keepDays), the rest stays.
    old = f"{PREFIX}/20100101T000000Z-mathison.dump"
    untouched = [f"{PREFIX}/notes.txt", "elsewhere/20100101T000000Z-mathison.dump"]
    for key in [old, *untouched]:
        client.put_object(Bucket=BUCKET, Key=key, Body=b"not a backup of this run")

    made = []
    for run in range(KEEP_LAST + 1):
        if run:
            next_second()
        before = set(keys(client))
        pod = Pod(cron, scratch, fake_secrets(source), tool_path())
        results = pod.run_all()
        assert [r.returncode for r in results] == [0, 0], "\n".join(map(describe, results))
        new = sorted(set(keys(client)) - before)
        assert len(new) == 1, f"run {run} uploaded {new}"
        made.append(new[0])
        if run == 0:
            assert old not in keys(client), "the backup older than keepDays was deleted"

    names = [key.rsplit("/", 1)[1] for key in made]
    assert names == sorted(names), f"names sort by time: {names}"
    for name in names:
        stamp, rest = name.split("-", 1)
        time.strptime(stamp, "%Y%m%dT%H%M%SZ")
        assert rest == "mathison.dump"
    assert keys(client) == sorted([*made[-KEEP_LAST:], *untouched]), "the newest KEEP_LAST remain"

    # A custom-format, compressed dump.
    newest = made[-1]
    dump = scratch / "newest.dump"
    client.download_file(BUCKET, newest, str(dump))
    assert dump.read_bytes()[:5] == b"PGDMP"
    listing = run_bounded([str(pgserver_bin_dir() / "pg_restore"), "--list", str(dump)])
    assert listing.returncode == 0 and "Compression: gzip" in listing.stdout, describe(listing)

    # Restore the newest into a fresh server whose table holds something else: --clean replaces it.
    (scratch / "target").mkdir()
    target = Postgres(scratch / "target", "mathison", "mathison", secrets.token_urlsafe(18))
    try:
        with target.connect() as conn:
            conn.execute("CREATE TABLE items (id int PRIMARY KEY, label text, embedding vector(3))")
            conn.execute("INSERT INTO items VALUES (99, 'stale', '[9,9,9]')")
        restore_objects = render(scratch, "restore", *loopback_settings(endpoint, target),
                                 f"restore.from={newest.rsplit('/', 1)[1]}")
        assert only(restore_objects, "CronJob").obj["spec"]["suspend"], "backups pause during a restore"
        job = only(restore_objects, "Job")
        results = Pod(job, scratch, fake_secrets(target), tool_path()).run_all()
        assert [r.returncode for r in results] == [0, 0], "\n".join(map(describe, results))
        assert target.rows() == source.rows()
        assert [row[2] for row in target.rows()] == [row[2] for row in ROWS], "vectors come back digit for digit"
        with target.connect() as conn, source.connect() as original:
            # Exact float4 equality in the server, not only in text.
            ours = conn.execute("SELECT id, embedding FROM items ORDER BY id").fetchall()
            theirs = original.execute("SELECT id, embedding FROM items ORDER BY id").fetchall()
            assert [str(v) for _, v in ours] == [str(v) for _, v in theirs]
    finally:
        target.stop()


def test_a_failed_dump_uploads_and_deletes_nothing(scratch, s3, source, mount_points):
    endpoint, client = s3
    cron = only(render(scratch, "wrong-password", *loopback_settings(endpoint, source)), "CronJob")
    before = keys(client)
    wrong = fake_secrets(source)
    wrong["mathison-secrets"][PASSWORD_KEY] = "not-the-password"
    results = Pod(cron, scratch, wrong, tool_path()).run_all()
    assert len(results) == 1 and results[0].returncode != 0, "the dump container fails and the upload never runs"
    assert "password authentication failed" in results[0].stderr, describe(results[0])
    assert keys(client) == before
