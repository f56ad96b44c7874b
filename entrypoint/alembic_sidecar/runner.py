"""One run of a command: connect, lock, check, migrate, release; returns what to report.

Every statement the sidecar issues itself has a client-side bound; revision statements get one from
MIGRATE_STATEMENT_TIMEOUT (plus a margin for the server's own cancel), and the socket's keepalive bounds the rest.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import alembic_env, databases, endpoint as endpoints, locking, logs, waiting
from .alembic_env import AppliedStep, Project
from .errors import (AccessDenied, ConfigurationError, LockTimeout, MigrationFailed, PendingRevisions, SidecarError,
                     Signalled, TransientFault)
from .failures import TRANSIENT, Fault, describe
from .logs import get_logger
from .redaction import secret_forms
from .report import Reporter
from .settings import Settings

T = TypeVar("T")
# The sidecar's own statements (version reads, lock polls, settings) answer in milliseconds; past this the
# connection has lost its server.
OWN_STATEMENT_BOUND = 10.0
# How long past MIGRATE_STATEMENT_TIMEOUT the client waits for the server's cancel before it gives up on the socket.
CANCEL_MARGIN = 10.0
# A lock session that sits idle while a user's env.py migrates is pinged this often, so the server keeps it.
HEARTBEAT_EVERY = 20.0

_FAULT_TEXT = {
    Fault.UNAVAILABLE: "the connection to the database was lost",
    Fault.READ_ONLY: "the database is read-only (a failover or maintenance?)",
    Fault.LOCK_TIMEOUT: "a statement waited longer than MIGRATE_DDL_LOCK_TIMEOUT for a table lock",
    Fault.DEADLOCK: "the database aborted the transaction (deadlock or serialization failure)",
}


@dataclass
class Result:
    """What the command line reports: a summary line, and lines for stdout (current, heads, history)."""

    summary: str
    output: list[str] = field(default_factory=list)
    before: tuple[str, ...] | None = None  # set by upgrade and downgrade: what the parent must prove
    expected: tuple[str, ...] | None = None
    applied: int = 0


class Runner:
    """Holds the run's connection and lock so that a signal can stop the migration and free both."""

    def __init__(self, settings: Settings, reporter: Reporter | None = None, *, wait_timeout: float | None = None,
                 lock_timeout: float | None = None) -> None:
        self.settings = settings
        self.reporter = reporter or Reporter(None)
        self.wait_timeout = settings.wait_timeout if wait_timeout is None else wait_timeout
        self.lock_timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
        self.log = get_logger()
        self.endpoint: endpoints.Endpoint | None = None
        self.database: Any = None
        self.engine: AsyncEngine | None = None
        self.connection: AsyncConnection | None = None
        self.lock: locking.Lock | None = None
        self.locked = False
        self.backend_id: int | None = None
        self.migrating = False
        self.last_applied: str | None = None
        self.watchdog_fired = False
        self.session_token = ""
        self.env_thread: threading.Thread | None = None

    # -- commands --------------------------------------------------------------------------------------------
    async def run(self) -> Result:
        settings = self.settings
        command = settings.command
        if command == "downgrade" and not settings.allow_downgrade:
            raise ConfigurationError("downgrade is disabled", hint="set MIGRATE_ALLOW_DOWNGRADE=true to allow it")
        if command == "wait" and settings.alembic_config is None:
            # Only the database matters: a wait container need not mount any revision files.
            project, fallback_url = None, None
        else:
            project, fallback_url = alembic_env.open_project(settings)
        if command == "heads":
            # Through Alembic, not the fast scan: a broken revision file must fail here as it would on upgrade.
            return Result("heads listed", sorted(project.script.get_heads()))
        if command == "history":
            return self._history(project)
        if command == "sql":
            return self._sql(project, fallback_url)
        self.endpoint = endpoints.from_settings(settings, fallback_url=fallback_url)
        self.database = databases.module_for(self.endpoint.backend)
        if self.endpoint.password:  # from alembic.ini perhaps, which the settings never saw
            logs.add_secrets(secret_forms([self.endpoint.password]))
        # The supervisor proves the outcome with a login of its own, to the same place.
        self.reporter.send("endpoint", endpoint=dataclasses.asdict(self.endpoint))
        if command in ("upgrade", "downgrade", "check"):
            project.script  # noqa: B018 - import every revision file now: a broken one fails before any connection
        try:
            await self._connect(migrating=command in ("upgrade", "downgrade"))
            if command == "wait" or project is None:
                return Result("database accepts logins")
            if command in ("current", "check"):
                return await self._inspect(project, check=command == "check")
            return await self._migrate(project, downgrade=command == "downgrade")
        finally:
            await self._close()

    async def _inspect(self, project: Project, *, check: bool) -> Result:
        current = await self._current_revisions(before_lock=True)
        heads = project.heads()
        if not check:
            return Result(f"database at {_revs(current)}",
                          [f"{rev} (head)" if rev in heads else rev for rev in sorted(current)])
        if set(current) == set(heads):
            self.log.info("database_at_heads", revision=_revs(current))
            return Result(f"database at the heads ({_revs(current)})")
        unknown = alembic_env.check_revisions(project, "heads", current)
        if unknown:
            if self.settings.on_unknown_revision == "ignore":
                self.log.warning("database_ahead", unknown_revisions=unknown)
                return Result(f"database at {_revs(unknown)}, ahead of these revisions (ignored)")
            raise alembic_env.unknown_revision_error(unknown)
        raise PendingRevisions(f"database at {_revs(current)}, revision files at {_revs(heads)}",
                               hint="run `alembic-sidecar upgrade`")

    async def _migrate(self, project: Project, *, downgrade: bool) -> Result:
        settings = self.settings
        destination = settings.target
        current = await self._current_revisions(before_lock=True)
        finished = self._nothing_to_do(project, destination, current, downgrade)
        if finished is not None:
            return finished
        assert self.connection is not None
        self.lock = self.database.lock(self.connection, settings, self.endpoint, self.session_token)
        try:
            await locking.acquire(self.lock, self.lock_timeout)
        except (SidecarError, Signalled, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise self._fault_outside_revisions(exc, "waiting for the migration lock") from None
        self.locked = True
        # Another replica may have migrated while we waited for the lock.
        current = await self._current_revisions()
        finished = self._nothing_to_do(project, destination, current, downgrade)
        if finished is not None:
            return finished
        await self._set_migration_settings(project.bundled)
        self.reporter.send("plan", heads=sorted(project.heads()) if _to_heads(destination, downgrade) else None,
                           backend_id=self.backend_id)
        applied: list[AppliedStep] = []
        expected = await self._run_with_retries(project, destination, downgrade, current, applied)
        await self._make_durable(project.bundled)
        count = len(applied) if project.bundled else project.count_steps(current, expected)
        return Result("migrated", before=current, expected=expected, applied=count)

    async def _run_with_retries(self, project: Project, destination: str, downgrade: bool,
                                current: tuple[str, ...], applied: list[AppliedStep]) -> tuple[str, ...]:
        """Run Alembic; a revision that hit the DDL lock timeout is rolled back and retried where DDL is
        transactional, up to MIGRATE_DDL_LOCK_RETRIES times with jittered backoff."""
        retries = self.settings.ddl_lock_retries if self.database.TRANSACTIONAL_DDL else 0
        attempt = 0
        while True:
            try:
                return await self._run_alembic(project, destination, downgrade, current, applied)
            except TransientFault as fault:
                if fault.fault is not Fault.LOCK_TIMEOUT or attempt >= retries or not project.bundled:
                    raise
            attempt += 1
            delay = random.uniform(0, min(10.0, 0.5 * 2 ** attempt))
            self.log.warning("ddl_lock_retry", attempt=attempt, of=retries, delay_ms=round(delay * 1000),
                             revision_after=self.last_applied or _revs(current))
            await asyncio.sleep(delay)
            current = await self._current_revisions()

    # -- the migration itself ----------------------------------------------------------------------------------
    async def _run_alembic(self, project: Project, destination: str, downgrade: bool, current: tuple[str, ...],
                           applied: list[AppliedStep]) -> tuple[str, ...]:
        heads_after = list(current)

        def on_step(step: AppliedStep, heads: tuple[str, ...]) -> None:
            applied.append(step)
            heads_after[:] = heads
            self.last_applied = step.revision
            self.log.info("revision_applied" if step.upgrade else "revision_reverted", revision=step.revision,
                          description=step.description, duration_ms=step.duration_ms)
            self.reporter.send("step", revision=step.revision, heads=list(heads))

        def on_plan(paths: list[tuple[str, str]], table: str, schema: str | None) -> None:
            self.reporter.send("steps", steps=paths, table=table, schema=schema)

        options = {"transaction_per_migration": self.settings.transaction_per_migration,
                   "version_table": self.settings.version_table}
        if self.endpoint is not None and self.endpoint.backend == "sqlite":
            options["transactional_ddl"] = True  # the engine emits BEGIN itself (sqlite.make_ddl_transactional)
        connection = self.connection
        assert connection is not None
        self.migrating = True
        try:
            if project.bundled:
                await connection.commit()  # Alembic manages transactions only on a connection not in one
                with self._watchdog():
                    await connection.run_sync(lambda sync_connection: _guarded(
                        alembic_env.migrate, project, sync_connection, destination, downgrade=downgrade,
                        configure_options=options, on_step=on_step, on_plan=on_plan))
            else:
                await self._run_users_env(project, destination, downgrade, on_step, on_plan)
        except (SidecarError, Signalled, asyncio.CancelledError):
            raise
        except BaseException as exc:
            if self.watchdog_fired or self.database.classify(exc) is Fault.UNAVAILABLE:
                await self._abandon_connection()  # nothing to roll back on a dead session: the server does it
            else:
                await self._rollback_quietly()
            raise self._migration_failure(project, exc) from None
        finally:
            self.migrating = False
        return tuple(sorted(heads_after))

    async def _run_users_env(self, project: Project, destination: str, downgrade: bool, on_step: Any,
                             on_plan: Any) -> None:
        """The user's env.py may call asyncio.run(); run it where no event loop runs, in a daemon thread.

        The lock stays on our session until that thread has ended: a signal ends the whole process (the
        supervisor's child), and with it the user's sessions, before the lock session closes.
        """
        assert self.endpoint is not None
        config = project.alembic_config()
        if self.settings.database_url is not None or self.settings.db_driver is not None:
            rendered = self.endpoint.sqlalchemy_url().render_as_string(hide_password=False)
            config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if not done.done():
                done.set_result(None) if error is None else done.set_exception(_Escaped.wrap(error))

        def work() -> None:
            try:
                _guarded(alembic_env.migrate, project, None, destination, downgrade=downgrade,
                         on_step=lambda step, heads: loop.call_soon_threadsafe(on_step, step, heads),
                         on_plan=lambda *plan: loop.call_soon_threadsafe(on_plan, *plan))
            except BaseException as exc:  # handed to the event loop, which raises it
                loop.call_soon_threadsafe(finish, exc)
            else:
                loop.call_soon_threadsafe(finish, None)

        self.env_thread = threading.Thread(target=work, name="alembic-env", daemon=True)
        self.env_thread.start()
        while not done.done():
            # The lock session idles meanwhile: keep it busy enough that MySQL's wait_timeout does not end it.
            await asyncio.wait([done], timeout=HEARTBEAT_EVERY)
            if not done.done() and self.connection is not None:
                await self._bounded(self.connection.execute(text("SELECT 1")))
                await self.connection.commit()
        done.result()

    def _watchdog(self) -> Any:
        """With MIGRATE_STATEMENT_TIMEOUT, abort the socket of a statement the server has not answered in time."""
        return _StatementWatchdog(self) if self.settings.statement_timeout is not None else _Nothing()

    def _migration_failure(self, project: Project, exc: BaseException) -> SidecarError:
        original = exc.original if isinstance(exc, _Escaped) else exc
        culprit = revisions_file(original, project)
        where = f"revision file {culprit}" if culprit else "a revision"
        state = f"the database stays at {self.last_applied}" if self.last_applied else \
            "no revision of this run was recorded"
        fault = None if isinstance(exc, _Escaped) else self.database.classify(exc)
        if self.watchdog_fired:
            fault = Fault.UNAVAILABLE
        if isinstance(exc, _Escaped):
            reason = f"{type(original).__name__}{'(' + str(original) + ')' if str(original) else ''} " \
                     "ended the migration from revision code"
        else:
            reason = describe(exc) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {exc}"
        reason = reason.strip().splitlines()[0] if reason.strip() else type(original).__name__
        rolled_back = ("the revision in progress was rolled back" if self.database.TRANSACTIONAL_DDL else
                       "MySQL/MariaDB commit DDL implicitly, so statements of the interrupted revision that ran "
                       "before the fault may be applied")
        if fault is Fault.ACCESS:
            return AccessDenied(f"{where} was refused by the server: {reason}",
                                hint="grant the migration user the privileges the revision needs")
        if fault in TRANSIENT:
            what = _FAULT_TEXT[fault]
            if self.watchdog_fired:
                what = (f"the database did not answer within MIGRATE_STATEMENT_TIMEOUT + {CANCEL_MARGIN:g} s "
                        "(the network path is down or the server hangs)")
            resume = ("rerunning is safe" if self.database.TRANSACTIONAL_DDL else
                      "a rerun resumes after the last recorded revision")
            error = TransientFault(f"{what} while applying {culprit or 'a revision'}: {reason}",
                                   hint=f"{state}; {rolled_back}; {resume}")
            error.fault = fault
            return error
        if not self.database.TRANSACTIONAL_DDL:
            hint = (f"{state}; MySQL/MariaDB commit DDL implicitly, so statements of the failed revision that ran "
                    "before the error may be applied: inspect the schema before rerunning")
        elif fault is Fault.STATEMENT_TIMEOUT:
            hint = f"{state}; the failed revision was rolled back; raise MIGRATE_STATEMENT_TIMEOUT or fix it"
        else:
            hint = f"{state}; the failed revision was rolled back; fix it and rerun"
        return MigrationFailed(f"{where} failed: {reason}", hint=hint)

    # -- database helpers ----------------------------------------------------------------------------------------
    async def _bounded(self, work: Awaitable[T], seconds: float = OWN_STATEMENT_BOUND,
                       on_timeout: SidecarError | None = None) -> T:
        try:
            async with asyncio.timeout(seconds):
                return await work
        except TimeoutError:
            if self.connection is not None:
                await self._abandon_connection()
            if on_timeout is not None:
                raise on_timeout from None
            error = TransientFault(f"the database did not answer within {seconds:g} s",
                                   hint="the network path is down or the server hangs; rerunning is safe")
            error.fault = Fault.UNAVAILABLE
            raise error from None

    async def _connect(self, *, migrating: bool) -> None:
        assert self.endpoint is not None

        async def prepare(raw: Any) -> None:
            try:
                self.session_token = await self._bounded(self.database.prepare_session(
                    raw, self.settings, self.endpoint if migrating else None))
            except (SidecarError, Signalled, asyncio.CancelledError):
                raise
            except Exception as exc:
                if self.database.classify(exc) is Fault.UNAVAILABLE:
                    raise  # the login wait retries it
                raise self._fault_outside_revisions(exc, "preparing the session") from None

        self.engine, deadline = waiting.create_engine(self.endpoint, self.database, prepare)
        self.connection = await waiting.connect(self.engine, deadline, self.endpoint, self.database,
                                                self.wait_timeout)
        if not self.endpoint.is_server:
            return
        backend_id = "SELECT pg_backend_pid()" if self.endpoint.backend == "postgresql" else "SELECT CONNECTION_ID()"
        try:
            self.backend_id = (await self._bounded(self.connection.execute(text(backend_id)))).scalar()
            await self.connection.commit()
        except (SidecarError, Signalled, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise self._fault_outside_revisions(exc, "preparing the session") from None

    async def _current_revisions(self, *, before_lock: bool = False) -> tuple[str, ...]:
        """The version table's rows, through Alembic (quoting and schema as it created them)."""
        assert self.connection is not None
        from alembic.runtime.migration import MigrationContext

        table = self.settings.version_table

        def read(sync_connection: Any) -> tuple[str, ...]:
            context = MigrationContext.configure(sync_connection, opts={"version_table": table})
            return tuple(sorted(context.get_current_heads()))

        # Before the lock, a read that blocks waits for whoever locks the version table: that counts as lock wait.
        too_slow = None
        if before_lock:
            too_slow = LockTimeout(f"reading {table} took longer than MIGRATE_LOCK_TIMEOUT ({self.lock_timeout:g} s): "
                                   "another session locks it, or the server does not answer",
                                   hint="find the session that locks it, or raise MIGRATE_LOCK_TIMEOUT")
        bound = max(1.0, self.lock_timeout) if before_lock else OWN_STATEMENT_BOUND
        for attempt in (1, 2):
            try:
                rows = await self._bounded(self.connection.run_sync(read), bound, too_slow)
                await self.connection.commit()
                return rows
            except (SidecarError, Signalled, asyncio.CancelledError):
                raise
            except Exception as exc:
                await self._rollback_quietly()
                if attempt == 1 and _stale_statement(exc):
                    continue  # a revision altered the table: the driver's cached statement is stale
                fault = self.database.classify(exc)
                if fault is Fault.ACCESS:
                    raise AccessDenied(f"cannot read {table}: {describe(exc)}",
                                       hint="grant the migration user access to the database") from None
                if fault is None and not isinstance(exc, TimeoutError):
                    raise ConfigurationError(f"cannot read the version table {table}: {describe(exc)}",
                                             hint="MIGRATE_VERSION_TABLE must name Alembic's version table (or "
                                                  "a table that does not exist yet)") from None
                raise self._fault_outside_revisions(exc, f"reading {table}") from None
        raise AssertionError("unreachable")

    def _fault_outside_revisions(self, exc: BaseException, doing: str) -> SidecarError:
        fault = self.database.classify(exc)
        if fault in TRANSIENT:
            error = TransientFault(f"{_FAULT_TEXT[fault]} while {doing}: {describe(exc)}",
                                   hint="nothing was changed by this run; rerunning is safe")
            error.fault = fault
            return error
        return SidecarError(f"unexpected database error while {doing}: {describe(exc)}",
                            hint="please report this with the log")

    async def _set_migration_settings(self, bundled: bool) -> None:
        """Statement and lock timeouts, set after the migration lock so they do not cut the lock wait short."""
        connection = self.connection
        assert connection is not None
        is_mariadb = bool(getattr(connection.dialect, "is_mariadb", False))
        try:
            for statement in self.database.migration_settings(self.settings, is_mariadb=is_mariadb,
                                                              bundled=bundled):
                await self._bounded(connection.execute(text(statement)))
            await connection.commit()
        except (SidecarError, Signalled, asyncio.CancelledError):
            raise
        except Exception as exc:
            raise self._fault_outside_revisions(exc, "setting the migration's timeouts") from None

    async def _make_durable(self, bundled: bool) -> None:
        connection = self.connection
        if connection is None or not bundled or not self.settings.transaction_per_migration:
            return
        try:
            await self._bounded(self.database.make_durable(connection))
        except (Signalled, asyncio.CancelledError):
            raise
        except Exception as exc:
            # Committed, but perhaps not yet on disk: only the proof read after this can tell.
            self.log.warning("durable_commit_failed", reason=describe(exc) if not isinstance(exc, SidecarError)
                             else exc.message)

    async def _rollback_quietly(self) -> None:
        if self.connection is None or self.connection.invalidated:
            return
        try:
            async with asyncio.timeout(3):
                await self.connection.rollback()
        except Exception:
            await self._abandon_connection()

    async def _abandon_connection(self) -> None:
        """Drop a connection whose server stopped answering: close its socket without waiting for anyone."""
        connection, self.connection = self.connection, None
        if connection is None:
            return
        try:
            # Not get_raw_connection(): on an invalidated connection that would log in again, to a dead server.
            dbapi_connection = getattr(connection.sync_connection, "_dbapi_connection", None)
            raw = getattr(dbapi_connection, "driver_connection", None)
            terminate = getattr(raw, "terminate", None) or getattr(raw, "close", None)
            if terminate is not None:
                result = terminate()
                if asyncio.iscoroutine(result):
                    async with asyncio.timeout(1):
                        await result
        except Exception:
            pass
        self.locked = False  # the lock went with the session (or with the file descriptor at exit)

    def _nothing_to_do(self, project: Project, destination: str, current: tuple[str, ...],
                       downgrade: bool) -> Result | None:
        """The result when the database is at the target already or ahead of the files; None to migrate."""
        if not downgrade and _to_heads(destination, downgrade) and current and set(current) == set(project.heads()) \
                and (destination == "heads" or len(project.heads()) == 1):
            return Result("already there", before=current, expected=current)
        unknown = alembic_env.check_revisions(project, destination, current)
        if unknown:
            if self.settings.on_unknown_revision != "ignore":
                raise alembic_env.unknown_revision_error(unknown)
            self.log.warning("database_ahead", unknown_revisions=unknown,
                             hint="the database carries revisions this image does not know; nothing was changed")
            return Result("ahead", before=current, expected=current)
        return None

    def _history(self, project: Project) -> Result:
        lines = [script.cmd_format(verbose=False) for script in project.script.walk_revisions()]
        return Result("history listed", lines)

    def _sql(self, project: Project, fallback_url: str | None) -> Result:
        settings = self.settings
        if settings.database_url is None and settings.db_driver is not None and not settings.db_host:
            backend = settings.db_driver
        else:
            backend = endpoints.from_settings(settings, fallback_url=fallback_url).backend
        alembic_env.offline_sql(project, f"{backend}://", settings.sql_range or settings.target,
                                settings.version_table)
        return Result("SQL written")

    # -- shutdown -------------------------------------------------------------------------------------------------
    async def interrupt(self) -> None:
        """Called on SIGTERM/SIGINT: end the migrating session on the server, which rolls back and frees the lock."""
        if not (self.migrating and self.backend_id is not None and self.engine is not None):
            return
        if self.settings.alembic_config is not None:
            return  # the user's env.py migrates on sessions of its own, which end with this process
        statement = self.database.kill_statement(self.backend_id)
        if statement is None:
            return
        try:
            async with asyncio.timeout(3):
                killer = await self.database.connect(self.endpoint, 2.0)
                try:
                    await _execute_raw(killer, statement)
                finally:
                    await self.database.close(killer)
        except Exception as exc:  # the socket closing on exit still ends the session, only later
            self.log.warning("interrupt_cleanup_failed", reason=describe(exc))

    async def _close(self) -> None:
        """Release the lock and the connection; a session that is already gone took its server-side lock along."""
        if self.env_thread is not None and self.env_thread.is_alive():
            return  # a user's env.py may still run DDL: the lock goes only with this process, which ends it too
        try:
            async with asyncio.timeout(3):
                usable = self.connection is not None and not self.connection.invalidated
                # A session that is gone took its server-side lock along; SQLite's file lock is ours to drop.
                if self.locked and self.lock is not None and (usable or self.endpoint.backend == "sqlite"):
                    try:
                        if usable:
                            await self.connection.rollback()
                        await self.lock.release()
                    except Exception:
                        await self._abandon_connection()
                if self.connection is not None and not self.connection.invalidated:
                    await self.connection.close()
                else:
                    await self._abandon_connection()
                if self.engine is not None:
                    await self.engine.dispose()
        except Exception:
            await self._abandon_connection()  # the process is about to exit; the server ends the session


class _Escaped(Exception):
    """A BaseException (SystemExit, KeyboardInterrupt, GeneratorExit) from revision code, made an ordinary error."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original

    @classmethod
    def wrap(cls, error: BaseException) -> BaseException:
        if isinstance(error, (Exception, Signalled)):
            return error
        return cls(error)


def _guarded(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Revision code may raise anything; let only ordinary exceptions and our own signal through."""
    try:
        return function(*args, **kwargs)
    except (Exception, Signalled):
        raise
    except BaseException as exc:
        raise _Escaped(exc) from exc


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


class _StatementWatchdog:
    """Arms a timer around every revision statement; if the server neither answers nor cancels in time, the
    socket is aborted, so the statement fails at once instead of waiting on a dead path."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        assert runner.settings.statement_timeout is not None and runner.engine is not None
        self.bound = runner.settings.statement_timeout + CANCEL_MARGIN
        self.loop = asyncio.get_running_loop()
        self.timer: asyncio.TimerHandle | None = None
        self.sync_engine = runner.engine.sync_engine

    def __enter__(self) -> None:
        event.listen(self.sync_engine, "before_cursor_execute", self._arm)
        event.listen(self.sync_engine, "after_cursor_execute", self._disarm)
        event.listen(self.sync_engine, "handle_error", self._disarm_on_error)

    def __exit__(self, *exc: object) -> None:
        self._cancel()
        event.remove(self.sync_engine, "before_cursor_execute", self._arm)
        event.remove(self.sync_engine, "after_cursor_execute", self._disarm)
        event.remove(self.sync_engine, "handle_error", self._disarm_on_error)

    def _arm(self, connection: Any, cursor: Any, *args: Any) -> None:
        self._cancel()
        raw = connection.connection.driver_connection
        self.timer = self.loop.call_later(self.bound, self._abort, raw)

    def _disarm(self, *args: Any) -> None:
        self._cancel()

    def _disarm_on_error(self, context: Any) -> None:
        self._cancel()

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _abort(self, raw: Any) -> None:
        self.runner.watchdog_fired = True
        transport = getattr(raw, "_transport", None) or getattr(getattr(raw, "_writer", None), "transport", None)
        if transport is not None:
            transport.abort()


async def _execute_raw(connection: Any, statement: tuple[str, dict[str, int]]) -> None:
    sql, params = statement
    if hasattr(connection, "fetchval"):  # asyncpg
        await connection.fetchval(sql.replace(":id", "$1"), *params.values())
    else:
        async with connection.cursor() as cursor:
            await cursor.execute(sql)


def _stale_statement(exc: BaseException) -> bool:
    from .failures import causes

    return any(type(cause).__name__ in ("InvalidCachedStatementError", "InvalidCachePlanError")
               for cause in causes(exc))


def _to_heads(destination: str, downgrade: bool) -> bool:
    return not downgrade and destination in ("head", "heads")


def revisions_file(exc: BaseException, project: Project) -> str | None:
    for directory in project.versions_dirs:
        found = alembic_env.revisions._file_in_traceback(exc, directory)
        if found:
            return found
    return None


def _revs(revisions: Any) -> str:
    return ",".join(sorted(revisions)) if revisions else "base"
