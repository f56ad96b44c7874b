"""current, heads, history and offline sql (issue 2, point 6)."""

from __future__ import annotations

import pytest

from tests.fixtures.databases import free_port

from .conftest import assert_exit

pytestmark = pytest.mark.integration


def test_current_prints_the_database_revision(database, revisions, sidecar):
    ids = revisions.chain(3)
    env = {"DATABASE_URL": database.url}
    empty = sidecar.run("current", env=env)
    assert_exit(empty, 0)
    assert not any(rev in empty.stdout for rev in ids)
    assert database.tables() == []
    assert_exit(sidecar.run("upgrade", ids[1], env=env), 0)
    result = sidecar.run("current", env=env)
    assert_exit(result, 0)
    assert ids[1] in result.stdout and ids[2] not in result.stdout.replace(ids[1], "")


def test_heads_prints_every_head_without_a_database(revisions, sidecar):
    revisions.chain(2)
    heads = revisions.branch()
    result = sidecar.run("heads", env={"DATABASE_URL": f"postgresql://u:pw@127.0.0.1:{free_port()}/x",
                                       "MIGRATE_WAIT_TIMEOUT": "1"}, timeout=20)
    assert_exit(result, 0)
    for head in heads:
        assert head in result.stdout
    assert revisions.ids[0] not in result.stdout


def test_history_lists_every_revision_without_a_database(revisions, sidecar):
    ids = revisions.chain(4)
    result = sidecar.run("history", env={})
    assert_exit(result, 0)
    for rev in ids:
        assert rev in result.stdout


@pytest.mark.parametrize("scheme, create", [("postgresql", "CREATE TABLE t_r0001"),
                                            ("mysql", "CREATE TABLE t_r0001"),
                                            ("sqlite", "CREATE TABLE t_r0001")])
def test_sql_prints_the_upgrade_without_connecting(revisions, sidecar, scheme, create):
    ids = revisions.chain(3)
    url = ("sqlite:////nonexistent-dir/never.db" if scheme == "sqlite"
           else f"{scheme}://user:secret-pw-marker@unreachable.sidecar-test.invalid:1/db")
    result = sidecar.run("sql", env={"DATABASE_URL": url, "MIGRATE_WAIT_TIMEOUT": "30"}, timeout=30)
    assert_exit(result, 0)
    assert result.duration < 10, "offline mode must not wait for the database"
    assert create in result.stdout
    for rev in ids:
        assert rev in result.stdout
    assert "secret-pw-marker" not in result.output
    # stdout is the SQL script for a DBA: log lines go elsewhere.
    assert not [line for line in result.stdout.splitlines() if line.startswith('{"')], result.stdout


def test_sql_with_a_range(revisions, sidecar):
    ids = revisions.chain(3)
    result = sidecar.run("sql", f"{ids[0]}:{ids[2]}",
                         env={"DATABASE_URL": "postgresql://u@unreachable.sidecar-test.invalid/db"}, timeout=30)
    assert_exit(result, 0)
    assert f"CREATE TABLE t_{ids[0]}" not in result.stdout
    assert f"CREATE TABLE t_{ids[1]}" in result.stdout and f"CREATE TABLE t_{ids[2]}" in result.stdout


def test_sql_writes_nothing_to_a_reachable_database(pg_database, revisions, sidecar):
    revisions.chain(2)
    result = sidecar.run("sql", env={"DATABASE_URL": pg_database.url})
    assert_exit(result, 0)
    assert pg_database.tables() == []
