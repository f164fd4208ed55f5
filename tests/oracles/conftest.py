"""Shared fixtures: the rendered manifests (from MATHISON_RENDERED_DIR) and scratch directories
the unprivileged server user can own."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from oracle_k8s import Rendered, load_rendered, rendered_dir_from_env
from oracle_runtime import PodRoot


def pytest_configure(config):
    # Fail the whole run loudly rather than skipping: a suite that tests nothing must not pass.
    try:
        rendered_dir_from_env()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


@pytest.fixture(scope="session")
def rendered_dir() -> Path:
    return rendered_dir_from_env()


@pytest.fixture(scope="session")
def objects(rendered_dir) -> list[Rendered]:
    loaded = load_rendered(rendered_dir)
    assert loaded, f"no Kubernetes objects in {rendered_dir}"
    return loaded


@pytest.fixture(scope="module")
def make_pod_root():
    """Scratch "pod filesystems" under /tmp (pytest's own tmp dirs are root-only 0700, which the
    server user could not enter); removed when the module's servers are gone."""
    created = []

    def make(purpose: str) -> PodRoot:
        root = Path(tempfile.mkdtemp(prefix=f"mathison-oracle-{purpose}-"))
        created.append(root)
        return PodRoot(root)

    yield make
    for root in created:
        shutil.rmtree(root, ignore_errors=True)
