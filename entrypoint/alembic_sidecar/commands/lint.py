"""`lint`: each revision's offline SQL checked for risky DDL, each finding on its revision file's line."""

from __future__ import annotations

import dataclasses

from .. import alembic_env, databases, linting
from ..errors import ConfigurationError, RiskyMigration
from ..findings import ERROR, as_line
from ..logs import get_logger
from ..offline_statements import StatementCapture
from ..settings import Settings
from . import Context, Result
from .sql import offline_backend


def refuse(settings: Settings) -> None:
    linting.check_names(settings.lint_ignore or (), "MIGRATE_LINT_IGNORE")
    if settings.lint_since is not None and settings.sql_range is not None:
        raise ConfigurationError(f"both MIGRATE_LINT_SINCE={settings.lint_since} and the range "
                                 f"{settings.sql_range!r} say which revisions to lint",
                                 hint="give one: MIGRATE_LINT_SINCE=REV is the range REV:heads")


async def lint(context: Context) -> Result:
    settings, project = context.settings, context.project
    assert project is not None
    backend = offline_backend(context)
    script = project.script
    capture = StatementCapture({revision.path: revision.revision for revision in script.walk_revisions()})
    revision_range = settings.sql_range or f"{settings.lint_since or 'base'}:heads"
    alembic_env.offline_sql(project, f"{backend}://", revision_range, settings.version_table,
                            settings.version_table_schema, output=capture, on_failure=capture.failed)
    ignored = frozenset(settings.lint_ignore or ())
    found = linting.findings(databases.driver_for(backend), capture.statements, ignored, capture.failures)
    log = get_logger()
    for finding in found:
        (log.error if finding.level == ERROR else log.warning)("lint_finding", **dataclasses.asdict(finding))
    linted = len({statement.revision for statement in capture.statements if statement.revision is not None}
                 | {where.revision for where, _ in capture.failures})
    errors = sum(finding.level == ERROR for finding in found)
    summary = (f"{linted} revision{'s' if linted != 1 else ''} linted: {errors} error{'s' if errors != 1 else ''}, "
               f"{len(found) - errors} warning{'s' if len(found) - errors != 1 else ''}")
    log.info("lint", revisions=linted, errors=errors, warnings=len(found) - errors, range=revision_range)
    if errors:
        raise RiskyMigration(summary, hint="change each revision with an error finding as its hint says, or turn "
                                           "the rule off for it (`# alembic-sidecar lint-ignore: RULE`)",
                             findings=tuple(found))
    return Result(summary, output=[as_line(finding) for finding in found], findings=found)
