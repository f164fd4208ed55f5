"""Consistency between the rendered objects that the OpenAPI schemas cannot see.

Each test walks all objects generically and reports every violation at once.
"""
from __future__ import annotations

import re
from typing import Iterator

from oracle_k8s import (USER_OWNED_SECRETS, Rendered, all_containers, container_ports, find_object,
                        label_selector_matches, objects_of_kind, pod_labels, pod_spec, pod_template, service_selector_matches,
                        volumes_by_name)
from oracle_quantity import parse_quantity

# k8s.io/apimachinery/pkg/util/validation
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
IANA_SVC_NAME = re.compile(r"(?=.*[a-z])[a-z0-9]+(-[a-z0-9]+)*")
CREDENTIAL_KEY = re.compile(r"pass(word|wd)?|secret|token|api[-_]?key|credential", re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]*@", re.IGNORECASE)
PASSWORD_SETTING = re.compile(r"^\s*(requirepass|masterauth|password)\b\s*[=:]?\s*\S", re.IGNORECASE | re.MULTILINE)


def report(problems: list[str], what: str) -> None:
    assert not problems, f"{what}:\n" + "\n".join(problems)


def workloads(objects) -> list[Rendered]:
    return [item for item in objects if pod_template(item.obj) is not None]


def pods_in(objects, namespace: str) -> list[dict]:
    return [pod_labels(item.obj) for item in workloads(objects) if item.namespace == namespace]


def walk(node, path: str = "") -> Iterator[tuple[str, object]]:
    """(dotted path, value) for every node of a parsed YAML tree."""
    yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        yield from walk(child, f"{path}.{key}" if path else str(key))


# --- selectors --------------------------------------------------------------------------------

def test_workload_selectors_match_their_pod_template(objects):
    report([f"{w.ref}: selector {w.obj['spec'].get('selector')} does not match {pod_labels(w.obj)}"
            for w in workloads(objects) if w.kind != "CronJob"
            and not label_selector_matches(w.obj["spec"].get("selector") or {}, pod_labels(w.obj))],
           "workload selectors")


def test_service_selectors_select_rendered_pods(objects):
    report([f"{s.ref}: selector {s.obj['spec']['selector']} selects no rendered pod template"
            for s in objects_of_kind(objects, "Service") if s.obj["spec"].get("selector")
            and not any(service_selector_matches(s.obj["spec"]["selector"], labels)
                        for labels in pods_in(objects, s.namespace))],
           "Service selectors")


def test_networkpolicy_and_pdb_selectors_select_rendered_pods(objects):
    selecting = [(item, item.obj["spec"].get("podSelector")) for item in objects_of_kind(objects, "NetworkPolicy")]
    selecting += [(item, item.obj["spec"].get("selector")) for item in objects_of_kind(objects, "PodDisruptionBudget")]
    report([f"{item.ref}: {selector} selects no rendered pod template" for item, selector in selecting
            if selector and not any(label_selector_matches(selector, labels)
                                    for labels in pods_in(objects, item.namespace))],
           "NetworkPolicy/PDB selectors")


def test_statefulset_service_name_is_a_headless_service_for_its_pods(objects):
    problems = []
    for sts in objects_of_kind(objects, "StatefulSet"):
        name = sts.obj["spec"].get("serviceName")
        service = find_object(objects, "Service", name, sts.namespace) if name else None
        if service is None:
            problems.append(f"{sts.ref}: serviceName {name!r} is not a rendered Service")
        elif service.obj["spec"].get("clusterIP") != "None":
            problems.append(f"{sts.ref}: Service {name} is not headless (clusterIP: None)")
        elif not (selector := service.obj["spec"].get("selector")) or not service_selector_matches(
                selector, pod_labels(sts.obj)):
            problems.append(f"{sts.ref}: headless Service {name} does not select its pods")
    report(problems, "StatefulSet serviceName")


# --- volumes and references ---------------------------------------------------------------------

