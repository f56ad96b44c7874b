"""The command line: parse settings, run, print, turn every outcome into its documented exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import commands, logs
from .errors import ConfigurationError, Interrupted, SidecarError, Signalled, unexpected_exception
from .redaction import redact, secret_values
from .settings import Settings, from_environ, unknown_variables

if TYPE_CHECKING:
    from .ci_reports import Reports
    from .ci_reports.record import Details

# Where Kubernetes mounts the file whose text `kubectl describe pod` shows (terminationMessagePath).
DEFAULT_TERMINATION_LOG = "/dev/termination-log"


def main(argv: Sequence[str] | None = None) -> None:
    from .supervisor import SIGNAL_EXIT, raise_signalled

    # As PID 1 in a container, a signal without a handler is ignored: install ours before anything slow.
    for signum in SIGNAL_EXIT:
        signal.signal(signum, raise_signalled)
    code = run(sys.argv[1:] if argv is None else argv, os.environ)
    # Skip the interpreter's teardown of every imported revision module (up to half a second with hundreds of
    # them): nothing is left to clean up once the logs and the termination log are written.
    logging.shutdown()
    logs.flush_streams()
    os._exit(code)


@dataclass
class _Verdict:
    """What the CI reports need of a run: filled in as it goes, written once after the final exit code."""

    settings: Settings | None = None
    reports: Reports | None = None
    details: Details | None = None
    summary: str = ""
    title: str = "success"
    secrets: list[str] = field(default_factory=list)


def run(argv: Sequence[str], environ: Mapping[str, str]) -> int:
    verdict = _Verdict()
    code = _run(argv, environ, verdict)
    if verdict.reports is not None:
        _write_reports(verdict, code, environ)
    return code


def _run(argv: Sequence[str], environ: Mapping[str, str], verdict: _Verdict) -> int:
    from .supervisor import SIGNAL_EXIT

    started = time.monotonic()
    settings: Settings | None = None
    secrets: list[str] = []
    try:
        settings = from_environ(environ, argv)
        secrets = secret_values(settings)
        _configure_logging(settings)
        logs.add_secrets(secrets)
        _warn_of_unknown_variables(environ)
        _start_reports(settings, environ, verdict, secrets)
        if settings.targets_file is not None:
            return _run_fleet(settings, started, secrets, verdict)
        if settings.shards > 1:
            raise ConfigurationError(f"MIGRATE_SHARDS={settings.shards} shares a list of targets, and "
                                     "MIGRATE_TARGETS_FILE is not set", hint="set MIGRATE_TARGETS_FILE, or unset "
                                                                             "MIGRATE_SHARDS")
        from . import fastpath

        summary = fastpath.no_op_summary(settings, verdict.details)
        if summary is None:
            output, summary = _run_full(settings, started, verdict.details)
            for line in output:
                print(line)
        verdict.summary = redact(summary, secrets)
        _write_termination_log(settings, verdict.summary)
        return 0
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except Signalled as exc:
        name, code = SIGNAL_EXIT[signal.Signals(exc.signum)]
        return _fail(settings, Interrupted(name, code, f"interrupted by {name} before any change"), secrets,
                     verdict)
    except SidecarError as exc:
        if exc.findings and settings is not None and commands.get(settings.command).answers_on_stdout:
            from .findings import as_line

            for finding in exc.findings:  # the answer of `lint`: one line per finding, as linters print them
                print(redact(as_line(finding), secrets))
        return _fail(settings, exc, secrets, verdict)
    except Exception as exc:  # a bug: say so in one line, never a traceback that could carry a secret
        if isinstance(exc, BrokenPipeError):
            _discard_stdout()
            if settings is not None and commands.get(settings.command).answers_on_stdout:
                return 0  # the reader had what it wanted (`| head -1`): a normal end, not a failure of the command
        return _fail(settings, unexpected_exception(exc), secrets, verdict)


def _start_reports(settings: Settings, environ: Mapping[str, str], verdict: _Verdict, secrets: list[str]) -> None:
    """The CI reports this run writes, each path tried now: one that cannot be written is exit 2 before any
    database work. Nothing is imported for a run that writes none."""
    if not commands.get(settings.command).reports:
        return
    if environ.get("GITHUB_ACTIONS") != "true" and not (settings.report_sarif or settings.report_junit
                                                        or settings.report_codequality):
        return  # the pod start's common case: not even ci_reports is imported (about 1 ms)
    from . import ci_reports

    reports = ci_reports.requested(settings, environ)
    if reports is None:
        return
    reports.check()
    from .ci_reports.record import Details

    verdict.settings, verdict.reports, verdict.details, verdict.secrets = settings, reports, Details(), secrets


def _write_reports(verdict: _Verdict, code: int, environ: Mapping[str, str]) -> None:
    """Written for failures too; a report that cannot be written is logged and never changes the exit code."""
    from .ci_reports.record import Record, report_root

    details, settings = verdict.details, verdict.settings
    assert verdict.reports is not None and details is not None and settings is not None
    logs.flush_streams()  # the log lines before the annotations, each on a line of its own
    try:
        record = Record(settings.command, code, verdict.title, verdict.summary, report_root(environ),
                        settings.versions_dir, details.current, details.heads, tuple(details.revisions),
                        tuple(details.findings), tuple(details.targets)).redacted(verdict.secrets)
        failed = verdict.reports.write(record, sys.stdout)
    except BrokenPipeError:
        _discard_stdout()
        return
    except Exception as exc:  # a bug in a report: said in one line; the run's exit code stands
        failed = [("the CI reports", logs.redacted(f"unexpected {type(exc).__name__}: {exc}"))]
    for setting, reason in failed:
        logs.get_logger().error("report_not_written", setting=setting, reason=reason, exit_code=code)


def _run_full(settings: Settings, started: float, details: Details | None) -> tuple[list[str], str]:
    """Offline commands run here: nothing to supervise, no database to prove; everything that connects runs in a
    supervised child (see supervisor)."""
    if not commands.get(settings.command).connects:
        from .runner import Runner

        result = asyncio.run(Runner(settings).run())
        if details is not None:
            details.findings.extend(result.findings)
            details.heads = result.heads
        return result.output, result.summary
    from .supervisor import supervise

    outcome = supervise(settings, started, details)
    return outcome.output, outcome.summary


def _warn_of_unknown_variables(environ: Mapping[str, str]) -> None:
    for name, likely in unknown_variables(environ):
        hint = f"did you mean {likely}?" if likely else "alembic-sidecar --help lists the settings"
        logs.get_logger().warning("unknown_setting", variable=name, hint=f"{name} is not a setting: {hint}")


def _run_fleet(settings: Settings, started: float, secrets: list[str], verdict: _Verdict) -> int:
    """Many targets (fleet.py): every line checked before any work; the worst target's exit code."""
    from . import fleet, targets as fleet_targets

    listed = fleet_targets.read(settings)
    for target in listed:
        found = [secret for secret in secret_values(target.settings) if secret not in secrets]
        secrets.extend(found)
        logs.add_secrets(found)
    result = fleet.run(settings, fleet_targets.shard(listed, settings), started)
    line = result.summary if result.code == 0 else f"exit {result.code}: {result.summary}"
    _write_termination_log(settings, redact(line, secrets))
    if verdict.details is not None:  # the CI reports: one row per target
        from .ci_reports.record import Target
        from .errors import EXIT_CODES

        verdict.details.targets.extend(
            Target(done.target.label, done.outcome, done.code, redact(done.error or done.outcome, secrets),
                   done.applied, done.duration_ms if done.code is not None else None) for done in result.results)
        verdict.summary = redact(result.summary, secrets)
        verdict.title = next((title for code, title, _ in EXIT_CODES if code == result.code), "failed")
    return result.code


