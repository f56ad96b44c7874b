"""The no-op every pod restart pays: one login with the bare driver, one SELECT, no SQLAlchemy or Alembic import.

It answers only "the database is already at the heads"; anything else (a server not up yet, pending revisions, a
locked version table, any error) returns None and the full path, with its wait loop and lock, takes over. Its time
counts against MIGRATE_WAIT_TIMEOUT and MIGRATE_LOCK_TIMEOUT, and it never takes longer than BUDGET.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .settings import Settings

if TYPE_CHECKING:
    from .ci_reports.record import Details

# The whole fast path, login included, gets at most this long: a slower answer means the full path is needed.
BUDGET = 2.0


def current_revisions(settings: Settings, budget: float) -> tuple[str, ...] | None:
    """The database's revisions read with one plain query, or None when that is not simply possible."""
    from . import endpoint as endpoints
    from .errors import ConfigurationError

    try:
        endpoint = endpoints.from_settings(settings)
    except ConfigurationError:
        return None  # the full path reports it
    try:
        return asyncio.run(endpoint.driver.read_versions_now(endpoint, settings.version_table,
                                                             settings.version_table_schema, budget))
    except Exception:  # not up yet, refused, locked, no version table, in memory...: the full path explains it
        return None


def no_op_summary(settings: Settings, details: Details | None = None) -> str | None:
    """When the database is already at the heads, log the run's summary and return it; else None. ``details``
    (the CI reports') learns the revisions."""
    import time

    from . import commands, revisions
    from .logs import info, migration_complete

    answer = commands.get(settings.command).fast_path
    if settings.alembic_config is not None or answer is None:
        return None
    if answer in (commands.MIGRATED, commands.READY) and settings.target not in ("head", "heads"):
        return None
    started = time.monotonic()
    index = revisions.scan(settings.versions_dir, revisions.check_versions_dir(settings.versions_dir))
    if index is None:
        return None
    heads = index.heads
    if len(heads) > 1 and answer in (commands.MIGRATED, commands.READY) and settings.target == "head":
        return None  # the full path explains the several heads
    budget = min(BUDGET, max(0.5, settings.wait_timeout), max(0.5, settings.lock_timeout))
    current = current_revisions(settings, budget)
    if not current or set(current) != set(heads):
        return None
    if details is not None:
        details.current = details.heads = tuple(sorted(current))
    if answer == commands.READY:
        from .commands.ready import fast_summary

        return fast_summary(current, started)
    if answer == commands.AT_HEADS:
        info("database_at_heads", revision=",".join(current))
        return f"database at the heads ({','.join(current)})"
    return migration_complete(current, current, 0, started)
