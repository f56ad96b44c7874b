"""TLS against servers of our own that refuse plain text (tests/fixtures/tls.py): verified logins by URL parameter,
setting and libpq variable, client certificates with encrypted keys, your own env.py, and every way TLS fails, each
with its exit code, its one line, no secret in the output and nothing written (issue 8, item 1)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.databases import MARIADB_HOST, MARIADB_PORT, register_secret
from tests.fixtures.revisions import Revisions, applied_counts

from .conftest import assert_clean_failure, assert_exit, init_alembic_project

pytestmark = pytest.mark.integration

# A TLS failure must end the run at once, not after the login wait: the tests give it this long, and 60 s to wait.
PROMPT = 10.0
WAITING = {"MIGRATE_WAIT_TIMEOUT": "60"}
WRONG_KEY_PASSWORD = register_secret("not-the-key-password")


def assert_migrated(db, revisions: Revisions, result) -> None:
    assert_exit(result, 0)
    assert db.revisions() == [revisions.head], result
    assert applied_counts(db) == {rev: 1 for rev in revisions.logged}


def assert_fast_no_op(result) -> None:
    """The second run at head: the fast path answered (no full-path login), over the same TLS."""
    assert_exit(result, 0)
    assert result.one("migration_complete")["applied"] == 0
    assert "database_ready" not in {event.get("event") for event in result.events}, "the fast path should answer"


def assert_refused_at_once(result, db, code: int, *words: str) -> None:
    assert_clean_failure(result, code, *words)
    assert result.duration < PROMPT, f"took {result.duration:.1f} s: retried like a server that is not up?\n{result}"
    assert not result.named("database_waiting"), f"a login was retried\n{result}"
    assert db.tables() == []


def cert_files(server, key: str = "client_key") -> dict[str, str]:
    return {"DB_SSLCERT": server.client_cert, "DB_SSLKEY": getattr(server, key)}


@pytest.fixture
def key_password_file(pg_tls_server, tmp_path: Path) -> Path:
    path = tmp_path / "key-password"
    path.write_text(pg_tls_server.key_password + "\n")  # as a secret volume writes it
    return path


# --- PostgreSQL: verified logins ------------------------------------------------------------------------------------

def test_verify_full_by_url_parameters_migrates_and_the_next_run_is_the_fast_no_op(pg_tls_server, revisions,
                                                                                   sidecar):
    revisions.chain(2)
    server = pg_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password, sslmode="verify-full",
                         sslrootcert=server.ca)
        result = sidecar.run(env={"DATABASE_URL": url})
        assert_migrated(db, revisions, result)
        shown = result.one("database_ready")["database"]
        assert "sslmode=verify-full" in shown and f"sslrootcert={server.ca}" in shown
        assert_fast_no_op(sidecar.run(env={"DATABASE_URL": url}))


def test_a_client_certificate_from_the_db_settings_logs_in_by_certificate(pg_tls_server, revisions, sidecar):
    revisions.chain(2)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user), "DB_SSLMODE": "verify-full",
               "DB_SSLROOTCERT": server.ca, **cert_files(server)}
        assert_migrated(db, revisions, sidecar.run(env=env))
        assert_fast_no_op(sidecar.run(env=env))


def test_libpqs_pgssl_variables_are_honoured(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user), "PGSSLMODE": "verify-full",
               "PGSSLROOTCERT": server.ca, "PGSSLCERT": server.client_cert, "PGSSLKEY": server.client_key}
        assert_migrated(db, revisions, sidecar.run(env=env))
        assert_fast_no_op(sidecar.run(env=env))


def test_the_url_wins_over_the_setting_which_wins_over_libpqs_variable(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        env = {"DATABASE_URL": server.url(db.name, server.password_user, server.password, sslmode="verify-full",
                                          sslrootcert=server.ca),
               "DB_SSLROOTCERT": server.wrong_ca, "PGSSLROOTCERT": "/no/such/ca.pem"}
        assert_migrated(db, revisions, sidecar.run(env=env))
        del env["PGSSLROOTCERT"]
        env["DATABASE_URL"] = server.url(db.name, server.password_user, server.password, sslmode="verify-full")
        refused = sidecar.run(env={**env, "PGSSLROOTCERT": server.ca})
        assert_clean_failure(refused, 5, "did not verify", "DB_SSLROOTCERT")


def test_an_encrypted_key_with_its_password_from_a_file(pg_tls_server, revisions, sidecar, key_password_file):
    revisions.chain(2)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, sslmode="verify-full"),
               "DB_SSLROOTCERT": server.ca, **cert_files(server, "client_key_encrypted"),
               "DB_SSLPASSWORD_FILE": str(key_password_file)}
        assert_migrated(db, revisions, sidecar.run(env=env))  # the sidecar fixture fails on a leaked secret
        assert_fast_no_op(sidecar.run(env=env))


def test_an_encrypted_key_with_its_password_in_the_url(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        url = server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca,
                         sslcert=server.client_cert, sslkey=server.client_key_encrypted,
                         sslpassword=server.key_password)
        result = sidecar.run(env={"DATABASE_URL": url})
        assert_migrated(db, revisions, result)
        assert "sslpassword" not in result.one("database_ready")["database"]


def test_verify_ca_accepts_a_name_the_certificate_does_not_carry(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password, host=server.ip, sslmode="verify-ca",
                         sslrootcert=server.ca)
        assert_migrated(db, revisions, sidecar.run(env={"DATABASE_URL": url}))


def test_require_encrypts_without_verifying_unless_a_ca_is_given(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        plain_require = server.url(db.name, server.password_user, server.password, sslmode="require")
        with_wrong_ca = server.url(db.name, server.password_user, server.password, sslmode="require",
                                   sslrootcert=server.wrong_ca)
        # libpq: require with a CA file verifies the chain, so a wrong CA is refused
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": with_wrong_ca, **WAITING}), db, 5, "did not verify")
        assert_migrated(db, revisions, sidecar.run(env={"DATABASE_URL": plain_require}))


@pytest.mark.parametrize("mode", ["prefer", "allow"])
def test_prefer_and_allow_log_in_with_a_client_certificate_where_the_server_demands_tls(pg_tls_server, revisions,
                                                                                     sidecar, mode):
    revisions.chain(1)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, sslmode=mode), **cert_files(server)}
        assert_migrated(db, revisions, sidecar.run(env=env))


# --- PostgreSQL: every way TLS fails ----------------------------------------------------------------------------

def test_a_wrong_ca_exits_5_at_once(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        env = {"DATABASE_URL": server.url(db.name, server.password_user, server.password, sslmode="verify-full"),
               "DB_SSLROOTCERT": server.wrong_ca, **WAITING}
        assert_refused_at_once(sidecar.run(env=env), db, 5, "TLS", "did not verify", server.wrong_ca,
                               "DB_SSLROOTCERT")


def test_a_host_name_the_certificate_does_not_carry_exits_5_with_verify_full(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password, host=server.ip, sslmode="verify-full",
                         sslrootcert=server.ca)
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 5, "not valid for the host name",
                               server.ip, "verify-ca")


def test_no_client_certificate_for_the_certificate_user_exits_5(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca),
               **WAITING}
        assert_refused_at_once(sidecar.run(env=env), db, 5, "certificate")


def test_a_client_certificate_the_server_does_not_trust_exits_5_at_once(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca),
               "DB_SSLCERT": server.foreign_client_cert, "DB_SSLKEY": server.foreign_client_key, **WAITING}
        assert_refused_at_once(sidecar.run(env=env), db, 5, "refused our client certificate",
                               server.foreign_client_cert)


def test_a_wrong_key_password_exits_2_naming_the_setting_and_never_the_password(pg_tls_server, revisions, sidecar,
                                                                               tmp_path):
    revisions.chain(1)
    server = pg_tls_server
    (tmp_path / "wrong").write_text(WRONG_KEY_PASSWORD)
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca),
               **cert_files(server, "client_key_encrypted"), "DB_SSLPASSWORD_FILE": str(tmp_path / "wrong"),
               **WAITING}
        result = sidecar.run(env=env)
        assert_refused_at_once(result, db, 2, "DB_SSLPASSWORD does not decrypt", "DB_SSLKEY")
        assert WRONG_KEY_PASSWORD not in result.output and server.key_password not in result.output


def test_an_encrypted_key_without_its_password_exits_2(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca),
               **cert_files(server, "client_key_encrypted"), **WAITING}
        assert_refused_at_once(sidecar.run(env=env), db, 2, "encrypted", "DB_SSLPASSWORD_FILE")


def test_a_missing_ca_file_exits_2_naming_the_setting(pg_tls_server, revisions, sidecar, tmp_path):
    revisions.chain(1)
    server = pg_tls_server
    missing = str(tmp_path / "no-such-ca.pem")
    with server.database() as db:
        env = {"DATABASE_URL": server.url(db.name, server.password_user, server.password, sslmode="verify-full"),
               "DB_SSLROOTCERT": missing, **WAITING}
        assert_refused_at_once(sidecar.run(env=env), db, 2, "cannot read the CA certificate", missing,
                               "DB_SSLROOTCERT")


def test_verify_full_without_any_ca_exits_2(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password, sslmode="verify-full")
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 2, "needs the CA certificate",
                               "DB_SSLROOTCERT")


def test_plain_text_to_a_server_that_demands_tls_is_what_the_server_says(pg_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = pg_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password, sslmode="disable")
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 5, "no encryption")


# --- PostgreSQL: your own env.py -----------------------------------------------------------------------------------

def _alembic_project(tmp_path: Path, template: list[str]) -> tuple[Path, Revisions]:
    """`alembic init` (``template``: [] or ["-t", "async"]) with its env.py untouched, and two revisions of its own."""
    ini = init_alembic_project(tmp_path / "project", template[-1] if template else None)
    project = ini.parent
    own = Revisions(project / "migrations" / "versions")
    own.chain(2)
    return ini, own


def _with_ini_url(ini: Path, url: str) -> None:
    lines = [f"sqlalchemy.url = {url.replace('%', '%%')}" if line.startswith("sqlalchemy.url") else line
             for line in ini.read_text().splitlines()]
    ini.write_text("\n".join(lines) + "\n")


def test_your_own_async_env_py_logs_in_with_verified_tls_and_a_client_certificate(pg_tls_server, sidecar, tmp_path,
                                                                                 key_password_file):
    ini, own = _alembic_project(tmp_path, ["-t", "async"])
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        env = {"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None,
               "DATABASE_URL": server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca),
               **cert_files(server, "client_key_encrypted"), "DB_SSLPASSWORD_FILE": str(key_password_file)}
        result = sidecar.run(env=env)
        assert_migrated(db, own, result)
        assert [event["revision"] for event in result.named("revision_applied")] == own.ids


def test_your_own_sync_env_py_with_libpqs_tls_parameters_only_in_the_ini(pg_tls_server, sidecar, tmp_path):
    """The URL asyncpg would refuse (sslrootcert=... is no asyncpg argument) is what `alembic init` users write."""
    ini, own = _alembic_project(tmp_path, [])
    server = pg_tls_server
    with server.database(server.cert_user) as db:
        _with_ini_url(ini, server.url(db.name, server.cert_user, sslmode="verify-full", sslrootcert=server.ca,
                                      sslcert=server.client_cert, sslkey=server.client_key))
        assert_migrated(db, own, sidecar.run(env={"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None}))


def test_your_own_env_py_fails_like_ours_on_a_wrong_ca(pg_tls_server, sidecar, tmp_path):
    ini, _ = _alembic_project(tmp_path, ["-t", "async"])
    server = pg_tls_server
    with server.database() as db:
        env = {"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None, **WAITING,
               "DATABASE_URL": server.url(db.name, server.password_user, server.password, sslmode="verify-full",
                                          sslrootcert=server.wrong_ca)}
        assert_refused_at_once(sidecar.run(env=env), db, 5, "did not verify")


# --- MariaDB ------------------------------------------------------------------------------------------------------

def test_mariadb_ssl_parameters_in_the_url_verify_and_log_in_by_certificate(mariadb_tls_server, revisions, sidecar):
    revisions.chain(2)
    server = mariadb_tls_server
    with server.database(server.cert_user) as db:
        url = server.url(db.name, server.cert_user, ssl_ca=server.ca, ssl_cert=server.client_cert,
                         ssl_key=server.client_key)
        result = sidecar.run(env={"DATABASE_URL": url})
        assert_migrated(db, revisions, result)
        assert "sslmode=verify-full" in result.one("database_ready")["database"]
        assert_fast_no_op(sidecar.run(env={"DATABASE_URL": url}))


def test_mariadb_db_settings_with_a_password_login(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database() as db:
        env = {"DB_DRIVER": "mariadb", "DB_HOST": server.host, "DB_PORT": str(server.port),
               "DB_USER": server.password_user, "DB_PASSWORD": server.password, "DB_NAME": db.name,
               "DB_SSLMODE": "verify-full", "DB_SSLROOTCERT": server.ca}
        assert_migrated(db, revisions, sidecar.run(env=env))
        assert_fast_no_op(sidecar.run(env=env))


def test_mariadb_encrypted_key_with_its_password_from_a_file(mariadb_tls_server, revisions, sidecar,
                                                             key_password_file):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user), "DB_SSLROOTCERT": server.ca,
               **cert_files(server, "client_key_encrypted"), "DB_SSLPASSWORD_FILE": str(key_password_file)}
        assert_migrated(db, revisions, sidecar.run(env=env))


def test_mariadb_ssl_check_hostname_false_verifies_only_the_ca(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database() as db:
        checked = server.url(db.name, server.password_user, server.password, host=server.ip, ssl_ca=server.ca)
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": checked, **WAITING}), db, 5,
                               "not valid for the host name")
        unchecked = server.url(db.name, server.password_user, server.password, host=server.ip, ssl_ca=server.ca,
                               ssl_check_hostname="false")
        assert_migrated(db, revisions, sidecar.run(env={"DATABASE_URL": unchecked}))


def test_mariadb_wrong_ca_exits_5_at_once(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password, ssl_ca=server.wrong_ca)
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 5, "did not verify",
                               "ssl_ca in DATABASE_URL")


def test_mariadb_x509_user_without_a_certificate_is_refused_by_the_server(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database(server.cert_user) as db:
        url = server.url(db.name, server.cert_user, ssl_ca=server.ca)
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 5, "Access denied")


def test_mariadb_refuses_a_client_certificate_it_does_not_trust(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database(server.cert_user) as db:
        url = server.url(db.name, server.cert_user, ssl_ca=server.ca, ssl_cert=server.foreign_client_cert,
                         ssl_key=server.foreign_client_key)
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 5,
                               "refused our client certificate")


def test_mariadb_wrong_key_password_exits_2(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database(server.cert_user) as db:
        env = {"DATABASE_URL": server.url(db.name, server.cert_user, ssl_ca=server.ca),
               **cert_files(server, "client_key_encrypted"), "DB_SSLPASSWORD": WRONG_KEY_PASSWORD, **WAITING}
        result = sidecar.run(env=env)
        assert_refused_at_once(result, db, 2, "DB_SSLPASSWORD does not decrypt")
        assert WRONG_KEY_PASSWORD not in result.output


def test_mariadb_plain_text_is_refused_by_require_secure_transport(mariadb_tls_server, revisions, sidecar):
    revisions.chain(1)
    server = mariadb_tls_server
    with server.database() as db:
        url = server.url(db.name, server.password_user, server.password)
        assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), db, 5)


def test_require_against_a_mariadb_without_tls_exits_5_instead_of_going_on_in_plain_text(mariadb_database, revisions,
                                                                                        sidecar):
    revisions.chain(1)
    assert mariadb_database.rows("SHOW VARIABLES LIKE 'have_ssl'")[0][1] != "YES", "the machine's MariaDB has TLS"
    url = f"mysql://root@{MARIADB_HOST}:{MARIADB_PORT}/{mariadb_database.name}?ssl_mode=REQUIRED"
    assert_refused_at_once(sidecar.run(env={"DATABASE_URL": url, **WAITING}), mariadb_database, 5,
                           "does not offer TLS")


def test_mariadb_your_own_env_py_gets_the_ssl_parameters_aiomysql_could_not_take(mariadb_tls_server, sidecar,
                                                                                 tmp_path):
    """SQLAlchemy turns ssl_ca/ssl_cert/ssl_key into a dict that aiomysql cannot use: the sidecar's TLS replaces it."""
    ini, own = _alembic_project(tmp_path, [])
    server = mariadb_tls_server
    with server.database(server.cert_user) as db:
        _with_ini_url(ini, server.url(db.name, server.cert_user, ssl_ca=server.ca, ssl_cert=server.client_cert,
                                      ssl_key=server.client_key).replace("mysql://", "mysql+pymysql://"))
        assert_migrated(db, own, sidecar.run(env={"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None}))
