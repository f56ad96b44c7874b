"""The image writes the CI reports (its wheel carries ci_reports/): a failed `upgrade` run as a GitHub Actions
container step runs it, the workspace mounted, every report read back from the host."""

from __future__ import annotations

import pytest

from tests.fixtures import ci_reports as read

from .support import assert_failed

pytestmark = pytest.mark.container


def test_a_failed_upgrade_in_the_image_writes_every_report_on_the_revision_file(pg_database, revisions,
                                                                              container_sidecar, shared_dir):
    good = revisions.logged_revision()
    bad = revisions.failing()
    env = {"DATABASE_URL": pg_database.url, "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": "/migrations",
           "GITHUB_OUTPUT": "/reports/output", "GITHUB_STEP_SUMMARY": "/reports/summary.md",
           "MIGRATE_REPORT_SARIF": "/reports/report.sarif", "MIGRATE_REPORT_JUNIT": "/reports/junit.xml",
           "MIGRATE_REPORT_CODEQUALITY": "/reports/codequality.json"}
    result = container_sidecar.run(env=env, volumes={str(shared_dir): "/reports"})
    assert_failed(result, 1)
    path = f"versions/{next(revisions.dir.glob(f'{bad}_*.py')).name}"
    (annotation,) = read.annotations(result.stdout)
    assert annotation.level == "error" and annotation.properties["file"] == path and "line" in annotation.properties
    (finding,) = read.sarif(shared_dir / "report.sarif")["runs"][0]["results"]
    assert finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == path
    assert [issue["location"]["path"] for issue in read.code_quality(shared_dir / "codequality.json")] == [path]
    assert [(case.name, case.is_passed) for case in read.junit(shared_dir / "junit.xml")][:2] == \
        [(f"{good} applied", True), (f"{bad} failed", False)]
    outputs = read.outputs(shared_dir / "output")
    assert (outputs["exit-code"], outputs["applied"], outputs["current"]) == ("1", "1", good)
    assert f"| `{good}` | ✅ applied |" in (shared_dir / "summary.md").read_text(encoding="utf-8")
