"""Turn the settings into an async SQLAlchemy URL plus the driver's connect arguments."""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .drivers import mysql_wire_password
from .errors import ConfigurationError
from .settings import Settings

# Backend name -> the async driver this image ships for it.
ASYNC_DRIVERS = {"postgresql": "asyncpg", "mysql": "aiomysql", "mariadb": "aiomysql", "sqlite": "aiosqlite"}
SCHEME_ALIASES = {"postgres": "postgresql"}
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}


@dataclass(frozen=True)
class DatabaseTarget:
    """Where to connect: the async URL (holding the password) and extra connect arguments."""

    url: URL
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return self.url.get_backend_name()

    @property
    def masked(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"DatabaseTarget({self.masked})"


def resolve(settings: Settings, *, fallback_url: str | None = None) -> DatabaseTarget:
    """Build the target from DATABASE_URL, else the DB_* settings, else (ALEMBIC_CONFIG mode) ``fallback_url``."""
    if settings.database_url is not None:
        url = _parse(settings.database_url.reveal(), "DATABASE_URL")
    elif settings.db_driver is not None:
        url = _from_parts(settings)
    elif fallback_url:
        url = _parse(fallback_url, "sqlalchemy.url in " + (settings.alembic_config or "alembic.ini"))
    else:
        hint = "set DATABASE_URL, or DB_DRIVER with DB_HOST, DB_USER, DB_PASSWORD and DB_NAME"
        raise ConfigurationError("no database URL is configured", hint=hint)
    return _to_async(url, settings.db_sslmode)


def _parse(raw: str, source: str) -> URL:
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        # Never echo the value: it may hold a password.
        raise ConfigurationError(
            f"{source} is not a valid database URL",
            hint="use the form postgresql://USER:PASSWORD@HOST:PORT/DB with special characters percent-encoded",
        ) from None
    if not url.drivername:
        raise ConfigurationError(f"{source} has no scheme", hint="start it with postgresql://, mysql:// or sqlite:///")
    return url


def _from_parts(settings: Settings) -> URL:
    driver = settings.db_driver
    assert driver is not None
    if driver == "sqlite":
        if not settings.db_name:
            raise ConfigurationError("DB_NAME is required with DB_DRIVER=sqlite",
                                     hint="set DB_NAME to the database file's path")
        return URL.create("sqlite", database=settings.db_name)
    missing = [name for name, value in (("DB_HOST", settings.db_host), ("DB_NAME", settings.db_name)) if not value]
    if missing:
        raise ConfigurationError(f"{' and '.join(missing)} required with DB_DRIVER={driver}",
                                 hint="set them, or set DATABASE_URL instead")
    return URL.create(
        driver,
        username=settings.db_user.reveal() if settings.db_user else None,
        password=settings.db_password.reveal() if settings.db_password else None,
        host=settings.db_host,
        port=settings.db_port or DEFAULT_PORTS[driver],
        database=settings.db_name,
    )


def _to_async(url: URL, sslmode: str | None) -> DatabaseTarget:
    backend = SCHEME_ALIASES.get(url.get_backend_name(), url.get_backend_name())
    if backend not in ASYNC_DRIVERS:
        raise ConfigurationError(
            f"unsupported database kind {backend!r}",
            hint="use postgresql://, mysql://, mariadb:// or sqlite:/// (asyncpg, aiomysql, aiosqlite)",
        )
    url = url.set(drivername=f"{backend}+{ASYNC_DRIVERS[backend]}")
    query = dict(url.query)
    for key in ("sslmode", "ssl-mode", "ssl_mode"):
        if key in query:
            sslmode = sslmode or str(query.pop(key)).lower()
    connect_args: dict[str, Any] = {}
    if backend == "postgresql":
        if sslmode:
            query["ssl"] = sslmode  # asyncpg takes libpq's sslmode names under the name `ssl`
    elif backend in ("mysql", "mariadb"):
        if url.password:
            connect_args["password"] = mysql_wire_password(str(url.password))
        context = _mysql_ssl_context(sslmode)
        if context is not None:
            connect_args["ssl"] = context
    elif backend == "sqlite":
        if url.database and url.database != ":memory:":
            url = url.set(database=os.path.abspath(os.path.expanduser(url.database)))
    return DatabaseTarget(url.set(query=query), connect_args)


def _mysql_ssl_context(sslmode: str | None) -> ssl.SSLContext | None:
    """aiomysql cannot fall back from TLS to plain text, so `allow` and `prefer` mean plain text, as `disable`."""
    if sslmode in (None, "disable", "allow", "prefer"):
        return None
    if sslmode not in ("require", "verify-ca", "verify-full"):
        raise ConfigurationError(f"unknown sslmode {sslmode!r}",
                                 hint="use disable, prefer, require, verify-ca or verify-full")
    context = ssl.create_default_context()
    if sslmode == "require":
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif sslmode == "verify-ca":
        context.check_hostname = False
    return context
