"""PID 1's part: run the work in a child process, own signals and deadlines, and prove the outcome.

Revision code runs in the child, where it can raise anything, call ``sys.exit`` or end the process outright. The
parent trusts none of that: it reads the child's reports from a pipe, forwards SIGTERM/SIGINT, stops the child at
MIGRATE_TIMEOUT, kills it when it does not stop within a grace period, reaps every child (as an init process must),
and reports success only after its own fresh read of the version table shows the target.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import Interrupted, MigrationFailed, SidecarError, Signalled, TransientFault, unexpected_exception
from .failures import describe
from .logs import flush_streams
from .redaction import redact, secret_forms
from .report import Done, EndpointMessage, Failed, Message, Plan, Reporter, Step, Steps, read_reports
from .settings import Settings

if TYPE_CHECKING:
    from .ci_reports.record import Details

M = TypeVar("M", bound=Message)
SIGNAL_EXIT = {signal.SIGTERM: ("SIGTERM", 143), signal.SIGINT: ("SIGINT", 130)}
# How long a signalled child gets to roll back, release the lock and report before it is killed.
GRACE = 10.0
# The proof read after the work: one login and one SELECT.
PROOF_TIMEOUT = 10.0
# The same read after a failure, to say what the database holds: shorter, for a failure should not wait long.
STATE_TIMEOUT = 5.0
# While the child runs, its reports are read at most this often (the pipe holds hundreds of them).
REPORT_BATCH = 0.05
# prctl(2): the signal the kernel sends this process when the thread that forked it ends.
PR_SET_PDEATHSIG = 1


@dataclass
class Outcome:
    """What the parent reports after the child: the summary line and the answer lines for stdout."""

    summary: str
    output: list[str] = field(default_factory=list)
    applied: int = 0  # revisions applied or reverted, as the child counted them and the proof confirmed


class Reported(SidecarError):
    """A failure the child reported: its exit code and kind travel with it."""

    def __init__(self, exit_code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.title = title


def raise_signalled(signum: int, frame: object) -> None:
    raise Signalled(signum)


@contextlib.contextmanager
def owning_signals(received: list[int], wake_fd: int) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGCHLD appended to ``received``; each also wakes a select() on ``wake_fd``'s pipe."""
    def record(signum: int, frame: object) -> None:
        received.append(signum)

    previous = {signum: signal.signal(signum, record) for signum in (*SIGNAL_EXIT, signal.SIGCHLD)}
    signal.set_wakeup_fd(wake_fd, warn_on_full_buffer=False)
    try:
        yield
    finally:
        signal.set_wakeup_fd(-1)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# -- the parent -------------------------------------------------------------------------------------------------

def supervise(settings: Settings, started: float, details: Details | None = None) -> Outcome:
    """Fork the child that does the work; return what to report, or raise the failure to report. ``details``, when
    given, receives what the CI reports show of the run (after the verdict, which it never decides)."""
    report_read, report_write = os.pipe()
    wake_read, wake_write = os.pipe()
    for fd in (report_read, wake_read, wake_write):
        os.set_blocking(fd, False)
    supervision = _Supervision(settings, started, report_read, wake_read, wake_write)
    flush_streams()  # what is buffered now would otherwise be written twice, once by each process
    elapsed = time.monotonic() - started
    # The parent's handlers are in place before the child exists, so no signal can slip between the two.
    with supervision.owning_signals():
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            die_with(parent)
            for fd in (report_read, wake_read, wake_write):
                os.close(fd)
            os._exit(_child(settings, Reporter(report_write), elapsed))
        os.close(report_write)
        supervision.pid = pid
        return supervision.run(details)


