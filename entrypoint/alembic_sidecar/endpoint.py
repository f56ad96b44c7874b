"""Where the database is: one parser for DATABASE_URL and the DB_* settings, shared by the fast and the full path."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from . import databases
from .errors import ConfigurationError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from .databases.base import Driver
    from .settings import Settings

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# URL query parameters every server backend understands, beside its driver's TLS and own parameters; anything else
# is refused rather than silently ignored.
SSL_PARAMETERS = ("sslmode", "ssl", "ssl_mode", "ssl-mode")
CHECK_HOSTNAME_PARAMETER = "ssl_check_hostname"  # verify-full (true) or verify-ca (false), where a driver takes it
# Where a TLS value comes from, in precedence order after the URL: the DB_* setting, then libpq's variable.
TLS_SETTINGS = {"sslmode": ("db_sslmode", "DB_SSLMODE", "PGSSLMODE"),
                "sslrootcert": ("db_sslrootcert", "DB_SSLROOTCERT", "PGSSLROOTCERT"),
                "sslcert": ("db_sslcert", "DB_SSLCERT", "PGSSLCERT"),
                "sslkey": ("db_sslkey", "DB_SSLKEY", "PGSSLKEY"),
                "sslpassword": ("db_sslpassword", "DB_SSLPASSWORD", None)}
VERIFYING_MODES = ("verify-ca", "verify-full")
CREDENTIAL_PARAMETERS = ("user", "password")
# libpq's `options`: server settings for the session, as -c name=value (or --name=value) pairs.
SERVER_OPTIONS_PARAMETER = "options"
_SETTING_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
# DB_* settings that name the server: a URL names it itself, so beside one they are refused rather than ignored.
SERVER_SETTINGS = (("db_driver", "DB_DRIVER"), ("db_host", "DB_HOST"), ("db_port", "DB_PORT"), ("db_name", "DB_NAME"))
# DB_* settings that fill in what a URL leaves out, as libpq's PGUSER and PGPASSWORD do.
LOGIN_SETTINGS = (("db_user", "DB_USER"), ("db_password", "DB_PASSWORD"))


@dataclass(frozen=True)
class Endpoint:
    """Connection parameters of one database; the password never shows in a repr."""

    backend: str  # a name from databases.backends()
    host: str | None = None
    port: int | None = None
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    database: str | None = None
    sslmode: str | None = None
    # PostgreSQL server settings from libpq's `options` (-c name=value), applied to every session.
    options: tuple[tuple[str, str], ...] = ()
    # TLS: the CA file that verifies the server (or "system"), the client certificate, its key and key password.
    sslrootcert: str | None = None
    sslcert: str | None = None
    sslkey: str | None = None
    sslpassword: str | None = field(default=None, repr=False)
    # MySQL's ssl_check_hostname as the URL gave it; already folded into sslmode by from_settings.
    ssl_check_hostname: bool | None = None
    # (field, where it came from) for each TLS value, so that an error names what the user set.
    tls_sources: tuple[tuple[str, str], ...] = ()

    @property
    def driver(self) -> Driver:
        return databases.driver_for(self.backend)

    @property
    def is_server(self) -> bool:
        return self.driver.is_server

    @property
    def masked(self) -> str:
        """The URL as logs show it: the password replaced by ***, TLS shown by its mode and file paths only."""
        if not self.is_server:
            return f"{self.backend}:///{self.database or ':memory:'}"
        auth = ""
        if self.user is not None:
            auth = quote(self.user, safe="") + (":***" if self.password else "") + "@"
        names = {field: name for name, field in self.driver.tls_parameters.items()}
        shown = [("sslmode", self.sslmode), (names["sslrootcert"], self.sslrootcert), (names["sslcert"], self.sslcert)]
        query = "&".join(f"{name}={quote(value, safe='/')}" for name, value in shown if value)
        return (f"{self.backend}://{auth}{self.host}:{self.port}/{quote(self.database or '', safe='')}"
                + (f"?{query}" if query else ""))

    def source_of(self, name: str) -> str:
        """Where the TLS value ``name`` (sslrootcert, sslcert, sslkey, sslpassword, sslmode) was set."""
        return dict(map(tuple, self.tls_sources)).get(name) or TLS_SETTINGS[name][1]

    def sqlalchemy_url(self) -> URL:
        """The async SQLAlchemy URL (password included): selects the dialect, and is what a user's env.py gets."""
        from sqlalchemy.engine import URL

        query = {"ssl": self.sslmode} if self.sslmode and self.driver.sslmode_in_url else {}
        return URL.create(f"{self.backend}+{self.driver.async_driver}", username=self.user,
                          password=self.password, host=self.host, port=self.port, database=self.database,
                          query=query)


