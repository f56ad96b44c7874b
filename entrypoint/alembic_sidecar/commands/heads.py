"""`heads`: the head revisions of the revision files, without connecting."""

from __future__ import annotations

from . import Context, Result


async def heads(context: Context) -> Result:
    assert context.project is not None
    # Through Alembic, not the fast scan: a broken revision file must fail here as it would on upgrade.
    heads = sorted(context.project.script.get_heads())
    return Result("heads listed", heads, heads=tuple(heads))  # the CI reports' `heads` output (a pull request's base)
