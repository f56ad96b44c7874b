"""What a command found that a person should look at, in one shape for the logs and for every CI report."""

from __future__ import annotations

import os
from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One finding: a lint rule a statement breaks, an applied revision whose file changed, a schema difference, a
    revision whose downgrade does not undo its upgrade. CI reports show it on ``path`` at ``line`` when it has them."""

    rule: str  # a stable name, e.g. "require-concurrent-index-creation", "applied-history-changed"
    level: str  # ERROR or WARNING
    message: str  # one line: what is wrong (no secret: masked before it gets here)
    hint: str = ""  # one line: what to do instead
    revision: str | None = None
    path: str | None = None  # the revision file, absolute, as the versions directory holds it
    line: int | None = None  # 1-based


def as_line(finding: Finding) -> str:
    """The finding as linters print it in a CI log: ``path:line: level [rule] message (hint)``, the path relative to
    the working directory when it is inside it."""
    where = ""
    if finding.path is not None:
        path = os.path.relpath(finding.path) if finding.path.startswith(os.getcwd() + os.sep) else finding.path
        where = f"{path}:{finding.line}: " if finding.line is not None else f"{path}: "
    hint = f" ({finding.hint})" if finding.hint else ""
    return f"{where}{finding.level} [{finding.rule}] {finding.message}{hint}"
