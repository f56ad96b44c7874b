"""`ready`: wait, read-only and without a lock, until the database is at the heads (issue 17, item 1)."""

from __future__ import annotations

import secrets
import time

import pytest

from alembic_sidecar.databases.mysql import lock_name
from alembic_sidecar.databases.postgresql import advisory_key
from tests.fixtures.databases import (MARIADB_HOST, MARIADB_PORT, PG_HOST, PG_PORT, _PgSession, free_port, random_name,
                                      register_secret)

from .conftest import assert_clean_failure, assert_exit, epoch

pytestmark = pytest.mark.integration

# One poll starts at most 1.25 s after the previous one; a login and a read, and a loaded machine, on top.
DETECTION_BOUND = 3.0


def test_ready_at_the_heads_answers_at_once_from_the_fast_path(database, revisions, sidecar):
    ids = revisions.chain(2)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    result = sidecar.run("ready", env=env)
    assert_exit(result, 0)
    ready = result.one("ready")
    assert ready["revision"] == ids[-1] and ready["polls"] == 1, ready
    assert not result.named("database_ready"), "the fast path answers without the full path's login wait"
    assert ids[-1] in sidecar.termination_log.read_text()


def test_ready_waits_for_an_upgrade_and_notices_it_within_one_poll(database, revisions, sidecar):
    ids = revisions.chain(3)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", ids[0], env=env), 0)
    waiting = sidecar.start("ready", env={**env, "MIGRATE_READY_TIMEOUT": "60"})
    time.sleep(2.5)
    assert waiting.proc.poll() is None, "ready must wait while revisions are pending"
    upgrade = sidecar.run("upgrade", env=env)
    assert_exit(upgrade, 0)
    result = waiting.wait()
    assert_exit(result, 0)
    ready = result.one("ready")
    assert ready["revision"] == ids[-1], ready
    assert ready["polls"] >= 3 and ready["waited_ms"] >= 2000, ready
    delay = epoch(ready["timestamp"]) - epoch(upgrade.one("migration_complete")["timestamp"])
    assert 0 <= delay <= DETECTION_BOUND, f"ready noticed the heads {delay:.2f} s after the upgrade\n{result}"
    assert result.named("ready_waiting"), result


def test_ready_that_never_sees_the_heads_exits_8_naming_current_and_awaited(database, revisions, sidecar):
    ids = revisions.chain(2)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", ids[0], env=env), 0)
    started = time.monotonic()
    result = sidecar.run("ready", env={**env, "MIGRATE_READY_TIMEOUT": "2"})
    elapsed = time.monotonic() - started
    failed = assert_clean_failure(result, 8, "MIGRATE_READY_TIMEOUT", f"reach {ids[1]}", f"it is at {ids[0]}")
    assert 2.0 <= elapsed < 10, elapsed
    assert not result.named("ready"), failed
    assert database.revisions() == [ids[0]]


def test_ready_counts_a_missing_version_table_as_not_yet_and_creates_nothing(database, revisions, sidecar):
    ids = revisions.chain(1)
    result = sidecar.run("ready", env={"DATABASE_URL": database.url, "MIGRATE_READY_TIMEOUT": "0"})
    assert_clean_failure(result, 8, f"reach {ids[0]}", "it is at base")
    assert database.tables() == []


def test_ready_on_a_database_ahead_exits_6_or_warns_when_ignored(database, revisions, sidecar):
    revisions.chain(2)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    database.execute("UPDATE alembic_version SET version_num = 'f00dfeed'")
    started = time.monotonic()
    assert_clean_failure(sidecar.run("ready", env=env), 6, "f00dfeed")
    assert time.monotonic() - started < 10, "ahead is final: ready must not wait for MIGRATE_READY_TIMEOUT"
    ignored = sidecar.run("ready", env={**env, "MIGRATE_ON_UNKNOWN_REVISION": "ignore"})
    assert_exit(ignored, 0)
    assert ignored.one("database_ahead")["level"] == "warning"
    assert ignored.one("ready")["revision"] == "f00dfeed"


