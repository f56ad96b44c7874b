"""Failing revisions, timeouts, a database ahead of the code, several heads (issue 2, points 5 and 7)."""

from __future__ import annotations

import pytest

from tests.fixtures.revisions import SLOW_SECONDS_ENV, applied_counts

from .conftest import assert_clean_failure, assert_exit, wait_until

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("how", ["sql", "python"])
def test_failing_revision_in_the_middle_keeps_earlier_ones_on_postgresql(pg_database, revisions, sidecar, how):
    done = revisions.chain(3)
    bad = revisions.failing(how)
    revisions.chain(2)
    result = sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url})
    failed = assert_clean_failure(result, 1, bad)
    assert pg_database.revisions() == [done[-1]]
    assert applied_counts(pg_database) == {rev: 1 for rev in done}
    assert f"t_{bad}" not in pg_database.tables()
    assert [e["revision"] for e in result.named("revision_applied")] == done
    assert "no_such_table" in failed["error"] or how == "python"


def test_failing_revision_in_one_transaction_mode_rolls_everything_back_on_postgresql(pg_database, revisions,
                                                                                      sidecar):
    revisions.chain(3)
    bad = revisions.failing()
    result = sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url,
                                         "MIGRATE_TRANSACTION_PER_MIGRATION": "false"})
    assert_clean_failure(result, 1, bad)
    assert pg_database.revisions() == []
    assert set(pg_database.tables()) <= {"alembic_version"}


def test_failing_revision_on_mariadb_says_what_state_the_database_may_be_in(mariadb_database, revisions, sidecar):
    done = revisions.chain(2)
    bad = revisions.failing()
    revisions.chain(1)
    result = sidecar.run("upgrade", env={"DATABASE_URL": mariadb_database.url})
    failed = assert_clean_failure(result, 1, bad)
    assert mariadb_database.revisions() == [done[-1]]
    # DDL commits implicitly on MySQL/MariaDB: t_<bad> exists although its revision is not recorded.
    assert f"t_{bad}" in mariadb_database.tables()
    error = failed["error"].lower()
    assert done[-1] in failed["error"], "the error should name the last recorded revision"
    assert any(w in error for w in ("partial", "implicit", "may", "check")), failed["error"]


def test_failing_revision_on_sqlite_keeps_earlier_ones(sqlite_database, revisions, sidecar):
    done = revisions.chain(2)
    bad = revisions.failing()
    result = sidecar.run("upgrade", env={"DATABASE_URL": sqlite_database.url})
    assert_clean_failure(result, 1, bad)
    assert sqlite_database.revisions() == [done[-1]]
    assert f"t_{bad}" not in sqlite_database.tables()


def test_statement_timeout_cuts_a_slow_revision(server_database, revisions, sidecar, tmp_path):
    done = revisions.chain(1)
    slow = revisions.slow(30, tmp_path / "marker")
    result = sidecar.run("upgrade", env={"DATABASE_URL": server_database.url, "MIGRATE_STATEMENT_TIMEOUT": "1"},
                         timeout=40)
    assert_clean_failure(result, 1, slow)
    assert result.duration < 10, f"{result.duration:.1f}s: the 1 s statement timeout did not cut the 30 s sleep"
    assert server_database.revisions() == [done[-1]]
    # The timeout applies to migration statements, not to the lock wait, and not forever after.
    again = sidecar.run("upgrade", env={"DATABASE_URL": server_database.url, SLOW_SECONDS_ENV: "0"})
    assert_exit(again, 0)


def test_statement_timeout_does_not_cut_the_lock_wait(pg_database, revisions, sidecar, tmp_path):
    revisions.chain(1)
    marker = tmp_path / "marker"
    revisions.slow(3, marker)
    env = {"DATABASE_URL": pg_database.url}
    first = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    second = sidecar.run("upgrade", env={**env, "MIGRATE_STATEMENT_TIMEOUT": "1", "MIGRATE_LOCK_TIMEOUT": "30"})
    assert_exit(first.wait(60), 0)
    assert_exit(second, 0)


def test_ddl_lock_timeout_stops_waiting_for_a_table_lock_on_postgresql(pg_database, revisions, sidecar):
    pg_database.execute("CREATE TABLE busy (id int)")
    rev = revisions.add('    op.add_column("busy", sa.Column("extra", sa.Integer))\n')
    holder = pg_database.session()
    try:
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE busy IN ACCESS SHARE MODE")
        result = sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url, "MIGRATE_DDL_LOCK_TIMEOUT": "1"},
                             timeout=30)
        failed = assert_clean_failure(result, 9, rev, "rolled back")
        assert failed["kind"] == "transient database fault"
        assert "fix" not in failed["error"]
        assert result.duration < 8
        assert pg_database.revisions() == []
    finally:
        holder.close()


