"""Logs, the termination log, and secrets that never reach any output (issue 2, point 8)."""

from __future__ import annotations

import json

import pytest

from tests.fixtures.databases import free_port, register_secret

from .conftest import assert_clean_failure, assert_exit, init_alembic_project

pytestmark = pytest.mark.integration

MARKER = register_secret("Sekr3t-marker-@:/%#?-é")
MARKER_URL = "Sekr3t-marker-%40%3A%2F%25%23%3F-%C3%A9"


def test_json_logs_are_one_object_per_line_with_iso_utc_timestamps(pg_database, revisions, sidecar):
    revisions.chain(2)
    result = sidecar.run(env={"DATABASE_URL": pg_database.url, "MIGRATE_LOG_FORMAT": "json"})
    assert_exit(result, 0)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines
    for line in lines:
        event = json.loads(line)
        assert {"timestamp", "level", "event"} <= set(event), event
        assert event["timestamp"].endswith(("Z", "+00:00")), event
    assert result.named("database_ready") and result.named("lock_acquired")


def test_logged_url_has_its_password_masked(pg_password_server, revisions, sidecar):
    revisions.chain(1)
    with pg_password_server.database() as db:
        result = sidecar.run(env={"DATABASE_URL": db.url, "MIGRATE_LOG_LEVEL": "debug"})
        assert_exit(result, 0)
    text = result.output
    assert f":{pg_password_server.port}/" in text, "the target should be logged (masked)"
    assert "***" in text


def test_console_format_is_not_json(sqlite_database, revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": sqlite_database.url, "MIGRATE_LOG_FORMAT": "console"})
    assert_exit(result, 0)
    assert "migration_complete" in result.stdout
    assert not result.events


def test_log_level_warning_hides_info_events(sqlite_database, revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": sqlite_database.url, "MIGRATE_LOG_LEVEL": "warning"})
    assert_exit(result, 0)
    assert not [e for e in result.events if e["level"] == "info"]


def test_termination_log_gets_the_one_line_summary(pg_database, revisions, sidecar):
    revisions.chain(2)
    result = sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_exit(result, 0)
    text = sidecar.termination_log.read_text()
    assert text.strip() and len(text.strip().splitlines()) == 1, text
    assert revisions.head in text


def test_termination_log_on_failure_names_the_error(pg_database, revisions, sidecar):
    revisions.chain(1)
    bad = revisions.failing()
    result = sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_exit(result, 1)
    text = sidecar.termination_log.read_text()
    assert len(text.strip().splitlines()) == 1 and bad in text, text


def test_unwritable_termination_log_is_ignored(sqlite_database, revisions, sidecar, tmp_path):
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": sqlite_database.url,
                              "MIGRATE_TERMINATION_LOG": str(tmp_path / "no" / "such" / "dir" / "log")})
    assert_exit(result, 0)
    assert "Traceback" not in result.output


# --- Python warnings -----------------------------------------------------------------------------------------------

def _assert_only_json_lines(result) -> None:
    for stream, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        for line in text.splitlines():
            if line.strip():
                try:
                    json.loads(line)
                except ValueError:
                    pytest.fail(f"a {stream} line is not JSON: {line!r}\n{result}")


def _warning_events(result) -> list[str]:
    events = result.named("python_warning")
    assert all(event["level"] == "warning" and event["category"] for event in events), events
    return [event["warning"] for event in events]


@pytest.mark.parametrize("fixture", ["sqlite_database", "pg_database"])
@pytest.mark.parametrize("mode", ["bundled", "alembic_config"])
def test_python_warnings_are_json_log_lines(request, tmp_path, revisions, sidecar, fixture, mode):
    """Alembic's UserWarning (`downgrade -1` from several heads) and a revision's own warning are log events, not
    raw lines on stderr; with ALEMBIC_CONFIG they fire in the thread that runs the user's env.py."""
    from tests.fixtures.revisions import Revisions

    database = request.getfixturevalue(fixture)
    env = {"DATABASE_URL": database.url, "MIGRATE_ALLOW_DOWNGRADE": "true", "MIGRATE_LOG_FORMAT": "json"}
    own = revisions
    if mode == "alembic_config":
        ini = init_alembic_project(tmp_path / "project", "async")
        own = Revisions(ini.parent / "migrations" / "versions")
        env.update(ALEMBIC_CONFIG=str(ini), MIGRATE_VERSIONS_DIR=None)
        # This env.py leaves logging to the sidecar (the generated one hands it to alembic.ini's own format).
        env_py = ini.parent / "migrations" / "env.py"
        text = env_py.read_text()
        assert "    fileConfig(config.config_file_name)" in text
        env_py.write_text(text.replace("    fileConfig(config.config_file_name)", "    pass"))
    own.chain(2)
    own.add('    import warnings\n    warnings.warn("revision {rev} warns on purpose")\n', message="warns")
    own.branch()
    upgraded = sidecar.run("upgrade", "heads", env=env)
    assert_exit(upgraded, 0)
    _assert_only_json_lines(upgraded)
    assert any("warns on purpose" in text for text in _warning_events(upgraded)), upgraded
    downgraded = sidecar.run("downgrade", "-1", env=env)
    assert_exit(downgraded, 0)
    _assert_only_json_lines(downgraded)
    assert any("multiple heads" in text for text in _warning_events(downgraded)), downgraded


