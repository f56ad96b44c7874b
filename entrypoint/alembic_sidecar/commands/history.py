"""`history`: the revision history, without connecting."""

from __future__ import annotations

from . import Context, Result


async def history(context: Context) -> Result:
    assert context.project is not None
    lines = [script.cmd_format(verbose=False) for script in context.project.script.walk_revisions()]
    return Result("history listed", lines)
