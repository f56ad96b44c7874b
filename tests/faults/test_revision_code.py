"""Revision code that ends the process or alters the version table: the outcome is still proven (issue 7, point 1)."""

from __future__ import annotations

import pytest

from tests.fixtures.faults import wait_lock_free
from tests.fixtures.revisions import LOG_TABLE, applied_counts
from tests.integration.conftest import assert_clean_failure, assert_exit

from .conftest import revision_file

pytestmark = pytest.mark.faults

#: A logged revision's body (see tests/fixtures/revisions.py): its table, then its row in the log table.
LOGGED = (f'    op.execute("CREATE TABLE IF NOT EXISTS {LOG_TABLE} (revision VARCHAR(64) NOT NULL)")\n'
          '    op.create_table("t_{rev}", sa.Column("id", sa.Integer, primary_key=True))\n'
          f'    op.execute("INSERT INTO {LOG_TABLE} (revision) VALUES (\'{{rev}}\')")\n')

#: What a revision's upgrade() does after its work, to end the process one way or another.
ENDINGS = {
    "sys.exit(0)": "    import sys\n    sys.exit(0)\n",
    "sys.exit(3)": "    import sys\n    sys.exit(3)\n",
    "KeyboardInterrupt": "    raise KeyboardInterrupt\n",
    "GeneratorExit": "    raise GeneratorExit\n",
    "os._exit(0)": "    import os\n    os._exit(0)\n",
}


def _revision_that_ends_the_process_fails_and_a_fixed_rerun_applies_it_once(database, revisions, sidecar, ending):
    done = revisions.chain(1)
    bad = revisions.add(LOGGED + ending, message="ends the process")
    revisions.logged.append(bad)
    revisions.chain(1)
    path = revision_file(revisions, bad)
    env = {"DATABASE_URL": database.url}

    result = sidecar.run("upgrade", env=env, timeout=60)
    assert_clean_failure(result, 1, path.name)
    assert path.name in sidecar.termination_log.read_text(), "the termination log should name the revision file"
    assert database.revisions() == [done[-1]]
    assert f"t_{bad}" not in database.tables(), "the revision's transaction should be rolled back"
    wait_lock_free(database, 5)

    path.write_text(path.read_text().replace(ending, ""))  # the user fixes the revision
    again = sidecar.run("upgrade", env=env)
    assert_exit(again, 0)
    assert database.revisions() == [revisions.head]
    assert applied_counts(database) == {rev: 1 for rev in revisions.logged}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_revision_that_ends_the_process_is_a_migration_failure_on_postgresql(pg_database, revisions, sidecar,
                                                                             ending):
    _revision_that_ends_the_process_fails_and_a_fixed_rerun_applies_it_once(pg_database, revisions, sidecar,
                                                                            ENDINGS[ending])


@pytest.mark.parametrize("ending", ["sys.exit(0)", "os._exit(0)"])
def test_revision_that_ends_the_process_is_a_migration_failure_on_sqlite(sqlite_database, revisions, sidecar, ending):
    _revision_that_ends_the_process_fails_and_a_fixed_rerun_applies_it_once(sqlite_database, revisions, sidecar,
                                                                            ENDINGS[ending])


def test_revision_that_widens_the_version_table_then_another_one_exits_0(pg_database, revisions, sidecar):
    revisions.chain(1)
    env = {"DATABASE_URL": pg_database.url}
    # At a revision already, so the run reads the version table before the revision alters it.
    assert_exit(sidecar.run("upgrade", env=env), 0)
    revisions.add('    op.alter_column("alembic_version", "version_num", type_=sa.String(64), '
                  'existing_type=sa.String(32))\n', message="widen version_num")
    revisions.chain(1)
    result = sidecar.run("upgrade", env=env)
    assert_exit(result, 0)
    assert pg_database.revisions() == [revisions.head]
    assert applied_counts(pg_database) == {rev: 1 for rev in revisions.logged}
    assert pg_database.scalar(
        "SELECT character_maximum_length FROM information_schema.columns "
        "WHERE table_name = 'alembic_version' AND column_name = 'version_num'") == 64
    assert_exit(sidecar.run("upgrade", env=env), 0)
