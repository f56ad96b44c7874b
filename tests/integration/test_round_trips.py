"""PostgreSQL: statements without parameters and rows take one round trip, as plain Alembic's do on psycopg2.

The sidecar reaches into SQLAlchemy's asyncpg adapter for this (databases/postgresql.py, configure_engine); these
tests fail if an upgrade of SQLAlchemy changes what that relies on.
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from alembic_sidecar import databases, waiting
from alembic_sidecar.endpoint import parse_url

pytestmark = pytest.mark.integration


async def _run(url: str, work) -> tuple[object, list[str]]:
    prepared: list[str] = []
    original = asyncpg.connection.Connection.prepare

    async def counting_prepare(self, query, *args, **kwargs):
        prepared.append(query)
        return await original(self, query, *args, **kwargs)

    asyncpg.connection.Connection.prepare = counting_prepare
    endpoint = parse_url(url, "test")
    database = databases.driver_for(endpoint.backend)

    async def nothing(raw) -> None:
        return None

    engine, deadline = waiting.create_engine(endpoint, database, nothing)
    try:
        async with engine.connect() as connection:
            prepared.clear()  # the dialect's own set-up statements
            return await work(connection), prepared
    finally:
        asyncpg.connection.Connection.prepare = original
        await engine.dispose()


def test_ddl_and_dml_without_rows_are_not_prepared_and_report_their_row_count(pg_database):
    async def work(connection):
        await connection.execute(text("CREATE TABLE versions (num VARCHAR(32))"))
        await connection.execute(text("INSERT INTO versions VALUES ('a'), ('b')"))
        updated = await connection.execute(text("UPDATE versions SET num = 'c' WHERE num = 'a'"))
        rows = (await connection.execute(text("SELECT num FROM versions ORDER BY num"))).scalars().all()
        await connection.commit()
        return updated.rowcount, rows

    (rowcount, rows), prepared = asyncio.run(_run(pg_database.url, work))
    assert rowcount == 1
    assert rows == ["b", "c"]
    assert prepared == ["SELECT num FROM versions ORDER BY num"], "only the statement that returns rows is prepared"
    assert pg_database.rows("SELECT num FROM versions ORDER BY num") == [("b",), ("c",)]


def test_a_failing_statement_on_the_simple_path_is_sqlalchemys_error_with_its_sqlstate(pg_database):
    async def work(connection):
        try:
            await connection.execute(text("ALTER TABLE no_such_table ADD COLUMN x int"))
        except DBAPIError as error:
            return error
        return None

    error, prepared = asyncio.run(_run(pg_database.url, work))
    assert isinstance(error, DBAPIError)
    assert error.orig.sqlstate == "42P01"
    assert prepared == []


def test_statements_with_parameters_or_returning_keep_sqlalchemys_path(pg_database):
    async def work(connection):
        await connection.execute(text("CREATE TABLE t (id int)"))
        await connection.execute(text("INSERT INTO t VALUES (:id)"), {"id": 1})
        returned = (await connection.execute(text("INSERT INTO t VALUES (2) RETURNING id"))).scalar()
        await connection.commit()
        return returned

    returned, prepared = asyncio.run(_run(pg_database.url, work))
    assert returned == 2
    assert prepared == ["INSERT INTO t VALUES ($1)", "INSERT INTO t VALUES (2) RETURNING id"]
