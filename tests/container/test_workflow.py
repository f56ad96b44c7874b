"""The workflow to copy (ci/github/migrations.yml) run job by job as GitHub's runner runs it: its `run:` steps in bash
as the runner's user, its steps that use this action through actions_runner.py, its expressions (`if:`,
``${{ steps.ID.outputs.NAME }}``) evaluated between steps, and the `migrate` job's PostgreSQL service container
started on a network of the job's own, reached by its label, as the runner does.

What a job-runner would fetch from GitHub is stood in for: ``actions/checkout`` by a clone made beforehand,
``upload-sarif`` by reading the file it would upload, the service's ``postgres:17`` by the local stand-in image.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fixtures import ci_reports
from tests.fixtures.docker import REPO, docker

from .actions_runner import RUNNER_UID, ActionsRunner, StepResult
from .support import RISKY_REVISION
from .test_github_action import EXAMPLES

pytestmark = pytest.mark.container

WORKFLOW = yaml.safe_load((REPO / "ci" / "github" / "migrations.yml").read_text())
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


class Job:
    """One job of the workflow, its steps run in order in ``workspace``; ``results`` by step id."""

    def __init__(self, runner: ActionsRunner, name: str, workspace: Path, github: dict[str, str],
                 network: str = "host") -> None:
        self.runner, self.spec, self.workspace, self.github = runner, WORKFLOW["jobs"][name], workspace, github
        self.network = network
        self.outputs: dict[str, dict[str, str]] = {}
        self.ran: list[tuple[str, Any]] = []  # (step name, its result), for the steps that ran
        self.failed = False

    def run(self) -> Job:
        assert self.evaluate(self.spec.get("if", "true")), f"the job would not run on {self.github}"
        for step in self.spec["steps"]:
            condition = step.get("if", "success()")
            if not self.evaluate(condition if "()" in condition else f"success() && ({condition})"):
                continue
            result, code = self.step(step)
            self.ran.append((step.get("name", step.get("uses")), result))
            self.failed = self.failed or code != 0
        return self

    def step(self, step: dict[str, Any]) -> tuple[Any, int]:
        uses = step.get("uses", "")
        with_ = {key: self.substitute(str(value)) for key, value in step.get("with", {}).items()}
        if uses.startswith("actions/checkout@"):
            return "checked out beforehand", 0
        if uses.startswith("github/codeql-action/upload-sarif@"):
            return ci_reports.sarif(self.workspace / with_["sarif_file"]), 0  # what it would upload, validated
        if uses.startswith("OWNER/alembic-sidecar@"):
            result = self.runner.run(self.workspace, with_, network=self.network)
            self.outputs[step.get("id", "")] = result.outputs
            return result, result.exit_code
        assert "run" in step, f"a step this test cannot run: {step}"
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.runner.root / "home"), "GITHUB_ACTIONS": "true",
               "GITHUB_WORKSPACE": str(self.workspace),
               **{f"GITHUB_{key.upper()}": value for key, value in self.github.items()}}
        done = subprocess.run(["setpriv", f"--reuid={RUNNER_UID}", f"--regid={RUNNER_UID}", "--clear-groups",
                               "bash", "-e", "-c", self.substitute(step["run"])],
                              cwd=self.workspace, env=env, capture_output=True, text=True, timeout=120)
        return done, done.returncode

    def substitute(self, text: str) -> str:
        return EXPRESSION.sub(lambda match: str(self.value(match.group(1))), text)

    def value(self, expression: str) -> str:
        parts = expression.split(".")
        if parts[0] == "steps" and parts[2] == "outputs":
            return self.outputs.get(parts[1], {}).get(parts[3], "")
        if parts[0] == "github":
            return self.github[parts[1]]
        raise AssertionError(f"an expression this test cannot evaluate: {expression}")

    def evaluate(self, condition: str) -> bool:
        """The few expression forms the workflow's `if:`s use, as Python."""
        text = re.sub(r"hashFiles\('([^']*)'\)", lambda m: repr("h" if list(self.workspace.glob(m.group(1))) else ""),
                      condition)
        text = re.sub(r"\b(steps\.[\w-]+\.outputs\.[\w-]+|github\.\w+)\b", lambda m: repr(self.value(m.group(1))),
                      text)
        text = (text.replace("&&", " and ").replace("||", " or ").replace("always()", "True")
                .replace("success()", str(not self.failed)).replace("true", "True"))
        return bool(eval(text, {"__builtins__": {}}))  # only the literals and operators substituted above

    def result(self, name: str) -> Any:
        return dict(self.ran)[name]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), "-c", "user.name=test", "-c", "user.email=test@example.com",
                    "-c", "init.defaultBranch=main", *args], check=True, capture_output=True)


