"""A fleet's targets: MIGRATE_TARGETS_FILE read and checked line by line, then this pod's shard of it.

Each target becomes the settings of one single-database run, so that every guarantee of a single run holds per
target. A refusal names the line by its number and never echoes the line, which may hold a password.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from . import endpoint as endpoints
from .errors import ConfigurationError
from .settings import Secret, Settings

SOURCE = "MIGRATE_TARGETS_FILE"
# Commands that mean something for each of many databases; the others answer for one.
FLEET_COMMANDS = ("upgrade", "check")
_SCHEMA = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_$-]{0,63}")


@dataclass(frozen=True)
class Target:
    """One line of the list: where it is, how logs name it, and the settings of its single-database run."""

    line: int
    label: str  # the masked URL, schema=NAME or database=NAME: never a password
    settings: Settings
    identity: tuple[object, ...]  # what makes two lines the same target


def read(settings: Settings) -> list[Target]:
    """Every target of the file, each checked as its own run would check it; ConfigurationError names the line."""
    assert settings.targets_file is not None
    _refuse_what_a_fleet_cannot_do(settings)
    targets: list[Target] = []
    seen: dict[tuple[object, ...], int] = {}
    for number, text in _lines(settings.targets_file):
        target = _target(settings, number, text)
        if target.identity in seen:
            raise ConfigurationError(f"{SOURCE} line {number} names the same target as line {seen[target.identity]}",
                                     hint="list each database or schema once")
        seen[target.identity] = number
        targets.append(target)
    if not targets:
        raise ConfigurationError(f"{SOURCE} lists no target", hint="put one database URL, schema=NAME or "
                                                                   "database=NAME on each line")
    return targets


def shard(targets: list[Target], settings: Settings) -> list[Target]:
    """The targets of this pod: those whose 0-based position modulo MIGRATE_SHARDS is JOB_COMPLETION_INDEX."""
    if settings.shards == 1:
        return targets
    index = settings.shard_index
    if index is None:
        raise ConfigurationError(f"MIGRATE_SHARDS={settings.shards} needs JOB_COMPLETION_INDEX, this pod's shard",
                                 hint="run it as a Kubernetes Indexed Job (completionMode: Indexed), which sets it, "
                                      "or set it from 0 to MIGRATE_SHARDS-1")
    if index >= settings.shards:
        raise ConfigurationError(f"JOB_COMPLETION_INDEX={index} is not below MIGRATE_SHARDS={settings.shards}",
                                 hint="give the Job as many completions as MIGRATE_SHARDS")
    return [target for position, target in enumerate(targets) if position % settings.shards == index]


def _refuse_what_a_fleet_cannot_do(settings: Settings) -> None:
    if settings.command not in FLEET_COMMANDS:
        raise ConfigurationError(f"MIGRATE_TARGETS_FILE works with {' and '.join(FLEET_COMMANDS)}, not "
                                 f"{settings.command}", hint=f"unset MIGRATE_TARGETS_FILE to {settings.command} one "
                                                             "database")


def _lines(path: str) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {SOURCE}={path!r}: {exc.strerror}",
                                 hint="mount the file (a ConfigMap or Secret) and make it readable by this user") \
            from None
    except UnicodeDecodeError:
        raise ConfigurationError(f"{SOURCE}={path!r} is not UTF-8 text", hint="store the list as UTF-8 text") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), start=1)]
    return [(number, line) for number, line in lines if line and not line.startswith("#")]


def _target(settings: Settings, number: int, text: str) -> Target:
    where = f"{SOURCE} line {number}"
    key, equals, name = text.partition("=")
    if "://" in text:
        endpoints.parse_url(text, where)  # so that a refusal names the line, not DATABASE_URL
        single = dataclasses.replace(settings, database_url=Secret(text), db_driver=None, db_host=None, db_port=None,
                                     db_name=None)
    elif equals and key.strip() == "schema":
        name = name.strip()
        if not _SCHEMA.fullmatch(name):
            raise ConfigurationError(f"{where}: schema=NAME needs a plain schema name (letters, digits and "
                                     "underscores, at most 63)", hint="write it like schema=tenant_42")
        if settings.version_table_schema is not None:
            raise ConfigurationError(f"{where} is a schema target, and MIGRATE_VERSION_TABLE_SCHEMA is set",
                                     hint="unset MIGRATE_VERSION_TABLE_SCHEMA: a schema target keeps its version "
                                          "table in its own schema")
        if settings.alembic_config is not None:
            raise ConfigurationError(f"{where} is a schema target, which your own env.py (ALEMBIC_CONFIG) would "
                                     "not honour", hint="list databases (database=NAME or URLs), or use the bundled "
                                                        "env.py")
        single = dataclasses.replace(settings, target_schema=name, version_table_schema=name)
    elif equals and key.strip() == "database":
        name = name.strip()
        if not _DATABASE.fullmatch(name):
            raise ConfigurationError(f"{where}: database=NAME needs a plain database name (letters, digits, _, $ "
                                     "and -, at most 64)", hint="write it like database=tenant_42")
        single = dataclasses.replace(settings, target_database=name)
    else:
        raise ConfigurationError(f"{where} is neither a database URL nor schema=NAME nor database=NAME",
                                 hint="put one target on each line; # starts a comment line")
    single = dataclasses.replace(single, targets_file=None, shards=1, shard_index=None)
    try:
        endpoint = endpoints.from_settings(single)
    except ConfigurationError as error:
        raise ConfigurationError(f"{where}: {error.message}", hint=error.hint) from None
    label = (endpoint.masked if "://" in text else text.replace(" ", ""))
    identity = (endpoint.backend, endpoint.host, endpoint.port, endpoint.database, single.target_schema)
    return Target(number, label, single, identity)
