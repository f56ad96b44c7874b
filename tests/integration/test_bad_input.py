"""Every bad input: its exit code, one clear line, no traceback, nothing written (issue 2, point 10)."""

from __future__ import annotations

import pytest

from .conftest import assert_clean_failure, assert_exit

pytestmark = pytest.mark.integration


@pytest.fixture
def db(pg_database, revisions):
    revisions.chain(2)
    yield pg_database
    assert pg_database.tables() == [], "bad input must not write to the database"


@pytest.mark.parametrize("url, words", [
    ("this is not a url", ["DATABASE_URL"]),
    ("postgresql://user:bad-input-secret@127.0.0.1:notaport/db", ["DATABASE_URL"]),
    ("://missing-scheme", ["DATABASE_URL"]),
])
def test_unparseable_url_is_exit_2(db, sidecar, url, words):
    result = sidecar.run(env={"DATABASE_URL": url})
    assert_clean_failure(result, 2, *words)
    assert "bad-input-secret" not in result.output


@pytest.mark.parametrize("env", [
    {"DATABASE_URL": "oracle://scott:tiger-secret@127.0.0.1/db"},
    {"DATABASE_URL": "mssql+pyodbc://u@127.0.0.1/db"},
    {"DB_DRIVER": "oracle", "DB_HOST": "127.0.0.1", "DB_NAME": "db"},
])
def test_unknown_driver_is_exit_2(db, sidecar, env):
    result = sidecar.run(env=env)
    assert_clean_failure(result, 2)
    assert "tiger-secret" not in result.output
    error = result.failure["error"].lower()
    assert "postgresql" in error, "the message should say which kinds are supported"


def test_missing_versions_directory_is_exit_2(db, sidecar, tmp_path):
    missing = tmp_path / "no" / "versions"
    result = sidecar.run(env={"DATABASE_URL": db.url, "MIGRATE_VERSIONS_DIR": str(missing)})
    assert_clean_failure(result, 2, str(missing))


def test_empty_versions_directory_is_exit_2(db, sidecar, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("no revisions here\n")
    result = sidecar.run(env={"DATABASE_URL": db.url, "MIGRATE_VERSIONS_DIR": str(empty)})
    assert_clean_failure(result, 2, str(empty))


def test_versions_directory_that_is_a_file_is_exit_2(db, sidecar, tmp_path):
    path = tmp_path / "file.py"
    path.write_text("")
    result = sidecar.run(env={"DATABASE_URL": db.url, "MIGRATE_VERSIONS_DIR": str(path)})
    failed = assert_clean_failure(result, 2, str(path), "not a directory")
    assert "does not exist" not in failed["error"]


@pytest.mark.parametrize("command", ["upgrade", "check", "heads", "history", "sql", "lint"])
def test_revision_with_a_syntax_error_is_exit_7_naming_the_file(db, revisions, sidecar, command):
    bad = revisions.syntax_error()
    result = sidecar.run(command, env={"DATABASE_URL": db.url})
    failed = assert_clean_failure(result, 7, bad.name)
    assert "syntax" in failed["error"].lower()


@pytest.mark.parametrize("command", ["upgrade", "check", "heads", "lint"])
def test_revision_with_an_import_error_is_exit_7_naming_the_file(db, revisions, sidecar, command):
    bad = revisions.import_error()
    result = sidecar.run(command, env={"DATABASE_URL": db.url})
    assert_clean_failure(result, 7, bad.name, "no_such_module_for_sidecar_tests")


def test_unknown_target_is_exit_7(db, sidecar):
    result = sidecar.run("upgrade", "deadbeef", env={"DATABASE_URL": db.url})
    assert_clean_failure(result, 7, "deadbeef")


def test_unknown_target_from_the_environment_is_exit_7(db, sidecar):
    result = sidecar.run(env={"DATABASE_URL": db.url, "MIGRATE_TARGET": "deadbeef"})
    assert_clean_failure(result, 7, "deadbeef")


@pytest.mark.parametrize("name", ["DATABASE_URL", "DB_PASSWORD"])
def test_missing_file_is_exit_2(db, sidecar, tmp_path, name):
    path = tmp_path / "secrets" / "missing"
    env = {name + "_FILE": str(path)}
    if name != "DATABASE_URL":
        env.update(DB_DRIVER="postgresql", DB_HOST="127.0.0.1", DB_USER="postgres", DB_NAME=db.name)
    result = sidecar.run(env=env)
    assert_clean_failure(result, 2, name + "_FILE", str(path))


def test_file_that_is_a_directory_is_exit_2(db, sidecar, tmp_path):
    result = sidecar.run(env={"DATABASE_URL_FILE": str(tmp_path)})
    assert_clean_failure(result, 2, "DATABASE_URL_FILE")


@pytest.mark.parametrize("name, value", [
    ("MIGRATE_WAIT_TIMEOUT", "abc"),
    ("MIGRATE_LOCK_TIMEOUT", "ten"),
    ("MIGRATE_STATEMENT_TIMEOUT", "-1"),
    ("MIGRATE_DDL_LOCK_TIMEOUT", "1e999"),
    ("DB_PORT", "54x2"),
    ("MIGRATE_ALLOW_DOWNGRADE", "maybe"),
    ("MIGRATE_ON_UNKNOWN_REVISION", "skip"),
    ("MIGRATE_LOG_FORMAT", "xml"),
])
def test_bad_setting_values_are_exit_2_naming_the_variable(db, sidecar, name, value):
    result = sidecar.run(env={"DATABASE_URL": db.url, name: value})
    assert_clean_failure(result, 2, name)


def test_bad_flag_value_is_exit_2(db, sidecar):
    result = sidecar.run("upgrade", "--wait-timeout", "soon", env={"DATABASE_URL": db.url})
    assert_clean_failure(result, 2, "soon")


def test_unknown_command_and_flag_are_exit_2(db, sidecar):
    assert_clean_failure(sidecar.run("migrate", env={"DATABASE_URL": db.url}), 2)
    assert_clean_failure(sidecar.run("upgrade", "--no-such-flag", env={"DATABASE_URL": db.url}), 2)


def test_db_parts_without_host_are_exit_2(db, sidecar):
    result = sidecar.run(env={"DB_DRIVER": "postgresql", "DB_NAME": db.name})
    assert_clean_failure(result, 2, "DB_HOST")


def test_sql_with_a_bad_range_is_exit_7(db, revisions, sidecar):
    result = sidecar.run("sql", "nope:deadbeef", env={"DATABASE_URL": db.url})
    assert result.returncode in (2, 7), result
    assert "Traceback" not in result.output


def test_missing_db_host_is_a_configuration_error_even_when_a_local_server_is_at_head(pg_database, revisions,
                                                                                      sidecar):
    # The fast no-op must not let the driver guess a local server where the full path demands DB_HOST.
    revisions.chain(1)
    parts = {"DB_DRIVER": "postgresql", "DB_HOST": "127.0.0.1", "DB_USER": "postgres", "DB_NAME": pg_database.name}
    assert_exit(sidecar.run(env=parts), 0)
    result = sidecar.run(env={**parts, "DB_HOST": None})
    assert_clean_failure(result, 2, "DB_HOST")