def from_settings(settings: Settings, *, fallback_url: str | None = None,
                  environ: Mapping[str, str] | None = None) -> Endpoint:
    """DATABASE_URL, else the DB_* settings (with DB_DRIVER), else (ALEMBIC_CONFIG mode) the ini's ``fallback_url``.

    DB_USER and DB_PASSWORD fill in a URL that leaves them out; DB_DRIVER, DB_HOST, DB_PORT and DB_NAME beside a
    URL are refused. Each TLS value comes from the URL's parameter, else its DB_* setting, else (PostgreSQL)
    libpq's PGSSL* variable in ``environ``.
    """
    if settings.database_url is not None:
        endpoint = _beside_url(parse_url(settings.database_url.reveal(), "DATABASE_URL"), settings, "DATABASE_URL")
    elif settings.db_driver is not None:
        endpoint = _from_parts(settings)
    elif fallback_url:
        source = "sqlalchemy.url in " + (settings.alembic_config or "alembic.ini")
        endpoint = _beside_url(parse_url(fallback_url, source), settings, source)
    else:
        given = _given(settings, SERVER_SETTINGS[1:] + LOGIN_SETTINGS)
        raise ConfigurationError("no database URL is configured"
                                 + (f": {_listed(given)} {_are(given)} set, but not DB_DRIVER" if given else ""),
                                 hint="set DATABASE_URL, or DB_DRIVER with DB_HOST, DB_USER, DB_PASSWORD and DB_NAME")
    # One target of a fleet (targets.py): the database or schema its line names.
    if settings.target_database is not None:
        endpoint = endpoint.driver.in_database(endpoint, settings.target_database)
    if settings.target_schema is not None:
        endpoint = endpoint.driver.in_schema(endpoint, settings.target_schema)
    if not endpoint.is_server:
        return endpoint
    return _settle_tls(_with_tls_settings(endpoint, settings, os.environ if environ is None else environ))


def _beside_url(endpoint: Endpoint, settings: Settings, source: str) -> Endpoint:
    """The URL with DB_USER / DB_PASSWORD filled in where it has none; any other DB_* server setting refused."""
    ini = source != "DATABASE_URL"
    # Beside the ini's URL, DB_DRIVER is what selects the DB_* settings instead (handled before this is called).
    servers = _given(settings, SERVER_SETTINGS)
    if servers:
        raise ConfigurationError(
            f"{_listed(servers)} {_are(servers)} set beside {source}, which names the server itself",
            hint=("set DB_DRIVER too, so that the DB_* settings replace the ini's URL, or unset " + _listed(servers))
            if ini else (f"put the server in DATABASE_URL and unset {_listed(servers)}, or unset DATABASE_URL to "
                         "build the URL from DB_DRIVER and the other DB_* settings"))
    changes: dict[str, str] = {}
    for attribute, env in LOGIN_SETTINGS:
        value, part = getattr(settings, attribute), attribute.removeprefix("db_")
        if value is None:
            continue
        if not endpoint.is_server:
            raise ConfigurationError(f"{env} is set beside {source}, a {endpoint.driver.title} database, which has "
                                     f"no {part}",
                                     hint=f"unset {env}")
        if getattr(endpoint, part):
            raise ConfigurationError(f"{env} is set and {source} has a {part} too",
                                     hint=f"set the {part} in one place: remove it from the URL (then {env} "
                                          f"fills it in), or unset {env} and {env}_FILE")
        changes[part] = value.reveal()
    return _replace(endpoint, **changes) if changes else endpoint


