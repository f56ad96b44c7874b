"""TLS settings: where each value comes from, the mode they imply, the client context built from them, and the
one-line errors for files that cannot be used. Certificates come from tests/fixtures/tls.py (openssl, no server)."""

import dataclasses
import json
import ssl

import pytest

from alembic_sidecar import endpoint as endpoints, tls
from alembic_sidecar.databases import mysql, postgresql
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.redaction import secret_values
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit
PG = "postgresql://u@db.example/app"
MY = "mysql://u@db.example/app"


def parse(env, environ=None):
    return endpoints.from_settings(from_environ(env, []), environ=environ or {})


# --- where each value comes from -----------------------------------------------------------------------------------

@pytest.mark.parametrize("url, settings, libpq, expected, source", [
    (f"{PG}?sslrootcert=/url.pem", {"DB_SSLROOTCERT": "/setting.pem"}, {"PGSSLROOTCERT": "/libpq.pem"},
     "/url.pem", "sslrootcert in DATABASE_URL"),
    (PG, {"DB_SSLROOTCERT": "/setting.pem"}, {"PGSSLROOTCERT": "/libpq.pem"}, "/setting.pem", "DB_SSLROOTCERT"),
    (PG, {}, {"PGSSLROOTCERT": "/libpq.pem"}, "/libpq.pem", "PGSSLROOTCERT"),
    (PG, {}, {}, None, "DB_SSLROOTCERT"),
])
def test_a_url_parameter_wins_over_its_setting_which_wins_over_libpqs_variable(url, settings, libpq, expected,
                                                                               source):
    found = parse({"DATABASE_URL": url, **settings}, libpq)
    assert found.sslrootcert == expected
    assert found.source_of("sslrootcert") == source


def test_every_tls_value_has_its_url_parameter_setting_and_libpq_variable():
    names = {"sslrootcert": "/ca.pem", "sslcert": "/c.pem", "sslkey": "/k.pem"}
    for name, path in names.items():
        assert getattr(parse({"DATABASE_URL": f"{PG}?{name}={path}"}), name) == path
        assert getattr(parse({"DATABASE_URL": PG, f"DB_{name.upper()}": path}), name) == path
        assert getattr(parse({"DATABASE_URL": PG}, {f"PG{name.upper()}": path}), name) == path
    assert parse({"DATABASE_URL": f"{PG}?sslpassword=k%26y"}).sslpassword == "k&y"
    assert parse({"DATABASE_URL": PG, "DB_SSLPASSWORD": "key-pass"}).sslpassword == "key-pass"
    assert parse({"DATABASE_URL": PG}, {"PGSSLMODE": "verify-ca"}).sslmode == "verify-ca"


def test_the_urls_sslmode_now_wins_over_db_sslmode():
    found = parse({"DATABASE_URL": f"{PG}?sslmode=verify-full", "DB_SSLMODE": "disable"}, {"PGSSLMODE": "allow"})
    assert (found.sslmode, found.source_of("sslmode")) == ("verify-full", "sslmode in DATABASE_URL")
    assert parse({"DATABASE_URL": PG, "DB_SSLMODE": "require"}, {"PGSSLMODE": "allow"}).sslmode == "require"


def test_the_settings_apply_to_db_parts_too():
    found = parse({"DB_DRIVER": "postgresql", "DB_HOST": "db", "DB_NAME": "app", "DB_SSLMODE": "verify-full",
                   "DB_SSLROOTCERT": "/ca.pem", "DB_SSLCERT": "/c.pem", "DB_SSLKEY": "/k.pem"})
    assert (found.sslmode, found.sslrootcert, found.sslcert, found.sslkey) == \
        ("verify-full", "/ca.pem", "/c.pem", "/k.pem")


def test_libpqs_variables_are_postgresqls_alone():
    found = parse({"DATABASE_URL": MY}, {"PGSSLMODE": "verify-full", "PGSSLROOTCERT": "/ca.pem"})
    assert (found.sslmode, found.sslrootcert) == (None, None)


def test_a_bad_pgsslmode_is_named():
    with pytest.raises(ConfigurationError, match="PGSSLMODE"):
        parse({"DATABASE_URL": PG}, {"PGSSLMODE": "sometimes"})


# --- the mode the files imply ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("query, mode", [
    ("ssl_ca=/ca.pem", "verify-full"),
    ("ssl_ca=/ca.pem&ssl_check_hostname=false", "verify-ca"),
    ("ssl_ca=/ca.pem&ssl_check_hostname=true", "verify-full"),
    ("ssl_cert=/c.pem&ssl_key=/k.pem", "require"),
    ("ssl_ca=/ca.pem&ssl_mode=REQUIRED", "require"),
    ("", None),
])
def test_mysql_verifies_as_soon_as_a_ca_is_given_as_its_sqlalchemy_dialects_do(query, mode):
    assert parse({"DATABASE_URL": f"{MY}?{query}"}).sslmode == mode


