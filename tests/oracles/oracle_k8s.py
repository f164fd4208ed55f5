"""The rendered manifests as plain dicts, plus the generic Kubernetes lookups the oracles share.

Nothing here knows what the renderer *should* produce: it only reads what it did produce.
"""
from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

RENDERED_DIR_ENV = "MATHISON_RENDERED_DIR"
# Created by the operator (step 32), referenced by the manifests, never rendered by us.
USER_OWNED_SECRET = "mathison-secrets"
# Every Secret the render was told the user owns (`--user-owned Secret/NAME`), space-separated:
# what a render with the backup plugin adds, its bucket credentials.
USER_OWNED_SECRETS = tuple(os.environ.get("MATHISON_USER_OWNED_SECRETS", USER_OWNED_SECRET).split())

WORKLOAD_KINDS = {"StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job", "CronJob"}


@dataclass(frozen=True)
class Rendered:
    """One YAML document of the rendered folder, with where it came from for error messages."""

    file: str
    index: int
    obj: dict

    @property
    def kind(self) -> str:
        return self.obj.get("kind", "")

    @property
    def name(self) -> str:
        return self.obj.get("metadata", {}).get("name", "")

    @property
    def namespace(self) -> str:
        return self.obj.get("metadata", {}).get("namespace", "default")

    @property
    def ref(self) -> str:
        return f"{self.file}[{self.index}] {self.kind}/{self.name}"


