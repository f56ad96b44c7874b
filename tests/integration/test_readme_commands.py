"""The newcomer's two commands stay true: the README's main job runs as written, and CI runs the README's test
command."""

import json
import re
import shutil
import subprocess

import pytest

pytestmark = pytest.mark.integration


def sh_blocks(path, heading) -> list[str]:
    """The sh blocks of one section of a Markdown file, in order."""
    section = path.read_text().split(f"\n{heading}\n", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


def main_job(repo_root) -> str:
    """The README's "Try it": its first command runs the main job."""
    return sh_blocks(repo_root / "README.md", "## Try it")[0]


def test_readme_has_the_main_job_and_ci_runs_the_readmes_test_command(repo_root):
    assert "alembic-sidecar upgrade" in main_job(repo_root) and "sqlite" in main_job(repo_root)
    test_command = sh_blocks(repo_root / "README.md", "## Try it")[1]
    assert test_command == sh_blocks(repo_root / "docs" / "development.md", "## Run the tests")[0]
    ci_script = (repo_root / ".ci" / "run").read_text()
    assert re.search(rf"^\s*(exec\s+)?{re.escape(test_command)}\s*$", ci_script, re.M), ci_script


def test_readme_main_job_runs_as_written_on_a_copy_of_the_repository(repo_root, tmp_path):
    command = main_job(repo_root)
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=repo_root, capture_output=True, check=True).stdout
    checkout = tmp_path / "checkout"
    for name in filter(None, tracked.decode().split("\0")):
        source = repo_root / name
        if source.is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / name, follow_symlinks=False)
    first = subprocess.run(["bash", "-c", command], cwd=checkout, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    events = [json.loads(line) for line in first.stdout.splitlines() if line.startswith("{")]
    summary = [event for event in events if event["event"] == "migration_complete"]
    assert summary and summary[-1]["applied"] == 3 and summary[-1]["to_revision"] == "0003"
    assert (checkout / "demo.db").is_file()
