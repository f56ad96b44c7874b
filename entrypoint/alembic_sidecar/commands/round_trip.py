"""`test`: each revision's downgrade undoes its upgrade, and its upgrade runs again after that downgrade.

For each revision above the database's, in the order an upgrade applies them: reflect the schema (S0), upgrade to
the revision and reflect (S1), downgrade that revision alone and compare with S0, upgrade again and compare with S1,
through Alembic's autogenerate comparison (as pytest-alembic's up/down consistency test and Liquibase's
updateTestingRollback do). Each step is its own transaction, as a transaction per migration would be.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from .. import alembic_env, drift as drifts
from ..alembic_env import AppliedStep
from ..errors import ConfigurationError, MigrationFailed, SidecarError, Signalled
from ..findings import ERROR, Finding
from ..guards import RevisionEscaped, StatementWatchdog, guarded
from ..logs import get_logger
from ..report import Plan, RoundTripped, Step, Steps
from ..session import OWN_STATEMENT_BOUND
from ..settings import Settings
from . import Context, Result, report_revisions, revs
from .migration_failure import CANCEL_MARGIN, migration_failure

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

# The phases a revision's round trip goes through, as the `round_trip` event and the failure name them.
UPGRADE, DOWNGRADE, UPGRADE_AGAIN = "upgrade", "downgrade", "upgrade again"


def refuse(settings: Settings) -> None:
    if not settings.allow_downgrade:
        raise ConfigurationError("test downgrades every revision it tests, and downgrade is disabled",
                                 hint="set MIGRATE_ALLOW_DOWNGRADE=true, on a throwaway database")
    if settings.alembic_config is not None:
        # Each step and each comparison runs on the sidecar's one locked connection, which a user's env.py,
        # connecting on its own, would not use.
        raise ConfigurationError("test runs the revisions through the bundled env.py; ALEMBIC_CONFIG is not "
                                 "supported", hint="unset ALEMBIC_CONFIG and set MIGRATE_VERSIONS_DIR to your "
                                                   "versions directory")


async def round_trips(context: Context) -> Result:
    session, project = context.session, context.project
    assert session is not None and project is not None
    await _known(context, await session.current_revisions(before_lock=True))
    await session.acquire_lock()
    current = await session.current_revisions()
    await _known(context, current)
    report_revisions(context, current)
    tested = alembic_env.steps_to(project, "heads", current, downgrade=False)
    await session.set_migration_settings(True)
    context.reporter.send(Plan(heads=None, targets=None, before=current))
    heads = current
    started = time.monotonic()
    for revision in tested:
        heads = await _round_trip(context, revision, heads)
    if context.settings.transaction_per_migration:
        await session.make_durable()
    at = await session.current_revisions()
    if set(at) != set(project.heads()):
        raise MigrationFailed(f"after the round trips the database is at {revs(at)}, not at the heads "
                              f"{revs(project.heads())}", hint="something outside Alembic changed the version "
                                                               "table; inspect it and rerun")
    get_logger().info("round_trips", revisions=len(tested), revision=revs(at),
                      duration_ms=round((time.monotonic() - started) * 1000))
    if not tested:
        return Result(f"nothing to test: the database is at the heads ({revs(at)})")
    return Result(f"{len(tested)} {'revision' if len(tested) == 1 else 'revisions'} passed the round trip "
                  f"(upgrade, downgrade, upgrade again); database at the heads ({revs(at)})")


async def _known(context: Context, current: tuple[str, ...]) -> None:
    assert context.project is not None
    unknown = alembic_env.check_revisions(context.project, "heads", current)
    if unknown:
        # MIGRATE_ON_UNKNOWN_REVISION=ignore does not apply: revisions these files do not know cannot be tested.
        raise alembic_env.unknown_revision_error(unknown)


async def _round_trip(context: Context, revision: str, heads: tuple[str, ...]) -> tuple[str, ...]:
    """Upgrade to ``revision``, downgrade it, upgrade again; return the heads after it."""
    durations: dict[str, int] = {}
    try:
        return await _round_trip_steps(context, revision, heads, durations)
    except SidecarError as error:
        if isinstance(error, MigrationFailed):
            # On the line of the revision's code that raised, where a step raised; else on its file.
            assert context.project is not None
            raised = error.findings[0] if error.findings else None
            path = raised.path if raised else context.project.script.get_revision(revision).path
            error.findings = (Finding("round-trip", ERROR, error.message, error.hint or "", revision, path,
                                      raised.line if raised else None),)
        raise


async def _round_trip_steps(context: Context, revision: str, heads: tuple[str, ...],
                            durations: dict[str, int]) -> tuple[str, ...]:
    before = await _snapshot(context)
    heads = await _step(context, revision, revision, heads, UPGRADE, durations)
    after = await _snapshot(context)
    heads = await _step(context, revision, f"{revision}@-1", heads, DOWNGRADE, durations)
    await _same(context, revision, DOWNGRADE, before, durations)
    heads = await _step(context, revision, revision, heads, UPGRADE_AGAIN, durations)
    await _same(context, revision, UPGRADE_AGAIN, after, durations)
    get_logger().info("round_trip", revision=revision, ok=True, **_in_ms(durations))
    context.reporter.send(RoundTripped(revision, sum(durations.values())))
    return heads


async def _step(context: Context, revision: str, destination: str, heads: tuple[str, ...], phase: str,
                durations: dict[str, int]) -> tuple[str, ...]:
    """One Alembic run (one revision up or down), committed on its own; a failure names the revision and phase."""
    session, project, settings = context.session, context.project, context.settings
    assert session is not None and session.connection is not None and project is not None
    heads_after = list(heads)
    context.before, context.recorded = heads, None

    def on_step(step: AppliedStep, recorded: tuple[str, ...]) -> None:
        heads_after[:] = recorded
        context.last_applied = step.revision
        context.recorded = tuple(sorted(recorded))
        context.reporter.send(Step(revision=step.revision, heads=tuple(recorded)))

    def on_plan(paths: list[tuple[str, str]], table: str, schema: str | None) -> None:
        context.reporter.send(Steps(steps=tuple(paths), table=table, schema=schema))

    options = {"transaction_per_migration": settings.transaction_per_migration, **_version_table(settings),
               **context.database.alembic_options()}
    bound = settings.statement_timeout + CANCEL_MARGIN if settings.statement_timeout is not None else None
    connection = session.connection
    mark = time.monotonic()
    context.migrating = True
    try:
        await connection.commit()  # Alembic manages transactions only on a connection not in one
        with StatementWatchdog(session.engine, context.database, bound, context.on_watchdog):
            await connection.run_sync(lambda sync_connection: guarded(
                alembic_env.migrate, project, sync_connection, destination, downgrade=phase == DOWNGRADE,
                configure_options=options, on_step=on_step, on_plan=on_plan))
    except (SidecarError, Signalled, asyncio.CancelledError):
        raise
    except BaseException as exc:
        await context.settle_failed_statement(exc)
        error = migration_failure(context, exc)
        durations[phase] = round((time.monotonic() - mark) * 1000)
        get_logger().error("round_trip", revision=revision, ok=False, phase=phase, error=error.message,
                           **_in_ms(durations))
        if isinstance(error, MigrationFailed):
            error.message = f"revision {revision} failed its round trip at {phase}: {error.message}"
        raise error from None
    finally:
        context.migrating = False
    durations[phase] = round((time.monotonic() - mark) * 1000)
    return tuple(sorted(heads_after))


async def _snapshot(context: Context) -> MetaData:
    return await _catalog(context, lambda sync_connection: _reflect(sync_connection, context.settings))


async def _same(context: Context, revision: str, phase: str, expected: MetaData, durations: dict[str, int]) -> None:
    """Fail when the schema after ``phase`` differs from ``expected``, naming each difference."""
    found = await _catalog(context, lambda sync_connection: _differences(sync_connection, expected,
                                                                         context.settings))
    if not found:
        return
    assert context.session is not None
    at = revs(await context.session.current_revisions())
    get_logger().error("round_trip", revision=revision, ok=False, phase=phase, differences=found,
                       **_in_ms(durations))
    undone = "its downgrade left the schema different from before its upgrade" if phase == DOWNGRADE else \
        "upgrading again after its downgrade left the schema different from its first upgrade"
    shown = "; ".join(found[:drifts.IN_SUMMARY]) + (
        f"; and {len(found) - drifts.IN_SUMMARY} more" if len(found) > drifts.IN_SUMMARY else "")
    fix = "its downgrade()" if phase == DOWNGRADE else "its upgrade() repeatable after its downgrade()"
    raise MigrationFailed(f"revision {revision} failed its round trip at {phase}: {undone} in {len(found)} "
                          f"{'way' if len(found) == 1 else 'ways'}; to restore it Alembic would: {shown}",
                          hint=f"the database is at {at}; the `round_trip` log event lists every difference; fix "
                               f"{fix} and rerun on a fresh database")


async def _catalog(context: Context, read: Any) -> Any:
    """Run a catalog read on the locked connection, bounded as the sidecar's own statements are."""
    session = context.session
    assert session is not None and session.connection is not None and context.project is not None
    try:
        with StatementWatchdog(session.engine, context.database, OWN_STATEMENT_BOUND, context.on_watchdog):
            result = await session.connection.run_sync(lambda sync_connection: guarded(read, sync_connection))
        await session.connection.commit()
        return result
    except (SidecarError, Signalled, asyncio.CancelledError):
        raise
    except BaseException as exc:
        original = exc.original if isinstance(exc, RevisionEscaped) else exc
        await context.settle_failed_statement(original)
        raise drifts.failure(original, context.database, context.project, timed_out=context.watchdog_fired) \
            from None


def _reflect(connection: Connection, settings: Settings) -> MetaData:
    """The schema as the database holds it, without the version table."""
    from sqlalchemy import MetaData

    metadata = MetaData()
    if settings.version_table_schema is None:
        metadata.reflect(connection, only=lambda name, _: name != settings.version_table)
    else:
        metadata.reflect(connection)
    return metadata


def _differences(connection: Connection, expected: MetaData, settings: Settings) -> list[str]:
    """Alembic's autogenerate comparison of the database with a schema reflected from it earlier."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migration_context = MigrationContext.configure(connection, opts={
        **_version_table(settings), **drifts.comparison_options(settings)})
    found: list[str] = []
    for diff in compare_metadata(migration_context, expected):
        # Column changes come as a list of tuples per column; every other difference is one tuple.
        found.extend(drifts.describe(item) for item in (diff if isinstance(diff, list) else [diff]))
    return found


def _version_table(settings: Settings) -> dict[str, Any]:
    return {"version_table": settings.version_table, "version_table_schema": settings.version_table_schema}


def _in_ms(durations: dict[str, int]) -> dict[str, int]:
    return {f"{phase.replace(' ', '_')}_ms": ms for phase, ms in durations.items()}