def rendered_dir_from_env() -> Path:
    """The folder under test; raises ValueError with an actionable message when unusable."""
    value = os.environ.get(RENDERED_DIR_ENV)
    if not value:
        raise ValueError(f"{RENDERED_DIR_ENV} is not set: point it at the folder `mathison-host render -o` wrote")
    directory = Path(value)
    if not any([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        raise ValueError(f"{RENDERED_DIR_ENV}={directory} holds no rendered YAML file")
    return directory


def missing_files(directory: Path, names) -> list[str]:
    """Which of the plugin files `names` (e.g. postgres.yaml) the rendered folder lacks."""
    return sorted(name for name in set(names) if not (directory / name).is_file())


def load_rendered(directory: Path) -> list[Rendered]:
    """Every non-empty document of every *.yaml/*.yml file, in a stable order."""
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    documents = []
    for path in files:
        with path.open() as handle:
            for index, obj in enumerate(yaml.safe_load_all(handle)):
                if obj is not None:  # a bare '---' separator is legal YAML, not an object
                    documents.append(Rendered(path.name, index, obj))
    return documents


def objects_of_kind(objects: list[Rendered], kind: str) -> list[Rendered]:
    return [item for item in objects if item.kind == kind]


def find_object(objects: list[Rendered], kind: str, name: str, namespace: str) -> Rendered | None:
    for item in objects:
        if (item.kind, item.name, item.namespace) == (kind, name, namespace):
            return item
    return None


def only_statefulset_in(objects: list[Rendered], file: str) -> Rendered:
    """The single StatefulSet a service file renders (the file names are the renderer's contract)."""
    found = [item for item in objects if item.file == file and item.kind == "StatefulSet"]
    assert len(found) == 1, f"{file} must render exactly one StatefulSet, found {[f.ref for f in found]}"
    return found[0]


# --- pods -----------------------------------------------------------------------------------

def pod_template(obj: dict) -> dict | None:
    if obj.get("kind") == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template")
    if obj.get("kind") in WORKLOAD_KINDS:
        return obj.get("spec", {}).get("template")
    return None


def pod_labels(obj: dict) -> dict:
    return (pod_template(obj) or {}).get("metadata", {}).get("labels", {}) or {}


def pod_spec(obj: dict) -> dict:
    return (pod_template(obj) or {}).get("spec", {}) or {}


def all_containers(obj: dict) -> list[dict]:
    spec = pod_spec(obj)
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def only_container(workload: Rendered) -> dict:
    containers = pod_spec(workload.obj).get("containers", [])
    assert len(containers) == 1, f"{workload.ref}: expected one container, found {len(containers)}"
    return containers[0]


def volumes_by_name(obj: dict) -> dict[str, dict]:
    """Pod volumes plus StatefulSet claim templates (which are mountable by name too)."""
    volumes = {volume["name"]: volume for volume in pod_spec(obj).get("volumes", [])}
    for claim in obj.get("spec", {}).get("volumeClaimTemplates", []) if obj.get("kind") == "StatefulSet" else []:
        volumes[claim["metadata"]["name"]] = {"name": claim["metadata"]["name"], "volumeClaimTemplate": claim}
    return volumes


def container_env(container: dict) -> dict[str, str]:
    """Literal env values; references (secretKeyRef...) are not values and are left out."""
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def container_ports(container: dict) -> set:
    """Both the names and the numbers by which a probe or Service may address a container port."""
    ports = set()
    for port in container.get("ports", []):
        ports.add(port["containerPort"])
        if "name" in port:
            ports.add(port["name"])
    return ports


def mount_containing(container: dict, path: str) -> tuple[dict, str]:
    """The volumeMount a container path lives on (longest mountPath prefix) and the path inside it."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/") or "/"
        if path == root or path.startswith(root + "/") or root == "/":
            if best is None or len(root) > len(best["mountPath"].rstrip("/")):
                best = mount
    assert best is not None, f"{path} is on no volumeMount of container {container.get('name')}"
    relative = posixpath.relpath(path, best["mountPath"])
    return best, "" if relative == "." else relative


# --- label selectors ------------------------------------------------------------------------

def label_selector_matches(selector: dict, labels: dict) -> bool:
    """metav1.LabelSelector semantics: matchLabels AND every matchExpression."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_expression_matches(expression, labels) for expression in selector.get("matchExpressions") or [])


def _expression_matches(expression: dict, labels: dict) -> bool:
    key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown selector operator {operator!r}")


def service_selector_matches(selector: dict, labels: dict) -> bool:
    """A Service selector is a bare map (no expressions)."""
    return all(labels.get(key) == value for key, value in selector.items())


# --- files that configMap/secret volumes present ----------------------------------------------

def volume_file_keys(volume_source: dict, available_keys: list[str]) -> dict[str, str]:
    """file path inside the volume -> source key, following `items` when present."""
    items = volume_source.get("items")
    if items:
        return {item["path"]: item["key"] for item in items}
    return {key: key for key in available_keys}


def configmap_files(objects: list[Rendered], workload: Rendered, volume: dict) -> dict[str, str]:
    """path inside the volume -> content, for a configMap volume whose ConfigMap is rendered here."""
    name = volume["configMap"]["name"]
    configmap = find_object(objects, "ConfigMap", name, workload.namespace)
    assert configmap is not None, f"{workload.ref}: volume {volume['name']} uses ConfigMap {name}, not rendered"
    data = configmap.obj.get("data", {}) or {}
    keys = volume_file_keys(volume["configMap"], list(data))
    return {path: data[key] for path, key in keys.items()}


def files_under_mount(objects: list[Rendered], workload: Rendered, mount: dict) -> dict[str, str]:
    """Container path -> content for every file a configMap mount shows (subPath-aware)."""
    volume = volumes_by_name(workload.obj)[mount["name"]]
    if "configMap" not in volume:
        return {}
    files = configmap_files(objects, workload, volume)
    if "subPath" in mount:
        return {mount["mountPath"]: files[mount["subPath"]]}
    return {posixpath.join(mount["mountPath"], path): content for path, content in files.items()}


def iter_configmap_mount_files(objects: list[Rendered], workload: Rendered, container: dict) -> Iterator[tuple[str, str]]:
    for mount in container.get("volumeMounts", []):
        yield from files_under_mount(objects, workload, mount).items()
