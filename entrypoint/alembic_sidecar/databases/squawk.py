"""PostgreSQL's `lint` rules, run by squawk (the `squawk-cli` wheel's binary) on PostgreSQL's own grammar.

Each revision is one input file, wrapped in BEGIN/COMMIT as the sidecar runs it (one transaction per revision;
Alembic's ``autocommit_block()`` writes its COMMIT/BEGIN inside), so squawk sees what runs in a transaction and
exempts only tables created earlier in the same revision. One squawk run lints every revision.

squawk's ``require-statement-timeout`` and ``require-lock-timeout`` are not used: the sidecar sets those timeouts on
its own session (MIGRATE_STATEMENT_TIMEOUT, MIGRATE_DDL_LOCK_TIMEOUT), which squawk cannot see in the SQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Sequence

from ..errors import ConfigurationError, unexpected
from ..findings import ERROR, WARNING
from ..linting import Rule

_AUTOCOMMIT = "inside `with op.get_context().autocommit_block():`"
RULES = (
    Rule("require-concurrent-index-creation", ERROR, "CREATE INDEX without CONCURRENTLY blocks writes to an existing "
         "table while it builds", f"op.create_index(..., postgresql_concurrently=True) {_AUTOCOMMIT}"),
    Rule("require-concurrent-index-deletion", ERROR, "DROP INDEX without CONCURRENTLY blocks reads and writes of "
         "the table", f"op.drop_index(..., postgresql_concurrently=True) {_AUTOCOMMIT}"),
    Rule("ban-concurrent-index-creation-in-transaction", ERROR, "CREATE INDEX CONCURRENTLY inside a transaction "
         "fails on PostgreSQL", f"run it {_AUTOCOMMIT}"),
    Rule("adding-required-field", ERROR, "adds a NOT NULL column without a default to an existing table: every "
         "insert of the running version fails", "give it a server_default, or add it nullable, backfill, then set "
         "NOT NULL"),
    Rule("adding-not-nullable-field", WARNING, "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock",
         "add CHECK (col IS NOT NULL) with postgresql_not_valid=True, VALIDATE it in a later revision, then SET NOT "
         "NULL"),
    Rule("constraint-missing-not-valid", ERROR, "a FOREIGN KEY or CHECK added without NOT VALID (or validated in the "
         "same transaction) scans the table under lock", "op.create_foreign_key / op.create_check_constraint with "
         "postgresql_not_valid=True, then VALIDATE CONSTRAINT in a later revision"),
    Rule("changing-column-type", ERROR, "a column type change can rewrite the table under an ACCESS EXCLUSIVE lock",
         "add a column of the new type, backfill it, switch the application, drop the old one later"),
    Rule("adding-field-with-default", ERROR, "a volatile default (or a generated column) rewrites the table under "
         "an ACCESS EXCLUSIVE lock", "add the column without the default, set the default, backfill in batches"),
    Rule("disallowed-unique-constraint", ERROR, "a UNIQUE constraint without a prebuilt index builds it under an "
         "ACCESS EXCLUSIVE lock", "create a unique index CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING "
         "INDEX"),
    Rule("adding-serial-primary-key-field", ERROR, "a PRIMARY KEY without a prebuilt index builds it under an "
         "ACCESS EXCLUSIVE lock", "create a unique index CONCURRENTLY first, then ADD CONSTRAINT ... PRIMARY KEY "
         "USING INDEX"),
    Rule("syntax-error", WARNING, "squawk cannot parse this statement, so it was not checked",
         "review it by hand; report it to squawk if PostgreSQL accepts it"),
)
_NAMES = frozenset(rule.name for rule in RULES)
# squawk asks for NOT VALID on UNIQUE and PRIMARY KEY constraints too, which cannot have it: the rule that says what
# to do instead wins.
_SUPERSEDES = {"disallowed-unique-constraint": "constraint-missing-not-valid",
               "adding-serial-primary-key-field": "constraint-missing-not-valid"}


def executable() -> str:
    """The squawk binary the `squawk-cli` wheel installed beside this Python (or on PATH)."""
    beside = os.path.join(sysconfig.get_path("scripts"), "squawk")
    found = beside if os.access(beside, os.X_OK) else shutil.which("squawk")
    if found is None:
        raise ConfigurationError("`lint` needs squawk for PostgreSQL's rules, and it is not installed",
                                 hint="install the squawk-cli package beside alembic-sidecar")
    return found


def lint(revisions: Sequence[Sequence[str]]) -> list[set[tuple[int, str]]]:
    """Lint each revision as a file of its own in one squawk run; map squawk's lines back to statement indexes."""
    found: list[set[tuple[int, str]]] = [set() for _ in revisions]
    if not any(revisions):
        return found
    with tempfile.TemporaryDirectory(prefix="alembic-sidecar-lint-") as directory:
        starts: list[list[int]] = []  # per revision: the first line (0-based) of each statement
        paths = []
        for number, statements in enumerate(revisions):
            lines, first = ["BEGIN;"], []
            for sql in statements:
                first.append(len(lines))
                lines += sql.splitlines()
            lines.append("COMMIT;")
            path = os.path.join(directory, f"{number}.sql")
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            starts.append(first)
            paths.append(path)
        command = [executable(), "--reporter", "json", "--no-error-on-unmatched-pattern", *paths]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        violations = json.loads(done.stdout)
    except ValueError:
        message = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise unexpected(f"squawk exited {done.returncode}: {message}") from None
    index_of = {path: number for number, path in enumerate(paths)}
    for violation in violations:
        name = violation.get("rule_name")
        number = index_of.get(violation.get("file"))
        if name not in _NAMES or number is None:
            continue
        first = starts[number]
        statement = max((index for index, line in enumerate(first) if line <= violation["line"]), default=None)
        if statement is not None:
            found[number].add((statement, name))
    for hits in found:
        for statement, name in list(hits):
            if name in _SUPERSEDES:
                hits.discard((statement, _SUPERSEDES[name]))
    return found
