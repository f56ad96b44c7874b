"""The command line: parse settings, run, print, turn every outcome into its documented exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence

from . import commands, logs
from .errors import ConfigurationError, Interrupted, SidecarError, Signalled, unexpected_exception
from .redaction import redact, secret_values
from .settings import Settings, from_environ, unknown_variables

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


def run(argv: Sequence[str], environ: os._Environ[str] | dict[str, str]) -> int:
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
        if settings.targets_file is not None:
            return _run_fleet(settings, started, secrets)
        if settings.shards > 1:
            raise ConfigurationError(f"MIGRATE_SHARDS={settings.shards} shares a list of targets, and "
                                     "MIGRATE_TARGETS_FILE is not set", hint="set MIGRATE_TARGETS_FILE, or unset "
                                                                             "MIGRATE_SHARDS")
        from . import fastpath

        summary = fastpath.no_op_summary(settings)
        if summary is None:
            output, summary = _run_full(settings, started)
            for line in output:
                print(line)
        _write_termination_log(settings, redact(summary, secrets))
        return 0
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except Signalled as exc:
        name, code = SIGNAL_EXIT[signal.Signals(exc.signum)]
        return _fail(settings, Interrupted(name, code, f"interrupted by {name} before any change"), secrets)
    except SidecarError as exc:
        if exc.findings and settings is not None and commands.get(settings.command).answers_on_stdout:
            from .findings import as_line

            for finding in exc.findings:  # the answer of `lint`: one line per finding, as linters print them
                print(redact(as_line(finding), secrets))
        return _fail(settings, exc, secrets)
    except Exception as exc:  # a bug: say so in one line, never a traceback that could carry a secret
        if isinstance(exc, BrokenPipeError):
            _discard_stdout()
            if settings is not None and commands.get(settings.command).answers_on_stdout:
                return 0  # the reader had what it wanted (`| head -1`): a normal end, not a failure of the command
        return _fail(settings, unexpected_exception(exc), secrets)


def _run_full(settings: Settings, started: float) -> tuple[list[str], str]:
    """Offline commands run here: nothing to supervise, no database to prove; everything that connects runs in a
    supervised child (see supervisor)."""
    if not commands.get(settings.command).connects:
        from .runner import Runner

        result = asyncio.run(Runner(settings).run())
        return result.output, result.summary
    from .supervisor import supervise

    outcome = supervise(settings, started)
    return outcome.output, outcome.summary


def _warn_of_unknown_variables(environ: Mapping[str, str]) -> None:
    for name, likely in unknown_variables(environ):
        hint = f"did you mean {likely}?" if likely else "alembic-sidecar --help lists the settings"
        logs.get_logger().warning("unknown_setting", variable=name, hint=f"{name} is not a setting: {hint}")


def _run_fleet(settings: Settings, started: float, secrets: list[str]) -> int:
    """Many targets (fleet.py): every line checked before any work; the worst target's exit code."""
    from . import fleet, targets as fleet_targets

    listed = fleet_targets.read(settings)
    for target in listed:
        found = [secret for secret in secret_values(target.settings) if secret not in secrets]
        secrets.extend(found)
        logs.add_secrets(found)
    result = fleet.run(settings, fleet_targets.shard(listed, settings), started)
    # The CI reports (issue 16) take their `targets` from here: result.results, one TargetResult per target.
    line = result.summary if result.code == 0 else f"exit {result.code}: {result.summary}"
    _write_termination_log(settings, redact(line, secrets))
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


def _fail(settings: Settings | None, error: SidecarError, secrets: list[str]) -> int:
    message = redact(str(error), secrets)
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
