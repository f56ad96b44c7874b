"""A fleet: many targets in one run, each as a whole single-database run in a process of its own.

The fleet process checks the whole list, loads what every target needs once (the revision files, SQLAlchemy,
Alembic, the drivers), then forks at most MIGRATE_PARALLEL target processes at a time. Each one runs exactly the
single-database path (the fast no-op, or the supervisor with its child, its lock, its bounds and its own proof) and
reports its end on a pipe; its exit status is the truth when it ends without a word. Memory grows with the
parallelism, not with the list: an ended target leaves one small result behind.

Order: the first MIGRATE_CANARY targets run before any other; a failed canary starts nothing else. After them a
failure stops new targets from starting unless MIGRATE_CONTINUE_ON_ERROR is true; targets in progress finish.
SIGTERM/SIGINT reach every target in progress (each rolls back its current revision and releases its lock) and no
new target starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import time
from dataclasses import dataclass

from . import logs
from .errors import SidecarError, worst
from .settings import Settings
from .supervisor import owning_signals, read_all
from .targets import Target

# At most this much of a target's error travels on the pipe, so that each report is one atomic write (PIPE_BUF).
ERROR_CHARS = 2000
# The termination message names at most this many failed targets (Kubernetes keeps 4096 bytes of it).
NAMED_FAILURES = 3
INTERRUPTED = (130, 143)
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@dataclass
class TargetResult:
    """How one target ended; ``code`` None: it never started."""

    target: Target
    code: int | None = None
    applied: int = 0
    duration_ms: int = 0
    kind: str | None = None
    error: str | None = None

    @property
    def outcome(self) -> str:
        if self.code is None:
            return "not started"
        if self.code == 0:
            return "migrated" if self.applied else "unchanged"
        return "interrupted" if self.code in INTERRUPTED else "failed"


@dataclass
class FleetResult:
    """The whole run: each target's result (the CI reports list them), the exit code and the summary line."""

    results: list[TargetResult]
    code: int
    summary: str


def run(settings: Settings, targets: list[Target], started: float) -> FleetResult:
    """Migrate ``targets`` (this shard's, in list order); log one event per target and the summary."""
    if targets:
        _load_once(targets)
    pool = _Pool(settings, targets)
    pool.run()
    return _summarise(settings, pool, started)


def _load_once(targets: list[Target]) -> None:
    """What every target process needs, loaded before the first fork so that each starts with it: a broken revision
    file fails the whole run here, before any target is touched."""
    import importlib

    from . import alembic_env, commands, databases, endpoint as endpoints, runner, session  # noqa: F401

    settings = targets[0].settings
    command = commands.get(settings.command)
    project, _ = alembic_env.open_project(settings)
    prepare = command.function("prepare")
    if prepare is not None:
        prepare(project)
    for backend in sorted({target.identity[0] for target in targets}):
        assert isinstance(backend, str)
        importlib.import_module(databases.driver_for(backend).async_driver)
    for target in {target.identity[0]: target for target in targets}.values():
        endpoints.from_settings(target.settings).sqlalchemy_url().get_dialect()
    import sqlalchemy.ext.asyncio  # noqa: F401

    logs.get_logger()  # structlog configured once, here


class _Pool:
    """At most MIGRATE_PARALLEL target processes; canaries first; stop on failure or signal."""

    def __init__(self, settings: Settings, targets: list[Target]) -> None:
        self.results = [TargetResult(target) for target in targets]
        self.parallel, self.canary = settings.parallel, min(settings.canary, len(targets))
        self.continue_on_error = settings.continue_on_error
        self.running: dict[int, tuple[int, float]] = {}  # pid -> (index, started)
        self.reported: set[int] = set()
        self.next = 0
        self.halted: str | None = None  # why no new target starts: "canary", "failure", "SIGTERM", "SIGINT"
        self.signalled: int | None = None
        self.signals: list[int] = []
        self.buffer = b""

    def run(self) -> None:
        report_read, self.report_write = os.pipe()
        wake_read, wake_write = os.pipe()
        for fd in (report_read, wake_read, wake_write):
            os.set_blocking(fd, False)
        self.report_read, self.wake_read, self.wake_write = report_read, wake_read, wake_write
        selector = selectors.DefaultSelector()
        selector.register(report_read, selectors.EVENT_READ)
        selector.register(wake_read, selectors.EVENT_READ)
        try:
            with owning_signals(self.signals, wake_write):
                self._loop(selector)
        finally:
            selector.close()
            for fd in (report_read, self.report_write, wake_read, wake_write):
                os.close(fd)

    def _loop(self, selector: selectors.BaseSelector) -> None:
        from .supervisor import SIGNAL_EXIT

        handled = 0
        while True:
            for signum in self.signals[handled:]:
                handled += 1
                if signum in SIGNAL_EXIT:
                    self._on_stop_signal(signum)
            self._reap()
            self._start_what_may_start()
            if not self.running and (self.halted is not None or self.next >= len(self.results)):
                return
            for key, _ in selector.select(1.0):
                if key.fd == self.wake_read:
                    read_all(self.wake_read)
                else:
                    self._read_reports()

    def _start_what_may_start(self) -> None:
        while self.halted is None and self.next < len(self.results) and len(self.running) < self.parallel:
            if self.next >= self.canary and any(index < self.canary for index, _ in self.running.values()):
                return  # the canaries first, all of them
            self._start(self.next)
            self.next += 1

    def _on_stop_signal(self, signum: int) -> None:
        from .supervisor import SIGNAL_EXIT

        name, code = SIGNAL_EXIT[signal.Signals(signum)]
        if self.signalled is None:
            self.signalled = code
        self.halted = name
        for pid in self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _start(self, index: int) -> None:
        target = self.results[index].target
        logs.flush_streams()  # what is buffered now would otherwise be written twice
        parent = os.getpid()
        # Blocked across the fork: a SIGTERM the fleet forwards cannot reach the new process before its own
        # handlers are in place (it would be lost there); the new process unblocks once they are.
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                for fd in (self.report_read, self.wake_read, self.wake_write):
                    os.close(fd)
                code = _target_process(target, index, self.report_write, parent)
            finally:
                os._exit(code)
        self.running[pid] = (index, time.monotonic())
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.running:
                self._read_reports()  # its report was written before it ended
                index, started = self.running.pop(pid)
                self._ended(index, os.waitstatus_to_exitcode(status), started)

    def _read_reports(self) -> None:
        self.buffer += read_all(self.report_read)
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            report = json.loads(line)
            result = self.results[report["index"]]
            result.code, result.applied = report["code"], report["applied"]
            result.kind, result.error = report.get("kind"), report.get("error")
            self.reported.add(report["index"])

    def _ended(self, index: int, status: int, started: float) -> None:
        result = self.results[index]
        result.duration_ms = round((time.monotonic() - started) * 1000)
        if index not in self.reported:
            how = f"was killed by signal {-status}" if status < 0 else f"ended with status {status}"
            result.code, result.kind = 70, "internal error"
            result.error = f"the target's process {how} without reporting; please report this with the log"
        _log_target(result)
        if result.code != 0 and self.halted is None:
            if index < self.canary:
                self.halted = "canary"
            elif not self.continue_on_error:
                self.halted = "failure"


