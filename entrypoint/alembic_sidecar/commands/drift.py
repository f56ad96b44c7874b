"""`drift`: compare the database with the models as `alembic check` does."""

from __future__ import annotations

import asyncio

from .. import alembic_env, drift as drifts
from ..alembic_env import Project
from ..errors import PendingRevisions, SidecarError, Signalled
from ..guards import RevisionEscaped, StatementWatchdog, guarded
from ..logs import get_logger
from ..session import OWN_STATEMENT_BOUND
from ..users_env import run_users_env
from . import Context, Result, report_revisions, revs


def prepare(project: Project) -> None:
    project.script  # noqa: B018 - import every revision file now: a broken one fails before any connection
    drifts.require_metadata(project)


async def drift(context: Context) -> Result:
    """Compare the database with the models. No migration lock: the comparison writes nothing, and waiting for
    (or blocking) a deployment's migration would make a CI gate hang on production; a migration that lands
    meanwhile is caught by Alembic's own "at the heads" check when the comparison starts."""
    session, project, settings = context.session, context.project, context.settings
    assert session is not None and session.connection is not None and project is not None
    current = await session.current_revisions(before_lock=True)
    report_revisions(context, current)
    unknown = alembic_env.check_revisions(project, "heads", current)
    if unknown:
        # MIGRATE_ON_UNKNOWN_REVISION=ignore does not apply: these files did not make this schema.
        raise alembic_env.unknown_revision_error(unknown)
    heads = project.heads()
    if set(current) != set(heads):
        raise PendingRevisions(f"database at {revs(current)}, revision files at {revs(heads)}: compare the "
                               "models with a database at the heads", hint="run `alembic-sidecar upgrade` first")
    options = {"version_table": settings.version_table, "version_table_schema": settings.version_table_schema}
    found: list[str] = []
    try:
        if project.bundled:
            # The catalog reads are the sidecar's own statements: each gets their bound.
            with StatementWatchdog(session.engine, context.database, OWN_STATEMENT_BOUND, context.on_watchdog):
                found = await session.connection.run_sync(
                    lambda sync_connection: guarded(drifts.differences, project, sync_connection, options))
        else:
            def compare() -> None:
                found[:] = drifts.differences(project, None)

            await run_users_env(context, compare)
    except (SidecarError, Signalled, asyncio.CancelledError):
        raise
    except BaseException as exc:
        original = exc.original if isinstance(exc, RevisionEscaped) else exc
        await context.settle_failed_statement(original)
        raise drifts.failure(original, context.database, project, timed_out=context.watchdog_fired) from None
    if found:
        get_logger().warning("drift", differences=found, count=len(found))
        raise drifts.drift_error(found)
    get_logger().info("no_drift", revision=revs(current))
    return Result(f"database at the heads ({revs(current)}) and matching the models")
