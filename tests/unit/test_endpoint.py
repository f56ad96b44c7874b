"""The one endpoint parser: every supported URL form read the same way by the fast and the full path."""

import pytest
from sqlalchemy.engine import make_url

from alembic_sidecar import endpoint as endpoints
from alembic_sidecar.databases import mysql
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit
ODD = "p@ss:w/rd%#? é"
ODD_IN_URL = "p%40ss%3Aw%2Frd%25%23%3F%20%C3%A9"


def parse(env):
    return endpoints.from_settings(from_environ(env, []))


def resolve(url, source, env=None):
    """The endpoint of ``url`` given as DATABASE_URL or as an ALEMBIC_CONFIG ini's sqlalchemy.url."""
    if source == "DATABASE_URL":
        return parse({"DATABASE_URL": url, **(env or {})})
    return endpoints.from_settings(from_environ({"ALEMBIC_CONFIG": "alembic.ini", **(env or {})}, []),
                                   fallback_url=url)


# Every server URL form, as DATABASE_URL and as the ini's URL: each gets the same checks and messages.
SCHEMES = ["postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2", "mysql", "mysql+pymysql",
           "mysql+aiomysql", "mariadb", "mariadb+aiomysql", "mariadb+pymysql"]
SOURCES = ["DATABASE_URL", "ini"]
every_form = pytest.mark.parametrize("scheme, source", [(scheme, source) for scheme in SCHEMES
                                                        for source in SOURCES])


def refusal(url, source, env=None):
    """The message (with its hint) that refuses ``url``; it must name where the URL came from."""
    with pytest.raises(ConfigurationError) as raised:
        resolve(url, source, env)
    text = str(raised.value)
    assert ("DATABASE_URL" if source == "DATABASE_URL" else "sqlalchemy.url in alembic.ini") in text
    return text


@pytest.mark.parametrize("given, backend, port", [
    ("postgres://u:p@h/db", "postgresql", 5432),
    ("postgresql://u:p@h:6432/db", "postgresql", 6432),
    ("postgresql+psycopg2://u:p@h/db", "postgresql", 5432),
    ("postgresql+asyncpg://u:p@h/db", "postgresql", 5432),
    ("mysql://u:p@h/db", "mysql", 3306),
    ("mysql+pymysql://u:p@h/db", "mysql", 3306),
    ("mariadb://u:p@h/db", "mariadb", 3306),
])
def test_every_server_url_form_gives_one_endpoint(given, backend, port):
    found = parse({"DATABASE_URL": given})
    assert (found.backend, found.host, found.port, found.user, found.password, found.database) == \
        (backend, "h", port, "u", "p", "db")
    assert found.sqlalchemy_url().get_backend_name() == backend


def test_the_engines_url_carries_what_the_endpoint_parsed():
    found = parse({"DATABASE_URL": f"postgresql://{ODD_IN_URL}:{ODD_IN_URL}@h/app?sslmode=require"})
    url = make_url(found.sqlalchemy_url().render_as_string(hide_password=False))
    assert (url.drivername, url.username, url.password, url.host, url.database, dict(url.query)) == \
        ("postgresql+asyncpg", ODD, ODD, "h", "app", {"ssl": "require"})


def test_password_and_user_may_come_as_query_parameters():
    found = parse({"DATABASE_URL": f"postgresql://h/app?user=app&password={ODD_IN_URL}"})
    assert (found.user, found.password) == ("app", ODD)
    assert ODD not in found.masked and ODD not in repr(found)


def test_parts_with_odd_credentials_are_taken_as_they_are():
    found = parse({"DB_DRIVER": "postgresql", "DB_HOST": "db", "DB_USER": ODD, "DB_PASSWORD": ODD, "DB_NAME": "app"})
    assert (found.user, found.password, found.port) == (ODD, ODD, 5432)
    assert ODD not in found.masked and "***" in found.masked


def test_db_driver_replaces_the_ini_url():
    found = resolve("postgresql://a@h1/x", "ini", {"DB_DRIVER": "mysql", "DB_HOST": "h2", "DB_NAME": "y"})
    assert (found.backend, found.host, found.database) == ("mysql", "h2", "y")