def _target_process(target: Target, index: int, report_fd: int, parent: int) -> int:
    """In the forked target process: one single-database run; its report to the fleet; its exit code."""
    from .errors import Interrupted, Signalled, unexpected_exception
    from .supervisor import SIGNAL_EXIT, die_with, raise_signalled

    signal.set_wakeup_fd(-1)
    for signum in SIGNAL_EXIT:
        signal.signal(signum, raise_signalled)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    die_with(parent)
    logs.bind(target=target.label)
    report: dict[str, object] = {"index": index, "code": 0, "applied": 0}
    try:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        from . import fastpath
        from .supervisor import supervise

        settings, started = target.settings, time.monotonic()
        if fastpath.no_op_summary(settings) is None:
            report["applied"] = supervise(settings, started).applied
    except Signalled as exc:
        name, code = SIGNAL_EXIT[signal.Signals(exc.signum)]
        report.update(_failure(Interrupted(name, code, f"interrupted by {name} before any change")))
    except SidecarError as exc:
        report.update(_failure(exc))
    except Exception as exc:  # a bug: one line, never a traceback that could carry a secret
        report.update(_failure(unexpected_exception(exc)))
    logs.flush_streams()
    os.write(report_fd, json.dumps(report).encode() + b"\n")
    return int(report["code"])  # type: ignore[call-overload]


def _failure(error: SidecarError) -> dict[str, object]:
    return {"code": error.exit_code, "kind": error.title, "error": logs.redacted(str(error))[:ERROR_CHARS],
            "applied": error.applied}


def _log_target(result: TargetResult) -> None:
    fields: dict[str, object] = {"target": result.target.label, "line": result.target.line,
                                 "outcome": result.outcome, "exit_code": result.code, "applied": result.applied,
                                 "duration_ms": result.duration_ms}
    log = logs.get_logger()
    if result.code == 0:
        log.info("target_done", **fields)
    else:
        (log.warning if result.outcome == "interrupted" else log.error)(
            "target_done", **fields, kind=result.kind, error=result.error)


def _summarise(settings: Settings, pool: _Pool, started: float) -> FleetResult:
    results = pool.results
    counts = {outcome: sum(1 for result in results if result.outcome == outcome)
              for outcome in ("migrated", "unchanged", "failed", "interrupted", "not started")}
    codes = [result.code for result in results if result.code is not None]
    code = worst(codes + ([pool.signalled] if pool.signalled is not None else []))
    failed = [result for result in results if result.code not in (None, 0)]
    duration = round((time.monotonic() - started) * 1000)
    shard = {"shard": settings.shard_index, "shards": settings.shards} if settings.shards > 1 else {}
    log = logs.get_logger()
    (log.info if code == 0 else log.error)(
        "fleet_complete", targets=len(results), **{outcome.replace(" ", "_"): n for outcome, n in counts.items()},
        exit_code=code, stopped=pool.halted, duration_ms=duration, **shard,
        failed_targets=[{"target": result.target.label, "line": result.target.line, "exit_code": result.code,
                         "kind": result.kind, "error": result.error} for result in failed])
    summary = (f"{len(results)} targets: {counts['migrated']} migrated, {counts['unchanged']} unchanged, "
               f"{counts['failed']} failed, {counts['interrupted']} interrupted, {counts['not started']} not started "
               f"({duration} ms)")
    if pool.halted in ("canary", "failure"):
        summary += f"; stopped after a {'canary' if pool.halted == 'canary' else 'target'} failed"
    if failed:
        named = "; ".join(f"{result.target.label} (line {result.target.line}): exit {result.code} ({result.kind}): "
                          f"{(result.error or '')[:300]}" for result in failed[:NAMED_FAILURES])
        summary += f"; failed: {named}" + ("; ..." if len(failed) > NAMED_FAILURES else "")
    return FleetResult(results, code, summary)

