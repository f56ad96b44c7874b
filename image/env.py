"""Alembic environment bundled with alembic-sidecar: async engine, connection handed over by the sidecar."""

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import async_engine_from_config

config = context.config
# Set by alembic_sidecar: configure() keywords (per-migration transactions, version table, callbacks, and for
# `drift` compare_type / compare_server_default from MIGRATE_COMPARE_*). Run by the plain `alembic` command, none:
# Alembic's defaults.
options = dict(config.attributes.get("configure_options", {}))
# MIGRATE_METADATA, imported by alembic_sidecar: operations name unnamed constraints by its naming_convention, and
# `alembic-sidecar drift` compares the database with it.
target_metadata = config.attributes.get("target_metadata")


def run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, **options)
    with context.begin_transaction():
        context.run_migrations()


async def run_with_own_engine() -> None:
    """Used when this env.py is run by the plain `alembic` command with this directory's alembic.ini."""
    engine = async_engine_from_config(config.get_section(config.config_ini_section, {}),
                                      prefix="sqlalchemy.", poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.attributes.get("offline_url") or config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True, dialect_opts={"paramstyle": "named"},
                      **options)
    with context.begin_transaction():
        context.run_migrations()
elif config.attributes.get("connection") is not None:
    run_migrations(config.attributes["connection"])
else:
    asyncio.run(run_with_own_engine())
