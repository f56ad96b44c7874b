"""DB_* settings beside a URL: DB_USER / DB_PASSWORD fill in what the URL leaves out, the rest is refused (issue 14,
item 3), on servers that check passwords; and a URL's port is checked before any login (item 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.databases import register_secret

from .conftest import assert_clean_failure, assert_exit, init_alembic_project

pytestmark = pytest.mark.integration


def secret_file(tmp_path: Path, value: str) -> str:
    path = tmp_path / "secrets" / "db-password"
    path.parent.mkdir(exist_ok=True)
    path.write_text(value + "\n", encoding="utf-8")  # as a secret volume or `echo` writes it
    return str(path)


def at_head(db, revisions, result) -> None:
    assert_exit(result, 0)
    assert db.revisions() == [revisions.head], result


@pytest.mark.parametrize("server_fixture", ["pg_password_server", "mariadb_password_server"])
def test_a_url_without_its_password_and_db_password_file_migrate_and_the_next_run_is_the_fast_no_op(
        request, revisions, sidecar, tmp_path, server_fixture):
    """The README's TLS example: the password is a mounted file, the URL has none (before: exit 5, 'using password:
    NO'); the fast no-op of the next run logs in the same way."""
    revisions.chain(2)
    server = request.getfixturevalue(server_fixture)
    with server.database() as db:
        env = {"DATABASE_URL": server.url(db.name, server.user, None),
               "DB_PASSWORD_FILE": secret_file(tmp_path, server.password), "MIGRATE_WAIT_TIMEOUT": "5"}
        at_head(db, revisions, sidecar.run(env=env))
        again = sidecar.run(env=env)
        assert_exit(again, 0)
        assert "database_ready" not in {event.get("event") for event in again.events}, "the fast path should answer"


def test_db_user_and_db_password_fill_in_a_url_without_credentials(pg_password_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_password_server
    with server.database() as db:
        result = sidecar.run(env={"DATABASE_URL": f"postgresql://{server.host}:{server.port}/{db.name}",
                                  "DB_USER": server.user, "DB_PASSWORD": server.password, "MIGRATE_WAIT_TIMEOUT": "5"})
        at_head(db, revisions, result)


def test_db_password_file_fills_in_the_ini_url_of_a_users_own_project(pg_password_server, revisions, sidecar,
                                                                      tmp_path):
    """ALEMBIC_CONFIG: the ini keeps the URL without its password, the secret comes from a file."""
    from tests.fixtures.revisions import Revisions

    ini = init_alembic_project(tmp_path / "project", "async")
    own = Revisions(ini.parent / "migrations" / "versions")
    own.chain(2)
    server = pg_password_server
    with server.database() as db:
        url = server.url(db.name, server.user, None).replace("%", "%%")
        ini.write_text("\n".join(f"sqlalchemy.url = {url}" if line.startswith("sqlalchemy.url") else line
                                 for line in ini.read_text().splitlines()) + "\n")
        result = sidecar.run(env={"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None,
                                  "DB_PASSWORD_FILE": secret_file(tmp_path, server.password),
                                  "MIGRATE_WAIT_TIMEOUT": "5"})
        at_head(db, own, result)


@pytest.mark.parametrize("name, value", [("DB_PASSWORD", register_secret("db-password-beside-url")),
                                         ("DB_USER", "postgres"), ("DB_HOST", "127.0.0.1"), ("DB_PORT", "5432"),
                                         ("DB_NAME", "app"), ("DB_DRIVER", "postgresql")])
def test_a_db_setting_the_url_already_makes_is_exit_2_naming_it(pg_database, revisions, sidecar, name, value):
    revisions.chain(1)
    url = pg_database.url.replace("postgres@", "postgres:" + register_secret("url-password-beside-db") + "@")
    result = sidecar.run(env={"DATABASE_URL": url, name: value})
    assert_clean_failure(result, 2, name)
    assert pg_database.tables() == [], "a refused setting must not write to the database"


@pytest.mark.parametrize("form", ["postgresql", "mysql"])
def test_port_0_in_a_url_is_exit_2_not_the_default_port(pg_database, mariadb_database, revisions, sidecar, form):
    """Before, port 0 read as "no port" and the run migrated the server on the default port."""
    revisions.chain(1)
    db = pg_database if form == "postgresql" else mariadb_database
    host = "127.0.0.1:5432" if form == "postgresql" else "127.0.0.1:3306"
    result = sidecar.run(env={"DATABASE_URL": db.url.replace(host, "127.0.0.1:0")})
    assert_clean_failure(result, 2, "DATABASE_URL", "port 0", "1 to 65535")
    assert db.tables() == []