def test_volume_mounts_name_a_volume(objects):
    report([f"{w.ref}: container {c['name']} mounts undefined volume {m['name']}"
            for w in workloads(objects) for c in all_containers(w.obj) for m in c.get("volumeMounts", [])
            if m["name"] not in volumes_by_name(w.obj)],
           "volumeMounts")


def references(obj: dict, kinds: dict[str, tuple[str, ...]]) -> Iterator[tuple[str, str, dict]]:
    """(path, referenced name, node) for nodes under a key of `kinds` (key -> fields that may hold the name)."""
    for path, node in walk(obj):
        fields = kinds.get(path.rsplit(".", 1)[-1], ())
        name = next((node[field] for field in fields if isinstance(node, dict) and field in node), None)
        if name is not None:
            yield path, name, node


# Volume sources, projected sources, env valueFrom and envFrom.
CONFIGMAP_REFS = {"configMap": ("name",), "configMapKeyRef": ("name",), "configMapRef": ("name",)}
SECRET_REFS = {"secret": ("secretName", "name"), "secretKeyRef": ("name",), "secretRef": ("name",)}


def test_configmap_references_exist_with_their_keys(objects):
    problems = []
    for item in objects:
        for path, name, ref in references(item.obj, CONFIGMAP_REFS):
            configmap = find_object(objects, "ConfigMap", name, item.namespace)
            if configmap is None:
                problems.append(f"{item.ref} {path}: ConfigMap {name} is not rendered")
                continue
            keys = set(configmap.obj.get("data") or {}) | set(configmap.obj.get("binaryData") or {})
            wanted = [entry["key"] for entry in ref.get("items", [])] + ([ref["key"]] if "key" in ref else [])
            problems += [f"{item.ref} {path}: ConfigMap {name} has no key {key}" for key in wanted
                         if key not in keys]
    report(problems, "ConfigMap references")


def test_configmap_subpaths_exist(objects):
    problems = []
    for w in workloads(objects):
        volumes = volumes_by_name(w.obj)
        for container in all_containers(w.obj):
            for mount in container.get("volumeMounts", []):
                source = volumes.get(mount["name"], {}).get("configMap")
                if source is None or "subPath" not in mount:
                    continue
                configmap = find_object(objects, "ConfigMap", source["name"], w.namespace)
                paths = ({entry["path"] for entry in source["items"]} if source.get("items")
                         else set((configmap.obj.get("data") or {}) if configmap else ()))
                if mount["subPath"] not in paths:
                    problems.append(f"{w.ref}: subPath {mount['subPath']} is not a file of ConfigMap {source['name']}")
    report(problems, "ConfigMap subPaths")


def test_secret_references_are_rendered_or_user_owned(objects):
    report([f"{item.ref} {path}: Secret {name} is neither rendered nor one of {USER_OWNED_SECRETS}"
            for item in objects for path, name, _ in references(item.obj, SECRET_REFS)
            if name not in USER_OWNED_SECRETS and not find_object(objects, "Secret", name, item.namespace)],
           "Secret references")


def test_user_owned_secrets_are_not_rendered(objects):
    report([item.ref for item in objects_of_kind(objects, "Secret") if item.name in USER_OWNED_SECRETS],
           f"{USER_OWNED_SECRETS} are created by the operator and must not be rendered")


# --- quantities -------------------------------------------------------------------------------

def quantities(obj: dict) -> Iterator[tuple[str, object]]:
    """Every quantity-typed field: resources requests/limits, claim storage, emptyDir sizeLimit."""
    for path, node in walk(obj):
        parts = path.split(".")
        if len(parts) >= 3 and parts[-3] == "resources" and parts[-2] in ("requests", "limits"):
            yield path, node
        elif parts[-1] == "sizeLimit":
            yield path, node


def test_quantities_parse_and_are_not_negative(objects):
    problems = []
    for item in objects:
        for path, value in quantities(item.obj):
            try:
                if parse_quantity(value) < 0:
                    problems.append(f"{item.ref} {path}: negative quantity {value!r}")
            except ValueError as error:
                problems.append(f"{item.ref} {path}: {error}")
    report(problems, "quantities")


