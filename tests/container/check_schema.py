"""The compose stack's "application": exit 0 only when both databases carry the example schema at its head."""

import asyncio
import os
import sys

import asyncpg
import pymysql

EXPECTED = {"accounts": {"id", "email", "display_name"}, "orders": {"id", "account_id", "total_cents"}}


async def postgres() -> tuple[str, dict[str, set[str]]]:
    conn = await asyncpg.connect(os.environ["POSTGRES_DSN"])
    try:
        revision = await conn.fetchval("SELECT version_num FROM alembic_version")
        rows = await conn.fetch("SELECT table_name, column_name FROM information_schema.columns "
                                "WHERE table_schema = 'public'")
    finally:
        await conn.close()
    return revision, _columns(rows)


def mariadb() -> tuple[str, dict[str, set[str]]]:
    conn = pymysql.connect(host=os.environ["MARIADB_HOST"], port=int(os.environ["MARIADB_PORT"]), user="app",
                           password=os.environ["MARIADB_PASSWORD"], database="app")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            (revision,) = cur.fetchone()
            cur.execute("SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'app'")
            rows = cur.fetchall()
    finally:
        conn.close()
    return revision, _columns(rows)


def _columns(rows) -> dict[str, set[str]]:
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def main() -> int:
    ok = True
    for name, (revision, tables) in (("postgresql", asyncio.run(postgres())), ("mariadb", mariadb())):
        missing = {t: cols - tables.get(t, set()) for t, cols in EXPECTED.items() if cols - tables.get(t, set())}
        good = revision == os.environ["EXPECTED_REVISION"] and not missing
        ok &= good
        print(f"app: {name} at revision {revision}, missing columns {missing or 'none'}: {'ok' if good else 'BAD'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