def test_ready_waits_for_a_named_target_and_accepts_a_database_past_it(pg_database, revisions, sidecar):
    ids = revisions.chain(3)
    env = {"DATABASE_URL": pg_database.url, "MIGRATE_TARGET": ids[1], "MIGRATE_READY_TIMEOUT": "0"}
    assert_exit(sidecar.run("upgrade", ids[0], env={"DATABASE_URL": pg_database.url}), 0)
    assert_clean_failure(sidecar.run("ready", env=env), 8, f"reach {ids[1]}")
    assert_exit(sidecar.run("upgrade", ids[1], env={"DATABASE_URL": pg_database.url}), 0)
    assert_exit(sidecar.run("ready", env=env), 0)
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url}), 0)
    assert_exit(sidecar.run("ready", env=env), 0)
    assert_clean_failure(sidecar.run("ready", env={**env, "MIGRATE_TARGET": "nosuchrev"}), 7, "nosuchrev")


def test_ready_with_several_heads_and_target_head_is_a_revision_graph_error(pg_database, revisions, sidecar):
    revisions.chain(1)
    revisions.logged_revision()
    revisions.branch()
    result = sidecar.run("ready", env={"DATABASE_URL": pg_database.url})
    assert_clean_failure(result, 7, "heads")


def test_ready_on_an_unreachable_server_exits_3(revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run("ready", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                                       "MIGRATE_WAIT_TIMEOUT": "1"})
    assert_clean_failure(result, 3)


# --- a role that may only read the version table -------------------------------------------------------------------

@pytest.fixture
def pg_reader(pg_database):
    """A login with CONNECT, USAGE on public and nothing else yet (SELECT on the version table is granted later)."""
    role = random_name("rd")
    pg_database.execute(f'CREATE ROLE "{role}" LOGIN')
    pg_database.execute(f'GRANT CONNECT ON DATABASE "{pg_database.name}" TO "{role}"')
    pg_database.execute(f'GRANT USAGE ON SCHEMA public TO "{role}"')
    yield role, f"postgresql://{role}@{PG_HOST}:{PG_PORT}/{pg_database.name}"
    pg_database.execute(f'DROP OWNED BY "{role}"')
    pg_database.execute(f'REVOKE ALL ON DATABASE "{pg_database.name}" FROM "{role}"')
    pg_database.execute(f'DROP ROLE "{role}"')


def test_ready_works_for_a_postgresql_role_that_may_only_select_the_version_table(pg_database, pg_reader,
                                                                                   revisions, sidecar):
    role, url = pg_reader
    ids = revisions.chain(2)
    admin_env = {"DATABASE_URL": pg_database.url}
    assert_exit(sidecar.run("upgrade", ids[0], env=admin_env), 0)
    pg_database.execute(f'GRANT SELECT ON alembic_version TO "{role}"')
    # The premise: this role cannot write the version table, nor create anything.
    as_reader = _PgSession(host=PG_HOST, port=PG_PORT, user=role, database=pg_database.name)
    try:
        # Nor read the applied history, which the migrator's upgrade created beside the version table.
        assert "alembic_sidecar_history" in pg_database.tables()
        for statement in ("UPDATE alembic_version SET version_num = 'x'", "CREATE TABLE t_reader (id int)",
                          "SELECT * FROM alembic_sidecar_history"):
            with pytest.raises(Exception, match="permission denied"):
                as_reader.execute(statement)
    finally:
        as_reader.close()
    # Whoever holds the migration lock cannot hold up `ready`: it never asks for it.
    holder = pg_database.session()
    holder.execute("SELECT pg_advisory_lock($1)", advisory_key("alembic-sidecar"))
    try:
        waiting = sidecar.start("ready", env={"DATABASE_URL": url, "MIGRATE_READY_TIMEOUT": "60",
                                              "MIGRATE_LOCK_TIMEOUT": "1"})
        time.sleep(2.5)
        assert waiting.proc.poll() is None, "ready must wait while revisions are pending"
        assert pg_database.scalar("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
                                  "WHERE l.locktype = 'advisory' AND a.usename = $1", role) == 0
    finally:
        holder.close()
    _migrate_and_see_ready_notice(sidecar, admin_env, waiting, ids[1])
    # At the heads, the same role gets its answer from the fast path.
    assert_exit(sidecar.run("ready", env={"DATABASE_URL": url}), 0)


def test_ready_without_select_on_the_version_table_exits_5(pg_database, pg_reader, revisions, sidecar):
    role, url = pg_reader
    revisions.chain(1)
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url}), 0)
    result = sidecar.run("ready", env={"DATABASE_URL": url})
    assert_clean_failure(result, 5, "alembic_version")


# The migrator's hint: a read-only role that runs `upgrade` is told which privilege it lacks and whose job this is.
MIGRATOR_HINT = ("run `upgrade` as the migrator role", "the migration Job's Secret", "`ready` as the application's")


