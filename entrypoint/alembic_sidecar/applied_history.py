"""The applied history: a table of the sidecar's own beside the version table, one row per applied revision with its
file's checksums, and the comparison of those checksums with the files as they are now.

Two checksums per file: the sha256 of its bytes, which the fast no-op compares without parsing anything, and the
sha256 of its Python tokens without comments, blank lines, indentation width and string statements (docstrings: they
do not run), which decides whether a file whose bytes differ really changed.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import re
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .findings import ERROR, Finding

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from .settings import Settings

RULE_CHANGED = "applied-history-changed"
RULE_MISSING = "applied-revision-missing"
#: What the fast no-op reads of the table: enough to see that nothing changed.
FAST_COLUMNS = ("revision", "file_sha256")
_FIX = "revert the file to what was applied and put the change in a new revision"

# Tokens whose text carries no meaning for what runs: INDENT's width and NEWLINE's "\r\n" or "\n".
_BY_NAME_ONLY = {"INDENT", "DEDENT", "NEWLINE", "ENDMARKER"}
_SKIPPED = {"COMMENT", "NL", "ENCODING"}
_STATEMENT_START = {"NEWLINE", "INDENT", "DEDENT", None}
_LINE = re.compile(r"[^\n]*\n|[^\n]+$")


def file_sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def checksum(content: bytes) -> str:
    """The sha256 of what runs: a whitespace-only or comment-only edit, or an edited docstring, leaves it alone."""
    tokens = _tokens(content)
    digest = hashlib.sha256()
    previous = None
    for index, (name, text) in enumerate(tokens):
        following = tokens[index + 1][0] if index + 1 < len(tokens) else None
        if name == "STRING" and previous in _STATEMENT_START and following == "NEWLINE":
            tokens[index + 1] = ("NL", "")  # a string statement (a docstring) does not run: its line goes with it
            previous = "NEWLINE"
            continue
        if name == "NL":  # a string statement's NEWLINE, dropped above
            continue
        digest.update(f"{name}:{'' if name in _BY_NAME_ONLY else text}\0".encode())
        previous = name
    return digest.hexdigest()


def _tokens(content: bytes) -> list[tuple[str, str]]:
    """The file's tokens by name (the numbers differ between Pythons), the same on every Python the images run:
    3.12 and later split an f-string into parts, which are joined back into the one STRING 3.11 sees."""
    encoding, _ = tokenize.detect_encoding(io.BytesIO(content).readline)
    lines = _LINE.findall(content.decode(encoding))
    found: list[tuple[str, str]] = []
    depth, start = 0, (0, 0)
    for token in tokenize.tokenize(io.BytesIO(content).readline):
        name = tokenize.tok_name[token.type]
        if name in _SKIPPED:
            continue
        if name.endswith("STRING_START"):  # FSTRING_START (3.12), TSTRING_START (3.14)
            start = token.start if depth == 0 else start
            depth += 1
        elif depth:
            if name.endswith("STRING_END"):
                depth -= 1
                if depth == 0:
                    found.append(("STRING", _source(lines, start, token.end)))
        else:
            found.append((name, token.string))
    # A line end inside a string is "\n" to the compiler whatever the file holds.
    return [(name, text.replace("\r\n", "\n")) for name, text in found]


def _source(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    (first, column), (last, end_column) = start, end
    if first == last:
        return lines[first - 1][column:end_column]
    return lines[first - 1][column:] + "".join(lines[first:last - 1]) + lines[last - 1][:end_column]


@dataclass(frozen=True)
class Record:
    """One row of the history table."""

    revision: str
    file_sha256: str
    checksum: str
    path: str  # the file's name, for a finding on a file that is gone
    applied_at: datetime.datetime | None  # UTC; None for an adopted revision (applied before it was recorded)
    recorded_at: datetime.datetime
    duration_ms: int | None
    adopted: bool
    sidecar_version: str


def table(settings: Settings) -> Table:
    """The history table, in the version table's schema, with generic types every database has."""
    from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table

    return Table(settings.history_table, MetaData(schema=settings.version_table_schema),
                 Column("revision", String(64), primary_key=True),
                 Column("file_sha256", String(64), nullable=False),
                 Column("checksum", String(64), nullable=False),
                 Column("path", String(255), nullable=False),
                 Column("applied_at", DateTime(), nullable=True),
                 Column("recorded_at", DateTime(), nullable=False),
                 Column("duration_ms", Integer(), nullable=True),
                 Column("adopted", Boolean(), nullable=False),
                 Column("sidecar_version", String(32), nullable=False))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alembic-sidecar")
    except PackageNotFoundError:
        return "unknown"


def _row(revision: str, path: str, *, applied: bool, duration_ms: int | None = None) -> dict[str, Any]:
    with open(path, "rb") as handle:
        content = handle.read()
    now = _now()
    return {"revision": revision, "file_sha256": file_sha256(content), "checksum": checksum(content),
            "path": os.path.basename(path), "applied_at": now if applied else None, "recorded_at": now,
            "duration_ms": duration_ms, "adopted": not applied, "sidecar_version": _version()}