def _discard_stdout() -> None:
    """Point stdout at /dev/null once its reader is gone, so no later flush of what it buffers fails again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def _configure_logging(settings: Settings) -> None:
    # A command whose stdout is its answer logs to stderr, so the answer can be piped.
    stream = sys.stderr if commands.get(settings.command).answers_on_stdout else sys.stdout
    logs.setup(settings.log_format, settings.log_level, stream=stream)


def _fail(settings: Settings | None, error: SidecarError, secrets: list[str], verdict: _Verdict) -> int:
    message = redact(str(error), secrets)
    verdict.summary, verdict.title = message, error.title
    if verdict.details is not None and not verdict.details.findings:  # an in-process command's (lint's) findings
        verdict.details.findings.extend(error.findings)
    if settings is None:
        # Settings could not be read, so logging is not configured: one JSON line in the default shape.
        logs.configure("auto", "info")
    try:
        logs.get_logger().error("failed", error=message, exit_code=error.exit_code, kind=error.title)
    except BrokenPipeError:
        _discard_stdout()  # the logs' reader is gone: the exit code and the termination log still tell
    if settings is not None:
        _write_termination_log(settings, f"exit {error.exit_code} ({error.title}): {message}")
    return error.exit_code


def _write_termination_log(settings: Settings, line: str) -> None:
    explicit = settings.termination_log is not None
    path = settings.termination_log if explicit else DEFAULT_TERMINATION_LOG
    # The default is written only where Kubernetes created it: on a host, run as root, it would add a file to /dev.
    flags = os.O_WRONLY | os.O_TRUNC | (os.O_CREAT if explicit else 0)
    try:
        with open(os.open(path, flags, 0o666), "w", encoding="utf-8") as handle:
            handle.write(line[:4000] + "\n")  # Kubernetes keeps at most 4096 bytes
    except OSError:
        pass  # not in Kubernetes, or not writable: the log line is enough


if __name__ == "__main__":
    main()
