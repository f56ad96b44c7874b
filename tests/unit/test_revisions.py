"""The fast scan of revision files: it answers only for a plain graph, and leaves everything else to Alembic's load."""

from __future__ import annotations

from pathlib import Path

import pytest

from alembic_sidecar import revisions

pytestmark = pytest.mark.unit


def _scan(directory: Path, files: dict[str, str]) -> revisions.RevisionIndex | None:
    for name, text in files.items():
        (directory / name).write_text(text)
    return revisions.scan(str(directory), revisions.check_versions_dir(str(directory)))


def test_a_plain_chain_is_read_without_importing(tmp_path):
    index = _scan(tmp_path, {"a.py": "revision = '0001'\ndown_revision = None\n",
                             "b.py": "revision: str = \"0002\"\ndown_revision: str | None = '0001'  # after a\n"})
    assert index is not None and index.heads == {"0002"}


@pytest.mark.parametrize("files", [
    {"a.py": "revision = '0001'\ndown_revision = None\n", "b.py": "revision = '0001'\ndown_revision = None\n"},
    {"a.py": "revision = '0001'\ndown_revision = 'zz99'\n"},
    {"a.py": "revision = '0001'\ndown_revision = None\nif True:\n    revision = '0002'\n"},
], ids=["id declared twice", "parent no file declares", "assigned conditionally"])
def test_what_only_the_full_load_can_explain_is_not_answered(tmp_path, files):
    assert _scan(tmp_path, files) is None


def test_a_versions_path_that_is_a_file_is_not_a_directory(tmp_path):
    path = tmp_path / "versions.py"
    path.write_text("")
    with pytest.raises(revisions.ConfigurationError, match="is not a directory"):
        revisions.check_versions_dir(str(path))
