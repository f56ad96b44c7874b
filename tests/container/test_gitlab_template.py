"""The GitLab CI template (ci/gitlab/alembic-sidecar.yml) run for real by gitlab-ci-local on the local Docker engine:
a project that includes it with inputs, its jobs in the image under test, against the real PostgreSQL.

gitlab-ci-local (pinned in tests/setup/gitlab-ci-local, installed by tests/run) runs each job as GitLab's Docker
executor does: the project copied into a volume at $CI_PROJECT_DIR and handed to the image's user, the script in the
image's shell, the artifacts (``artifacts:paths``) copied back to .gitlab-ci-local/artifacts/JOB/. No registry here:
the jobs take the image under test by its local tag, gitlab-ci-local's helper container is a local stand-in
(tests/setup/gitlab-ci-local/helper.Dockerfile), and the jobs join the host network to reach 127.0.0.1.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.fixtures.databases import assert_no_secrets
from tests.fixtures import ci_reports
from tests.fixtures.docker import IMAGE, REPO, build_image

from .support import RISKY_REVISION

pytestmark = pytest.mark.container

TOOL_DIR = REPO / "tests" / "setup" / "gitlab-ci-local"
TOOL = TOOL_DIR / "node_modules" / ".bin" / "gitlab-ci-local"
TEMPLATE = REPO / "ci" / "gitlab" / "alembic-sidecar.yml"


@pytest.fixture(scope="session")
def gitlab_ci_local() -> Path:
    """The pinned gitlab-ci-local, installed from its lock when tests/run has not done it yet."""
    if not TOOL.exists():
        if shutil.which("npm") is None:
            pytest.fail("gitlab-ci-local is not installed and there is no npm: run tests/run", pytrace=False)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(TOOL_DIR)], check=True,
                       capture_output=True, timeout=600)
    return TOOL


def junit_cases(path: Path) -> dict[str, bool]:
    """Each test case of a JUnit report, read by a JUnit library as GitLab's test report reads it: passed or not."""
    return {case.name: case.is_passed for case in ci_reports.junit(path)}


