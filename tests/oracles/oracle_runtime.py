"""Process plumbing shared by the contract tests: ports, bounded waits, an unprivileged user,
a scratch "pod filesystem", and running rendered probe commands against a loopback server."""
from __future__ import annotations

import os
import posixpath
import pwd
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from oracle_k8s import container_env

# initdb/postgres refuse to run as root, and CI runs as root: servers run as this system user.
TEST_USER = "mathison-test"
COMMAND_TIMEOUT_S = 60
PROBE_TIMEOUT_S = 15
SHIM = Path(__file__).with_name("oracle_port_shim.py")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


def run_bounded(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """subprocess.run with captured text output and a hard timeout; never raises on exit code."""
    kwargs.setdefault("timeout", COMMAND_TIMEOUT_S)
    return subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, **kwargs)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"$ {shlex.join(map(str, result.args))}\nexit {result.returncode}\n{result.stdout}{result.stderr}"


# --- unprivileged user ------------------------------------------------------------------------

def server_user() -> str | None:
    """The user servers run as: None (ourselves) unless we are root, then TEST_USER (created once)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(TEST_USER)
    except KeyError:
        result = run_bounded(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER])
        assert result.returncode == 0, describe(result)
    return TEST_USER


def as_server_user(argv: list[str]) -> list[str]:
    """setpriv execs in place (unlike runuser, which stays as a parent), so signals sent to the
    returned process reach the server itself."""
    user = server_user()
    if user is None:
        return list(argv)
    entry = pwd.getpwnam(user)
    return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--init-groups", "--", *argv]


def give_to_server_user(path: Path) -> None:
    user = server_user()
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, d) for d in dirs), *(os.path.join(root, f) for f in files)]:
            os.chown(name, entry.pw_uid, entry.pw_gid)


# --- the pod's filesystem, emulated under a scratch directory --------------------------------

class PodRoot:
    """Maps container paths to a scratch directory, so the rendered paths (PGDATA, password file,
    config files, init scripts) keep their layout relative to one another."""

    def __init__(self, root: Path):
        self.root = root

    def host_path(self, container_path: str) -> Path:
        assert posixpath.isabs(container_path), f"expected an absolute container path, got {container_path!r}"
        return self.root / posixpath.normpath(container_path).lstrip("/")

    def write(self, container_path: str, content: str) -> Path:
        path = self.host_path(container_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def mkdir(self, container_path: str) -> Path:
        path = self.host_path(container_path)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def rewrite_paths(self, argv: list[str]) -> list[str]:
        """Arguments naming a file that exists in the emulated pod point at the scratch copy."""
        return [str(self.host_path(arg)) if posixpath.isabs(arg) and self.host_path(arg).exists() else arg
                for arg in argv]


# --- probes -----------------------------------------------------------------------------------

def exec_probes(container: dict) -> dict[str, list[str]]:
    """probe kind -> rendered exec argv, for each probe the container declares."""
    probes = {}
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        probe = container.get(kind)
        if probe is not None:
            assert "exec" in probe, f"{kind} of {container['name']} is not an exec probe: {probe}"
            probes[kind] = probe["exec"]["command"]
    return probes


class ProbeRunner:
    """Runs rendered probe argv with client binaries shimmed to reach the test server's port.

    The shims are put first on PATH under the binaries' bare names, and absolute paths to those
    binaries in the probe (image-specific locations) are reduced to the bare name: that is the
    only rewriting besides the port.
    """

    def __init__(self, shim_dir: Path, real_binaries: dict[str, Path], port: int, container: dict):
        self.names = list(real_binaries)
        # kubelet runs exec probes with the container's environment.
        self.env = {**container_env(container), "PATH": f"{shim_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        shim_dir.mkdir(parents=True, exist_ok=True)
        for name, real in real_binaries.items():
            wrapper = shim_dir / name
            wrapper.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} {shlex.quote(str(SHIM))} "
                               f"{shlex.quote(str(real))} {port} \"$@\"\n")
            wrapper.chmod(0o755)

    def _bare_names(self, text: str) -> str:
        pattern = r"(?<![\w./-])/[^\s'\"]*/(" + "|".join(map(re.escape, self.names)) + r")(?![\w.-])"
        return re.sub(pattern, r"\1", text)

    def run(self, argv: list[str]) -> subprocess.CompletedProcess:
        return run_bounded([self._bare_names(arg) for arg in argv], env=self.env, timeout=PROBE_TIMEOUT_S)


LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def probe_hosts(argv: list[str]) -> list[str]:
    """Hosts a probe names with -h/--host (also inside `sh -c` scripts)."""
    return re.findall(r"(?:^|\s)(?:-h|--host)(?:=|\s+)([^\s'\")]+)", " ".join(argv))


def which_or_fail(name: str) -> Path:
    found = shutil.which(name)
    assert found, f"{name} not found on PATH: run .ci/install-deps"
    return Path(found)
