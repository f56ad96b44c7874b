"""SQLite through aiosqlite: DDL made transactional, a file lock beside the database, faults.

The lock is an exclusive flock on `<database>.migration-lock`: it excludes processes and containers that share
the file on one host, and the kernel drops it when its process dies. An in-memory database needs no lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..failures import Fault, causes
from . import quote_identifier
from .base import Driver, NothingOutside

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..endpoint import Endpoint
    from ..settings import Settings

_BUSY, _LOCKED, _READONLY = 5, 6, 8


def classify(exc: BaseException) -> Fault | None:
    for cause in causes(exc):
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", None)
            if code is not None and code & 0xFF in (_BUSY, _LOCKED):
                return Fault.LOCK_TIMEOUT
            if code is not None and code & 0xFF == _READONLY:
                return Fault.READ_ONLY
    return None


async def connect(endpoint: Endpoint, timeout: float) -> Any:
    import aiosqlite

    return await aiosqlite.connect(endpoint.database or ":memory:", timeout=timeout)


_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"


def _select(table: str, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(map(quote_identifier, columns))} FROM {quote_identifier(table)}"


def read_tables_now(path: str, reads: Sequence[tuple[str, str | None, Sequence[str]]],
                    timeout: float) -> list[list[tuple[Any, ...]] | None]:
    """Read-only, so that a missing file is not created here."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=timeout)
    try:
        return [[tuple(row) for row in connection.execute(_select(table, columns))]
                if connection.execute(_EXISTS, (table,)).fetchone() else None
                for table, _schema, columns in reads]
    finally:
        connection.close()


async def read_table(connection: Any, table: str, schema: str | None,
                     columns: Sequence[str]) -> list[tuple[Any, ...]] | None:
    async with connection.execute(_EXISTS, (table,)) as cursor:
        if await cursor.fetchone() is None:
            return None
    async with connection.execute(_select(table, columns)) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


def migration_settings(settings: Settings, *, is_mariadb: bool, bundled: bool) -> list[str]:
    if settings.ddl_lock_timeout is None:
        return []
    return [f"PRAGMA busy_timeout = {round(settings.ddl_lock_timeout * 1000)}"]


class FileLock:
    def __init__(self, database_path: str) -> None:
        self.path = database_path + ".migration-lock"
        self.description = f"flock({self.path})"
        self._fd: int | None = None

    async def try_acquire(self) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class NoLock:
    """An in-memory SQLite database is private to this process: nothing to exclude."""

    description = "none (in-memory database)"

    async def try_acquire(self) -> bool:
        return True

    async def release(self) -> None:
        return None


def lock(connection: AsyncConnection, settings: Settings, endpoint: Endpoint, token: str) -> FileLock | NoLock:
    if not endpoint.database or endpoint.database == ":memory:":
        return NoLock()
    return FileLock(endpoint.database)


def configure_engine(engine: Any) -> None:
    """Python's sqlite3 commits before DDL on its own; emit BEGIN ourselves so a failed revision rolls back."""
    from sqlalchemy import event

    @event.listens_for(engine.sync_engine, "connect")
    def disable_driver_transactions(dbapi_connection, connection_record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")


class SQLite(Driver):
    """A file, not a server: a user's sessions end with this process, there is nothing to end them from outside."""

    names = ("sqlite",)
    title = "SQLite"
    is_server = False
    async_driver = "aiosqlite"
    transactional_ddl = True  # once configure_engine emits BEGIN itself

    connect = staticmethod(connect)
    read_table = staticmethod(read_table)
    configure_engine = staticmethod(configure_engine)
    migration_settings = staticmethod(migration_settings)
    lock = staticmethod(lock)
    classify = staticmethod(classify)

    def alembic_options(self) -> dict[str, Any]:
        return {"transactional_ddl": True}  # the engine emits BEGIN itself (configure_engine)

    def exists(self, endpoint: Endpoint) -> bool:
        return not endpoint.database or endpoint.database == ":memory:" or os.path.exists(endpoint.database)

    async def read_tables_now(self, endpoint: Endpoint, reads: Sequence[tuple[str, str | None, Sequence[str]]],
                              timeout: float) -> list[list[tuple[Any, ...]] | None]:
        if not endpoint.database or endpoint.database == ":memory:":
            raise NothingOutside()
        return read_tables_now(endpoint.database, reads, timeout)


DRIVER = SQLite()