def test_upgrade_as_a_postgresql_role_without_ddl_rights_exits_5_naming_the_privilege_and_the_migrator(
        pg_database, pg_reader, revisions, sidecar):
    role, url = pg_reader
    ids = revisions.chain(2)
    pg_database.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    # Not even the version table: the first statement is refused.
    result = sidecar.run("upgrade", env={"DATABASE_URL": url})
    assert_clean_failure(result, 5, "permission denied for schema public", "lacks CREATE on schema public",
                         *MIGRATOR_HINT)
    assert pg_database.tables() == []
    # The version table exists and may be read: the revision's own DDL is refused, with the same words.
    assert_exit(sidecar.run("upgrade", ids[0], env={"DATABASE_URL": pg_database.url}), 0)
    pg_database.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    result = sidecar.run("upgrade", env={"DATABASE_URL": url})
    assert_clean_failure(result, 5, ids[1], "lacks CREATE on schema public", *MIGRATOR_HINT)
    assert pg_database.revisions() == [ids[0]]


@pytest.fixture
def mariadb_reader(mariadb_database):
    """A MariaDB user with no privilege yet (SELECT on the version table is granted later)."""
    user, password = random_name("rd"), register_secret(secrets.token_hex(8))
    mariadb_database.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
    yield user, password, f"mysql://{user}:{password}@{MARIADB_HOST}:{MARIADB_PORT}/{mariadb_database.name}"
    mariadb_database.execute(f"DROP USER '{user}'@'%'")


def test_ready_works_for_a_mariadb_user_that_may_only_select_the_version_table(mariadb_database, mariadb_reader,
                                                                                revisions, sidecar):
    import pymysql

    database = mariadb_database
    user, password, url = mariadb_reader
    ids = revisions.chain(2)
    admin_env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", ids[0], env=admin_env), 0)
    database.execute(f"GRANT SELECT ON `{database.name}`.`alembic_version` TO '{user}'@'%'")
    as_reader = pymysql.connect(host=MARIADB_HOST, port=MARIADB_PORT, user=user, password=password,
                                database=database.name, autocommit=True)
    try:
        with as_reader.cursor() as cursor:
            assert "alembic_sidecar_history" in database.tables()
            for statement in ("UPDATE alembic_version SET version_num = 'x'", "CREATE TABLE t_reader (id int)",
                              "SELECT * FROM alembic_sidecar_history"):
                with pytest.raises(pymysql.err.OperationalError, match="denied"):
                    cursor.execute(statement)
    finally:
        as_reader.close()
    holder = database.session()
    name = lock_name("alembic-sidecar", database.name)
    holder.execute("SELECT GET_LOCK(%s, 0)", name)
    try:
        waiting = sidecar.start("ready", env={"DATABASE_URL": url, "MIGRATE_READY_TIMEOUT": "60",
                                              "MIGRATE_LOCK_TIMEOUT": "1"})
        time.sleep(2.5)
        assert waiting.proc.poll() is None, "ready must wait while revisions are pending"
    finally:
        holder.close()
    _migrate_and_see_ready_notice(sidecar, admin_env, waiting, ids[1])
    assert database.revisions() == [ids[1]]


def test_upgrade_as_a_mariadb_user_without_ddl_rights_exits_5_naming_the_privilege_and_the_migrator(
        mariadb_database, mariadb_reader, revisions, sidecar):
    user, _, url = mariadb_reader
    revisions.chain(1)
    mariadb_database.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{mariadb_database.name}`.* TO '{user}'@'%'")
    result = sidecar.run("upgrade", env={"DATABASE_URL": url})
    assert_clean_failure(result, 5, "CREATE command denied",
                         f"lacks CREATE on `{mariadb_database.name}`.`alembic_version`", *MIGRATOR_HINT)
    assert mariadb_database.tables() == []


def _migrate_and_see_ready_notice(sidecar, admin_env, waiting, head) -> None:
    """The migrator upgrades; the waiting `ready` exits 0 at the head within about one poll of the commit."""
    upgrade = sidecar.run("upgrade", env=admin_env)
    assert_exit(upgrade, 0)
    result = waiting.wait()
    assert_exit(result, 0)
    assert result.one("ready")["revision"] == head
    delay = epoch(result.one("ready")["timestamp"]) - epoch(upgrade.one("migration_complete")["timestamp"])
    assert delay <= DETECTION_BOUND, delay
