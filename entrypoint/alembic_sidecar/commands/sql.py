"""`sql`: the SQL of an upgrade, written to stdout by Alembic's offline mode, without connecting."""

from __future__ import annotations

from .. import alembic_env, endpoint as endpoints
from . import Context, Result


def offline_backend(context: Context) -> str:
    """The database whose SQL to render: DB_DRIVER alone will do, no server named (else the URL's)."""
    settings = context.settings
    if settings.database_url is None and settings.db_driver is not None and not settings.db_host:
        return settings.db_driver
    return endpoints.from_settings(settings, fallback_url=context.fallback_url).backend


async def sql(context: Context) -> Result:
    settings, project = context.settings, context.project
    assert project is not None
    alembic_env.offline_sql(project, f"{offline_backend(context)}://", settings.sql_range or settings.target,
                            settings.version_table, settings.version_table_schema)
    return Result("SQL written")