@pytest.fixture
def pull_request(runner: ActionsRunner, tmp_path: Path) -> Path:
    """An application whose main branch has the example revisions and whose pull request adds a risky 0004,
    checked out as actions/checkout does with fetch-depth 0 (origin/main is there), owned by the runner's user."""
    origin = tmp_path / "origin"
    shutil.copytree(EXAMPLES, origin / "migrations" / "versions")
    git(origin, "init", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "main")
    git(origin, "checkout", "-qb", "feature")
    (origin / "migrations" / "versions" / "0004_order_status.py").write_text(RISKY_REVISION)
    git(origin, "add", "-A")
    git(origin, "commit", "-qm", "orders get a status")
    workspace = runner.root / "workspace"
    git(tmp_path, "clone", "-q", "--branch", "feature", str(origin), str(workspace))
    (runner.root / "home").mkdir()
    subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(workspace), str(runner.root / "home")],
                   check=True)
    return workspace


@pytest.fixture
def runner(action_image) -> Iterator[ActionsRunner]:
    """The runner's directories outside pytest's (mode 0700, root's): its `run:` steps run as the runner's user."""
    root = Path(tempfile.mkdtemp(prefix="sidecar-test-runner-"))
    root.chmod(0o711)
    yield ActionsRunner(REPO / "action.yml", action_image.image, root)
    shutil.rmtree(root)


@pytest.fixture
def service_network(base_images):
    """The migrate job's network and its `postgres` service (its env from the workflow), healthy, as the runner
    starts them; removed afterwards."""
    service = WORKFLOW["jobs"]["migrate"]["services"]["postgres"]
    network, name = f"github_network_{secrets.token_hex(6)}", f"sidecar-test-service-{secrets.token_hex(4)}"
    docker("network", "create", network)
    try:
        env = [arg for key, value in service["env"].items() for arg in ("-e", f"{key}={value}")]
        docker("run", "-d", "--name", name, "--network", network, "--network-alias", "postgres", *env,
               base_images.postgres)
        deadline = time.monotonic() + 60
        while docker("exec", name, "pg_isready", "-U", "postgres", "-h", "127.0.0.1", check=False).returncode:
            assert time.monotonic() < deadline, docker("logs", name, check=False).stderr[-2000:]
            time.sleep(0.5)
        yield network
    finally:
        docker("rm", "-f", "-v", name, check=False)
        docker("network", "rm", network, check=False)


def test_the_lint_job_lints_only_what_the_pull_request_adds_and_keeps_its_sarif(runner, pull_request):
    job = Job(runner, "lint", pull_request, {"event_name": "pull_request", "base_ref": "main"}).run()
    assert job.outputs["base"]["heads"] == "0003"  # the base branch's head, from its own revision files
    lint: StepResult = job.result("Lint the revisions this pull request adds")
    assert lint.exit_code == 11, lint
    assert {note.properties["file"] for note in lint.annotations} == {"migrations/versions/0004_order_status.py"}
    sarif = job.result("Findings in code scanning")  # run although lint failed: always()
    assert len(sarif["runs"][0]["results"]) == 2
    assert job.failed


def test_the_lint_job_does_not_run_on_a_push(runner, pull_request):
    with pytest.raises(AssertionError, match="would not run"):
        Job(runner, "lint", pull_request, {"event_name": "push", "base_ref": ""}).run()


def test_the_migrate_job_upgrades_and_checks_its_postgresql_service_reached_by_its_label(
        runner, pull_request, service_network):
    job = Job(runner, "migrate", pull_request, {"event_name": "pull_request", "base_ref": "main"},
              network=service_network).run()
    assert not job.failed, [str(result) for _, result in job.ran]
    assert job.outputs["upgrade"]["applied"] == "4"
    assert job.result("Applied").stdout.strip() == "applied 4 revisions, now at 0004"
    assert (pull_request / "alembic-sidecar-upgrade.xml").is_file()
