"""MySQL and MariaDB through aiomysql: session settings, GET_LOCK, faults, and the UTF-8 password quirk.

DDL commits implicitly here, so a failed revision can leave some of its statements applied, and a DDL lock timeout
is not retried. The server has no per-session TCP keepalive; the migration session sets ``wait_timeout`` instead,
so a partitioned migrator's idle session, and its GET_LOCK, end within WAIT_TIMEOUT seconds.
"""

from __future__ import annotations

import hashlib
import re
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .. import tls
from ..endpoint import CHECK_HOSTNAME_PARAMETER
from ..errors import AccessDenied, ConfigurationError
from ..failures import Fault, causes, connection_broken, tls_fault
from . import bound_socket, quote_identifier
from .base import Driver

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..endpoint import Endpoint
    from ..settings import Settings



def _give_the_driver_a_login_name() -> None:
    """aiomysql calls getpass.getuser() when imported, and on Python 3.13+ that raises OSError for a UID with no
    passwd entry (OpenShift's arbitrary UIDs, the image's 10001), which aiomysql does not catch. getpass reads
    $USER first: set it before anything imports the driver (this module, SQLAlchemy's dialect, a user's env.py)."""
    import getpass
    import os

    try:
        getpass.getuser()
    except (KeyError, OSError):
        os.environ.setdefault("USER", "alembic-sidecar")


_give_the_driver_a_login_name()

NO_SUCH_TABLE = 1146
# Seconds the server keeps a silent session (and its lock) before it ends it.
WAIT_TIMEOUT = 60

_FAULTS = {
    # refused logins, unknown databases, missing grants; 3159: plain text where the server requires TLS (MariaDB 11)
    **dict.fromkeys((1044, 1045, 1049, 1142, 1227, 1698, 1862, 3118, 3159), Fault.ACCESS),
    # can't connect, unknown host, server gone, lost connection, too many connections, shutdown, killed
    **dict.fromkeys((2002, 2003, 2005, 2006, 2013, 2055, 1040, 1203, 1053, 1927, 1317), Fault.UNAVAILABLE),
    **dict.fromkeys((1290, 1792, 1836), Fault.READ_ONLY),
    1205: Fault.LOCK_TIMEOUT,
    1213: Fault.DEADLOCK,
    **dict.fromkeys((1969, 3024), Fault.STATEMENT_TIMEOUT),
}


def mysql_errno(exc: BaseException) -> int | None:
    for cause in causes(exc):
        if type(cause).__module__.startswith("pymysql") and cause.args and isinstance(cause.args[0], int):
            return cause.args[0]
    return None


def classify(exc: BaseException) -> Fault | None:
    fault = tls_fault(exc)  # before the errno: aiomysql wraps a refused certificate in 2003 "can't connect"
    if fault is not None:
        return fault
    errno = mysql_errno(exc)
    if errno in _FAULTS:
        return _FAULTS[errno]
    return Fault.UNAVAILABLE if connection_broken(exc) else None


def wire_password(password: str) -> str:
    """aiomysql encodes a str password as latin-1; MySQL hashed the UTF-8 bytes. Hand it text that encodes to those."""
    return password.encode("utf-8").decode("latin-1")


def lock_name(name: str, database: str | None) -> str:
    """GET_LOCK names are server-wide (not per schema) and at most 64 characters long."""
    scoped = f"{name}:{database or ''}"
    return scoped if len(scoped) <= 64 else hashlib.sha256(scoped.encode()).hexdigest()[:64]


def tls_arguments(endpoint: Endpoint) -> dict[str, Any]:
    """aiomysql's TLS argument: an SSLContext, or None for plain text.

    aiomysql cannot fall back from TLS to plain text, so ``allow`` and ``prefer`` mean plain text, as ``disable``.
    Without a CA file, ``verify-ca`` and ``verify-full`` verify against the image's trusted roots.
    """
    if endpoint.sslmode in (None, "disable", "allow", "prefer"):
        return {"ssl": None}
    return {"ssl": tls.context(endpoint)}


async def connect(endpoint: Endpoint, timeout: float) -> Any:
    import aiomysql
    from pymysql.constants import CLIENT

    context = tls_arguments(endpoint)["ssl"]

    async def attempt(context: ssl.SSLContext | None) -> Any:
        return await aiomysql.connect(
            host=endpoint.host, port=endpoint.port, user=endpoint.user or "",
            password=wire_password(endpoint.password or ""), db=endpoint.database,
            connect_timeout=max(1, timeout), charset="utf8mb4", ssl=context,
            client_flag=CLIENT.FOUND_ROWS)  # what SQLAlchemy's dialect asks for: matched rows, not changed rows

    connection = await tls.login(endpoint, context, attempt, close)
    if context is not None and not connection._secure:
        # aiomysql logs in without TLS, silently, when the server does not offer it.
        connection.close()
        raise AccessDenied(f"TLS: {endpoint.host}:{endpoint.port} does not offer TLS, but sslmode={endpoint.sslmode} "
                           f"from {endpoint.source_of('sslmode')} requires it",
                           hint="enable TLS on the server (ssl_cert, ssl_key), or connect without sslmode and CA")
    bound_socket(connection._writer.transport.get_extra_info("socket"))
    return connection


async def read_table(connection: Any, table: str, schema: str | None,
                     columns: Sequence[str]) -> list[tuple[Any, ...]] | None:
    name = (quote_identifier(schema, "`") + "." if schema else "") + quote_identifier(table, "`")
    listed = ", ".join(quote_identifier(column, "`") for column in columns)
    async with connection.cursor() as cursor:
        try:
            await cursor.execute(f"SELECT {listed} FROM {name}")
        except Exception as exc:
            if mysql_errno(exc) == NO_SUCH_TABLE:
                return None  # no revision applied yet, as on the other databases
            raise
        return [tuple(row) for row in await cursor.fetchall()]


