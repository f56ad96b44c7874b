"""What a command found that a person should look at, in one shape for the logs and for every CI report."""

from __future__ import annotations

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
