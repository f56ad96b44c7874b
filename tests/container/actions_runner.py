"""A Docker container action run as GitHub's runner runs it (actions/runner's ContainerActionHandler and
DockerCommandManager), so that the test sees what a workflow's step sees.

What the runner does, and so what this does: it builds the image from the Dockerfile action.yml names, with that
Dockerfile's directory as the context and no build arguments; it creates the step's file-command files empty
(``set_output_<id>``, ``step_summary_<id>``, ...) in ``_runner_file_commands``, owned by its own user (UID 1001 on
GitHub-hosted runners) with mode 0644, as is the workspace; it sets ``INPUT_<NAME>`` for every input (the default
when the step gives none; upper-cased, spaces to underscores), evaluates ``runs.env`` and ``runs.args``, and runs
``docker run --workdir /github/workspace --rm`` with ``GITHUB_ACTIONS=true``, ``CI=true``, the ``GITHUB_*`` paths
translated into the container, and the workspace, file commands, home, workflow and runner temp directories mounted
under ``/github``. No ``--user``: the image's own user runs it.

Two things differ here, each because this machine has no registry: the build passes ``BASE_IMAGE`` (the local
stand-in of the default base), and the container joins the host network (where the job's service network would be)
to reach the PostgreSQL server on 127.0.0.1.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures import ci_reports
from tests.fixtures.docker import TEST_LABEL, build_image

#: The user GitHub-hosted runners run as: it owns the workspace and the file-command files.
RUNNER_UID = 1001
#: The file-command files the runner creates for each step (FileCommandManager's extensions): variable -> prefix.
FILE_COMMANDS = {"GITHUB_ENV": "set_env_", "GITHUB_PATH": "add_path_", "GITHUB_OUTPUT": "set_output_",
                 "GITHUB_STATE": "save_state_", "GITHUB_STEP_SUMMARY": "step_summary_"}
_INPUT = re.compile(r"\$\{\{ inputs\.([A-Za-z0-9_-]+) \}\}")


@dataclass
class StepResult:
    """What a workflow sees after the step: its exit code, its log, the outputs and the step summary."""

    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str
    workspace: Path
    command: list[str] = field(repr=False)

    @property
    def annotations(self) -> list[ci_reports.Annotation]:
        """The workflow commands on stdout that make annotations, decoded as the runner decodes them."""
        return ci_reports.annotations(self.stdout)

    def __str__(self) -> str:
        return f"step exited {self.exit_code}:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"


class ActionsRunner:
    """Runs the action described by ``action_yml`` in a workspace, step by step, as the runner does."""

    def __init__(self, action_yml: Path, image: str, root: Path) -> None:
        self.action = yaml.safe_load(action_yml.read_text())
        self.image, self.root = image, root

    @classmethod
    def build(cls, action_yml: Path, tag: str, root: Path, base_image: str) -> ActionsRunner:
        """``docker build -f <runs.image> <its directory>`` as the runner builds it (plus the stand-in base)."""
        dockerfile = action_yml.parent / yaml.safe_load(action_yml.read_text())["runs"]["image"]
        build_image(tag, dockerfile.parent, dockerfile=dockerfile, build_args={"BASE_IMAGE": base_image})
        return cls(action_yml, tag, root)

    def workspace(self, name: str = "workspace") -> Path:
        """An empty workspace, owned by the runner's user as a checkout is."""
        path = self.root / name
        path.mkdir(parents=True)
        return path

    def run(self, workspace: Path, with_: dict[str, str] | None = None, env: dict[str, str] | None = None,
            network: str = "host", timeout: float = 180) -> StepResult:
        """One step: ``uses:`` this action ``with:`` these inputs and the step's ``env:``, the container on
        ``network`` (the job's network where it has services)."""
        temp = self.root / f"runner-temp-{secrets.token_hex(3)}"
        commands, home, workflow = temp / "_runner_file_commands", temp / "_github_home", temp / "_github_workflow"
        for path in (commands, home, workflow):
            path.mkdir(parents=True)
        suffix = str(uuid.uuid4())
        files = {name: commands / (prefix + suffix) for name, prefix in FILE_COMMANDS.items()}
        for path in files.values():
            path.touch(mode=0o644)
        (workflow / "event.json").write_text("{}")
        _own(workspace, temp)

        inputs = {name: str(spec.get("default", "")) for name, spec in self.action.get("inputs", {}).items()}
        inputs.update(with_ or {})
        environment = {**(env or {})}
        environment.update({f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in inputs.items()})
        for key, value in self.action["runs"].get("env", {}).items():
            environment.setdefault(key, _evaluate(str(value), inputs))  # the step's env wins, as in the runner
        environment.update({
            "HOME": "/github/home", "GITHUB_WORKSPACE": "/github/workspace", "GITHUB_EVENT_PATH":
            "/github/workflow/event.json", "RUNNER_TEMP": "/github/runner_temp", "RUNNER_OS": "Linux",
            "GITHUB_ACTION": "__run", "GITHUB_REPOSITORY": "example/app", "GITHUB_SHA": "0" * 40,
            **{name: f"/github/file_commands/{path.name}" for name, path in files.items()},
        })
        args = [_evaluate(str(arg), inputs) for arg in self.action["runs"].get("args", [])]

        argv = ["docker", "run", "--name", f"sidecar-test-action-{secrets.token_hex(4)}", "--label", TEST_LABEL,
                "--workdir", "/github/workspace", "--rm", "--network", network]
        for key in environment:
            argv += ["-e", key]  # the values come from the docker CLI's environment, as the runner passes them
        argv += ["-e", "GITHUB_ACTIONS=true", "-e", "CI=true",
                 "-v", "/var/run/docker.sock:/var/run/docker.sock",
                 "-v", f"{temp}:/github/runner_temp", "-v", f"{home}:/github/home",
                 "-v", f"{workflow}:/github/workflow", "-v", f"{commands}:/github/file_commands",
                 "-v", f"{workspace}:/github/workspace"]
        if self.action["runs"].get("entrypoint"):
            argv += ["--entrypoint", self.action["runs"]["entrypoint"]]
        argv += [self.image, *args]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                              env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                   **environment})
        return StepResult(done.returncode, done.stdout, done.stderr, ci_reports.outputs(files["GITHUB_OUTPUT"]),
                          files["GITHUB_STEP_SUMMARY"].read_text(), workspace, argv)


def _evaluate(template: str, inputs: dict[str, Any]) -> str:
    """The only expressions action.yml uses: ``${{ inputs.NAME }}`` (tests/unit/test_ci_files.py checks that)."""
    return _INPUT.sub(lambda match: inputs[match.group(1)], template)


def _own(*paths: Path) -> None:
    for path in paths:
        subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_UID}", str(path)], check=True)
