"""`docker run` of the image upgrades real databases, locked down as a restricted pod runs it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .support import ON_EACH_PYTHON, assert_exit

pytestmark = [pytest.mark.container, ON_EACH_PYTHON]

EXAMPLES = Path(__file__).resolve().parents[2] / "image" / "examples" / "versions"
EXAMPLE_TABLES = ["accounts", "alembic_sidecar_history", "alembic_version", "orders"]


@pytest.fixture
def example_revisions(revisions):
    for path in EXAMPLES.glob("*.py"):
        shutil.copy(path, revisions.dir)
    return revisions


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_upgrade_brings_a_server_database_to_head_then_rerun_is_a_no_op(request, fixture, example_revisions,
                                                                          container_sidecar):
    db = request.getfixturevalue(fixture)
    first = container_sidecar.run(env={"DATABASE_URL": db.url})
    assert_exit(first, 0)
    assert db.tables() == EXAMPLE_TABLES
    assert db.revisions() == ["0003"]
    complete = first.event("migration_complete")
    assert (complete["from_revision"], complete["to_revision"], complete["applied"]) == ("base", "0003", 3)
    assert [e["revision"] for e in first.events if e["event"] == "revision_applied"] == ["0001", "0002", "0003"]

    again = container_sidecar.run(env={"DATABASE_URL": db.url})
    assert_exit(again, 0)
    assert again.event("migration_complete")["applied"] == 0
    assert db.revisions() == ["0003"]


def test_upgrade_of_a_sqlite_file_on_a_mounted_volume(example_revisions, container_sidecar, shared_dir):
    result = container_sidecar.run(env={"DATABASE_URL": "sqlite:////data/app.db"},
                                   volumes={str(shared_dir): "/data"})
    assert_exit(result, 0)
    db_file = shared_dir / "app.db"
    assert db_file.exists() and db_file.stat().st_uid == 12345
    import sqlite3

    with sqlite3.connect(db_file) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0003",)]
        tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    assert tables == EXAMPLE_TABLES


def test_image_defaults_without_read_only_or_user_override_also_work(pg_database, example_revisions,
                                                                     container_sidecar):
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url}, user=None, read_only=False)
    assert_exit(result, 0)
    assert pg_database.revisions() == ["0003"]


def test_db_variables_instead_of_a_url(mariadb_database, example_revisions, container_sidecar):
    env = {"DB_DRIVER": "mariadb", "DB_HOST": "127.0.0.1", "DB_PORT": "3306", "DB_USER": "root",
           "DB_NAME": mariadb_database.name}
    result = container_sidecar.run(env=env)
    assert_exit(result, 0)
    assert mariadb_database.revisions() == ["0003"]


def test_summary_lands_in_a_mounted_termination_log(pg_database, example_revisions, container_sidecar, shared_dir):
    log = shared_dir / "termination-log"
    log.write_text("")
    log.chmod(0o666)
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url},
                                   volumes={str(log): "/dev/termination-log"})
    assert_exit(result, 0)
    summary = log.read_text()
    assert "0003" in summary and "\n" not in summary.strip(), summary


def test_logs_are_json_lines_on_stdout(pg_database, example_revisions, container_sidecar):
    result = container_sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_exit(result, 0)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines and all(line.startswith("{") for line in lines), result.stdout
    assert {"timestamp", "level", "event"} <= set(result.events[0])
    assert result.events[-1]["event"] == "migration_complete"
