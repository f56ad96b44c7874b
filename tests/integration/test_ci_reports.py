"""The CI reports of real runs (issue 16, item 3), read back as each CI system reads them: lint's findings on their
revision file and line, check with pending revisions, upgrade applying and failing, drift differing, test's failing
round trip, on PostgreSQL, MariaDB and SQLite (conftest's ``database``); a fleet; bad report paths; secrets."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fixtures import ci_reports as read
from tests.fixtures.databases import register_secret

from .conftest import assert_clean_failure, assert_exit
from .naming import DRIFTED, copy_history
from .test_lint import BASE, URLS
from .test_fleet import UNREACHABLE_PASSWORD, fleet_of, unreachable_line  # noqa: F401 - fleet_of: a fixture

pytestmark = pytest.mark.integration

SETTINGS = ("MIGRATE_REPORT_SARIF", "MIGRATE_REPORT_JUNIT", "MIGRATE_REPORT_CODEQUALITY")


@dataclass
class Reports:
    """Where one run writes every report, as a GitHub Actions step with all three report files."""

    root: Path

    @property
    def env(self) -> dict[str, str]:
        return {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.root),
                "GITHUB_STEP_SUMMARY": str(self.root / "summary.md"), "GITHUB_OUTPUT": str(self.root / "output"),
                "MIGRATE_REPORT_SARIF": str(self.root / "report.sarif"),
                "MIGRATE_REPORT_JUNIT": str(self.root / "junit.xml"),
                "MIGRATE_REPORT_CODEQUALITY": str(self.root / "codequality.json")}

    def sarif(self):
        return read.sarif(self.root / "report.sarif")

    def results(self):
        return self.sarif()["runs"][0]["results"]

    def junit(self):
        return read.junit(self.root / "junit.xml")

    def code_quality(self):
        return read.code_quality(self.root / "codequality.json")

    def outputs(self):
        return read.outputs(self.root / "output")

    def summary(self) -> str:
        return (self.root / "summary.md").read_text(encoding="utf-8")

    def everything(self, stdout: str) -> str:
        return stdout + "".join((self.root / name).read_text(encoding="utf-8") for name in (
            "report.sarif", "junit.xml", "codequality.json", "summary.md", "output"))


@pytest.fixture
def reports(tmp_path) -> Reports:
    return Reports(tmp_path)


def relative(reports: Reports, revisions, rev: str) -> str:
    return next(revisions.dir.glob(f"{rev}_*.py")).relative_to(reports.root).as_posix()


def line_of(revisions, rev: str, text: str) -> int:
    lines = next(revisions.dir.glob(f"{rev}_*.py")).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def test_check_with_pending_revisions_reports_each_one_in_every_format(database, revisions, sidecar, reports):
    ids = revisions.chain(2)
    result = sidecar.run("check", env={"DATABASE_URL": database.url, **reports.env})
    assert_clean_failure(result, 8, "database at base")
    outputs = reports.outputs()
    assert (outputs["exit-code"], outputs["pending"], outputs["applied"], outputs["current"], outputs["heads"]) == \
        ("8", "2", "0", "", ids[-1])
    notices = [a for a in read.annotations(result.stdout) if a.level == "notice"]
    assert [a.properties["file"] for a in notices] == [relative(reports, revisions, rev) for rev in ids]
    assert [a.level for a in read.annotations(result.stdout)].count("error") == 1
    cases = reports.junit()
    assert [(case.name, case.is_passed) for case in cases] == [(f"{ids[0]} pending", False),
                                                               (f"{ids[1]} pending", False), ("run", False)]
    run = reports.sarif()["runs"][0]
    assert run["invocations"][0]["exitCode"] == 8 and run["results"] == []
    assert reports.code_quality() == []
    assert "⏳ pending" in reports.summary() and "exit 8 (pending revisions)" in reports.summary()


def test_upgrade_reports_each_applied_revision_with_its_duration(database, revisions, sidecar, reports):
    ids = revisions.chain(2)
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url, **reports.env})
    assert_exit(result, 0)
    outputs = reports.outputs()
    assert (outputs["exit-code"], outputs["applied"], outputs["pending"], outputs["current"], outputs["heads"]) == \
        ("0", "2", "0", ids[-1], ids[-1])
    logged = {event["revision"]: event["duration_ms"] for event in result.named("revision_applied")}
    for rev in ids:
        assert f"| `{rev}` | ✅ applied | {logged[rev]} ms | `{relative(reports, revisions, rev)}` |" in \
            reports.summary()
    cases = reports.junit()
    assert all(case.is_passed for case in cases) and [case.name for case in cases] == \
        [f"{ids[0]} applied", f"{ids[1]} applied", "run"]
    assert cases[0].time == pytest.approx(logged[ids[0]] / 1000)
    assert reports.results() == [] and reports.code_quality() == []
    assert read.annotations(result.stdout) == []


def test_a_failing_upgrade_reports_the_revision_file_and_the_line_that_raised(database, revisions, sidecar, reports):
    good = revisions.logged_revision()
    bad = revisions.failing()
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url, **reports.env})
    assert_clean_failure(result, 1, bad)
    path, line = relative(reports, revisions, bad), line_of(revisions, bad, "no_such_table")
    (annotation,) = read.annotations(result.stdout)
    assert (annotation.level, annotation.properties["file"], annotation.properties["line"]) == ("error", path,
                                                                                               str(line))
    (sarif,) = reports.results()
    assert sarif["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == path
    assert sarif["locations"][0]["physicalLocation"]["region"]["startLine"] == line
    (issue,) = reports.code_quality()
    assert issue["location"] == {"path": path, "lines": {"begin": line}} and issue["check_name"] == "migration-failed"
    outcomes = {case.name: case.is_passed for case in reports.junit()}
    assert outcomes[f"{good} applied"] is True and outcomes[f"{bad} failed"] is False and outcomes["run"] is False
    outputs = reports.outputs()
    assert (outputs["exit-code"], outputs["applied"], outputs["failed"], outputs["current"]) == ("1", "1", "1", good)


def test_drift_reports_each_difference_as_a_finding(database, sidecar, reports, tmp_path):
    naming = copy_history(tmp_path)
    assert_exit(sidecar.run("upgrade", env=naming.env(database)), 0)
    result = sidecar.run("drift", env={**naming.env(database, metadata="naming_drifted:metadata"), **reports.env})
    assert_clean_failure(result, 10, "differ")
    expected = sorted(f"to match the models Alembic would: {difference}" for difference in DRIFTED)
    assert sorted(result["message"]["text"].split(" (")[0] for result in reports.results()) == expected
    assert {result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for result in reports.results()} \
        == {"naming/versions"}
    assert sorted(issue["check_name"] for issue in reports.code_quality()) == ["schema-drift"] * 2
    assert all(issue["location"]["path"] == "naming/versions" for issue in reports.code_quality())
    assert sorted(a.message.split("\n")[0] for a in read.annotations(result.stdout)) == expected
    assert reports.outputs()["findings"] == "2" and "#### Findings (2)" in reports.summary()


def test_a_failed_round_trip_is_a_finding_on_its_revision(database, revisions, sidecar, reports):
    first = revisions.add('    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))\n',
                          '    op.drop_table("users")\n')
    forgetful = revisions.add('    op.add_column("users", sa.Column("email", sa.String(100)))\n', "    pass\n")
    result = sidecar.run("test", env={"DATABASE_URL": database.url, "MIGRATE_ALLOW_DOWNGRADE": "true",
                                      **reports.env})
    assert_clean_failure(result, 1, f"revision {forgetful} failed its round trip at downgrade")
    (finding,) = reports.results()
    assert finding["ruleId"] == "round-trip" and finding["properties"]["revision"] == forgetful
    assert finding["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        relative(reports, revisions, forgetful)
    outcomes = [(case.name, case.is_passed) for case in reports.junit() if "revisions" in case.classname]
    assert outcomes == [(f"{first} round-tripped", True), (f"{forgetful} failed", False)]
    assert reports.outputs()["round-tripped"] == "1"
    assert "remove_column users.email" in reports.summary()


def test_check_at_the_heads_on_the_fast_path_reports_the_revisions(database, revisions, sidecar, reports):
    ids = revisions.chain(1)
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": database.url}), 0)
    result = sidecar.run("check", env={"DATABASE_URL": database.url, **reports.env})
    assert_exit(result, 0)
    outputs = reports.outputs()
    assert (outputs["current"], outputs["heads"], outputs["exit-code"]) == (ids[0], ids[0], "0")
    assert reports.summary().startswith("### alembic-sidecar check: ✅ passed")


def test_annotations_are_whole_lines_among_the_json_logs(sqlite_database, revisions, sidecar, reports):
    revisions.chain(1)
    revisions.failing()
    result = sidecar.run("upgrade", env={"DATABASE_URL": sqlite_database.url, **reports.env})
    assert_exit(result, 1)
    for line in result.stdout.splitlines():
        assert line.startswith("::") or isinstance(json.loads(line), dict), line
    assert len(read.annotations(result.stdout)) == 1


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("case", ["missing directory", "a directory", "not writable"])
def test_a_report_path_that_cannot_be_written_is_exit_2_before_any_database_work(pg_database, revisions, sidecar,
                                                                                tmp_path, setting, case):
    revisions.chain(1)
    path = {"missing directory": str(tmp_path / "missing" / "report"), "a directory": str(tmp_path),
            "not writable": "/proc/version"}[case]  # /proc/version: not even root may write it
    result = sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url, setting: path})
    assert_clean_failure(result, 2, f"{setting}=")
    assert not result.named("database_ready"), "no login before the settings are sound"
    assert pg_database.tables() == []


def test_a_report_that_cannot_be_written_after_the_run_keeps_the_exit_code(sqlite_database, revisions, sidecar):
    revisions.chain(1)
    env = {"DATABASE_URL": sqlite_database.url, "MIGRATE_REPORT_JUNIT": "/dev/full"}  # opens, never takes a byte
    failed = sidecar.run("check", env=env)
    assert_exit(failed, 8)
    assert failed.one("report_not_written")["setting"] == "MIGRATE_REPORT_JUNIT"
    migrated = sidecar.run("upgrade", env=env)
    assert_exit(migrated, 0)
    assert migrated.one("report_not_written")["exit_code"] == 0


def test_commands_without_reports_write_none(sqlite_database, revisions, sidecar, reports):
    revisions.chain(1)
    result = sidecar.run("history", env={"DATABASE_URL": sqlite_database.url, **reports.env})
    assert_exit(result, 0)
    assert not (reports.root / "report.sarif").exists() and not (reports.root / "output").exists()


def test_heads_sets_the_heads_output_a_pull_requests_lint_since_takes(revisions, sidecar, reports):
    revisions.chain(2)
    result = sidecar.run("heads", env={"DB_DRIVER": "postgresql", **reports.env})  # offline: nothing contacted
    assert_exit(result, 0)
    assert result.stdout.strip() == revisions.head
    assert reports.outputs()["heads"] == revisions.head and reports.outputs()["exit-code"] == "0"


ECHO_URL_AND_FAIL = '''\
    url = op.get_bind().engine.url
    raise RuntimeError("revision {rev} fails on purpose; connected with " + url.render_as_string(hide_password=False)
                       + " password=" + repr(url.password))
'''


def test_no_password_in_any_report_or_annotation(pg_database, revisions, sidecar, reports):
    password = register_secret("r3port-s3cret:p@ss")
    revisions.chain(1)
    bad = revisions.add(ECHO_URL_AND_FAIL, message="echoes the url")
    url = pg_database.url.replace("://postgres@", f"://postgres:{quote(password, safe='')}@")
    # The shared server trusts every login: the password is sent nowhere but into the revision's error.
    result = sidecar.run("upgrade", env={"DATABASE_URL": url, **reports.env})
    failed = assert_clean_failure(result, 1, bad, "fails on purpose")
    assert "127.0.0.1" in failed["error"], "the URL is still shown, masked"
    text = reports.everything(result.stdout)
    assert "fails on purpose" in text
    for form in (password, quote(password, safe=""), "r3port-s3cret"):
        assert form not in text


def test_a_run_that_never_logs_in_still_reports_its_exit_code(revisions, sidecar, reports):
    revisions.chain(1)
    result = sidecar.run("upgrade", env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
                                         "MIGRATE_WAIT_TIMEOUT": "1", **reports.env})
    assert_clean_failure(result, 3)
    (annotation,) = read.annotations(result.stdout)
    assert annotation.level == "error" and annotation.message.startswith("exit 3: ")
    assert reports.sarif()["runs"][0]["invocations"][0]["exitCode"] == 3
    (run,) = reports.junit()
    assert run.name == "run" and not run.is_passed
    assert reports.outputs()["exit-code"] == "3" and reports.code_quality() == []


def test_a_fleet_reports_one_row_and_one_test_case_per_target(fleet_of, revisions, sidecar, reports):
    revisions.chain(2)
    fleet = fleet_of("sqlite-files", 2)
    unreachable = unreachable_line()
    fleet.write([fleet.members[0].line, unreachable, fleet.members[1].line])
    result = sidecar.run(env={**fleet.settings(MIGRATE_CONTINUE_ON_ERROR="true", MIGRATE_WAIT_TIMEOUT="1"),
                              **reports.env})
    assert_exit(result, 3)
    targets = [(case.name, case.is_passed) for case in reports.junit() if case.classname.endswith(".targets")]
    assert [passed for _, passed in targets] == [True, False, True]
    assert targets[0][0] == fleet.members[0].line and "***" in targets[1][0] and "127.0.0.1" in targets[1][0]
    summary = reports.summary()
    assert "#### Targets (3)" in summary and "| ✅ migrated | 0 | 2 |" in summary and "| ❌ failed | 3 |" in summary
    assert reports.outputs()["exit-code"] == "3"
    assert UNREACHABLE_PASSWORD not in reports.everything(result.stdout)


LINTED = [('op.create_index("ix_orders_customer", "orders", ["customer_id"])', "require-concurrent-index-creation"),
          ('op.drop_column("orders", "legacy")', "ban-drop-column"),
          ('op.rename_table("customers", "clients")', "renaming-table")]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_lint_findings_sit_on_their_revision_file_and_line_in_every_report(revisions, sidecar, reports, backend):
    revisions.add(BASE, message="base")
    risky = revisions.add("".join(f"    {call}\n" for call, _ in LINTED), message="risky")
    path = relative(reports, revisions, risky)
    # SQLite has the rules every database shares; PostgreSQL adds squawk's (the index).
    expected = {(rule, line_of(revisions, risky, call)) for call, rule in LINTED
                if backend == "postgresql" or rule != "require-concurrent-index-creation"}
    result = sidecar.run("lint", env={"DATABASE_URL": URLS[backend], **reports.env})
    assert_clean_failure(result, 11)
    annotations = read.annotations(result.stdout)
    assert {(a.properties["title"].split(" ")[0], int(a.properties["line"])) for a in annotations} == expected
    assert {(a.level, a.properties["file"]) for a in annotations} == {("error", path)}
    results = reports.results()
    assert {(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in results} == expected
    assert {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results} == {path}
    assert {(i["check_name"], i["location"]["lines"]["begin"]) for i in reports.code_quality()} == expected
    failures = [case for case in reports.junit() if case.classname.endswith(".findings")]
    assert len(failures) == len(expected) and not any(case.is_passed for case in failures)
    assert all(f"{path}:" in case.name for case in failures)
    outputs = reports.outputs()
    assert (outputs["exit-code"], outputs["findings"], outputs["errors"]) == ("11", str(len(expected)),
                                                                             str(len(expected)))
    assert "secret-pw-marker" not in reports.everything(result.stdout)


def test_lint_warnings_alone_pass_and_are_reported_as_warnings(revisions, sidecar, reports):
    revisions.add(BASE)
    call = 'op.alter_column("orders", "customer_id", nullable=False, existing_type=sa.BigInteger)'
    rev = revisions.add(f"    {call}\n")
    result = sidecar.run("lint", env={"DATABASE_URL": URLS["postgresql"], **reports.env})
    assert_exit(result, 0)
    (annotation,) = read.annotations(result.stdout)
    assert (annotation.level, annotation.properties["line"]) == ("warning", str(line_of(revisions, rev, call)))
    (sarif,) = reports.results()
    assert sarif["level"] == "warning" and reports.sarif()["runs"][0]["invocations"][0]["executionSuccessful"]
    assert [issue["severity"] for issue in reports.code_quality()] == ["minor"]
    assert all(case.is_passed for case in reports.junit())
    assert reports.summary().startswith("### alembic-sidecar lint: ✅ passed") and "⚠️ warning" in reports.summary()


def test_an_edited_applied_revision_is_reported_on_its_file_by_check_and_upgrade(database, revisions, sidecar,
                                                                                   reports):
    ids = revisions.chain(2)
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": database.url}), 0)
    edited = next(revisions.dir.glob(f"{ids[0]}_*.py"))
    edited.write_text(edited.read_text().replace('op.create_table("t_', 'op.create_table("t2_', 1))
    path = relative(reports, revisions, ids[0])
    check = sidecar.run("check", env={"DATABASE_URL": database.url, **reports.env})
    assert_clean_failure(check, 12, ids[0])
    (annotation,) = [a for a in read.annotations(check.stdout) if a.level == "error"]
    assert annotation.properties["file"] == path and "applied-history-changed" in annotation.properties["title"]
    (sarif,) = reports.results()
    assert (sarif["ruleId"], sarif["level"]) == ("applied-history-changed", "error")
    assert sarif["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == path
    (issue,) = reports.code_quality()
    assert issue["check_name"] == "applied-history-changed" and issue["location"]["path"] == path
    assert reports.outputs()["exit-code"] == "12" and reports.outputs()["errors"] == "1"
    # upgrade (MIGRATE_VERIFY_HISTORY=warn): passes, with the change as a warning in the reports.
    upgrade = sidecar.run("upgrade", env={"DATABASE_URL": database.url, **reports.env})
    assert_exit(upgrade, 0)
    (warning,) = read.annotations(upgrade.stdout)
    assert warning.level == "warning" and warning.properties["file"] == path
    assert [(r["ruleId"], r["level"]) for r in reports.results()] == [("applied-history-changed", "warning")]
