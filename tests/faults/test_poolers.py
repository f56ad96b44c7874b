"""Through a real PgBouncer the lock still excludes, or the sidecar refuses at once (issue 7, point 4)."""

from __future__ import annotations

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
