"""The GitHub Action (action.yml) built and run as GitHub's runner runs a Docker action (actions_runner.py): the
exit code the step fails with, and what the workflow reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.fixtures.databases import assert_no_secrets
from tests.fixtures import ci_reports
from tests.fixtures.docker import REPO

from .actions_runner import RUNNER_UID, ActionsRunner
from .support import RISKY_REVISION

pytestmark = pytest.mark.container

EXAMPLES = REPO / "image" / "examples" / "versions"


@pytest.fixture
def runner(action_image, tmp_path) -> ActionsRunner:
    return ActionsRunner(REPO / "action.yml", action_image.image, tmp_path)


@pytest.fixture
def checkout(runner) -> Path:
    """A checkout of an application with the example revisions in the action's default versions-dir."""
    workspace = runner.workspace()
    shutil.copytree(EXAMPLES, workspace / "migrations" / "versions")
    return workspace


def test_check_and_upgrade_steps_exit_annotate_summarise_and_set_outputs_as_a_workflow_reads_them(
        runner, checkout, pg_database):
    declared = set(yaml.safe_load((REPO / "action.yml").read_text())["outputs"])
    pending = runner.run(checkout, {"command": "check", "database-url": pg_database.url})
    assert pending.exit_code == 8, pending
    assert set(pending.outputs) == declared, "action.yml's outputs are what the step writes"
    assert pending.outputs | {"summary": ""} == {
        "command": "check", "exit-code": "8", "current": "", "heads": "0003", "applied": "0", "pending": "3",
        "failed": "0", "round-tripped": "0", "findings": "0", "errors": "0", "summary": ""}
    # The failed step's error, and a notice on each pending revision's file (relative to the workspace).
    assert sorted((note.level, note.properties.get("file", "")) for note in pending.annotations) == sorted(
        [("error", "")] + [("notice", f"migrations/versions/{path.name}") for path in EXAMPLES.glob("*.py")])
    assert "alembic-sidecar check" in pending.summary and "exit 8" in pending.summary

    upgraded = runner.run(checkout, {"command": "upgrade", "database-url": pg_database.url})
    assert upgraded.exit_code == 0, upgraded
    assert pg_database.revisions() == ["0003"]
    assert (upgraded.outputs["exit-code"], upgraded.outputs["applied"], upgraded.outputs["heads"]) == ("0", "3", "0003")
    assert upgraded.annotations == []
    for path in sorted(EXAMPLES.glob("*.py")):  # each applied revision with its file, relative to the workspace
        assert f"`migrations/versions/{path.name}`" in upgraded.summary, upgraded.summary

    at_heads = runner.run(checkout, {"command": "check", "database-url": pg_database.url})
    assert at_heads.exit_code == 0, at_heads
    assert (at_heads.outputs["exit-code"], at_heads.outputs["pending"]) == ("0", "0")


def test_a_lint_step_annotates_each_finding_on_its_revision_file_and_line_and_writes_sarif(runner, checkout):
    risky = checkout / "migrations" / "versions" / "0004_order_status.py"
    risky.write_text(RISKY_REVISION)
    lines = risky.read_text().splitlines()
    add_column = next(n for n, line in enumerate(lines, 1) if "op.add_column" in line)
    create_index = next(n for n, line in enumerate(lines, 1) if "op.create_index" in line)
    step = runner.run(checkout, {"command": "lint", "driver": "postgresql", "lint-since": "0003",
                                 "sarif": "lint.sarif"})
    assert step.exit_code == 11, step
    found = {(note.level, note.properties["file"], int(note.properties["line"])) for note in step.annotations}
    assert found == {("error", "migrations/versions/0004_order_status.py", add_column),
                     ("error", "migrations/versions/0004_order_status.py", create_index)}, step.stdout
    assert (step.outputs["exit-code"], step.outputs["findings"], step.outputs["errors"]) == ("11", "2", "2")
    assert "0004_order_status.py" in step.summary
    sarif = ci_reports.sarif(checkout / "lint.sarif")  # valid against SARIF 2.1.0's schema
    located = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                r["locations"][0]["physicalLocation"]["region"]["startLine"]) for r in sarif["runs"][0]["results"]}
    assert located == {("migrations/versions/0004_order_status.py", add_column),
                       ("migrations/versions/0004_order_status.py", create_index)}


def test_the_inputs_reach_the_sidecar_target_and_versions_dir(runner, pg_database):
    workspace = runner.workspace()
    shutil.copytree(EXAMPLES, workspace / "db" / "revisions")
    step = runner.run(workspace, {"command": "upgrade", "database-url": pg_database.url,
                                  "versions-dir": "db/revisions", "target": "0002"})
    assert step.exit_code == 0, step
    assert pg_database.revisions() == ["0002"]


def test_the_steps_env_sets_any_other_setting_and_a_bad_one_fails_the_step_with_exit_2(runner, checkout):
    step = runner.run(checkout, {"command": "check", "database-url": "postgresql://u:hunter2-secret@127.0.0.1/x"},
                      env={"MIGRATE_WAIT_TIMEOUT": "soon"})
    assert step.exit_code == 2, step
    assert "MIGRATE_WAIT_TIMEOUT" in step.stdout + step.stderr
    assert "hunter2-secret" not in step.stdout + step.stderr + step.summary + str(step.outputs)


def test_the_workspace_and_the_runners_files_stay_the_runners(runner, checkout, pg_database):
    """The container runs as root (Dockerfile.action) only to write what the runner hands it; the checkout it
    reads is left as the runner's user owns it."""
    step = runner.run(checkout, {"command": "upgrade", "database-url": pg_database.url})
    assert step.exit_code == 0, step
    owners = {path.stat().st_uid for path in checkout.rglob("*")}
    assert owners == {RUNNER_UID}
    assert_no_secrets(step.stdout + step.stderr)