def _given(settings: Settings, named: tuple[tuple[str, str], ...]) -> list[str]:
    """The variables among ``named`` (attribute, variable) that are set."""
    return [env for attribute, env in named if getattr(settings, attribute) is not None]


def _listed(names: list[str]) -> str:
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def _are(names: list[str]) -> str:
    return "are" if len(names) > 1 else "is"


def _with_tls_settings(endpoint: Endpoint, settings: Settings, environ: Mapping[str, str]) -> Endpoint:
    """The TLS values the URL left unset, from the DB_* settings, then from libpq's variables (PostgreSQL only)."""
    changes: dict[str, object] = {}
    sources = dict(map(tuple, endpoint.tls_sources))
    for name, (attribute, setting, libpq_variable) in TLS_SETTINGS.items():
        if getattr(endpoint, name) is not None:
            continue
        value = getattr(settings, attribute)
        if value is not None:
            changes[name] = value.reveal() if hasattr(value, "reveal") else value
            sources[name] = setting
        elif libpq_variable and endpoint.driver.reads_libpq_environment and environ.get(libpq_variable):
            value = environ[libpq_variable]
            changes[name] = _sslmode(value.lower(), libpq_variable) if name == "sslmode" else value
            sources[name] = libpq_variable
    if not changes:
        return endpoint
    return _replace(endpoint, **changes, tls_sources=tuple(sources.items()))


def _settle_tls(endpoint: Endpoint) -> Endpoint:
    """The TLS mode the files imply, where no mode was set; contradictions refused (exit 2)."""
    return endpoint.driver.settle_tls(endpoint)


