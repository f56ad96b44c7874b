"""Settings: one frozen dataclass, read from environment variables, ``*_FILE`` secret files and flags."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from . import commands
from .databases import backends
from .errors import ConfigurationError

DRIVERS = backends()
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


#: PostgreSQL takes its timeouts as a 32-bit count of milliseconds; no server accepts more than this many seconds.
MAX_SECONDS = 2147483
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

#: A parser takes the raw text and returns the typed value, or raises :class:`_Invalid`.
Parse = Callable[[str], Any]


class _Invalid(ValueError):
    """A value a parser refuses: what it expects and an example; :meth:`Option.convert` words the message."""

    def __init__(self, expected: str, example: str) -> None:
        super().__init__(expected)
        self.expected = expected
        self.example = example


def _seconds(low: float, high: float = MAX_SECONDS, *, above: bool = False, example: str = "30") -> Parse:
    """Seconds from ``low`` (excluded when ``above``) to ``high``; ASCII digits, an optional trailing ``s``."""
    shown = [str(int(bound)) if float(bound).is_integer() else str(bound) for bound in (low, high)]
    bounds = "more than {} and at most {}" if above else "from {} to {}"
    expected = "a number of seconds " + bounds.format(*shown)

    def parse(raw: str) -> float:
        text = raw.strip().removesuffix("s").rstrip()
        # float() alone would take "nan", "inf", "1_0" and non-ASCII digits.
        value = float(text) if _NUMBER.fullmatch(text) else math.nan
        if not (low < value if above else low <= value) or not value <= high:
            raise _Invalid(expected, example)
        return value
    return parse


def _integer(low: int, high: int, *, expected: str | None = None, example: str) -> Parse:
    expected = expected or f"a whole number from {low} to {high}"

    def parse(raw: str) -> int:
        text = raw.strip()
        # ASCII digits only: str.isdigit() and int() also take "²" and "٥٤٣٢".
        if not re.fullmatch(r"[0-9]{1,9}", text) or not low <= int(text) <= high:
            raise _Invalid(expected, example)
        return int(text)
    return parse


def _choice(choices: Sequence[str]) -> Parse:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise _Invalid(f"one of {', '.join(choices)}", choices[0])
        return value
    return parse


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise _Invalid("true or false", "true")


def _identifier(raw: str) -> str:
    # It is interpolated into SQL as a table name: letters, digits and underscores only.
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", raw):
        raise _Invalid("a plain table name (letters, digits and underscores, at most 63)", "alembic_version")
    return raw


def _object_reference(raw: str) -> str:
    # Only its shape is checked here; the import waits for the commands that use it (never the fast no-op).
    module, colon, attribute = raw.strip().partition(":")
    if not colon or not all(part.isidentifier() for part in (*module.split("."), *attribute.split("."))):
        raise _Invalid("module:attribute, a Python module and the MetaData or declarative base in it",
                       "myapp.models:Base")
    return f"{module}:{attribute}"


def _names(raw: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))


def _text(raw: str) -> str | None:
    return raw or None


def _secret(raw: str) -> Secret | None:
    return Secret(raw) if raw else None


@dataclass(frozen=True)
class Option:
    """One setting: its env var, flag, default and help text, the single source of truth for all of them."""

    field: str
    env: str
    help: str
    default: Any = None
    parse: Parse | None = None
    flag: str | None = None
    from_file: bool = False  # a ``ENV_FILE`` variant is read too (Kubernetes secret volumes)
    secret: bool = False
    metavar: str | None = None

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.env.lower().removeprefix("migrate_").replace("_", "-")

    def convert(self, raw: str, source: str = "variable") -> Any:
        """The typed value of ``raw``; a refusal names where it came from (``variable``, ``flag``, or either
        with ``-file``) and, unless the option is secret, the value."""
        parse = self.parse or (_secret if self.secret else _text)
        try:
            return parse(raw)
        except _Invalid as invalid:
            name = self.cli_flag if source.startswith("flag") else self.env
            if source.endswith("-file"):
                where = f"{self.cli_flag}-file" if source.startswith("flag") else f"{self.env}_FILE"
                subject, hint = f"{name} (read from {where})", f"put a value like {invalid.example} in the file"
            else:
                subject = name
                hint = f"set it like {name}{' ' if source == 'flag' else '='}{invalid.example}"
            got = "" if self.secret else f", got {raw!r}"
            raise ConfigurationError(f"{subject} must be {invalid.expected}{got}", hint=hint) from None


OPTIONS: tuple[Option, ...] = (
    Option("database_url", "DATABASE_URL", "Database URL. Sync URLs (postgres://, mysql://, sqlite:///) are "
           "rewritten to their async driver. DB_USER and DB_PASSWORD fill in a user or password it leaves out; "
           "DB_DRIVER, DB_HOST, DB_PORT and DB_NAME beside it are refused.",
           from_file=True, secret=True, metavar="URL"),
    Option("db_driver", "DB_DRIVER", "Database kind, to build the URL from the DB_* settings instead of "
           "DATABASE_URL (with ALEMBIC_CONFIG: instead of the ini's sqlalchemy.url): " + " | ".join(DRIVERS) + ".",
           parse=_choice(DRIVERS), from_file=True, metavar="DRIVER"),
    Option("db_host", "DB_HOST", "Server host name (with DB_DRIVER).", from_file=True, metavar="HOST"),
    Option("db_port", "DB_PORT", "Server port (with DB_DRIVER; default: the driver's, 5432 or 3306).",
           parse=_integer(1, 65535, expected="a port number from 1 to 65535", example="5432"),
           from_file=True, metavar="PORT"),
    Option("db_user", "DB_USER", "User name (any characters); also fills in a URL that has none.",
           from_file=True, secret=True, metavar="USER"),
    Option("db_password", "DB_PASSWORD", "Password (any characters); also fills in a URL that has none. "
           "Prefer DB_PASSWORD_FILE.",
           from_file=True, secret=True, metavar="PASSWORD"),
    Option("db_name", "DB_NAME", "Database name (with DB_DRIVER); for sqlite, the database file's path.",
           from_file=True, metavar="NAME"),
    Option("db_sslmode", "DB_SSLMODE", "TLS mode: " + " | ".join(SSL_MODES) + ".",
           parse=_choice(SSL_MODES), from_file=True, metavar="MODE"),
    Option("db_sslrootcert", "DB_SSLROOTCERT", "CA certificate file (PEM) that verifies the server's certificate "
           "(sslmode verify-ca / verify-full); PostgreSQL also takes `system`, the image's trusted roots.",
           metavar="PATH"),
    Option("db_sslcert", "DB_SSLCERT", "Client certificate file (PEM), for servers that authenticate by "
           "certificate.", metavar="PATH"),
    Option("db_sslkey", "DB_SSLKEY", "Private key file (PEM) of DB_SSLCERT.", metavar="PATH"),
    Option("db_sslpassword", "DB_SSLPASSWORD", "Password of an encrypted DB_SSLKEY. Prefer DB_SSLPASSWORD_FILE.",
           from_file=True, secret=True, metavar="PASSWORD"),
    Option("alembic_config", "ALEMBIC_CONFIG", "Path to your own alembic.ini; its env.py runs unchanged "
           "(its sqlalchemy.url is used only when no URL is set).", metavar="PATH"),
    Option("versions_dir", "MIGRATE_VERSIONS_DIR", "Directory of revision files (bundled environment only).",
           default="/migrations/versions", metavar="DIR"),
    Option("target", "MIGRATE_TARGET", "Revision to upgrade to (the `upgrade` argument overrides it).",
           default="head", flag="--target", metavar="REV"),
    Option("wait_timeout", "MIGRATE_WAIT_TIMEOUT", "Seconds to keep retrying the first login.",
           default=60.0, parse=_seconds(0, example="60"), metavar="SECONDS"),
    Option("lock_timeout", "MIGRATE_LOCK_TIMEOUT", "Seconds to wait for the migration lock.",
           default=300.0, parse=_seconds(0, example="300"), metavar="SECONDS"),
    # The server-side timeouts are sent in milliseconds, where 0 means "no limit": below 1 ms is refused.
    Option("statement_timeout", "MIGRATE_STATEMENT_TIMEOUT", "Seconds any one statement may run "
           "(PostgreSQL statement_timeout, MariaDB max_statement_time, MySQL max_execution_time); unset: no limit.",
           parse=_seconds(0.001, example="600"), metavar="SECONDS"),
    Option("ddl_lock_timeout", "MIGRATE_DDL_LOCK_TIMEOUT", "Seconds a statement may wait for a table lock "
           "(PostgreSQL lock_timeout, MySQL/MariaDB lock_wait_timeout); unset: the server's default.",
           parse=_seconds(0.001, example="5"), metavar="SECONDS"),
    Option("ddl_lock_retries", "MIGRATE_DDL_LOCK_RETRIES", "How often a revision that hit "
           "MIGRATE_DDL_LOCK_TIMEOUT is rolled back and retried (with jittered backoff) before exit 9; PostgreSQL "
           "and SQLite only (MySQL/MariaDB commit DDL implicitly).",
           default=0, parse=_integer(0, 100, example="3"), metavar="N"),
    Option("run_timeout", "MIGRATE_TIMEOUT", "Whole-run deadline in seconds: past it the migration is stopped, "
           "rolled back, and the run exits 9; unset: no deadline.",
           parse=_seconds(0, above=True, example="900"), metavar="SECONDS"),
    Option("ready_timeout", "MIGRATE_READY_TIMEOUT", "Seconds `ready` polls the version table for the heads (or "
           "MIGRATE_TARGET) after its login before it exits 8; 0: read once.",
           default=300.0, parse=_seconds(0, example="300"), metavar="SECONDS"),
    Option("allow_downgrade", "MIGRATE_ALLOW_DOWNGRADE", "Allow the `downgrade` command.",
           default=False, parse=_boolean, metavar="BOOL"),
    Option("on_unknown_revision", "MIGRATE_ON_UNKNOWN_REVISION", "When the database carries a revision these "
           "files do not know: error (exit 6) or ignore (warn, exit 0).",
           default="error", parse=_choice(("error", "ignore")), metavar="MODE"),
    Option("transaction_per_migration", "MIGRATE_TRANSACTION_PER_MIGRATION", "One transaction per revision "
           "(false: one transaction for the whole run where the database allows).",
           default=True, parse=_boolean, metavar="BOOL"),
    Option("version_table", "MIGRATE_VERSION_TABLE", "Table that records the applied revision.",
           default="alembic_version", parse=_identifier, metavar="TABLE"),
    Option("version_table_schema", "MIGRATE_VERSION_TABLE_SCHEMA", "Schema (MySQL/MariaDB: database) of the "
           "version table, Alembic's version_table_schema; unset: the connection's default (search_path).",
           parse=_identifier, metavar="SCHEMA"),
    Option("history_table", "MIGRATE_HISTORY_TABLE", "Table beside the version table (in its schema) where "
           "`upgrade` records each applied revision: its file's checksum, when, how long, which sidecar version; "
           "created on first use.", default="alembic_sidecar_history", parse=_identifier, metavar="TABLE"),
    Option("verify_history", "MIGRATE_VERIFY_HISTORY", "Applied revisions whose file changed or disappeared since "
           "(whitespace and comments aside): warn (`upgrade` logs applied_history_changed and goes on; `check` exits "
           "12) | strict (`upgrade` exits 12 before applying anything) | off (the history table is neither read nor "
           "written).", default="warn", parse=_choice(("warn", "strict", "off")), metavar="MODE"),
    Option("lock_name", "MIGRATE_LOCK_NAME", "Name of the database lock; migrators that share it exclude "
           "each other.", default="alembic-sidecar", metavar="NAME"),
    Option("pythonpath", "MIGRATE_PYTHONPATH", "Extra import paths for revision files, separated by ':'.",
           metavar="PATHS"),
    Option("metadata", "MIGRATE_METADATA", "Your models' SQLAlchemy MetaData or declarative base as "
           "module:attribute (importable through MIGRATE_PYTHONPATH): the bundled env.py's target_metadata, so its "
           "naming_convention names constraints, and what `drift` compares the database with.",
           parse=_object_reference, metavar="MODULE:ATTR"),
    # A fleet: many databases or schemas in one run (fleet.py, targets.py).
    Option("targets_file", "MIGRATE_TARGETS_FILE", "File listing the fleet's targets, one a line: a full database "
           "URL, or schema=NAME (PostgreSQL: version table and search_path in that schema) or database=NAME, "
           "applied to DATABASE_URL or the DB_* settings; blank lines and # comments ignored. Every line is checked "
           "before any work (exit 2 names the line). Unset: one database.", metavar="PATH"),
    Option("parallel", "MIGRATE_PARALLEL", "Fleet: how many targets migrate at a time (one supervised process "
           "and connection each).", default=4, parse=_integer(1, 64, example="4"), metavar="N"),
    Option("canary", "MIGRATE_CANARY", "Fleet: the first N targets (of this shard) run first; if any fails, no "
           "other target starts.", default=0, parse=_integer(0, 100000, example="1"), metavar="N"),
    Option("continue_on_error", "MIGRATE_CONTINUE_ON_ERROR", "Fleet: after the canaries, a failed target does "
           "not stop the others from starting (false: targets in progress finish, no new one starts).",
           default=False, parse=_boolean, metavar="BOOL"),
    Option("shards", "MIGRATE_SHARDS", "Fleet: how many pods share the list (a Kubernetes Indexed Job's "
           "completions); pod JOB_COMPLETION_INDEX runs the targets whose 0-based position modulo MIGRATE_SHARDS "
           "is its index.", default=1, parse=_integer(1, 10000, example="4"), metavar="N"),
    Option("shard_index", "JOB_COMPLETION_INDEX", "Fleet: this pod's shard, from 0; Kubernetes sets it in an "
           "Indexed Job's pods. Required when MIGRATE_SHARDS > 1.",
           parse=_integer(0, 9999, example="0"), flag="--shard-index", metavar="INDEX"),
    Option("log_format", "MIGRATE_LOG_FORMAT", "auto (JSON unless stdout is a terminal) | json | console.",
           default="auto", parse=_choice(("auto", "json", "console")), metavar="FORMAT"),
    Option("log_level", "MIGRATE_LOG_LEVEL", "debug | info | warning | error.",
           default="info", parse=_choice(("debug", "info", "warning", "error")), metavar="LEVEL"),
    Option("termination_log", "MIGRATE_TERMINATION_LOG", "File that receives the one-line summary (Kubernetes "
           "shows it in `kubectl describe pod`), created if missing; unset: /dev/termination-log, written only "
           "where it exists (Kubernetes creates it), so a run outside Kubernetes leaves /dev alone.",
           metavar="PATH"),
    # The CI reports (ci_reports/): each path is tried before any database work (exit 2 naming the setting).
    Option("report_sarif", "MIGRATE_REPORT_SARIF", "`lint`, `check`, `upgrade`, `drift`, `test`: write the findings "
           "as SARIF 2.1.0 to this file (GitHub code scanning), for a failed run too.", metavar="PATH"),
    Option("report_junit", "MIGRATE_REPORT_JUNIT", "The same commands: write JUnit XML to this file, one test case "
           "per revision and per finding (Jenkins, Azure DevOps, GitLab test reports).", metavar="PATH"),
    Option("report_codequality", "MIGRATE_REPORT_CODEQUALITY", "The same commands: write the findings as GitLab "
           "Code Quality JSON to this file.", metavar="PATH"),
    # Alembic's own defaults for EnvironmentContext.configure() (compare_type True since Alembic 1.12).
    Option("compare_type", "MIGRATE_COMPARE_TYPE", "`drift` compares column types (Alembic's compare_type). "
           "With ALEMBIC_CONFIG your env.py decides, and `drift` refuses false (exit 2).",
           default=True, parse=_boolean, metavar="BOOL"),
    Option("compare_server_default", "MIGRATE_COMPARE_SERVER_DEFAULT", "`drift` compares server defaults "
           "(Alembic's compare_server_default; on PostgreSQL Alembic evaluates both in a SELECT). With "
           "ALEMBIC_CONFIG your env.py decides, and `drift` refuses true (exit 2).",
           default=False, parse=_boolean, metavar="BOOL"),
    Option("lint_ignore", "MIGRATE_LINT_IGNORE", "`lint` rules to turn off, comma-separated (names in "
           "docs/reference.md#lint-rules); a revision file turns rules off for itself with a comment "
           "`# alembic-sidecar lint-ignore: RULE, RULE`.", parse=_names, metavar="RULES"),
    Option("lint_since", "MIGRATE_LINT_SINCE", "`lint` only the revisions after this one (a pull request's base "
           "revision); unset: every revision, or the RANGE argument.", metavar="REV"),
)


def _default(name: str) -> Any:
    """The default that OPTIONS declares for ``name``: the dataclass below takes its defaults from there."""
    return next(option.default for option in OPTIONS if option.field == name)


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, resolved once."""

    command: str = "upgrade"
    database_url: Secret | None = _default("database_url")
    db_driver: str | None = _default("db_driver")
    db_host: str | None = _default("db_host")
    db_port: int | None = _default("db_port")
    db_user: Secret | None = _default("db_user")
    db_password: Secret | None = _default("db_password")
    db_name: str | None = _default("db_name")
    db_sslmode: str | None = _default("db_sslmode")
    db_sslrootcert: str | None = _default("db_sslrootcert")
    db_sslcert: str | None = _default("db_sslcert")
    db_sslkey: str | None = _default("db_sslkey")
    db_sslpassword: Secret | None = _default("db_sslpassword")
    alembic_config: str | None = _default("alembic_config")
    versions_dir: str = _default("versions_dir")
    target: str = _default("target")
    sql_range: str | None = None
    wait_timeout: float = _default("wait_timeout")
    lock_timeout: float = _default("lock_timeout")
    statement_timeout: float | None = _default("statement_timeout")
    ddl_lock_timeout: float | None = _default("ddl_lock_timeout")
    ddl_lock_retries: int = _default("ddl_lock_retries")
    run_timeout: float | None = _default("run_timeout")
    ready_timeout: float = _default("ready_timeout")
    allow_downgrade: bool = _default("allow_downgrade")
    on_unknown_revision: str = _default("on_unknown_revision")
    transaction_per_migration: bool = _default("transaction_per_migration")
    version_table: str = _default("version_table")
    version_table_schema: str | None = _default("version_table_schema")
    history_table: str = _default("history_table")
    verify_history: str = _default("verify_history")
    lock_name: str = _default("lock_name")
    pythonpath: str | None = _default("pythonpath")
    metadata: str | None = _default("metadata")
    targets_file: str | None = _default("targets_file")
    parallel: int = _default("parallel")
    canary: int = _default("canary")
    continue_on_error: bool = _default("continue_on_error")
    shards: int = _default("shards")
    shard_index: int | None = _default("shard_index")
    log_format: str = _default("log_format")
    log_level: str = _default("log_level")
    termination_log: str | None = _default("termination_log")
    report_sarif: str | None = _default("report_sarif")
    report_junit: str | None = _default("report_junit")
    report_codequality: str | None = _default("report_codequality")
    compare_type: bool = _default("compare_type")
    compare_server_default: bool = _default("compare_server_default")
    lint_ignore: tuple[str, ...] | None = _default("lint_ignore")
    lint_since: str | None = _default("lint_since")
    # One target of a fleet (targets.py): schema=NAME or database=NAME applied to the endpoint.
    target_schema: str | None = None
    target_database: str | None = None
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


