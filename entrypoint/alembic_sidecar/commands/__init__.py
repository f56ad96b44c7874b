"""The commands, each declared once: its name, help, argument, what it needs, and the function that runs it.

Settings (the parser), the command line, the fast path and the supervisor read this table. A command's function
lives in a module of this package, named as "module:function" and imported only when the command runs, so the table
costs nothing at start-up. Adding a command is one row here and one new module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..alembic_env import Project
    from ..findings import Finding
    from ..databases.base import Driver
    from ..endpoint import Endpoint
    from ..report import Reporter
    from ..session import Session
    from ..settings import Settings
    from ..users_env import UsersEnv

# The fast answers (fastpath.py): "already migrated" for an upgrade to the heads, "at the heads" for a check, "ready"
# for an application's wait.
MIGRATED = "migrated"
AT_HEADS = "at-heads"
READY = "ready"


@dataclass(frozen=True)
class Argument:
    """The command's one positional argument: the settings field it fills, its name in the help, and whether it
    may be left out (then the command alone needs no parser)."""

    field: str
    metavar: str
    optional: bool = True


@dataclass(frozen=True)
class Command:
    """One command as the table declares it."""

    name: str
    help: str
    run: str  # "module:function" in this package: the function(Context) -> Result that does the command's work
    argument: Argument | None = None
    connects: bool = True  # False: runs in-process, unsupervised, with no database to prove
    takes_lock: bool = False  # migrates: the session is prepared to migrate and the lock is taken
    fast_path: str | None = None  # which fast answer it may take without SQLAlchemy (MIGRATED, AT_HEADS, READY)
    answers_on_stdout: bool = False  # its answer is on stdout: the logs go to stderr so it can be piped
    reads_files: bool = True  # False: the revision files are opened only for ALEMBIC_CONFIG (its URL)
    refuse: str | None = None  # "module:function"(settings): refusals before anything is opened
    prepare: str | None = None  # "module:function"(project): what must load before any connection
    reports: bool = False  # writes the CI reports (ci_reports/): GitHub Actions, SARIF, JUnit, Code Quality

    def function(self, which: str = "run") -> Callable[..., Any] | None:
        reference = getattr(self, which)
        if reference is None:
            return None
        module, _, name = reference.partition(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), name)


COMMANDS: tuple[Command, ...] = (
    Command("upgrade", "wait, lock and upgrade to TARGET (default command; MIGRATE_TARGET, default head)",
            "migrate:upgrade", Argument("target", "TARGET"), takes_lock=True, fast_path=MIGRATED,
            refuse="migrate:refuse_upgrade", prepare="migrate:prepare", reports=True),
    Command("check", "exit 0 when the database is at the heads, 8 when revisions are pending",
            "inspect:check", fast_path=AT_HEADS, prepare="inspect:prepare_check", reports=True),
    Command("drift", "compare the database with MIGRATE_METADATA as `alembic check` does: exit 0 when they agree, "
            "10 when they differ", "drift:drift", prepare="drift:prepare", reports=True),
    Command("test", "upgrade each revision above the database's, downgrade it and upgrade it again, comparing the "
            "schemas: exit 1 naming a revision whose downgrade does not undo its upgrade (needs "
            "MIGRATE_ALLOW_DOWNGRADE=true; a throwaway database, empty to test every revision)",
            "round_trip:round_trips", takes_lock=True, refuse="round_trip:refuse", prepare="migrate:prepare",
            reports=True),
    Command("current", "print the database's current revision", "inspect:current", answers_on_stdout=True),
    Command("heads", "print the head revisions of the versions directory", "heads:heads", connects=False,
            answers_on_stdout=True, reports=True),
    Command("history", "print the revision history", "history:history", connects=False, answers_on_stdout=True),
    Command("wait", "only wait until the database accepts a login", "wait:wait", reads_files=False),
    Command("ready", "wait, read-only and without a lock, until the database is at the heads (or MIGRATE_TARGET): "
            "exit 0, or 8 when MIGRATE_READY_TIMEOUT runs out first", "ready:ready", fast_path=READY,
            prepare="ready:prepare"),
    Command("sql", "print the SQL of an upgrade without connecting ([FROM:]TO)", "sql:sql",
            Argument("sql_range", "[FROM:]TO"), connects=False, answers_on_stdout=True),
    Command("lint", "check each revision's offline SQL for risky DDL ([FROM:]TO, default: every revision; "
            "MIGRATE_LINT_SINCE=REV: the revisions after REV): exit 11 on an error-level finding, printed as "
            "file:line", "lint:lint", Argument("sql_range", "[FROM:]TO"), connects=False, answers_on_stdout=True,
            refuse="lint:refuse", reports=True),
    Command("downgrade", "downgrade to TARGET (needs MIGRATE_ALLOW_DOWNGRADE=true)", "migrate:downgrade",
            Argument("target", "TARGET", optional=False), takes_lock=True, refuse="migrate:refuse_downgrade",
            prepare="migrate:prepare"),
)
NAMES = tuple(command.name for command in COMMANDS)
_BY_NAME = {command.name: command for command in COMMANDS}


def get(name: str) -> Command:
    return _BY_NAME[name]


@dataclass
class Result:
    """What the command line reports: a summary line, and lines for stdout (current, heads, history)."""

    summary: str
    output: list[str] = field(default_factory=list)
    before: tuple[str, ...] | None = None  # set by upgrade and downgrade: what the parent must prove
    expected: tuple[str, ...] | None = None
    applied: int = 0
    findings: list[Finding] = field(default_factory=list)  # for the CI reports (warnings of a passing run, ...)
    heads: tuple[str, ...] | None = None  # for the CI reports: the heads an offline command found (`heads`)


@dataclass
class Context:
    """What a command's function works with; the runner fills in what the command declares it needs."""

    settings: Settings
    reporter: Reporter
    project: Project | None = None
    fallback_url: str | None = None  # the ini's sqlalchemy.url (ALEMBIC_CONFIG)
    endpoint: Endpoint | None = None
    database: Driver | None = None
    session: Session | None = None
    users_env: UsersEnv | None = None  # set while a user's env.py runs (users_env.py)
    # A migration's progress, for a signal's handling and for the failure's words:
    migrating: bool = False
    before: tuple[str, ...] | None = None  # what the database held when this attempt began (None: not migrating)
    recorded: tuple[str, ...] | None = None  # the heads Alembic recorded since
    last_applied: str | None = None
    connection_lost: bool = False  # the migration's session died: a read of the database would wait for nothing
    watchdog_fired: bool = False

    def on_watchdog(self) -> None:
        self.watchdog_fired = True

    async def settle_failed_statement(self, exc: BaseException) -> None:
        """After a statement failed: a dead session is dropped (the server rolls back; rolling back here would wait
        on it, or log in again), a live one is rolled back."""
        from ..failures import Fault

        assert self.session is not None and self.database is not None
        if self.watchdog_fired or self.database.classify(exc) is Fault.UNAVAILABLE:
            self.connection_lost = True
            await self.session.abandon()
        else:
            await self.session.rollback_quietly()


def report_revisions(context: Context, current: tuple[str, ...]) -> None:
    """Tell the supervisor, for the CI reports, where the database is and which revisions are pending above it."""
    from .. import alembic_env
    from ..report import Revisions

    project = context.project
    assert project is not None
    pending = [] if alembic_env.check_revisions(project, "heads", current) else \
        alembic_env.steps_to(project, "heads", current, downgrade=False)
    context.reporter.send(Revisions(current=tuple(sorted(current)), heads=tuple(sorted(project.heads())),
                                    pending=tuple((rev, project.script.get_revision(rev).path) for rev in pending)))


def revs(revisions: Any) -> str:
    """Revisions as the messages show them: sorted, comma-separated, or ``base``."""
    return ",".join(sorted(revisions)) if revisions else "base"
