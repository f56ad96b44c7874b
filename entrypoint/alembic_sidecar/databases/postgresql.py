"""PostgreSQL through asyncpg: session settings, the advisory lock, pooler detection, the durable commit, faults.

The lock is a session-level advisory lock whose key is the first 8 bytes of SHA-256(MIGRATE_LOCK_NAME) as a signed
64-bit integer; it is per database and dies with its session. A pooler in transaction or statement mode hands the
session's server connection to other clients between transactions, so a session lock would not exclude anybody
there and could stay behind on a pooled server connection: ``prepare_session`` detects that before any lock is
taken and refuses to run.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from .. import tls
from ..errors import ConfigurationError
from ..failures import Fault, causes, connection_broken, sqlstate, tls_fault
from . import (KEEPALIVE_COUNT, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, USER_TIMEOUT_MS, bound_socket, quote_identifier,
               squawk)
from .base import Driver

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..endpoint import Endpoint
    from ..settings import Settings

APPLICATION_NAME = "alembic-sidecar"
# A custom setting that marks our server session, so that a pooler switching sessions under us is seen.
SESSION_MARK = "alembic_sidecar.session"

_FAULTS = {
    "28P01": Fault.ACCESS, "28000": Fault.ACCESS, "42501": Fault.ACCESS, "3D000": Fault.ACCESS,
    "57P01": Fault.UNAVAILABLE, "57P02": Fault.UNAVAILABLE, "57P03": Fault.UNAVAILABLE, "57P05": Fault.UNAVAILABLE,
    "53300": Fault.UNAVAILABLE, "53400": Fault.UNAVAILABLE,
    "25006": Fault.READ_ONLY,
    "55P03": Fault.LOCK_TIMEOUT,
    "40P01": Fault.DEADLOCK, "40001": Fault.DEADLOCK,
    "57014": Fault.STATEMENT_TIMEOUT,
}


class PoolerDetected(ConfigurationError):
    """The connection goes through a pooler in transaction or statement mode, where a session lock is a lie."""

    def __init__(self) -> None:
        super().__init__(
            "the database connection goes through a pooler in transaction or statement pooling mode (PgBouncer?): "
            "a session lock cannot keep other migrators out there",
            hint="connect directly to PostgreSQL, or through a pool in session mode (pool_mode=session)")


def advisory_key(name: str) -> int:
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def classify(exc: BaseException) -> Fault | None:
    state = sqlstate(exc)
    if state in _FAULTS:
        return _FAULTS[state]
    fault = tls_fault(exc)
    if fault is not None:
        return fault
    if (state or "").startswith("08") or connection_broken(exc):
        return Fault.UNAVAILABLE
    return None


def tls_arguments(endpoint: Endpoint) -> dict[str, Any]:
    """asyncpg's TLS arguments: our own SSLContext where the server must speak TLS, libpq's fallback otherwise.

    ``prefer`` and ``allow`` (and no mode: libpq's default, prefer) verify nothing and may fall back to plain text
    (or start with it): asyncpg does that dance itself when given the mode's name, and takes a client certificate
    for it only through a DSN. libpq's own files in ~/.postgresql are used where nothing else is set, as libpq does.
    """
    from ..endpoint import VERIFYING_MODES

    endpoint = _with_libpq_files(endpoint)
    mode = endpoint.sslmode
    if mode == "disable":
        return {"ssl": False}
    if mode in (None, "allow", "prefer"):
        if endpoint.sslcert is None and endpoint.sslkey is None:
            return {"ssl": mode} if mode else {}
        tls.context(endpoint)  # a bad file is a configuration error here too, not a silent plain-text login
        files = {"sslcert": endpoint.sslcert, "sslkey": endpoint.sslkey, "sslpassword": endpoint.sslpassword}
        return {"ssl": mode or "prefer",
                "dsn": "postgresql://?" + urlencode({name: value for name, value in files.items() if value})}
    if mode in VERIFYING_MODES and endpoint.sslrootcert is None:
        raise ConfigurationError(f"sslmode={mode} ({endpoint.source_of('sslmode')}) needs the CA certificate that "
                                 "signed the server's",
                                 hint="set DB_SSLROOTCERT (or sslrootcert in the URL, or PGSSLROOTCERT) to its file, "
                                      "or sslrootcert=system for the image's trusted roots")
    return {"ssl": tls.context(endpoint)}


def _with_libpq_files(endpoint: Endpoint) -> Endpoint:
    """libpq's defaults, ~/.postgresql/root.crt, postgresql.crt and postgresql.key, where they exist and nothing
    else names a file."""
    import os
    from dataclasses import replace

    home = os.path.expanduser("~/.postgresql")
    found = {name: os.path.join(home, file) for name, file in (("sslrootcert", "root.crt"),
                                                                ("sslcert", "postgresql.crt"),
                                                                ("sslkey", "postgresql.key"))
             if getattr(endpoint, name) is None and os.path.isfile(os.path.join(home, file))}
    if not found:
        return endpoint
    sources = (*map(tuple, endpoint.tls_sources), *((name, f"libpq's default {path}") for name, path in found.items()))
    return replace(endpoint, **found, tls_sources=sources)


async def connect(endpoint: Endpoint, timeout: float) -> Any:
    import asyncpg

    endpoint = _with_libpq_files(endpoint)  # so that a failure names the file that was used
    arguments = tls_arguments(endpoint)

    async def attempt(context: Any) -> Any:
        return await asyncpg.connect(
            host=endpoint.host, port=endpoint.port, user=endpoint.user, password=endpoint.password,
            database=endpoint.database, timeout=timeout, server_settings={"application_name": APPLICATION_NAME},
            **{**arguments, **({"ssl": context} if context is not None else {})})

    own_context = arguments.get("ssl") if isinstance(arguments.get("ssl"), ssl.SSLContext) else None
    connection = await tls.login(endpoint, own_context, attempt, close)
    bound_socket(connection._transport.get_extra_info("socket"))
    if endpoint.options:
        # SET, not startup parameters: a pooler in front (PgBouncer) refuses startup parameters it does not know.
        await connection.execute("; ".join(
            f"SELECT set_config({_literal(name)}, {_literal(value)}, false)" for name, value in endpoint.options))
    return connection


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


async def read_table(connection: Any, table: str, schema: str | None,
                     columns: Sequence[str]) -> list[tuple[Any, ...]] | None:
    name = (quote_identifier(schema) + "." if schema else "") + quote_identifier(table)
    # Asking first keeps "relation does not exist" out of the server log on a fresh database.
    if await connection.fetchval("SELECT to_regclass($1)", name) is None:
        return None
    listed = ", ".join(map(quote_identifier, columns))
    return [tuple(row) for row in await connection.fetch(f"SELECT {listed} FROM {name}")]


async def close(connection: Any) -> None:
    connection.terminate()


def _check_mark(token: str, *, present: bool) -> str:
    """A statement that fails with our message when the session mark is (not) ours; simple protocol, no rows."""
    test = "=" if present else "<>"
    return (f"DO $$BEGIN IF coalesce(current_setting('{SESSION_MARK}', true), '') {test} '{token}' THEN "
            f"RAISE EXCEPTION 'alembic-sidecar: pooled session'; END IF; END$$")


def _where_known(name: str, value: object) -> str:
    """Set ``name`` for the session; an older server that lacks the setting skips it instead of failing."""
    return (f"DO $$BEGIN PERFORM set_config('{name}', '{value}', false); "
            "EXCEPTION WHEN undefined_object THEN NULL; END$$")


# The server ends a silent client's session (and its lock): keepalive probes, unacknowledged data (12+), and a
# check for a vanished client even mid-statement (14+), so a killed sidecar's work stops within seconds.
LIVENESS = (f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE}", f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL}",
            f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}", _where_known("tcp_user_timeout", USER_TIMEOUT_MS),
            _where_known("client_connection_check_interval", 2000))


async def prepare_session(raw: Any, settings: Settings, endpoint: Endpoint | None) -> str:
    """Let the server drop our session (and lock) if the client goes silent; with ``endpoint``, detect a pooler.

    Every statement here uses the simple query protocol: through a transaction pooler, prepared statements of one
    transaction do not exist in the next, and the detection must answer before anything else fails oddly.
    """
    import secrets

    import asyncpg

    token = secrets.token_hex(8)
    await raw.execute("; ".join([*LIVENESS, f"SELECT set_config('{SESSION_MARK}', '{token}', false)"]))
    if endpoint is None:
        return token
    # The neighbour's login is skipped only where this process's fleet parent already ran the same test on the same
    # server, database and user (see rule_out_pooler); our own mark is still checked here and by the lock.
    await _neighbour_test(raw, None if _pool_key(endpoint) in _NO_POOLER else endpoint, token)
    return token


async def _neighbour_test(raw: Any, endpoint: Endpoint | None, token: str) -> None:
    """Raise PoolerDetected when the marked session ``raw`` is handed to a second login (``endpoint``) or lost."""
    import asyncpg

    neighbour = None
    if endpoint is not None:
        try:
            neighbour = await connect(endpoint, 5.0)
        except Exception:
            neighbour = None  # no second login possible (connection limit): the lock's own check still applies
    try:
        # A transaction pooler hands our just-released server session to the next client (PgBouncer reuses the
        # most recently used one): the neighbour then sees our mark. Our next transaction may land elsewhere.
        if neighbour is not None:
            await neighbour.execute(_check_mark(token, present=True))
        await raw.execute(_check_mark(token, present=False))
    except asyncpg.RaiseError:
        raise PoolerDetected() from None
    finally:
        if neighbour is not None:
            neighbour.terminate()


# Where the neighbour test found no pooler in transaction or statement mode, by _pool_key; filled by a fleet's
# parent before it forks, so that its targets on one server and database share that one test.
_NO_POOLER: set[tuple[object, ...]] = set()


def _pool_key(endpoint: Endpoint) -> tuple[object, ...]:
    """What picks PgBouncer's pool and its mode: the address, the database and the user (not session options)."""
    return (endpoint.host, endpoint.port, endpoint.database, endpoint.user)


async def rule_out_pooler(endpoint: Endpoint, timeout: float) -> bool:
    """The neighbour test of prepare_session, run once for an endpoint several fleet targets share: True (and
    remembered for this process and the ones it forks) when no pooler in transaction or statement mode is in front.

    Anything else (no login, a pooler, no answer within ``timeout``) is False and remembered not at all: then each
    target runs the whole test itself and reports what it finds.
    """
    import asyncio
    import secrets

    token = secrets.token_hex(8)
    try:
        async with asyncio.timeout(timeout):
            raw = await connect(endpoint, timeout)
            try:
                await raw.execute(f"SELECT set_config('{SESSION_MARK}', '{token}', false)")
                await _neighbour_test(raw, endpoint, token)
            finally:
                raw.terminate()
    except Exception:
        return False
    _NO_POOLER.add(_pool_key(endpoint))
    return True


def migration_settings(settings: Settings, *, is_mariadb: bool, bundled: bool) -> list[str]:
    statements = []
    if bundled and settings.transaction_per_migration:
        # Each revision still commits atomically; only the wait for the disk is deferred to one final durable
        # commit (make_durable), which saves a WAL flush per revision.
        statements.append("SET synchronous_commit = off")
    if settings.statement_timeout is not None:
        statements.append(f"SET statement_timeout = {round(settings.statement_timeout * 1000)}")
    if settings.ddl_lock_timeout is not None:
        statements.append(f"SET lock_timeout = {round(settings.ddl_lock_timeout * 1000)}")
    return statements


class Lock:
    """A session-level advisory lock on the migration connection: per-revision commits do not release it."""

    def __init__(self, connection: AsyncConnection, name: str, token: str) -> None:
        self.connection = connection
        self.key = advisory_key(name)
        self.token = token
        self.description = f"pg_advisory_lock({self.key})"

    async def try_acquire(self) -> bool:
        from sqlalchemy import text

        # One statement, so the mark check and the lock happen on the same server session whatever sits between.
        outcome = (await self.connection.execute(text(
            f"SELECT CASE WHEN coalesce(current_setting('{SESSION_MARK}', true), '') <> :token THEN 'moved' "
            "WHEN pg_try_advisory_lock(:key) THEN 'acquired' ELSE 'busy' END"),
            {"token": self.token, "key": self.key})).scalar()
        await self.connection.commit()
        if outcome == "moved":
            raise PoolerDetected()
        return outcome == "acquired"

    async def release(self) -> None:
        from sqlalchemy import text

        await self.connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        await self.connection.commit()


def lock(connection: AsyncConnection, settings: Settings, endpoint: Endpoint, token: str) -> Lock:
    # A version table in a schema of its own (a fleet's schema=NAME target) has a lock of its own, so that the
    # tenants of one database migrate side by side; any run that migrates that schema takes the same key.
    schema = settings.version_table_schema
    return Lock(connection, f"{settings.lock_name}:{schema}" if schema else settings.lock_name, token)


def in_schema(endpoint: Endpoint, name: str) -> Endpoint:
    """search_path set to the schema alone (after the URL's own `options`), so unqualified names land there."""
    from dataclasses import replace

    options = tuple(option for option in endpoint.options if option[0] != "search_path")
    return replace(endpoint, options=(*options, ("search_path", quote_identifier(name))))


# Statements whose rows nobody reads: DDL, and DML without RETURNING (a revision's work, Alembic's version UPDATE).
_NO_ROWS = re.compile(r"\s*(?:(?:CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE|TRUNCATE)\b"
                      r"|(?:UPDATE|INSERT|DELETE)\b(?!.*\bRETURNING\b))", re.S | re.I)
_ROW_COUNT = re.compile(r"(?:UPDATE|DELETE|INSERT \d+) (\d+)")


def configure_engine(engine: Any) -> None:
    """Run parameterless statements that return no rows in one round trip instead of two.

    SQLAlchemy's asyncpg adapter prepares every statement (Parse/Describe, then Bind/Execute); a statement without
    parameters whose rows nobody reads needs only the simple query protocol, as plain Alembic on psycopg2 uses.
    This reaches into the adapter (SQLAlchemy is pinned by the lock); tests/integration/test_round_trips.py fails
    if a SQLAlchemy upgrade changes what it relies on.
    """
    from collections import deque

    from sqlalchemy import event
    from sqlalchemy.util.concurrency import await_

    @event.listens_for(engine.sync_engine, "do_execute")
    def execute_simply(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
        if parameters or not _NO_ROWS.match(statement):
            return None  # SQLAlchemy's own path
        adapter = cursor._adapt_connection

        async def run() -> str | None:
            async with adapter._execute_mutex:
                if adapter._transaction is None:
                    await adapter._start_transaction()
                try:
                    return await adapter._connection.execute(statement)
                except Exception as error:
                    adapter._handle_exception(error)  # raises SQLAlchemy's translated error
                    return None

        status = await_(run())
        cursor._description, cursor._rows = None, deque()
        counted = _ROW_COUNT.match(status or "")
        cursor._rowcount = int(counted.group(1)) if counted else -1
        return True


def kill_statement(backend_id: int) -> tuple[str, dict[str, int]]:
    return "SELECT pg_terminate_backend(:id)", {"id": backend_id}


async def make_durable(connection: AsyncConnection) -> None:
    """One synchronous commit flushes the WAL up to it, so every revision committed before is on disk too."""
    from sqlalchemy import text

    await connection.rollback()
    await connection.execute(text("SET synchronous_commit = on"))
    await connection.execute(text("SELECT txid_current()"))  # a transaction id makes the commit flush
    await connection.commit()


def users_session_settings(settings: Settings, endpoint: Endpoint, *, is_mariadb: bool) -> list[str]:
    """What a user's env.py session gets on connect: our liveness bounds, the URL's `options`, the timeouts."""
    options = [f"SELECT set_config({_literal(name)}, {_literal(value)}, false)" for name, value in endpoint.options]
    return [*LIVENESS, *options, *migration_settings(settings, is_mariadb=is_mariadb, bundled=False)]


def settle_tls(endpoint: Endpoint) -> Endpoint:
    """sslrootcert=system implies verify-full, as libpq 16 has it; another mode beside it is refused."""
    from dataclasses import replace

    mode = endpoint.sslmode
    if endpoint.sslrootcert == "system":
        # libpq 16: the system's roots vouch for any name, so only the full check makes sense.
        if mode not in (None, "verify-full"):
            raise ConfigurationError(f"sslrootcert=system ({endpoint.source_of('sslrootcert')}) needs "
                                     f"sslmode=verify-full, got {mode} ({endpoint.source_of('sslmode')})",
                                     hint="set sslmode=verify-full, or give the CA's file instead of system")
        mode = "verify-full"
    return replace(endpoint, sslmode=mode) if mode != endpoint.sslmode else endpoint


class PostgreSQL(Driver):
    names = ("postgresql", "postgres")
    title = "PostgreSQL"
    default_port = 5432
    async_driver = "asyncpg"
    tls_parameters = {"sslrootcert": "sslrootcert", "sslcert": "sslcert", "sslkey": "sslkey",
                      "sslpassword": "sslpassword"}  # libpq's names
    own_parameters = ("options",)  # libpq's server settings, -c name=value
    reads_libpq_environment = True
    sslmode_in_url = True
    transactional_ddl = True
    # How a session names itself, so that another session can end it (kill_statement).
    backend_id_query = "SELECT pg_backend_pid()"
    lint_rules = squawk.RULES

    tls_arguments = staticmethod(tls_arguments)
    settle_tls = staticmethod(settle_tls)
    connect = staticmethod(connect)
    close = staticmethod(close)
    read_table = staticmethod(read_table)
    configure_engine = staticmethod(configure_engine)
    prepare_session = staticmethod(prepare_session)
    rule_out_pooler = staticmethod(rule_out_pooler)
    migration_settings = staticmethod(migration_settings)
    users_session_settings = staticmethod(users_session_settings)
    make_durable = staticmethod(make_durable)
    lock = staticmethod(lock)
    in_schema = staticmethod(in_schema)
    kill_statement = staticmethod(kill_statement)
    classify = staticmethod(classify)
    lint = staticmethod(squawk.lint)

    async def abort(self, raw: Any) -> None:
        raw.terminate()

    def abort_transport(self, raw: Any) -> None:
        transport = getattr(raw, "_transport", None)
        if transport is not None:
            transport.abort()

    async def execute_raw(self, connection: Any, statement: tuple[str, dict[str, int]]) -> None:
        sql, params = statement
        await connection.fetchval(sql.replace(":id", "$1"), *params.values())

    def stale_statement(self, exc: BaseException) -> bool:
        return any(type(cause).__name__ in ("InvalidCachedStatementError", "InvalidCachePlanError")
                   for cause in causes(exc))

    def missing_privilege(self, reason: str) -> str | None:
        if found := re.search(r"permission denied for schema (\S+)", reason):
            return f"CREATE on schema {found[1]}"
        if found := re.search(r"must be owner of (\w+ \S+)", reason):
            return f"ownership of {found[1]}"
        if found := re.search(r"permission denied for (\w+ \S+)", reason):
            return f"a privilege on {found[1]}"
        return None


DRIVER = PostgreSQL()
