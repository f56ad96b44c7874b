"""`upgrade` and `downgrade`: check, lock, migrate, retry a revision that hit the DDL lock timeout."""

from __future__ import annotations

import asyncio
import random

from .. import alembic_env
from ..alembic_env import AppliedStep, Project
from ..errors import ConfigurationError, SidecarError, Signalled, TransientFault
from ..failures import Fault
from ..guards import StatementWatchdog, guarded
from ..logs import get_logger
from ..report import Plan, Step, Steps
from ..settings import Settings
from ..users_env import run_users_env
from . import Context, Result, report_revisions, revs
from .applied import Adoption, recorder, settle, settle_at_rest
from .migration_failure import CANCEL_MARGIN, migration_failure

AHEAD = "ahead"


def refuse_upgrade(settings: Settings) -> None:
    if settings.alembic_config is not None:
        _refuse_what_a_users_env_would_drop(settings)


def refuse_downgrade(settings: Settings) -> None:
    if not settings.allow_downgrade:
        raise ConfigurationError("downgrade is disabled", hint="set MIGRATE_ALLOW_DOWNGRADE=true to allow it")
    refuse_upgrade(settings)


def prepare(project: Project) -> None:
    project.script  # noqa: B018 - import every revision file now: a broken one fails before any connection
    project.metadata  # noqa: B018 - and MIGRATE_METADATA: a bad one fails before any connection or lock


async def upgrade(context: Context) -> Result:
    return await _migrate(context, downgrade=False)


async def downgrade(context: Context) -> Result:
    return await _migrate(context, downgrade=True)


async def _migrate(context: Context, *, downgrade: bool) -> Result:
    session, project = context.session, context.project
    assert session is not None and project is not None
    destination = context.settings.target
    current = await session.current_revisions(before_lock=True)
    if not downgrade:
        report_revisions(context, current)
    finished = _nothing_to_do(context, destination, current, downgrade)
    if finished is not None:
        return await _settled(context, finished, current, locked=False)
    await session.acquire_lock()
    # Another replica may have migrated while we waited for the lock.
    current = await session.current_revisions()
    if not downgrade:
        report_revisions(context, current)
    finished = _nothing_to_do(context, destination, current, downgrade)
    if finished is not None:
        return await _settled(context, finished, current, locked=True)
    # Before anything is applied: the history compared (MIGRATE_VERIFY_HISTORY=strict: exit 12 on a change).
    findings, adoption = await settle(context, current)
    await session.set_migration_settings(project.bundled)
    context.reporter.send(Plan(heads=tuple(sorted(project.heads())) if _to_heads(destination, downgrade) else None,
                               targets=None if downgrade else _named_targets(project, destination), before=current))
    applied: list[AppliedStep] = []
    expected = await _run_with_retries(context, destination, downgrade, current, applied, adoption)
    if project.bundled and context.settings.transaction_per_migration:
        await session.make_durable()
    # Alembic's on_version_apply hook heard every step, in the bundled env.py and in a user's alike; a revision
    # retried after a rollback counts once.
    count = len({step.revision for step in applied})
    return Result("migrated", before=current, expected=expected, applied=count, findings=findings)


async def _settled(context: Context, finished: Result, current: tuple[str, ...], *, locked: bool) -> Result:
    """Nothing to apply: the history is still adopted and compared, unless the database is ahead of the files."""
    if finished.summary != AHEAD:
        finished.findings = await settle_at_rest(context, current, locked=locked)
    return finished


async def _run_with_retries(context: Context, destination: str, downgrade: bool, current: tuple[str, ...],
                            applied: list[AppliedStep], adoption: Adoption | None) -> tuple[str, ...]:
    """Run Alembic; a revision that hit the DDL lock timeout is rolled back and retried where DDL is
    transactional, up to MIGRATE_DDL_LOCK_RETRIES times with jittered backoff."""
    assert context.session is not None and context.project is not None
    retries = context.settings.ddl_lock_retries if context.database.transactional_ddl else 0
    attempt = 0
    while True:
        try:
            return await _run_alembic(context, destination, downgrade, current, applied, adoption)
        except TransientFault as fault:
            if fault.fault is not Fault.LOCK_TIMEOUT or attempt >= retries or not context.project.bundled:
                raise
        attempt += 1
        delay = random.uniform(0, min(10.0, 0.5 * 2 ** attempt))
        get_logger().warning("ddl_lock_retry", attempt=attempt, of=retries, delay_ms=round(delay * 1000),
                             revision_after=context.last_applied or revs(current))
        await asyncio.sleep(delay)
        current = await context.session.current_revisions()


