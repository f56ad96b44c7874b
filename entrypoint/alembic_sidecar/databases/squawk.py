"""PostgreSQL's `lint` rules, run by squawk (the `squawk-cli` wheel's binary) on PostgreSQL's own grammar.

Each revision is one input, wrapped in BEGIN/COMMIT as the sidecar runs it (one transaction per revision;
Alembic's ``autocommit_block()`` writes its COMMIT/BEGIN inside), so squawk sees what runs in a transaction and
exempts only tables created earlier in the same revision. One squawk run lints up to 256 revisions.

squawk's ``require-statement-timeout`` and ``require-lock-timeout`` are not used: the sidecar sets those timeouts on
its own session (MIGRATE_STATEMENT_TIMEOUT, MIGRATE_DDL_LOCK_TIMEOUT), which squawk cannot see in the SQL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sysconfig
import tempfile
from collections.abc import Iterator, Sequence

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
    Rule("adding-required-field", ERROR, "adds a NOT NULL column without a default to an existing table, so every "
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
    # squawk checks nothing else in an input it cannot parse: the revision is unchecked, not safe.
    Rule("syntax-error", ERROR, "squawk cannot parse this statement, so none of this revision was checked",
         "review the revision by hand, then turn the rule off for it; report the statement to squawk"),
)
# squawk's own versions of the shared rules see what no operation says: op.execute() SQL, a batch's ALTERs.
_NAMES = frozenset(rule.name for rule in RULES) | {"ban-drop-column", "ban-drop-table", "renaming-column",
                                                    "renaming-table"}
_PER_RUN = 256  # revisions per squawk run: each is an open file descriptor while it runs
# squawk asks for NOT VALID on UNIQUE and PRIMARY KEY constraints too, which cannot have it: the rule that says what
# to do instead wins.
_SUPERSEDES = {"disallowed-unique-constraint": "constraint-missing-not-valid",
               "adding-serial-primary-key-field": "constraint-missing-not-valid"}


def executable() -> str:
    """The squawk binary the `squawk-cli` wheel installed beside this Python (or on PATH)."""
    beside = os.path.join(sysconfig.get_path("scripts"), "squawk")
    found = beside if os.access(beside, os.X_OK) else shutil.which("squawk")
    if found is None:
        raise ConfigurationError("`lint` needs squawk for PostgreSQL's rules, and this image has none (the deploy "
                                 "image leaves it out to stay small)",
                                 hint="run `lint` in the CI image, tag 0.1.0-ci (Dockerfile target ci), or install "
                                      "the squawk-cli package beside alembic-sidecar")
    return found


def lint(revisions: Sequence[Sequence[str]]) -> list[set[tuple[int, str]]]:
    """Lint each revision as an input of its own; map squawk's lines back to statement indexes."""
    found: list[set[tuple[int, str]]] = []
    for first in range(0, len(revisions), _PER_RUN):
        found += _lint_run(revisions[first:first + _PER_RUN])
    for hits in found:
        for statement, name in list(hits):
            if name in _SUPERSEDES:
                hits.discard((statement, _SUPERSEDES[name]))
    return found


def _lint_run(revisions: Sequence[Sequence[str]]) -> list[set[tuple[int, str]]]:
    found: list[set[tuple[int, str]]] = [set() for _ in revisions]
    starts: list[list[int]] = []  # per revision: the first line (0-based) of each statement
    texts = []
    for statements in revisions:
        lines, first = ["BEGIN;"], []
        for sql in statements:
            first.append(len(lines))
            lines += sql.splitlines()
        lines.append("COMMIT;")
        starts.append(first)
        texts.append("\n".join(lines) + "\n")
    with _inputs(texts) as (paths, fds):
        done = subprocess.run([executable(), "--reporter", "json", *paths], capture_output=True, text=True,
                              check=False, pass_fds=fds)
    try:
        violations = json.loads(done.stdout)
    except ValueError:
        message = (done.stderr.strip().splitlines() or ["no output"])[0]
        raise unexpected(f"squawk exited {done.returncode}: {message}") from None
    index_of = {path: number for number, path in enumerate(paths)}
    for violation in violations:
        name, number = violation.get("rule_name"), index_of.get(violation.get("file"))
        if name in _NAMES and number is not None:
            statement = max((index for index, line in enumerate(starts[number]) if line <= violation["line"]),
                            default=None)
            if statement is not None:
                found[number].add((statement, name))
    return found


@contextlib.contextmanager
def _inputs(texts: Sequence[str]) -> Iterator[tuple[list[str], list[int]]]:
    """squawk's input files: in memory (memfd, passed to squawk as /dev/fd/N), since the image's root filesystem may
    be read-only with no writable /tmp; temporary files where there is no memfd."""
    if hasattr(os, "memfd_create"):
        fds = []
        try:
            for number, text in enumerate(texts):
                fds.append(os.memfd_create(f"revision-{number}.sql"))
                os.write(fds[-1], text.encode())
            yield [f"/dev/fd/{fd}" for fd in fds], fds
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="alembic-sidecar-lint-") as directory:
        paths = [os.path.join(directory, f"{number}.sql") for number in range(len(texts))]
        for path, text in zip(paths, texts):
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(text)
        yield paths, []