def test_requests_do_not_exceed_limits(objects):
    problems = []
    for item in objects:
        for path, resources in walk(item.obj):
            if not (path.endswith("resources") and isinstance(resources, dict)):
                continue
            limits = resources.get("limits") or {}
            for name, request in (resources.get("requests") or {}).items():
                if name in limits and parse_quantity(request) > parse_quantity(limits[name]):
                    problems.append(f"{item.ref} {path}: {name} request {request} > limit {limits[name]}")
    report(problems, "requests vs limits")


# --- ports ------------------------------------------------------------------------------------

def probe_ports(container: dict) -> Iterator[tuple[str, object]]:
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        for handler in ("httpGet", "tcpSocket", "grpc"):
            port = (container.get(kind) or {}).get(handler, {}).get("port")
            if port is not None:
                yield f"{kind}.{handler}", port


def test_probe_ports_exist_on_the_container(objects):
    report([f"{w.ref}: container {c['name']} {where} port {port!r} is not a declared containerPort"
            for w in workloads(objects) for c in all_containers(w.obj) for where, port in probe_ports(c)
            if port not in container_ports(c)],
           "probe ports")


def test_service_target_ports_exist_on_selected_pods(objects):
    problems = []
    for service in objects_of_kind(objects, "Service"):
        selector = service.obj["spec"].get("selector")
        selected = [w for w in workloads(objects) if w.namespace == service.namespace and selector
                    and service_selector_matches(selector, pod_labels(w.obj))]
        for port in service.obj["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            problems += [f"{service.ref}: targetPort {target!r} is not a container port of {w.ref}"
                         for w in selected
                         if not any(target in container_ports(c) for c in pod_spec(w.obj).get("containers", []))]
    report(problems, "Service targetPorts")


# --- names ------------------------------------------------------------------------------------

def name_problems(item: Rendered) -> Iterator[str]:
    name_rule = DNS1035_LABEL if item.kind == "Service" else DNS1123_SUBDOMAIN
    limit = 63 if item.kind in ("Service", "StatefulSet", "Namespace") else 253
    if not (name_rule.fullmatch(item.name) and len(item.name) <= limit):
        yield f"{item.ref}: name {item.name!r} is not a valid {item.kind} name"
    if not DNS1123_LABEL.fullmatch(item.obj.get("metadata", {}).get("namespace", "default")):
        yield f"{item.ref}: namespace is not a DNS-1123 label"
    for container in all_containers(item.obj):
        if not DNS1123_LABEL.fullmatch(container["name"]):
            yield f"{item.ref}: container name {container['name']!r} is not a DNS-1123 label"
        for port in container.get("ports", []):
            if "name" in port and not (IANA_SVC_NAME.fullmatch(port["name"]) and len(port["name"]) <= 15):
                yield f"{item.ref}: port name {port['name']!r} is not an IANA service name"
    for volume in volumes_by_name(item.obj):
        if not DNS1123_LABEL.fullmatch(volume):
            yield f"{item.ref}: volume name {volume!r} is not a DNS-1123 label"


def test_names_are_valid(objects):
    report([problem for item in objects for problem in name_problems(item)], "names")


# --- no credentials in ConfigMaps --------------------------------------------------------------

def credential_problems(configmap: Rendered) -> Iterator[str]:
    for key, value in (configmap.obj.get("data") or {}).items():
        if CREDENTIAL_KEY.search(key):
            yield f"{configmap.ref}: key {key!r} looks like a credential"
        if URL_WITH_PASSWORD.search(str(value)):
            yield f"{configmap.ref}: {key} holds a URL with a password"
        if PASSWORD_SETTING.search(str(value)):
            yield f"{configmap.ref}: {key} sets a password"


def test_configmaps_hold_no_credentials(objects):
    report([problem for item in objects_of_kind(objects, "ConfigMap") for problem in credential_problems(item)],
           "credentials in ConfigMaps (they belong in a Secret)")
