"""`docker stop` during a slow revision: the sidecar as PID 1 rolls back, releases the lock and exits 143 at once."""

from __future__ import annotations

import time

import pytest

from tests.fixtures.docker import docker
from tests.fixtures.revisions import SLOW_SECONDS_ENV, applied_counts

from .support import ON_EACH_PYTHON, assert_exit, assert_failed, wait_for_file

pytestmark = [pytest.mark.container, ON_EACH_PYTHON]

#: docker stop's grace period: long enough that a container ignoring SIGTERM would be seen (SIGKILL, exit 137).
GRACE = 30


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database", "sqlite_database"])
def test_docker_stop_during_a_slow_revision_rolls_back_releases_the_lock_and_a_rerun_completes(
        request, fixture, revisions, container_sidecar, shared_dir):
    db = request.getfixturevalue(fixture)
    volumes = {str(shared_dir): str(shared_dir)}
    if db.driver == "sqlite":
        db.path.parent.chmod(0o777)
        volumes[str(db.path.parent)] = str(db.path.parent)  # the same path inside and out: the URL works in both
    done = revisions.chain(1)
    slow = revisions.slow(120, marker=shared_dir / "slow-started")
    revisions.chain(1)
    env = {"DATABASE_URL": db.url}
    name = container_sidecar.start(env=env, volumes=volumes)
    wait_for_file(shared_dir / "slow-started")
    time.sleep(0.3)  # let the sleep statement reach the server

    started = time.monotonic()
    docker("stop", "-t", str(GRACE), name, timeout=GRACE + 30)
    stopped_after = time.monotonic() - started
    result = container_sidecar.wait(name)
    assert_failed(result, 143)
    assert stopped_after < 10, f"docker stop took {stopped_after:.1f}s: SIGTERM was not handled promptly"

    assert db.revisions() == done
    assert applied_counts(db) == {rev: 1 for rev in done}
    if db.driver != "mariadb":  # MariaDB commits DDL implicitly; PostgreSQL and SQLite roll the table back
        assert f"t_{slow}" not in db.tables()
    if db.driver == "postgresql":
        assert db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                         "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") == 0

    again = container_sidecar.run(env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "5"},
                                  volumes=volumes)
    assert_exit(again, 0)
    assert db.revisions() == [revisions.head]
    assert again.event("lock_acquired")["waited_ms"] < 2000