def test_mysql_takes_the_settings_as_ssl_ca_would():
    assert parse({"DATABASE_URL": MY, "DB_SSLROOTCERT": "/ca.pem"}).sslmode == "verify-full"


@pytest.mark.parametrize("query", ["sslmode=verify-full&ssl_check_hostname=false", "ssl_check_hostname=true",
                                   "sslmode=require&ssl_check_hostname=false", "ssl_ca=/ca&ssl_check_hostname=maybe"])
def test_contradicting_or_meaningless_host_name_checks_are_refused(query):
    with pytest.raises(ConfigurationError, match="ssl_check_hostname"):
        parse({"DATABASE_URL": f"{MY}?{query}"})


def test_postgresql_keeps_libpqs_default_mode_even_with_a_ca():
    assert parse({"DATABASE_URL": f"{PG}?sslrootcert=/ca.pem"}).sslmode is None


def test_sslrootcert_system_means_verify_full_and_nothing_weaker():
    assert parse({"DATABASE_URL": f"{PG}?sslrootcert=system"}).sslmode == "verify-full"
    with pytest.raises(ConfigurationError, match="verify-full"):
        parse({"DATABASE_URL": f"{PG}?sslrootcert=system&sslmode=require"})


@pytest.mark.parametrize("url, refused", [
    (f"{PG}?ssl_ca=/ca.pem", "ssl_ca"), (f"{MY}?sslrootcert=/ca.pem", "sslrootcert"),
    (f"{PG}?sslcrl=/crl.pem", "sslcrl"), (f"{MY}?ssl_capath=/etc", "ssl_capath"),
])
def test_each_database_takes_its_own_drivers_parameter_names_only(url, refused):
    with pytest.raises(ConfigurationError, match=f"does not understand: {refused}"):
        parse({"DATABASE_URL": url})


# --- what logs and the supervisor see ---------------------------------------------------------------------------------

def test_the_masked_url_shows_the_mode_and_the_files_but_never_the_key_password():
    found = parse({"DATABASE_URL": f"{PG}?sslmode=verify-full&sslrootcert=/etc/ca.pem&sslcert=/c.pem"
                                   "&sslkey=/k.pem&sslpassword=key-secret-1"})
    assert found.masked == ("postgresql://u@db.example:5432/app?sslmode=verify-full&sslrootcert=/etc/ca.pem"
                            "&sslcert=/c.pem")
    assert "key-secret-1" not in repr(found)
    mysql_url = parse({"DATABASE_URL": f"{MY}?ssl_ca=/etc/ca.pem"}).masked
    assert mysql_url.endswith("?sslmode=verify-full&ssl_ca=/etc/ca.pem")


def test_the_key_password_is_a_secret_to_scrub_from_every_line():
    assert "key-secret-1" in secret_values(from_environ({"DB_SSLPASSWORD": "key-secret-1"}, []))
    assert "key-secret-2" in secret_values(from_environ({"DATABASE_URL": f"{PG}?sslpassword=key-secret-2"}, []))


def test_an_endpoint_survives_the_trip_to_the_supervisor(tls_material):
    found = parse({"DATABASE_URL": f"{PG}?sslmode=verify-full", "DB_SSLROOTCERT": str(tls_material.ca)})
    travelled = endpoints.Endpoint(**json.loads(json.dumps(dataclasses.asdict(found))))
    assert travelled.source_of("sslrootcert") == "DB_SSLROOTCERT"
    assert tls.context(travelled).verify_mode == ssl.CERT_REQUIRED


# --- the client context -------------------------------------------------------------------------------------------

def context_for(tls_material, mode, **files):
    env = {"DATABASE_URL": f"{PG}?sslmode={mode}"}
    env.update({f"DB_{name.upper()}": str(getattr(tls_material, value)) if hasattr(tls_material, value) else value
                for name, value in files.items()})
    return postgresql.tls_arguments(parse(env))


@pytest.mark.parametrize("mode, verify, check_hostname", [
    ("verify-full", ssl.CERT_REQUIRED, True), ("verify-ca", ssl.CERT_REQUIRED, False),
    ("require", ssl.CERT_REQUIRED, False),  # libpq: require with a CA file verifies the chain
])
def test_each_mode_builds_the_context_libpq_would(tls_material, mode, verify, check_hostname):
    context = context_for(tls_material, mode, sslrootcert="ca")["ssl"]
    assert (context.verify_mode, context.check_hostname) == (verify, check_hostname)
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_require_without_a_ca_encrypts_without_verifying(tls_material, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt
    context = context_for(tls_material, "require")["ssl"]
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_NONE, False)


