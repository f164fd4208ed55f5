"""PgBouncer in front of Mathison's PostgreSQL, as plain Kubernetes objects (dicts).

No WebAssembly here: `app.py` adapts this module to the WIT world, and `test_pgbouncer.py`
runs it natively. The configuration schema is the single source of the defaults.
"""
from __future__ import annotations

import re
from fractions import Fraction

NAME = "pgbouncer"
VERSION = "0.1.0"
DESCRIPTION = ("PgBouncer connection pooling in front of Mathison's PostgreSQL, as a hardened "
               "Deployment reachable only from labelled client pods.")
CONFIG_MAP = "pgbouncer-config"
PORT_NAME = "pgbouncer"
PORT = 6432
# The image's `postgres` user (alpine's uid/gid 70) owns nothing on a volume: any fixed uid works,
# but it must match the image for the entrypoint-free command below.
UID = 70
CONFIG_DIR = "/etc/pgbouncer"
AUTH_DIR = "/etc/pgbouncer-auth"

KINDS = [
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
]

# Kubernetes quantity grammar (k8s.io/apimachinery resource.Quantity); the host enforces the
# pattern before `render`, `render` compares values.
QUANTITY_PATTERN = r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_KEY_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
# PgBouncer's ini syntax has no quoting: a database or user name is one plain word.
INI_WORD_PATTERN = r"^[A-Za-z0-9_][-A-Za-z0-9_.]{0,62}$"


def _obj(description: str, properties: dict) -> dict:
    return {"type": "object", "description": description, "additionalProperties": False,
            "properties": properties, "default": {key: prop["default"] for key, prop in properties.items()}}


def _labels(description: str, default: dict) -> dict:
    return {"type": "object", "description": description, "minProperties": 1,
            "propertyNames": {"pattern": LABEL_KEY_PATTERN},
            "additionalProperties": {"type": "string", "pattern": LABEL_VALUE_PATTERN}, "default": default}


def _quantity(description: str, default: str) -> dict:
    return {"type": "string", "description": description, "pattern": QUANTITY_PATTERN, "default": default}


def _resource_list(description: str, cpu: str, memory: str) -> dict:
    return _obj(description, {
        "cpu": _quantity('CPU as a Kubernetes quantity, in cores: "250m" is a quarter of one.', cpu),
        "memory": _quantity('Memory as a Kubernetes quantity, in bytes: "64Mi", "1Gi".', memory),
    })


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Config",
    **_obj("The pgbouncer plugin's configuration.", {
        "image": {"type": "string", "minLength": 1, "pattern": r"^\S+$", "default": "edoburu/pgbouncer:v1.24.1-p1",
                  "description": "Container image of PgBouncer that runs as uid 70 (edoburu/pgbouncer). Pin a digest "
                                 "(`...@sha256:...`) for reproducible deployments."},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 20, "default": 2,
                     "description": "Number of PgBouncer pods. They hold no state; two keep the pool up while one "
                                    "is rescheduled. Each opens up to `pool.defaultPoolSize` server connections."},
        "postgres": _obj("The PostgreSQL server behind the pool: the postgres plugin's Service in the same "
                         "namespace.", {
            "service": {"type": "string", "pattern": DNS_SUBDOMAIN_PATTERN, "default": "postgres",
                        "description": "Name of the PostgreSQL Service; the pool connects to "
                                       "SERVICE.NAMESPACE.svc.cluster.local."},
            "port": {"type": "integer", "minimum": 1, "maximum": 65535, "default": 5432,
                     "description": "Port of the PostgreSQL Service."},
            "database": {"type": "string", "pattern": INI_WORD_PATTERN, "default": "mathison",
                         "description": "The database that clients reach through the pool, under the same name."},
            "user": {"type": "string", "pattern": INI_WORD_PATTERN, "default": "mathison",
                     "description": "The user in DATABASE_POOL_URL; it must be in the userlist."},
            "podLabels": _labels("Labels of the PostgreSQL pods, for the pool's egress rule; the postgres plugin's "
                                 "selector labels (`app.kubernetes.io/instance` is added from the render).",
                                 {"app.kubernetes.io/name": "postgres"}),
            "clientLabels": _labels("Labels the pool's pods carry to pass PostgreSQL's NetworkPolicy: the postgres "
                                    "plugin's `clientLabels`.", {"mathison.dev/postgres-client": "true"}),
        }),
        "pool": _obj("How connections are pooled.", {
            "mode": {"enum": ["session", "transaction", "statement"], "default": "transaction",
                     "description": "When a server connection returns to the pool: after each transaction suits "
                                    "most web applications; `session` keeps session state (prepared statements "
                                    "before PostgreSQL protocol-level support, advisory locks, LISTEN)."},
            "defaultPoolSize": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 20,
                                "description": "Server connections per user and database, per pod. Keep "
                                               "replicas × this below PostgreSQL's max_connections."},
            "maxClientConnections": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 200,
                                     "description": "Client connections each pod accepts."},
        }),
        "auth": _obj("Where PgBouncer's userlist comes from.", {
            "existingSecret": {"type": "string", "pattern": DNS_SUBDOMAIN_PATTERN, "default": "mathison-secrets",
                               "description": "An existing Secret in the namespace holding the userlist: lines "
                                              "`\"user\" \"password\"` (plain or a SCRAM secret). It is mounted "
                                              "as a file, never put in the environment."},
            "key": {"type": "string", "pattern": r"^[-._a-zA-Z0-9]+$", "default": "pgbouncer-userlist",
                    "description": "The key of the userlist in that Secret."},
        }),
        "resources": _obj("CPU and memory of the PgBouncer container. Each limit must be at least its request.", {
            "requests": _resource_list("What the scheduler reserves for the container.", "50m", "32Mi"),
            "limits": _resource_list("The most the container may use: CPU above it is throttled, memory above "
                                     "it is killed.", "500m", "128Mi"),
        }),
        "clientLabels": _labels("Labels that a pod must carry to reach PgBouncer on 6432; the NetworkPolicy "
                                "refuses every other pod. Clients must run in the same namespace.",
                                {"mathison.dev/pgbouncer-client": "true"}),
    }),
}
DEFAULT_CONFIG = SCHEMA["default"]