def test_the_fast_no_op_imports_no_structlog_for_warnings(sqlite_database, revisions, sidecar):
    """The hook that logs Python warnings imports structlog only when a warning fires."""
    revisions.chain(1)
    env = {"DATABASE_URL": sqlite_database.url}
    assert_exit(sidecar.run(env=env), 0)
    result = sidecar.run(env={**env, "PYTHONPROFILEIMPORTTIME": "1"})
    assert_exit(result, 0)
    assert result.one("migration_complete")["applied"] == 0
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "import time:" in line]
    assert "alembic_sidecar.logs" in imported, result
    assert not [name for name in imported if name.split(".")[0] in ("structlog", "alembic", "sqlalchemy")]


# --- no secret in any output --------------------------------------------------------------------------------------

def _runs_with_the_marker(sidecar, tmp_path, pg_database):
    port = free_port()
    secret_file = tmp_path / "password"
    secret_file.write_text(MARKER + "\n")
    refused = f"postgresql://postgres:{MARKER_URL}@127.0.0.1:{port}/db"
    parts = {"DB_DRIVER": "postgresql", "DB_HOST": "127.0.0.1", "DB_USER": "postgres", "DB_NAME": pg_database.name}
    yield "refused", sidecar.run(env={"DATABASE_URL": refused, "MIGRATE_WAIT_TIMEOUT": "1"},
                                 check_secrets=False), 3
    yield "bad port", sidecar.run(env={"DATABASE_URL": f"postgresql://u:{MARKER_URL}@127.0.0.1:x/db"},
                                  check_secrets=False), 2
    yield "unknown driver", sidecar.run(env={"DATABASE_URL": f"oracle://u:{MARKER_URL}@h/db"},
                                        check_secrets=False), 2
    yield "dns", sidecar.run(env={"DATABASE_URL": f"mysql://u:{MARKER_URL}@nohost.sidecar-test.invalid/db",
                                  "MIGRATE_WAIT_TIMEOUT": "1"}, check_secrets=False), 3
    yield "file", sidecar.run(env={**parts, "DB_PASSWORD_FILE": str(secret_file), "MIGRATE_LOG_LEVEL": "debug"},
                              check_secrets=False), 1
    yield "debug", sidecar.run(env={**parts, "DB_PASSWORD": MARKER, "MIGRATE_LOG_LEVEL": "debug"},
                               check_secrets=False), 1
    yield "both", sidecar.run(env={**parts, "DB_PASSWORD": MARKER, "DB_PASSWORD_FILE": str(secret_file)},
                              check_secrets=False), 2
    yield "sql", sidecar.run("sql", env={"DATABASE_URL": refused}, check_secrets=False), 0
    yield "lint", sidecar.run("lint", env={"DATABASE_URL": refused}, check_secrets=False), 0
    yield "failing", sidecar.run(env={"DATABASE_URL": f"postgresql://postgres:{MARKER_URL}@127.0.0.1/"
                                                      f"{pg_database.name}", "MIGRATE_LOG_LEVEL": "debug"},
                                 check_secrets=False), 1
    yield "help", sidecar.run("upgrade", "--help", env={"DB_PASSWORD": MARKER}, check_secrets=False), 0
    yield "flag", sidecar.run("upgrade", "--database-url", refused, "--wait-timeout", "1", env={},
                              check_secrets=False), 3


def test_no_secret_in_any_output_success_or_failure(pg_database, revisions, sidecar, tmp_path):
    """Logins with the marker password (file, env, URL, flag) reach a failing revision: exit 1 after r0001."""
    revisions.chain(1)
    revisions.failing()
    problems = []
    for name, result, code in _runs_with_the_marker(sidecar, tmp_path, pg_database):
        if result.returncode != code:
            problems.append(f"{name}: expected exit {code}\n{result}")
        for secret in (MARKER, MARKER_URL, "Sekr3t-marker"):
            if secret in result.output:
                problems.append(f"{name}: secret in output")
        if sidecar.termination_log.exists() and "Sekr3t" in sidecar.termination_log.read_text():
            problems.append(f"{name}: secret in the termination log")
        if "Traceback" in result.output:
            problems.append(f"{name}: traceback\n{result}")
    assert not problems, "\n".join(problems)


def test_failure_summary_is_one_error_line_even_on_a_migration_failure(pg_database, revisions, sidecar):
    revisions.chain(1)
    bad = revisions.failing("python")
    result = sidecar.run(env={"DATABASE_URL": pg_database.url})
    assert_clean_failure(result, 1, bad, "fails on purpose")
    assert len([e for e in result.events if e["level"] == "error"]) == 1
