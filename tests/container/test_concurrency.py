"""Ten containers started at once against one database, as replicas of a Deployment would: exactly once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.fixtures.revisions import applied_counts

from .support import assert_exit

pytestmark = pytest.mark.container

REPLICAS = 10


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_ten_containers_at_once_apply_each_revision_exactly_once_and_all_exit_0(
        request, fixture, revisions, container_sidecar):
    db = request.getfixturevalue(fixture)
    revisions.chain(2)
    revisions.slow(4)  # holds the lock long enough that the replicas meet it while they start
    revisions.chain(2)
    env = {"DATABASE_URL": db.url, "MIGRATE_LOCK_TIMEOUT": "120"}
    with ThreadPoolExecutor(REPLICAS) as pool:
        names = list(pool.map(lambda _: container_sidecar.start(env=env), range(REPLICAS)))
        results = list(pool.map(lambda name: container_sidecar.wait(name, timeout=180), names))
    for result in results:
        assert_exit(result, 0)
    assert applied_counts(db) == {rev: 1 for rev in revisions.logged}
    assert db.revisions() == [revisions.head]
    applied = sorted(r.event("migration_complete")["applied"] for r in results)
    # One replica applied all five; those that took the lock after it found nothing to do.
    assert applied[-1] == 5 and sum(applied) == 5, applied
    assert sum(1 for r in results for e in r.events if e["event"] == "lock_waiting") >= 1
