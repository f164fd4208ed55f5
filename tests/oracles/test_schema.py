"""Every rendered object validates against the official OpenAPI schemas (kubernetes-validate,
strict: unknown fields rejected) for each Kubernetes version the cluster may run."""
from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, all_versions

TARGET_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33", "1.34")


def schema_problem(obj: dict, version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except ValidationError as error:
        path = ".".join(str(part) for part in error.path)
        return f"{path}: {error.message}"
    except SchemaNotFoundError as error:
        # The CLI only warns on an unknown apiVersion/kind; a manifest the API server would
        # reject must fail here.
        return error.message
    return None


@pytest.mark.parametrize("version", TARGET_VERSIONS)
def test_objects_validate_strictly(objects, version):
    # validate() silently falls back to an older schema set when one is missing: require the exact one.
    if f"{version}.0" not in all_versions():
        pytest.skip(f"kubernetes-validate {kubernetes_validate.__version__} has no schemas for {version}")
    problems = [f"{item.ref}: {problem}" for item in objects if (problem := schema_problem(item.obj, version))]
    assert not problems, f"Kubernetes {version} schema violations:\n" + "\n".join(problems)
