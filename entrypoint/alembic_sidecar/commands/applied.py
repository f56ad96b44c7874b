"""The applied history as `check`, `upgrade` and `downgrade` use it: read, adopt, compare, and record each step."""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
from dataclasses import dataclass
from typing import Any

from .. import applied_history
from ..alembic_env import Project
from ..findings import WARNING
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


@dataclass
class Adoption:
    """What the run writes before its first revision: the table, the applied revisions it lacks, new byte sums."""

    files: dict[str, str]
    unrecorded: list[str]
    refresh: dict[str, str]

    def write(self, connection: Any, history: Any) -> None:
        applied_history.adopt(connection, history, self.files, self.unrecorded, self.refresh)


async def settle(context: Context, current: tuple[str, ...]) -> tuple[list[Any], Adoption | None]:
    """Before anything is applied, read only: the findings (a warning, or exit 12 with MIGRATE_VERIFY_HISTORY=strict)
    and the adoption the run owes, which the migration writes in its first transaction (a failed first revision
    leaves nothing behind)."""
    if context.settings.verify_history == "off":
        return [], None
    assert context.project is not None
    verdict = await _verdict(context, current)
    files = _files(context.project)
    if verdict is None:
        return [], Adoption(files, _applied(context.project, current), {})
    return _report(context, verdict.findings), Adoption(files, verdict.unrecorded, verdict.refresh)


async def settle_at_rest(context: Context, current: tuple[str, ...], *, locked: bool) -> list[Any]:
    """Nothing to apply: compare as :func:`settle`, and write the adoption now (taking the lock if need be)."""
    session = context.session
    assert session is not None
    findings, adoption = await settle(context, current)
    if adoption is None or not (adoption.unrecorded or adoption.refresh):
        return findings
    if not locked:
        await session.acquire_lock()
        current = await session.current_revisions()  # another replica may have adopted or migrated meanwhile
        findings, adoption = await settle(context, current)
        assert adoption is not None
    history = applied_history.table(context.settings)
    await session.run_own(lambda connection: adoption.write(connection, history),
                          f"recording the applied history in {history.name}", refused_hint=_refused(context))
    if adoption.unrecorded:
        get_logger().info("applied_history_adopted", revisions=len(adoption.unrecorded), table=history.name)
    return findings


def _report(context: Context, findings: list[Any]) -> list[Any]:
    """Exit 12 with MIGRATE_VERIFY_HISTORY=strict; else the findings as warnings, for the logs and the CI reports."""
    if not findings:
        return findings
    if context.settings.verify_history == "strict":
        applied_history.log_findings(findings)
        raise applied_history.changed_error(findings)
    warnings = [dataclasses.replace(finding, level=WARNING) for finding in findings]
    applied_history.log_findings(warnings, "warning")
    return warnings


def recorder(context: Context, adoption: Adoption | None) -> tuple[Callable[[Any], None], Callable[..., None]] | None:
    """What the migration calls on its own connection: before the first revision (the table and the adoption, in
    that revision's transaction) and after each step (Alembic's on_version_apply hook)."""
    if adoption is None:
        return None
    history = applied_history.table(context.settings)

    def start(connection: Any) -> None:
        adoption.write(connection, history)

    def record(connection: Any, step: Any, duration_ms: int) -> None:
        script = step.up_revision
        applied_history.record_step(connection, history, list(step.up_revision_ids),
                                    getattr(script, "path", None), duration_ms, step.is_upgrade)

    return start, record
