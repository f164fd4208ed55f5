"""The rendered YAML read by a YAML 1.1 reader is the render's JSON.

kubectl (go-yaml v2) and PyYAML read YAML 1.1, where a plain `off`, `yes`, `0755`, `1:20` or
`2001-12-14` is a boolean, a number or a date. Each rendered `<plugin>.yaml` is read with PyYAML
and compared, object for object and type for type, with `<plugin>.json` of the same render in
JSON (`render --format json -o`), which has no such ambiguity. tests/oracles/run renders both.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from oracle_k8s import rendered_dir_from_env
from oracle_yaml11 import GO_YAML_ONLY, strings

JSON_DIR_ENV = "MATHISON_RENDERED_JSON_DIR"


def json_dir() -> Path:
    value = os.environ.get(JSON_DIR_ENV)
    if not value:
        pytest.fail(f"{JSON_DIR_ENV} is not set: point it at the folder `mathison-host render "
                    f"--format json -o` wrote for the render in {rendered_dir_from_env()}")
    return Path(value)


def difference(read, expected, path: str = "") -> str | None:
    """Where `read` (from the YAML) first differs from `expected` (from the JSON), if anywhere.
    Types count: PyYAML's False is not the JSON's "off", and True == 1 in Python."""
    if type(read) is not type(expected):
        return f"at {path or '.'} PyYAML reads {read!r} where the JSON has {expected!r}"
    if isinstance(expected, dict):
        if list(read) != list(expected):
            return f"at {path or '.'} PyYAML reads the keys {list(read)!r}, the JSON has {list(expected)!r}"
        for key, value in expected.items():
            found = difference(read[key], value, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(expected, list):
        if len(read) != len(expected):
            return f"at {path} PyYAML reads {len(read)} items, the JSON has {len(expected)}"
        for index, (item, value) in enumerate(zip(read, expected)):
            found = difference(item, value, f"{path}[{index}]")
            if found:
                return found
        return None
    return None if read == expected else f"at {path} PyYAML reads {read!r} where the JSON has {expected!r}"


@pytest.mark.parametrize("path", sorted(rendered_dir_from_env().glob("*.yaml")), ids=lambda p: p.name)
def test_pyyaml_reads_the_json_render(path):
    json_path = json_dir() / path.with_suffix(".json").name
    assert json_path.is_file(), f"{json_path} is missing: the JSON render has other files than the YAML one"
    expected = json.loads(json_path.read_text())["items"]
    with path.open() as handle:
        read = [document for document in yaml.safe_load_all(handle) if document is not None]
    assert len(read) == len(expected), f"{path.name}: {len(read)} documents, the JSON has {len(expected)} objects"
    problems = []
    for index, (got, want) in enumerate(zip(read, expected)):
        found = difference(got, want)
        if found:
            problems.append(f"{path.name}[{index}] {want.get('kind')}/{want.get('metadata', {}).get('name')}: {found}")
    assert not problems, "\n".join(problems)


def pyyaml_retypes(text: str) -> bool:
    try:
        return yaml.safe_load(f"key: {text}")["key"] != text
    except (yaml.YAMLError, ValueError):  # `=` has no safe constructor; `0b_` no digits
        return True


def test_the_hostile_strings_are_ones_pyyaml_retypes():
    # Guards the strings the hostile fixture renders: a generator drifting to harmless strings
    # would leave the comparison above with nothing to catch.
    harmless = [text for text in strings() if text not in GO_YAML_ONLY and not pyyaml_retypes(text)]
    assert not harmless, f"PyYAML reads these plain as strings: {harmless}"
