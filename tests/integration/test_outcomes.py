"""What a run says it did: the database after a failure, targets it cannot or need not reach, how many revisions it
applied, and the cause an env.py failed with (issue 14, points 2, 4, 6 and 7)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.fixtures.revisions import Revisions

from .conftest import assert_clean_failure, assert_exit, init_alembic_project, wait_until

pytestmark = pytest.mark.integration

ONE_TRANSACTION = {"MIGRATE_TRANSACTION_PER_MIGRATION": "false"}


def _failing_before_any_ddl(revisions: Revisions) -> str:
    """A revision that raises before it runs a statement."""
    return revisions.add('    raise RuntimeError("revision {rev} fails on purpose")\n', message="failing revision")


def _own_project(tmp_path: Path, template: str | None = "async") -> tuple[Path, Revisions]:
    """An `alembic init` project (its env.py untouched) and a writer for its versions directory."""
    ini = init_alembic_project(tmp_path / "project", template)
    return ini, Revisions(ini.parent / "migrations" / "versions")


def _own_env(ini: Path, database) -> dict[str, str | None]:
    return {"ALEMBIC_CONFIG": str(ini), "DATABASE_URL": database.url, "MIGRATE_VERSIONS_DIR": None}


def _assert_says_what_the_database_holds(result, database, sidecar, applied: list[str]) -> list[str]:
    """The error and the termination log name what the database holds; a rolled-back revision_applied is logged so."""
    held = database.revisions()
    at = ",".join(held) or "base"
    error = result.failure["error"]
    assert f"the database is at {at}" in error, error
    assert f"the database is at {at}" in sidecar.termination_log.read_text()
    assert [event["revision"] for event in result.named("revision_applied")] == applied
    undone = applied[applied.index(held[-1]) + 1:] if held else applied  # a linear chain: those after `held`
    if undone:
        assert result.one("revisions_rolled_back")["revisions"] == undone
        assert ", ".join(undone) in error
    else:
        assert not result.named("revisions_rolled_back")
    return held


# -- point 2: the database after a failure, read from it ---------------------------------------------------------

def test_a_failure_in_one_transaction_says_what_the_rollback_left(database, revisions, sidecar):
    done = revisions.chain(2)
    bad = _failing_before_any_ddl(revisions)
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url, **ONE_TRANSACTION})
    assert_clean_failure(result, 1, bad)
    held = _assert_says_what_the_database_holds(result, database, sidecar, done)
    # The whole run rolled back; MariaDB commits DDL implicitly, and what Alembic recorded stays.
    assert held == (done[-1:] if database.driver == "mariadb" else [])
    assert "stays at" not in result.failure["error"]


def test_a_failure_per_migration_says_the_earlier_revisions_stay(database, revisions, sidecar):
    done = revisions.chain(2)
    bad = revisions.failing()
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url})
    assert_clean_failure(result, 1, bad)
    assert _assert_says_what_the_database_holds(result, database, sidecar, done) == done[-1:]


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_a_failure_in_a_stock_env_py_says_what_the_rollback_left(request, tmp_path, sidecar, fixture):
    """`alembic init`'s env.py runs the whole upgrade in one transaction."""
    database = request.getfixturevalue(fixture)
    ini, own = _own_project(tmp_path, None)
    done = own.chain(2)
    bad = _failing_before_any_ddl(own)
    result = sidecar.run(env=_own_env(ini, database))
    assert_clean_failure(result, 1, bad)
    held = _assert_says_what_the_database_holds(result, database, sidecar, done)
    assert held == (done[-1:] if database.driver == "mariadb" else [])


def test_a_database_that_cannot_be_read_after_a_failure_is_said_so(sqlite_database, revisions, sidecar):
    """The revision moves the SQLite file away (its open connection still rolls back): the read after it fails."""
    done = revisions.chain(2)
    bad = revisions.add('    import os\n    os.rename(os.environ["TEST_DB"], os.environ["TEST_DB"] + ".moved")\n'
                        '    raise RuntimeError("revision {rev} fails on purpose")\n', message="moves the database")
    result = sidecar.run("upgrade", env={"DATABASE_URL": sqlite_database.url, "TEST_DB": str(sqlite_database.path)})
    failed = assert_clean_failure(result, 1, bad)
    assert f"the database is at {done[-1]} (the version table could not be read back: " in failed["error"]
    assert not result.named("revisions_rolled_back")


