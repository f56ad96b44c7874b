"""Faults a rerun can fix exit 9, never 1 or 70: lost connections, read-only databases, DDL lock timeouts
(issue 7, point 3)."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.faults import (
    database_on, mariadb_limited_database, read_only, restart, table_lock, wait_lock_free,
)
from tests.fixtures.revisions import LOG_TABLE, SLOW_SECONDS_ENV, applied_counts
from tests.integration.conftest import assert_clean_failure, assert_exit, wait_until

from .conftest import assert_transient, pg_sessions, sleeping_in_the_database, tcp_sessions

pytestmark = pytest.mark.faults


def _slow_chain(revisions, marker, seconds: float = 30) -> list[str]:
    """One quick revision, a slow one that touches ``marker``, one more; returns the quick ones before the slow."""
    done = revisions.chain(1)
    revisions.slow(seconds, marker)
    revisions.chain(1)
    return done


def _rerun_applies_everything_once(database, revisions, sidecar) -> None:
    again = sidecar.run("upgrade", env={"DATABASE_URL": database.url, SLOW_SECONDS_ENV: "0",
                                        "MIGRATE_LOCK_TIMEOUT": "15"})
    assert_exit(again, 0)
    assert database.revisions() == [revisions.head]
    assert applied_counts(database) == {rev: 1 for rev in revisions.logged}


# --- the connection is lost mid-revision ----------------------------------------------------------------------------

def test_server_restart_mid_revision_is_transient_and_the_replica_waiting_for_the_lock_never_exits_1_or_70(
        own_pg_server, revisions, sidecar, tmp_path):
    database = database_on(own_pg_server)
    marker = tmp_path / "slow-started"
    done = _slow_chain(revisions, marker)
    env = {"DATABASE_URL": database.url, "MIGRATE_LOCK_TIMEOUT": "30"}
    first = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    wait_until(lambda: sleeping_in_the_database(database), 10, what="pg_sleep to run")
    alone = len(tcp_sessions(database))
    replica = sidecar.start("upgrade", env={**env, SLOW_SECONDS_ENV: "0"})
    wait_until(lambda: len(tcp_sessions(database)) > alone, 20, what="the replica to connect")
    time.sleep(1)  # the replica is in its lock wait now

    restart(own_pg_server, "fast")

    assert_transient(first.wait(30))
    waiting = replica.wait(90)
    assert waiting.returncode in (9, 3, 4), f"the replica that was waiting for the lock:\n{waiting}"
    assert_clean_failure(waiting, waiting.returncode)
    assert database.revisions() == done
    wait_lock_free(database, 5)
    _rerun_applies_everything_once(database, revisions, sidecar)


def test_session_terminated_by_an_admin_mid_revision_is_transient(pg_database, revisions, sidecar, tmp_path):
    marker = tmp_path / "slow-started"
    done = _slow_chain(revisions, marker)
    running = sidecar.start("upgrade", env={"DATABASE_URL": pg_database.url})
    wait_until(marker.exists, 30, what="the slow revision to start")
    wait_until(lambda: sleeping_in_the_database(pg_database), 10, what="pg_sleep to run")
    terminated = pg_database.rows(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
        "AND query LIKE 'SELECT pg_sleep%'", pg_database.name)
    assert terminated == [(True,)]
    assert_transient(running.wait(30))
    assert pg_database.revisions() == done
    wait_lock_free(pg_database, 5)
    _rerun_applies_everything_once(pg_database, revisions, sidecar)


def test_connection_reset_mid_revision_is_transient(pg_database, revisions, sidecar, tcp_proxy, tmp_path):
    proxy = tcp_proxy(5432)
    marker = tmp_path / "slow-started"
    done = _slow_chain(revisions, marker)
    running = sidecar.start("upgrade", env={"DATABASE_URL": proxy.url(pg_database)})
    wait_until(marker.exists, 30, what="the slow revision to start")
    wait_until(lambda: sleeping_in_the_database(pg_database), 10, what="pg_sleep to run")
    assert proxy.reset() >= 1
    assert_transient(running.wait(30))
    assert pg_database.revisions() == done
    wait_lock_free(pg_database, 10)  # the server learns of the reset when it next looks at the socket
    _rerun_applies_everything_once(pg_database, revisions, sidecar)


def test_latency_on_every_packet_still_migrates(pg_database, revisions, sidecar, tcp_proxy):
    proxy = tcp_proxy(5432)
    proxy.delay(0.05)  # each way: every round trip takes 100 ms longer
    revisions.chain(3)
    result = sidecar.run("upgrade", env={"DATABASE_URL": proxy.url(pg_database)}, timeout=120)
    assert_exit(result, 0)
    assert pg_database.revisions() == [revisions.head]
    assert applied_counts(pg_database) == {rev: 1 for rev in revisions.logged}


# --- the database refuses writes ------------------------------------------------------------------------------------

def test_read_only_postgresql_database_is_transient(pg_database, revisions, sidecar):
    done = revisions.chain(1)
    env = {"DATABASE_URL": pg_database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    revisions.chain(1)
    with read_only(pg_database):
        result = sidecar.run("upgrade", env=env, timeout=30)
    assert_transient(result)
    assert pg_database.revisions() == done
    wait_lock_free(pg_database, 5)
    _rerun_applies_everything_once(pg_database, revisions, sidecar)


def test_read_only_mariadb_server_is_transient(own_mariadb_server, revisions, sidecar):
    revisions.chain(1)
    with mariadb_limited_database(own_mariadb_server) as database:
        with read_only(database, own_mariadb_server):
            result = sidecar.run("upgrade", env={"DATABASE_URL": database.url}, timeout=30)
        assert_transient(result)
        assert database.revisions() == []
        wait_lock_free(database, 5)
        _rerun_applies_everything_once(database, revisions, sidecar)


# --- a table lock the revision cannot get ---------------------------------------------------------------------------

def _revision_altering_a_busy_table(database, revisions) -> str:
    database.execute("CREATE TABLE busy (id int)")
    rev = revisions.add(
        f'    op.execute("CREATE TABLE IF NOT EXISTS {LOG_TABLE} (revision VARCHAR(64) NOT NULL)")\n'
        '    op.add_column("busy", sa.Column("extra", sa.Integer))\n'
        f'    op.execute("INSERT INTO {LOG_TABLE} (revision) VALUES (\'{{rev}}\')")\n', message="alter busy")
    revisions.logged.append(rev)
    return rev


def _busy_columns(database) -> list[str]:
    return [r[0] for r in database.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'busy' ORDER BY ordinal_position")]


def test_ddl_lock_timeout_is_transient(pg_database, revisions, sidecar):
    _revision_altering_a_busy_table(pg_database, revisions)
    env = {"DATABASE_URL": pg_database.url, "MIGRATE_DDL_LOCK_TIMEOUT": "1"}
    with table_lock(pg_database, "busy"):
        result = sidecar.run("upgrade", env=env, timeout=30)
    assert_transient(result)
    assert result.duration < 15
    assert pg_database.revisions() == []
    assert _busy_columns(pg_database) == ["id"]
    wait_lock_free(pg_database, 5)
    _rerun_applies_everything_once(pg_database, revisions, sidecar)


def test_ddl_lock_retries_get_through_once_the_blocker_is_gone(pg_database, revisions, sidecar):
    rev = _revision_altering_a_busy_table(pg_database, revisions)
    env = {"DATABASE_URL": pg_database.url, "MIGRATE_DDL_LOCK_TIMEOUT": "1", "MIGRATE_DDL_LOCK_RETRIES": "5"}
    with table_lock(pg_database, "busy") as blocker:
        running = sidecar.start("upgrade", env=env)
        wait_until(lambda: any(s["wait_event_type"] == "Lock" for s in pg_sessions(pg_database)), 20,
                   what="the revision to queue for the table lock")
        time.sleep(2)  # longer than the 1 s lock timeout: at least one attempt is rolled back and retried
        blocker.release()
        result = running.wait(60)
    assert_exit(result, 0)
    assert pg_database.revisions() == [rev]
    assert applied_counts(pg_database) == {rev: 1}
    assert _busy_columns(pg_database) == ["id", "extra"]
