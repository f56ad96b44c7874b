"""Settings: one frozen dataclass, read from environment variables, ``*_FILE`` secret files and flags."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import ConfigurationError

COMMANDS = ("upgrade", "check", "current", "heads", "history", "wait", "sql", "downgrade")
DRIVERS = ("postgresql", "mysql", "mariadb", "sqlite")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


class Secret:
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def _seconds(name: str) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip().removesuffix("s"))
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0:
            raise ConfigurationError(
                f"{name} must be a number of seconds, got {raw!r}", hint=f"set it like {name}=30")
        return value
    return parse


def _port(name: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        if not raw.strip().isdigit() or not 0 < int(raw) < 65536:
            raise ConfigurationError(f"{name} must be a port number (1-65535), got {raw!r}",
                                     hint=f"set it like {name}=5432")
        return int(raw)
    return parse


def _choice(name: str, choices: Sequence[str]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ConfigurationError(f"{name} must be one of {', '.join(choices)}, got {raw!r}",
                                     hint=f"set it like {name}={choices[0]}")
        return value
    return parse


def _boolean(name: str) -> Callable[[str], bool]:
    def parse(raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off", ""):
            return False
        raise ConfigurationError(f"{name} must be true or false, got {raw!r}", hint=f"set it like {name}=true")
    return parse


def _identifier(name: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        # It is interpolated into SQL as a table name: letters, digits and underscores only.
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", raw):
            raise ConfigurationError(f"{name}={raw!r} is not a plain table name",
                                     hint="use letters, digits and underscores (at most 63)")
        return raw
    return parse


def _text(name: str) -> Callable[[str], str | None]:
    return lambda raw: raw or None


def _secret(name: str) -> Callable[[str], Secret | None]:
    return lambda raw: Secret(raw) if raw else None


@dataclass(frozen=True)
class Option:
    """One setting: its env var, flag, default and help text, the single source of truth for all of them."""

    field: str
    env: str
    help: str
    default: Any = None
    parse: Callable[[str], Any] | None = None
    flag: str | None = None
    from_file: bool = False  # a ``ENV_FILE`` variant is read too (Kubernetes secret volumes)
    secret: bool = False
    metavar: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.env.lower().removeprefix("migrate_").replace("_", "-")

    def parser(self) -> Callable[[str], Any]:
        if self.parse is not None:
            return self.parse
        return _secret(self.env) if self.secret else _text(self.env)


OPTIONS: tuple[Option, ...] = (
    Option("database_url", "DATABASE_URL", "Database URL; wins over the DB_* variables. Sync URLs "
           "(postgres://, mysql://, sqlite:///) are rewritten to their async driver.",
           from_file=True, secret=True, metavar="URL"),
    Option("db_driver", "DB_DRIVER", "Database kind when DATABASE_URL is not set: " + " | ".join(DRIVERS) + ".",
           parse=_choice("DB_DRIVER", DRIVERS), from_file=True, metavar="DRIVER"),
    Option("db_host", "DB_HOST", "Server host name.", from_file=True, metavar="HOST"),
    Option("db_port", "DB_PORT", "Server port (default: the driver's, 5432 or 3306).",
           parse=_port("DB_PORT"), from_file=True, metavar="PORT"),
    Option("db_user", "DB_USER", "User name (any characters).", from_file=True, secret=True, metavar="USER"),
    Option("db_password", "DB_PASSWORD", "Password (any characters). Prefer DB_PASSWORD_FILE.",
           from_file=True, secret=True, metavar="PASSWORD"),
    Option("db_name", "DB_NAME", "Database name; for sqlite, the database file's path.",
           from_file=True, metavar="NAME"),
    Option("db_sslmode", "DB_SSLMODE", "TLS mode: " + " | ".join(SSL_MODES) + ".",
           parse=_choice("DB_SSLMODE", SSL_MODES), from_file=True, metavar="MODE"),
    Option("alembic_config", "ALEMBIC_CONFIG", "Path to your own alembic.ini; its env.py runs unchanged "
           "(its sqlalchemy.url is used only when no URL is set).", metavar="PATH"),
    Option("versions_dir", "MIGRATE_VERSIONS_DIR", "Directory of revision files (bundled environment only).",
           default="/migrations/versions", metavar="DIR"),
    Option("target", "MIGRATE_TARGET", "Revision to upgrade to (the `upgrade` argument overrides it).",
           default="head", flag="--target", metavar="REV"),
    Option("wait_timeout", "MIGRATE_WAIT_TIMEOUT", "Seconds to keep retrying the first login.",
           default=60.0, parse=_seconds("MIGRATE_WAIT_TIMEOUT"), metavar="SECONDS"),
    Option("lock_timeout", "MIGRATE_LOCK_TIMEOUT", "Seconds to wait for the migration lock.",
           default=300.0, parse=_seconds("MIGRATE_LOCK_TIMEOUT"), metavar="SECONDS"),
    Option("statement_timeout", "MIGRATE_STATEMENT_TIMEOUT", "Seconds any one statement may run "
           "(PostgreSQL statement_timeout, MariaDB max_statement_time, MySQL max_execution_time); unset: no limit.",
           parse=_seconds("MIGRATE_STATEMENT_TIMEOUT"), metavar="SECONDS"),
    Option("ddl_lock_timeout", "MIGRATE_DDL_LOCK_TIMEOUT", "Seconds a statement may wait for a table lock "
           "(PostgreSQL lock_timeout, MySQL/MariaDB lock_wait_timeout); unset: the server's default.",
           parse=_seconds("MIGRATE_DDL_LOCK_TIMEOUT"), metavar="SECONDS"),
    Option("allow_downgrade", "MIGRATE_ALLOW_DOWNGRADE", "Allow the `downgrade` command.",
           default=False, parse=_boolean("MIGRATE_ALLOW_DOWNGRADE"), metavar="BOOL"),
    Option("on_unknown_revision", "MIGRATE_ON_UNKNOWN_REVISION", "When the database carries a revision these "
           "files do not know: error (exit 6) or ignore (warn, exit 0).",
           default="error", parse=_choice("MIGRATE_ON_UNKNOWN_REVISION", ("error", "ignore")), metavar="MODE"),
    Option("transaction_per_migration", "MIGRATE_TRANSACTION_PER_MIGRATION", "One transaction per revision "
           "(false: one transaction for the whole run where the database allows).",
           default=True, parse=_boolean("MIGRATE_TRANSACTION_PER_MIGRATION"), metavar="BOOL"),
    Option("version_table", "MIGRATE_VERSION_TABLE", "Table that records the applied revision.",
           default="alembic_version", parse=_identifier("MIGRATE_VERSION_TABLE"), metavar="TABLE"),
    Option("lock_name", "MIGRATE_LOCK_NAME", "Name of the database lock; migrators that share it exclude "
           "each other.", default="alembic-sidecar", metavar="NAME"),
    Option("pythonpath", "MIGRATE_PYTHONPATH", "Extra import paths for revision files, separated by ':'.",
           metavar="PATHS"),
    Option("log_format", "MIGRATE_LOG_FORMAT", "auto (JSON unless stdout is a terminal) | json | console.",
           default="auto", parse=_choice("MIGRATE_LOG_FORMAT", ("auto", "json", "console")), metavar="FORMAT"),
    Option("log_level", "MIGRATE_LOG_LEVEL", "debug | info | warning | error.",
           default="info", parse=_choice("MIGRATE_LOG_LEVEL", ("debug", "info", "warning", "error")),
           metavar="LEVEL"),
    Option("termination_log", "MIGRATE_TERMINATION_LOG", "File that receives the one-line summary when it "
           "is writable (Kubernetes shows it in `kubectl describe pod`).",
           default="/dev/termination-log", metavar="PATH"),
)


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, resolved once."""

    command: str = "upgrade"
    database_url: Secret | None = None
    db_driver: str | None = None
    db_host: str | None = None
    db_port: int | None = None
    db_user: Secret | None = None
    db_password: Secret | None = None
    db_name: str | None = None
    db_sslmode: str | None = None
    alembic_config: str | None = None
    versions_dir: str = "/migrations/versions"
    target: str = "head"
    sql_range: str | None = None
    wait_timeout: float = 60.0
    lock_timeout: float = 300.0
    statement_timeout: float | None = None
    ddl_lock_timeout: float | None = None
    allow_downgrade: bool = False
    on_unknown_revision: str = "error"
    transaction_per_migration: bool = True
    version_table: str = "alembic_version"
    lock_name: str = "alembic-sidecar"
    pythonpath: str | None = None
    log_format: str = "auto"
    log_level: str = "info"
    termination_log: str = "/dev/termination-log"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


