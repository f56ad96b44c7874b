"""Read driver exceptions: walk their causes, name the fault a database reports, and say it in one line."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from enum import Enum


class Fault(Enum):
    """What a database error means for the run; each database module maps its codes onto these."""

    ACCESS = "access"  # login or privilege refused: retrying cannot help
    UNAVAILABLE = "unavailable"  # not accepting logins yet, or the connection broke: retry
    READ_ONLY = "read_only"  # the server or database turned read-only (failover): retry
    LOCK_TIMEOUT = "lock_timeout"  # a DDL statement waited too long for a table lock: retry
    DEADLOCK = "deadlock"  # deadlock or serialization failure: retry
    STATEMENT_TIMEOUT = "statement_timeout"  # MIGRATE_STATEMENT_TIMEOUT cut a statement short


#: Faults a rerun of the same revisions can get past.
TRANSIENT = {Fault.UNAVAILABLE, Fault.READ_ONLY, Fault.LOCK_TIMEOUT, Fault.DEADLOCK}


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


# OpenSSL's verify codes for a certificate that is valid but not for the name (or address) connected to.
HOST_NAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
# Alerts a server sends when it refuses the client's certificate (or the lack of one).
CLIENT_CERTIFICATE_ALERTS = frozenset({
    "TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE", "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_REVOKED",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_ACCESS_DENIED",
})


def tls_failure(exc: BaseException) -> tuple[str, BaseException] | None:
    """What failed in a TLS handshake, from the exception types and OpenSSL's codes, with the exception that says it.

    ``host_name`` (the server's certificate is not for this host), ``server_certificate`` (it did not verify),
    ``client_certificate`` (the server refused ours), ``handshake`` (no common protocol, not TLS at all...), or None
    when no TLS failure is in the chain; a TLS connection that merely broke (EOF, reset) is not one.
    """
    import ssl

    for cause in causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return ("host_name" if cause.verify_code in HOST_NAME_MISMATCH else "server_certificate"), cause
        if isinstance(cause, ssl.SSLError) and cause.reason in CLIENT_CERTIFICATE_ALERTS:
            return "client_certificate", cause
    for cause in causes(exc):
        if type(cause) is ssl.SSLError and cause.reason:  # subclasses are EOFs and resets: the line broke
            return "handshake", cause
    return None


def tls_fault(exc: BaseException) -> Fault | None:
    """ACCESS for a certificate refused either way (retrying cannot help); a handshake that failed otherwise is
    reported at login (tls.login), so later it is a TLS record gone bad on an open connection: UNAVAILABLE."""
    found = tls_failure(exc)
    if found is None:
        return None
    return Fault.UNAVAILABLE if found[0] == "handshake" else Fault.ACCESS


def connection_broken(exc: BaseException) -> bool:
    """True when the socket itself failed: reset, refused, timed out, closed under us, or invalidated by SQLAlchemy."""
    for cause in causes(exc):
        if getattr(cause, "connection_invalidated", False):
            return True
        if isinstance(cause, (ConnectionError, socket.gaierror, TimeoutError, EOFError)):
            return True
        if isinstance(cause, OSError) and cause.errno is not None and type(cause) is OSError:
            return True  # e.g. EHOSTUNREACH, ETIMEDOUT from the kernel's keepalive
        if type(cause).__name__ in ("ConnectionDoesNotExistError", "ConnectionFailureError"):
            return True
    return False


def describe(exc: BaseException) -> str:
    """One line naming the innermost cause, without SQLAlchemy's URL-bearing wrapper text."""
    from .databases import driver_of_error

    innermost, driver = list(causes(exc))[-1], None
    for cause in causes(exc):
        # The driver's own exception carries the server's message; SQLAlchemy's wrapper adds noise.
        driver = driver_of_error(cause)
        if driver is not None:
            innermost = cause
            break
    text = (driver.message(innermost) if driver is not None else str(innermost)) or type(innermost).__name__
    first_line = text.strip().splitlines()[0] if text.strip() else type(innermost).__name__
    return f"{type(innermost).__name__}: {first_line}"
