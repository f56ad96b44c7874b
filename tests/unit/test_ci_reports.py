"""The CI reports' shapes, from records built here: each format read back as its CI system reads it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from alembic_sidecar.ci_reports import Reports, codequality, github, junit, requested, sarif
from alembic_sidecar.ci_reports.record import APPLIED, FAILED, PENDING, ROUND_TRIPPED, Record, Revision, Target
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.findings import ERROR, WARNING, Finding
from alembic_sidecar.settings import from_environ
from tests.fixtures import ci_reports as read

pytestmark = pytest.mark.unit

ROOT = "/work/repo"
RISKY = Finding("require-concurrent-index-creation", ERROR, "CREATE INDEX without CONCURRENTLY locks writes",
                "use op.create_index(..., postgresql_concurrently=True) in an autocommit_block", "r0002",
                f"{ROOT}/migrations/versions/r0002_add_index.py", 14)
DROP = Finding("ban-drop-column", WARNING, "dropping a column breaks the running version, 100% of it, a,b:c",
               "drop it in a later release", "r0003", f"{ROOT}/migrations/versions/r0003_drop.py", 9)
DRIFT = Finding("schema-drift", ERROR, "to match the models Alembic would: add_table audit", "write the revision")


def record(**changes) -> Record:
    base = Record("upgrade", 0, "success", "migrated r0001 -> r0003: 2 revision(s) in 40 ms", ROOT,
                  f"{ROOT}/migrations/versions", ("r0003",), ("r0003",),
                  (Revision("r0002", APPLIED, f"{ROOT}/migrations/versions/r0002_add_index.py", 12),
                   Revision("r0003", APPLIED, f"{ROOT}/migrations/versions/r0003_drop.py", 28)))
    return dataclasses.replace(base, **changes)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("findings", [(), (RISKY, DROP, DRIFT)], ids=["no findings", "findings"])
@pytest.mark.parametrize("exit_code", [0, 11])
def test_sarif_is_valid_against_the_official_schema(tmp_path, findings, exit_code):
    report = read.sarif(write(tmp_path, "r.sarif", sarif.render(record(findings=findings, exit_code=exit_code,
                                                                        title="risky migration"))))
    run = report["runs"][0]
    assert run["invocations"][0]["exitCode"] == exit_code
    assert run["invocations"][0]["executionSuccessful"] is (exit_code == 0)
    assert len(run["results"]) == len(findings)


def test_sarif_results_sit_on_the_revision_file_relative_to_the_root_and_line(tmp_path):
    run = read.sarif(write(tmp_path, "r.sarif", sarif.render(record(findings=(RISKY, DRIFT)))))["runs"][0]
    risky, drift = run["results"]
    location = risky["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "migrations/versions/r0002_add_index.py", "uriBaseId": "SRCROOT"}
    assert location["region"] == {"startLine": 14}
    assert risky["level"] == "error" and risky["ruleId"] == RISKY.rule
    assert run["tool"]["driver"]["rules"][risky["ruleIndex"]]["id"] == RISKY.rule
    assert drift["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "migrations/versions", "uriBaseId": "SRCROOT"}}, "GitHub needs a location"


def test_junit_has_a_case_per_revision_and_finding_and_the_run(tmp_path):
    cases = read.junit(write(tmp_path, "j.xml", junit.render(record(findings=(RISKY, DROP), exit_code=11,
                                                                     title="risky migration"))))
    names = [case.name for case in cases]
    assert names[:2] == ["r0002 applied", "r0003 applied"]
    assert len(cases) == 5 and names[-1] == "run"
    by_name = {case.name: case for case in cases}
    assert by_name["r0002 applied"].is_passed and by_name["r0002 applied"].time == pytest.approx(0.012)
    risky = next(case for case in cases if case.name.startswith(RISKY.rule))
    assert risky.is_failure if hasattr(risky, "is_failure") else not risky.is_passed
    assert "migrations/versions/r0002_add_index.py:14" in risky.name
    assert next(case for case in cases if case.name.startswith(DROP.rule)).is_passed, "a warning passes"
    assert not by_name["run"].is_passed


def test_junit_fails_pending_revisions_of_a_check_and_skips_those_a_failed_upgrade_left(tmp_path):
    revisions = (Revision("r0002", FAILED, None), Revision("r0003", PENDING, None))
    upgrade = read.junit(write(tmp_path, "u.xml", junit.render(record(exit_code=1, title="migration failed",
                                                                       revisions=revisions))))
    assert [case.is_skipped for case in upgrade] == [False, True, False]
    check = read.junit(write(tmp_path, "c.xml", junit.render(record(command="check", exit_code=8,
                                                                     title="pending revisions",
                                                                     revisions=revisions[1:]))))
    assert [case.is_passed for case in check] == [False, False]


def test_junit_shows_a_fleets_targets(tmp_path):
    targets = (Target("eu", "migrated", 0, "migrated", 2, 40), Target("us", "failed", 9, "connection lost"),
               Target("ap", "not started", None, "not started"))
    cases = read.junit(write(tmp_path, "j.xml", junit.render(record(targets=targets, exit_code=9))))
    assert [(case.name, case.is_passed, case.is_skipped) for case in cases if case.classname.endswith(".targets")] \
        == [("eu", True, False), ("us", False, False), ("ap", False, True)]


def test_code_quality_has_gitlabs_fields_with_a_path_for_every_finding(tmp_path):
    issues = read.code_quality(write(tmp_path, "cq.json", codequality.render(record(findings=(RISKY, DROP, DRIFT)))))
    assert [(issue["check_name"], issue["severity"], issue["location"]["path"], issue["location"]["lines"]["begin"])
            for issue in issues] == [(RISKY.rule, "major", "migrations/versions/r0002_add_index.py", 14),
                                     (DROP.rule, "minor", "migrations/versions/r0003_drop.py", 9),
                                     (DRIFT.rule, "major", "migrations/versions", 1)]


def test_a_fingerprint_is_stable_when_the_line_moves():
    moved = dataclasses.replace(RISKY, line=40)
    assert sarif.fingerprint(record(), RISKY) == sarif.fingerprint(record(), moved)
    assert sarif.fingerprint(record(), RISKY) != sarif.fingerprint(record(), DROP)


def test_annotations_are_escaped_as_githubs_runner_decodes_them():
    lines = github.annotations(record(findings=(RISKY, DROP)))
    assert lines[0].startswith("::error file=migrations/versions/r0002_add_index.py,line=14,title=")
    assert all("\n" not in line for line in lines)
    parsed = read.annotations("\n".join(lines))
    assert [(a.level, a.properties.get("line")) for a in parsed] == [("error", "14"), ("warning", "9")]
    assert parsed[1].message == f"{DROP.message}\n{DROP.hint}", "%, commas and colons survive the round trip"


def test_a_file_outside_the_workspace_gets_no_relative_path():
    outside = dataclasses.replace(RISKY, path="/elsewhere/r0002.py")
    assert record().relative(outside.path) == "/elsewhere/r0002.py"
    assert record().relative(f"{ROOT}/a/b.py") == "a/b.py"


def test_a_failure_no_finding_explains_gets_one_error_annotation_and_check_notices_each_pending_file():
    failed = record(command="check", exit_code=8, title="pending revisions", summary="database at base",
                    revisions=(Revision("r0002", PENDING, f"{ROOT}/v/r0002.py"),))
    parsed = read.annotations("\n".join(github.annotations(failed)))
    assert [(a.level, a.properties.get("file")) for a in parsed] == [("error", None), ("notice", "v/r0002.py")]
    assert "exit 8" in parsed[0].message


def test_outputs_have_the_revisions_and_counts_and_multi_line_values_in_the_delimiter_form(tmp_path):
    revisions = (Revision("a", APPLIED, None, 3), Revision("b", PENDING), Revision("c", ROUND_TRIPPED, None, 5))
    text = github.outputs(record(revisions=revisions, findings=(RISKY, DROP), summary="two\nlines",
                                 current=("a",), heads=("c", "d")))
    values = read.outputs(write(tmp_path, "out", text))
    assert values["current"] == "a" and values["heads"] == "c,d"
    assert (values["applied"], values["pending"], values["round-tripped"]) == ("1", "1", "1")
    assert (values["findings"], values["errors"], values["exit-code"]) == ("2", "1", "0")
    assert values["summary"] == "two\nlines"


def test_the_summary_lists_revisions_with_durations_findings_and_targets_in_tables():
    text = github.summary(record(findings=(RISKY, DROP), targets=(Target("eu", "migrated", 0, "ok | fine", 1, 9),)))
    assert text.startswith("### alembic-sidecar upgrade: ✅ passed\n")
    assert "| `r0002` | ✅ applied | 12 ms | `migrations/versions/r0002_add_index.py` |" in text
    assert "`migrations/versions/r0002_add_index.py:14`" in text
    assert "#### Findings (2)" in text and "#### Targets (1)" in text
    assert "ok \\| fine" in text, "a pipe must not split a table cell"


def test_a_redacted_record_carries_no_secret():
    secret = "s3cr3t-pass"
    leaky = record(summary=f"postgresql://u:{secret}@h/db failed",
                   findings=(dataclasses.replace(RISKY, message=f"password={secret}", hint=secret),))
    clean = leaky.redacted([secret])
    for text in (sarif.render(clean), junit.render(clean), codequality.render(clean), github.summary(clean),
                 github.outputs(clean), "\n".join(github.annotations(clean))):
        assert secret not in text


def test_no_report_is_requested_without_a_setting_or_github():
    assert requested(from_environ({}, ["check"]), {}) is None
    assert requested(from_environ({}, ["check"]), {"GITHUB_ACTIONS": "false"}) is None
    reports = requested(from_environ({}, ["check"]), {"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": "/o"})
    assert reports is not None and reports.github and reports.github_files == (("GITHUB_OUTPUT", "/o"),)


@pytest.mark.parametrize("case", ["missing directory", "a directory", "not writable"])
def test_a_report_path_that_cannot_be_written_names_its_setting(tmp_path, case):
    path = {"missing directory": str(tmp_path / "nope" / "r.sarif"), "a directory": str(tmp_path),
            "not writable": "/proc/version"}[case]
    reports = Reports((("MIGRATE_REPORT_SARIF", path, "sarif"),), False, ())
    with pytest.raises(ConfigurationError, match="^MIGRATE_REPORT_SARIF="):
        reports.check()


def test_trying_a_report_path_leaves_no_file_behind(tmp_path):
    path = tmp_path / "r.sarif"
    Reports((("MIGRATE_REPORT_SARIF", str(path), "sarif"),), False, ()).check()
    assert not path.exists()


def test_a_report_that_fails_to_write_is_returned_not_raised(tmp_path):
    reports = Reports((("MIGRATE_REPORT_JUNIT", "/dev/full", "junit"),), False, ())
    assert [name for name, _ in reports.write(record(), None)] == ["MIGRATE_REPORT_JUNIT"]


def test_the_summary_stays_far_below_githubs_limit_with_thousands_of_findings():
    many = tuple(dataclasses.replace(DRIFT, message=f"{DRIFT.message} {n}") for n in range(5000))
    text = github.summary(record(findings=many))
    assert len(text.encode()) < 512 * 1024
    assert f"and {5000 - github.IN_SUMMARY} more" in text


def test_a_run_that_asks_for_no_report_does_not_even_import_them():
    import subprocess
    import sys

    probe = ("import sys\nfrom alembic_sidecar import cli\nfrom alembic_sidecar.settings import from_environ\n"
             "verdict = cli._Verdict()\ncli._start_reports(from_environ({}, ['upgrade']), {}, verdict, [])\n"
             "print(verdict.reports is None, 'alembic_sidecar.ci_reports' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["True", "False"]


def _messages(*extra):
    from alembic_sidecar.report import Revisions, Step, Steps

    return [Revisions(current=(), heads=("r3",), pending=(("r1", "/v/r1.py"), ("r2", "/v/r2.py"), ("r3", "/v/r3.py"))),
            Steps(steps=(("r1", "/v/r1.py"), ("r2", "/v/r2.py"), ("r3", "/v/r3.py")), table="alembic_version",
                  schema=None),
            Step("r1", ("r1",), 5), Step("r2", ("r2",), 7), *extra]


def test_the_parents_own_read_wins_and_revisions_a_rollback_undid_are_not_applied():
    from alembic_sidecar.ci_reports.collect import from_messages
    from alembic_sidecar.ci_reports.record import Details

    details = Details()
    from_messages(details, _messages(), command="upgrade", failure="revision file /v/r3.py failed: boom",
                  read_back=("r1",), undone=["r2"], culprit=("r3", "/v/r3.py"), secrets=[])
    assert details.current == ("r1",) and details.heads == ("r3",)
    assert [(r.revision, r.outcome, r.duration_ms) for r in details.revisions] == [
        ("r1", APPLIED, 5), ("r2", PENDING, None), ("r3", FAILED, None)]
    (finding,) = details.findings
    assert (finding.rule, finding.revision, finding.path) == ("migration-failed", "r3", "/v/r3.py")


def test_a_childs_finding_is_masked_with_what_only_the_parent_knows():
    from alembic_sidecar.ci_reports.collect import from_messages
    from alembic_sidecar.ci_reports.record import Details
    from alembic_sidecar.report import Failed

    leaked = dataclasses.asdict(Finding("round-trip", ERROR, "url had ini-pa55word in it", "", "r2", "/v/r2.py", 3))
    details = Details()
    from_messages(details, _messages(Failed(1, "migration failed", "x", findings=(leaked,))), command="test",
                  failure="x", read_back=None, undone=[], culprit=None, secrets=["ini-pa55word"])
    assert "ini-pa55word" not in details.findings[0].message
    assert [r.outcome for r in details.revisions] == [PENDING, FAILED, PENDING], "test's steps are not its outcome"
