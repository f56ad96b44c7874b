"""`current` and `check`: read the database's revisions and compare them with the heads."""

from __future__ import annotations

from .. import alembic_env
from ..alembic_env import Project
from ..errors import PendingRevisions
from ..logs import get_logger
from . import Context, Result, applied, report_revisions, revs


def prepare_check(project: Project) -> None:
    project.script  # noqa: B018 - import every revision file now: a broken one fails before any connection


async def current(context: Context) -> Result:
    assert context.session is not None and context.project is not None
    found = await context.session.current_revisions(before_lock=True)
    heads = context.project.heads()
    return Result(f"database at {revs(found)}", [f"{rev} (head)" if rev in heads else rev for rev in sorted(found)])


async def check(context: Context) -> Result:
    project = context.project
    assert context.session is not None and project is not None
    found = await context.session.current_revisions(before_lock=True)
    report_revisions(context, found)
    heads = project.heads()
    if set(found) == set(heads):
        await applied.verify(context, found)
        get_logger().info("database_at_heads", revision=revs(found))
        return Result(f"database at the heads ({revs(found)})")
    unknown = alembic_env.check_revisions(project, "heads", found)
    if unknown:
        if context.settings.on_unknown_revision == "ignore":
            get_logger().warning("database_ahead", unknown_revisions=unknown)
            return Result(f"database at {revs(unknown)}, ahead of these revisions (ignored)")
        raise alembic_env.unknown_revision_error(unknown)
    await applied.verify(context, found)
    raise PendingRevisions(f"database at {revs(found)}, revision files at {revs(heads)}",
                           hint="run `alembic-sidecar upgrade`")
