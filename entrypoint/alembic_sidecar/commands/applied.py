"""The applied history as `check`, `upgrade` and `downgrade` use it: read, adopt, compare, and record each step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import applied_history
from ..alembic_env import Project
from ..logs import get_logger
from . import Context
from .migration_failure import refused_hint



def _refused(context: Context) -> Callable[[str], str]:
    """A refusal's hint: the privilege the server named belongs to the migrator, as for a revision's own DDL."""
    assert context.database is not None
    return lambda reason: (refused_hint(context.database.missing_privilege(reason))
                           + "; MIGRATE_VERIFY_HISTORY=off leaves the history table (MIGRATE_HISTORY_TABLE) alone")


def _applied(project: Project, current: tuple[str, ...]) -> list[str]:
    """The revisions the database's heads stand on, themselves included."""
    if not current:
        return []
    return [script.revision for script in project.script.iterate_revisions(tuple(current), "base")]


def _files(project: Project) -> dict[str, str]:
    return {script.revision: script.path for script in project.script.walk_revisions()}


async def _verdict(context: Context, current: tuple[str, ...]) -> applied_history.Verdict | None:
    """The records compared with the files; None when nothing is recorded yet (no table)."""
    assert context.session is not None and context.project is not None
    history = applied_history.table(context.settings)
    records = await context.session.run_own(lambda connection: applied_history.read(connection, history),
                                            f"reading {history.name}", refused_hint=_refused(context))
    if records is None:
        return None
    return applied_history.compare(records, _applied(context.project, current), _files(context.project))


async def verify(context: Context, current: tuple[str, ...]) -> None:
    """`check`: a changed or missing applied file is exit 12; a database not recorded yet passes (upgrade adopts it)."""
    if context.settings.verify_history == "off":
        return
    verdict = await _verdict(context, current)
    if verdict is None:
        get_logger().info("applied_history_unrecorded", hint="the next `upgrade` records the applied revisions")
        return
    if verdict.findings:
        applied_history.log_findings(verdict.findings)
        raise applied_history.changed_error(verdict.findings)


async def settle(context: Context, current: tuple[str, ...], *, locked: bool) -> list[Any]:
    """`upgrade` and `downgrade`, before anything is applied: adopt what is applied but unrecorded (taking the lock
    if need be), and compare; changes are a warning, or exit 12 with MIGRATE_VERIFY_HISTORY=strict."""
    settings, session = context.settings, context.session
    assert session is not None and context.project is not None
    if settings.verify_history == "off":
        return []
    verdict = await _verdict(context, current)
    if verdict is None or verdict.unrecorded or verdict.refresh:
        if not locked:
            await session.acquire_lock()
            current = await session.current_revisions()
            verdict = await _verdict(context, current)
        if verdict is None or verdict.unrecorded or verdict.refresh:
            history = applied_history.table(settings)
            files = _files(context.project)
            unrecorded = _applied(context.project, current) if verdict is None else verdict.unrecorded
            refresh = {} if verdict is None else verdict.refresh
            await session.run_own(lambda connection: applied_history.adopt(connection, history, files, unrecorded,
                                                                           refresh),
                                  f"recording the applied history in {history.name}", refused_hint=_refused(context))
            if unrecorded:
                get_logger().info("applied_history_adopted", revisions=len(unrecorded), table=history.name)
            if verdict is None:
                return []
    if verdict.findings:
        if settings.verify_history == "strict":
            applied_history.log_findings(verdict.findings)
            raise applied_history.changed_error(verdict.findings)
        applied_history.log_findings(verdict.findings, "warning")
    return verdict.findings


def recorder(context: Context) -> Callable[[Any, Any, int], None] | None:
    """What Alembic's on_version_apply hook calls for each step, on the migration's own connection."""
    if context.settings.verify_history == "off":
        return None
    history = applied_history.table(context.settings)

    def record(connection: Any, step: Any, duration_ms: int) -> None:
        script = step.up_revision
        applied_history.record_step(connection, history, list(step.up_revision_ids),
                                    getattr(script, "path", None), duration_ms, step.is_upgrade)

    return record