@pytest.mark.parametrize("given, mode", [
    ("postgresql://a@h/x?sslmode=verify-full", "verify-full"),
    ("postgresql://a@h/x?ssl=require", "require"),
    ("mysql://a@h/x?ssl_mode=REQUIRED", "require"),
    ("mysql://a@h/x?ssl-mode=VERIFY_IDENTITY", "verify-full"),
])
def test_tls_mode_spellings(given, mode):
    assert parse({"DATABASE_URL": given}).sslmode == mode


def test_db_sslmode_applies_to_a_url_too():
    assert parse({"DATABASE_URL": "postgresql://a@h/x", "DB_SSLMODE": "require"}).sslmode == "require"


@pytest.mark.parametrize("given, path", [
    ("sqlite:///relative.db", "relative.db"),
    ("sqlite:////abs/app.db", "/abs/app.db"),
    ("sqlite+aiosqlite:////abs/app.db", "/abs/app.db"),
])
def test_sqlite_paths_become_absolute(given, path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = path if path.startswith("/") else str(tmp_path / path)
    assert parse({"DATABASE_URL": given}).database == expected


def test_mysql_password_is_sent_as_its_utf8_bytes():
    assert mysql.wire_password(ODD).encode("latin-1") == ODD.encode("utf-8")


@pytest.mark.parametrize("env, message", [
    ({}, "no database URL is configured"),
    ({"DATABASE_URL": "::not a url::"}, "not a valid database URL"),
    ({"DATABASE_URL": "oracle://u:secretpw@h/x"}, "unsupported database kind 'oracle'"),
    ({"DATABASE_URL": "postgresql://u:secretpw@h/x?server_settings=search_path"}, "does not understand"),
    ({"DATABASE_URL": "postgresql://u:secretpw@h1,h2/x"}, "no single server host"),
    ({"DATABASE_URL": "postgresql://u:secretpw@h:99999/x"}, "port 99999"),
    ({"DATABASE_URL": "postgresql://u:secret#pw@h/x"}, "'#' that is not percent-encoded"),
    ({"DATABASE_URL": "postgresql://u:secretpw@h/x#pw"}, "'#' that is not percent-encoded"),
    ({"DATABASE_URL": "postgresql://u:secretpw@h/x?sslmode=sometimes"}, "unknown sslmode"),
    ({"DATABASE_URL": "sqlite:///x.db?mode=ro"}, "SQLite URL"),
    ({"DB_DRIVER": "postgresql", "DB_NAME": "x"}, "DB_HOST required"),
    ({"DB_DRIVER": "sqlite"}, "DB_NAME is required"),
])
def test_unusable_urls_are_configuration_errors_without_the_secret(env, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        parse(env)
    assert "secretpw" not in str(raised.value) and "secret#pw" not in str(raised.value)


@pytest.mark.parametrize("options, expected", [
    ("-csearch_path%3Dapp", (("search_path", "app"),)),
    ("-c%20search_path%3Dapp,public%20-c%20lock_timeout%3D5s", (("search_path", "app,public"),
                                                               ("lock_timeout", "5s"))),
    ("--search-path%3Dapp", (("search_path", "app"),)),
    ("-capplication_name%3Da\\%20b", (("application_name", "a b"),)),
])
def test_libpq_options_become_server_settings(options, expected):
    assert parse({"DATABASE_URL": f"postgresql://u@h/db?options={options}"}).options == expected


@pytest.mark.parametrize("url", ["postgresql://u@h/db?options=-x", "postgresql://u@h/db?options=-cnovalue",
                                 "postgresql://u@h/db?options=-c%20bad%20name%3Dx",
                                 "mysql://u@h/db?options=-csearch_path%3Dapp"])
def test_options_the_sidecar_cannot_apply_are_refused(url):
    with pytest.raises(ConfigurationError):
        parse({"DATABASE_URL": url})


# --- ports (issue 14, item 8) ---------------------------------------------------------------------------------------

@every_form
@pytest.mark.parametrize("port", ["0", "00", "65536", "99999", "123456789"])
def test_a_port_outside_1_to_65535_is_refused_naming_it_in_every_form(scheme, source, port):
    text = refusal(f"{scheme}://u:secretpw@h:{port}/db", source)
    assert f"has port {port}: a port is a number from 1 to 65535" in text
    assert "secretpw" not in text and f"{scheme}://u" not in text


@every_form
@pytest.mark.parametrize("port", ["notaport", "-1", "5432x", "٥٤٣٢", "99999999999999999999"])
def test_a_port_that_is_not_a_number_is_refused_in_every_form(scheme, source, port):
    text = refusal(f"{scheme}://u:secretpw@h:{port}/db", source)
    assert "has a port that is not a number from 1 to 65535" in text
    assert "secretpw" not in text and port not in text


@every_form
def test_a_password_cut_short_by_a_slash_is_not_shown_as_a_port(scheme, source):
    # postgresql://u:99999/secretpw@h/db: urlsplit reads host "u" and port "99999", the password's start.
    text = refusal(f"{scheme}://u:99999/secretpw@h/db", source)
    assert "99999" not in text and "secretpw" not in text
    assert "%2F" in text


@every_form
@pytest.mark.parametrize("url", ["{scheme}://u:12/secretpw@h:5432/db", "{scheme}://u:1/2@h/db",
                                 "{scheme}://u:pw?secret=pw@h/db", "{scheme}://u:pw?secretpw@h/db",
                                 "{scheme}://u/secretpw:pw@h/db"])
def test_a_password_cut_short_into_a_valid_port_or_parameters_is_refused_without_its_pieces(scheme, source, url):
    # postgresql://u:12/secretpw@h/db reads as host "u", port 12 and database "secretpw@h/db": a login attempt at
    # host "u" that retries until the wait timeout (exit 3), logging the database name, a piece of the password.
    text = refusal(url.format(scheme=scheme), source)
    assert "cut the URL short" in text and "%2F" in text and "%3F" in text
    assert "secret" not in text and "12" not in text


@every_form
@pytest.mark.parametrize("port, expected", [("1", 1), ("65535", 65535), ("05432", 5432), ("", None)])
def test_ports_from_1_to_65535_are_taken_in_every_form(scheme, source, port, expected):
    found = resolve(f"{scheme}://u:p@h:{port}/db" if port else f"{scheme}://u:p@h/db", source)
    assert found.port == (expected or found.driver.default_port)


@pytest.mark.parametrize("source", SOURCES)
def test_an_ipv6_host_keeps_its_port_checks(source):
    assert resolve("postgresql://u@[::1]:6432/db", source).port == 6432
    assert "has port 0" in refusal("postgresql://u@[::1]:0/db", source)


# --- '#' in a password (issue 14, item 8) ---------------------------------------------------------------------------

@every_form
@pytest.mark.parametrize("auth_and_host", ["u:secret#pw@h", "u:secret#pw@h:5432", "u:se#cret@h:99999",
                                           "u:secretpw@h"])
def test_an_unencoded_hash_is_named_with_its_encoding_in_every_form(scheme, source, auth_and_host):
    url = f"{scheme}://{auth_and_host}/db" + ("" if "#" in auth_and_host else "#secretpw")
    text = refusal(url, source)
    assert "has a '#' that is not percent-encoded" in text
    assert ("%23" if source == "DATABASE_URL" else "%%23 in the ini file") in text
    assert "secret" not in text


# --- DB_* beside a URL (issue 14, item 3) ---------------------------------------------------------------------------

@every_form
@pytest.mark.parametrize("url", ["{scheme}://u@h/db", "{scheme}://u:@h/db", "{scheme}://h/db?user=u"])
def test_db_password_fills_in_a_url_without_one(scheme, source, url):
    found = resolve(url.format(scheme=scheme), source, {"DB_PASSWORD": ODD})
    assert (found.user, found.password, found.host, found.database) == ("u", ODD, "h", "db")
    assert make_url(found.sqlalchemy_url().render_as_string(hide_password=False)).password == ODD


@every_form
def test_db_user_fills_in_a_url_without_one(scheme, source):
    found = resolve(f"{scheme}://h/db", source, {"DB_USER": ODD, "DB_PASSWORD": ODD})
    assert (found.user, found.password) == (ODD, ODD)


def test_db_password_file_fills_in_a_url_without_one(tmp_path):
    (tmp_path / "password").write_text(ODD + "\n")
    found = parse({"DATABASE_URL": "mysql://u@h/db", "DB_PASSWORD_FILE": str(tmp_path / "password")})
    assert found.password == ODD


@every_form
@pytest.mark.parametrize("name, url_auth", [("DB_PASSWORD", "u:urlsecret@"), ("DB_PASSWORD", "?password=urlsecret"),
                                            ("DB_USER", "u@"), ("DB_USER", "?user=u")])
def test_a_login_set_in_the_url_and_in_db_star_is_refused(scheme, source, name, url_auth):
    url = (f"{scheme}://h/db{url_auth}" if url_auth.startswith("?") else f"{scheme}://{url_auth}h/db")
    text = refusal(url, source, {name: "envsecret"})
    part = "password" if name == "DB_PASSWORD" else "user"
    assert f"{name} is set and" in text and f"has a {part} too" in text
    assert f"set the {part} in one place" in text
    assert "urlsecret" not in text and "envsecret" not in text


# Beside the ini's URL, DB_DRIVER selects the DB_* settings instead (test_db_driver_replaces_the_ini_url).
@pytest.mark.parametrize("scheme, source, name, value", [
    (scheme, source, name, value) for scheme in SCHEMES for source in SOURCES
    for name, value in (("DB_HOST", "otherhost"), ("DB_PORT", "6432"), ("DB_NAME", "otherdb"), ("DB_DRIVER", "mysql"))
    if (source, name) != ("ini", "DB_DRIVER")])
def test_a_server_setting_beside_a_url_is_refused_naming_it(scheme, source, name, value):
    text = refusal(f"{scheme}://u:urlsecret@h/db", source, {name: value, "DB_PASSWORD": "envsecret"})
    assert f"{name} is set beside" in text
    assert "urlsecret" not in text and "envsecret" not in text


def test_every_server_setting_beside_a_url_is_named_at_once():
    text = refusal("postgresql://u@h/db", "DATABASE_URL",
                   {"DB_DRIVER": "postgresql", "DB_HOST": "h", "DB_PORT": "5432", "DB_NAME": "db"})
    assert "DB_DRIVER, DB_HOST, DB_PORT and DB_NAME are set beside DATABASE_URL" in text


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("name", ["DB_USER", "DB_PASSWORD"])
def test_a_login_beside_a_sqlite_url_is_refused(source, name, tmp_path):
    text = refusal(f"sqlite:///{tmp_path}/app.db", source, {name: "envsecret"})
    assert f"{name} is set beside" in text and "SQLite" in text and "envsecret" not in text


@pytest.mark.parametrize("name, value", [("DB_HOST", "h"), ("DB_PORT", "5432"), ("DB_USER", "u"),
                                         ("DB_PASSWORD", "envsecret")])
def test_a_server_or_login_setting_with_db_driver_sqlite_is_refused(name, value, tmp_path):
    with pytest.raises(ConfigurationError, match=f"{name} is set with DB_DRIVER=sqlite") as raised:
        parse({"DB_DRIVER": "sqlite", "DB_NAME": str(tmp_path / "app.db"), name: value})
    assert "envsecret" not in str(raised.value)


def test_db_star_without_db_driver_or_a_url_is_named():
    with pytest.raises(ConfigurationError, match="no database URL is configured: DB_HOST and DB_PASSWORD are set, "
                                                 "but not DB_DRIVER") as raised:
        parse({"DB_HOST": "h", "DB_PASSWORD": "envsecret"})
    assert "envsecret" not in str(raised.value)
