"""Many migrators at once, the migration lock, and signals during a migration (issue 2, points 4 and 9)."""

from __future__ import annotations

import hashlib
import signal
import time

import pytest

from tests.fixtures.databases import free_port
from tests.fixtures.revisions import SLOW_SECONDS_ENV, applied_counts

from .conftest import assert_clean_failure, assert_exit, wait_until

pytestmark = pytest.mark.integration

REPLICAS = 20


def pg_lock_key(name: str = "alembic-sidecar") -> int:
    """The advisory lock key the entrypoint uses (see alembic_sidecar.locking), derived independently here."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def mysql_lock_name(name: str, database: str) -> str:
    scoped = f"{name}:{database}"
    return scoped if len(scoped) <= 64 else hashlib.sha256(scoped.encode()).hexdigest()[:64]


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database", "sqlite_database"])
def test_twenty_replicas_at_once_apply_each_revision_exactly_once(request, revisions, sidecar, fixture):
    db = request.getfixturevalue(fixture)
    revisions.chain(5)
    replicas = REPLICAS if db.driver != "sqlite" else 8  # SQLite is the local demo: fewer, to save time
    running = [sidecar.start("upgrade", env={"DATABASE_URL": db.url}) for _ in range(replicas)]
    results = [r.wait(120) for r in running]
    for result in results:
        assert_exit(result, 0)
    assert applied_counts(db) == {rev: 1 for rev in revisions.logged}
    assert db.revisions() == [revisions.head]
    applied = sorted(e["revision"] for r in results for e in r.named("revision_applied"))
    assert applied == revisions.ids, "each revision must be reported applied by exactly one replica"
    # The losers re-read the revision after the lock and found nothing to do.
    assert sum(r.one("migration_complete")["applied"] == 0 for r in results) >= replicas - 5


def _hold_lock(db, name: str = "alembic-sidecar"):
    session = db.session()
    if db.driver == "postgresql":
        session.execute(f"SELECT pg_advisory_lock({pg_lock_key(name)})")
    else:
        assert session.rows("SELECT GET_LOCK(%s, 5)", mysql_lock_name(name, db.name)) == [(1,)]
    return session


def test_lock_held_elsewhere_times_out_with_exit_4_and_writes_nothing(server_database, revisions, sidecar):
    revisions.chain(2)
    holder = _hold_lock(server_database)
    try:
        result = sidecar.run("upgrade", env={"DATABASE_URL": server_database.url, "MIGRATE_LOCK_TIMEOUT": "2"},
                             timeout=30)
        assert_clean_failure(result, 4)
        assert 1.8 <= result.duration <= 8, f"{result.duration:.1f}s for a 2 s lock timeout"
        assert result.named("lock_waiting"), result
        assert server_database.tables() == []
    finally:
        holder.close()
    # Once the holder is gone the same command goes through.
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": server_database.url, "MIGRATE_LOCK_TIMEOUT": "5"}), 0)
    assert server_database.revisions() == [revisions.head]


def test_lock_name_setting_changes_the_lock(server_database, revisions, sidecar):
    revisions.chain(1)
    holder = _hold_lock(server_database, "team-a")
    try:
        env = {"DATABASE_URL": server_database.url, "MIGRATE_LOCK_TIMEOUT": "1"}
        # A different lock name is not blocked by team-a's lock ...
        assert_exit(sidecar.run("upgrade", env=env), 0)
        revisions.chain(1)
        # ... the same one is.
        assert_clean_failure(sidecar.run("upgrade", env={**env, "MIGRATE_LOCK_NAME": "team-a"}), 4)
    finally:
        holder.close()


def test_a_replica_waits_for_the_lock_then_finds_nothing_to_do(database, revisions, sidecar, tmp_path):
    revisions.chain(1)
    marker = tmp_path / "slow-started"
    # Long enough that the second replica, started once this runs, is surely waiting for the lock on a loaded machine
    # (3 s was once shorter than its start-up).
    revisions.slow(8, marker)
    env = {"DATABASE_URL": database.url}
    first = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    second = sidecar.run("upgrade", env={**env, "MIGRATE_LOCK_TIMEOUT": "30"})
    assert_exit(first.wait(60), 0)
    assert_exit(second, 0)
    assert second.named("lock_waiting") or second.one("lock_acquired").get("waited_ms", 0) > 500
    assert second.one("migration_complete")["applied"] == 0
    assert applied_counts(database) == {rev: 1 for rev in revisions.logged}


def test_lock_timeout_on_sqlite_when_another_migrator_runs(sqlite_database, revisions, sidecar, tmp_path):
    revisions.chain(1)
    marker = tmp_path / "slow-started"
    revisions.slow(30, marker)
    env = {"DATABASE_URL": sqlite_database.url}
    first = sidecar.start("upgrade", env=env)
    try:
        wait_until(marker.exists, 30, what="the slow revision to start")
        second = sidecar.run("upgrade", env={**env, "MIGRATE_LOCK_TIMEOUT": "1"}, timeout=30)
        assert_clean_failure(second, 4)
    finally:
        first.kill()


# --- signals ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_a_slow_revision_rolls_back_releases_the_lock_and_exits(
        pg_database, revisions, sidecar, tmp_path, sig, code):
    done = revisions.chain(2)
    marker = tmp_path / "slow-started"
    slow = revisions.slow(60, marker)
    revisions.chain(1)
    env = {"DATABASE_URL": pg_database.url}
    running = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    wait_until(lambda: pg_database.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'") == 1,
        10, what="pg_sleep to run")
    running.send(sig)
    result = running.wait(20)
    assert_exit(result, code)
    assert "Traceback" not in result.output
    assert result.duration < 60
    failed = result.failure
    assert failed["exit_code"] == code
    # Revisions before the slow one stay applied; the slow one was rolled back.
    assert pg_database.revisions() == [done[-1]]
    assert f"t_{slow}" not in pg_database.tables()
    assert applied_counts(pg_database) == {rev: 1 for rev in done}
    # The server-side sleep was cancelled and the lock released: a rerun finishes at once.
    wait_until(lambda: pg_database.scalar(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'") == 0,
        5, what="the slow statement to be cancelled on the server")
    again = sidecar.run("upgrade", env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "5"}, timeout=30)
    assert_exit(again, 0)
    assert pg_database.revisions() == [revisions.head]


def test_sigterm_on_mariadb_during_a_slow_revision(mariadb_database, revisions, sidecar, tmp_path):
    done = revisions.chain(1)
    marker = tmp_path / "slow-started"
    revisions.slow(60, marker)
    revisions.chain(1)
    env = {"DATABASE_URL": mariadb_database.url}
    running = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    running.send(signal.SIGTERM)
    result = running.wait(20)
    assert_exit(result, 143)
    assert "Traceback" not in result.output
    assert mariadb_database.revisions() == [done[-1]]
    again = sidecar.run("upgrade", env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "10"}, timeout=30)
    assert_exit(again, 0)
    assert mariadb_database.revisions() == [revisions.head]


def test_sigterm_on_sqlite_during_a_slow_python_revision(sqlite_database, revisions, sidecar, tmp_path):
    done = revisions.chain(1)
    marker = tmp_path / "slow-started"
    slow = revisions.slow(60, marker)
    env = {"DATABASE_URL": sqlite_database.url}
    running = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    running.send(signal.SIGTERM)
    result = running.wait(10)
    assert_exit(result, 143)
    assert sqlite_database.revisions() == [done[-1]]
    assert f"t_{slow}" not in sqlite_database.tables()
    again = sidecar.run("upgrade", env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "5"}, timeout=30)
    assert_exit(again, 0)


def test_sigterm_while_waiting_for_the_database_exits_143(revisions, sidecar):
    revisions.chain(1)
    running = sidecar.start("upgrade", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                                            "MIGRATE_WAIT_TIMEOUT": "60"})
    time.sleep(1.5)
    running.send(signal.SIGTERM)
    result = running.wait(10)
    assert_exit(result, 143)
    assert "Traceback" not in result.output


def test_sigkill_during_a_slow_statement_does_not_strand_the_lock_on_postgresql(pg_database, revisions, sidecar,
                                                                                tmp_path):
    """A killed pod cannot clean up; the server must notice the dead client instead of finishing a 60 s statement
    (and holding the advisory lock) first, e.g. through client_connection_check_interval."""
    revisions.chain(1)
    marker = tmp_path / "slow-started"
    revisions.slow(60, marker)
    env = {"DATABASE_URL": pg_database.url}
    running = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    running.kill()
    again = sidecar.run("upgrade", env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "15"}, timeout=40)
    assert_exit(again, 0)
    assert pg_database.revisions() == [revisions.head]