def test_libpqs_own_root_crt_is_used_where_nothing_else_names_a_ca(tls_material, monkeypatch, tmp_path):
    (tmp_path / ".postgresql").mkdir()
    (tmp_path / ".postgresql" / "root.crt").write_bytes(tls_material.ca.read_bytes())
    monkeypatch.setenv("HOME", str(tmp_path))
    context = context_for(tls_material, "verify-full")["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_postgresql_verification_without_a_ca_is_refused_as_libpq_does(mode, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ConfigurationError, match=f"sslmode={mode}.*needs the CA certificate"):
        postgresql.tls_arguments(parse({"DATABASE_URL": f"{PG}?sslmode={mode}"}))


def test_mysql_verification_without_a_ca_uses_the_systems_roots():
    context = mysql.tls_arguments(parse({"DATABASE_URL": f"{MY}?ssl_mode=VERIFY_IDENTITY"}))["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


@pytest.mark.parametrize("mode", ["prefer", "allow"])
def test_prefer_and_allow_hand_a_client_certificate_to_asyncpgs_own_fallback(tls_material, mode):
    arguments = context_for(tls_material, mode, sslcert="client_cert", sslkey="client_key")
    assert arguments["ssl"] == mode
    assert "sslcert=" in arguments["dsn"] and "sslkey=" in arguments["dsn"]


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_mysql_without_a_verifying_mode_is_plain_text(mode):
    assert mysql.tls_arguments(parse({"DATABASE_URL": f"{MY}?sslmode={mode}"})) == {"ssl": None}


def test_an_encrypted_key_loads_with_its_password(tls_material):
    context = context_for(tls_material, "verify-full", sslrootcert="ca", sslcert="client_cert",
                          sslkey="client_key_encrypted", sslpassword=tls_material.key_password)["ssl"]
    assert isinstance(context, ssl.SSLContext)


# --- files that cannot be used: exit 2, naming the setting, never the password ------------------------------------

@pytest.mark.parametrize("files, words", [
    ({"sslrootcert": "/no/such/ca.pem"}, ["cannot read the CA certificate /no/such/ca.pem (DB_SSLROOTCERT)"]),
    ({"sslrootcert": "client_key"}, ["DB_SSLROOTCERT", "holds no PEM certificate"]),
    ({"sslrootcert": "dir"}, ["DB_SSLROOTCERT"]),
    ({"sslrootcert": "ca", "sslcert": "client_cert", "sslkey": "foreign_client_key"},
     ["(DB_SSLKEY) does not belong to the certificate", "(DB_SSLCERT)"]),
    ({"sslrootcert": "ca", "sslcert": "client_cert", "sslkey": "client_key_encrypted"},
     ["is encrypted and no key password is set"]),
    ({"sslrootcert": "ca", "sslcert": "client_cert", "sslkey": "client_key_encrypted", "sslpassword": "not-it-123"},
     ["DB_SSLPASSWORD does not decrypt the key", "(DB_SSLKEY)"]),
    ({"sslrootcert": "ca", "sslcert": "client_cert"}, ["(DB_SSLCERT) holds no private key", "DB_SSLKEY"]),
    ({"sslrootcert": "ca", "sslkey": "client_key"}, ["DB_SSLKEY is set without a client certificate"]),
    ({"sslrootcert": "ca", "sslcert": "client_key", "sslkey": "client_key"},
     ["(DB_SSLCERT) holds no PEM certificate"]),
    ({"sslrootcert": "ca", "sslcert": "client_cert", "sslkey": "client_cert"},
     ["(DB_SSLKEY) holds no PEM private key"]),
])
def test_unusable_files_are_configuration_errors_that_name_the_setting(tls_material, files, words):
    files = {name: (str(tls_material.dir) if value == "dir" else value) for name, value in files.items()}
    with pytest.raises(ConfigurationError) as raised:
        context_for(tls_material, "verify-full", **files)
    message = str(raised.value)
    for word in words:
        assert word in message, message
    assert "not-it-123" not in message and tls_material.key_password not in message
    assert "\n" not in message


def test_a_bad_client_file_is_refused_before_a_plain_text_fallback(tls_material):
    with pytest.raises(ConfigurationError, match="DB_SSLKEY"):
        context_for(tls_material, "prefer", sslcert="client_cert", sslkey="foreign_client_key")


# --- what a TLS exception means ------------------------------------------------------------------------------------

def _ssl_error(kind, reason=None, verify_code=None):
    error = kind(1, "as OpenSSL words it")
    error.reason, error.verify_code = reason, verify_code
    return error


@pytest.mark.parametrize("error, fault", [
    (_ssl_error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED", 19), "access"),
    (_ssl_error(ssl.SSLCertVerificationError, "CERTIFICATE_VERIFY_FAILED", 62), "access"),
    (_ssl_error(ssl.SSLError, "TLSV1_ALERT_UNKNOWN_CA"), "access"),
    (_ssl_error(ssl.SSLError, "TLSV13_ALERT_CERTIFICATE_REQUIRED"), "access"),
    # on a connection that was open already: the line went bad, as a reset would
    (_ssl_error(ssl.SSLError, "DECRYPTION_FAILED_OR_BAD_RECORD_MAC"), "unavailable"),
])
@pytest.mark.parametrize("database", [postgresql, mysql])
def test_tls_exceptions_are_told_apart_by_type_and_openssls_codes(database, error, fault):
    wrapped = RuntimeError("a driver's wrapper")
    wrapped.__cause__ = error
    assert database.classify(wrapped).value == fault
