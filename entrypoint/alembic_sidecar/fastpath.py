"""The no-op every pod restart pays: one login with the bare driver, one SELECT, no SQLAlchemy or Alembic import.

It answers only "the database is already at the heads"; anything else (a server not up yet, an unusual URL, pending
revisions, any error) returns None and the full path, with its wait loop and lock, takes over.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from .settings import Settings

ATTEMPT_TIMEOUT = 2.0
_BACKENDS = {"postgres": "postgresql", "postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql",
             "sqlite": "sqlite"}


@dataclass(frozen=True)
class _Endpoint:
    backend: str
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = None
    database: str | None = None
    sslmode: str | None = None

    def __repr__(self) -> str:
        return f"_Endpoint({self.backend}, {self.host}:{self.port}/{self.database})"


def _endpoint(settings: Settings) -> _Endpoint | None:
    """Connection parameters for the plain cases; None for anything the full path should interpret."""
    if settings.database_url is None:
        if settings.db_driver is None or not settings.db_name:
            return None
        if settings.db_driver != "sqlite" and not settings.db_host:
            return None  # the full path reports the missing setting; the driver would guess a local socket
        return _Endpoint(_BACKENDS[settings.db_driver], settings.db_host, settings.db_port,
                         settings.db_user.reveal() if settings.db_user else None,
                         settings.db_password.reveal() if settings.db_password else None,
                         settings.db_name, settings.db_sslmode)
    try:
        parts = urlsplit(settings.database_url.reveal().strip())
        port = parts.port
    except ValueError:
        return None
    backend = _BACKENDS.get(parts.scheme.split("+")[0])
    if backend is None or parts.fragment:
        return None
    if backend == "sqlite":
        path = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
        return _Endpoint("sqlite", database=path) if path and not parts.query and not parts.netloc else None
    query = dict(parse_qsl(parts.query))
    sslmode = query.pop("sslmode", None)
    sslmode = query.pop("ssl", None) or sslmode
    if query or "," in parts.netloc or not parts.hostname:
        return None  # multi-host, socket paths, driver options: the full path knows them
    return _Endpoint(backend, parts.hostname, port, unquote(parts.username) if parts.username else None,
                     unquote(parts.password) if parts.password else None, unquote(parts.path.lstrip("/")) or None,
                     settings.db_sslmode or sslmode)


def current_revisions(settings: Settings) -> tuple[str, ...] | None:
    """The database's revisions read with one plain query, or None when that is not simply possible."""
    endpoint = _endpoint(settings)
    if endpoint is None:
        return None
    table = settings.version_table
    try:
        if endpoint.backend == "sqlite":
            return _sqlite_revisions(endpoint, table)
        if endpoint.backend == "postgresql":
            return asyncio.run(_postgres_revisions(endpoint, table))
        if endpoint.sslmode in (None, "disable", "allow", "prefer"):
            return asyncio.run(_mysql_revisions(endpoint, table))
    except Exception:  # not up yet, refused, no version table...: the full path explains it
        return None
    return None


def _sqlite_revisions(endpoint: _Endpoint, table: str) -> tuple[str, ...] | None:
    if endpoint.database in (None, ":memory:"):
        return None
    # Read-only, so that a missing file is not created here.
    connection = sqlite3.connect(f"file:{endpoint.database}?mode=ro", uri=True, timeout=ATTEMPT_TIMEOUT)
    try:
        return tuple(sorted(row[0] for row in connection.execute(f"SELECT version_num FROM {table}")))
    finally:
        connection.close()


async def _postgres_revisions(endpoint: _Endpoint, table: str) -> tuple[str, ...]:
    import asyncpg

    connection = await asyncpg.connect(
        host=endpoint.host, port=endpoint.port or 5432, user=endpoint.user, password=endpoint.password,
        database=endpoint.database, ssl=endpoint.sslmode, timeout=ATTEMPT_TIMEOUT,
        server_settings={"application_name": "alembic-sidecar"})
    try:
        if await connection.fetchval("SELECT to_regclass($1)", table) is None:
            return ()  # asking first keeps "relation does not exist" out of the server log
        return tuple(sorted(row[0] for row in await connection.fetch(f"SELECT version_num FROM {table}")))
    finally:
        await connection.close(timeout=ATTEMPT_TIMEOUT)


async def _mysql_revisions(endpoint: _Endpoint, table: str) -> tuple[str, ...]:
    import aiomysql

    from .drivers import mysql_wire_password

    connection = await aiomysql.connect(
        host=endpoint.host, port=endpoint.port or 3306, user=endpoint.user or "",
        password=mysql_wire_password(endpoint.password or ""), db=endpoint.database,
        connect_timeout=ATTEMPT_TIMEOUT, charset="utf8mb4")
    try:
        async with connection.cursor() as cursor:
            await cursor.execute(f"SELECT version_num FROM {table}")
            return tuple(sorted(row[0] for row in await cursor.fetchall()))
    finally:
        connection.close()


def no_op_summary(settings: Settings) -> str | None:
    """When the database is already at the heads, log the run's summary and return it; else None."""
    import time

    from . import revisions
    from .logs import get_logger, migration_complete

    if settings.alembic_config is not None or settings.command not in ("upgrade", "check"):
        return None
    if settings.command == "upgrade" and settings.target not in ("head", "heads"):
        return None
    started = time.monotonic()
    index = revisions.scan(settings.versions_dir, revisions.check_versions_dir(settings.versions_dir))
    if index is None:
        return None
    heads = index.heads
    if len(heads) > 1 and settings.command == "upgrade" and settings.target == "head":
        return None  # the full path explains the several heads
    current = current_revisions(settings)
    if not current or set(current) != set(heads):
        return None
    if settings.command == "check":
        get_logger().info("database_at_heads", revision=",".join(current))
        return f"database at the heads ({','.join(current)})"
    return migration_complete(current, current, 0, started)
