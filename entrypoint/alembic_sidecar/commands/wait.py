"""`wait`: only wait until the database accepts a login (the runner's session open does the waiting)."""

from __future__ import annotations

from . import Context, Result


async def wait(context: Context) -> Result:
    return Result("database accepts logins")
