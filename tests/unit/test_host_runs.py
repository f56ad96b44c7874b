"""A run on a plain host (the README's "Try it", a CI step) leaves nothing behind where it should not (issue 14, 11)."""

import shutil
import subprocess

import pytest

from alembic_sidecar import cli
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit


@pytest.fixture
def default_log(tmp_path, monkeypatch):
    """The default termination log's path, moved into tmp_path: the rule is tested without touching /dev."""
    path = tmp_path / "termination-log"
    monkeypatch.setattr(cli, "DEFAULT_TERMINATION_LOG", str(path))
    return path


def test_the_default_termination_log_is_not_created_where_it_does_not_exist(default_log):
    cli._write_termination_log(from_environ({}), "migrated base -> 0001")
    assert not default_log.exists()


def test_the_default_termination_log_is_written_where_kubernetes_created_it(default_log):
    default_log.write_text("a longer line left by an earlier container\n")
    cli._write_termination_log(from_environ({}), "migrated base -> 0001")
    assert default_log.read_text() == "migrated base -> 0001\n"


def test_an_explicit_termination_log_is_created(default_log, tmp_path):
    explicit = tmp_path / "new" / "summary"
    explicit.parent.mkdir()
    cli._write_termination_log(from_environ({"MIGRATE_TERMINATION_LOG": str(explicit)}), "migrated base -> 0001")
    assert explicit.read_text() == "migrated base -> 0001\n"
    assert not default_log.exists()


def test_git_ignores_what_try_it_leaves_in_the_checkout(repo_root):
    git = shutil.which("git")
    if git is None or not (repo_root / ".git").exists():
        pytest.skip("not a git checkout")
    # The SQLite database of "Try it" and the lock file beside it (databases/sqlite.py: <database>.migration-lock).
    names = ["demo.db", "demo.db.migration-lock"]
    result = subprocess.run([git, "check-ignore", "--no-index", *names], cwd=repo_root, capture_output=True,
                            text=True, timeout=30)
    assert sorted(result.stdout.split()) == names, result.stdout + result.stderr
