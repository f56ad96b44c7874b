"""The command line: parse settings, run, print, turn every outcome into its documented exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import quote, quote_plus, unquote, urlsplit

from .errors import Interrupted, SidecarError
from .settings import Secret, Settings, from_environ

if TYPE_CHECKING:
    from .runner import Result, Runner

SIGNAL_EXIT = {signal.SIGTERM: ("SIGTERM", 143), signal.SIGINT: ("SIGINT", 130)}
# Commands whose stdout is their answer; their logs go to stderr so the answer can be piped.
ANSWERING_COMMANDS = {"current", "heads", "history", "sql"}


class _Signalled(BaseException):
    """Raised by the early signal handler, before the event loop takes over signals."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _raise_signalled(signum: int, frame: object) -> None:
    raise _Signalled(signum)


def main(argv: Sequence[str] | None = None) -> None:
    # As PID 1 in a container, a signal without a handler is ignored: install ours before anything slow.
    for signum in SIGNAL_EXIT:
        signal.signal(signum, _raise_signalled)
    code = run(sys.argv[1:] if argv is None else argv, os.environ)
    # Skip the interpreter's teardown of every imported revision module (up to half a second with hundreds of
    # them): nothing is left to clean up once the logs and the termination log are written.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def run(argv: Sequence[str], environ: os._Environ[str] | dict[str, str]) -> int:
    settings: Settings | None = None
    secrets: list[str] = []
    try:
        settings = from_environ(environ, argv)
        secrets = _secret_values(settings)
        _configure_logging(settings)
        from . import fastpath

        summary = fastpath.no_op_summary(settings)
        if summary is None:
            from .runner import Runner

            result = asyncio.run(_run_with_signals(Runner(settings)))
            for line in result.output:
                print(line)
            summary = result.summary
        _write_termination_log(settings, summary)
        return 0
    except SystemExit as exc:  # argparse's --help
        return int(exc.code or 0)
    except _Signalled as exc:
        name, code = SIGNAL_EXIT[signal.Signals(exc.signum)]
        return _fail(settings, Interrupted(name, code, f"interrupted by {name} before any change"), secrets)
    except SidecarError as exc:
        return _fail(settings, exc, secrets)
    except Exception as exc:  # a bug: say so in one line, never a traceback that could carry a secret
        error = SidecarError(f"unexpected {type(exc).__name__}: {exc}", hint="please report this with the log")
        return _fail(settings, error, secrets)


async def _run_with_signals(runner: Runner) -> Result:
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
            raise _Signalled(signum)

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
            signal.signal(signum, _raise_signalled)


def _interrupted_message(runner: Runner, name: str) -> str:
    if runner.target is not None and runner.target.backend in ("mysql", "mariadb") and runner.last_applied:
        return (f"interrupted by {name}; the session was ended and the lock released; the database is at "
                f"{runner.last_applied} (DDL of the interrupted revision may have been committed implicitly)")
    state = f"the database is at {runner.last_applied}" if runner.last_applied else "no revision was recorded"
    return f"interrupted by {name}; the current transaction was rolled back and the lock released; {state}"


def _configure_logging(settings: Settings) -> None:
    from . import logs

    stream = sys.stderr if settings.command in ANSWERING_COMMANDS else sys.stdout
    logs.configure(settings.log_format, settings.log_level, stream=stream)


def _fail(settings: Settings | None, error: SidecarError, secrets: list[str]) -> int:
    message = _redact(str(error), secrets)
    if settings is None:
        # Settings could not be read, so logging is not configured: one JSON line in the default shape.
        from . import logs

        logs.configure("auto", "info")
    from .logs import get_logger

    get_logger().error("failed", error=message, exit_code=error.exit_code, kind=error.title)
    if settings is not None:
        _write_termination_log(settings, f"exit {error.exit_code} ({error.title}): {message}")
    return error.exit_code


def _write_termination_log(settings: Settings, line: str) -> None:
    path = settings.termination_log
    if not path:
        return
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(line[:4000] + "\n")  # Kubernetes keeps at most 4096 bytes
    except OSError:
        pass  # not in Kubernetes, or not writable: the log line is enough


def _secret_values(settings: Settings) -> list[str]:
    """Every form a secret could take in a message: as is, and percent-encoded as in a URL."""
    values: list[str] = []
    for value in (settings.db_password, settings.database_url):
        if isinstance(value, Secret) and value.reveal():
            values.append(value.reveal())
    if settings.database_url is not None:
        try:
            password = urlsplit(settings.database_url.reveal()).password
        except ValueError:
            password = None
        if password:
            values.extend([password, unquote(password)])
    forms = set()
    for value in values:
        forms.update({value, quote(value, safe=""), quote_plus(value)})
    return sorted((form for form in forms if len(form) >= 3), key=len, reverse=True)


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


if __name__ == "__main__":
    main()