# -- on a SQLAlchemy connection (run_sync) ---------------------------------------------------------------------------

def read(connection: Connection, history: Table) -> dict[str, Record] | None:
    """The table's rows by revision; None when the table does not exist yet."""
    from sqlalchemy import inspect, select

    if not inspect(connection).has_table(history.name, schema=history.schema):
        return None
    return {row.revision: Record(**row._asdict()) for row in connection.execute(select(history))}


def adopt(connection: Connection, history: Table, files: Mapping[str, str], missing: Iterable[str],
          refresh: Mapping[str, str]) -> None:
    """Create the table if need be, record the ``missing`` revisions as adopted, and store the new bytes' sha256 of
    files whose bytes changed but not what runs (so the fast no-op agrees with them again). Run again, it writes
    the same."""
    from sqlalchemy import delete, update

    history.create(connection, checkfirst=True)
    rows = [_row(revision, files[revision], applied=False) for revision in sorted(missing)]
    if rows:  # replacing any row a first attempt wrote (a revision retried after a lock timeout)
        connection.execute(delete(history).where(history.c.revision.in_([row["revision"] for row in rows])))
        connection.execute(history.insert(), rows)
    for revision, sha in sorted(refresh.items()):
        connection.execute(update(history).where(history.c.revision == revision).values(file_sha256=sha))


def record_step(connection: Connection, history: Table, revisions: Sequence[str], path: str | None,
                duration_ms: int, upgrade: bool) -> None:
    """Inside the revision's transaction, beside Alembic's version table update: a rolled-back revision leaves no
    row. A downgrade removes the row; an upgrade replaces any stale one (left by a plain `alembic downgrade`)."""
    from sqlalchemy import delete

    connection.execute(delete(history).where(history.c.revision.in_(list(revisions))))
    if upgrade and path is not None:
        connection.execute(history.insert(), [_row(revision, path, applied=True, duration_ms=duration_ms)
                                              for revision in revisions])


# -- the comparison --------------------------------------------------------------------------------------------------

@dataclass
class Verdict:
    """What the records say of the files: findings, revisions applied but unrecorded, bytes to store anew."""

    findings: list[Finding]
    unrecorded: list[str]
    refresh: dict[str, str]


def compare(records: Mapping[str, Record], applied: Iterable[str], files: Mapping[str, str]) -> Verdict:
    """``applied``: the revisions the version table's heads stand on; ``files``: every revision's file now."""
    findings: list[Finding] = []
    refresh: dict[str, str] = {}
    for revision, record in sorted(records.items()):
        path = files.get(revision)
        if path is None or not os.path.isfile(path):
            findings.append(Finding(
                RULE_MISSING, ERROR, f"the file of applied revision {revision} ({record.path}) is gone",
                hint="restore the file as it was applied; a revision that ran stays in the history", revision=revision,
                path=path or record.path, line=1))
            continue
        with open(path, "rb") as handle:
            content = handle.read()
        sha = file_sha256(content)
        if sha == record.file_sha256:
            continue
        if checksum(content) == record.checksum:
            refresh[revision] = sha
            continue
        when = f"applied {record.applied_at:%Y-%m-%d %H:%M} UTC" if record.applied_at else "applied before records"
        findings.append(Finding(RULE_CHANGED, ERROR,
                                f"applied revision {revision} ({when}) has changed since: {os.path.basename(path)}",
                                hint=_FIX, revision=revision, path=path, line=1))
    unrecorded = sorted(set(applied) - set(records))
    return Verdict(findings, unrecorded, refresh)


def fast_agrees(rows: Sequence[tuple[Any, ...]] | None, current: Iterable[str], parents: Mapping[str, Sequence[str]],
                files: Mapping[str, tuple[str, str]]) -> bool:
    """True when every applied revision is recorded with the bytes its file has now: the fast no-op may answer.
    False sends the run to the full path, which adopts, compares what runs and reports."""
    if rows is None:
        return False
    recorded = dict(rows)
    applied: set[str] = set()
    pending = list(current)
    while pending:
        revision = pending.pop()
        if revision not in applied:
            applied.add(revision)
            pending.extend(parents.get(revision, ()))
    return set(recorded) == applied and all(
        revision in files and files[revision][1] == sha for revision, sha in recorded.items())


def changed_error(findings: Sequence[Finding]) -> Any:
    from .errors import AppliedHistoryChanged

    revisions = ", ".join(finding.revision or "?" for finding in findings)
    return AppliedHistoryChanged(f"{len(findings)} applied revision file(s) changed or gone since applied: "
                                 f"{revisions}", hint=_FIX, findings=tuple(findings))


def log_findings(findings: Sequence[Finding], level: str = "error") -> None:
    from .logs import get_logger

    log = get_logger()
    for finding in findings:
        getattr(log, level)("applied_history_changed", rule=finding.rule, revision=finding.revision,
                            path=finding.path, message=finding.message, hint=finding.hint)
