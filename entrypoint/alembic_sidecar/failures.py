"""Read driver exceptions: is a failure worth retrying, did the server refuse us, and what one line says it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

# PostgreSQL SQLSTATEs that mean "not ready yet": starting up / shutting down, too many connections, admin shutdown.
PG_TRANSIENT = {"57P03", "53300", "53400", "57P01", "57P02", "08000", "08001", "08003", "08004", "08006"}
# Login or privilege refused; retrying cannot help.
PG_ACCESS = {"28P01", "28000", "42501", "3D000"}
# MySQL client/server error numbers: can't connect, unknown host, server gone, lost connection, too many connections.
MYSQL_TRANSIENT = {2002, 2003, 2005, 2006, 2013, 1040, 1203, 1053}
# Access denied (user, database), unknown database, password expired.
MYSQL_ACCESS = {1044, 1045, 1049, 1142, 1227, 1698, 1862, 3118}
MYSQL_UNDEFINED_TABLE = 1146


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def sqlstate(exc: BaseException) -> str | None:
    for cause in causes(exc):
        code = getattr(cause, "sqlstate", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def mysql_errno(exc: BaseException) -> int | None:
    for cause in causes(exc):
        if type(cause).__module__.startswith("pymysql") and cause.args and isinstance(cause.args[0], int):
            return cause.args[0]
    return None


def is_transient(exc: BaseException) -> bool:
    """True for failures a server that is still starting up (or not yet resolvable) produces."""
    if is_access_denied(exc):
        return False
    state, errno = sqlstate(exc), mysql_errno(exc)
    if state in PG_TRANSIENT or errno in MYSQL_TRANSIENT:
        return True
    for cause in causes(exc):
        if isinstance(cause, (ConnectionError, socket.gaierror, TimeoutError)):
            return True
        if isinstance(cause, OSError) and cause.errno is not None and type(cause) is OSError:
            return True  # e.g. EHOSTUNREACH while a Service's endpoints are being set up
        if type(cause).__name__ in ("ConnectionDoesNotExistError", "CannotConnectNowError", "TooManyConnectionsError"):
            return True
    return False


def is_access_denied(exc: BaseException) -> bool:
    return sqlstate(exc) in PG_ACCESS or mysql_errno(exc) in MYSQL_ACCESS


def is_undefined_table(exc: BaseException) -> bool:
    if sqlstate(exc) == "42P01" or mysql_errno(exc) == MYSQL_UNDEFINED_TABLE:
        return True
    return any("no such table" in str(cause) for cause in causes(exc) if type(cause).__module__ == "sqlite3")


def describe(exc: BaseException) -> str:
    """One line naming the innermost cause, without SQLAlchemy's URL-bearing wrapper text."""
    innermost = list(causes(exc))[-1]
    for cause in causes(exc):
        # The driver's own exception carries the server's message; SQLAlchemy's wrapper adds noise.
        if type(cause).__module__.split(".")[0] in ("asyncpg", "pymysql", "sqlite3", "aiosqlite"):
            innermost = cause
            break
    if type(innermost).__module__.startswith("pymysql") and len(innermost.args) >= 2:
        text = str(innermost.args[1])
    else:
        text = str(innermost) or type(innermost).__name__
    first_line = text.strip().splitlines()[0] if text.strip() else type(innermost).__name__
    return f"{type(innermost).__name__}: {first_line}"
