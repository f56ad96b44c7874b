"""The run's database session: log in, bound every statement of the sidecar's own, read versions, lock, close.

Every statement issued here has a client-side bound, so a network path that stops answering ends the run (exit 9,
or exit 4 while waiting for the lock) instead of holding it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import locking, waiting
from .databases.base import Driver
from .endpoint import Endpoint
from .errors import ConfigurationError, LockTimeout, SidecarError, Signalled, TransientFault, unexpected
from .failures import Fault, describe
from .fault_errors import Phase, fault_error
from .logs import get_logger
from .settings import Settings

T = TypeVar("T")
# The sidecar's own statements (version reads, lock polls, settings) answer in milliseconds; past this the
# connection has lost its server.
OWN_STATEMENT_BOUND = 10.0
_PASS_THROUGH = (SidecarError, Signalled, asyncio.CancelledError)


class Session:
    """One connection for the whole run, and the migration lock on it."""

    def __init__(self, settings: Settings, endpoint: Endpoint, database: Driver, *, wait_timeout: float,
                 lock_timeout: float) -> None:
        self.settings, self.endpoint, self.database = settings, endpoint, database
        self.wait_timeout, self.lock_timeout = wait_timeout, lock_timeout
        self.engine: AsyncEngine | None = None
        self.connection: AsyncConnection | None = None
        self.lock: locking.Lock | None = None
        self.locked = False
        self.backend_id: int | None = None
        self.token = ""

    async def bounded(self, work: Awaitable[T], seconds: float = OWN_STATEMENT_BOUND,
                      on_timeout: SidecarError | None = None) -> T:
        try:
            async with asyncio.timeout(seconds):
                return await work
        except TimeoutError:
            await self.abandon()
            if on_timeout is not None:
                raise on_timeout from None
            raise TransientFault(f"the database did not answer within {seconds:g} s",
                                 hint="the network path is down or the server hangs; rerunning is safe",
                                 fault=Fault.UNAVAILABLE) from None

    def fault(self, exc: BaseException, doing: str, *, refused: str | None = None,
              refused_hint: str | None = None) -> SidecarError:
        """The error for a database failure outside revision code: transient (exit 9), refused (exit 5, where
        ``refused`` words it) or a bug (exit 70)."""
        reason = describe(exc)
        phase = Phase(doing, rerun="nothing was changed by this run; rerunning is safe", refused=refused,
                      refused_hint=refused_hint)
        return (fault_error(self.database.classify(exc), phase, reason)
                or unexpected(f"unexpected database error while {doing}: {reason}"))

    async def open(self, *, migrating: bool) -> AsyncConnection:
        async def prepare(raw: Any) -> None:
            try:
                self.token = await self.bounded(self.database.prepare_session(
                    raw, self.settings, self.endpoint if migrating else None))
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                if self.database.classify(exc) is Fault.UNAVAILABLE:
                    raise  # the login wait retries it
                raise self.fault(exc, "preparing the session") from None

        self.engine, deadline = waiting.create_engine(self.endpoint, self.database, prepare)
        self.connection = await waiting.connect(self.engine, deadline, self.endpoint, self.database,
                                                self.wait_timeout)
        if self.database.backend_id_query is not None:
            try:
                self.backend_id = (await self.bounded(self.connection.execute(
                    text(self.database.backend_id_query)))).scalar()
                await self.connection.commit()
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                raise self.fault(exc, "preparing the session") from None
        return self.connection

    async def current_revisions(self, *, before_lock: bool = False) -> tuple[str, ...]:
        """The version table's rows, through Alembic (quoting and schema as it created them)."""
        from alembic.runtime.migration import MigrationContext

        table = self.settings.version_table

        def read(sync_connection: Any) -> tuple[str, ...]:
            context = MigrationContext.configure(sync_connection, opts={
                "version_table": table, "version_table_schema": self.settings.version_table_schema})
            return tuple(sorted(context.get_current_heads()))

        # Before the lock, a read that blocks waits for whoever locks the version table: that counts as lock wait.
        too_slow = None
        if before_lock:
            too_slow = LockTimeout(f"reading {table} took longer than MIGRATE_LOCK_TIMEOUT ({self.lock_timeout:g} s): "
                                   "another session locks it, or the server does not answer",
                                   hint="find the session that locks it, or raise MIGRATE_LOCK_TIMEOUT")
        bound = max(1.0, self.lock_timeout) if before_lock else OWN_STATEMENT_BOUND
        for attempt in (1, 2):
            connection = self.connection
            assert connection is not None
            try:
                rows = await self.bounded(connection.run_sync(read), bound, too_slow)
                await connection.commit()
                return rows
            except _PASS_THROUGH:
                raise
            except Exception as exc:
                await self.rollback_quietly()
                if attempt == 1 and self.database.stale_statement(exc):
                    continue  # a revision altered the table: the driver's cached statement is stale
                if self.database.classify(exc) is None and not isinstance(exc, TimeoutError):
                    raise ConfigurationError(f"cannot read the version table {table}: {describe(exc)}",
                                             hint="MIGRATE_VERSION_TABLE must name Alembic's version table (or "
                                                  "a table that does not exist yet)") from None
                raise self.fault(exc, f"reading {table}", refused=f"cannot read {table}",
                                 refused_hint="grant the migration user access to the database") from None
        raise AssertionError("unreachable")

    async def run_own(self, work: Any, doing: str, *, refused_hint: Callable[[str], str]) -> Any:
        """``work(sync_connection)`` as one bounded transaction of the sidecar's own, committed; a failure is
        rolled back and translated as :meth:`fault` does (a refusal's hint made from the server's words)."""
        connection = self.connection
        assert connection is not None
        try:
            result = await self.bounded(connection.run_sync(work))
            await connection.commit()
            return result
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            await self.rollback_quietly()
            raise self.fault(exc, doing, refused=f"refused while {doing}",
                             refused_hint=refused_hint(describe(exc))) from None

    async def acquire_lock(self) -> None:
        assert self.connection is not None
        self.lock = self.database.lock(self.connection, self.settings, self.endpoint, self.token)
        try:
            await locking.acquire(self.lock, self.lock_timeout)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise self.fault(exc, "waiting for the migration lock") from None
        self.locked = True

    async def set_migration_settings(self, bundled: bool) -> None:
        """Statement and lock timeouts, set after the migration lock so they do not cut the lock wait short."""
        connection = self.connection
        assert connection is not None
        is_mariadb = bool(getattr(connection.dialect, "is_mariadb", False))
        try:
            for statement in self.database.migration_settings(self.settings, is_mariadb=is_mariadb,
                                                              bundled=bundled):
                await self.bounded(connection.execute(text(statement)))
            await connection.commit()
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise self.fault(exc, "setting the migration's timeouts") from None

    async def make_durable(self) -> None:
        if self.connection is None:
            return
        try:
            await self.bounded(self.database.make_durable(self.connection))
        except (Signalled, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Committed, but perhaps not yet on disk: only the proof read after this can tell.
            get_logger().warning("durable_commit_failed",
                                 reason=exc.message if isinstance(exc, SidecarError) else describe(exc))

    async def heartbeat(self) -> None:
        """Keep an idle session busy enough that MySQL's wait_timeout does not end it (and its lock)."""
        if self.connection is not None:
            await self.bounded(self.connection.execute(text("SELECT 1")))
            await self.connection.commit()

    async def rollback_quietly(self) -> None:
        if self.connection is None or self.connection.invalidated:
            return
        try:
            async with asyncio.timeout(3):
                await self.connection.rollback()
        except Exception:
            await self.abandon()

    async def abandon(self) -> None:
        """Drop a connection whose server stopped answering: close its socket without waiting for anyone."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            # Not get_raw_connection(): on an invalidated connection that would log in again, to a dead server.
            dbapi_connection = getattr(connection.sync_connection, "_dbapi_connection", None)
            raw = getattr(dbapi_connection, "driver_connection", None)
            if raw is not None:
                async with asyncio.timeout(1):
                    await self.database.abort(raw)
        except Exception:
            pass
        self.locked = False  # the lock went with the session (or with the file descriptor at exit)

    async def kill(self, backend_ids: list[int] | None = None) -> None:
        """End our session (or ``backend_ids``) from a second login: the server rolls back and frees the locks."""
        if backend_ids is None:
            backend_ids = [self.backend_id] if self.backend_id is not None else []
        statements = [statement for statement in map(self.database.kill_statement, backend_ids) if statement]
        if not statements:
            return
        try:
            async with asyncio.timeout(3):
                killer = await self.database.connect(self.endpoint, 2.0)
                try:
                    for statement in statements:
                        await self.database.execute_raw(killer, statement)
                finally:
                    await self.database.close(killer)
        except Exception as exc:  # the socket closing on exit still ends the session, only later
            get_logger().warning("interrupt_cleanup_failed", reason=describe(exc))

    async def close(self) -> None:
        """Release the lock and the connection; a session that is already gone took its server-side lock along."""
        try:
            async with asyncio.timeout(3):
                usable = self.connection is not None and not self.connection.invalidated
                # SQLite's file lock is ours to drop whatever happened to the connection.
                if self.locked and self.lock is not None and (usable or not self.endpoint.is_server):
                    try:
                        if usable:
                            await self.connection.rollback()
                        await self.lock.release()
                    except Exception:
                        await self.abandon()
                if self.connection is not None and not self.connection.invalidated:
                    await self.connection.close()
                else:
                    await self.abandon()
                if self.engine is not None:
                    await self.engine.dispose()
        except Exception:
            await self.abandon()  # the process is about to exit; the server ends the session
