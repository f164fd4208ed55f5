"""checkov's Kubernetes policies pass; the only tolerated skips are declared in the manifests."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from oracle_runtime import describe, run_bounded

# Unfixable with the official images (MANIFESTS.md): image digest, pull policy Always, uid >= 10000.
ALLOWED_SKIPS = {"CKV_K8S_43", "CKV_K8S_15", "CKV_K8S_40"}
SKIP_ANNOTATION_PREFIXES = ("checkov.io/skip", "bridgecrew.io/skip")
CHECKOV_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def checkov_report(rendered_dir) -> dict:
    checkov = Path(sys.executable).with_name("checkov")
    # --skip-download: no calls to the vendor's API (this machine has no network besides registries).
    result = run_bounded([str(checkov), "--framework", "kubernetes", "-d", str(rendered_dir), "-o", "json",
                          "--skip-download"], timeout=CHECKOV_TIMEOUT_S)
    assert result.stdout.strip(), describe(result)
    report = json.loads(result.stdout)
    # One framework gives one report object; be robust to the list form too.
    reports = report if isinstance(report, list) else [report]
    return {
        "failed": [check for r in reports for check in r["results"]["failed_checks"]],
        "skipped": [check for r in reports for check in r["results"]["skipped_checks"]],
        "parsing_errors": sum(r["summary"]["parsing_errors"] for r in reports),
        "resource_count": sum(r["summary"]["resource_count"] for r in reports),
    }


def declared_skips(objects) -> dict[tuple[str, str], str]:
    """(object ref, check id) -> reason, from `checkov.io/skipN: CKV_ID=reason` annotations."""
    declared = {}
    for item in objects:
        for key, value in (item.obj.get("metadata", {}).get("annotations") or {}).items():
            if key.startswith(SKIP_ANNOTATION_PREFIXES):
                check_id, _, reason = str(value).partition("=")
                declared[(item.ref, check_id.strip())] = reason.strip()
    return declared


def test_checkov_parsed_every_object(checkov_report, objects):
    assert checkov_report["parsing_errors"] == 0
    assert checkov_report["resource_count"] >= len(objects), checkov_report["resource_count"]


def test_no_failed_checks(checkov_report):
    failures = [f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
                for c in checkov_report["failed"]]
    assert not failures, "checkov failures:\n" + "\n".join(failures)


def test_skips_are_allowed_ones(checkov_report, objects):
    skipped = {c["check_id"] for c in checkov_report["skipped"]}
    declared = {check_id for _, check_id in declared_skips(objects)}
    assert skipped | declared <= ALLOWED_SKIPS, f"skips outside {sorted(ALLOWED_SKIPS)}: {sorted(skipped | declared)}"


def test_skip_annotations_carry_a_reason(checkov_report, objects):
    declared = declared_skips(objects)
    missing = [f"{ref} {check_id}" for (ref, check_id), reason in declared.items() if not reason]
    assert not missing, "skip annotations without a justification:\n" + "\n".join(missing)
    # checkov reports the annotation's text as the suppression comment: each skip it applied
    # must be one of ours, with our reason.
    reasons = set(declared.values())
    unexplained = [f"{c['check_id']} {c['resource']}: {c['check_result'].get('suppress_comment')!r}"
                   for c in checkov_report["skipped"] if c["check_result"].get("suppress_comment") not in reasons]
    assert not unexplained, "skips not matching a manifest annotation:\n" + "\n".join(unexplained)