def test_sigterm_in_one_transaction_says_what_the_rollback_left(pg_database, revisions, sidecar, tmp_path):
    done = revisions.chain(2)
    marker = tmp_path / "slow-started"
    revisions.slow(60, marker)
    running = sidecar.start("upgrade", env={"DATABASE_URL": pg_database.url, **ONE_TRANSACTION})
    wait_until(marker.exists, 30, what="the slow revision to start")
    running.send(signal.SIGTERM)
    result = running.wait(30)
    assert_clean_failure(result, 143, "SIGTERM")
    assert _assert_says_what_the_database_holds(result, pg_database, sidecar, done) == []


# -- point 4: targets ---------------------------------------------------------------------------------------------

def test_upgrade_to_a_revision_the_database_is_past_is_nothing_to_do(database, revisions, sidecar):
    ids = revisions.chain(3)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    result = sidecar.run("upgrade", ids[1], env=env)
    assert_exit(result, 0)
    assert database.revisions() == ids[-1:]
    assert result.one("database_past_target")["target"] == ids[1]
    assert result.one("migration_complete")["applied"] == 0
    assert f"past the target {ids[1]}" in sidecar.termination_log.read_text()


def test_a_relative_target_beyond_the_head_is_a_revision_graph_error(database, revisions, sidecar):
    ids = revisions.chain(2)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    result = sidecar.run("upgrade", "+1", env=env)
    assert_clean_failure(result, 7, "'+1'", ids[-1])
    assert "something outside Alembic" not in result.output
    assert database.revisions() == ids[-1:]


# -- point 6: the applied count with branches ---------------------------------------------------------------------

def _two_branches(own: Revisions) -> tuple[list[str], list[str]]:
    """r0001, then a `core` branch c001-c003 and an `other` branch x001-x002 on it."""
    root = own.add()
    core = [own.add(rev="c001", down=root), own.add(rev="c002"), own.add(rev="c003")]
    other = [own.add(rev="x001", down=root), own.add(rev="x002")]
    for first, label in (("c001", "core"), ("x001", "other")):
        path = next(own.dir.glob(f"{first}_*.py"))
        path.write_text(path.read_text().replace("branch_labels = None", f"branch_labels = ({label!r},)"))
    return [root, *other], core


@pytest.mark.parametrize("project", ["bundled", "own env.py"])
@pytest.mark.parametrize("fixture", ["pg_database", "sqlite_database"])
def test_applied_counts_every_revision_across_branches(request, revisions, sidecar, tmp_path, project, fixture):
    database = request.getfixturevalue(fixture)
    if project == "bundled":
        own, env = revisions, {"DATABASE_URL": database.url}
    else:
        ini, own = _own_project(tmp_path)
        env = _own_env(ini, database)
    other, core = _two_branches(own)
    for target, applied in (("other@head", other), ("core@c001", core[:1]), ("heads", core[1:])):
        result = sidecar.run("upgrade", target, env=env)
        assert_exit(result, 0)
        assert [event["revision"] for event in result.named("revision_applied")] == applied
        assert result.one("migration_complete")["applied"] == len(applied), target
        assert f"{len(applied)} revision(s)" in sidecar.termination_log.read_text(), target
    assert sorted(database.revisions()) == ["c003", "x002"]


# -- point 7: the cause an env.py failed with ---------------------------------------------------------------------

_VALIDATION_ERROR = '''\
class ValidationError(ValueError):
    """Stands in for pydantic's: the field is on the second line of the message, not the first."""


raise ValidationError(
    "1 validation error for Settings\\nPROJECT_NAME\\n  Field required [type=missing, "
    "input_value={'POSTGRES_PASSWORD': 'changethis-s3cr3t'}, input_type=dict]\\n"
    "    For further information visit https://errors.pydantic.dev/2.9/v/missing\\n"
    + "\\n".join(f"more detail {n}" for n in range(200)))
'''


@pytest.mark.parametrize("fixture", ["pg_database", "sqlite_database"])
def test_a_failing_env_py_keeps_the_lines_that_name_the_cause(request, tmp_path, sidecar, fixture):
    database = request.getfixturevalue(fixture)
    ini, own = _own_project(tmp_path)
    own.chain(1)
    env_py = ini.parent / "migrations" / "env.py"
    env_py.write_text(_VALIDATION_ERROR + env_py.read_text())
    result = sidecar.run(env=_own_env(ini, database))
    failed = assert_clean_failure(result, 2, "env.py", "1 validation error for Settings", "PROJECT_NAME",
                                  "Field required")
    error = failed["error"]
    assert "changethis-s3cr3t" not in result.output + sidecar.termination_log.read_text()
    assert "was recorded" not in error and "database" not in error.partition("Field required")[2], error
    assert len(error) < 1000, "the message should be bounded"
    assert database.revisions() == []
