"""Every documented exit code comes out of `docker run` unchanged (the image adds no shell or wrapper)."""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path

import pytest

from tests.fixtures.docker import docker

from .support import ON_EACH_PYTHON, assert_exit, assert_failed, pg_advisory_key, wait_for_file

pytestmark = [pytest.mark.container, ON_EACH_PYTHON]


def test_0_when_the_database_reaches_head(pg_database, revisions, container_sidecar):
    revisions.chain(2)
    assert_exit(container_sidecar.run(env={"DATABASE_URL": pg_database.url}), 0)
    assert pg_database.revisions() == [revisions.head]


def test_1_when_a_revision_fails_and_earlier_ones_stay_applied(pg_database, revisions, container_sidecar):
    good = revisions.logged_revision()
    revisions.failing("sql")
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_failed(result, 1)
    assert pg_database.revisions() == [good]


def test_2_for_a_configuration_error(container_sidecar):
    result = container_sidecar.run(env={"DATABASE_URL": "postgresql://u@h/db", "MIGRATE_WAIT_TIMEOUT": "soon"})
    assert_failed(result, 2, "MIGRATE_WAIT_TIMEOUT")


def test_3_when_nothing_answers_before_the_wait_timeout(revisions, container_sidecar):
    revisions.chain(1)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    result = container_sidecar.run(env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/x",
                                        "MIGRATE_WAIT_TIMEOUT": "2"})
    assert_failed(result, 3)
    assert time.monotonic() - started < 15


def test_4_when_another_migrator_holds_the_lock(pg_database, revisions, container_sidecar):
    revisions.chain(1)
    name = f"held-{secrets.token_hex(4)}"
    holder = pg_database.session()
    try:
        holder.execute("SELECT pg_advisory_lock($1)", pg_advisory_key(name))
        result = container_sidecar.run(env={"DATABASE_URL": pg_database.url, "MIGRATE_LOCK_NAME": name,
                                            "MIGRATE_LOCK_TIMEOUT": "1"})
    finally:
        holder.close()
    assert_failed(result, 4)
    assert pg_database.revisions() == []


def test_5_when_the_password_is_wrong(pg_password_server, revisions, container_sidecar):
    revisions.chain(1)
    with pg_password_server.database() as db:
        url = pg_password_server.url(db.name, pg_password_server.user, "not-the-password")
        result = container_sidecar.run(env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "5"})
    assert_failed(result, 5)
    assert "not-the-password" not in result.output


def test_6_when_the_database_is_ahead_of_the_image(pg_database, revisions, container_sidecar):
    revisions.chain(1)
    pg_database.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
    pg_database.execute("INSERT INTO alembic_version VALUES ('f00dfeed')")
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_failed(result, 6, "f00dfeed")


def test_7_when_a_revision_file_does_not_import(pg_database, revisions, container_sidecar):
    revisions.chain(1)
    revisions.syntax_error()
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_failed(result, 7)
    assert pg_database.revisions() == []


def test_8_from_check_when_revisions_are_pending(pg_database, revisions, container_sidecar):
    revisions.chain(2)
    result = container_sidecar.run("check", env={"DATABASE_URL": pg_database.url})
    assert_exit(result, 8)
    assert pg_database.revisions() == []
    assert_exit(container_sidecar.run(env={"DATABASE_URL": pg_database.url}), 0)
    assert_exit(container_sidecar.run("check", env={"DATABASE_URL": pg_database.url}), 0)


@pytest.mark.parametrize("how", ["sys.exit(0)", "os._exit(0)"])
def test_1_when_revision_code_ends_the_process_as_pid_1s_child(pg_database, revisions, container_sidecar, how):
    """The supervisor is PID 1 in the container: a revision that exits cannot turn the run into a success."""
    good = revisions.logged_revision()
    bad = revisions.add(f'    import os, sys\n    op.execute("CREATE TABLE t_{{rev}} (id int)")\n    {how}\n')
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_failed(result, 1, bad)
    assert pg_database.revisions() == [good]


def test_9_when_migrate_timeout_runs_out(pg_database, revisions, container_sidecar):
    done = revisions.chain(1)
    revisions.slow(60)
    started = time.monotonic()
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url, "MIGRATE_TIMEOUT": "3"})
    assert_failed(result, 9, "MIGRATE_TIMEOUT")
    assert time.monotonic() - started < 20
    assert pg_database.revisions() == done
    assert pg_database.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                              "(SELECT oid FROM pg_database WHERE datname = current_database())") == 0


@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_signal_during_a_slow_revision_exits_with_its_code(pg_database, revisions, container_sidecar, shared_dir,
                                                           signal_name, code):
    revisions.chain(1)
    revisions.slow(60, marker=Path("/shared/started"))
    name = container_sidecar.start(env={"DATABASE_URL": pg_database.url}, volumes={str(shared_dir): "/shared"})
    wait_for_file(shared_dir / "started")
    docker("kill", "--signal", signal_name, name)
    result = container_sidecar.wait(name, timeout=30)
    assert_failed(result, code)