class _Supervision:
    def __init__(self, settings: Settings, started: float, report_fd: int, wake_read: int, wake_write: int) -> None:
        self.settings, self.started, self.pid = settings, started, 0
        self.report_fd, self.wake_read, self.wake_write = report_fd, wake_read, wake_write
        self.reports = _Reports()
        self.signals: list[int] = []
        self.stopping: str | None = None  # "SIGTERM", "SIGINT" or "deadline"
        self.kill_at: float | None = None
        self.killed = False
        self.state: str | None = None
        self.kept = 0  # after a failure: how many of this run's revisions the database still holds, as read
        self.read_back: tuple[str, ...] | None = None  # the database's revisions as the parent's own read found them
        self.undone: list[str] = []

    def run(self, details: Details | None = None) -> Outcome:
        status = self._wait_for_child()
        try:
            outcome = self._verdict(status)
        except SidecarError as error:
            if details is not None:
                self._detail(details, error)
            raise
        if details is not None:
            self._detail(details, None)
        return outcome

    def _detail(self, details: Details, error: SidecarError | None) -> None:
        """What the CI reports show: the child's messages, and the parent's own reads of the database, which win."""
        from .ci_reports.collect import from_messages

        password = self._endpoint_password()
        from_messages(details, self.reports.messages, command=self.settings.command,
                      failure=None if error is None else error.message, read_back=self.read_back,
                      undone=self.undone, culprit=self.reports.culprit_revision(),
                      secrets=secret_forms([password]) if password else [])

    def _endpoint_password(self) -> str | None:
        endpoint = self.reports.last(EndpointMessage)
        return endpoint.endpoint.get("password") if endpoint else None

    def owning_signals(self) -> contextlib.AbstractContextManager[None]:
        return owning_signals(self.signals, self.wake_write)

    def _wait_for_child(self) -> int:
        deadline = self.started + self.settings.run_timeout if self.settings.run_timeout else None
        selector = selectors.DefaultSelector()
        selector.register(self.report_fd, selectors.EVENT_READ)
        selector.register(self.wake_read, selectors.EVENT_READ)
        signals_only = selectors.DefaultSelector()
        signals_only.register(self.wake_read, selectors.EVENT_READ)
        quiet_until = 0.0
        handled = 0
        try:
            while True:
                status = self._reap()
                if status is not None:
                    self._drain()
                    return status
                now = time.monotonic()
                for signum in self.signals[handled:]:
                    handled += 1
                    if signum in SIGNAL_EXIT and self.stopping is None:
                        self._stop(SIGNAL_EXIT[signal.Signals(signum)][0], signum, now)
                if deadline is not None and now >= deadline and self.stopping is None:
                    self._stop("deadline", signal.SIGTERM, now)
                if self.kill_at is not None and now >= self.kill_at:
                    self._send(signal.SIGKILL)
                    self.killed, self.kill_at = True, None
                waits = [1.0] + [t - now for t in (deadline if self.stopping is None else None, self.kill_at)
                                 if t is not None]
                if now < quiet_until:
                    # A report a revision: reading each at once would wake this process hundreds of times a
                    # second, on the cores the child and the server need. Signals and deadlines still wake it.
                    waits.append(quiet_until - now)
                ready = (signals_only if now < quiet_until else selector).select(max(0.0, min(waits)))
                for key, _ in ready:
                    if key.fd == self.report_fd:
                        self._drain()
                        quiet_until = time.monotonic() + REPORT_BATCH
                    else:
                        read_all(self.wake_read)
        finally:
            selector.close()
            signals_only.close()

    def _stop(self, reason: str, signum: int, now: float) -> None:
        self.stopping = reason
        self._send(signum)
        self.kill_at = now + GRACE

    def _send(self, signum: int) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def _reap(self) -> int | None:
        """Reap every ended child (orphans of revision code too); the wait status of ours, once it ended."""
        ours = None
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return ours
            if pid == 0:
                return ours
            if pid == self.pid:
                ours = status

    def _drain(self) -> None:
        chunk = read_all(self.report_fd)
        if chunk:
            self.reports.take(chunk)

    def _verdict(self, status: int) -> Outcome:
        try:
            return self._verdict_of(status)
        except SidecarError as error:
            # The password may have come from a file the parent never read (ALEMBIC_CONFIG's sqlalchemy.url).
            password = self._endpoint_password()
            if password:
                error.message = redact(error.message, secret_forms([password]))
                error.hint = redact(error.hint, secret_forms([password])) if error.hint else error.hint
            error.applied = self.kept
            raise

    def _verdict_of(self, status: int) -> Outcome:
        done, failed = self.reports.last(Done), self.reports.last(Failed)
        if done is not None and not failed and os.waitstatus_to_exitcode(status) == 0:
            return self._proven(done)
        if self.stopping == "deadline":
            raise TransientFault(
                f"the run did not finish within MIGRATE_TIMEOUT ({self.settings.run_timeout:g} s) and was stopped; "
                f"{self._state()}",
                hint="the revision in progress was rolled back; rerunning is safe; raise MIGRATE_TIMEOUT if the "
                     "migration needs longer")
        if failed is not None:
            message = failed.message
            if failed.state:
                # The child's own account of what stays, replaced by what the database shows.
                message = message.replace(failed.state, self._state(), 1)
            raise Reported(failed.exit_code, failed.title, message)
        if self.stopping is not None:
            name, code = SIGNAL_EXIT[signal.SIGTERM if self.stopping == "SIGTERM" else signal.SIGINT]
            raise Interrupted(name, code, f"interrupted by {name}; the migration did not stop within {GRACE:g} s "
                                          f"and was killed; its session ends with it; {self._state()}")
        code = os.waitstatus_to_exitcode(status)
        how = f"was killed by signal {-code}" if code < 0 else f"ended with status {code} without reporting"
        raise MigrationFailed(f"{self.reports.culprit()} {how}", hint=f"{self._state()}; fix the revision and rerun")

    def _state(self) -> str:
        """What the database holds after a failed run: read from it as the proof reads it, the revisions this run
        reported and the rollback undid logged as such; the child's own account where the read is not possible."""
        if self.state is None:
            self.state = self._read_state()
        return self.state

    def _read_state(self) -> str:
        failed = self.reports.last(Failed)
        progress = self.reports.progress()
        known = failed.state if failed else None
        if not known:
            known = (f"this run last recorded {','.join(sorted(progress[-1].heads)) or 'base'}, which a rollback "
                     "may have undone" if progress else "no revision of this run was recorded")
        plan, endpoint = self.reports.last(Plan), self.reports.last(EndpointMessage)
        if plan is None or endpoint is None:
            return known  # the run never came to migrate
        if failed and failed.connection_lost:
            return f"{known} (not read back: the connection to the database was lost)"
        try:
            actual = _read_versions(endpoint.endpoint, *self.reports.version_table(self.settings.version_table),
                                    timeout=STATE_TIMEOUT)
        except _InMemory:
            return known
        except _Unreadable as why:
            return f"{known} (the version table could not be read back: {why})"
        at = ",".join(actual) or "base"
        undone = _undone(plan.before, progress, actual)
        self.kept = _kept(plan.before, progress, actual)
        self.read_back, self.undone = actual, undone
        if not undone:
            return f"the database is at {at}"
        from .logs import get_logger

        downgrade = self.settings.command == "downgrade"
        get_logger().warning("reverts_rolled_back" if downgrade else "revisions_rolled_back", revisions=undone,
                             revision=at, hint=f"their {'revision_reverted' if downgrade else 'revision_applied'} "
                                               "events were undone by the rollback")
        return f"the database is at {at} (the rollback also undid {', '.join(undone)} of this run)"

    def _proven(self, done: Done) -> Outcome:
        from .logs import migration_complete

        if done.expected is None:
            return Outcome(done.summary, list(done.output))
        endpoint = self.reports.last(EndpointMessage)
        assert endpoint is not None
        try:
            actual = _read_versions(endpoint.endpoint, *self.reports.version_table(self.settings.version_table))
        except _InMemory:
            actual = tuple(sorted(done.expected))  # the database died with the child that proved it
        except _Unreadable as why:
            raise TransientFault(f"the migration reported success but its result could not be confirmed: {why}",
                                 hint="rerun: a database at the target is confirmed and the run exits 0") from None
        self.read_back = actual
        plan = self.reports.last(Plan)
        wanted = tuple(sorted(done.expected))
        problems = []
        if actual != wanted:
            problems.append(f"Alembic recorded {','.join(wanted) or 'base'}")
        if plan is not None and plan.heads is not None and actual != tuple(sorted(plan.heads)):
            problems.append(f"the heads are {','.join(sorted(plan.heads))}")
        missing = [rev for rev in (plan.targets if plan is not None else None) or () if rev not in actual]
        if missing:
            problems.append(f"the target {self.settings.target} is {','.join(missing)}")
        if problems:
            raise MigrationFailed(f"after the run the database is at {','.join(actual) or 'base'}, but "
                                  + " and ".join(problems),
                                  hint="something outside Alembic changed the version table; inspect it and rerun")
        if done.summary == "ahead":
            return Outcome(f"database at {','.join(actual)}, ahead of these revisions (ignored)")
        past = self.settings.target if done.summary == "past the target" else None
        assert done.before is not None
        return Outcome(migration_complete(done.before, actual, done.applied, self.started, past),
                       applied=done.applied)


