"""Logging: structlog, JSON lines when stdout is not a terminal, Alembic's stdlib loggers routed the same way.

structlog is imported only when something beyond the fast no-op logs: that path writes its one JSON line itself,
in the same shape, because every pod restart pays for the import otherwise.
"""

from __future__ import annotations

import logging
import sys
import warnings
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import structlog

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
# Every form of every secret this run knows; each log line is scrubbed of them before it is written.
_SECRETS: list[str] = []
# Fields every line of this process carries (a fleet's target process: the target).
_BOUND: dict[str, Any] = {}
# What setup() chose; configure() applies it on first use.
_CHOSEN: dict[str, Any] = {"format": "auto", "level": "info", "stream": None, "configured": False}


def setup(log_format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Choose the format, level and stream; structlog is configured when first needed."""
    _CHOSEN.update(format=log_format, level=level, stream=stream or sys.stdout, configured=False)
    # A Python warning (Alembic's, a revision's, a driver's) is a log event too, never a raw line on stderr.
    warnings.showwarning = _show_warning


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: TextIO | None = None, line: str | None = None) -> None:
    """warnings.showwarning: one ``python_warning`` event; structlog is imported only when a warning fires."""
    try:
        get_logger().warning("python_warning", warning=str(message), category=category.__name__,
                             source=f"{filename}:{lineno}")
    except Exception:  # noqa: S110 - a warning must never break the code that raised it
        pass


def bind(**fields: Any) -> None:
    """Add ``fields`` to every later line of this process."""
    _BOUND.update(fields)


def _add_bound(logger: object, method: str, event_dict: dict[str, object]) -> dict[str, object]:
    for key, value in _BOUND.items():
        event_dict.setdefault(key, value)
    return event_dict


def add_secrets(forms: list[str]) -> None:
    _SECRETS.extend(form for form in forms if form not in _SECRETS)
    _SECRETS.sort(key=len, reverse=True)


def redacted(text: str) -> str:
    """``text`` without any secret this run knows, nor any credential in a URL or DSN (before a message is cut)."""
    from .redaction import redact

    return redact(text, _SECRETS)


def _scrub(logger: object, method: str, event_dict: dict[str, object]) -> dict[str, object]:
    """No log line carries a secret, whatever put it there (a driver's message, a user's env.py)."""
    from .redaction import redact

    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = redact(value, _SECRETS)
    return event_dict


def configure(log_format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger once, for the whole process."""
    import structlog

    setup(log_format, level, stream)
    _CHOSEN["configured"] = True
    stream = stream or sys.stdout
    if log_format == "auto":
        log_format = "console" if stream.isatty() else "json"
    renderer: structlog.typing.Processor
    if log_format == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_bound,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _scrub,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    # Alembic and SQLAlchemy log through the stdlib; give their lines the same shape.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name], processor=renderer))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    # Alembic's info lines ("Running upgrade a -> b", plugin setup) duplicate our own events.
    logging.getLogger("alembic").setLevel(max(LEVELS[level], logging.WARNING))


def flush_streams() -> None:
    """Write out what stdout and stderr buffer (before a fork, or before exiting without interpreter teardown)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def get_logger() -> structlog.typing.FilteringBoundLogger:
    import structlog

    if not _CHOSEN["configured"]:
        configure(_CHOSEN["format"], _CHOSEN["level"], _CHOSEN["stream"])
    return structlog.get_logger("alembic_sidecar")


def info(event: str, **fields: Any) -> None:
    """An info event; while structlog is not loaded and the output is JSON, written directly in its shape."""
    stream = _CHOSEN["stream"] or sys.stdout
    as_json = _CHOSEN["format"] == "json" or (_CHOSEN["format"] == "auto" and not stream.isatty())
    if _CHOSEN["configured"] or not as_json:
        get_logger().info(event, **fields)
        return
    if LEVELS[_CHOSEN["level"]] > logging.INFO:
        return
    import datetime
    import json

    line = {**_BOUND, **fields, "event": event, "level": "info",
            "timestamp": datetime.datetime.now(tz=datetime.timezone.utc).isoformat().replace("+00:00", "Z")}
    print(json.dumps(_scrub(None, "info", line)), file=stream, flush=True)


def migration_complete(before: tuple[str, ...], after: tuple[str, ...], applied: int, started: float,
                       past_target: str | None = None) -> str:
    """Log the run's summary event and return it as one line (for the termination log); ``past_target``: the
    upgrade's target, which lies below the database's revisions."""
    import time

    duration = round((time.monotonic() - started) * 1000)
    from_revision, to_revision = ",".join(before) or "base", ",".join(after) or "base"
    info("migration_complete", from_revision=from_revision, to_revision=to_revision,
                      applied=applied, duration_ms=duration)
    if past_target is not None:
        return f"already at {to_revision}, past the target {past_target}; nothing to do ({duration} ms)"
    if applied == 0:
        return f"already at {to_revision}; nothing to do ({duration} ms)"
    return f"migrated {from_revision} -> {to_revision}: {applied} revision(s) in {duration} ms"
