"""A real redis-server (Debian's) started with the rendered command, args and redis.conf."""
from __future__ import annotations

import posixpath
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import redis

from oracle_k8s import Rendered, iter_configmap_mount_files, only_container, only_statefulset_in
from oracle_runtime import PodRoot, as_server_user, exec_probes, wait_until, which_or_fail

REDIS_FILE = "redis.yaml"
SERVER_BINARY = "redis-server"
START_TIMEOUT_S = 20
STOP_TIMEOUT_S = 20


def parse_redis_conf(text: str) -> dict[str, list[str]]:
    """directive (lower-case) -> arguments; a later line wins, as in redis itself."""
    config = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            config[words[0].lower()] = words[1:]
    return config


def with_directive(text: str, directive: str, value: str) -> str:
    """The config text with every `directive` line replaced by `directive value`."""
    lines = [f"{directive} {value}" if (shlex.split(line, comments=True) or [""])[0].lower() == directive else line
             for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RedisLayout:
    """What the rendered manifest says about the Redis container."""

    workload: Rendered
    container: dict
    argv: list[str]
    config_path: str
    config_text: str
    mounted_files: dict[str, str]

    @property
    def config(self) -> dict[str, list[str]]:
        return parse_redis_conf(self.config_text)

    @property
    def probes(self) -> dict[str, list[str]]:
        return exec_probes(self.container)


def read_redis_layout(objects: list[Rendered]) -> RedisLayout:
    workload = only_statefulset_in(objects, REDIS_FILE)
    container = only_container(workload)
    argv = [*container.get("command", []), *container.get("args", [])]
    assert argv and posixpath.basename(argv[0]) == SERVER_BINARY, \
        f"{workload.ref}: expected the container to run {SERVER_BINARY} <config>, got {argv}"
    mounted_files = dict(iter_configmap_mount_files(objects, workload, container))
    config_paths = [arg for arg in argv if arg in mounted_files]
    assert len(config_paths) == 1, f"{workload.ref}: {argv} should name one ConfigMap-mounted config file"
    return RedisLayout(workload, container, argv, config_paths[0], mounted_files[config_paths[0]], mounted_files)


class RedisServer:
    """redis-server on 127.0.0.1:port; the rendered argv plus only --port/--bind/--dir appended."""

    def __init__(self, layout: RedisLayout, pod: PodRoot, port: int, extra_args: tuple[str, ...] = ()):
        self.layout = layout
        self.pod = pod
        self.port = port
        self.extra_args = list(extra_args)
        self.log = pod.root / "redis.log"
        self.process: subprocess.Popen | None = None
        (self.data_dir,) = layout.config.get("dir", ["."])
        pod.mkdir(self.data_dir)
        for path, content in layout.mounted_files.items():
            pod.write(path, content)
        # redis chdirs to `dir` while reading the file, before command-line overrides apply, so
        # that one directive is rewritten in the scratch copy of the config itself.
        pod.write(layout.config_path, with_directive(layout.config_text, "dir", str(self.data_path)))

    def command(self) -> list[str]:
        argv = [str(which_or_fail(SERVER_BINARY)), *self.pod.rewrite_paths(self.layout.argv[1:])]
        overrides = ["--port", str(self.port), "--bind", "127.0.0.1"]
        return [*argv, *overrides, *self.extra_args]

    def start(self) -> None:
        with self.log.open("a") as log:
            self.process = subprocess.Popen(as_server_user(self.command()), stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._accepting, START_TIMEOUT_S, f"redis on port {self.port}\n{self.log_tail()}")

    def _accepting(self) -> bool:
        assert self.process.poll() is None, f"redis-server exited {self.process.returncode}\n{self.log_tail()}"
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1) as client:
                client.ping()
            return True
        except redis.AuthenticationError:
            return True  # listening, and rejecting us: that is the password-protected variant
        except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
            return False

    def stop(self) -> None:
        """SIGTERM, as the kubelet sends: redis flushes the AOF before it exits."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_TIMEOUT_S)
            raise

    def client(self, password: str | None = None) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, password=password, socket_timeout=5,
                           decode_responses=True)

    def log_tail(self) -> str:
        return "--- redis log ---\n" + self.log.read_text()[-3000:] if self.log.exists() else ""

    @property
    def data_path(self) -> Path:
        return self.pod.host_path(self.data_dir)
