"""`test`: each revision's downgrade undoes its upgrade and its upgrade runs again (issue 16, item 4)."""

from __future__ import annotations

import pytest

from .conftest import assert_clean_failure, assert_exit

pytestmark = pytest.mark.integration

USERS_UP = ('    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),\n'
            '                    sa.Column("name", sa.String(50), nullable=False))\n'
            '    op.create_table("flags", sa.Column("id", sa.Integer, primary_key=True))\n')
USERS_DOWN = '    op.drop_table("flags")\n    op.drop_table("users")\n'
EMAIL_UP = ('    op.add_column("users", sa.Column("email", sa.String(100), nullable=True))\n'
            '    op.create_index("ix_users_email", "users", ["email"])\n')
EMAIL_DOWN = '    op.drop_index("ix_users_email", table_name="users")\n    op.drop_column("users", "email")\n'
ITEMS_UP = ('    op.create_table("items", sa.Column("id", sa.Integer, primary_key=True),\n'
            '                    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", name="fk_items_users"),\n'
            '                              nullable=False))\n')
ITEMS_DOWN = '    op.drop_table("items")\n'


def allowed(database, **more: str) -> dict[str, str]:
    return {"DATABASE_URL": database.url, "MIGRATE_ALLOW_DOWNGRADE": "true", **more}


def history(revisions, email_down: str = EMAIL_DOWN) -> list[str]:
    return [revisions.add(USERS_UP, USERS_DOWN), revisions.add(EMAIL_UP, email_down),
            revisions.add(ITEMS_UP, ITEMS_DOWN)]


def test_a_good_history_passes_with_one_event_per_revision_and_ends_at_the_heads(database, revisions, sidecar):
    ids = history(revisions)
    result = sidecar.run("test", env=allowed(database))
    assert_exit(result, 0)
    events = result.named("round_trip")
    assert [event["revision"] for event in events] == ids
    for event in events:
        assert event["ok"] is True and event["level"] == "info"
        assert {"upgrade_ms", "downgrade_ms", "upgrade_again_ms"} <= set(event), event
    assert result.one("round_trips")["revisions"] == 3
    assert database.revisions() == [ids[-1]]
    assert {"users", "flags", "items"} <= set(database.tables())
    assert "3 revisions passed the round trip" in sidecar.termination_log.read_text()


def test_a_database_above_base_has_only_the_revisions_above_it_tested(database, revisions, sidecar):
    ids = history(revisions)
    assert_exit(sidecar.run("upgrade", ids[0], env={"DATABASE_URL": database.url}), 0)
    result = sidecar.run("test", env=allowed(database))
    assert_exit(result, 0)
    assert [event["revision"] for event in result.named("round_trip")] == ids[1:]
    assert database.revisions() == [ids[-1]]


def test_a_downgrade_that_forgets_a_column_fails_naming_the_revision_phase_and_difference(database, revisions,
                                                                                         sidecar):
    ids = history(revisions, email_down='    op.drop_index("ix_users_email", table_name="users")\n')
    result = sidecar.run("test", env=allowed(database))
    failed = assert_clean_failure(result, 1, f"revision {ids[1]} failed its round trip at downgrade",
                                  "users.email", f"the database is at {ids[0]}")
    assert failed["kind"] == "migration failed"
    first, second = result.named("round_trip")
    assert first["revision"] == ids[0] and first["ok"] is True
    assert second["revision"] == ids[1] and second["ok"] is False and second["phase"] == "downgrade"
    assert second["differences"] == ["remove_column users.email"]
    assert database.revisions() == [ids[0]], "the run stops where the failure is"
    assert "items" not in database.tables()


def test_a_downgrade_that_raises_fails_naming_the_revision_and_the_phase(database, revisions, sidecar):
    ids = history(revisions, email_down='    raise RuntimeError("downgrade of {rev} fails on purpose")\n')
    result = sidecar.run("test", env=allowed(database))
    assert_clean_failure(result, 1, f"revision {ids[1]} failed its round trip at downgrade",
                         f"downgrade of {ids[1]} fails on purpose", f"the database is at {ids[1]}")
    failing = result.named("round_trip")[-1]
    assert failing["revision"] == ids[1] and failing["ok"] is False and failing["phase"] == "downgrade"
    assert database.revisions() == [ids[1]]


def test_an_upgrade_that_differs_after_its_downgrade_fails_at_upgrade_again(database, revisions, sidecar):
    # Its first upgrade adds users.first and records a row; the second, seeing the row, adds users.second.
    revisions.add(USERS_UP, USERS_DOWN)
    rev = revisions.add(
        '    bind = op.get_bind()\n'
        '    if bind.execute(sa.text("SELECT COUNT(*) FROM flags")).scalar():\n'
        '        op.add_column("users", sa.Column("second", sa.Integer))\n'
        '    else:\n'
        '        op.add_column("users", sa.Column("first", sa.Integer))\n'
        '        op.execute("INSERT INTO flags (id) VALUES (1)")\n',
        '    columns = [c["name"] for c in sa.inspect(op.get_bind()).get_columns("users")]\n'
        '    op.drop_column("users", "second" if "second" in columns else "first")\n')
    result = sidecar.run("test", env=allowed(database))
    assert_clean_failure(result, 1, f"revision {rev} failed its round trip at upgrade again", "users.second",
                         "users.first")
    assert result.named("round_trip")[-1]["phase"] == "upgrade again"
    assert database.revisions() == [rev]


def test_without_allow_downgrade_it_is_refused_with_exit_2_and_writes_nothing(database, revisions, sidecar):
    history(revisions)
    result = sidecar.run("test", env={"DATABASE_URL": database.url})
    assert_clean_failure(result, 2, "MIGRATE_ALLOW_DOWNGRADE=true")
    assert database.tables() == []


def test_two_heads_each_pass_and_the_database_ends_at_both(database, revisions, sidecar):
    ids = history(revisions)
    other = revisions.add('    op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True))\n',
                          '    op.drop_table("tags")\n', down=ids[0])
    result = sidecar.run("test", env=allowed(database))
    assert_exit(result, 0)
    assert sorted(event["revision"] for event in result.named("round_trip")) == sorted([*ids, other])
    assert database.revisions() == sorted([ids[-1], other])


def test_with_alembic_config_it_is_refused_with_exit_2(sqlite_database, revisions, sidecar, tmp_path):
    history(revisions)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = migrations\n")
    result = sidecar.run("test", env=allowed(sqlite_database, ALEMBIC_CONFIG=str(tmp_path / "alembic.ini")))
    assert_clean_failure(result, 2, "ALEMBIC_CONFIG", "bundled env.py")
    assert not sqlite_database.path.exists()


def test_help_says_what_it_tests_and_what_it_needs(sidecar):
    result = sidecar.run("test", "--help", env={})
    assert_exit(result, 0)
    text = " ".join(result.stdout.split())
    assert "downgrade it and upgrade it again" in text and "MIGRATE_ALLOW_DOWNGRADE=true" in text
    assert "empty to test every revision" in text
