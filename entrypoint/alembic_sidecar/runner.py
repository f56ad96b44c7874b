"""One run of a command, in the supervised child: connect, check, lock, migrate; returns what to report."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DBAPIError

from . import alembic_env, databases, drift, endpoint as endpoints, logs
from .alembic_env import AppliedStep, Project
from .errors import (AccessDenied, ConfigurationError, MigrationFailed, PendingRevisions, SidecarError, Signalled,
                     TransientFault)
from .failures import TRANSIENT, Fault, describe
from .guards import RevisionEscaped, StatementWatchdog, guarded
from .logs import get_logger
from .redaction import secret_forms
from .report import Reporter
from .session import FAULT_TEXT, OWN_STATEMENT_BOUND, Session
from .settings import Settings
from .users_sessions import UsersSessions

# How long past MIGRATE_STATEMENT_TIMEOUT the client waits for the server's cancel before it gives up on the socket.
CANCEL_MARGIN = 10.0
# A lock session that sits idle while a user's env.py migrates is pinged this often, so the server keeps it.
HEARTBEAT_EVERY = 20.0
# An exception message's lines are kept (a pydantic ValidationError names the field on its second line), joined on
# one log line and cut at this length.
REASON_LENGTH = 600


@dataclass
class Result:
    """What the command line reports: a summary line, and lines for stdout (current, heads, history)."""

    summary: str
    output: list[str] = field(default_factory=list)
    before: tuple[str, ...] | None = None  # set by upgrade and downgrade: what the parent must prove
    expected: tuple[str, ...] | None = None
    applied: int = 0


class Runner:
    """Holds the run's session so that a signal can stop the migration and free the lock."""

    def __init__(self, settings: Settings, reporter: Reporter | None = None, *, wait_timeout: float | None = None,
                 lock_timeout: float | None = None) -> None:
        self.settings = settings
        self.reporter = reporter or Reporter(None)
        self.wait_timeout = settings.wait_timeout if wait_timeout is None else wait_timeout
        self.lock_timeout = settings.lock_timeout if lock_timeout is None else lock_timeout
        self.log = get_logger()
        self.endpoint: endpoints.Endpoint | None = None
        self.database: Any = None
        self.session: Session | None = None
        self.migrating = False
        self.last_applied: str | None = None
        # What the database held when this attempt began, and the heads Alembic recorded since (None: not migrating).
        self.before: tuple[str, ...] | None = None
        self.recorded: tuple[str, ...] | None = None
        self.connection_lost = False  # the migration's session died: a read of the database would wait for nothing
        self.watchdog_fired = False
        self.env_thread: threading.Thread | None = None
        self.users_sessions: UsersSessions | None = None

    # -- commands --------------------------------------------------------------------------------------------
    async def run(self) -> Result:
        settings = self.settings
        command = settings.command
        if command == "downgrade" and not settings.allow_downgrade:
            raise ConfigurationError("downgrade is disabled", hint="set MIGRATE_ALLOW_DOWNGRADE=true to allow it")
        if settings.alembic_config is not None and command in ("upgrade", "downgrade"):
            _refuse_what_a_users_env_would_drop(settings)
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
        self.database = databases.driver_for(self.endpoint.backend)
        known = [secret for secret in (self.endpoint.password, self.endpoint.sslpassword) if secret]
        if known:  # from alembic.ini perhaps, which the settings never saw
            logs.add_secrets(secret_forms(known))
        # The supervisor proves the outcome with a login of its own, to the same place.
        self.reporter.send("endpoint", endpoint=dataclasses.asdict(self.endpoint))
        if command in ("upgrade", "downgrade", "check", "drift"):
            project.script  # noqa: B018 - import every revision file now: a broken one fails before any connection
        if command in ("upgrade", "downgrade"):
            project.metadata  # noqa: B018 - and MIGRATE_METADATA: a bad one fails before any connection or lock
        elif command == "drift":
            drift.require_metadata(project)
        self.session = Session(settings, self.endpoint, self.database, wait_timeout=self.wait_timeout,
                               lock_timeout=self.lock_timeout)
        try:
            await self.session.open(migrating=command in ("upgrade", "downgrade"))
            if command == "wait" or project is None:
                return Result("database accepts logins")
            if command in ("current", "check"):
                return await self._inspect(project, check=command == "check")
            if command == "drift":
                return await self._drift(project)
            return await self._migrate(project, downgrade=command == "downgrade")
        finally:
            if self.env_thread is None or not self.env_thread.is_alive():
                await self.session.close()
            # else a user's env.py may still run DDL: the lock goes only with this process, which ends it too

    async def _inspect(self, project: Project, *, check: bool) -> Result:
        assert self.session is not None
        current = await self.session.current_revisions(before_lock=True)
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

    async def _drift(self, project: Project) -> Result:
        """Compare the database with the models. No migration lock: the comparison writes nothing, and waiting for
        (or blocking) a deployment's migration would make a CI gate hang on production; a migration that lands
        meanwhile is caught by Alembic's own "at the heads" check when the comparison starts."""
        session = self.session
        assert session is not None and session.connection is not None
        current = await session.current_revisions(before_lock=True)
        unknown = alembic_env.check_revisions(project, "heads", current)
        if unknown:
            # MIGRATE_ON_UNKNOWN_REVISION=ignore does not apply: these files did not make this schema.
            raise alembic_env.unknown_revision_error(unknown)
        heads = project.heads()
        if set(current) != set(heads):
            raise PendingRevisions(f"database at {_revs(current)}, revision files at {_revs(heads)}: compare the "
                                   "models with a database at the heads", hint="run `alembic-sidecar upgrade` first")
        options = {"version_table": self.settings.version_table,
                   "version_table_schema": self.settings.version_table_schema}
        found: list[str] = []
        try:
            if project.bundled:
                # The catalog reads are the sidecar's own statements: each gets their bound.
                with StatementWatchdog(session.engine, self.database, OWN_STATEMENT_BOUND, self._watchdog_fired):
                    found = await session.connection.run_sync(
                        lambda sync_connection: guarded(drift.differences, project, sync_connection, options))
            else:
                def compare() -> None:
                    found[:] = drift.differences(project, None)

                await self._in_users_env(project, compare)
        except (SidecarError, Signalled, asyncio.CancelledError):
            raise
        except BaseException as exc:
            original = exc.original if isinstance(exc, RevisionEscaped) else exc
            if self.watchdog_fired or self.database.classify(original) is Fault.UNAVAILABLE:
                await session.abandon()
            else:
                await session.rollback_quietly()
            raise drift.failure(original, self.database, project, timed_out=self.watchdog_fired) from None
        if found:
            self.log.warning("drift", differences=found, count=len(found))
            raise drift.drift_error(found)
        self.log.info("no_drift", revision=_revs(current))
        return Result(f"database at the heads ({_revs(current)}) and matching the models")

    async def _migrate(self, project: Project, *, downgrade: bool) -> Result:
        session = self.session
        assert session is not None
        destination = self.settings.target
        current = await session.current_revisions(before_lock=True)
        finished = self._nothing_to_do(project, destination, current, downgrade)
        if finished is not None:
            return finished
        await session.acquire_lock()
        # Another replica may have migrated while we waited for the lock.
        current = await session.current_revisions()
        finished = self._nothing_to_do(project, destination, current, downgrade)
        if finished is not None:
            return finished
        await session.set_migration_settings(project.bundled)
        self.reporter.send("plan", heads=sorted(project.heads()) if _to_heads(destination, downgrade) else None,
                           targets=None if downgrade else _named_targets(project, destination), before=current)
        applied: list[AppliedStep] = []
        expected = await self._run_with_retries(project, destination, downgrade, current, applied)
        if project.bundled and self.settings.transaction_per_migration:
            await session.make_durable()
        # Alembic's on_version_apply hook heard every step, in the bundled env.py and in a user's alike; a revision
        # retried after a rollback counts once.
        count = len({step.revision for step in applied})
        return Result("migrated", before=current, expected=expected, applied=count)

    async def _run_with_retries(self, project: Project, destination: str, downgrade: bool,
                                current: tuple[str, ...], applied: list[AppliedStep]) -> tuple[str, ...]:
        """Run Alembic; a revision that hit the DDL lock timeout is rolled back and retried where DDL is
        transactional, up to MIGRATE_DDL_LOCK_RETRIES times with jittered backoff."""
        assert self.session is not None
        retries = self.settings.ddl_lock_retries if self.database.transactional_ddl else 0
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
            current = await self.session.current_revisions()

    # -- the migration itself ----------------------------------------------------------------------------------
    async def _run_alembic(self, project: Project, destination: str, downgrade: bool, current: tuple[str, ...],
                           applied: list[AppliedStep]) -> tuple[str, ...]:
        session = self.session
        assert session is not None and session.connection is not None and session.engine is not None
        heads_after = list(current)
        self.before, self.recorded = current, None

        def on_step(step: AppliedStep, heads: tuple[str, ...]) -> None:
            applied.append(step)
            heads_after[:] = heads
            self.last_applied = step.revision
            self.recorded = tuple(sorted(heads))
            self.log.info("revision_applied" if step.upgrade else "revision_reverted", revision=step.revision,
                          description=step.description, duration_ms=step.duration_ms)
            self.reporter.send("step", revision=step.revision, heads=list(heads))

        def on_plan(paths: list[tuple[str, str]], table: str, schema: str | None) -> None:
            self.reporter.send("steps", steps=paths, table=table, schema=schema)

        options = {"transaction_per_migration": self.settings.transaction_per_migration,
                   "version_table": self.settings.version_table,
                   "version_table_schema": self.settings.version_table_schema}
        if self.endpoint is not None:
            options.update(self.database.alembic_options())
        statement_bound = (self.settings.statement_timeout + CANCEL_MARGIN
                           if self.settings.statement_timeout is not None else None)
        connection = session.connection
        self.migrating = True
        try:
            if project.bundled:
                await connection.commit()  # Alembic manages transactions only on a connection not in one
                with StatementWatchdog(session.engine, self.database, statement_bound, self._watchdog_fired):
                    await connection.run_sync(lambda sync_connection: guarded(
                        alembic_env.migrate, project, sync_connection, destination, downgrade=downgrade,
                        configure_options=options, on_step=on_step, on_plan=on_plan))
            else:
                await self._run_users_env(project, destination, downgrade, on_step, on_plan)
        except (SidecarError, Signalled, asyncio.CancelledError):
            raise
        except BaseException as exc:
            if self.watchdog_fired or self.database.classify(exc) is Fault.UNAVAILABLE:
                self.connection_lost = True
                await session.abandon()  # nothing to roll back on a dead session: the server does it
            else:
                await session.rollback_quietly()
            raise self._migration_failure(project, exc) from None
        finally:
            self.migrating = False
        return tuple(sorted(heads_after))

    def _watchdog_fired(self) -> None:
        self.watchdog_fired = True

    async def _run_users_env(self, project: Project, destination: str, downgrade: bool, on_step: Any,
                             on_plan: Any) -> None:
        loop = asyncio.get_running_loop()

        def migrate() -> None:
            guarded(alembic_env.migrate, project, None, destination, downgrade=downgrade,
                    on_step=lambda step, heads: loop.call_soon_threadsafe(on_step, step, heads),
                    on_plan=lambda *plan: loop.call_soon_threadsafe(on_plan, *plan))

        await self._in_users_env(project, migrate)

    async def _in_users_env(self, project: Project, run_env: Callable[[], None]) -> None:
        """The user's env.py may call asyncio.run(): ``run_env`` runs it where no event loop runs, in a daemon thread.

        Its sessions get the run's timeouts and liveness bounds as they connect (UsersSessions). The lock stays on
        our session until that thread has ended: on a signal, ``interrupt`` ends those sessions on the server
        first, and the lock goes only with this process.
        """
        assert self.endpoint is not None and self.session is not None
        config = project.alembic_config()
        # Always the URL of the driver this image ships, even when it came from the ini: `alembic init` users write
        # postgresql:// (psycopg) or mysql+pymysql://, which would otherwise need a second driver in the image.
        rendered = self.endpoint.sqlalchemy_url().render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        from .tls import hand_to_users_engines

        hand_to_users_engines(self.endpoint, self.database)  # the env.py's engines log in with our TLS
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if not done.done():
                done.set_result(None) if error is None else done.set_exception(RevisionEscaped.wrap(error))

        def work() -> None:
            # A sync env.py's first connect on the async driver is closed unawaited (MissingGreenlet, below): its
            # RuntimeWarning would be printed raw on stderr, the one line of the run that is not JSON.
            warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited", RuntimeWarning)
            try:
                try:
                    run_env()
                except Exception as exc:
                    if not _needs_greenlet(exc):
                        raise
                    # A sync env.py (`alembic init`) on the async driver this image ships: its first connect failed
                    # before anything ran. Run it again inside greenlet_spawn, which is how AsyncEngine drives the
                    # same dialect, so no second (sync) driver is needed.
                    from sqlalchemy.util.concurrency import greenlet_spawn

                    asyncio.run(greenlet_spawn(run_env))
            except BaseException as exc:  # handed to the event loop, which raises it
                loop.call_soon_threadsafe(finish, exc)
            else:
                loop.call_soon_threadsafe(finish, None)

        is_mariadb = bool(getattr(self.session.connection.dialect, "is_mariadb", False))
        self.users_sessions = UsersSessions(self.database, self.database.users_session_settings(
            self.settings, self.endpoint, is_mariadb=is_mariadb))
        with self.users_sessions:
            self.env_thread = threading.Thread(target=work, name="alembic-env", daemon=True)
            self.env_thread.start()
            while not done.done():
                await asyncio.wait([done], timeout=HEARTBEAT_EVERY)
                if not done.done():
                    await self.session.heartbeat()
        done.result()

    def failure_state(self) -> str | None:
        """What this process can tell the database holds after a failed migration; None when none began.

        The supervisor replaces these words with what its own read of the version table shows; they stand only
        when that read fails.
        """
        if self.before is None:
            return None
        if self.recorded is None:
            return f"the database is at {_revs(self.before)}, where this run found it"
        bundled = self.settings.alembic_config is None
        if bundled and self.database.transactional_ddl and not self.settings.transaction_per_migration:
            return f"the database is at {_revs(self.before)}, where this run found it (one transaction, rolled back)"
        if bundled and self.settings.transaction_per_migration:
            return f"the database is at {_revs(self.recorded)}"
        return f"this run last recorded {_revs(self.recorded)}, which a rollback may have undone"

    def _migration_failure(self, project: Project, exc: BaseException) -> SidecarError:
        escaped = isinstance(exc, RevisionEscaped)
        original = exc.original if escaped else exc
        culprit = revisions_file(original, project)
        where = f"revision file {culprit}" if culprit else "a revision"
        state = self.failure_state() or "no revision of this run was recorded"
        fault = Fault.UNAVAILABLE if self.watchdog_fired else None if escaped else self.database.classify(exc)
        if escaped:
            said = _one_line(str(original))
            reason = f"{type(original).__name__}{f'({said})' if said else ''} ended the migration from revision code"
        elif isinstance(exc, DBAPIError):
            reason = describe(exc)
        else:
            # SQLAlchemy's own messages go on with the statement and its parameters: their first line says it.
            said = _one_line(str(exc), every_line=not type(exc).__module__.startswith("sqlalchemy"))
            reason = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
        if fault is Fault.ACCESS:
            return AccessDenied(f"{where} was refused by the server: {reason}",
                                hint="grant the migration user the privileges the revision needs")
        env_py = None if project.bundled or culprit else alembic_env.revisions._file_in_traceback(
            original, project.script.dir)
        if env_py and fault not in TRANSIENT:
            # The user's env.py itself failed (an import, a driver, its URL): no revision is to blame, and unless a
            # revision ran first, nothing changed that needs saying.
            fix = "fix env.py or what it imports (MIGRATE_PYTHONPATH), its driver or its sqlalchemy.url"
            return ConfigurationError(f"your env.py failed at {env_py}: {reason}",
                                      hint=f"{state}; {fix}" if self.recorded is not None else fix)
        transactional = self.database.transactional_ddl
        if fault in TRANSIENT:
            what = FAULT_TEXT[fault]
            if self.watchdog_fired:
                what = (f"the database did not answer within MIGRATE_STATEMENT_TIMEOUT + {CANCEL_MARGIN:g} s "
                        "(the network path is down or the server hangs)")
            rolled_back = ("the revision in progress was rolled back; rerunning is safe" if transactional else
                           f"{self.database.ddl_rollback_note}, so statements of the interrupted revision that ran "
                           "before the fault may be applied; a rerun resumes after the last recorded revision")
            error = TransientFault(f"{what} while applying {culprit or 'a revision'}: {reason}",
                                   hint=f"{state}; {rolled_back}")
            error.fault = fault
            return error
        if not transactional:
            hint = (f"{state}; {self.database.ddl_rollback_note}, so statements of the failed revision that ran "
                    "before the error may be applied: inspect the schema before rerunning")
        elif fault is Fault.STATEMENT_TIMEOUT:
            hint = f"{state}; the failed revision was rolled back; raise MIGRATE_STATEMENT_TIMEOUT or fix it"
        else:
            hint = f"{state}; the failed revision was rolled back; fix it and rerun"
        return MigrationFailed(f"{where} failed: {reason}", hint=hint)

    def _nothing_to_do(self, project: Project, destination: str, current: tuple[str, ...],
                       downgrade: bool) -> Result | None:
        """The result when the database is at the target already or ahead of the files; None to migrate."""
        heads = project.heads()
        if _to_heads(destination, downgrade) and current and set(current) == set(heads) \
                and (destination == "heads" or len(heads) == 1):
            return Result("already there", before=current, expected=current)
        unknown = alembic_env.check_revisions(project, destination, current)
        if unknown:
            if self.settings.on_unknown_revision != "ignore":
                raise alembic_env.unknown_revision_error(unknown)
            self.log.warning("database_ahead", unknown_revisions=unknown,
                             hint="the database carries revisions this image does not know; nothing was changed")
            return Result("ahead", before=current, expected=current)
        if alembic_env.steps_to(project, destination, current, downgrade=downgrade):
            return None
        # Alembic has nothing to run: the database is at the target, or an upgrade's target lies below it.
        named = alembic_env.resolve(project, destination)
        if not downgrade and named and not set(named) <= set(current):
            self.log.info("database_past_target", revision=_revs(current), target=destination)
            return Result("past the target", before=current, expected=current)
        return Result("already there", before=current, expected=current)

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
                                settings.version_table, settings.version_table_schema)
        return Result("SQL written")

    async def interrupt(self) -> None:
        """Called on SIGTERM/SIGINT: end the migrating session on the server, which rolls back and frees the lock."""
        if not self.migrating or self.session is None:
            return
        if self.settings.alembic_config is not None:
            # The user's env.py migrates on sessions of its own: end them on the server before the lock can go.
            if self.users_sessions is not None:
                await self.session.kill(self.users_sessions.running())
            return
        await self.session.kill()


