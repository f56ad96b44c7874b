"""Schemas: libpq's options=-csearch_path=..., MIGRATE_VERSION_TABLE_SCHEMA, and URL parameters refused, not ignored."""

from __future__ import annotations

import pytest

from .conftest import assert_clean_failure, assert_exit

pytestmark = pytest.mark.integration


def test_search_path_from_libpq_options_puts_every_table_in_that_schema(pg_database, revisions, sidecar):
    pg_database.execute("CREATE SCHEMA app")
    revisions.chain(2)
    env = {"DATABASE_URL": pg_database.url + "?options=-csearch_path%3Dapp"}
    assert_exit(sidecar.run(env=env), 0)
    assert pg_database.tables() == [], "nothing may land in public"
    in_app = sorted(r[0] for r in pg_database.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'app'"))
    assert in_app == sorted(["alembic_version", "alembic_sidecar_history", "migration_log",
                             *(f"t_{rev}" for rev in revisions.ids)])
    again = sidecar.run(env=env)
    assert_exit(again, 0)
    assert again.one("migration_complete")["applied"] == 0
    assert "database_ready" not in {e.get("event") for e in again.events}, "the fast path should find it too"


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_version_table_schema_keeps_the_version_table_apart(request, revisions, sidecar, fixture):
    database = request.getfixturevalue(fixture)
    if database.driver == "postgresql":
        database.execute("CREATE SCHEMA meta")
        schema = "meta"
    else:  # a schema is a database on MySQL/MariaDB
        schema = database.name + "_meta"
        database.execute(f"CREATE DATABASE `{schema}`")
    try:
        revisions.chain(2)
        env = {"DATABASE_URL": database.url, "MIGRATE_VERSION_TABLE_SCHEMA": schema}
        assert_exit(sidecar.run(env=env), 0)
        assert "alembic_version" not in database.tables()
        quote = "`" if database.driver == "mariadb" else '"'
        assert database.rows(f"SELECT version_num FROM {quote}{schema}{quote}.alembic_version") == \
            [(revisions.head,)]
        revisions.chain(1)
        second = sidecar.run(env=env)
        assert_exit(second, 0)
        assert second.one("migration_complete")["applied"] == 1
        third = sidecar.run(env=env)
        assert_exit(third, 0)
        assert "database_ready" not in {e.get("event") for e in third.events}, "the fast path should find it too"
    finally:
        if database.driver == "mariadb":
            database.execute(f"DROP DATABASE IF EXISTS `{schema}`")


@pytest.mark.parametrize("query", ["?server_settings=search_path%3Dapp", "?application_name=x",
                                   "?options=-x"])
def test_url_parameters_the_sidecar_does_not_understand_are_refused(pg_database, revisions, sidecar, query):
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": pg_database.url + query})
    assert_clean_failure(result, 2, "DATABASE_URL")
    assert pg_database.tables() == []
