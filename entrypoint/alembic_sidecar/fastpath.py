"""The no-op every pod restart pays: one login with the bare driver, one SELECT, no SQLAlchemy or Alembic import.

It answers only "the database is already at the heads" (and, for `upgrade` and `check`, every applied revision is
recorded in the applied history with the bytes its file has now); anything else (a server not up yet, pending revisions, a
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


def read_state(settings: Settings, budget: float,
               history: bool) -> tuple[tuple[str, ...], list[tuple[str, str]] | None] | None:
    """The database's revisions (and, with ``history``, the applied history's revisions and file checksums) read
    with plain queries on one login, or None when that is not simply possible."""
    from . import endpoint as endpoints
    from .errors import ConfigurationError

    try:
        endpoint = endpoints.from_settings(settings)
    except ConfigurationError:
        return None  # the full path reports it
    schema = settings.version_table_schema
    reads = [(settings.version_table, schema, ("version_num",))]
    if history:
        from .applied_history import FAST_COLUMNS

        reads.append((settings.history_table, schema, FAST_COLUMNS))
    try:
        found = asyncio.run(endpoint.driver.read_tables_now(endpoint, reads, budget))
    except Exception:  # not up yet, refused, locked, no version table, in memory...: the full path explains it
        return None
    versions = tuple(sorted(row[0] for row in found[0] or ()))
    return versions, (found[1] if history else None)


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
    # `ready` never reads the applied history: an application's role may lack any grant on it.
    verify = answer != commands.READY and settings.verify_history != "off"
    state = read_state(settings, budget, verify)
    if state is None:
        return None
    current, history = state
    if not current or set(current) != set(heads):
        return None
    if verify:
        from .applied_history import fast_agrees

        if not fast_agrees(history, current, index.parents, index.files):
            return None  # unrecorded, or a file's bytes differ: the full path adopts, compares what runs, reports
    if details is not None:
        details.current = details.heads = tuple(sorted(current))
    if answer == commands.READY:
        from .commands.ready import fast_summary

        return fast_summary(current, started)
    if answer == commands.AT_HEADS:
        info("database_at_heads", revision=",".join(current))
        return f"database at the heads ({','.join(current)})"
    return migration_complete(current, current, 0, started)
