"""`sql`: the SQL of an upgrade, written to stdout by Alembic's offline mode, without connecting."""

from __future__ import annotations

from .. import alembic_env, endpoint as endpoints
from . import Context, Result


async def sql(context: Context) -> Result:
    settings, project = context.settings, context.project
    assert project is not None
    if settings.database_url is None and settings.db_driver is not None and not settings.db_host:
        backend = settings.db_driver
    else:
        backend = endpoints.from_settings(settings, fallback_url=context.fallback_url).backend
    alembic_env.offline_sql(project, f"{backend}://", settings.sql_range or settings.target,
                            settings.version_table, settings.version_table_schema)
    return Result("SQL written")