def _read_secret_file(option: Option, path: str) -> str:
    """A secret volume's file; the message names the variable, never the content."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {option.env}_FILE={path!r}: {exc.strerror}",
                                 hint="mount the secret file and make it readable by this user") from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{option.env}_FILE={path!r} is not UTF-8 text",
                                 hint="store the value as UTF-8 text") from None
    # Secret volumes and `echo > file` add a trailing newline that is never part of the value.
    return value.rstrip("\r\n")


def _raw_value(option: Option, environ: Mapping[str, str], arguments: Mapping[str, str]) -> str | None:
    """The flag (or flag-file) if given, else the variable (or variable-file)."""
    if option.field in arguments or option.field + "_file" in arguments:
        return _value_or_file(option, arguments.get(option.field), arguments.get(option.field + "_file"), "flag")
    file_path = environ.get(option.env + "_FILE") if option.from_file else None
    return _value_or_file(option, environ.get(option.env), file_path, "variable")


def _value_or_file(option: Option, direct: str | None, file_path: str | None, kind: str) -> str | None:
    if direct is not None and file_path is not None:
        names = (f"{option.cli_flag} and {option.cli_flag}-file" if kind == "flag"
                 else f"{option.env} and {option.env}_FILE")
        raise ConfigurationError(f"both {names} are set", hint="set only one of them")
    if file_path is not None:
        return _read_secret_file(option, file_path)
    return direct


class _ArgumentParser(argparse.ArgumentParser):
    """Reports usage errors as a ConfigurationError (exit 2, one line) instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigurationError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("settings (each flag overrides its environment variable)")
    for option in OPTIONS:
        group.add_argument(option.cli_flag, dest=option.field, metavar=option.metavar,
                           default=argparse.SUPPRESS, help=f"{option.help} [env {option.env}]")
        if option.from_file:
            group.add_argument(option.cli_flag + "-file", dest=option.field + "_file", metavar="PATH",
                               default=argparse.SUPPRESS,
                               help=f"read {option.env} from this file [env {option.env}_FILE]")
    parser = _ArgumentParser(
        prog="alembic-sidecar", parents=[common],
        description="Wait for the database, take a lock and run Alembic's upgrade through SQLAlchemy's "
                    "asyncio engine. Exit codes are listed in the README.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    helps = {
        "upgrade": "wait, lock and upgrade to TARGET (default command; MIGRATE_TARGET, default head)",
        "check": "exit 0 when the database is at the heads, 8 when revisions are pending",
        "current": "print the database's current revision",
        "heads": "print the head revisions of the versions directory",
        "history": "print the revision history",
        "wait": "only wait until the database accepts a login",
        "sql": "print the SQL of an upgrade without connecting ([FROM:]TO)",
        "downgrade": "downgrade to TARGET (needs MIGRATE_ALLOW_DOWNGRADE=true)",
    }
    for name in COMMANDS:
        sub = commands.add_parser(name, parents=[common], help=helps[name], description=helps[name])
        if name == "upgrade":
            sub.add_argument("target", nargs="?", default=argparse.SUPPRESS, metavar="TARGET")
        elif name == "downgrade":
            sub.add_argument("target", metavar="TARGET")
        elif name == "sql":
            sub.add_argument("sql_range", nargs="?", default=argparse.SUPPRESS, metavar="[FROM:]TO")
    return parser


def from_environ(environ: Mapping[str, str] | None = None, argv: Sequence[str] = ()) -> Settings:
    """Resolve settings: flags win over environment variables, which win over defaults."""
    environ = os.environ if environ is None else environ
    arguments = vars(build_parser().parse_args(list(argv)))
    values: dict[str, Any] = {"command": arguments.pop("command", None) or "upgrade"}
    for option in OPTIONS:
        raw = _raw_value(option, environ, arguments)
        if raw is None or (raw == "" and option.default is not None):
            continue
        values[option.field] = option.parser()(raw)
    if "sql_range" in arguments:
        values["sql_range"] = arguments["sql_range"]
    return Settings(**values)


def settings_fields() -> list[str]:
    return [f.name for f in fields(Settings)]
