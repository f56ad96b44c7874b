"""`ready`: wait, read-only, until the database is at the heads (or MIGRATE_TARGET); what an application's
initContainer runs while a migration Job migrates.

It logs in once with the usual wait (exit 3, 5), then polls the version table about once a second, each poll one
login and one read as the fast no-op's (``Driver.read_versions_now``): a fresh login sees what was committed since,
holds no transaction or idle session on the server between polls, and needs no privilege beyond SELECT on the
version table. It takes no lock and runs no statement that writes.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import TYPE_CHECKING

from ..errors import AccessDenied, ConfigurationError, PendingRevisions, RevisionError
from . import Context, Result, revs

if TYPE_CHECKING:
    from ..alembic_env import Project

# Polls start at most once a second, each up to JITTER later, so that many waiting pods do not poll in step.
INTERVAL = 1.0
JITTER = 0.25
# One poll (a login and a read) gets at most this long; a slower one counts as "not yet".
POLL_TIMEOUT = 5.0
# While it waits, `ready_waiting` says so at most this often.
LOG_EVERY = 15.0


def prepare(project: Project) -> None:
    """The awaited revisions, resolved before any connection: a bad target fails without touching the database."""
    _awaited(project, project.settings.target)


async def ready(context: Context) -> Result:
    """Once the runner's session has logged in (the usual wait), poll until the database holds the awaited revisions.

    Raises PendingRevisions (8) when MIGRATE_READY_TIMEOUT runs out first, UnknownDatabaseRevision (6) when the
    database is ahead of the revision files, RevisionError (7) for an unknown target or several heads.
    """
    from .. import alembic_env
    from ..databases.base import NothingOutside
    from ..failures import Fault, describe
    from ..logs import get_logger

    settings, project, session = context.settings, context.project, context.session
    assert project is not None and session is not None
    log = get_logger()
    target = settings.target
    awaited = _awaited(project, target)
    # The login proved the server and the credentials; each poll logs in afresh, so the session is not kept.
    await session.close()
    endpoint, driver = session.endpoint, session.database
    started = time.monotonic()
    deadline = started + settings.ready_timeout
    polls, last_logged, failure = 0, started, None
    current: tuple[str, ...] = ()
    while True:
        polls += 1
        poll_started = time.monotonic()
        try:
            current = await driver.read_versions_now(endpoint, settings.version_table, settings.version_table_schema,
                                                     min(POLL_TIMEOUT, max(1.0, deadline - poll_started)))
            failure = None
        except NothingOutside:
            raise ConfigurationError(f"{endpoint.masked} lives inside this process: no migration can reach it",
                                     hint="point `ready` at the database the migration Job upgrades") from None
        except Exception as exc:
            fault = driver.classify(exc)
            if fault is Fault.ACCESS:
                raise AccessDenied(f"cannot read {settings.version_table}: {describe(exc)}",
                                   hint=f"grant this user SELECT on {settings.version_table}") from None
            if fault is None and not isinstance(exc, (TimeoutError, OSError)):
                raise ConfigurationError(f"cannot read the version table {settings.version_table}: {describe(exc)}",
                                         hint="MIGRATE_VERSION_TABLE must name Alembic's version table (or a table "
                                              "that does not exist yet)") from None
            failure = "no answer in time" if isinstance(exc, TimeoutError) else describe(exc)  # not yet: poll again
        else:
            unknown = [revision for revision in current if not project.is_known(revision)]
            if unknown:
                if settings.on_unknown_revision != "ignore":
                    raise alembic_env.unknown_revision_error(unknown)
                log.warning("database_ahead", unknown_revisions=unknown,
                            hint="the database carries revisions this image does not know")
                return _ready(current, started, polls, ahead=True)
            if _arrived(project, target, awaited, current):
                return _ready(current, started, polls)
        now = time.monotonic()
        if now >= deadline:
            break
        if now - last_logged >= LOG_EVERY or polls == 1:
            last_logged = now
            log.info("ready_waiting", revision=revs(current), awaited=revs(awaited), polls=polls,
                     elapsed_s=round(now - started, 1), timeout_s=settings.ready_timeout,
                     **({"reason": failure} if failure else {}))
        pause = poll_started + INTERVAL + random.uniform(0, JITTER) - now
        await asyncio.sleep(max(0.0, min(pause, deadline - now)))
    why = f" (the last poll failed: {failure})" if failure else ""
    raise PendingRevisions(f"the database did not reach {revs(awaited)} within MIGRATE_READY_TIMEOUT "
                           f"({settings.ready_timeout:g} s, {polls} poll{'s' if polls > 1 else ''}): it is at "
                           f"{revs(current)}{why}",
                           hint="run the migration (`alembic-sidecar upgrade`), or raise MIGRATE_READY_TIMEOUT")


def _awaited(project: Project, target: str) -> frozenset[str]:
    """The revisions the database must hold: the heads (from the fast scan where it can), or MIGRATE_TARGET's."""
    from .. import alembic_env

    if target == "heads":
        return project.heads()
    heads = project.heads()
    if target == "head" and len(heads) == 1:
        return heads
    alembic_env.check_revisions(project, target, ())  # several heads under `head`, an unknown target: exit 7
    named = alembic_env.resolve(project, target)
    if not named:
        raise RevisionError(f"`ready` cannot wait for the relative target {target!r}",
                            hint="set MIGRATE_TARGET to a revision id, head or heads")
    return frozenset(named)


def _arrived(project: Project, target: str, awaited: frozenset[str], current: tuple[str, ...]) -> bool:
    """At the awaited revisions; for a named target also past it, where an upgrade to it would do nothing."""
    if set(current) == awaited:
        return True
    if target in ("head", "heads") or not current:
        return False
    from .. import alembic_env

    try:
        return not alembic_env.steps_to(project, target, current, downgrade=False)
    except RevisionError:
        return False  # the target lies on another branch than the database: not there


def _ready(current: tuple[str, ...], started: float, polls: int, *, ahead: bool = False) -> Result:
    from ..logs import get_logger

    waited = round((time.monotonic() - started) * 1000)
    get_logger().info("ready", revision=revs(current), waited_ms=waited, polls=polls)
    if ahead:
        return Result(f"database at {revs(current)}, ahead of these revisions (ignored); ready after {waited} ms")
    return Result(f"database at {revs(current)}; ready after {waited} ms")


def fast_summary(current: tuple[str, ...], started: float) -> str:
    """The fast path's answer when the first read found the heads: one `ready` event, no SQLAlchemy imported."""
    from ..logs import info

    waited = round((time.monotonic() - started) * 1000)
    info("ready", revision=revs(current), waited_ms=waited, polls=1)
    return f"database at {revs(current)}; ready after {waited} ms"

