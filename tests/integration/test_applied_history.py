"""The applied history (issue 16, item 2): recorded with each revision, adopted, and compared with the files."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from tests.fixtures.databases import PG_HOST, PG_PORT, free_port, register_secret

from .conftest import assert_clean_failure, assert_exit

pytestmark = pytest.mark.integration

HISTORY = "alembic_sidecar_history"


def _history(database, table: str = HISTORY) -> dict[str, tuple]:
    """revision -> (file_sha256, applied_at, adopted, duration_ms), or {} without the table."""
    if table not in database.tables():
        return {}
    return {row[0]: row[1:] for row in database.rows(
        f"SELECT revision, file_sha256, applied_at, adopted, duration_ms FROM {table}")}


def _file(revisions, rev):
    return next(revisions.dir.glob(f"{rev}_*.py"))


def _edit(revisions, rev, old: str, new: str) -> None:
    path = _file(revisions, rev)
    text = path.read_text()
    assert old in text, text
    path.write_text(text.replace(old, new, 1))


def test_upgrade_records_each_applied_revision_with_its_file_checksum(database, revisions, sidecar):
    ids = revisions.chain(3)
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url})
    assert_exit(result, 0)
    history = _history(database)
    assert sorted(history) == ids
    for rev in ids:
        sha, applied_at, adopted, duration_ms = history[rev]
        assert sha == hashlib.sha256(_file(revisions, rev).read_bytes()).hexdigest()
        assert applied_at is not None and not adopted and duration_ms >= 0
    # At the heads with every file as applied: the fast no-op answers (no login through SQLAlchemy).
    again = sidecar.run("upgrade", env={"DATABASE_URL": database.url})
    assert_exit(again, 0)
    assert not again.named("database_ready")


def test_an_edited_applied_revision_fails_check_warns_upgrade_and_stops_a_strict_one(database, revisions, sidecar):
    password = register_secret(secrets.token_hex(8))
    url = database.url
    if database.driver == "postgresql":  # trust login: the password is not needed, only carried
        url = f"postgresql://postgres:{password}@{PG_HOST}:{PG_PORT}/{database.name}"
    env = {"DATABASE_URL": url}
    ids = revisions.chain(2)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    _edit(revisions, ids[0], 'op.create_table("t_', 'op.create_table("t2_')
    check = sidecar.run("check", env=env)
    failed = assert_clean_failure(check, 12, ids[0])
    assert failed["kind"] == "applied history changed"
    finding = check.one("applied_history_changed")
    assert finding["rule"] == "applied-history-changed" and finding["revision"] == ids[0]
    assert finding["path"] == str(_file(revisions, ids[0]))
    # upgrade: a warning, and the new revision is applied.
    new = revisions.logged_revision()
    upgrade = sidecar.run("upgrade", env=env)
    assert_exit(upgrade, 0)
    assert upgrade.one("applied_history_changed")["level"] == "warning"
    assert database.revisions() == [new]
    # strict: exit 12 before anything is applied.
    newer = revisions.logged_revision()
    strict = sidecar.run("upgrade", env={**env, "MIGRATE_VERIFY_HISTORY": "strict"})
    assert_clean_failure(strict, 12, ids[0])
    assert database.revisions() == [new] and f"t_{newer}" not in database.tables()
    # off: neither read nor written.
    assert_exit(sidecar.run("check", env={**env, "MIGRATE_VERIFY_HISTORY": "off"}), 8)
    quiet = sidecar.run("upgrade", env={**env, "MIGRATE_VERIFY_HISTORY": "off"})
    assert_exit(quiet, 0)
    assert not quiet.named("applied_history_changed") and newer not in _history(database)


def test_whitespace_comment_and_docstring_edits_are_not_changes(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url}
    ids = revisions.chain(2)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    _edit(revisions, ids[0], "\ndef upgrade() -> None:\n", "\n\n# reviewed again\n\ndef upgrade() -> None:   \n")
    _edit(revisions, ids[0], f"revision {ids[0]}", "a better docstring")
    _edit(revisions, ids[1], "    op.create_table(", "    op.create_table(  # why: see the ticket\n        ")
    assert_exit(sidecar.run("check", env=env), 0)
    upgrade = sidecar.run("upgrade", env=env)
    assert_exit(upgrade, 0)
    assert not upgrade.named("applied_history_changed")
    # The bytes' checksum follows the file, so the fast no-op answers again.
    assert _history(database)[ids[0]][0] == hashlib.sha256(_file(revisions, ids[0]).read_bytes()).hexdigest()
    assert not sidecar.run("upgrade", env=env).named("database_ready")


def test_an_applied_revision_whose_file_is_gone_fails_check(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url}
    ids = revisions.chain(3)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    # "Squashed": the middle file deleted, the next one re-pointed past it.
    _file(revisions, ids[1]).unlink()
    # (A longer line: a same-sized edit within the second would let Python reuse the file's stale bytecode.)
    _edit(revisions, ids[2], f"down_revision = {ids[1]!r}", f"down_revision = {ids[0]!r}  # squashed")
    check = sidecar.run("check", env=env)
    assert_clean_failure(check, 12, ids[1], ids[2])
    rules = {event["revision"]: event["rule"] for event in check.named("applied_history_changed")}
    assert rules == {ids[1]: "applied-revision-missing", ids[2]: "applied-history-changed"}


def test_a_database_migrated_before_the_history_is_adopted_by_its_next_upgrade(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url}
    ids = revisions.chain(2)
    # As an older sidecar left it: revisions applied, no history table.
    assert_exit(sidecar.run("upgrade", env={**env, "MIGRATE_VERIFY_HISTORY": "off"}), 0)
    assert HISTORY not in database.tables()
    check = sidecar.run("check", env=env)
    assert_exit(check, 0)
    assert check.named("applied_history_unrecorded")
    # An upgrade with nothing to apply adopts it.
    assert_exit(sidecar.run("upgrade", env=env), 0)
    history = _history(database)
    assert sorted(history) == ids and all(row[2] and row[1] is None for row in history.values())
    # A later revision is recorded as applied beside the adopted ones.
    new = revisions.logged_revision()
    assert_exit(sidecar.run("upgrade", env=env), 0)
    history = _history(database)
    assert not history[new][2] and history[new][1] is not None


def test_a_partly_recorded_database_is_adopted_before_its_pending_revisions_run(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url}
    ids = revisions.chain(3)
    assert_exit(sidecar.run("upgrade", ids[0], env=env), 0)
    assert_exit(sidecar.run("upgrade", ids[1], env={**env, "MIGRATE_VERIFY_HISTORY": "off"}), 0)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    history = _history(database)
    assert [bool(history[rev][2]) for rev in ids] == [False, True, False]


def test_a_failed_revision_leaves_no_history_row(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url}
    good = revisions.logged_revision()
    bad = revisions.failing()
    assert_exit(sidecar.run("upgrade", env=env), 1)
    assert sorted(_history(database)) == [good]
    assert database.revisions() == [good]
    assert bad not in _history(database)


def test_downgrade_removes_the_reverted_revisions_rows(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url, "MIGRATE_ALLOW_DOWNGRADE": "true"}
    ids = revisions.chain(3)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert_exit(sidecar.run("downgrade", ids[0], env=env), 0)
    assert sorted(_history(database)) == [ids[0]]
    assert_exit(sidecar.run("check", env=env), 8)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert sorted(_history(database)) == ids


def test_two_concurrent_upgrades_record_each_revision_once(server_database, revisions, sidecar):
    env = {"DATABASE_URL": server_database.url}
    first = revisions.logged_revision()
    slow = revisions.slow(1.5)
    runs = [sidecar.start("upgrade", env=env) for _ in range(2)]
    for running in runs:
        assert_exit(running.wait(), 0)
    assert sorted(_history(server_database)) == [first, slow]
    assert server_database.scalar(f"SELECT count(*) FROM {HISTORY}") == 2


def test_two_concurrent_runs_adopt_an_unrecorded_database_once(server_database, revisions, sidecar):
    env = {"DATABASE_URL": server_database.url}
    ids = revisions.chain(3)
    assert_exit(sidecar.run("upgrade", env={**env, "MIGRATE_VERIFY_HISTORY": "off"}), 0)
    runs = [sidecar.start("upgrade", env=env) for _ in range(2)]
    results = [running.wait() for running in runs]
    for result in results:
        assert_exit(result, 0)
    assert sum(len(result.named("applied_history_adopted")) for result in results) >= 1
    assert server_database.scalar(f"SELECT count(*) FROM {HISTORY}") == 3
    assert sorted(_history(server_database)) == ids


def test_a_custom_history_table_in_a_postgresql_schema(pg_database, revisions, sidecar):
    pg_database.execute("CREATE SCHEMA ledger")
    env = {"DATABASE_URL": pg_database.url, "MIGRATE_VERSION_TABLE_SCHEMA": "ledger",
           "MIGRATE_HISTORY_TABLE": "applied_revisions"}
    ids = revisions.chain(2)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert sorted(r[0] for r in pg_database.rows("SELECT revision FROM ledger.applied_revisions")) == ids
    assert HISTORY not in pg_database.tables()
    _edit(revisions, ids[1], 'op.create_table("t_', 'op.create_table("t3_')
    assert_clean_failure(sidecar.run("check", env=env), 12, ids[1])


def test_a_custom_history_table_name(database, revisions, sidecar):
    env = {"DATABASE_URL": database.url, "MIGRATE_HISTORY_TABLE": "our_ledger"}
    ids = revisions.chain(1)
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert sorted(_history(database, "our_ledger")) == ids and HISTORY not in database.tables()


def test_history_shows_when_each_revision_was_applied_with_a_database_and_works_without(database, revisions,
                                                                                        sidecar):
    ids = revisions.chain(3)
    env = {"DATABASE_URL": database.url}
    assert_exit(sidecar.run("upgrade", ids[0], env={**env, "MIGRATE_VERIFY_HISTORY": "off"}), 0)
    assert_exit(sidecar.run("upgrade", ids[1], env=env), 0)
    shown = sidecar.run("history", env=env)
    assert_exit(shown, 0)
    lines = {rev: next(line for line in shown.stdout.splitlines() if rev in line) for rev in ids}
    assert "adopted" in lines[ids[0]]
    assert "applied 20" in lines[ids[1]] and "UTC" in lines[ids[1]]
    assert "pending" in lines[ids[2]]
    offline = sidecar.run("history", env={})
    assert_exit(offline, 0)
    assert all(rev in offline.stdout for rev in ids) and "pending" not in offline.stdout


def test_drift_leaves_the_history_table_out(pg_database, revisions, sidecar, tmp_path):
    models = tmp_path / "models_for_history.py"
    models.write_text("import sqlalchemy as sa\nmetadata = sa.MetaData()\n"
                      "sa.Table('t_r0001', metadata, sa.Column('id', sa.Integer, primary_key=True))\n")
    revisions.add('    op.create_table("t_r0001", sa.Column("id", sa.Integer, primary_key=True))\n')
    env = {"DATABASE_URL": pg_database.url, "MIGRATE_METADATA": "models_for_history:metadata",
           "MIGRATE_PYTHONPATH": str(tmp_path)}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert HISTORY in pg_database.tables()
    assert_exit(sidecar.run("drift", env=env), 0)


@pytest.mark.parametrize("template", [None, "async"], ids=["sync env.py", "async env.py"])
def test_your_own_env_py_records_and_verifies_the_history_too(server_database, tmp_path, sidecar, template):
    from tests.fixtures.revisions import Revisions

    from .conftest import init_alembic_project

    ini = init_alembic_project(tmp_path / "project", template)
    own = Revisions(ini.parent / "migrations" / "versions")
    ids = own.chain(2)
    env = {"ALEMBIC_CONFIG": str(ini), "DATABASE_URL": server_database.url, "MIGRATE_VERSIONS_DIR": None}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    history = _history(server_database)
    assert sorted(history) == ids and not any(row[2] for row in history.values())
    _edit(own, ids[1], 'op.create_table("t_', 'op.create_table("t9_')
    assert_clean_failure(sidecar.run("check", env=env), 12, ids[1])


def test_history_of_a_sqlite_file_not_created_yet_shows_every_revision_pending_and_creates_nothing(revisions,
                                                                                                     sidecar,
                                                                                                     tmp_path):
    ids = revisions.chain(2)
    path = tmp_path / "not-yet.db"
    shown = sidecar.run("history", env={"DATABASE_URL": f"sqlite:///{path}"})
    assert_exit(shown, 0)
    assert [line.endswith("[pending]") for line in shown.stdout.splitlines()] == [True] * len(ids)
    assert not path.exists()


def test_history_with_an_unreachable_database_exits_3_without_a_traceback(revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run("history", env={"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
                                         "MIGRATE_WAIT_TIMEOUT": "1"})
    assert_clean_failure(result, 3)
