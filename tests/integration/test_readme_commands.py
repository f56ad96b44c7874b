"""The README's two newcomer commands stay true: the main job runs as written, and CI runs the test command."""

import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.integration


def readme_commands(repo_root) -> list[str]:
    """The sh blocks of the README's "Try it" section, in order: the main job, then the test suite."""
    text = (repo_root / "README.md").read_text()
    section = text.split("## Try it", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def test_readme_has_the_main_job_and_the_test_command_and_ci_runs_the_latter(repo_root):
    main_job, test_command = readme_commands(repo_root)
    assert "alembic-sidecar upgrade" in main_job and "sqlite" in main_job
    ci_script = (repo_root / ".ci" / "run").read_text()
    assert re.search(rf"^\s*(exec\s+)?{re.escape(test_command)}\s*$", ci_script, re.M), ci_script


def test_readme_main_job_runs_as_written_on_a_copy_of_the_repository(repo_root, tmp_path):
    main_job = readme_commands(repo_root)[0]
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=repo_root, capture_output=True, check=True).stdout
    checkout = tmp_path / "checkout"
    for name in filter(None, tracked.decode().split("\0")):
        source = repo_root / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name, follow_symlinks=False)
    first = subprocess.run(["bash", "-c", main_job], cwd=checkout, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    summary = [event for event in events if event["event"] == "migration_complete"]
    assert summary and summary[-1]["applied"] == 3 and summary[-1]["to_revision"] == "0003"
    assert (checkout / "demo.db").is_file()
