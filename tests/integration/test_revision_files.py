"""Revision files that Alembic loads with only a warning, or fails on without naming the file (issue 14, 5 and 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_clean_failure, assert_exit, init_alembic_project

pytestmark = pytest.mark.integration


@pytest.fixture(params=["sqlite_database", "pg_database"])
def db(request):
    return request.getfixturevalue(request.param)


def _file(revisions, rev: str, message: str) -> Path:
    return revisions.dir / f"{rev}_{message.replace(' ', '_')[:30]}.py"


def _duplicate_of_the_head(revisions) -> tuple[str, Path, Path]:
    """A second file declaring the head's revision id, on the same parent; returns the id and both files."""
    rev = revisions.head
    first = _file(revisions, rev, f"revision {rev}")
    parent = revisions._parent(rev)
    revisions.add(rev=rev, down=parent, message="same id again")
    return rev, first, _file(revisions, rev, "same id again")


COMMANDS = [["upgrade"], ["upgrade", "heads"], ["check"], ["heads"], ["history"], ["sql"], ["lint"], ["drift"],
            ["downgrade", "base"], ["current"]]


@pytest.mark.parametrize("argv", COMMANDS, ids=lambda argv: "-".join(argv))
def test_a_duplicated_revision_id_is_exit_7_naming_both_files(db, revisions, sidecar, argv):
    revisions.chain(2)
    rev, first, second = _duplicate_of_the_head(revisions)
    result = sidecar.run(*argv, env={"DATABASE_URL": db.url, "MIGRATE_ALLOW_DOWNGRADE": "true"})
    failed = assert_clean_failure(result, 7, first.name, second.name, repr(rev))
    assert "MIGRATE_TARGET=heads" not in failed["error"]
    assert db.tables() == []


@pytest.mark.parametrize("argv", [["upgrade"], ["upgrade", "heads"], ["check"]], ids="-".join)
def test_a_database_at_a_duplicated_revision_is_never_reported_at_the_heads(db, revisions, sidecar, argv):
    """The fast no-op (a textual scan) and the full path both refuse: following "set MIGRATE_TARGET=heads" once
    exited 0 with one of the two files silently skipped."""
    ids = revisions.chain(3)
    env = {"DATABASE_URL": db.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    tables = db.tables()
    _, first, second = _duplicate_of_the_head(revisions)
    result = sidecar.run(*argv, env=env)
    assert_clean_failure(result, 7, first.name, second.name)
    assert db.revisions() == [ids[-1]] and db.tables() == tables


@pytest.mark.parametrize("argv", [["upgrade", "heads"], ["check"], ["heads"]], ids="-".join)
def test_a_duplicated_revision_id_in_a_users_alembic_project_is_exit_7(db, tmp_path, revisions, sidecar, argv):
    from tests.fixtures.revisions import Revisions

    ini = init_alembic_project(tmp_path / "project", "async")
    own = Revisions(ini.parent / "migrations" / "versions")
    own.chain(2)
    env = {"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None, "DATABASE_URL": db.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    tables = db.tables()
    _, first, second = _duplicate_of_the_head(own)
    assert_clean_failure(sidecar.run(*argv, env=env), 7, first.name, second.name)
    assert db.revisions() == [own.head] and db.tables() == tables


@pytest.mark.parametrize("argv", [["upgrade"], ["heads"], ["current"]], ids="-".join)
def test_a_down_revision_naming_a_missing_revision_is_exit_7_naming_the_file_and_the_revision(db, revisions, sidecar,
                                                                                           argv):
    revisions.chain(1)
    revisions.add(down="zz99", message="dangling")
    result = sidecar.run(*argv, env={"DATABASE_URL": db.url})
    failed = assert_clean_failure(result, 7, _file(revisions, revisions.head, "dangling").name, "'zz99'")
    assert "install what it imports" not in failed["error"]
    assert db.tables() == []


def test_a_database_at_a_revision_whose_parent_file_is_gone_is_not_a_fast_no_op(db, revisions, sidecar):
    """The fast scan sees the one head the database is at; the full load fails on the missing parent: both exit 7."""
    [rev] = revisions.chain(1)
    env = {"DATABASE_URL": db.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    path = _file(revisions, rev, f"revision {rev}")
    path.write_text(path.read_text().replace("down_revision = None", "down_revision = 'zz99'"))
    assert_clean_failure(sidecar.run("upgrade", env=env), 7, path.name, "'zz99'")
    assert db.revisions() == [rev]