class GitlabProject:
    """A git repository with a .gitlab-ci.yml that includes the template, and the example revisions."""

    def __init__(self, root: Path, image: str, helper: str) -> None:
        self.root, self.image, self.helper = root, image, helper
        shutil.copytree(REPO / "image" / "examples" / "versions", root / "migrations" / "versions")
        (root / "ci").mkdir()
        shutil.copy(TEMPLATE, root / "ci" / TEMPLATE.name)

    def pipeline(self, tool: Path, *inputs: dict[str, str], variables: dict[str, str]) -> subprocess.CompletedProcess:
        """Run the pipeline made of one include of the template per ``inputs``; returns gitlab-ci-local's run."""
        includes = [{"local": f"ci/{TEMPLATE.name}", "inputs": {"image": self.image, **each}} for each in inputs]
        (self.root / ".gitlab-ci.yml").write_text(yaml.safe_dump({"include": includes}, sort_keys=False))
        git = ["git", "-C", str(self.root), "-c", "user.name=test", "-c", "user.email=test@example.com"]
        if not (self.root / ".git").exists():
            subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "pipeline"], check=True)
        argv = [str(tool), "--network", "host", "--pull-policy", "if-not-present",
                "--helper-image", self.helper, "--no-color", "--concurrency", "1"]
        for key, value in variables.items():
            argv += ["--variable", f"{key}={value}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=600, cwd=self.root)
        assert_no_secrets(done.stdout + done.stderr)
        return done

    def job_log(self, job: str) -> str:
        return (self.root / ".gitlab-ci-local" / "output" / f"{job}.log").read_text()


    def artifact(self, job: str, name: str) -> Path:
        """A file the job kept as an artifact, where gitlab-ci-local copies it back."""
        return self.root / ".gitlab-ci-local" / "artifacts" / job / name


@pytest.fixture(scope="session")
def helper_image(python_bases) -> str:
    """gitlab-ci-local's helper container, a local stand-in (tests/setup/gitlab-ci-local/helper.Dockerfile) on the
    oldest Python base: Debian bookworm, whose packages every machine here can install."""
    return build_image(f"{IMAGE}-gitlab-ci-local-helper", TOOL_DIR, dockerfile=TOOL_DIR / "helper.Dockerfile",
                       build_args={"BASE_IMAGE": python_bases["oldest"].image})


@pytest.fixture
def gitlab_project(tmp_path, ci_image, helper_image) -> GitlabProject:
    """The project on the image the template names by default, the CI variant (tagged locally as ``ci_image``)."""
    return GitlabProject(tmp_path / "project", ci_image, helper_image)


def test_the_template_upgrades_then_checks_a_database_in_a_gitlab_pipeline(gitlab_ci_local, gitlab_project,
                                                                          pg_database):
    done = gitlab_project.pipeline(gitlab_ci_local, {"command": "upgrade", "stage": "build"}, {"command": "check"},
                                   variables={"DATABASE_URL": pg_database.url})
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "PASS  alembic-sidecar-upgrade" in done.stdout and "PASS  alembic-sidecar-check" in done.stdout
    assert pg_database.revisions() == ["0003"]
    assert '"event": "migration_complete"' in gitlab_project.job_log("alembic-sidecar-upgrade")
    # The merge request's test report: a passing case per applied revision, and the run's own.
    cases = junit_cases(gitlab_project.artifact("alembic-sidecar-upgrade", "alembic-sidecar-upgrade.junit.xml"))
    assert sorted(cases) == ["0001 applied", "0002 applied", "0003 applied", "run"] and all(cases.values()), cases
    assert ci_reports.code_quality(gitlab_project.artifact("alembic-sidecar-check",
                                                           "alembic-sidecar-check.codequality.json")) == []


def test_a_lint_job_fails_on_a_risky_revision_with_its_findings_in_the_merge_requests_reports(
        gitlab_ci_local, gitlab_project):
    risky = gitlab_project.root / "migrations" / "versions" / "0004_order_status.py"
    risky.write_text(RISKY_REVISION)
    done = gitlab_project.pipeline(gitlab_ci_local, {"command": "lint", "driver": "postgresql"}, variables={})
    assert "FAIL  alembic-sidecar-lint" in done.stdout, done.stdout[-4000:]
    assert '"exit_code": 11' in gitlab_project.job_log("alembic-sidecar-lint")
    quality = ci_reports.code_quality(gitlab_project.artifact("alembic-sidecar-lint",
                                                              "alembic-sidecar-lint.codequality.json"))
    lines = risky.read_text().splitlines()
    expected = {next(n for n, line in enumerate(lines, 1) if call in line) for call in ("op.add_column",
                                                                                        "op.create_index")}
    assert {(issue["location"]["path"], issue["location"]["lines"]["begin"]) for issue in quality} == {
        ("migrations/versions/0004_order_status.py", line) for line in expected}
    cases = junit_cases(gitlab_project.artifact("alembic-sidecar-lint", "alembic-sidecar-lint.junit.xml"))
    assert not any(cases.values()) and len(cases) == 3, cases  # a failing case per finding, and the run's


def test_a_check_with_pending_revisions_fails_its_gitlab_job_with_exit_8(gitlab_ci_local, gitlab_project,
                                                                        pg_database):
    done = gitlab_project.pipeline(gitlab_ci_local, {"command": "check"}, variables={"DATABASE_URL": pg_database.url})
    assert done.returncode != 0, done.stdout[-4000:]
    assert "FAIL  alembic-sidecar-check" in done.stdout, done.stdout[-4000:]
    assert '"exit_code": 8' in gitlab_project.job_log("alembic-sidecar-check")
    assert pg_database.revisions() == []
