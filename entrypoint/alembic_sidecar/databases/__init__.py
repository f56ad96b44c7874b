"""One module per database: each owns what differs (connecting, session settings, the lock, faults).

Every module offers the same names, so the runner never asks which database it talks to:

- ``connect(endpoint, timeout)``: a bare driver connection, with the client-side liveness bounds set on its socket;
  the fast path, the final proof and SQLAlchemy's engine (as ``async_creator``) all connect through it.
- ``read_versions(connection, table)``: the version table's rows on a bare connection (fast path, proof).
- ``configure_engine(engine)``: what the database needs of SQLAlchemy's engine (SQLite: transactional DDL;
  PostgreSQL: one round trip for statements without rows).
- ``prepare_session(raw, settings, endpoint)``: per-session settings, pooler detection (PostgreSQL).
- ``migration_settings(settings, is_mariadb, bundled)``: statements that bound the migration, run once the lock
  is held so they do not cut the lock wait short.
- ``lock(connection, settings, endpoint)``: the migration lock, an object with ``try_acquire``, ``release``,
  ``description``.
- ``kill_statement(backend_id)``: how another session ends ours on the server (None: cannot).
- ``BACKEND_ID_QUERY``: the statement that gives a session's id for ``kill_statement`` (None: no server).
- ``users_session_settings(settings, endpoint, is_mariadb)``: what each session a user's env.py opens gets
  (ALEMBIC_CONFIG): the timeouts and bounds our own session has.
- ``make_durable(connection)``: a final synchronous commit where commits were made asynchronous.
- ``classify(exc)``: the :class:`~alembic_sidecar.failures.Fault` an exception reports, or None.
- ``TRANSACTIONAL_DDL``: whether a failed revision's DDL really rolls back.
"""

from __future__ import annotations

import importlib
import socket
from types import ModuleType
from typing import Any

# Client-side liveness of every database socket: a path that stops carrying packets (a partition, a dead NAT entry)
# is noticed by the kernel within about 30 s, whatever the run is waiting for.
KEEPALIVE_IDLE = 10
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
USER_TIMEOUT_MS = 30_000

_MODULES = {"postgresql": "postgresql", "mysql": "mysql", "mariadb": "mysql", "sqlite": "sqlite"}


def module_for(backend: str) -> ModuleType:
    """The module of ``backend`` (postgresql, mysql, mariadb or sqlite), imported on first use."""
    return importlib.import_module(f"{__name__}.{_MODULES[backend]}")


def bound_socket(sock: Any) -> None:
    """Keepalive probes plus TCP_USER_TIMEOUT: unacknowledged data or silent probes end the connection."""
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", KEEPALIVE_IDLE), ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
                          ("TCP_KEEPCNT", KEEPALIVE_COUNT), ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def quote_identifier(name: str, quote: str = '"') -> str:
    """The name exactly as Alembic created it, case and reserved words included."""
    return quote + name.replace(quote, quote * 2) + quote