def _raw_value(option: Option, environ: Mapping[str, str],
               arguments: Mapping[str, str]) -> tuple[str, str] | None:
    """The flag (or flag-file) if given, else the variable (or variable-file), with where it came from.

    An empty value counts as not given (compose's ``${VAR:-}`` passes ``VAR=``); an empty file is a value.
    """
    found = _value_or_file(option, arguments.get(option.field) or None,
                           arguments.get(option.field + "_file") or None, "flag")
    if found is None:
        file_path = (environ.get(option.env + "_FILE") or None) if option.from_file else None
        found = _value_or_file(option, environ.get(option.env) or None, file_path, "variable")
    return found


def _value_or_file(option: Option, direct: str | None, file_path: str | None, kind: str) -> tuple[str, str] | None:
    if direct is not None and file_path is not None:
        names = (f"{option.cli_flag} and {option.cli_flag}-file" if kind == "flag"
                 else f"{option.env} and {option.env}_FILE")
        raise ConfigurationError(f"both {names} are set", hint="set only one of them")
    if file_path is not None:
        return _read_secret_file(option, file_path), kind + "-file"
    return None if direct is None else (direct, kind)


class _ArgumentParser(argparse.ArgumentParser):
    """Reports usage errors as a ConfigurationError (exit 2, one line) instead of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigurationError(f"{self.prog}: {message}", hint=f"see `{self.prog} --help`")


def _without_flag_values(error: ConfigurationError, argv: Sequence[str]) -> ConfigurationError:
    """A usage error that shows no flag's value: a mistyped ``--db-pasword SECRET`` would otherwise be echoed."""
    values = [token.partition("=")[2] if "=" in token else following
              for token, following in zip(argv, [*argv[1:], ""]) if token.startswith("-")]
    message = error.message
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= 3:  # shorter ones would mask ordinary words
            message = message.replace(value, "***")
    return ConfigurationError(message, hint=error.hint)


