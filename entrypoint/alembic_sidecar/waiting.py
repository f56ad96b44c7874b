"""Wait for the database: retry a real login with jittered exponential backoff until it succeeds or time runs out."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_random_exponential

from . import failures
from .databases.base import Driver
from .endpoint import Endpoint
from .errors import ConfigurationError, SidecarError
from .failures import Fault
from .fault_errors import Phase, fault_error
from .logs import get_logger

# Sleep at most this long between attempts, so a server that has just come up is noticed within ~0.5 s.
MAX_BACKOFF = 0.4
# One login attempt may take this long (a SYN into a black hole would otherwise hang for minutes).
ATTEMPT_TIMEOUT = 5.0
# Log "still waiting" at most this often.
LOG_EVERY = 5.0


class _Deadline:
    """The login wait's end; each attempt gets what is left of it, at most ATTEMPT_TIMEOUT."""

    def __init__(self) -> None:
        self.at = time.monotonic() + ATTEMPT_TIMEOUT

    def attempt_timeout(self) -> float:
        return max(0.5, min(ATTEMPT_TIMEOUT, self.at - time.monotonic()))


def create_engine(endpoint: Endpoint, database: Driver,
                  prepare: Callable[[Any], Awaitable[None]]) -> tuple[AsyncEngine, _Deadline]:
    """A NullPool engine whose connections come from the driver's own ``connect``, then ``prepare``.

    ``prepare`` runs on the bare connection before SQLAlchemy's dialect sets it up, so that a pooler is detected
    before the dialect's first prepared statement can fail through it.
    """
    deadline = _Deadline()

    async def connect() -> object:
        raw = await database.connect(endpoint, deadline.attempt_timeout())
        try:
            await prepare(raw)
        except BaseException:
            await database.close(raw)
            raise
        return raw

    engine = create_async_engine(endpoint.sqlalchemy_url(), poolclass=NullPool, async_creator=connect)
    database.configure_engine(engine)
    return engine, deadline


def _retryable(database: Driver) -> object:
    def check(exc: BaseException) -> bool:
        return not isinstance(exc, SidecarError) and database.classify(exc) is Fault.UNAVAILABLE
    return check


async def connect(engine: AsyncEngine, deadline: _Deadline, endpoint: Endpoint, database: Driver,
                  timeout: float) -> AsyncConnection:
    """Log in, retrying transient failures for up to ``timeout`` seconds; return the open connection."""
    log = get_logger()
    started = time.monotonic()
    deadline.at = started + timeout
    last_logged = started - LOG_EVERY  # say at the first failure why nothing happens yet, then every LOG_EVERY
    attempts = 0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal last_logged
        now = time.monotonic()
        if now - last_logged >= LOG_EVERY:
            last_logged = now
            error = state.outcome.exception() if state.outcome else None
            log.info("database_waiting", database=endpoint.masked, attempts=state.attempt_number,
                     elapsed_s=round(now - started, 1), timeout_s=round(timeout, 1),
                     reason=failures.describe(error) if error else None)

    retrying = AsyncRetrying(
        stop=stop_after_delay(max(0.0, timeout - MAX_BACKOFF)),
        wait=wait_random_exponential(multiplier=0.05, max=MAX_BACKOFF),
        retry=retry_if_exception(_retryable(database)),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                connection = await engine.connect()
    except SidecarError:
        raise
    except Exception as exc:
        raise classify_login_failure(exc, endpoint, database, timeout) from None
    log.info("database_ready", database=endpoint.masked, attempts=attempts,
             waited_ms=round((time.monotonic() - started) * 1000))
    return connection


def classify_login_failure(exc: BaseException, endpoint: Endpoint, database: Driver,
                           timeout: float) -> SidecarError:
    reason = failures.describe(exc)
    fault = database.classify(exc)
    phase = Phase("logging in", rerun="nothing was changed by this run; rerunning is safe",
                  refused=f"{endpoint.masked} refused the login",
                  refused_hint="check the user, password (or client certificate), database name and grants",
                  unreachable=f"{endpoint.masked} did not accept a login within {timeout:g} s",
                  unreachable_hint="check host, port and network, or raise MIGRATE_WAIT_TIMEOUT")
    if fault in (Fault.ACCESS, Fault.UNAVAILABLE):
        error = fault_error(fault, phase, reason)
        assert error is not None
        return error
    if not endpoint.is_server:
        return ConfigurationError(f"cannot open the {database.title} database {endpoint.database!r} ({reason})",
                                  hint="make sure its directory exists and is writable")
    return ConfigurationError(f"cannot connect to {endpoint.masked}: {reason}",
                              hint="check the URL's options and the server's TLS settings")
