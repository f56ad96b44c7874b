"""TLS for database logins: the client's SSL context built from an Endpoint, and what a failed handshake means.

The modes are libpq's: ``require`` encrypts without verifying the server, unless a CA file is given, which then
verifies the chain (as libpq and the MySQL client do); ``verify-ca`` verifies the chain; ``verify-full`` also the
host name. Bad files (missing, unreadable, not PEM, a key that does not match or does not decrypt) are configuration
errors (exit 2) that name the setting; a certificate the server or the client refuses is exit 5. Neither is retried.
"""

from __future__ import annotations

import functools
import re
import ssl
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import AccessDenied, ConfigurationError, SidecarError
from .failures import causes, tls_failure

if TYPE_CHECKING:
    from .databases.base import Driver
    from .endpoint import Endpoint

T = TypeVar("T")
SYSTEM_ROOTS = "system"
_ENCRYPTED_KEY = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4, *ENCRYPTED")
# Every URL query key that carries TLS, in any spelling a driver or a user might use.
QUERY_KEYS = ("sslmode", "ssl", "ssl_mode", "ssl-mode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "ssl_ca",
              "ssl_cert", "ssl_key", "ssl_check_hostname")


def verifies_server(endpoint: Endpoint) -> bool:
    from .endpoint import VERIFYING_MODES

    return endpoint.sslmode in VERIFYING_MODES or (endpoint.sslmode == "require" and endpoint.sslrootcert is not None)


def context(endpoint: Endpoint, *, tls12_only: bool = False) -> ssl.SSLContext:
    """The client context for ``endpoint``'s TLS mode and files; built once per process and reused."""
    return _context(endpoint.sslmode, endpoint.sslrootcert, endpoint.sslcert, endpoint.sslkey, endpoint.sslpassword,
                    tuple(map(tuple, endpoint.tls_sources)), verifies_server(endpoint), tls12_only)


@functools.lru_cache(maxsize=8)
def _context(mode: str | None, rootcert: str | None, cert: str | None, key: str | None, password: str | None,
             sources: tuple[tuple[str, str], ...], verify: bool, tls12_only: bool) -> ssl.SSLContext:
    from .endpoint import TLS_SETTINGS

    def named(name: str) -> str:
        return dict(sources).get(name) or TLS_SETTINGS[name][1]

    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls12_only:
        tls.maximum_version = ssl.TLSVersion.TLSv1_2
    tls.check_hostname = mode == "verify-full"
    tls.verify_mode = ssl.CERT_REQUIRED if verify else ssl.CERT_NONE
    if verify and rootcert in (None, SYSTEM_ROOTS):
        tls.load_default_certs()
    elif verify:
        _load_ca(tls, rootcert, named("sslrootcert"))
    if cert or key:
        _load_client_certificate(tls, cert, key, password, named)
    return tls


def _read(path: str, source: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the {what} {path} ({source}): {exc.strerror}",
                                 hint="mount the file and make it readable by this user, or correct the path") from None


def _load_ca(tls: ssl.SSLContext, path: str, source: str) -> None:
    if b"-----BEGIN CERTIFICATE-----" not in _read(path, source, "CA certificate"):
        raise ConfigurationError(f"the CA certificate file {path} ({source}) holds no PEM certificate",
                                 hint="give the CA certificate(s) that signed the server's, in PEM form")
    try:
        tls.load_verify_locations(cafile=path)
    except (ssl.SSLError, OSError):
        raise ConfigurationError(f"the CA certificate file {path} ({source}) holds no usable PEM certificate",
                                 hint="give the CA certificate(s) that signed the server's, in PEM form") from None


def _load_client_certificate(tls: ssl.SSLContext, cert: str | None, key: str | None, password: str | None,
                             named: Callable[[str], str]) -> None:
    if cert is None:
        raise ConfigurationError(f"{named('sslkey')} is set without a client certificate",
                                 hint="set DB_SSLCERT (sslcert, ssl_cert) to the certificate of that key")
    if b"-----BEGIN CERTIFICATE-----" not in _read(cert, named("sslcert"), "client certificate"):
        raise ConfigurationError(f"the client certificate file {cert} ({named('sslcert')}) holds no PEM certificate",
                                 hint="give the client certificate in PEM form")
    key_text = _read(key, named("sslkey"), "client key") if key else b""
    if key and b"PRIVATE KEY-----" not in key_text:
        raise ConfigurationError(f"the client key file {key} ({named('sslkey')}) holds no PEM private key",
                                 hint="give the client certificate's private key in PEM form")
    key_source = f"{key} ({named('sslkey')})" if key else f"{cert} ({named('sslcert')})"
    try:
        # A callable, always: with none, OpenSSL would ask for the password on a terminal.
        tls.load_cert_chain(cert, key, password=lambda: password or "")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigurationError(f"the key {key_source} does not belong to the certificate {cert} "
                                     f"({named('sslcert')})",
                                     hint="give the key that was issued with that certificate") from None
        if key is None:
            raise ConfigurationError(f"the client certificate file {cert} ({named('sslcert')}) holds no private key",
                                     hint="set DB_SSLKEY (sslkey, ssl_key) to the certificate's key file") from None
        if _ENCRYPTED_KEY.search(key_text) and password:
            raise ConfigurationError(f"{named('sslpassword')} does not decrypt the key {key_source}",
                                     hint="set the key's own password") from None
        if _ENCRYPTED_KEY.search(key_text):
            raise ConfigurationError(f"the key {key_source} is encrypted and no key password is set",
                                     hint="set DB_SSLPASSWORD_FILE (or sslpassword in the URL)") from None
        raise ConfigurationError(f"cannot use the key {key_source} ({exc.reason or 'not a private key'})",
                                 hint="give the client certificate's private key in PEM form") from None