def _refuse_what_a_users_env_would_drop(settings: Settings) -> None:
    """A user's env.py decides its own transactions: a revision cannot be retried from outside them."""
    if settings.ddl_lock_retries:
        raise ConfigurationError("MIGRATE_DDL_LOCK_RETRIES cannot retry a revision inside your own env.py's "
                                 "transactions (ALEMBIC_CONFIG)",
                                 hint="unset it; MIGRATE_DDL_LOCK_TIMEOUT still bounds the wait (exit 9, safe to "
                                      "retry the whole run)")


def revisions_file(exc: BaseException, project: Project) -> str | None:
    for directory in project.versions_dirs:
        found = alembic_env.revisions._file_in_traceback(exc, directory)
        if found:
            return found
    return None


def _named_targets(project: Project, destination: str) -> list[str] | None:
    """The revision ids a named upgrade target resolves to (partial ids, branch labels), before any revision runs."""
    if destination in ("head", "heads", "base") or destination.startswith(("+", "-")) or "@" in destination:
        return None
    return sorted(script.revision for script in project.script.get_revisions(destination) if script is not None)


def _one_line(text: str, *, every_line: bool = True) -> str:
    """An exception's message on one line: its lines joined with " | " (or the first only), cut to REASON_LENGTH;
    secrets are masked before the cut, which could leave half of one that no longer matches."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    joined = logs.redacted(" | ".join(lines if every_line else lines[:1]))
    return joined if len(joined) <= REASON_LENGTH else joined[:REASON_LENGTH - 1] + "…"


def _needs_greenlet(exc: BaseException) -> bool:
    from .failures import causes

    return any(type(cause).__name__ == "MissingGreenlet" for cause in causes(exc))


def _to_heads(destination: str, downgrade: bool) -> bool:
    return not downgrade and destination in ("head", "heads")


def _revs(revisions: Any) -> str:
    return ",".join(sorted(revisions)) if revisions else "base"