async def close(connection: Any) -> None:
    connection.close()


async def prepare_session(raw: Any, settings: Settings, endpoint: Endpoint | None) -> str:
    async with raw.cursor() as cursor:
        await cursor.execute(f"SET SESSION wait_timeout = {WAIT_TIMEOUT}")
    await raw.commit()
    return ""


def migration_settings(settings: Settings, *, is_mariadb: bool, bundled: bool) -> list[str]:
    statements = []
    if settings.statement_timeout is not None:
        if is_mariadb:
            statements.append(f"SET SESSION max_statement_time = {settings.statement_timeout:g}")
        else:  # MySQL bounds only SELECT statements
            statements.append(f"SET SESSION max_execution_time = {round(settings.statement_timeout * 1000)}")
    if settings.ddl_lock_timeout is not None:
        seconds = max(1, round(settings.ddl_lock_timeout))
        statements.append(f"SET SESSION lock_wait_timeout = {seconds}")
        statements.append(f"SET SESSION innodb_lock_wait_timeout = {seconds}")
    return statements


class Lock:
    """A GET_LOCK named after the lock name and the database; the server frees it when the session ends."""

    def __init__(self, connection: AsyncConnection, name: str) -> None:
        self.connection = connection
        self.name = name
        self.description = f"GET_LOCK('{name}')"

    async def try_acquire(self) -> bool:
        from sqlalchemy import text

        got = (await self.connection.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.name})).scalar()
        await self.connection.commit()
        return got == 1

    async def release(self) -> None:
        from sqlalchemy import text

        await self.connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.name})
        await self.connection.commit()


def lock(connection: AsyncConnection, settings: Settings, endpoint: Endpoint, token: str) -> Lock:
    return Lock(connection, lock_name(settings.lock_name, endpoint.database))


def kill_statement(backend_id: int) -> tuple[str, dict[str, int]]:
    return f"KILL {int(backend_id)}", {}


def users_session_settings(settings: Settings, endpoint: Endpoint, *, is_mariadb: bool) -> list[str]:
    """What a user's env.py session gets on connect: the idle bound and the timeouts our own session has."""
    return [f"SET SESSION wait_timeout = {WAIT_TIMEOUT}",
            *migration_settings(settings, is_mariadb=is_mariadb, bundled=False)]


def settle_tls(endpoint: Endpoint) -> Endpoint:
    """MySQL clients (PyMySQL, SQLAlchemy's dialects) verify the server as soon as a CA is given."""
    from dataclasses import replace

    mode, check_hostname = endpoint.sslmode, endpoint.ssl_check_hostname
    if mode is None and endpoint.sslrootcert is not None:
        mode = "verify-ca" if check_hostname is False else "verify-full"
    elif mode is None and endpoint.sslcert is not None:
        mode = "require"
    if check_hostname is not None:
        wanted = "verify-full" if check_hostname else "verify-ca"
        if mode != wanted:
            raise ConfigurationError(f"{CHECK_HOSTNAME_PARAMETER}={str(check_hostname).lower()} contradicts "
                                     f"sslmode={mode or 'unset'} ({endpoint.source_of('sslmode')})",
                                     hint=f"{CHECK_HOSTNAME_PARAMETER} applies to a verified server: give ssl_ca "
                                          f"and drop sslmode, or set sslmode={wanted}")
    return replace(endpoint, sslmode=mode) if mode != endpoint.sslmode else endpoint


class MySQL(Driver):
    """MySQL and MariaDB: one driver under two names; which server it is stays a fact of SQLAlchemy's dialect."""

    names = ("mysql", "mariadb")
    title = "MySQL/MariaDB"
    default_port = 3306
    async_driver = "aiomysql"
    # SQLAlchemy's MySQL dialects' names.
    tls_parameters = {"ssl_ca": "sslrootcert", "ssl_cert": "sslcert", "ssl_key": "sslkey"}
    own_parameters = (CHECK_HOSTNAME_PARAMETER,)
    transactional_ddl = False
    ddl_rollback_note = "MySQL/MariaDB commit DDL implicitly"
    # How a session names itself, so that another session can end it (kill_statement).
    backend_id_query = "SELECT CONNECTION_ID()"

    tls_arguments = staticmethod(tls_arguments)
    settle_tls = staticmethod(settle_tls)
    connect = staticmethod(connect)
    close = staticmethod(close)
    read_table = staticmethod(read_table)
    prepare_session = staticmethod(prepare_session)
    migration_settings = staticmethod(migration_settings)
    users_session_settings = staticmethod(users_session_settings)
    lock = staticmethod(lock)
    kill_statement = staticmethod(kill_statement)
    classify = staticmethod(classify)

    def abort_transport(self, raw: Any) -> None:
        transport = getattr(getattr(raw, "_writer", None), "transport", None)
        if transport is not None:
            transport.abort()

    def message(self, cause: BaseException) -> str:
        # PyMySQL's exceptions are (errno, message)
        return str(cause.args[1]) if len(cause.args) >= 2 else str(cause)

    def missing_privilege(self, reason: str) -> str | None:
        # ER_TABLEACCESS_DENIED_ERROR: "CREATE command denied to user 'app'@'host' for table `db`.`t`"
        if found := re.search(r"(\w+) command denied to user \S+ for table (\S+)", reason):
            return f"{found[1]} on {found[2]}"
        return None


DRIVER = MySQL()
