"""Through a real PgBouncer the lock still excludes, or the sidecar refuses at once (issue 7, point 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.faults import wait_lock_free
from tests.fixtures.revisions import applied_counts
from tests.integration.conftest import assert_clean_failure, assert_exit

pytestmark = pytest.mark.faults

REPLICAS = 5


def _three_revisions_one_slow(revisions) -> None:
    revisions.logged_revision()
    revisions.slow(2)
    revisions.logged_revision()


def test_session_pooling_five_replicas_apply_each_revision_exactly_once(pg_database, pgbouncer, revisions,
                                                                          sidecar):
    bouncer = pgbouncer("session")
    _three_revisions_one_slow(revisions)
    env = {"DATABASE_URL": bouncer.url(pg_database), "MIGRATE_LOCK_TIMEOUT": "60"}
    running = [sidecar.start("upgrade", env=env) for _ in range(REPLICAS)]
    for result in [r.wait(90) for r in running]:
        assert_exit(result, 0)
    assert pg_database.revisions() == [revisions.head]
    assert applied_counts(pg_database) == {rev: 1 for rev in revisions.logged}
    wait_lock_free(pg_database, 5)


def test_transaction_pooling_runs_each_revision_at_most_once_or_refuses_and_leaves_no_lock(
        pg_database, pgbouncer, revisions, sidecar):
    bouncer = pgbouncer("transaction")
    _three_revisions_one_slow(revisions)
    env = {"DATABASE_URL": bouncer.url(pg_database), "MIGRATE_LOCK_TIMEOUT": "30"}
    running = [sidecar.start("upgrade", env=env) for _ in range(REPLICAS)]
    for result in [r.wait(90) for r in running]:
        assert result.returncode in (0, 2), str(result)
        if result.returncode == 2:
            error = assert_clean_failure(result, 2, "pool")["error"].lower()
            assert any(what in error for what in ("session", "direct", "migrate_lock_url")), \
                f"the error should say what to do (session pooling, a direct connection): {error}"
    assert all(n == 1 for n in applied_counts(pg_database).values()), applied_counts(pg_database)
    # PgBouncer still runs: a session lock left on one of its pooled server connections would show here.
    wait_lock_free(pg_database, 2)
    direct = sidecar.run("upgrade", env={"DATABASE_URL": pg_database.url, "MIGRATE_LOCK_TIMEOUT": "5"})
    assert_exit(direct, 0)
    assert pg_database.revisions() == [revisions.head]
    assert applied_counts(pg_database) == {rev: 1 for rev in revisions.logged}


def _schema_fleet_through(bouncer, pg_database, revisions, sidecar, tmp_path: Path, **settings: str):
    """Three empty tenant schemas, two revisions, and a fleet run over them through ``bouncer``."""
    revisions.chain(2)
    schemas = [f"tenant_{n}" for n in range(3)]
    for schema in schemas:
        pg_database.execute(f'CREATE SCHEMA "{schema}"')
    targets = tmp_path / "targets"
    targets.write_text("".join(f"schema={schema}\n" for schema in schemas))
    result = sidecar.run("upgrade", env={"DATABASE_URL": bouncer.url(pg_database), "MIGRATE_TARGETS_FILE": str(targets),
                                         "MIGRATE_LOG_FORMAT": "json", **settings})
    return schemas, result


def test_a_schema_fleet_through_transaction_pooling_refuses_every_target_and_writes_nothing(
        pg_database, pgbouncer, revisions, sidecar, tmp_path):
    # The fleet's parent runs the pooler test once for the targets' shared database; it must not let one through.
    schemas, result = _schema_fleet_through(pgbouncer("transaction"), pg_database, revisions, sidecar, tmp_path,
                                            MIGRATE_CONTINUE_ON_ERROR="true")
    assert_exit(result, 2)
    done = result.named("target_done")
    assert [(event["outcome"], event["exit_code"]) for event in done] == [("failed", 2)] * len(schemas), done
    assert all("pool" in event["error"] for event in done), done
    for schema in schemas:
        assert pg_database.scalar("SELECT to_regclass($1)::text", f"{schema}.alembic_version") is None
    wait_lock_free(pg_database, 2)


def test_a_schema_fleet_through_session_pooling_migrates_every_target(pg_database, pgbouncer, revisions, sidecar,
                                                                       tmp_path):
    schemas, result = _schema_fleet_through(pgbouncer("session"), pg_database, revisions, sidecar, tmp_path,
                                            MIGRATE_PARALLEL="2")
    assert_exit(result, 0)
    for schema in schemas:
        assert [row[0] for row in pg_database.rows(f'SELECT version_num FROM "{schema}".alembic_version')] == \
            [revisions.head]
    wait_lock_free(pg_database, 2)