async def _run_alembic(context: Context, destination: str, downgrade: bool, current: tuple[str, ...],
                       applied: list[AppliedStep], adoption: Adoption | None) -> tuple[str, ...]:
    session, project, settings = context.session, context.project, context.settings
    assert session is not None and session.connection is not None and session.engine is not None
    assert project is not None
    heads_after = list(current)
    context.before, context.recorded = current, None
    log = get_logger()

    def on_step(step: AppliedStep, heads: tuple[str, ...]) -> None:
        applied.append(step)
        heads_after[:] = heads
        context.last_applied = step.revision
        context.recorded = tuple(sorted(heads))
        log.info("revision_applied" if step.upgrade else "revision_reverted", revision=step.revision,
                 description=step.description, duration_ms=step.duration_ms)
        context.reporter.send(Step(revision=step.revision, heads=tuple(heads), duration_ms=step.duration_ms))

    def on_plan(paths: list[tuple[str, str]], table: str, schema: str | None) -> None:
        context.reporter.send(Steps(steps=tuple((revision, path) for revision, path in paths), table=table,
                                    schema=schema))

    options = {"transaction_per_migration": settings.transaction_per_migration,
               "version_table": settings.version_table, "version_table_schema": settings.version_table_schema}
    if context.endpoint is not None:
        options.update(context.database.alembic_options())
    on_start, on_record = recorder(context, adoption) or (None, None)
    statement_bound = settings.statement_timeout + CANCEL_MARGIN if settings.statement_timeout is not None else None
    connection = session.connection
    context.migrating = True
    try:
        if project.bundled:
            await connection.commit()  # Alembic manages transactions only on a connection not in one
            with StatementWatchdog(session.engine, context.database, statement_bound, context.on_watchdog):
                await connection.run_sync(lambda sync_connection: guarded(
                    alembic_env.migrate, project, sync_connection, destination, downgrade=downgrade,
                    configure_options=options, on_step=on_step, on_plan=on_plan, on_start=on_start,
                    on_record=on_record))
        else:
            loop = asyncio.get_running_loop()

            def migrate() -> None:
                guarded(alembic_env.migrate, project, None, destination, downgrade=downgrade,
                        on_step=lambda step, heads: loop.call_soon_threadsafe(on_step, step, heads),
                        on_plan=lambda *plan: loop.call_soon_threadsafe(on_plan, *plan), on_start=on_start,
                        on_record=on_record)

            await run_users_env(context, migrate)
    except (SidecarError, Signalled, asyncio.CancelledError):
        raise
    except BaseException as exc:
        await context.settle_failed_statement(exc)
        raise migration_failure(context, exc) from None
    finally:
        context.migrating = False
    return tuple(sorted(heads_after))


def _nothing_to_do(context: Context, destination: str, current: tuple[str, ...], downgrade: bool) -> Result | None:
    """The result when the database is at the target already or ahead of the files; None to migrate."""
    project = context.project
    assert project is not None
    heads = project.heads()
    if _to_heads(destination, downgrade) and current and set(current) == set(heads) \
            and (destination == "heads" or len(heads) == 1):
        return Result("already there", before=current, expected=current)
    unknown = alembic_env.check_revisions(project, destination, current)
    if unknown:
        if context.settings.on_unknown_revision != "ignore":
            raise alembic_env.unknown_revision_error(unknown)
        get_logger().warning("database_ahead", unknown_revisions=unknown,
                             hint="the database carries revisions this image does not know; nothing was changed")
        return Result(AHEAD, before=current, expected=current)
    if alembic_env.steps_to(project, destination, current, downgrade=downgrade):
        return None
    # Alembic has nothing to run: the database is at the target, or an upgrade's target lies below it.
    named = alembic_env.resolve(project, destination)
    if not downgrade and named and not set(named) <= set(current):
        get_logger().info("database_past_target", revision=revs(current), target=destination)
        return Result("past the target", before=current, expected=current)
    return Result("already there", before=current, expected=current)


def _refuse_what_a_users_env_would_drop(settings: Settings) -> None:
    """A user's env.py decides its own transactions: a revision cannot be retried from outside them."""
    if settings.ddl_lock_retries:
        raise ConfigurationError("MIGRATE_DDL_LOCK_RETRIES cannot retry a revision inside your own env.py's "
                                 "transactions (ALEMBIC_CONFIG)",
                                 hint="unset it; MIGRATE_DDL_LOCK_TIMEOUT still bounds the wait (exit 9, safe to "
                                      "retry the whole run)")


def _named_targets(project: Project, destination: str) -> tuple[str, ...] | None:
    """The revision ids a named upgrade target resolves to (partial ids, branch labels), before any revision runs."""
    if destination in ("head", "heads", "base") or destination.startswith(("+", "-")) or "@" in destination:
        return None
    return tuple(sorted(script.revision for script in project.script.get_revisions(destination) if script is not None))


def _to_heads(destination: str, downgrade: bool) -> bool:
    return not downgrade and destination in ("head", "heads")