class InvalidConfig(Exception):
    """The configuration passed the schema but is still wrong; `problems` are (path, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


_SUFFIX = {"n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "": Fraction(1),
           "k": Fraction(10**3), "M": Fraction(10**6), "G": Fraction(10**9), "T": Fraction(10**12),
           "P": Fraction(10**15), "E": Fraction(10**18), "Ki": Fraction(2**10), "Mi": Fraction(2**20),
           "Gi": Fraction(2**30), "Ti": Fraction(2**40), "Pi": Fraction(2**50), "Ei": Fraction(2**60)}


def quantity(text: str) -> Fraction:
    """The exact value of a quantity that matched QUANTITY_PATTERN."""
    number, suffix = re.fullmatch(r"\+?([0-9.]+)(.*)", text).groups()
    if suffix[:1] in ("e", "E"):
        return Fraction(number) * Fraction(10) ** int(suffix[1:])
    return Fraction(number) * _SUFFIX[suffix]


def check(config: dict) -> None:
    """What the schema cannot say."""
    problems = []
    resources = config["resources"]
    for resource in ("cpu", "memory"):
        request, limit = resources["requests"][resource], resources["limits"][resource]
        for kind, value in (("requests", request), ("limits", limit)):
            if quantity(value) <= 0:
                problems.append((f"resources.{kind}.{resource}", f'must be above zero, not "{value}"'))
        if quantity(limit) < quantity(request):
            problems.append((f"resources.limits.{resource}", f'the limit "{limit}" is below the request "{request}"'))
    if problems:
        raise InvalidConfig(problems)


def recommended_labels(instance: str, image: str) -> dict:
    labels = selector_labels(instance)
    labels.update({"app.kubernetes.io/component": "connection-pooler", "app.kubernetes.io/part-of": "mathison",
                   "app.kubernetes.io/managed-by": "mathison-host"})
    tag = image.split("@")[0].rsplit("/", 1)[-1].partition(":")[2]
    if tag and re.fullmatch(LABEL_VALUE_PATTERN, tag):
        labels["app.kubernetes.io/version"] = tag
    return dict(sorted(labels.items()))


def selector_labels(instance: str) -> dict:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/instance": instance}


def pgbouncer_ini(config: dict, postgres_host: str) -> str:
    postgres, pool = config["postgres"], config["pool"]
    return (
        "; Rendered by the mathison-host pgbouncer plugin.\n"
        "[databases]\n"
        f"{postgres['database']} = host={postgres_host} port={postgres['port']} dbname={postgres['database']}\n"
        "\n"
        "[pgbouncer]\n"
        f"listen_addr = *\nlisten_port = {PORT}\n"
        "; TCP only: no socket file, so the root filesystem can stay read-only.\n"
        "unix_socket_dir =\n"
        "auth_type = scram-sha-256\n"
        f"auth_file = {AUTH_DIR}/userlist.txt\n"
        f"pool_mode = {pool['mode']}\n"
        f"default_pool_size = {pool['defaultPoolSize']}\n"
        f"max_client_conn = {pool['maxClientConnections']}\n"
        "; Sent by JDBC and psycopg at connect time; harmless to drop.\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )


def checkov_skips() -> dict:
    return {
        "checkov.io/skip1": "CKV_K8S_43=the image is configurable; pin a digest through the plugin's image setting",
        "checkov.io/skip2": "CKV_K8S_15=IfNotPresent lets the pod restart while the registry is unreachable",
        "checkov.io/skip3": f"CKV_K8S_40=the image runs as its postgres user, uid {UID}",
    }


def deployment(config: dict, namespace: str, labels: dict, selector: dict) -> dict:
    pod_labels = dict(sorted({**config["postgres"]["clientLabels"], **labels}.items()))
    probe = {"tcpSocket": {"port": PORT_NAME}, "timeoutSeconds": 5, "successThreshold": 1}
    container = {
        "name": NAME,
        "image": config["image"],
        "imagePullPolicy": "IfNotPresent",
        # Not the image's entrypoint, which would write a config into the read-only root.
        "command": ["pgbouncer", f"{CONFIG_DIR}/pgbouncer.ini"],
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "resources": config["resources"],
        "securityContext": {
            "allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]},
        },
        "readinessProbe": {**probe, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {**probe, "periodSeconds": 10, "failureThreshold": 6},
        "volumeMounts": [
            {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
            {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        ],
    }
    volumes = [
        {"name": "config", "configMap": {"name": CONFIG_MAP}},
        {"name": "auth", "secret": {"secretName": config["auth"]["existingSecret"], "defaultMode": 0o440,
                                    "items": [{"key": config["auth"]["key"], "path": "userlist.txt"}]}},
    ]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels, "annotations": checkov_skips()},
        "spec": {
            "replicas": config["replicas"],
            "selector": {"matchLabels": selector},
            # Never fewer ready pods than asked for while rolling.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": checkov_skips()},
                "spec": {
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    # PgBouncer ≥ 1.23 stops on SIGTERM once its clients' transactions end.
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def network_policy(config: dict, namespace: str, instance: str, labels: dict, selector: dict) -> dict:
    postgres_pods = dict(sorted({**config["postgres"]["podLabels"], "app.kubernetes.io/instance": instance}.items()))
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": config["clientLabels"]}}],
                         "ports": [{"protocol": "TCP", "port": PORT}]}],
            "egress": [
                {"to": [{"podSelector": {"matchLabels": postgres_pods}}],
                 "ports": [{"protocol": "TCP", "port": config["postgres"]["port"]}]},
                # The pool resolves the PostgreSQL Service by name.
                {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
                 "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
            ],
        },
    }


def render(namespace: str, instance: str, config: dict) -> tuple[list[dict], list[tuple[str, str, str | None]]]:
    """The objects, and the connection values as (key, value, secret input or None)."""
    check(config)
    labels = recommended_labels(instance, config["image"])
    selector = selector_labels(instance)
    postgres_host = f"{config['postgres']['service']}.{namespace}.svc.cluster.local"
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": namespace, "labels": labels},
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}]},
    }
    config_map = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": namespace, "labels": labels},
        "data": {"pgbouncer.ini": pgbouncer_ini(config, postgres_host)},
    }
    objects = [config_map, service, deployment(config, namespace, labels, selector),
               network_policy(config, namespace, instance, labels, selector)]
    host = f"{NAME}.{namespace}.svc.cluster.local"
    postgres = config["postgres"]
    connections = [
        ("DATABASE_POOL_HOST", host, None),
        ("DATABASE_POOL_PORT", str(PORT), None),
        ("DATABASE_POOL_URL", f"postgresql://{postgres['user']}:{{secret}}@{host}:{PORT}/{postgres['database']}",
         "postgres-password"),
    ]
    return objects, connections
