"""Alembic's offline SQL one statement at a time, each with the revision file line and operation that produced it."""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Statement:
    """One statement of the offline upgrade; ``revision`` is None for Alembic's own (BEGIN, the version table)."""

    sql: str
    revision: str | None = None
    path: str | None = None
    line: int | None = None
    operation: Any = None  # the alembic.operations.ops.MigrateOperation an `op.*` call invoked, if one did


class StatementCapture(io.TextIOBase):
    """An ``output_buffer`` for Alembic's offline mode (its impl writes each statement with one ``write``).

    At each write the call stack still holds the revision file's frame, at the line of the ``op.*`` call (or the
    ``autocommit_block()``) that produced the statement, and ``Operations.invoke``'s frame, with the operation.
    """

    def __init__(self, revision_files: Mapping[str, str]) -> None:
        super().__init__()
        # The file's real path -> (its revision, its path as the versions directory holds it)
        self._revisions = {os.path.realpath(path): (revision, os.path.abspath(path))
                           for path, revision in revision_files.items()}
        self._paths = {revision: path for revision, path in self._revisions.values()}
        self._by_code: dict[Any, tuple[str, str] | None] = {}  # code object -> its revision file, if it is in one
        from alembic.operations import Operations

        self._invoke = Operations.invoke.__code__
        self.statements: list[Statement] = []
        self.failures: list[tuple[Statement, Exception]] = []  # revisions that could not be rendered, where and why

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        sql = text.strip()
        if sql:
            self.statements.append(self._attribute(sql, sys._getframe(1)))
        return len(text)

    def failed(self, revision: str, exc: Exception) -> None:
        """A revision's upgrade() raised (``offline_sql``'s ``on_failure``): note it at its file's innermost line."""
        where = Statement("", revision, self._paths.get(revision))
        traceback = exc.__traceback__
        while traceback is not None:
            found = self._revision_of(traceback.tb_frame.f_code)
            if found is not None and found[0] == revision:
                where = Statement("", revision, found[1], traceback.tb_lineno)
            traceback = traceback.tb_next
        self.failures.append((where, exc))

    def _attribute(self, sql: str, frame: Any) -> Statement:
        operation = None
        while frame is not None:
            code = frame.f_code
            if code is self._invoke and operation is None:
                operation = frame.f_locals.get("operation")
            found = self._revision_of(code)
            if found is not None:
                # The innermost frame in the revision file: the op.* call itself, or the file's own helper's call.
                return Statement(sql, found[0], found[1], frame.f_lineno, operation)
            frame = frame.f_back
        return Statement(sql)

    def _revision_of(self, code: Any) -> tuple[str, str] | None:
        if code not in self._by_code:
            self._by_code[code] = self._revisions.get(os.path.realpath(code.co_filename))
        return self._by_code[code]
