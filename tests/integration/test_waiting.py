"""Waiting for the database: late servers, unreachable hosts, wrong passwords (issue 2, point 3)."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.databases import free_port

from .conftest import assert_clean_failure, assert_exit, epoch

pytestmark = pytest.mark.integration


def test_database_coming_up_3s_after_the_sidecar_is_detected_within_half_a_second(
        pg_server_factory, revisions, sidecar):
    revisions.chain(2)
    server = pg_server_factory()
    running = sidecar.start("upgrade", env={"DATABASE_URL": server.url("postgres"), "MIGRATE_WAIT_TIMEOUT": "30"})
    server.start_in(3.0)
    result = running.wait(60)
    server.wait_started()
    assert_exit(result, 0)
    assert server.ready_at is not None
    assert server.ready_at - result.started >= 2.5, "the server came up too early for this test to mean anything"
    ready = epoch(result.one("database_ready")["timestamp"])
    first_applied = result.named("revision_applied")[0]
    migration_started = epoch(first_applied["timestamp"]) - first_applied["duration_ms"] / 1000
    # The sidecar may log in a hair before our own poller does; it must not be much later.
    assert ready - server.ready_at < 0.7, f"database_ready {ready - server.ready_at:.2f}s after the server was up"
    assert migration_started - server.ready_at < 1.0, result
    # Throttled: a login attempt at least every ~0.5 s over 3 s, but only a few lines about it.
    waiting = result.named("database_waiting")
    assert len(waiting) <= 3, f"{len(waiting)} database_waiting lines in 3 s\n{result}"
    attempts = result.one("database_ready").get("attempts")
    if attempts is not None:
        assert attempts >= 4 and attempts > 2 * len(waiting), result
    admin = server.admin()
    try:
        assert admin.rows("SELECT version_num FROM alembic_version") == [(revisions.head,)]
    finally:
        admin.close()


def test_refused_connection_times_out_with_exit_3_and_few_log_lines(revisions, sidecar):
    revisions.chain(1)
    port = free_port()
    result = sidecar.run("upgrade", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/db",
                                         "MIGRATE_WAIT_TIMEOUT": "6"}, timeout=30)
    assert_clean_failure(result, 3)
    assert 5.5 <= result.duration <= 10, f"waited {result.duration:.1f}s for a 6 s timeout"
    # Some sign of life within 6 s, but not one line per attempt (an attempt every <= 0.5 s).
    waiting = result.named("database_waiting")
    assert 1 <= len(waiting) <= 3, f"{len(waiting)} database_waiting lines in 6 s\n{result}"


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_unresolvable_host_is_retried_until_the_wait_timeout_then_exit_3(revisions, sidecar, scheme):
    revisions.chain(1)
    url = f"{scheme}://user:pw@no-such-host.sidecar-test.invalid:5432/db"
    result = sidecar.run("upgrade", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "2"}, timeout=30)
    failed = assert_clean_failure(result, 3)
    assert 1.8 <= result.duration <= 7, f"{result.duration:.1f}s for a 2 s timeout"
    assert "no-such-host.sidecar-test.invalid" in failed["error"] or "no-such-host" in result.output


def test_wrong_password_fails_at_once_with_exit_5(pg_password_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_password_server
    with server.database() as db:
        url = server.url(db.name, server.user, "wrong-password-marker")
        result = sidecar.run("upgrade", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "30"}, timeout=60)
        failed = assert_clean_failure(result, 5)
        assert result.duration < 5, f"took {result.duration:.1f}s: the password error was retried"
        assert "wrong-password-marker" not in result.output
        assert "password" in failed["error"].lower() or "authentication" in failed["error"].lower()
        assert db.tables() == []


def test_wrong_password_on_mariadb_fails_at_once_with_exit_5(mariadb_password_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_password_server
    with server.database(ascii_login=True) as db:
        url = server.url(db.name, server.ascii_user, "wrong-password-marker")
        result = sidecar.run("upgrade", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "30"}, timeout=60)
        assert_clean_failure(result, 5)
        assert result.duration < 5, f"took {result.duration:.1f}s: the password error was retried"
        assert "wrong-password-marker" not in result.output
        assert db.tables() == []


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_unknown_database_name_fails_at_once_with_exit_5(request, revisions, sidecar, fixture):
    db = request.getfixturevalue(fixture)
    revisions.chain(1)
    url = db.url.rsplit("/", 1)[0] + "/no_such_database_xyz"
    result = sidecar.run("upgrade", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "30"}, timeout=60)
    assert_clean_failure(result, 5, "no_such_database_xyz")
    assert result.duration < 5


def test_missing_privilege_fails_with_exit_5(pg_password_server, revisions, sidecar):
    """A login that may connect but not create tables in the schema."""
    revisions.chain(1)
    server = pg_password_server
    with server.database() as db:
        admin = server.admin(db.name)
        try:
            # PostgreSQL 15: only the database owner may create in schema public.
            admin.execute(f'ALTER DATABASE "{db.name}" OWNER TO postgres')
            admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        finally:
            admin.close()
        result = sidecar.run("upgrade", env={"DATABASE_URL": db.url, "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_clean_failure(result, 5, "permission")


def test_wait_command_returns_0_once_the_database_accepts_a_login_and_writes_nothing(database, revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run("wait", env={"DATABASE_URL": database.url})
    assert_exit(result, 0)
    assert result.named("database_ready")
    assert database.tables() == []


def test_wait_command_waits_for_a_late_database(pg_server_factory, sidecar):
    server = pg_server_factory()
    running = sidecar.start("wait", env={"DATABASE_URL": server.url("postgres"), "MIGRATE_WAIT_TIMEOUT": "20"})
    server.start_in(2.0)
    result = running.wait(40)
    assert_exit(result, 0)
    assert result.duration >= 2.0


def test_wait_command_times_out_with_exit_3(revisions, sidecar):
    result = sidecar.run("wait", env={"DATABASE_URL": f"mysql://root@127.0.0.1:{free_port()}/db",
                                      "MIGRATE_WAIT_TIMEOUT": "2"}, timeout=30)
    assert_clean_failure(result, 3)
    assert result.duration < 7


def test_too_many_connections_is_retried_until_a_slot_frees_up(pg_database, revisions, sidecar):
    revisions.chain(1)
    role = "lim_" + pg_database.name
    pg_database.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 0')
    pg_database.execute(f'GRANT ALL ON SCHEMA public TO "{role}"')
    try:
        url = f"postgresql://{role}@127.0.0.1:5432/{pg_database.name}"
        running = sidecar.start("upgrade", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "20"})
        time.sleep(2.0)
        pg_database.execute(f'ALTER ROLE "{role}" CONNECTION LIMIT -1')
        result = running.wait(30)
        assert_exit(result, 0)
        assert result.duration >= 2.0
        assert pg_database.revisions() == [revisions.head]
    finally:
        pg_database.execute(f'DROP OWNED BY "{role}"')
        pg_database.execute(f'DROP ROLE "{role}"')