#: The fleet's events, as `--help` and the README show them (tests/integration/test_fleet.py checks their fields).
FLEET_SAMPLE = (
    '{"target": "schema=tenant_7", "line": 9, "outcome": "failed", "exit_code": 1, "applied": 2, '
    '"duration_ms": 412, "kind": "migration failed", "error": "revision 0003 (add invoices) failed: ...", '
    '"event": "target_done", "level": "error", "timestamp": "2026-12-05T01:02:03.456789Z"}\n'
    '{"targets": 200, "migrated": 197, "unchanged": 1, "failed": 2, "interrupted": 0, "not_started": 0, '
    '"exit_code": 1, "stopped": null, "duration_ms": 24180, "failed_targets": [{"target": "schema=tenant_7", '
    '"line": 9, "exit_code": 1, "kind": "migration failed", "error": "revision 0003 (add invoices) failed: ..."}, '
    '{"target": "postgresql://app:***@db-eu-2:5432/shop", "line": 40, "exit_code": 3, "kind": "database not '
    'reachable in time", "error": "..."}], "event": "fleet_complete", "level": "error", '
    '"timestamp": "2026-12-05T01:02:27.001122Z"}')


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
                    "asyncio engine. Exit codes are listed in the README.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="many databases (MIGRATE_TARGETS_FILE): one target_done event per target, then one fleet_complete;\n"
               "the exit code is the worst target's (1, 2, 5, 6, 7 before 143/130 before 3, 4, 9):\n" + FLEET_SAMPLE)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_ArgumentParser)
    for command in commands.COMMANDS:
        sub = subparsers.add_parser(command.name, parents=[common], help=command.help, description=command.help)
        argument = command.argument
        if argument is not None and argument.optional:
            sub.add_argument(argument.field, nargs="?", default=argparse.SUPPRESS, metavar=argument.metavar)
        elif argument is not None:
            sub.add_argument(argument.field, metavar=argument.metavar)
    return parser


