"""One module per database, each behind the typed contract of :class:`base.Driver`, and the registry of them.

The registry below is the only list of backends: a URL scheme (or DB_DRIVER value) names a backend, and the backend's
module is imported when it is first needed, so a run imports only the one it uses.
"""

from __future__ import annotations

import importlib
import socket
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Driver

# Client-side liveness of every database socket: a path that stops carrying packets (a partition, a dead NAT entry)
# is noticed by the kernel within about 30 s, whatever the run is waiting for.
KEEPALIVE_IDLE = 10
KEEPALIVE_INTERVAL = 5
KEEPALIVE_COUNT = 3
USER_TIMEOUT_MS = 30_000

# URL scheme or DB_DRIVER value -> (the backend it names, the module that drives it). The first scheme of each
# backend is its own name; the others are aliases.
_REGISTRY = {"postgresql": ("postgresql", "postgresql"), "postgres": ("postgresql", "postgresql"),
             "mysql": ("mysql", "mysql"), "mariadb": ("mariadb", "mysql"), "sqlite": ("sqlite", "sqlite")}
# Top-level packages whose exceptions carry a server's own message -> the backend module that reads them.
_ERROR_MODULES = {"asyncpg": "postgresql", "pymysql": "mysql", "sqlite3": "sqlite", "aiosqlite": "sqlite"}
_drivers: dict[str, Driver] = {}


def backends() -> tuple[str, ...]:
    """The backends' own names (DB_DRIVER's choices), in the registry's order."""
    return tuple(dict.fromkeys(backend for backend, _ in _REGISTRY.values()))


def backend_for(scheme: str) -> str | None:
    """The backend a URL scheme (before any "+driver") names, or None when it is none of ours."""
    found = _REGISTRY.get(scheme)
    return found[0] if found else None


def driver_for(backend: str) -> Driver:
    """The driver of ``backend`` (a name from :func:`backends`), its module imported on first use."""
    driver = _drivers.get(backend)
    if driver is None:
        driver = _drivers[backend] = importlib.import_module(f"{__name__}.{_REGISTRY[backend][1]}").DRIVER
    return driver


def url_forms() -> str:
    """Every backend's URL form and the async driver the image ships for it, for a hint."""
    drivers = [driver_for(backend) for backend in backends()]
    forms = [f"{backend}://" + ("" if driver.is_server else "/") for backend, driver in zip(backends(), drivers)]
    libraries = ", ".join(dict.fromkeys(driver.async_driver for driver in drivers))
    return f"{', '.join(forms[:-1])} or {forms[-1]} ({libraries})"


def driver_of_error(cause: BaseException) -> Driver | None:
    """The driver whose library raised ``cause``, or None for anything else (SQLAlchemy's wrappers, OS errors)."""
    module = _ERROR_MODULES.get(type(cause).__module__.split(".")[0])
    return importlib.import_module(f"{__name__}.{module}").DRIVER if module else None


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
