"""`lint`'s rules: each with its name, level and the safer way; the ones every database shares, read from Alembic's
operations; what a revision file turns off; and the findings of one rendered upgrade."""

from __future__ import annotations

import io
import tokenize
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError
from .findings import ERROR, WARNING, Finding

if TYPE_CHECKING:
    from .databases.base import Driver
    from .offline_statements import Statement

#: The comment that turns rules off for the revision file it is in: ``# alembic-sidecar lint-ignore: rule, rule``.
IGNORE_COMMENT = "alembic-sidecar lint-ignore:"
_EXCERPT = 120  # characters of the statement a finding's message quotes


@dataclass(frozen=True)
class Rule:
    """One lint rule: a stable name, ERROR (exit 11) or WARNING (reported, exit 0), what it catches and what to do
    instead, each in one line."""

    name: str
    level: str
    what: str
    instead: str


# Every database: a release that drops or renames what the running version of the application still uses breaks
# that version for as long as both run (a rolling update, a pod not yet replaced).
SHARED_RULES = (
    Rule("ban-drop-column", ERROR, "drops a column that the application version still running may read or write",
         "stop using the column in one release, drop it in a revision of the next"),
    Rule("ban-drop-table", ERROR, "drops a table that the application version still running may use",
         "stop using the table in one release, drop it in a revision of the next"),
    Rule("renaming-column", ERROR, "renames a column that the application version still running uses by its old "
         "name", "add the new column, write both, backfill, move the reads, drop the old one a release later"),
    Rule("renaming-table", ERROR, "renames a table that the application version still running uses by its old name",
         "create the new table (or a view under the old name), move the application, drop the old one later"),
    # Not a risk in itself (SQLite's batch mode cannot render offline), but what follows in the revision is unchecked.
    Rule("not-rendered", WARNING, "Alembic cannot render this revision's SQL offline for this database, so the rest "
         "of it was not checked", "check it by hand; Alembic's batch mode on SQLite needs a live database"),
)


def shared_rule(operation: Any) -> str | None:
    """The shared rule an Alembic operation breaks, by its kind (the same on every database)."""
    from alembic.operations import ops

    if isinstance(operation, ops.DropColumnOp):
        return "ban-drop-column"
    if isinstance(operation, ops.DropTableOp):
        return "ban-drop-table"
    if isinstance(operation, ops.RenameTableOp):
        return "renaming-table"
    if isinstance(operation, ops.AlterColumnOp) and operation.modify_name is not None:
        return "renaming-column"
    return None


def all_rules() -> dict[str, Rule]:
    """Every rule of every database, by name: what MIGRATE_LINT_IGNORE and the comment may name."""
    from .databases import backends, driver_for

    found = {rule.name: rule for rule in SHARED_RULES}
    for backend in backends():
        found.update((rule.name, rule) for rule in driver_for(backend).lint_rules)
    return found


def check_names(names: Iterable[str], where: str) -> frozenset[str]:
    """The rule names, or exit 2 naming the unknown ones and where they were written."""
    known = all_rules()
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ConfigurationError(f"{where} names unknown lint rule{'s' if len(unknown) > 1 else ''} "
                                 f"{', '.join(unknown)}",
                                 hint="use the names listed in docs/reference.md#lint-rules, separated by commas")
    return frozenset(names)


def ignored_in_file(path: str) -> frozenset[str]:
    """The rules a revision file turns off with ``# alembic-sidecar lint-ignore: rule, rule`` (real comments only,
    not text in strings)."""
    with open(path, "rb") as handle:
        source = handle.read()
    names: list[str] = []
    where = path
    for token in tokenize.tokenize(io.BytesIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            if text.startswith(IGNORE_COMMENT):
                listed = [name.strip() for name in text[len(IGNORE_COMMENT):].split(",") if name.strip()]
                where = f"the comment at {path}:{token.start[0]}"
                check_names(listed, where)
                names += listed
    return frozenset(names)


def findings(driver: Driver, statements: Sequence[Statement], ignored: frozenset[str],
             failures: Sequence[tuple[Statement, Exception]] = ()) -> list[Finding]:
    """Lint each revision's statements on their own (the database's linter sees one revision per input, so a table
    created earlier in that revision is exempt and nothing else is), add the shared rules, and a ``not-rendered``
    finding for each revision that could not be rendered (``failures``: where and why)."""
    revisions: dict[str, list[Statement]] = {}
    for statement in statements:
        if statement.revision is not None:  # Alembic's own statements (the version table) are not the user's
            revisions.setdefault(statement.revision, []).append(statement)
    rules = {rule.name: rule for rule in (*SHARED_RULES, *driver.lint_rules)}
    own = driver.lint([[statement.sql for statement in group] for group in revisions.values()])
    found: list[Finding] = []
    for group, hits in zip(revisions.values(), own):
        shared = [(index, rule) for index, statement in enumerate(group)
                  if (rule := shared_rule(statement.operation)) is not None]
        off = ignored | ignored_in_file(group[0].path) if group[0].path else ignored
        seen: set[tuple[str, int | None]] = set()
        for index, name in sorted({*hits, *shared}, key=lambda hit: (group[hit[0]].line or 0, hit[0], hit[1])):
            statement, rule = group[index], rules[name]
            # One finding per rule and line: the database's linter may see what the operation says too.
            if name in off or (name, statement.line) in seen:
                continue
            seen.add((name, statement.line))
            found.append(Finding(name, rule.level, f"{rule.what}: {_excerpt(statement.sql)}", rule.instead,
                                 statement.revision, statement.path, statement.line))
    rule = next(rule for rule in SHARED_RULES if rule.name == "not-rendered")
    for where, exc in failures:
        if rule.name not in (ignored | ignored_in_file(where.path) if where.path else ignored):
            text = (str(exc).strip().splitlines() or [""])[0]
            found.append(Finding(rule.name, rule.level, f"{rule.what}: {_excerpt(f'{type(exc).__name__}: {text}')}",
                                 rule.instead, where.revision, where.path, where.line))
    # In upgrade order, each revision's findings by line.
    order = {revision: index for index, revision in
             enumerate(dict.fromkeys([*revisions, *(where.revision for where, _ in failures)]))}
    return sorted(found, key=lambda finding: (order[finding.revision], finding.line or 0))


def _excerpt(sql: str) -> str:
    text = " ".join(sql.split()).rstrip(";")
    return text if len(text) <= _EXCERPT else text[:_EXCERPT - 3] + "..."
