"""Shared fixtures: the rendered manifests (from MATHISON_RENDERED_DIR) and scratch directories
the unprivileged server user can own."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from oracle_k8s import Rendered, load_rendered, missing_files, rendered_dir_from_env
from oracle_runtime import PodRoot


def pytest_configure(config):
    # Fail the whole run loudly rather than skipping: a suite that tests nothing must not pass.
    try:
        rendered_dir_from_env()
    except ValueError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_collection_finish(session):
    # The generic tests (schema, cross references, checkov) judge any render; a service's
    # contract tests declare the file they read as RENDERED_FILES and need it to be there.
    # A missing one fails the run: a contract that tests nothing must not pass.
    needed = {name for item in session.items for name in getattr(item.module, "RENDERED_FILES", ())}
    directory = rendered_dir_from_env()
    missing = missing_files(directory, needed)
    if missing:
        pytest.exit(f"{directory} lacks {', '.join(missing)}, which the selected contract tests "
                    "read; render those plugins or deselect their tests", returncode=pytest.ExitCode.USAGE_ERROR)


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
