"""The migration lock: one migrator at a time per database, released when its session ends, even by a crash."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import time
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import LockTimeout
from .logs import get_logger

POLL_INTERVAL = 0.2
LOG_EVERY = 5.0


def advisory_key(name: str) -> int:
    """PostgreSQL advisory lock key: the first 8 bytes of SHA-256(name) as a signed 64-bit integer."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def mysql_lock_name(name: str, database: str | None) -> str:
    """GET_LOCK names are server-wide (not per schema) and at most 64 characters long."""
    scoped = f"{name}:{database or ''}"
    return scoped if len(scoped) <= 64 else hashlib.sha256(scoped.encode()).hexdigest()[:64]


class Lock(Protocol):
    description: str

    async def try_acquire(self, wait: float) -> bool: ...

    async def release(self) -> None: ...


class PostgresLock:
    """A session-level advisory lock on the migration connection: per-revision commits do not release it."""

    def __init__(self, connection: AsyncConnection, name: str) -> None:
        self.connection = connection
        self.key = advisory_key(name)
        self.description = f"pg_advisory_lock({self.key})"

    async def try_acquire(self, wait: float) -> bool:
        got = (await self.connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})).scalar()
        await self.connection.commit()
        if not got:
            await asyncio.sleep(wait)
        return bool(got)

    async def release(self) -> None:
        await self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        await self.connection.commit()


class MySQLLock:
    """A GET_LOCK named after the lock name and the database; the server frees it when the session ends."""

    def __init__(self, connection: AsyncConnection, name: str, database: str | None) -> None:
        self.connection = connection
        self.name = mysql_lock_name(name, database)
        self.description = f"GET_LOCK('{self.name}')"

    async def try_acquire(self, wait: float) -> bool:
        # The server waits for us (up to `wait` whole seconds); a fractional wait would round down to 0.
        seconds = max(0, int(wait))
        got = (await self.connection.execute(text("SELECT GET_LOCK(:name, :wait)"),
                                             {"name": self.name, "wait": seconds})).scalar()
        await self.connection.commit()
        if not got and seconds == 0:
            await asyncio.sleep(wait)
        return got == 1

    async def release(self) -> None:
        await self.connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
        await self.connection.commit()


class SQLiteLock:
    """An exclusive flock on `<database>.migration-lock`: SQLite has no named locks; the kernel drops it on exit."""

    def __init__(self, database_path: str) -> None:
        self.path = database_path + ".migration-lock"
        self.description = f"flock({self.path})"
        self._fd: int | None = None

    async def try_acquire(self, wait: float) -> bool:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            await asyncio.sleep(wait)
            return False

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


class NoLock:
    """An in-memory SQLite database is private to this process: nothing to exclude."""

    description = "none (in-memory database)"

    async def try_acquire(self, wait: float) -> bool:
        return True

    async def release(self) -> None:
        return None


def lock_for(connection: AsyncConnection, name: str) -> Lock:
    dialect = connection.dialect.name
    database = connection.engine.url.database
    if dialect == "postgresql":
        return PostgresLock(connection, name)
    if dialect in ("mysql", "mariadb"):
        return MySQLLock(connection, name, database)
    if not database or database == ":memory:":
        return NoLock()
    return SQLiteLock(database)


async def acquire(lock: Lock, timeout: float) -> float:
    """Take the lock within ``timeout`` seconds; return how long it took. Raise LockTimeout otherwise."""
    log = get_logger()
    started = time.monotonic()
    last_logged = started
    while True:
        remaining = timeout - (time.monotonic() - started)
        if await lock.try_acquire(max(0.0, min(POLL_INTERVAL if remaining > 1 else remaining, 1.0))):
            waited = time.monotonic() - started
            log.info("lock_acquired", lock=lock.description, waited_ms=round(waited * 1000))
            return waited
        now = time.monotonic()
        if now - started >= timeout:
            raise LockTimeout(f"another migrator held {lock.description} for more than {timeout:g} s",
                              hint="wait for it to finish, or raise MIGRATE_LOCK_TIMEOUT")
        if now - last_logged >= LOG_EVERY or last_logged == started:
            last_logged = now
            log.info("lock_waiting", lock=lock.description, elapsed_s=round(now - started, 1), timeout_s=timeout)
