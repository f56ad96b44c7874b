"""The words for a migration that failed: what the database holds after it, and the error to exit with."""

from __future__ import annotations

import os

from sqlalchemy.exc import DBAPIError

from .. import alembic_env, logs
from ..alembic_env import Project
from ..errors import MigrationFailed, SidecarError
from ..failures import TRANSIENT, Fault, describe
from ..fault_errors import Phase, fault_error
from ..findings import ERROR, Finding
from ..guards import RevisionEscaped
from ..users_env import env_py_failed
from . import Context, revs

# How long past MIGRATE_STATEMENT_TIMEOUT the client waits for the server's cancel before it gives up on the socket.
CANCEL_MARGIN = 10.0
# An exception message's lines are kept (a pydantic ValidationError names the field on its second line), joined on
# one log line and cut at this length.
REASON_LENGTH = 600


def failure_state(context: Context) -> str | None:
    """What this process can tell the database holds after a failed migration; None when none began.

    The supervisor replaces these words with what its own read of the version table shows; they stand only
    when that read fails.
    """
    if context.before is None:
        return None
    if context.recorded is None:
        return f"the database is at {revs(context.before)}, where this run found it"
    settings = context.settings
    bundled = settings.alembic_config is None
    if bundled and context.database.transactional_ddl and not settings.transaction_per_migration:
        return f"the database is at {revs(context.before)}, where this run found it (one transaction, rolled back)"
    if bundled and settings.transaction_per_migration:
        return f"the database is at {revs(context.recorded)}"
    return f"this run last recorded {revs(context.recorded)}, which a rollback may have undone"


def refused_hint(privilege: str | None) -> str:
    """What to do about a refused revision: the missing privilege, when the server named it, belongs to the migrator."""
    if privilege is None:
        return "grant the migration user the privileges the revision needs"
    return (f"this user lacks {privilege}: run `upgrade` as the migrator role that owns the schema (the migration "
            "Job's Secret) and `ready` as the application's read-only role in its pods (docs/operations.md, "
            "\"Least privilege\"), or grant this user that privilege")


def migration_failure(context: Context, exc: BaseException) -> SidecarError:
    project = context.project
    assert project is not None
    escaped = isinstance(exc, RevisionEscaped)
    original = exc.original if escaped else exc
    culprit = revisions_file(original, project)
    where = f"revision file {culprit}" if culprit else "a revision"
    state = failure_state(context) or "no revision of this run was recorded"
    fault = Fault.UNAVAILABLE if context.watchdog_fired else None if escaped else context.database.classify(exc)
    if escaped:
        said = _one_line(str(original))
        reason = f"{type(original).__name__}{f'({said})' if said else ''} ended the migration from revision code"
    elif isinstance(exc, DBAPIError):
        reason = describe(exc)
    else:
        # SQLAlchemy's own messages go on with the statement and its parameters: their first line says it.
        said = _one_line(str(exc), every_line=not type(exc).__module__.startswith("sqlalchemy"))
        reason = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    env_py = None if project.bundled or culprit else alembic_env.revisions._file_in_traceback(
        original, project.script.dir)
    if env_py and fault is not Fault.ACCESS and fault not in TRANSIENT:
        # The user's env.py itself failed (an import, a driver, its URL): no revision is to blame, and unless a
        # revision ran first, nothing changed that needs saying.
        return env_py_failed(env_py, reason, state if context.recorded is not None else None)
    transactional = context.database.transactional_ddl
    rolled_back = ("the revision in progress was rolled back; rerunning is safe" if transactional else
                   f"{context.database.ddl_rollback_note}, so statements of the interrupted revision that ran "
                   "before the fault may be applied; a rerun resumes after the last recorded revision")
    what = None
    if context.watchdog_fired:
        what = (f"the database did not answer within MIGRATE_STATEMENT_TIMEOUT + {CANCEL_MARGIN:g} s "
                "(the network path is down or the server hangs)")
    phase = Phase(f"applying {culprit or 'a revision'}", rerun=f"{state}; {rolled_back}",
                  refused=f"{where} was refused by the server",
                  refused_hint=refused_hint(context.database.missing_privilege(reason)))
    error = fault_error(fault, phase, reason, what=what)
    if error is not None:
        return error
    if not transactional:
        hint = (f"{state}; {context.database.ddl_rollback_note}, so statements of the failed revision that ran "
                "before the error may be applied: inspect the schema before rerunning")
    elif fault is Fault.STATEMENT_TIMEOUT:
        hint = f"{state}; the failed revision was rolled back; raise MIGRATE_STATEMENT_TIMEOUT or fix it"
    else:
        hint = f"{state}; the failed revision was rolled back; fix it and rerun"
    error = MigrationFailed(f"{where} failed: {reason}", hint=hint, fault=fault)
    error.findings = _failed_revision(project, original, error.message)
    return error


def _failed_revision(project: Project, exc: BaseException, message: str) -> tuple[Finding, ...]:
    """The CI reports' finding for a revision that raised: on its file, at the line of its code that raised."""
    for directory in project.versions_dirs:
        found = alembic_env.revisions.frame_in_traceback(exc, directory)
        if found:
            path = os.path.abspath(found[0])
            revision = next((script.revision for script in project.script.walk_revisions()
                             if script.path and os.path.abspath(script.path) == path), None)
            return (Finding("migration-failed", ERROR, message, "fix the revision and rerun", revision, found[0],
                            found[1] or None),)
    return ()


def revisions_file(exc: BaseException, project: Project) -> str | None:
    for directory in project.versions_dirs:
        found = alembic_env.revisions._file_in_traceback(exc, directory)
        if found:
            return found
    return None


def _one_line(text: str, *, every_line: bool = True) -> str:
    """An exception's message on one line: its lines joined with " | " (or the first only), cut to REASON_LENGTH;
    secrets are masked before the cut, which could leave half of one that no longer matches."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    joined = logs.redacted(" | ".join(lines if every_line else lines[:1]))
    return joined if len(joined) <= REASON_LENGTH else joined[:REASON_LENGTH - 1] + "…"
