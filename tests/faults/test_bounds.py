"""Every wait is bounded on the client, and the server lets a partitioned migrator go (issue 7, point 2)."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.databases import free_port
from tests.fixtures.faults import database_on, holding_migration_lock, lock_free, table_lock, wait_lock_free
from tests.fixtures.revisions import SLOW_SECONDS_ENV, applied_counts
from tests.integration.conftest import assert_clean_failure, assert_exit, wait_until

from .conftest import assert_transient, pg_sessions, sleeping_in_the_database, tcp_sessions

pytestmark = pytest.mark.faults

#: The server must end a partitioned migrator's session, and so free its lock, within this many seconds.
SERVER_LETS_GO = 90


# --- partitions -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("statement_timeout, bound", [(None, 90), (5, 5 + 15)],
                         ids=["default-settings", "statement-timeout-5"])
def test_partition_mid_revision_ends_the_run_and_the_server_frees_the_lock(
        own_pg_server, network_partition, revisions, sidecar, tmp_path, statement_timeout, bound):
    database = database_on(own_pg_server)
    marker = tmp_path / "slow-started"
    done = revisions.chain(1)
    revisions.slow(600, marker)
    revisions.chain(1)
    env = {"DATABASE_URL": database.url}
    if statement_timeout is not None:
        env["MIGRATE_STATEMENT_TIMEOUT"] = str(statement_timeout)
    running = sidecar.start("upgrade", env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    wait_until(lambda: sleeping_in_the_database(database), 10, what="pg_sleep to run")

    cut = network_partition(own_pg_server.port)
    result = running.wait(bound + 10)
    assert_transient(result)
    assert result.ended - cut.started_at <= bound, f"{result.ended - cut.started_at:.1f}s after the partition"
    # Still partitioned: the server itself must notice the silent peer (keepalives, tcp_user_timeout).
    wait_until(lambda: not tcp_sessions(database) and lock_free(database),
               max(1.0, cut.started_at + SERVER_LETS_GO - time.time()), interval=0.5,
               what="the server to end the partitioned session and its advisory lock")
    cut.heal()
    assert database.revisions() == done
    again = sidecar.run("upgrade", env={"DATABASE_URL": database.url, SLOW_SECONDS_ENV: "0"})
    assert_exit(again, 0)
    assert applied_counts(database) == {rev: 1 for rev in revisions.logged}


def test_partition_during_the_lock_wait_still_ends_within_the_lock_timeout(own_pg_server, network_partition,
                                                                           revisions, sidecar):
    database = database_on(own_pg_server)
    revisions.chain(1)
    env = {"DATABASE_URL": database.url}
    with holding_migration_lock(database):  # over the Unix socket: the partition does not touch the holder
        running = sidecar.start("upgrade", env={**env, "MIGRATE_LOCK_TIMEOUT": "5"})
        # The log is read only at exit, so give the sidecar a second from its first login to its lock wait.
        wait_until(lambda: tcp_sessions(database), 10, what="the sidecar to log in")
        time.sleep(1)
        wait_until(lambda: tcp_sessions(database), 5, what="the sidecar's lock session")
        cut = network_partition(own_pg_server.port)
        result = running.wait(20)
    assert result.returncode in (4, 9), str(result)
    assert_clean_failure(result, result.returncode)
    assert result.duration <= 10, f"{result.duration:.1f}s with MIGRATE_LOCK_TIMEOUT=5"
    cut.heal()
    assert database.tables() == []
    assert_exit(sidecar.run("upgrade", env={**env, "MIGRATE_LOCK_TIMEOUT": "15"}), 0)
    assert applied_counts(database) == {rev: 1 for rev in revisions.logged}


# --- the fast path, the wait, the whole run -------------------------------------------------------------------------

def test_fast_path_is_bounded_when_the_version_table_is_locked(pg_database, revisions, sidecar):
    revisions.chain(2)
    env = {"DATABASE_URL": pg_database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    with table_lock(pg_database, "alembic_version"):
        result = sidecar.run("upgrade", env={**env, "MIGRATE_WAIT_TIMEOUT": "3", "MIGRATE_LOCK_TIMEOUT": "3",
                                             "MIGRATE_STATEMENT_TIMEOUT": "3"}, timeout=30)
    assert result.returncode in (4, 3), str(result)
    assert_clean_failure(result, result.returncode)
    assert result.duration <= 10, f"{result.duration:.1f}s with every timeout at 3 s"
    again = sidecar.run("upgrade", env=env)
    assert_exit(again, 0)
    assert again.one("migration_complete")["applied"] == 0


@pytest.mark.parametrize("how", ["nothing-listens", "blackhole"])
def test_wait_timeout_bounds_the_wait_for_the_database(pg_database, revisions, sidecar, tcp_proxy, how):
    revisions.chain(1)
    if how == "nothing-listens":
        url = f"postgresql://postgres@127.0.0.1:{free_port()}/{pg_database.name}"
    else:
        proxy = tcp_proxy(5432)
        proxy.blackhole()
        url = proxy.url(pg_database)
    result = sidecar.run("upgrade", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "3"}, timeout=30)
    assert_clean_failure(result, 3)
    assert result.duration <= 4.5, f"{result.duration:.1f}s with MIGRATE_WAIT_TIMEOUT=3"
    assert pg_database.tables() == []


def test_whole_run_deadline_stops_a_slow_revision(pg_database, revisions, sidecar, tmp_path):
    done = revisions.chain(1)
    env = {"DATABASE_URL": pg_database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    revisions.slow(60, tmp_path / "slow-started")
    revisions.chain(1)
    result = sidecar.run("upgrade", env={**env, "MIGRATE_TIMEOUT": "3"}, timeout=30)
    assert_transient(result)
    assert result.duration <= 15, f"{result.duration:.1f}s with MIGRATE_TIMEOUT=3"
    assert pg_database.revisions() == done
    wait_lock_free(pg_database, 5)
    assert not sleeping_in_the_database(pg_database), f"the slow statement still runs: {pg_sessions(pg_database)}"
    again = sidecar.run("upgrade", env={**env, SLOW_SECONDS_ENV: "0"})
    assert_exit(again, 0)
    assert applied_counts(pg_database) == {rev: 1 for rev in revisions.logged}