def login_failure(exc: BaseException, endpoint: Endpoint) -> SidecarError | None:
    """Exit 5 for a handshake that failed on a certificate or a protocol; None for any other failure."""
    found = tls_failure(exc)
    if found is None:
        return None
    kind, cause = found
    server = f"{endpoint.host}:{endpoint.port}"
    if kind == "host_name":
        return AccessDenied(f"TLS: the certificate of {server} is not valid for the host name {endpoint.host} "
                            f"(sslmode=verify-full)",
                            hint="connect by a name the certificate carries, or set sslmode=verify-ca to verify "
                                 "only that a trusted CA signed it")
    if kind == "server_certificate":
        against = (f"the CA {endpoint.sslrootcert} from {endpoint.source_of('sslrootcert')}"
                   if endpoint.sslrootcert not in (None, SYSTEM_ROOTS) else "the system's trusted CAs")
        return AccessDenied(f"TLS: the certificate of {server} did not verify against {against} "
                            f"(OpenSSL: {getattr(cause, 'verify_message', None) or cause.reason})",
                            hint="set DB_SSLROOTCERT to the CA certificate (bundle) that signed the server's, e.g. "
                                 "your provider's CA bundle")
    if kind == "client_certificate":
        ours = (f"our client certificate {endpoint.sslcert} from {endpoint.source_of('sslcert')}" if endpoint.sslcert
                else "the login without a client certificate")
        return AccessDenied(f"TLS: {server} refused {ours} (alert {cause.reason})",
                            hint="use a client certificate signed by a CA the server trusts (DB_SSLCERT, DB_SSLKEY)")
    return AccessDenied(f"TLS: the handshake with {server} failed (OpenSSL: {cause.reason})",
                        hint="check sslmode and the server's TLS settings (protocol versions, ciphers, port)")


def _may_hide_a_refusal(exc: BaseException) -> bool:
    """TLS 1.3 servers check a client certificate after the handshake: their refusal can arrive as a reset."""
    return any(isinstance(cause, (ConnectionResetError, BrokenPipeError, EOFError, ssl.SSLEOFError,
                                  ssl.SSLZeroReturnError))
               or type(cause).__name__ == "ConnectionDoesNotExistError" for cause in causes(exc))


async def login(endpoint: Endpoint, tls: ssl.SSLContext | None, attempt: Callable[[Any], Awaitable[T]],
                close: Callable[[T], Awaitable[None]]) -> T:
    """``attempt(tls)``; a TLS failure becomes exit 5 at once, not a fault the login wait would retry.

    A connection that broke right after we presented a client certificate is tried once more with TLS 1.2, where a
    server's refusal is an alert within the handshake: the two can then be told apart by OpenSSL's code.
    """
    try:
        return await attempt(tls)
    except Exception as exc:
        failure = login_failure(exc, endpoint)
        if failure is None and tls is not None and endpoint.sslcert and _may_hide_a_refusal(exc):
            try:
                await close(await attempt(context(endpoint, tls12_only=True)))
            except Exception as second:
                found = tls_failure(second)
                failure = login_failure(second, endpoint) if found and found[0] == "client_certificate" else None
        if failure is not None:
            raise failure from None
        raise


def hand_to_users_engines(endpoint: Endpoint, database: Driver) -> None:
    """A user's env.py builds its own engine: its logins to our server get our TLS, whatever its URL says.

    Its URL may carry libpq's TLS parameters, which asyncpg does not take as arguments, or SQLAlchemy's MySQL ones,
    which become a dict aiomysql cannot use; SQLAlchemy's ``do_connect`` event, on every engine, swaps them for the
    driver arguments our own logins use.
    """
    if not endpoint.is_server:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    arguments = database.tls_arguments(endpoint)

    def swap(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        host, port = str(cparams.get("host") or ""), str(cparams.get("port") or endpoint.port)
        if host.lower() != (endpoint.host or "").lower() or port != str(endpoint.port):
            return  # somewhere else: the env.py's own business
        for key in QUERY_KEYS:
            cparams.pop(key, None)
        cparams.update(arguments)

    event.listen(Engine, "do_connect", swap)