def test_ddl_lock_timeout_on_mariadb(mariadb_database, revisions, sidecar):
    mariadb_database.execute("CREATE TABLE busy (id int)")
    rev = revisions.add('    op.add_column("busy", sa.Column("extra", sa.Integer))\n')
    holder = mariadb_database.session()
    try:
        holder.execute("BEGIN")
        holder.execute("SELECT * FROM busy")  # holds a metadata lock until the transaction ends
        result = sidecar.run("upgrade", env={"DATABASE_URL": mariadb_database.url,
                                             "MIGRATE_DDL_LOCK_TIMEOUT": "1"}, timeout=30)
        failed = assert_clean_failure(result, 9, rev, "implicitly")
        assert "fix" not in failed["error"]
        assert result.duration < 8
    finally:
        holder.close()


# --- the database is ahead of the code ----------------------------------------------------------------------------

def _database_ahead(db, revisions, sidecar):
    revisions.chain(3)
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": db.url}), 0)
    newest = revisions.ids[-1]
    next(revisions.dir.glob(f"{newest}_*.py")).unlink()  # the older image does not know the newest revision
    return newest


def test_database_ahead_is_exit_6_naming_the_revision(database, revisions, sidecar):
    newest = _database_ahead(database, revisions, sidecar)
    before = sorted(database.tables())
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url})
    assert_clean_failure(result, 6, newest)
    assert database.revisions() == [newest]
    assert sorted(database.tables()) == before


@pytest.mark.parametrize("command", ["check", "current"])
def test_database_ahead_for_check_and_current(pg_database, revisions, sidecar, command):
    newest = _database_ahead(pg_database, revisions, sidecar)
    result = sidecar.run(command, env={"DATABASE_URL": pg_database.url})
    if command == "current":
        assert result.returncode in (0, 6), result
        assert newest in result.output
    else:
        assert_clean_failure(result, 6, newest)


def test_database_ahead_with_ignore_warns_and_exits_0(database, revisions, sidecar):
    newest = _database_ahead(database, revisions, sidecar)
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url, "MIGRATE_ON_UNKNOWN_REVISION": "ignore"})
    assert_exit(result, 0)
    warnings = [e for e in result.events if e.get("level") == "warning"]
    assert warnings and any(newest in str(e) for e in warnings), result
    assert database.revisions() == [newest]


# --- several heads ------------------------------------------------------------------------------------------------

def test_multiple_heads_are_exit_7_unless_the_target_is_heads(database, revisions, sidecar):
    revisions.chain(2)
    heads = revisions.branch()
    env = {"DATABASE_URL": database.url}
    result = sidecar.run("upgrade", env=env)
    failed = assert_clean_failure(result, 7)
    assert all(h in failed["error"] for h in heads), failed
    assert database.tables() == []
    ok = sidecar.run("upgrade", "heads", env=env)
    assert_exit(ok, 0)
    assert database.revisions() == sorted(heads)
    assert applied_counts(database) == {rev: 1 for rev in revisions.logged}


def test_migrate_target_heads_from_the_environment(pg_database, revisions, sidecar):
    revisions.chain(1)
    heads = revisions.branch()
    result = sidecar.run(env={"DATABASE_URL": pg_database.url, "MIGRATE_TARGET": "heads"})
    assert_exit(result, 0)
    assert pg_database.revisions() == sorted(heads)


def test_upgrade_to_an_intermediate_target(pg_database, revisions, sidecar):
    database = pg_database
    ids = revisions.chain(3)
    result = sidecar.run("upgrade", ids[0], env={"DATABASE_URL": database.url})
    assert_exit(result, 0)
    assert database.revisions() == [ids[0]]
    assert applied_counts(database) == {ids[0]: 1}
    assert_exit(sidecar.run("check", env={"DATABASE_URL": database.url}), 8)
    result = sidecar.run(env={"DATABASE_URL": database.url, "MIGRATE_TARGET": ids[1]})
    assert_exit(result, 0)
    assert database.revisions() == [ids[1]]


# --- check and downgrade ------------------------------------------------------------------------------------------

def test_check_is_8_when_pending_and_0_at_head_and_writes_nothing(database, revisions, sidecar):
    revisions.chain(2)
    env = {"DATABASE_URL": database.url}
    pending = sidecar.run("check", env=env)
    assert_exit(pending, 8)
    assert "Traceback" not in pending.output
    assert database.tables() == []
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert_exit(sidecar.run("check", env=env), 0)


def test_downgrade_is_refused_without_allow_downgrade(pg_database, revisions, sidecar):
    database = pg_database
    ids = revisions.chain(2)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    result = sidecar.run("downgrade", ids[0], env=env)
    assert_clean_failure(result, 2, "MIGRATE_ALLOW_DOWNGRADE")
    assert database.revisions() == [ids[1]]


def test_downgrade_works_when_allowed(database, revisions, sidecar):
    ids = revisions.chain(3)
    env = {"DATABASE_URL": database.url, "MIGRATE_ALLOW_DOWNGRADE": "true"}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert_exit(sidecar.run("downgrade", ids[0], env=env), 0)
    assert database.revisions() == [ids[0]]
    assert f"t_{ids[2]}" not in database.tables() and f"t_{ids[0]}" in database.tables()
    assert_exit(sidecar.run("downgrade", "base", env=env), 0)
    assert database.revisions() == []
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert database.revisions() == [ids[2]]
