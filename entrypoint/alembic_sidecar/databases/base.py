"""The driver contract: what every database offers the core, with the defaults a backend overrides only where it
differs (as Alembic's ``DefaultImpl``).

A backend module imports its driver library only inside the methods that talk to the database, so that the facts
the URL parser needs (names, ports, parameters) cost no driver import.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from ..linting import Rule
    from sqlalchemy.ext.asyncio import AsyncConnection

    from ..endpoint import Endpoint
    from ..failures import Fault
    from ..settings import Settings


class Lock(Protocol):
    """The migration lock a driver makes: tried without waiting, released, and described for the logs."""

    description: str

    async def try_acquire(self) -> bool: ...

    async def release(self) -> None: ...


class NothingOutside(Exception):
    """The database lives only inside the process that opened it: no other login can read it."""


class Driver:
    """One database behind one interface; the core never asks which database it talks to."""

    #: The names it is registered under (URL schemes, DB_DRIVER values), its own name first.
    names: ClassVar[tuple[str, ...]] = ()
    #: How messages name it to the user.
    title: ClassVar[str] = ""
    #: A server reached over the network (False: a file).
    is_server: ClassVar[bool] = True
    default_port: ClassVar[int | None] = None
    #: The SQLAlchemy async driver this image ships for it (the ``+driver`` of its URL).
    async_driver: ClassVar[str] = ""
    #: URL parameters that name TLS files, mapped to the Endpoint field each fills.
    tls_parameters: ClassVar[dict[str, str]] = {}
    #: Further URL parameters it understands (PostgreSQL's ``options``...).
    own_parameters: ClassVar[tuple[str, ...]] = ()
    #: libpq's PGSSL* variables apply to it.
    reads_libpq_environment: ClassVar[bool] = False
    #: The sslmode goes into the SQLAlchemy URL a user's env.py gets.
    sslmode_in_url: ClassVar[bool] = False
    #: Whether a failed revision's DDL really rolls back.
    transactional_ddl: ClassVar[bool] = True
    #: What a rerun after a fault has to know when DDL does not roll back (the interrupted or failed revision).
    ddl_rollback_note: ClassVar[str] = ""
    #: The statement that gives a session's id for ``kill_statement`` (None: no server to ask).
    backend_id_query: ClassVar[str | None] = None
    #: `lint`'s rules of this database's own linter (the rules every database shares are in linting.py).
    lint_rules: ClassVar[tuple[Rule, ...]] = ()

    # -- logging in --------------------------------------------------------------------------------------------------

    def settle_tls(self, endpoint: Endpoint) -> Endpoint:
        """The TLS mode the URL's files imply where none was set; contradictions are a ConfigurationError."""
        return endpoint

    def in_database(self, endpoint: Endpoint, name: str) -> Endpoint:
        """A fleet's ``database=NAME`` target: the same server and login, another database."""
        from dataclasses import replace

        from ..errors import ConfigurationError

        if not self.is_server:
            raise ConfigurationError(f"database={name} cannot name a {self.title} database, which is a file",
                                     hint=f"list each {self.title} file as a full URL ({self.names[0]}:///path.db)")
        return replace(endpoint, database=name)

    def in_schema(self, endpoint: Endpoint, name: str) -> Endpoint:
        """A fleet's ``schema=NAME`` target: the session's default schema; the version table goes there too."""
        from ..errors import ConfigurationError

        raise ConfigurationError(f"schema={name} needs PostgreSQL; {self.title} has no schemas apart from databases",
                                 hint="list the tenant as database=NAME (or a full URL) instead")

    def tls_arguments(self, endpoint: Endpoint) -> dict[str, Any]:
        """The driver's TLS keyword arguments for ``endpoint``, shared by our logins and a user's engines."""
        return {}

    async def connect(self, endpoint: Endpoint, timeout: float) -> Any:
        """A bare driver connection, with the client-side liveness bounds set on its socket."""
        raise NotImplementedError

    async def close(self, connection: Any) -> None:
        """Close a bare connection without waiting on the server."""
        await connection.close()

    async def abort(self, raw: Any) -> None:
        """Drop a session whose server stopped answering (terminate, else close)."""
        result = raw.close()
        if asyncio.iscoroutine(result):
            await result

    def abort_transport(self, raw: Any) -> None:
        """Cut the socket under a statement that gets no answer, so that it fails at once."""
        return None

    # -- reading versions --------------------------------------------------------------------------------------------

    async def read_table(self, connection: Any, table: str, schema: str | None,
                         columns: Sequence[str]) -> list[tuple[Any, ...]] | None:
        """``columns`` of every row of a table of ours on a bare connection; None when the table does not exist."""
        raise NotImplementedError

    async def read_versions(self, connection: Any, table: str, schema: str | None = None) -> tuple[str, ...]:
        """The version table's rows on a bare connection; a missing table reads as empty."""
        rows = await self.read_table(connection, table, schema, ("version_num",))
        return tuple(sorted(row[0] for row in rows or ()))

    async def read_versions_now(self, endpoint: Endpoint, table: str, schema: str | None,
                                timeout: float) -> tuple[str, ...]:
        """One login, one read, close, all within ``timeout``: the fast path's answer and the parent's proof."""
        (rows,) = await self.read_tables_now(endpoint, [(table, schema, ("version_num",))], timeout)
        return tuple(sorted(row[0] for row in rows or ()))

    def exists(self, endpoint: Endpoint) -> bool:
        """Whether the database is there at all: a file not created yet is not (a read would be an error, where
        `history` means "nothing applied"). A server's database is taken to be there; a login says otherwise."""
        return True

    async def read_tables_now(self, endpoint: Endpoint, reads: Sequence[tuple[str, str | None, Sequence[str]]],
                              timeout: float) -> list[list[tuple[Any, ...]] | None]:
        """One login, a read of each (table, schema, columns), close, all within ``timeout``."""
        async with asyncio.timeout(timeout):
            connection = await self.connect(endpoint, timeout)
            try:
                return [await self.read_table(connection, *read) for read in reads]
            finally:
                await self.close(connection)

    # -- sessions ----------------------------------------------------------------------------------------------------

    def alembic_options(self) -> dict[str, Any]:
        """What Alembic's ``context.configure`` must be told of this database."""
        return {}

    def configure_engine(self, engine: Any) -> None:
        """What the database needs of SQLAlchemy's engine."""
        return None

    async def prepare_session(self, raw: Any, settings: Settings, endpoint: Endpoint | None) -> str:
        """Per-session settings on a new raw connection; returns the session's token (for the lock), or ""."""
        return ""

    async def rule_out_pooler(self, endpoint: Endpoint, timeout: float) -> bool:
        """Prove once, for the fleet targets that share ``endpoint``'s server, database and user, what each
        target's ``prepare_session`` would otherwise prove with a login of its own; False: nothing to share."""
        return False

    def migration_settings(self, settings: Settings, *, is_mariadb: bool, bundled: bool) -> list[str]:
        """Statements that bound the migration, run once the lock is held so they do not cut the lock wait short."""
        return []

    def users_session_settings(self, settings: Settings, endpoint: Endpoint, *, is_mariadb: bool) -> list[str]:
        """What each session a user's env.py opens gets (ALEMBIC_CONFIG): the bounds our own session has."""
        return self.migration_settings(settings, is_mariadb=is_mariadb, bundled=False)

    async def make_durable(self, connection: AsyncConnection) -> None:
        """A final synchronous commit where commits were made asynchronous."""
        return None

    def lock(self, connection: AsyncConnection, settings: Settings, endpoint: Endpoint, token: str) -> Lock:
        """The migration lock."""
        raise NotImplementedError

    # -- ending sessions ---------------------------------------------------------------------------------------------

    def kill_statement(self, backend_id: int) -> tuple[str, dict[str, int]] | None:
        """How another session ends ours on the server (None: it cannot)."""
        return None

    async def execute_raw(self, connection: Any, statement: tuple[str, dict[str, int]]) -> None:
        """Run a ``kill_statement`` on a bare connection."""
        sql, params = statement
        async with connection.cursor() as cursor:
            await cursor.execute(sql)

    # -- faults ------------------------------------------------------------------------------------------------------

    def classify(self, exc: BaseException) -> Fault | None:
        """The fault an exception reports, or None."""
        return None

    def stale_statement(self, exc: BaseException) -> bool:
        """A cached prepared statement the server no longer accepts: the statement is worth one more try."""
        return False

    def message(self, cause: BaseException) -> str:
        """The server's message in one of this driver's exceptions."""
        return str(cause)

    def missing_privilege(self, reason: str) -> str | None:
        """The privilege a refused statement lacked, read from the server's words in ``reason``; None if unsaid."""
        return None

    def lint(self, revisions: Sequence[Sequence[str]]) -> list[set[tuple[int, str]]]:
        """For each revision's statements (offline SQL, in order), the (statement index, rule name) pairs this
        database's linter finds, linting each revision on its own."""
        return [set() for _ in revisions]
