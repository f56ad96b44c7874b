"""One run of a command: wait for the database, lock, check, migrate, release; returns what to report."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import alembic_env, database_url, failures, locking, logs, waiting
from .alembic_env import AppliedStep, Project
from .errors import AccessDenied, ConfigurationError, MigrationFailed, PendingRevisions, SidecarError
from .logs import get_logger
from .settings import Settings

@dataclass
class Result:
    """What the command line reports: a summary line, and lines for stdout (current, heads, history)."""

    summary: str
    output: list[str] = field(default_factory=list)


class Runner:
    """Holds the run's connection and lock so that a signal can stop the migration and free both."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.log = get_logger()
        self.target: database_url.DatabaseTarget | None = None
        self.engine: AsyncEngine | None = None
        self.connection: AsyncConnection | None = None
        self.lock: locking.Lock | None = None
        self.locked = False
        self.backend_id: int | None = None
        self.migrating = False
        self.last_applied: str | None = None

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
        self.target = database_url.resolve(settings, fallback_url=fallback_url)
        if command in ("upgrade", "downgrade", "check"):
            project.script  # noqa: B018 - import every revision file now: a broken one fails before any connection
        try:
            await self._connect()
            if command == "wait" or project is None:
                return Result("database accepts logins")
            if command in ("current", "check"):
                return await self._inspect(project, check=command == "check")
            return await self._migrate(project, downgrade=command == "downgrade")
        finally:
            await self._close()

    async def _inspect(self, project: Project, *, check: bool) -> Result:
        current = await self._current_revisions()
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
        settings, started = self.settings, time.monotonic()
        destination = settings.target
        current = await self._current_revisions()
        finished = self._nothing_to_do(project, destination, current, downgrade, started)
        if finished is not None:
            return finished
        assert self.connection is not None
        self.lock = locking.lock_for(self.connection, settings.lock_name)
        await locking.acquire(self.lock, settings.lock_timeout)
        self.locked = True
        # Another replica may have migrated while we waited for the lock.
        current = await self._current_revisions()
        finished = self._nothing_to_do(project, destination, current, downgrade, started)
        if finished is not None:
            return finished
        await self._set_session_timeouts()
        applied: list[AppliedStep] = []
        try:
            await self._run_alembic(project, destination, downgrade, applied)
        finally:
            await self._make_commits_durable()
        after = await self._current_revisions()
        # The user's env.py does not report steps to us: count them on the revision graph instead.
        count = len(applied) if project.bundled else project.count_steps(current, after)
        return self._complete(current, after, count, started)

    # -- the migration itself ----------------------------------------------------------------------------------
    async def _run_alembic(self, project: Project, destination: str, downgrade: bool,
                           applied: list[AppliedStep]) -> None:
        def on_step(step: AppliedStep) -> None:
            applied.append(step)
            self.last_applied = step.revision
            self.log.info("revision_applied" if step.upgrade else "revision_reverted", revision=step.revision,
                          description=step.description, duration_ms=step.duration_ms)

        options = {"transaction_per_migration": self.settings.transaction_per_migration,
                   "version_table": self.settings.version_table}
        if self.connection is not None and self.connection.dialect.name == "sqlite":
            options["transactional_ddl"] = True  # the engine emits BEGIN itself (waiting.create_engine)
        assert self.connection is not None
        self.migrating = True
        try:
            if project.bundled:
                await self.connection.commit()  # Alembic manages transactions only on a connection not in one
                await self.connection.run_sync(
                    lambda sync_connection: alembic_env.migrate(
                        project, sync_connection, destination, downgrade=downgrade,
                        configure_options=options, on_step=on_step))
            else:
                await self._run_users_env(project, destination, downgrade)
        except SidecarError:
            raise
        except Exception as exc:
            raise self._migration_failure(project, exc) from None
        finally:
            self.migrating = False

    async def _run_users_env(self, project: Project, destination: str, downgrade: bool) -> None:
        """The user's env.py may call asyncio.run(); run it where no event loop runs, in a daemon thread."""
        assert self.target is not None
        config = project.alembic_config()
        if self.settings.database_url is not None or self.settings.db_driver is not None:
            rendered = self.target.url.render_as_string(hide_password=False)
            config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def work() -> None:
            try:
                alembic_env.migrate(project, None, destination, downgrade=downgrade)
            except BaseException as exc:  # handed to the event loop, which raises it
                loop.call_soon_threadsafe(lambda error=exc: done.done() or done.set_exception(error))
            else:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        # A daemon thread, so that an interrupted run can exit without waiting for the user's env.py.
        threading.Thread(target=work, name="alembic-env", daemon=True).start()
        await done

    def _migration_failure(self, project: Project, exc: Exception) -> SidecarError:
        reason = failures.describe(exc) if isinstance(exc, DBAPIError) else f"{type(exc).__name__}: {exc}"
        reason = reason.strip().splitlines()[0] if reason.strip() else type(exc).__name__
        culprit = revisions_file(exc, project)
        where = f"revision file {culprit}" if culprit else "a revision"
        state = f"the database stays at {self.last_applied}" if self.last_applied else \
            "no revision of this run was recorded"
        if failures.is_access_denied(exc):
            return AccessDenied(f"{where} was refused by the server: {reason}",
                                hint="grant the migration user the privileges the revision needs")
        if self.target is not None and self.target.backend in ("mysql", "mariadb"):
            hint = (f"{state}; MySQL/MariaDB commit DDL implicitly, so statements of the failed revision that ran "
                    "before the error may be applied: inspect the schema before rerunning")
        elif failures.sqlstate(exc) == "57014":
            hint = f"{state}; the failed revision was rolled back; raise MIGRATE_STATEMENT_TIMEOUT or fix it"
        else:
            hint = f"{state}; the failed revision was rolled back; fix it and rerun"
        return MigrationFailed(f"{where} failed: {reason}", hint=hint)

    # -- database helpers ----------------------------------------------------------------------------------------
    async def _connect(self) -> None:
        assert self.target is not None
        self.engine = waiting.create_engine(self.target)
        self.connection = await waiting.connect(self.engine, self.target, self.settings.wait_timeout)
        dialect = self.connection.dialect.name
        if dialect == "postgresql":
            row = (await self.connection.execute(text(
                "SELECT pg_backend_pid(), current_setting('server_version_num')::int"))).one()
            self.backend_id = row[0]
            if row[1] >= 140000:
                # If this process is killed mid-statement, the server notices within 2 s and frees the lock.
                await self.connection.execute(text("SET client_connection_check_interval = 2000"))
            await self.connection.commit()
        elif dialect in ("mysql", "mariadb"):
            self.backend_id = (await self.connection.execute(text("SELECT CONNECTION_ID()"))).scalar()
            await self.connection.commit()

    async def _current_revisions(self) -> tuple[str, ...]:
        assert self.connection is not None
        table = self.settings.version_table
        if self.connection.dialect.name == "postgresql":
            # Ask first, so a fresh database does not leave "relation does not exist" errors in the server log.
            exists = (await self.connection.execute(text("SELECT to_regclass(:t)"), {"t": table})).scalar()
            if exists is None:
                await self.connection.commit()
                return ()
        try:
            rows = (await self.connection.execute(text(f"SELECT version_num FROM {table}"))).scalars().all()
        except DBAPIError as exc:
            await self.connection.rollback()
            if failures.is_undefined_table(exc):
                return ()
            if failures.is_access_denied(exc):
                raise AccessDenied(f"cannot read {table}: {failures.describe(exc)}",
                                   hint="grant the migration user access to the database") from None
            raise
        await self.connection.commit()
        return tuple(sorted(rows))

    async def _set_session_timeouts(self) -> None:
        """Statement and lock timeouts, set after the migration lock so they do not cut the lock wait short."""
        settings, connection = self.settings, self.connection
        assert connection is not None
        statements: list[str] = []
        dialect = connection.dialect.name
        if dialect == "postgresql":
            if settings.transaction_per_migration and self.settings.alembic_config is None:
                # Each revision still commits atomically; only the wait for the disk is deferred to one final
                # durable commit (_make_commits_durable), which saves a WAL flush per revision.
                statements.append("SET synchronous_commit = off")
            if settings.statement_timeout is not None:
                statements.append(f"SET statement_timeout = '{round(settings.statement_timeout * 1000)}ms'")
            if settings.ddl_lock_timeout is not None:
                statements.append(f"SET lock_timeout = '{round(settings.ddl_lock_timeout * 1000)}ms'")
        elif dialect in ("mysql", "mariadb"):
            if settings.statement_timeout is not None:
                if getattr(connection.dialect, "is_mariadb", False):
                    statements.append(f"SET SESSION max_statement_time = {settings.statement_timeout:g}")
                else:
                    statements.append(f"SET SESSION max_execution_time = {round(settings.statement_timeout * 1000)}")
            if settings.ddl_lock_timeout is not None:
                seconds = max(1, round(settings.ddl_lock_timeout))
                statements.append(f"SET SESSION lock_wait_timeout = {seconds}")
                statements.append(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
        elif dialect == "sqlite" and settings.ddl_lock_timeout is not None:
            statements.append(f"PRAGMA busy_timeout = {round(settings.ddl_lock_timeout * 1000)}")
        for statement in statements:
            await connection.execute(text(statement))
        await connection.commit()

    async def _make_commits_durable(self) -> None:
        """One synchronous commit flushes the WAL up to it, so every revision committed before is on disk too."""
        connection = self.connection
        if connection is None or connection.dialect.name != "postgresql" or self.settings.alembic_config:
            return
        if not self.settings.transaction_per_migration or connection.invalidated or self.migrating:
            return
        try:
            await connection.rollback()
            await connection.execute(text("SET synchronous_commit = on"))
            await connection.execute(text("SELECT txid_current()"))  # a transaction id makes the commit flush
            await connection.commit()
        except Exception as exc:  # the session died: what was committed stays committed, rerunning is safe
            self.log.warning("durable_commit_failed", reason=failures.describe(exc))

    def _nothing_to_do(self, project: Project, destination: str, current: tuple[str, ...], downgrade: bool,
                       started: float) -> Result | None:
        """The result when the database is at the target already or ahead of the files; None to migrate."""
        if not downgrade and self._at_heads(project, destination, current):
            return self._complete(current, current, 0, started)
        unknown = alembic_env.check_revisions(project, destination, current)
        if unknown:
            return self._on_unknown(unknown, current, started)
        return None

    def _at_heads(self, project: Project, destination: str, current: tuple[str, ...]) -> bool:
        if destination not in ("head", "heads") or not current:
            return False
        heads = project.heads()
        return set(current) == set(heads) and (destination == "heads" or len(heads) == 1)

    def _on_unknown(self, unknown: list[str], current: tuple[str, ...], started: float) -> Result:
        if self.settings.on_unknown_revision != "ignore":
            raise alembic_env.unknown_revision_error(unknown)
        self.log.warning("database_ahead", unknown_revisions=unknown,
                         hint="the database carries revisions this image does not know; nothing was changed")
        return self._complete(current, current, 0, started)

    def _complete(self, before: tuple[str, ...], after: tuple[str, ...], applied: int, started: float) -> Result:
        return Result(logs.migration_complete(before, after, applied, started))

    def _history(self, project: Project) -> Result:
        lines = [script.cmd_format(verbose=False) for script in project.script.walk_revisions()]
        return Result("history listed", lines)

    def _sql(self, project: Project, fallback_url: str | None) -> Result:
        settings = self.settings
        if settings.database_url is None and settings.db_driver is not None and not settings.db_host:
            url = database_url.URL.create(settings.db_driver if settings.db_driver != "mariadb" else "mariadb")
        else:
            url = database_url.resolve(settings, fallback_url=fallback_url).url
        alembic_env.offline_sql(project, url.set(drivername=url.get_backend_name()).render_as_string(
            hide_password=True), settings.sql_range or settings.target, settings.version_table)
        return Result("SQL written")

    # -- shutdown -------------------------------------------------------------------------------------------------
    async def interrupt(self) -> None:
        """Called on SIGTERM/SIGINT: end the migrating session on the server, which rolls back and frees the lock."""
        if not (self.migrating and self.backend_id is not None and self.engine is not None):
            return
        if self.settings.alembic_config is not None:
            return  # the user's env.py migrates on a session of its own; ours only holds the lock until we exit
        statement = {"postgresql": "SELECT pg_terminate_backend(:id)"}.get(self.engine.dialect.name,
                                                                          f"KILL {int(self.backend_id)}")
        try:
            async with asyncio.timeout(3):
                async with self.engine.connect() as killer:
                    await killer.execute(text(statement), {"id": self.backend_id})
        except Exception as exc:  # the socket closing on exit still ends the session, only later
            self.log.warning("interrupt_cleanup_failed", reason=failures.describe(exc))

    async def _close(self) -> None:
        """Release the lock and the connection; a session that is already gone took its server-side lock along."""
        try:
            async with asyncio.timeout(3):
                if self.locked and self.lock is not None:
                    try:
                        if self.connection is not None:
                            await self.connection.rollback()
                        await self.lock.release()
                    except Exception:
                        if self.connection is not None:
                            await self.connection.invalidate()
                if self.connection is not None:
                    await self.connection.close()
                if self.engine is not None:
                    await self.engine.dispose()
        except Exception:
            pass  # the process is about to exit; the server ends the session, the kernel drops a file lock


def revisions_file(exc: BaseException, project: Project) -> str | None:
    for directory in project.versions_dirs:
        found = alembic_env.revisions._file_in_traceback(exc, directory)
        if found:
            return found
    return None


def _revs(revisions: Any) -> str:
    return ",".join(sorted(revisions)) if revisions else "base"
