"""What revision code is allowed to do to the run: raise only ordinary errors, and answer each statement in time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from .databases.base import Driver
from .errors import Signalled


class RevisionEscaped(Exception):
    """A BaseException (SystemExit, KeyboardInterrupt, GeneratorExit) from revision code, made an ordinary error."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original

    @classmethod
    def wrap(cls, error: BaseException) -> BaseException:
        if isinstance(error, (Exception, Signalled)):
            return error
        return cls(error)


def guarded(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Revision code may raise anything; let only ordinary exceptions and our own signal through."""
    try:
        return function(*args, **kwargs)
    except (Exception, Signalled):
        raise
    except BaseException as exc:
        raise RevisionEscaped(exc) from exc


class StatementWatchdog:
    """Arms a timer around every revision statement; if the server neither answers nor cancels in time, the
    socket is aborted, so the statement fails at once instead of waiting on a dead path."""

    def __init__(self, engine: AsyncEngine, driver: Driver, bound: float | None, on_fire: Callable[[], None]) -> None:
        self.driver = driver
        self.bound = bound
        self.on_fire = on_fire
        self.loop = asyncio.get_running_loop()
        self.timer: asyncio.TimerHandle | None = None
        self.sync_engine = engine.sync_engine

    def __enter__(self) -> None:
        if self.bound is None:
            return
        event.listen(self.sync_engine, "before_cursor_execute", self._arm)
        event.listen(self.sync_engine, "after_cursor_execute", self._disarm)
        event.listen(self.sync_engine, "handle_error", self._disarm)

    def __exit__(self, *exc: object) -> None:
        if self.bound is None:
            return
        self._disarm()
        event.remove(self.sync_engine, "before_cursor_execute", self._arm)
        event.remove(self.sync_engine, "after_cursor_execute", self._disarm)
        event.remove(self.sync_engine, "handle_error", self._disarm)

    def _arm(self, connection: Any, *args: Any) -> None:
        self._disarm()
        assert self.bound is not None
        self.timer = self.loop.call_later(self.bound, self._abort, connection.connection.driver_connection)

    def _disarm(self, *args: Any) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _abort(self, raw: Any) -> None:
        self.on_fire()
        self.driver.abort_transport(raw)
