"""The values files' JSON Schema (`mathison-host schema -p ...`) read by an independent
validator, python-jsonschema, as editors (yaml-language-server) and CI would use it.

For postgres and redis, the golden tests' values files pass; a wrong type, an unknown option and
a section for a plugin that is not rendered fail, each at its own path, as a render refuses them.
For the hostile-info fixture, whose schema refers to itself (`"$ref": "#"`), the references
still check at every depth once its schema is part of the values schema. tests/oracles/run
writes both schemas into MATHISON_VALUES_SCHEMA_DIR.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

SCHEMA_DIR_ENV = "MATHISON_VALUES_SCHEMA_DIR"
GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def validator(name: str) -> jsonschema.protocols.Validator:
    directory = os.environ.get(SCHEMA_DIR_ENV)
    if not directory:
        pytest.fail(f"{SCHEMA_DIR_ENV} is not set: point it at a folder holding postgres-redis.json "
                    "(`mathison-host schema -p postgres -p redis`) and self-reference.json (the same "
                    "for the hostile-info fixture's self-reference behaviour)")
    schema = json.loads((Path(directory) / name).read_text())
    # The draft the schema declares, and a schema valid under that draft's meta-schema.
    cls = jsonschema.validators.validator_for(schema, default=None)
    assert cls is jsonschema.Draft202012Validator, schema.get("$schema")
    cls.check_schema(schema)
    return cls(schema)


def problems(validator: jsonschema.protocols.Validator, values) -> list[tuple[str, str]]:
    """(dotted path, keyword) of every error, sorted."""
    return sorted((".".join(str(part) for part in error.absolute_path), error.validator)
                  for error in validator.iter_errors(values))


@pytest.fixture(scope="module")
def values_schema():
    return validator("postgres-redis.json")


def test_sections_are_the_plugins(values_schema):
    assert list(values_schema.schema["properties"]) == ["postgres", "redis"]
    assert values_schema.schema["additionalProperties"] is False


@pytest.mark.parametrize("name", ["custom-values.yaml", "production-values.yaml"])
def test_golden_values_files_pass(values_schema, name):
    values = yaml.safe_load((GOLDEN / name).read_text())
    assert set(values) == {"postgres", "redis"}, "the file sets both plugins' values"
    assert problems(values_schema, values) == []


def test_an_empty_values_file_passes(values_schema):
    # A render takes an empty file (or one of comments) as no values.
    assert problems(values_schema, yaml.safe_load("# nothing yet\n")) == []


@pytest.mark.parametrize("text, expected", [
    # A string where the option is a boolean.
    ("redis:\n  persistence:\n    enabled: 'yes'\n", [("redis.persistence.enabled", "type")]),
    # A number where it is a string (or null).
    ("postgres:\n  persistence:\n    storageClassName: 5\n",
     [("postgres.persistence.storageClassName", "type")]),
    # Not a Kubernetes quantity.
    ("postgres:\n  persistence:\n    size: 10 GB\n", [("postgres.persistence.size", "pattern")]),
    # An unknown option, reported on the mapping that holds it.
    ("postgres:\n  persistance:\n    size: 20Gi\n", [("postgres", "additionalProperties")]),
    ("redis:\n  persistence:\n    enabeld: false\n", [("redis.persistence", "additionalProperties")]),
    # A section for a plugin that is not rendered.
    ("postgress:\n  database: app\n", [("", "additionalProperties")]),
    # An empty section: a render merges null over the plugin's defaults, and refuses it too.
    ("redis:\n", [("redis", "type")]),
    # Every problem, each at its own path.
    ("redis:\n  persistence:\n    enabled: 1\npostgres:\n  extensions: vector\n",
     [("postgres.extensions", "type"), ("redis.persistence.enabled", "type")]),
], ids=["bool", "string", "quantity", "option", "nested-option", "plugin", "null-section", "many"])
def test_wrong_values_fail_at_their_path(values_schema, text, expected):
    assert problems(values_schema, yaml.safe_load(text)) == expected


def test_a_section_need_not_set_what_the_defaults_set(values_schema):
    # A render merges the section over the plugin's defaults, which set the rest of `metrics`
    # and of `resources`; a list (pgHba) replaces the default one, so its items need every key.
    merged = "postgres:\n  metrics: {enabled: true}\n  resources:\n    limits: {memory: 1Gi}\n"
    assert problems(values_schema, yaml.safe_load(merged)) == []
    replaced = "postgres:\n  pgHba:\n    - {type: host, address: 10.0.0.0/8}\n"
    # database, user and method
    assert problems(values_schema, yaml.safe_load(replaced)) == [("postgres.pgHba.0", "required")] * 3


def test_unknown_keys_are_named(values_schema):
    [error] = values_schema.iter_errors({"redis": {"persistence": {"enabeld": False}}})
    assert "'enabeld'" in error.message, error.message


def test_a_self_referencing_plugin_schema_checks_at_every_depth():
    schema = validator("self-reference.json")

    def tree(leaf):
        return {"hostile-info": {"left": {"right": {"up": {"down": leaf}}}}}

    assert problems(schema, tree({})) == []
    # Were "#" still the plugin's, it would be the values file's root, which has no "left".
    assert problems(schema, tree(5)) == [("hostile-info.left.right.up.down", "type")]
