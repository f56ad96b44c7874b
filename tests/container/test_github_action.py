"""The GitHub Action (action.yml) built and run as GitHub's runner runs a Docker action (actions_runner.py): the
exit code the step fails with, and what the workflow reads back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.databases import assert_no_secrets
from tests.fixtures.docker import REPO

from .actions_runner import RUNNER_UID, ActionsRunner

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


def test_the_steps_fail_and_pass_on_the_commands_exit_codes_as_a_workflow_branches_on_them(
        runner, checkout, pg_database):
    pending = runner.run(checkout, {"command": "check", "database-url": pg_database.url})
    assert pending.exit_code == 8, pending
    upgraded = runner.run(checkout, {"command": "upgrade", "database-url": pg_database.url})
    assert upgraded.exit_code == 0, upgraded
    assert pg_database.revisions() == ["0003"]
    at_heads = runner.run(checkout, {"command": "check", "database-url": pg_database.url})
    assert at_heads.exit_code == 0, at_heads


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
