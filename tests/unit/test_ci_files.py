"""The CI step's files: the GitHub Action, the workflow to copy and the GitLab template are valid against the
schemas check-jsonschema vendors, the action maps its inputs onto real settings, and Dockerfile.action is the
Dockerfile plus the one line that lets GitHub's runner use it (``UPDATE_ACTION_DOCKERFILE=1`` rewrites it)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from alembic_sidecar.settings import OPTIONS

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
ACTION = REPO / "action.yml"
WORKFLOW = REPO / "ci" / "github" / "migrations.yml"
GITLAB_TEMPLATE = REPO / "ci" / "gitlab" / "alembic-sidecar.yml"
ACTION_DOCKERFILE = REPO / "Dockerfile.action"

ACTION_DOCKERFILE_HEAD = """\
# GENERATED from Dockerfile by tests/unit/test_ci_files.py (UPDATE_ACTION_DOCKERFILE=1 rewrites it): do not edit.
# The image of the GitHub Action (action.yml): the Dockerfile's image, run as root. GitHub's runner builds it with
# `docker build -f Dockerfile.action .` (no build arguments: the default base) and runs it as its own user.
"""
ACTION_DOCKERFILE_TAIL = """
# ---- the GitHub Action's image: the ci target (with `lint`), run as root, as GitHub's runner requires ----
# The runner mounts the workspace and the step's summary and output files, owned by the runner's own user (mode
# 0644), and never passes --user: only root in the container can write the reports there. The images of the targets
# above stay non-root.
FROM ci
USER 0:0
"""
#: The only expression the action's env and args use: an input's value, as the runner substitutes it.
INPUT_EXPRESSION = re.compile(r"^\$\{\{ inputs\.([a-z0-9-]+) \}\}$")


def action_dockerfile() -> str:
    return ACTION_DOCKERFILE_HEAD + (REPO / "Dockerfile").read_text() + ACTION_DOCKERFILE_TAIL


def check_jsonschema(schema: str, *paths: Path) -> subprocess.CompletedProcess:
    """check-jsonschema's CLI (from this venv) with one of its vendored schemas."""
    return subprocess.run([str(Path(sys.executable).with_name("check-jsonschema")), "--builtin-schema",
                           f"vendor.{schema}", *map(str, paths)], capture_output=True, text=True, timeout=120)


def gitlab_documents(path: Path, into: Path) -> list[Path]:
    """A template with ``spec:`` is two YAML documents (the header, then the jobs); check-jsonschema reads one
    document a file, so each goes to a file of its own."""
    files = []
    for index, document in enumerate(yaml.safe_load_all(path.read_text())):
        files.append(into / f"{path.stem}.{index}.yml")
        files[-1].write_text(yaml.safe_dump(document, sort_keys=False))
    return files


def test_dockerfile_action_is_the_dockerfiles_ci_target_run_as_root():
    expected = action_dockerfile()
    if os.environ.get("UPDATE_ACTION_DOCKERFILE") == "1":
        ACTION_DOCKERFILE.write_text(expected)
    assert ACTION_DOCKERFILE.read_text() == expected, \
        f"Dockerfile.action is stale: run UPDATE_ACTION_DOCKERFILE=1 pytest {__file__}"


def test_the_action_builds_dockerfile_action_as_a_docker_action():
    runs = yaml.safe_load(ACTION.read_text())["runs"]
    assert runs["using"] == "docker"
    assert runs["image"] == ACTION_DOCKERFILE.name
    # The runner builds a Dockerfile only when the name says so ("Dockerfile.*" or "*Dockerfile"), with the
    # Dockerfile's own directory as the context: the repository's root, where the sources are.
    assert runs["image"].startswith("Dockerfile.")


def test_the_action_and_the_workflow_are_valid_against_githubs_schemas():
    for schema, path in (("github-actions", ACTION), ("github-workflows", WORKFLOW)):
        done = check_jsonschema(schema, path)
        assert done.returncode == 0, f"{path.name}: {done.stdout}{done.stderr}"


def test_the_gitlab_template_is_valid_against_gitlabs_schema(tmp_path):
    documents = gitlab_documents(GITLAB_TEMPLATE, tmp_path)
    header, jobs = (yaml.safe_load(path.read_text()) for path in documents)
    assert set(header) == {"spec"} and "command" in header["spec"]["inputs"]
    assert len(jobs) == 1
    done = check_jsonschema("gitlab-ci", *documents)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_schemas_refuse_a_broken_action_workflow_and_template(tmp_path):
    """The validation above can fail: each file with one mistake a user could make is refused."""
    action = yaml.safe_load(ACTION.read_text())
    action["runs"]["using"] = "dockerfile"
    workflow = yaml.safe_load(WORKFLOW.read_text())
    del workflow["jobs"]["migrate"]["runs-on"]
    template = list(yaml.safe_load_all(GITLAB_TEMPLATE.read_text()))
    next(iter(template[1].values()))["artifacts"]["when"] = "sometimes"
    broken = {"github-actions": action, "github-workflows": workflow, "gitlab-ci": template[1]}
    for schema, document in broken.items():
        path = tmp_path / f"{schema}.yml"
        path.write_text(yaml.safe_dump(document))
        assert check_jsonschema(schema, path).returncode == 1, schema


def test_every_variable_the_action_sets_is_a_setting_and_every_value_an_input():
    action = yaml.safe_load(ACTION.read_text())
    known = {option.env for option in OPTIONS} | {"DATABASE_URL"}
    env = action["runs"]["env"]
    assert set(env) <= known, f"not settings: {sorted(set(env) - known)}"
    for value in [*env.values(), *action["runs"]["args"]]:
        match = INPUT_EXPRESSION.match(value)
        assert match and match.group(1) in action["inputs"], value
    # Every input reaches the container through env or args (an input nothing reads would be a silent no-op).
    used = {INPUT_EXPRESSION.match(value).group(1) for value in [*env.values(), *action["runs"]["args"]]}
    assert used == set(action["inputs"])


def test_the_ci_pages_gitlab_pipeline_is_valid_and_includes_the_template(tmp_path):
    blocks = re.findall(r"```yaml\n(include:.*?)```", (REPO / "docs" / "ci.md").read_text(), re.S)
    assert len(blocks) == 1
    pipeline = yaml.safe_load(blocks[0])
    assert {include["remote"].rsplit("/", 3)[-3:] == ["ci", "gitlab", GITLAB_TEMPLATE.name]
            for include in pipeline["include"]} == {True}
    inputs = yaml.safe_load(GITLAB_TEMPLATE.read_text().split("\n---\n")[0])["spec"]["inputs"]
    assert all(set(include["inputs"]) <= set(inputs) for include in pipeline["include"])
    path = tmp_path / "gitlab-ci.yml"
    path.write_text(blocks[0])
    done = check_jsonschema("gitlab-ci", path)
    assert done.returncode == 0, done.stdout + done.stderr