def parse_url(raw: str, source: str) -> Endpoint:
    """A URL in any supported form; the message never echoes it, since it may hold a password."""
    raw = raw.strip()
    scheme = raw.partition("://")[0].split("+")[0].lower() if "://" in raw else ""
    if not scheme:
        raise ConfigurationError(f"{source} is not a valid database URL", hint=_form_hint(databases.backends()[0]))
    backend = databases.backend_for(scheme)
    if backend is None:
        raise ConfigurationError(f"unsupported database kind {scheme!r} in {source}",
                                 hint=f"use {databases.url_forms()}")
    driver = databases.driver_for(backend)
    # A '#' starts a fragment, which no database URL has: it is a password's '#' that cut the URL short.
    if "#" in raw:
        raise ConfigurationError(f"{source} has a '#' that is not percent-encoded",
                                 hint="a '#' in the password (or anywhere in the URL) is written "
                                      + _encoded("%23", source))
    try:
        parts = urlsplit(raw)
    except ValueError:  # an unbalanced '[' of an IPv6 address
        raise ConfigurationError(f"{source} is not a valid database URL", hint=_form_hint(scheme)) from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not driver.is_server:
        return _file(backend, parts.netloc, parts.path, query, source)
    # An '@' past the host, with none before it: a '/' or '?' in the password ended the host part early, so what
    # reads as host, port, database or parameters holds pieces of the password. Name none of them.
    if "@" not in parts.netloc and "@" in raw.partition("://")[2][len(parts.netloc):]:
        raise ConfigurationError(f"{source} has an '@' after its host part: a '/' or '?' in the password (or "
                                 "user) cut the URL short",
                                 hint="in a password, '/' is written %2F, '?' %3F and '@' %40")
    params: dict[str, str] = {}
    for key, value in query:
        if key in params:
            raise ConfigurationError(f"{source} sets the URL parameter {key!r} twice", hint="set it once")
        params[key] = value
    tls_names = driver.tls_parameters
    own = driver.own_parameters
    known = set(SSL_PARAMETERS) | set(CREDENTIAL_PARAMETERS) | set(tls_names) | set(own)
    unknown = sorted(set(params) - known)
    if unknown:
        supported = ", ".join(("sslmode", *tls_names, *CREDENTIAL_PARAMETERS, *own))
        raise ConfigurationError(f"{source} has URL parameter(s) alembic-sidecar does not understand: "
                                 f"{', '.join(unknown)}", hint=f"remove them; supported: {supported}")
    if "," in parts.netloc or not parts.hostname:
        raise ConfigurationError(f"{source} names no single server host",
                                 hint=f"give one host, as in {scheme}://USER:PASSWORD@HOST:"
                                      f"{driver.default_port}/DB")
    port = _port(parts.netloc, raw.partition("://")[2][len(parts.netloc):], source, scheme, driver.default_port)
    sslmodes = {params[key].lower() for key in SSL_PARAMETERS if key in params}
    if len(sslmodes) > 1:
        raise ConfigurationError(f"{source} sets the TLS mode twice, differently", hint="set sslmode once")
    sslmode = _sslmode(sslmodes.pop() if sslmodes else None, source)
    user = unquote(parts.username) if parts.username is not None else params.get("user")
    password = unquote(parts.password) if parts.password is not None else params.get("password")
    options = _server_options(params.get(SERVER_OPTIONS_PARAMETER, ""), source)
    tls = {field: params[name] for name, field in tls_names.items() if params.get(name)}
    sources = tuple((field, f"{name} in {source}") for name, field in tls_names.items() if params.get(name))
    sources += (("sslmode", f"sslmode in {source}"),) if sslmode else ()
    check_hostname = None
    if CHECK_HOSTNAME_PARAMETER in params:
        check_hostname = _boolean(params[CHECK_HOSTNAME_PARAMETER], f"{CHECK_HOSTNAME_PARAMETER} in {source}")
    return Endpoint(backend, parts.hostname, port or driver.default_port, user or None, password or None,
                    unquote(parts.path.lstrip("/")) or None, sslmode, options, **tls,
                    ssl_check_hostname=check_hostname, tls_sources=sources)


def _port(netloc: str, after_netloc: str, source: str, scheme: str, default: int | None) -> int | None:
    """The URL's port, 1 to 65535, or None when it names none; 0 is refused, not read as "the default"."""
    host_and_port = netloc.rpartition("@")[2]
    if host_and_port.startswith("["):  # [IPv6]:port
        host_and_port = host_and_port.partition("]")[2]
    text = host_and_port.partition(":")[2]
    if not text:
        return None
    if re.fullmatch(r"[0-9]+", text) and len(text.lstrip("0")) <= 5 and 1 <= int(text) <= 65535:
        return int(text)
    # A password cut short by an unencoded '/' or '?' leaves its start here: show the port only when it is a
    # number and the credentials are intact (an '@' before the host) or absent (no '@' after it either).
    intact = "@" in netloc or "@" not in after_netloc
    message = (f"{source} has port {text}: a port is a number from 1 to 65535"
               if intact and re.fullmatch(r"[0-9]{1,9}", text) else
               f"{source} has a port that is not a number from 1 to 65535")
    raise ConfigurationError(message, hint=f"write it as {scheme}://USER:PASSWORD@HOST:"
                                           f"{default}/DB, or leave it out for the default; "
                                           "in a password, '/' is written %2F and '?' %3F")


def _form_hint(scheme: str) -> str:
    return f"use the form {scheme}://USER:PASSWORD@HOST:PORT/DB with special characters percent-encoded"


def _encoded(code: str, source: str) -> str:
    """How a percent-encoded character is written where the URL is: an ini file doubles every '%'."""
    return code if source == "DATABASE_URL" else f"{code.replace('%', '%%')} in the ini file (configparser doubles %)"


def _boolean(value: str, source: str) -> bool:
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise ConfigurationError(f"{source} must be true or false",
                             hint="use ssl_check_hostname=false to verify only the CA")


