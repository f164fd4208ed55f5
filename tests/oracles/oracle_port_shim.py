"""Runs a client binary (pg_isready, redis-cli...) with its port redirected to the test server.

Usage: oracle_port_shim.py REAL_BINARY PORT [ARGS...]

Probe commands are run exactly as rendered except for the port: the shim replaces the first
-p/--port value with PORT, or adds `-p PORT` when the probe relies on the default port.
It is invoked through small wrapper scripts on PATH, so it also works inside `sh -c` probes.
"""
from __future__ import annotations

import os
import sys

PORT_FLAGS = ("-p", "--port")


def with_port(args: list[str], port: str) -> list[str]:
    for index, arg in enumerate(args):
        if arg in PORT_FLAGS and index + 1 < len(args):
            return [*args[:index + 1], port, *args[index + 2:]]
        if arg.startswith("--port="):
            return [*args[:index], f"--port={port}", *args[index + 1:]]
        if arg.startswith("-p") and arg[2:].isdigit():
            return [*args[:index], f"-p{port}", *args[index + 1:]]
    return ["-p", port, *args]


def main() -> None:
    real_binary, port, *args = sys.argv[1:]
    os.execv(real_binary, [real_binary, *with_port(args, port)])


if __name__ == "__main__":
    main()
