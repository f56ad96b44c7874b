"""Wait for the database: retry a real login with jittered exponential backoff until it succeeds or time runs out."""

from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_delay, wait_random_exponential

from . import failures
from .database_url import DatabaseTarget
from .errors import AccessDenied, ConfigurationError, DatabaseUnreachable
from .logs import get_logger

# Sleep at most this long between attempts, so a server that has just come up is noticed within ~0.5 s.
MAX_BACKOFF = 0.4
# One login attempt may take this long (a SYN into a black hole would otherwise hang for minutes).
ATTEMPT_TIMEOUT = 5.0
# Log "still waiting" at most this often.
LOG_EVERY = 5.0


def create_engine(target: DatabaseTarget) -> AsyncEngine:
    """A NullPool engine: one sidecar run needs one connection, returned to nobody."""
    connect_args = dict(target.connect_args)
    if target.backend == "postgresql":
        connect_args["server_settings"] = {"application_name": "alembic-sidecar"}
    engine = create_async_engine(target.url, poolclass=NullPool, connect_args=connect_args)
    if target.backend == "sqlite":
        _make_sqlite_ddl_transactional(engine)
    return engine


def _make_sqlite_ddl_transactional(engine: AsyncEngine) -> None:
    """Python's sqlite3 commits before DDL on its own; emit BEGIN ourselves so a failed revision rolls back."""

    @event.listens_for(engine.sync_engine, "connect")
    def disable_driver_transactions(dbapi_connection, connection_record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def begin(connection):  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN")


def _limit_attempt(engine: AsyncEngine, deadline: float) -> None:
    timeout_key = {"postgresql": "timeout", "mysql": "connect_timeout", "mariadb": "connect_timeout"}
    key = timeout_key.get(engine.dialect.name)
    if key is None:
        return

    @event.listens_for(engine.sync_engine, "do_connect")
    def bound_attempt(dialect, conn_rec, cargs, cparams):  # type: ignore[no-untyped-def]
        remaining = deadline - time.monotonic()
        value = max(0.5, min(ATTEMPT_TIMEOUT, remaining))
        cparams[key] = value if key == "timeout" else max(1, int(value))


async def connect(engine: AsyncEngine, target: DatabaseTarget, timeout: float) -> AsyncConnection:
    """Log in, retrying transient failures for up to ``timeout`` seconds; return the open connection."""
    log = get_logger()
    started = time.monotonic()
    _limit_attempt(engine, started + timeout)
    last_logged = started - LOG_EVERY  # say at the first failure why nothing happens yet, then every LOG_EVERY
    attempts = 0

    def before_sleep(state: RetryCallState) -> None:
        nonlocal last_logged
        now = time.monotonic()
        if now - last_logged >= LOG_EVERY:
            last_logged = now
            error = state.outcome.exception() if state.outcome else None
            log.info("database_waiting", database=target.masked, attempts=state.attempt_number,
                     elapsed_s=round(now - started, 1), timeout_s=timeout,
                     reason=failures.describe(error) if error else None)

    retrying = AsyncRetrying(
        stop=stop_after_delay(timeout),
        wait=wait_random_exponential(multiplier=0.05, max=MAX_BACKOFF),
        retry=retry_if_exception(failures.is_transient),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts = attempt.retry_state.attempt_number
                connection = await engine.connect()
    except Exception as exc:
        raise _classify_login_failure(exc, target, timeout) from None
    log.info("database_ready", database=target.masked, attempts=attempts,
             waited_ms=round((time.monotonic() - started) * 1000))
    return connection


def _classify_login_failure(exc: Exception, target: DatabaseTarget, timeout: float) -> Exception:
    reason = failures.describe(exc)
    if failures.is_access_denied(exc):
        return AccessDenied(f"{target.masked} refused the login: {reason}",
                            hint="check the user, password, database name and grants")
    if failures.is_transient(exc):
        return DatabaseUnreachable(f"{target.masked} did not accept a login within {timeout:g} s ({reason})",
                                   hint="check host, port and network, or raise MIGRATE_WAIT_TIMEOUT")
    if target.backend == "sqlite":
        return ConfigurationError(f"cannot open the SQLite database {target.url.database!r} ({reason})",
                                  hint="make sure its directory exists and is writable")
    return ConfigurationError(f"cannot connect to {target.masked}: {reason}",
                              hint="check the URL's options and the server's TLS settings")