def _server_options(raw: str, source: str) -> tuple[tuple[str, str], ...]:
    """libpq's `options`: `-c name=value` pairs (also `-cname=value`, `--name=value`); a backslash escapes a space."""
    words = [word.replace("\\ ", " ") for word in re.split(r"(?<!\\)\s+", raw.strip()) if word]
    settings: list[tuple[str, str]] = []
    while words:
        word = words.pop(0)
        if word == "-c" and words:
            word = words.pop(0)
        elif word.startswith("-c"):
            word = word[2:]
        elif word.startswith("--"):
            name, equals, value = word[2:].partition("=")
            word = name.replace("-", "_") + equals + value  # libpq: --name-with-dashes=value
        else:
            raise ConfigurationError(f"{source} has an `options` parameter this image does not understand",
                                     hint="give server settings as options=-c%20name%3Dvalue, e.g. "
                                          "options=-csearch_path%3Dapp")
        name, equals, value = word.partition("=")
        if not equals or not _SETTING_NAME.fullmatch(name):
            raise ConfigurationError(f"{source} has a malformed server setting in `options`",
                                     hint="use -c name=value, e.g. options=-csearch_path%3Dapp")
        settings.append((name, value))
    return tuple(settings)


def _sslmode(value: str | None, source: str) -> str | None:
    if value in (None, ""):
        return None
    # MySQL's ssl-mode spellings, mapped to libpq's names.
    value = {"disabled": "disable", "preferred": "prefer", "required": "require", "verify_ca": "verify-ca",
             "verify_identity": "verify-full", "true": "require", "false": "disable"}.get(value, value)
    if value not in SSL_MODES:
        raise ConfigurationError(f"{source} has an unknown sslmode", hint=f"use one of {', '.join(SSL_MODES)}")
    return value


def _file(backend: str, netloc: str, path: str, query: list[tuple[str, str]], source: str) -> Endpoint:
    """A database in a file (or in memory): no host, no parameters."""
    if netloc or query:
        raise ConfigurationError(f"{source} is not a {databases.driver_for(backend).title} URL this image understands",
                                 hint=f"use {backend}:///relative/path.db or {backend}:////absolute/path.db, "
                                      "no parameters")
    database = unquote(path[1:]) if path.startswith("/") else ""
    return _file_endpoint(backend, database)


def _file_endpoint(backend: str, database: str) -> Endpoint:
    if not database or database == ":memory:":
        return Endpoint(backend, database=":memory:")
    return Endpoint(backend, database=os.path.abspath(os.path.expanduser(database)))


def _from_parts(settings: Settings) -> Endpoint:
    driver = settings.db_driver
    assert driver is not None
    if not databases.driver_for(driver).is_server:
        servers = _given(settings, SERVER_SETTINGS[1:3] + LOGIN_SETTINGS)
        if servers:
            raise ConfigurationError(f"{_listed(servers)} {_are(servers)} set with DB_DRIVER={driver}, a database "
                                     "file that has no server or login", hint=f"unset {_listed(servers)}")
        if not settings.db_name:
            raise ConfigurationError(f"DB_NAME is required with DB_DRIVER={driver}",
                                     hint="set DB_NAME to the database file's path")
        return _file_endpoint(driver, settings.db_name)
    missing = [name for name, value in (("DB_HOST", settings.db_host), ("DB_NAME", settings.db_name)) if not value]
    if missing:
        raise ConfigurationError(f"{' and '.join(missing)} required with DB_DRIVER={driver}",
                                 hint="set them, or set DATABASE_URL instead")
    return Endpoint(driver, settings.db_host, settings.db_port or databases.driver_for(driver).default_port,
                    settings.db_user.reveal() if settings.db_user else None,
                    settings.db_password.reveal() if settings.db_password else None, settings.db_name)


def _replace(endpoint: Endpoint, **changes: object) -> Endpoint:
    from dataclasses import replace

    return replace(endpoint, **changes)
