"""SARIF 2.1.0 (OASIS): the findings as results on their revision files, for GitHub code scanning and others."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..findings import ERROR, Finding
from .record import Record

SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
ROOT = "SRCROOT"


def render(record: Record) -> str:
    rules: dict[str, int] = {}
    rule_objects: list[dict[str, Any]] = []
    results = []
    for finding in record.findings:
        if finding.rule not in rules:
            rules[finding.rule] = len(rule_objects)
            rule_objects.append({"id": finding.rule, "shortDescription": {"text": finding.rule},
                                 **({"help": {"text": finding.hint}} if finding.hint else {}),
                                 "defaultConfiguration": {"level": _level(finding)}})
        results.append(_result(record, finding, rules[finding.rule]))
    invocation = {"executionSuccessful": record.passed, "exitCode": record.exit_code,
                  "exitCodeDescription": record.title}
    if not record.passed:
        invocation["toolExecutionNotifications"] = [{"level": "error", "message": {"text": record.summary}}]
    run = {
        "tool": {"driver": {"name": "alembic-sidecar", "version": _version(),
                            "rules": rule_objects}},
        "automationDetails": {"id": f"alembic-sidecar/{record.command}/"},
        "originalUriBaseIds": {ROOT: {"uri": Path(record.root).resolve().as_uri() + "/"}},
        "invocations": [invocation],
        "results": results,
    }
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"


def _result(record: Record, finding: Finding, index: int) -> dict[str, Any]:
    result: dict[str, Any] = {"ruleId": finding.rule, "ruleIndex": index, "level": _level(finding),
                              "message": {"text": finding.message + (f" ({finding.hint})" if finding.hint else "")},
                              "partialFingerprints": {"alembicSidecar/v1": fingerprint(record, finding)}}
    # GitHub's upload refuses a result without a location: one of no file (a schema difference) is put on the
    # versions directory, as GitLab's Code Quality needs too.
    path = record.relative(finding.path) or record.relative(record.versions_dir)
    assert path is not None
    location: dict[str, Any] = {"artifactLocation": (
        {"uri": Path(path).as_uri()} if path.startswith("/") else {"uri": path, "uriBaseId": ROOT})}
    if finding.path and finding.line:
        location["region"] = {"startLine": finding.line}
    result["locations"] = [{"physicalLocation": location}]
    if finding.revision:
        result["properties"] = {"revision": finding.revision}
    return result


def fingerprint(record: Record, finding: Finding) -> str:
    """Stable across runs for the same finding: rule, revision, file and message (not the line, which moves)."""
    key = "\0".join((finding.rule, finding.revision or "", record.relative(finding.path) or "", finding.message))
    return hashlib.sha256(key.encode()).hexdigest()


def _level(finding: Finding) -> str:
    return "error" if finding.level == ERROR else "warning"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alembic-sidecar")
    except PackageNotFoundError:
        return "0"