# Commands that need no argument of their own: given alone, they need no parser.
_BARE_COMMANDS = frozenset(command.name for command in commands.COMMANDS
                           if command.argument is None or command.argument.optional)


def from_environ(environ: Mapping[str, str] | None = None, argv: Sequence[str] = ()) -> Settings:
    """Resolve settings: flags win over environment variables, which win over defaults."""
    environ = os.environ if environ is None else environ
    if len(argv) <= 1 and all(arg in _BARE_COMMANDS for arg in argv):
        # A container's usual argv (none, or `upgrade`): building the whole parser would cost every pod start ~10 ms.
        arguments: dict[str, Any] = {"command": argv[0]} if argv else {}
    else:
        try:
            arguments = vars(build_parser().parse_args(list(argv)))
        except ConfigurationError as error:
            raise _without_flag_values(error, argv) from None
    values: dict[str, Any] = {"command": arguments.pop("command", None) or "upgrade"}
    for option in OPTIONS:
        found = _raw_value(option, environ, arguments)
        if found is not None:
            values[option.field] = option.convert(*found)
    if "sql_range" in arguments:
        values["sql_range"] = arguments["sql_range"]
    return Settings(**values)


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """The MIGRATE_* variables no setting reads, each with the setting it most resembles: a misspelt name would
    otherwise change nothing without a word (MIGRATE_TARGTE=abc upgrades to head)."""
    known = {option.env for option in OPTIONS} | {f"{option.env}_FILE" for option in OPTIONS if option.from_file}
    unknown = sorted(name for name in environ if name.startswith("MIGRATE_") and name not in known)
    if not unknown:
        return []
    import difflib

    return [(name, next(iter(difflib.get_close_matches(name, known, n=1, cutoff=0.75)), None)) for name in unknown]


def settings_fields() -> list[str]:
    return [f.name for f in fields(Settings)]
