"""URL resolution: sync URLs become async ones, odd credentials survive, secrets stay masked."""

import pytest
from sqlalchemy.engine import make_url

from alembic_sidecar.database_url import resolve
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit
ODD = "p@ss:w/rd%#? é"


def target(env):
    return resolve(from_environ(env, []))


@pytest.mark.parametrize("given, driver", [
    ("postgres://u:p@h/db", "postgresql+asyncpg"),
    ("postgresql://u:p@h/db", "postgresql+asyncpg"),
    ("postgresql+psycopg2://u:p@h/db", "postgresql+asyncpg"),
    ("mysql://u:p@h/db", "mysql+aiomysql"),
    ("mysql+pymysql://u:p@h/db", "mysql+aiomysql"),
    ("mariadb://u:p@h/db", "mariadb+aiomysql"),
    ("sqlite:///x.db", "sqlite+aiosqlite"),
])
def test_sync_urls_are_rewritten_to_their_async_driver(given, driver):
    assert target({"DATABASE_URL": given}).url.drivername == driver


def test_parts_with_odd_credentials_round_trip_through_the_rendered_url():
    built = target({"DB_DRIVER": "postgresql", "DB_HOST": "db", "DB_USER": ODD, "DB_PASSWORD": ODD, "DB_NAME": "app"})
    reparsed = make_url(built.url.render_as_string(hide_password=False))
    assert (reparsed.username, reparsed.password, reparsed.port) == (ODD, ODD, 5432)
    assert ODD not in built.masked and "***" in built.masked


def test_database_url_wins_over_parts():
    built = target({"DATABASE_URL": "postgresql://a@h1/x", "DB_DRIVER": "mysql", "DB_HOST": "h2", "DB_NAME": "y"})
    assert built.url.host == "h1"


def test_sslmode_becomes_asyncpgs_ssl_option():
    built = target({"DATABASE_URL": "postgresql://a@h/x?sslmode=require"})
    assert dict(built.url.query) == {"ssl": "require"}
    assert dict(target({"DB_DRIVER": "postgresql", "DB_HOST": "h", "DB_NAME": "x",
                        "DB_SSLMODE": "verify-full"}).url.query) == {"ssl": "verify-full"}


def test_mysql_password_is_sent_as_its_utf8_bytes():
    built = target({"DB_DRIVER": "mariadb", "DB_HOST": "h", "DB_NAME": "x", "DB_PASSWORD": ODD})
    assert built.connect_args["password"].encode("latin-1") == ODD.encode("utf-8")


@pytest.mark.parametrize("env, message", [
    ({}, "no database URL is configured"),
    ({"DATABASE_URL": "::not a url::"}, "not a valid database URL"),
    ({"DATABASE_URL": "oracle://u:secretpw@h/x"}, "unsupported database kind 'oracle'"),
    ({"DB_DRIVER": "postgresql", "DB_NAME": "x"}, "DB_HOST required"),
    ({"DB_DRIVER": "sqlite"}, "DB_NAME is required"),
])
def test_unusable_urls_are_configuration_errors_without_the_secret(env, message):
    with pytest.raises(ConfigurationError, match=message) as raised:
        target(env)
    assert "secretpw" not in str(raised.value)
