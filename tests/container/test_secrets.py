"""Credentials from mounted secret files (*_FILE): they reach the database and never `docker logs` or the config."""

from __future__ import annotations

import pytest

from tests.fixtures.databases import assert_no_secrets, register_secret
from tests.fixtures.docker import docker

from .support import ON_EACH_PYTHON, assert_exit, assert_failed, secret_file

pytestmark = [pytest.mark.container, ON_EACH_PYTHON]

SECRETS_DIR = "/run/secrets"


def test_password_file_logs_in_with_url_hostile_credentials(pg_password_server, revisions, container_sidecar,
                                                            tmp_path):
    revisions.chain(2)
    server = pg_password_server
    password = secret_file(tmp_path / "db-password", server.password)
    with server.database() as db:
        env = {"DB_DRIVER": "postgresql", "DB_HOST": server.host, "DB_PORT": str(server.port),
               "DB_USER": server.user, "DB_NAME": db.name, "DB_PASSWORD_FILE": f"{SECRETS_DIR}/db-password"}
        name = container_sidecar.start(env=env, volumes={str(password): f"{SECRETS_DIR}/db-password:ro"})
        config = docker("inspect", name).stdout
        result = container_sidecar.wait(name)
        assert_exit(result, 0)
        assert db.revisions() == [revisions.head]
    assert_no_secrets(config)  # the password was never part of the container's configuration
    assert_no_secrets(result.output)


def test_database_url_file_on_mariadb(mariadb_password_server, revisions, container_sidecar, tmp_path):
    revisions.chain(1)
    with mariadb_password_server.database(ascii_login=True) as db:
        url_file = secret_file(tmp_path / "database-url", db.url + "\n")  # a trailing newline, as editors leave
        result = container_sidecar.run(env={"DATABASE_URL_FILE": f"{SECRETS_DIR}/database-url"},
                                       volumes={str(url_file): f"{SECRETS_DIR}/database-url:ro"})
        assert_exit(result, 0)
        assert db.revisions() == [revisions.head]
    assert_no_secrets(result.output)


def test_wrong_password_file_fails_with_5_and_neither_password_is_logged(pg_password_server, revisions,
                                                                         container_sidecar, tmp_path):
    revisions.chain(1)
    wrong = register_secret("wrong-" + pg_password_server.password)
    password = secret_file(tmp_path / "db-password", wrong)
    with pg_password_server.database() as db:
        env = {"DB_DRIVER": "postgresql", "DB_HOST": pg_password_server.host,
               "DB_PORT": str(pg_password_server.port), "DB_USER": pg_password_server.user, "DB_NAME": db.name,
               "DB_PASSWORD_FILE": f"{SECRETS_DIR}/db-password", "MIGRATE_WAIT_TIMEOUT": "5"}
        name = container_sidecar.start(env=env, volumes={str(password): f"{SECRETS_DIR}/db-password:ro"})
        result = container_sidecar.wait(name)  # asserts that docker logs holds no registered secret
    assert_failed(result, 5)
    assert wrong not in result.output


def test_unreadable_secret_file_is_a_configuration_error(revisions, container_sidecar, tmp_path):
    revisions.chain(1)
    password = secret_file(tmp_path / "db-password", "x" * 12, mode=0o400)  # root-owned, the container UID is not
    result = container_sidecar.run(env={"DB_DRIVER": "postgresql", "DB_HOST": "127.0.0.1", "DB_USER": "u",
                                        "DB_NAME": "db", "DB_PASSWORD_FILE": f"{SECRETS_DIR}/db-password"},
                                   volumes={str(password): f"{SECRETS_DIR}/db-password:ro"})
    assert_failed(result, 2, "DB_PASSWORD_FILE")
