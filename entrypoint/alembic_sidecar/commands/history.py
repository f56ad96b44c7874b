"""`history`: the revision history, without connecting; with a database configured, whether and when each revision
was applied, from the applied history (one plain read on one login, as the fast no-op's)."""

from __future__ import annotations

import datetime
from typing import Any

from . import Context, Result


async def history(context: Context) -> Result:
    assert context.project is not None
    scripts = list(context.project.script.walk_revisions())
    lines = [script.cmd_format(verbose=False) for script in scripts]
    settings = context.settings
    # DB_DRIVER alone names only the SQL dialect (as `sql` and `lint` use it): no database to read.
    if settings.database_url is None and not (settings.db_driver and (settings.db_host or settings.db_name)):
        return Result("history listed", lines)
    applied, records = await _read(context)
    for index, script in enumerate(scripts):
        lines[index] += f" [{_state(script.revision, applied, records)}]"
    return Result("history listed", lines)


def _state(revision: str, applied: set[str], records: dict[str, tuple[Any, Any]]) -> str:
    if revision in records:
        applied_at, adopted = records[revision]
        return "applied before records (adopted)" if adopted else f"applied {_when(applied_at)} UTC"
    return "applied (not recorded yet)" if revision in applied else "pending"


def _when(value: Any) -> str:
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)[:19]  # stored as text where the database has no timestamp type


async def _read(context: Context) -> tuple[set[str], dict[str, tuple[Any, Any]]]:
    """The revisions the database's heads stand on, and the records of the applied history."""
    from .. import databases, endpoint as endpoints
    from ..databases.base import NothingOutside
    from ..errors import DatabaseUnreachable, unexpected
    from ..failures import describe
    from ..fault_errors import Phase, fault_error

    settings = context.settings
    endpoint = endpoints.from_settings(settings)
    driver = databases.driver_for(endpoint.backend)
    schema = settings.version_table_schema
    if not driver.exists(endpoint):  # a database file not created yet: nothing applied
        return set(), {}
    reads = [(settings.version_table, schema, ("version_num",)),
             (settings.history_table, schema, ("revision", "applied_at", "adopted"))]
    try:
        versions, rows = await driver.read_tables_now(endpoint, reads, max(1.0, settings.wait_timeout))
    except NothingOutside:  # an in-memory database: nothing was ever applied to it
        return set(), {}
    except TimeoutError:
        raise DatabaseUnreachable(f"the database did not answer within {max(1.0, settings.wait_timeout):g} s",
                                  hint="check the URL and the network, or run `history` without a database") from None
    except Exception as exc:
        reason = describe(exc)
        phase = Phase("reading the applied history", rerun="nothing was changed; rerunning is safe",
                      refused="cannot read the version table or the applied history",
                      refused_hint="grant this user SELECT on both, or run `history` without a database",
                      unreachable="the database did not answer", unreachable_hint="check the URL and the network")
        raise (fault_error(driver.classify(exc), phase, reason)
               or unexpected(f"unexpected database error while reading the applied history: {reason}")) from None
    from alembic.util import CommandError

    current = tuple(row[0] for row in versions or ())
    try:
        applied = {script.revision for script in context.project.script.iterate_revisions(current, "base")}
    except CommandError:  # the database is ahead of these files: only the records can tell
        applied = set()
    return applied, {row[0]: (row[1], bool(row[2])) for row in rows or ()}