class _Reports:
    """The child's messages, in the order they came."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.buffer = bytearray()

    def take(self, chunk: bytes) -> None:
        self.messages.extend(read_reports(self.buffer, chunk))

    def last(self, kind: type[M]) -> M | None:
        return next((message for message in reversed(self.messages) if isinstance(message, kind)), None)

    def progress(self) -> list[Step]:
        return [message for message in self.messages if isinstance(message, Step)]

    def version_table(self, configured: str) -> tuple[str, str | None]:
        """Where Alembic recorded the steps, as it said; else the setting (no step ran)."""
        planned = self.last(Steps)
        return (planned.table, planned.schema) if planned else (configured, None)

    def culprit(self) -> str:
        """The revision file that was running when the child ended, from its plan and its progress."""
        running = self.culprit_revision()
        return f"revision file {running[1]}" if running else "the migration process"

    def culprit_revision(self) -> tuple[str, str] | None:
        """The (revision, path) that was running when the run ended, from its plan and its progress."""
        planned = self.last(Steps)
        if planned is None:
            return None
        applied = {report.revision for report in self.progress()}
        return next(((revision, path) for revision, path in planned.steps if revision not in applied), None)


def _kept(before: tuple[str, ...], progress: list[Step], actual: tuple[str, ...]) -> int:
    """How many of the run's steps stay: those before the last point of the run that matches the database (0 when it
    matches none)."""
    states = [tuple(sorted(before))] + [tuple(sorted(report.heads)) for report in progress]
    matching = [index for index, state in enumerate(states) if state == actual]
    return len({report.revision for report in progress[:matching[-1]]}) if matching else 0


def _undone(before: tuple[str, ...], progress: list[Step], actual: tuple[str, ...]) -> list[str]:
    """The revisions of the steps reported after the last point of the run that matches what the database holds."""
    states = [tuple(sorted(before))] + [tuple(sorted(report.heads)) for report in progress]
    matching = [index for index, state in enumerate(states) if state == actual]
    if not matching:
        return []  # the database is at none of the run's points: nothing to say about which steps stayed
    undone: list[str] = []
    for report in progress[matching[-1]:]:
        if report.revision not in undone:
            undone.append(report.revision)
    return undone


def _read_versions(fields: dict[str, Any], table: str, schema: str | None,
                   timeout: float = PROOF_TIMEOUT) -> tuple[str, ...]:
    """A fresh login and read, so no state the migration left (a stale cached statement) can answer for it."""
    from .databases.base import NothingOutside
    from .endpoint import Endpoint

    endpoint = Endpoint(**fields)
    try:
        return asyncio.run(endpoint.driver.read_versions_now(endpoint, table, schema, timeout))
    except NothingOutside:
        raise _InMemory() from None
    except Exception as exc:
        raise _Unreadable(describe(exc) if not isinstance(exc, TimeoutError) else "no answer in time") from None


class _InMemory(Exception):
    """An in-memory database dies with the child: nothing outside it can read what it did."""


class _Unreadable(Exception):
    """The version table could not be read (no login, no answer in time); the message says why in one line."""


def read_all(fd: int) -> bytes:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, InterruptedError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


# -- the child --------------------------------------------------------------------------------------------------

def die_with(parent: int) -> None:
    """End this child when the parent that forked it dies, however it dies (SIGKILL, the OOM killer).

    Outside a container nothing else does: the child would be re-parented and go on migrating, unsupervised, with
    the lock. Killed instead, its sockets close and the server ends its statement and frees the lock within
    seconds (the session's liveness settings). SIGKILL, not SIGTERM: with the parent gone, nothing would bound a
    graceful stop. Linux only; elsewhere a no-op.
    """
    prctl = libc_prctl()
    if prctl is None or prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return  # not Linux, no ctypes or no prctl in the libc: the container's PID namespace still does it
    # The parent may have died before prctl: then the signal never comes, and this child is already an orphan.
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


@functools.cache
def libc_prctl() -> Callable[..., int] | None:
    """libc's prctl(2), looked up once: ctypes' import and the lookup cost about 3.5 ms, which a fleet pays once in
    its parent (fleet.py calls this before forking) instead of twice per target; a single run's child pays it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (ImportError, OSError, AttributeError):
        return None


def _child(settings: Settings, reporter: Reporter, elapsed: float) -> int:
    """Run the command; report its result or failure to the parent; return the exit code."""
    signal.set_wakeup_fd(-1)
    for signum in SIGNAL_EXIT:
        signal.signal(signum, raise_signalled)
    code = 70
    runner = None
    try:
        from .runner import Runner

        runner = Runner(settings, reporter, wait_timeout=max(0.0, settings.wait_timeout - elapsed),
                        lock_timeout=max(0.0, settings.lock_timeout - elapsed))
        result = asyncio.run(run_with_signals(runner))
        reporter.send(Done(result.summary, tuple(result.output), result.before, result.expected, result.applied,
                           tuple(dataclasses.asdict(finding) for finding in result.findings)))
        code = 0
    except Signalled as exc:
        name, code = SIGNAL_EXIT[signal.Signals(exc.signum)]
        _report_failure(reporter, Interrupted(name, code, f"interrupted by {name} before any change"))
    except SidecarError as exc:
        code = exc.exit_code
        _report_failure(reporter, exc, runner)
    except BaseException as exc:  # a bug: say so in one line, never a traceback that could carry a secret
        _report_failure(reporter, unexpected_exception(exc), runner)
    logging.shutdown()
    flush_streams()
    return code


def _report_failure(reporter: Reporter, error: SidecarError, runner: Any = None) -> None:
    """``state`` is the part of the message that says what the database holds, for the parent to read and replace."""
    state = runner.failure_state() if runner is not None else None
    reporter.send(Failed(error.exit_code, error.title, str(error),
                         state=state if state and state in str(error) else None,
                         connection_lost=bool(runner is not None and runner.connection_lost),
                         findings=tuple(dataclasses.asdict(finding) for finding in error.findings)))


async def run_with_signals(runner: Any) -> Any:
    """Run with SIGTERM/SIGINT ending the migrating session on the server, then cancelling the run."""
    import greenlet

    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    received: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if received:
            return
        received.append(signum)

        async def stop() -> None:
            await runner.interrupt()
            task.cancel()

        loop.create_task(stop())

    def interrupt_revision_code(signum: int, frame: object) -> None:
        # A revision's own Python code (a loop, time.sleep) runs on the event loop's thread inside SQLAlchemy's
        # greenlet and keeps the loop from seeing the signal: raise right there; its transaction rolls back.
        if runner.migrating and greenlet.getcurrent().parent is not None and not received:
            received.append(signal.Signals(signum))
            raise Signalled(signum)

    for signum in SIGNAL_EXIT:
        loop.add_signal_handler(signum, on_signal, signum)
        # The loop still learns of the signal through its wakeup fd; this Python-level handler only adds the case
        # where the loop is blocked.
        signal.signal(signum, interrupt_revision_code)
    try:
        return await runner.run()
    except BaseException as exc:
        if not received:
            raise
        name, code = SIGNAL_EXIT[received[0]]
        raise Interrupted(name, code, _interrupted_message(runner, name)) from exc
    finally:
        for signum in SIGNAL_EXIT:
            loop.remove_signal_handler(signum)
            signal.signal(signum, raise_signalled)


def _interrupted_message(runner: Any, name: str) -> str:
    state = runner.failure_state() or "no revision was recorded"
    if runner.endpoint is not None and not runner.database.transactional_ddl and runner.recorded is not None:
        return (f"interrupted by {name}; the session was ended and the lock released; {state} (DDL of the "
                "interrupted revision may have been committed implicitly)")
    return f"interrupted by {name}; the current transaction was rolled back and the lock released; {state}"
