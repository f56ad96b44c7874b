"""The applied history's checksums and comparison, without a database."""

from __future__ import annotations

import datetime

import pytest

from alembic_sidecar import applied_history
from alembic_sidecar.applied_history import Record, checksum, compare, fast_agrees, file_sha256

pytestmark = pytest.mark.unit

SOURCE = b'''"""add users

Revision ID: r1
"""
import sqlalchemy as sa
from alembic import op

revision = "r1"
down_revision = None


def upgrade():
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True))
    if True:
        op.execute("SELECT 1")
    table = "users"
    op.execute(f"UPDATE {table} SET n = {1 + 1}")
    op.execute(f"""
SELECT {f'{table!r}'}
""")


def downgrade():
    """Drop it."""
    op.drop_table("users")
'''


@pytest.mark.parametrize("edit", [
    lambda s: s.replace(b"\n\n\ndef upgrade", b"\n\n\n\n\n# reviewed\ndef upgrade"),
    lambda s: s.replace(b"primary_key=True))", b"primary_key=True))   # the key"),
    lambda s: s.replace(b"\n", b"\r\n"),
    lambda s: s.replace(b"    ", b"  "),  # indentation width
    lambda s: s.replace(b'op.create_table("users", ', b'op.create_table(\n        "users",\n        '),
    lambda s: s.replace(b"add users", b"add the users table"),  # the module docstring
    lambda s: s.replace(b'"""Drop it."""', b'"""Drop the users table."""'),
    lambda s: s.replace(b'    """Drop it."""\n', b''),
    lambda s: s.replace(b'op.execute(f"UPDATE', b'op.execute(  # the f-string\n        f"UPDATE'),
], ids=["blank lines and a comment", "trailing comment", "CRLF", "indentation width", "a call split over lines",
        "module docstring", "function docstring", "docstring removed", "around an f-string"])
def test_whitespace_comment_and_docstring_edits_keep_the_checksum(edit):
    edited = edit(SOURCE)
    assert edited != SOURCE
    assert checksum(edited) == checksum(SOURCE)
    assert file_sha256(edited) != file_sha256(SOURCE)


@pytest.mark.parametrize("edit", [
    lambda s: s.replace(b'"users"', b'"people"', 1),
    lambda s: s.replace(b'SELECT 1', b'SELECT 2'),
    lambda s: s.replace(b"    if True:\n        op.execute", b"    if True:\n        pass\n    op.execute"),
    lambda s: s.replace(b'"SELECT 1"', b'"SELECT 1" "-- x"'),
    lambda s: s.replace(b"{1 + 1}", b"{1 + 2}"),
    lambda s: s.replace(b"{1 + 1}", b"{1  +  1}"),  # an f-string's text is kept as written, on every Python
    lambda s: s.replace(b"!r}'}", b"!s}'}"),
], ids=["a table name", "a string in a call", "a block's extent", "an implicitly joined string",
        "an f-string's expression", "spaces inside an f-string", "a nested f-string"])
def test_an_edit_to_what_runs_changes_the_checksum(edit):
    edited = edit(SOURCE)
    assert edited != SOURCE
    assert checksum(edited) != checksum(SOURCE)


def _record(revision: str, content: bytes, *, adopted: bool = False) -> Record:
    now = datetime.datetime(2026, 12, 5, 1, 2)
    return Record(revision, file_sha256(content), checksum(content), f"{revision}.py", None if adopted else now, now,
                  None if adopted else 3, adopted, "0.1.0")


def test_compare_names_a_changed_and_a_missing_file_and_refreshes_a_reformatted_one(tmp_path):
    paths = {}
    for revision in ("a", "b", "c"):
        paths[revision] = tmp_path / f"{revision}.py"
        paths[revision].write_bytes(SOURCE)
    records = {revision: _record(revision, SOURCE) for revision in ("a", "b", "c", "gone")}
    paths["b"].write_bytes(SOURCE.replace(b"SELECT 1", b"SELECT 2"))
    paths["c"].write_bytes(SOURCE.replace(b"\n\n\ndef upgrade", b"\n\n\n# ok\ndef upgrade"))
    verdict = compare(records, ["a", "b", "c", "d"], {revision: str(path) for revision, path in paths.items()})
    assert [(finding.rule, finding.revision) for finding in verdict.findings] == [
        (applied_history.RULE_CHANGED, "b"), (applied_history.RULE_MISSING, "gone")]
    assert all(finding.level == "error" and finding.line == 1 and finding.hint for finding in verdict.findings)
    assert verdict.findings[0].path == str(paths["b"])
    assert verdict.unrecorded == ["d"]
    assert verdict.refresh == {"c": file_sha256(paths["c"].read_bytes())}


def test_the_fast_no_op_agrees_only_when_every_applied_revision_is_recorded_with_its_bytes():
    parents = {"a": (), "b": ("a",), "c": ("b",)}
    files = {revision: (f"/{revision}.py", f"sha-{revision}") for revision in parents}
    rows = [("a", "sha-a"), ("b", "sha-b")]
    assert fast_agrees(rows, ["b"], parents, files)
    assert not fast_agrees(None, ["b"], parents, files)  # no table: adoption is due
    assert not fast_agrees(rows[:1], ["b"], parents, files)  # b unrecorded
    assert not fast_agrees([("a", "sha-a"), ("b", "other")], ["b"], parents, files)  # b's bytes differ
    assert not fast_agrees([*rows, ("x", "sha-x")], ["b"], parents, files)  # a record with no file


def test_the_checksum_is_the_same_on_every_python_the_images_run():
    """Token numbers and f-string tokens differ between 3.11 and 3.12+: the checksum uses names and joins f-strings
    back into one STRING, so this value (computed on 3.11 and 3.15) holds on each."""
    assert checksum(SOURCE) == PINNED


PINNED = "4955c2fbb715e9890282662b919b68d85f032624bc80ad4439f77c1312a411c4"
