"""GitLab Code Quality: a JSON array of issues (description, check_name, fingerprint, severity, location)."""

from __future__ import annotations

import json

from ..findings import ERROR
from .record import Record
from .sarif import fingerprint

# GitLab's severities are info, minor, major, critical and blocker.
SEVERITY = {ERROR: "major", "warning": "minor"}


def render(record: Record) -> str:
    issues = []
    for finding in record.findings:
        # GitLab needs a path: a finding of no file (a schema difference) is shown on the versions directory.
        path = record.relative(finding.path) or record.relative(record.versions_dir)
        issues.append({
            "type": "issue",
            "description": finding.message + (f" ({finding.hint})" if finding.hint else ""),
            "check_name": finding.rule,
            "fingerprint": fingerprint(record, finding),
            "severity": SEVERITY.get(finding.level, "info"),
            "location": {"path": path, "lines": {"begin": finding.line or 1}},
            "categories": ["Bug Risk"],
        })
    return json.dumps(issues, indent=2) + "\n"
