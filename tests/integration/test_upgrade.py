"""Upgrading real databases to head, with the URL taken from every place a user can put it (issue 2, points 1, 2)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fixtures.revisions import SLOW_SECONDS_ENV, applied_counts

from .conftest import assert_clean_failure, assert_exit, init_alembic_project, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "image" / "examples" / "versions"


def assert_at_head(db, revisions, result) -> None:
    assert_exit(result, 0)
    assert db.revisions() == [revisions.head], result
    assert set(db.tables()) == revisions.tables_for(revisions.logged) | {"alembic_version", "alembic_sidecar_history"}
    assert applied_counts(db) == {rev: 1 for rev in revisions.logged}


def test_upgrade_brings_an_empty_database_to_head_and_logs_each_revision(database, revisions, sidecar):
    revisions.chain(3)
    result = sidecar.run("upgrade", env={"DATABASE_URL": database.url})
    assert_at_head(database, revisions, result)
    applied = result.named("revision_applied")
    assert [e["revision"] for e in applied] == revisions.ids
    for event in applied:
        assert event["description"].startswith("revision r")
        assert isinstance(event["duration_ms"], (int, float)) and event["duration_ms"] >= 0
        assert event["level"] == "info" and event["timestamp"]
    summary = result.one("migration_complete")
    assert summary["from_revision"] in (None, "base", "")
    assert summary["to_revision"] == revisions.head
    assert summary["applied"] == 3
    assert summary["duration_ms"] >= 0


def test_second_upgrade_at_head_does_nothing_and_exits_0(database, revisions, sidecar):
    revisions.chain(2)
    assert_exit(sidecar.run("upgrade", env={"DATABASE_URL": database.url}), 0)
    again = sidecar.run("upgrade", env={"DATABASE_URL": database.url})
    assert_at_head(database, revisions, again)
    assert again.named("revision_applied") == []
    summary = again.one("migration_complete")
    assert summary["applied"] == 0
    assert summary["from_revision"] == summary["to_revision"] == revisions.head


def test_upgrade_is_the_default_command(sqlite_database, revisions, sidecar):
    revisions.chain(2)
    result = sidecar.run(env={"DATABASE_URL": sqlite_database.url})
    assert_at_head(sqlite_database, revisions, result)


def test_new_revisions_are_applied_on_top_of_an_existing_schema(pg_database, revisions, sidecar):
    database = pg_database
    revisions.chain(2)
    assert_exit(sidecar.run(env={"DATABASE_URL": database.url}), 0)
    revisions.chain(2)
    result = sidecar.run(env={"DATABASE_URL": database.url})
    assert_at_head(database, revisions, result)
    assert [e["revision"] for e in result.named("revision_applied")] == revisions.ids[2:]
    assert result.one("migration_complete")["from_revision"] == revisions.ids[1]


def test_shipped_example_revisions_apply(database, sidecar):
    result = sidecar.run(env={"DATABASE_URL": database.url, "MIGRATE_VERSIONS_DIR": str(EXAMPLES)})
    assert_exit(result, 0)
    assert database.revisions() == ["0003"]
    assert {"accounts", "orders", "alembic_version"} <= set(database.tables())


# --- the URL from DB_* parts and *_FILE variants -----------------------------------------------------------------

def test_url_built_from_db_parts_on_postgresql(pg_database, revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run(env={"DB_DRIVER": "postgresql", "DB_HOST": "127.0.0.1", "DB_PORT": "5432",
                              "DB_USER": "postgres", "DB_NAME": pg_database.name})
    assert_at_head(pg_database, revisions, result)


@pytest.mark.parametrize("driver", ["mysql", "mariadb"])
def test_url_built_from_db_parts_on_mariadb(mariadb_database, revisions, sidecar, driver):
    revisions.chain(1)
    result = sidecar.run(env={"DB_DRIVER": driver, "DB_HOST": "127.0.0.1", "DB_USER": "root",
                              "DB_NAME": mariadb_database.name})
    assert_at_head(mariadb_database, revisions, result)


def test_url_built_from_db_parts_on_sqlite(sqlite_database, revisions, sidecar):
    revisions.chain(1)
    result = sidecar.run(env={"DB_DRIVER": "sqlite", "DB_NAME": str(sqlite_database.path)})
    assert_at_head(sqlite_database, revisions, result)


def _secret_files(tmp_path: Path, values: dict[str, str]) -> dict[str, str]:
    env = {}
    for name, value in values.items():
        path = tmp_path / "secrets" / name.lower()
        path.parent.mkdir(exist_ok=True)
        path.write_text(value + "\n", encoding="utf-8")  # as `echo` or a secret volume would write it
        env[name + "_FILE"] = str(path)
    return env


def test_every_db_part_can_come_from_a_file(pg_password_server, revisions, sidecar, tmp_path):
    revisions.chain(1)
    with pg_password_server.database() as db:
        env = _secret_files(tmp_path, {
            "DB_DRIVER": "postgresql", "DB_HOST": pg_password_server.host, "DB_PORT": str(pg_password_server.port),
            "DB_USER": pg_password_server.user, "DB_PASSWORD": pg_password_server.password, "DB_NAME": db.name,
            "DB_SSLMODE": "disable"})
        result = sidecar.run(env={**env, "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_at_head(db, revisions, result)


def test_database_url_can_come_from_a_file(pg_password_server, revisions, sidecar, tmp_path):
    revisions.chain(1)
    with pg_password_server.database() as db:
        result = sidecar.run(env={**_secret_files(tmp_path, {"DATABASE_URL": db.url}), "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_at_head(db, revisions, result)


@pytest.mark.parametrize("name", ["DATABASE_URL", "DB_PASSWORD", "DB_HOST"])
def test_setting_a_variable_and_its_file_is_a_configuration_error(pg_database, revisions, sidecar, tmp_path, name):
    revisions.chain(1)
    env = {"DATABASE_URL": pg_database.url, name: pg_database.url if name == "DATABASE_URL" else "x"}
    env.update(_secret_files(tmp_path, {name: "value-from-file"}))
    result = sidecar.run(env=env)
    assert_clean_failure(result, 2, name, name + "_FILE")
    assert pg_database.tables() == []


def test_no_url_at_all_is_a_configuration_error_not_a_sqlite_file(revisions, sidecar, tmp_path):
    revisions.chain(1)
    result = sidecar.run(env={})
    assert_clean_failure(result, 2, "DATABASE_URL")
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".db", ".sqlite", ".sqlite3")]


# --- passwords and user names with URL-hostile characters ---------------------------------------------------------

@pytest.mark.parametrize("source", ["DB_PASSWORD", "DATABASE_URL", "DB_PASSWORD_FILE", "flags"])
def test_odd_user_and_password_log_in_to_postgresql(pg_password_server, revisions, sidecar, tmp_path, source):
    revisions.chain(1)
    server = pg_password_server
    with server.database() as db:
        parts = {"DB_DRIVER": "postgresql", "DB_HOST": server.host, "DB_PORT": str(server.port),
                 "DB_USER": server.user, "DB_NAME": db.name}
        args: list[str] = ["upgrade"]
        if source == "DB_PASSWORD":
            env = {**parts, "DB_PASSWORD": server.password}
        elif source == "DATABASE_URL":
            assert quote(server.password, safe="") in db.url
            env = {"DATABASE_URL": db.url}
        elif source == "DB_PASSWORD_FILE":
            env = {**parts, **_secret_files(tmp_path, {"DB_PASSWORD": server.password})}
        else:
            env = {}
            args += ["--database-url", db.url]
        result = sidecar.run(*args, env={**env, "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_at_head(db, revisions, result)


@pytest.mark.parametrize("source", ["DB_PASSWORD", "DATABASE_URL", "DB_PASSWORD_FILE"])
def test_odd_ascii_user_and_password_log_in_to_mariadb(mariadb_password_server, revisions, sidecar, tmp_path,
                                                       source):
    revisions.chain(1)
    server = mariadb_password_server
    with server.database(ascii_login=True) as db:
        parts = {"DB_DRIVER": "mariadb", "DB_HOST": server.host, "DB_PORT": str(server.port),
                 "DB_USER": server.ascii_user, "DB_NAME": db.name}
        env = {"DB_PASSWORD": {**parts, "DB_PASSWORD": server.ascii_password},
               "DATABASE_URL": {"DATABASE_URL": db.url},
               "DB_PASSWORD_FILE": {**parts, **_secret_files(tmp_path, {"DB_PASSWORD": server.ascii_password})},
               }[source]
        result = sidecar.run(env={**env, "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_at_head(db, revisions, result)


@pytest.mark.parametrize("source", ["DB_PASSWORD", "DATABASE_URL"])
def test_non_ascii_password_on_mariadb_logs_in(mariadb_password_server, revisions, sidecar, source):
    """The login was created with the UTF-8 password; MySQL drivers send str passwords as latin-1 unless told."""
    revisions.chain(1)
    server = mariadb_password_server
    with server.database() as db:
        env = ({"DATABASE_URL": db.url} if source == "DATABASE_URL" else
               {"DB_DRIVER": "mariadb", "DB_HOST": server.host, "DB_PORT": str(server.port),
                "DB_USER": server.user, "DB_PASSWORD": server.password, "DB_NAME": db.name})
        result = sidecar.run(env={**env, "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_at_head(db, revisions, result)


# --- sync URLs users already have ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture, scheme", [
    ("pg_database", "postgres"),
    ("pg_database", "postgresql"),
    ("pg_database", "postgresql+psycopg2"),
    ("pg_database", "postgresql+asyncpg"),
    ("mariadb_database", "mysql"),
    ("mariadb_database", "mysql+pymysql"),
    ("mariadb_database", "mariadb"),
    ("mariadb_database", "mysql+aiomysql"),
    ("sqlite_database", "sqlite"),
])
def test_sync_urls_are_rewritten_to_the_async_driver(request, revisions, sidecar, fixture, scheme):
    db = request.getfixturevalue(fixture)
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": db.url_with(scheme)})
    assert_at_head(db, revisions, result)


def test_relative_sqlite_path_is_relative_to_the_working_directory(revisions, sidecar, tmp_path):
    revisions.chain(1)
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = sidecar.environment({"DATABASE_URL": "sqlite:///relative.db"})
    done = subprocess.run([str(Path(sys.executable).parent / "alembic-sidecar")], env=env, cwd=workdir,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (workdir / "relative.db").exists()


@pytest.mark.parametrize("query", ["?sslmode=disable", "?sslmode=prefer", "?ssl=disable"])
def test_sslmode_query_options_work_with_asyncpg(pg_database, revisions, sidecar, query):
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": pg_database.url + query})
    assert_at_head(pg_database, revisions, result)


@pytest.mark.parametrize("mode", ["disable", "prefer"])
def test_db_sslmode_works_with_asyncpg(pg_database, revisions, sidecar, mode):
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": pg_database.url, "DB_SSLMODE": mode})
    assert_at_head(pg_database, revisions, result)


def test_sslmode_require_against_a_server_without_tls_fails_clearly(pg_database, revisions, sidecar):
    assert pg_database.scalar("SHOW ssl") == "off"
    revisions.chain(1)
    result = sidecar.run(env={"DATABASE_URL": pg_database.url + "?sslmode=require", "MIGRATE_WAIT_TIMEOUT": "1"})
    assert result.returncode in (3, 5), result
    assert "Traceback" not in result.output
    assert pg_database.tables() == []


# --- flags, options, ALEMBIC_CONFIG mode --------------------------------------------------------------------------

def test_flags_replace_environment_variables(pg_database, revisions, sidecar, tmp_path):
    revisions.chain(2)
    result = sidecar.run("upgrade", "--database-url", pg_database.url, "--versions-dir", str(revisions.dir),
                         "--version-table", "schema_rev", "--wait-timeout", "5", "--lock-timeout", "5",
                         env={"MIGRATE_VERSIONS_DIR": str(tmp_path / "missing")})
    assert_exit(result, 0)
    assert pg_database.revisions("schema_rev") == [revisions.head]
    assert "alembic_version" not in pg_database.tables()


@pytest.mark.parametrize("command", [[], ["upgrade"], ["check"], ["current"], ["heads"], ["history"], ["wait"],
                                     ["sql"], ["downgrade"]])
def test_help_for_every_command(sidecar, command):
    result = sidecar.run(*command, "--help", env={})
    assert_exit(result, 0)
    assert "usage" in result.stdout.lower()
    if not command:
        for name in ("upgrade", "check", "current", "heads", "history", "wait", "sql", "downgrade"):
            assert name in result.stdout
    else:
        assert "--database-url" in result.stdout


def test_custom_version_table(database, revisions, sidecar):
    revisions.chain(2)
    result = sidecar.run(env={"DATABASE_URL": database.url, "MIGRATE_VERSION_TABLE": "schema_revisions"})
    assert_exit(result, 0)
    assert database.revisions("schema_revisions") == [revisions.head]
    assert "alembic_version" not in database.tables()


def test_pythonpath_lets_revisions_import_the_users_own_code(sqlite_database, revisions, sidecar, tmp_path):
    lib = tmp_path / "lib"
    (lib / "myapp").mkdir(parents=True)
    (lib / "myapp" / "__init__.py").write_text("TABLE = 'from_user_code'\n")
    revisions.add('    op.create_table(myapp.TABLE, sa.Column("id", sa.Integer, primary_key=True))\n',
                  imports="import myapp\n")
    env = {"DATABASE_URL": sqlite_database.url}
    without = sidecar.run(env=env)
    assert_clean_failure(without, 7, "myapp")
    result = sidecar.run(env={**env, "MIGRATE_PYTHONPATH": f"{tmp_path / 'nowhere'}:{lib}"})
    assert_exit(result, 0)
    assert "from_user_code" in sqlite_database.tables()


@pytest.fixture
def alembic_project(tmp_path: Path) -> Path:
    """A full project from `alembic init -t async` with its generated env.py untouched."""
    return init_alembic_project(tmp_path / "project", "async").parent


@pytest.fixture
def sync_alembic_project(tmp_path: Path) -> Path:
    """A full project from plain `alembic init` (the default, sync template) with its generated env.py untouched."""
    return init_alembic_project(tmp_path / "sync-project").parent


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_alembic_config_mode_runs_a_sync_env_py_on_the_async_driver(request, sync_alembic_project, revisions,
                                                                    sidecar, fixture):
    """`alembic init`'s sync env.py gets the async URL; the sidecar drives it inside greenlet_spawn."""
    database = request.getfixturevalue(fixture)
    own = _project_revisions(sync_alembic_project, revisions)
    env_py = (sync_alembic_project / "migrations" / "env.py").read_text()
    assert "async" not in env_py
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(sync_alembic_project / "alembic.ini"),
                              "DATABASE_URL": database.url, "MIGRATE_VERSIONS_DIR": None})
    assert_at_head(database, own, result)
    assert [event["revision"] for event in result.named("revision_applied")] == own.ids
    assert "never awaited" not in result.output, "the failed first connect's warning leaked to stderr"
    again = sidecar.run(env={"ALEMBIC_CONFIG": str(sync_alembic_project / "alembic.ini"),
                             "DATABASE_URL": database.url, "MIGRATE_VERSIONS_DIR": None})
    assert_exit(again, 0)
    assert again.one("migration_complete")["applied"] == 0


def _project_revisions(project: Path, revisions):
    from tests.fixtures.revisions import Revisions
    own = Revisions(project / "migrations" / "versions")
    own.chain(2)
    return own


def test_alembic_config_mode_runs_the_users_own_async_env_py(pg_database, alembic_project, revisions, sidecar):
    own = _project_revisions(alembic_project, revisions)
    env_py = (alembic_project / "migrations" / "env.py").read_text()
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                              "DATABASE_URL": pg_database.url, "MIGRATE_VERSIONS_DIR": None})
    assert_at_head(pg_database, own, result)
    assert (alembic_project / "migrations" / "env.py").read_text() == env_py


def test_alembic_config_mode_falls_back_to_sqlalchemy_url_in_the_ini(mariadb_database, alembic_project, revisions,
                                                                     sidecar):
    own = _project_revisions(alembic_project, revisions)
    ini = alembic_project / "alembic.ini"
    lines = [f"sqlalchemy.url = {mariadb_database.url_with('mysql+aiomysql')}" if line.startswith("sqlalchemy.url")
             else line for line in ini.read_text().splitlines()]
    ini.write_text("\n".join(lines) + "\n")
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None})
    assert_at_head(mariadb_database, own, result)


def test_alembic_config_mode_with_a_percent_in_the_password(pg_password_server, alembic_project, revisions,
                                                            sidecar):
    own = _project_revisions(alembic_project, revisions)
    with pg_password_server.database() as db:
        result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"), "DATABASE_URL": db.url,
                                  "MIGRATE_VERSIONS_DIR": None, "MIGRATE_WAIT_TIMEOUT": "5"})
        assert_at_head(db, own, result)


def test_alembic_config_mode_reports_a_failing_revision_with_exit_1(pg_database, alembic_project, revisions,
                                                                    sidecar):
    own = _project_revisions(alembic_project, revisions)
    bad = own.failing("python")
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                              "DATABASE_URL": pg_database.url, "MIGRATE_VERSIONS_DIR": None}, timeout=60)
    assert_clean_failure(result, 1, bad, "fails on purpose")
    # The generated env.py runs the whole upgrade in one transaction: all of it rolled back.
    assert pg_database.revisions() == []


def test_alembic_config_mode_reports_each_revision_from_alembics_own_hook(pg_database, alembic_project, revisions,
                                                                        sidecar):
    own = _project_revisions(alembic_project, revisions)
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                              "DATABASE_URL": pg_database.url, "MIGRATE_VERSIONS_DIR": None})
    assert_at_head(pg_database, own, result)
    assert [event["revision"] for event in result.named("revision_applied")] == own.ids


def test_alembic_config_mode_names_a_failing_env_py_instead_of_a_revision(pg_database, alembic_project, revisions,
                                                                          sidecar):
    _project_revisions(alembic_project, revisions)
    env_py = alembic_project / "migrations" / "env.py"
    env_py.write_text("import no_such_module_of_the_application\n" + env_py.read_text())
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                              "DATABASE_URL": pg_database.url, "MIGRATE_VERSIONS_DIR": None})
    failed = assert_clean_failure(result, 2, "env.py", "no_such_module_of_the_application")
    assert "revision" not in failed["error"].split(":")[0]
    assert pg_database.revisions() == []


def test_alembic_config_mode_refuses_ddl_lock_retries_it_cannot_perform(pg_database, alembic_project, revisions,
                                                                         sidecar):
    _project_revisions(alembic_project, revisions)
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                              "DATABASE_URL": pg_database.url, "MIGRATE_VERSIONS_DIR": None,
                              "MIGRATE_DDL_LOCK_RETRIES": "3"})
    assert_clean_failure(result, 2, "MIGRATE_DDL_LOCK_RETRIES", "env.py")
    assert pg_database.tables() == []


@pytest.mark.parametrize("template", ["alembic_project", "sync_alembic_project"])
@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_statement_timeout_reaches_the_sessions_of_a_users_env_py(request, revisions, sidecar, template, fixture):
    database = request.getfixturevalue(fixture)
    project = request.getfixturevalue(template)
    own = _project_revisions(project, revisions)
    slow = own.slow(30)
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(project / "alembic.ini"), "DATABASE_URL": database.url,
                              "MIGRATE_VERSIONS_DIR": None, "MIGRATE_STATEMENT_TIMEOUT": "1"}, timeout=60)
    assert_clean_failure(result, 1, slow)
    assert result.duration < 20, f"{result.duration:.1f}s: the 30 s statement was not cut at 1 s"


def test_ddl_lock_timeout_reaches_the_sessions_of_a_users_env_py(pg_database, alembic_project, revisions, sidecar):
    own = _project_revisions(alembic_project, revisions)
    own.add('    op.execute("ALTER TABLE busy ADD COLUMN added INTEGER")\n')
    holder = pg_database.session()
    try:
        holder.execute("CREATE TABLE busy (id INTEGER)")
        holder.execute("BEGIN")
        holder.execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                                  "DATABASE_URL": pg_database.url, "MIGRATE_VERSIONS_DIR": None,
                                  "MIGRATE_DDL_LOCK_TIMEOUT": "1"}, timeout=60)
    finally:
        holder.close()
    assert_clean_failure(result, 9, "lock")
    assert result.duration < 20
    assert pg_database.revisions() == []


def test_url_options_reach_the_sessions_of_a_users_env_py(pg_database, alembic_project, revisions, sidecar):
    """libpq's options=-csearch_path=app: the user's env.py creates its tables in that schema too."""
    pg_database.execute("CREATE SCHEMA app")
    own = _project_revisions(alembic_project, revisions)
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"),
                              "DATABASE_URL": pg_database.url + "?options=-csearch_path%3Dapp",
                              "MIGRATE_VERSIONS_DIR": None})
    assert_exit(result, 0)
    in_app = {row[0] for row in pg_database.rows(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'app'")}
    assert own.tables_for(own.logged) <= in_app, in_app


@pytest.mark.parametrize("fixture", ["pg_database", "mariadb_database"])
def test_alembic_config_mode_custom_env_py_imports_the_applications_models(request, alembic_project, revisions,
                                                                           sidecar, tmp_path, fixture):
    """An env.py that imports the application's models (target_metadata), found through MIGRATE_PYTHONPATH."""
    database = request.getfixturevalue(fixture)
    app = tmp_path / "app-src" / "shop"
    app.mkdir(parents=True)
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(
        "import sqlalchemy as sa\n\nmetadata = sa.MetaData()\n"
        "orders = sa.Table('orders', metadata, sa.Column('id', sa.Integer, primary_key=True))\n")
    env_py = alembic_project / "migrations" / "env.py"
    text = env_py.read_text()
    assert "target_metadata = None" in text
    env_py.write_text("from shop.models import metadata as shop_metadata\n"
                      + text.replace("target_metadata = None", "target_metadata = shop_metadata"))
    own = _project_revisions(alembic_project, revisions)
    own.add("    from shop.models import orders\n    orders.create(op.get_bind())\n")
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(alembic_project / "alembic.ini"), "DATABASE_URL": database.url,
                              "MIGRATE_VERSIONS_DIR": None, "MIGRATE_PYTHONPATH": str(tmp_path / "app-src")})
    assert_exit(result, 0)
    assert "orders" in database.tables()
    assert database.revisions() == [own.head]


@pytest.mark.parametrize("fixture, scheme", [("pg_database", "postgresql"), ("mariadb_database", "mysql+pymysql")])
def test_alembic_config_mode_sync_project_with_its_url_only_in_the_ini(request, sync_alembic_project, revisions,
                                                                       sidecar, fixture, scheme):
    """`alembic init` plus a sync URL in alembic.ini, as its users write it: no psycopg2 or PyMySQL is needed."""
    database = request.getfixturevalue(fixture)
    own = _project_revisions(sync_alembic_project, revisions)
    ini = sync_alembic_project / "alembic.ini"
    url = database.url_with(scheme).replace("%", "%%")
    ini.write_text("\n".join(f"sqlalchemy.url = {url}" if line.startswith("sqlalchemy.url") else line
                             for line in ini.read_text().splitlines()) + "\n")
    result = sidecar.run(env={"ALEMBIC_CONFIG": str(ini), "MIGRATE_VERSIONS_DIR": None})
    assert_at_head(database, own, result)


def _advisory_locks_held(db) -> int:
    """Advisory locks granted in this test's own database (other tests and runs on the server hold theirs)."""
    return db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                     "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


@pytest.mark.parametrize("template", ["alembic_project", "sync_alembic_project"])
def test_sigterm_during_a_users_env_py_migration_keeps_the_lock_until_it_stopped(request, pg_database, revisions,
                                                                                sidecar, tmp_path, template):
    """The lock is held for as long as the user's env.py may run DDL; SIGTERM rolls its transaction back first."""
    project = request.getfixturevalue(template)
    own = _project_revisions(project, revisions)
    marker = tmp_path / "slow-started"
    slow = own.slow(60, marker)
    env = {"ALEMBIC_CONFIG": str(project / "alembic.ini"), "DATABASE_URL": pg_database.url,
           "MIGRATE_VERSIONS_DIR": None}
    running = sidecar.start(env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    sleeping = ("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep%' AND state = 'active'")
    wait_until(lambda: pg_database.scalar(sleeping) == 1, 10, what="pg_sleep to run")
    assert _advisory_locks_held(pg_database) == 1, "the user's env.py runs DDL without the migration lock"
    running.send(signal.SIGTERM)
    result = running.wait(30)
    assert_exit(result, 143)
    assert "Traceback" not in result.output
    # The generated env.py runs the whole upgrade in one transaction: nothing of it stays.
    assert pg_database.revisions() == []
    assert f"t_{slow}" not in pg_database.tables()
    wait_until(lambda: pg_database.scalar(sleeping) == 0 and _advisory_locks_held(pg_database) == 0, 5,
               what="the statement to be cancelled and the lock released")
    again = sidecar.run(env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "5"}, timeout=60)
    assert_exit(again, 0)
    assert pg_database.revisions() == [own.head]


def test_sigterm_during_a_users_env_py_migration_on_mariadb_ends_its_session_before_the_lock(
        mariadb_database, sync_alembic_project, revisions, sidecar, tmp_path):
    """MariaDB commits DDL implicitly, so the revision's table may stay; its SLEEP must not outlive the run."""
    from .test_concurrency import mysql_lock_name

    own = _project_revisions(sync_alembic_project, revisions)
    marker = tmp_path / "slow-started"
    own.slow(60, marker)
    env = {"ALEMBIC_CONFIG": str(sync_alembic_project / "alembic.ini"), "DATABASE_URL": mariadb_database.url,
           "MIGRATE_VERSIONS_DIR": None}
    lock = mysql_lock_name("alembic-sidecar", mariadb_database.name)
    running = sidecar.start(env=env)
    wait_until(marker.exists, 30, what="the slow revision to start")
    sleeping = ("SELECT count(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT SLEEP%%'")
    wait_until(lambda: mariadb_database.scalar(sleeping) == 1, 10, what="SLEEP to run")
    assert mariadb_database.scalar("SELECT IS_FREE_LOCK(%s)", lock) == 0, "env.py runs DDL without the lock"
    running.send(signal.SIGTERM)
    result = running.wait(30)
    assert_exit(result, 143)
    assert "Traceback" not in result.output
    # Ended on the server before the process exited, not when the server notices the closed socket (seconds later).
    wait_until(lambda: mariadb_database.scalar(sleeping) == 0 and
               mariadb_database.scalar("SELECT IS_FREE_LOCK(%s)", lock) == 1, 2,
               what="the statement to be killed and the lock released")
    assert mariadb_database.revisions() == [own.ids[-2]]
    again = sidecar.run(env={**env, SLOW_SECONDS_ENV: "0", "MIGRATE_LOCK_TIMEOUT": "5"}, timeout=60)
    assert_exit(again, 0)
    assert mariadb_database.revisions() == [own.head]


@pytest.mark.parametrize("table", ["AlembicVersion", "user"])
def test_mixed_case_or_reserved_version_table_works_twice_in_a_row(database, revisions, sidecar, table):
    """Alembic quotes such names when it creates the table; every read (fast path, full path, proof) must too."""
    revisions.chain(2)
    env = {"DATABASE_URL": database.url, "MIGRATE_VERSION_TABLE": table}
    first = sidecar.run(env=env)
    assert_exit(first, 0)
    assert first.one("migration_complete")["applied"] == 2
    revisions.chain(1)
    second = sidecar.run(env=env)
    assert_exit(second, 0)
    assert second.one("migration_complete")["applied"] == 1
    third = sidecar.run(env=env)
    assert_exit(third, 0)
    assert third.one("migration_complete")["applied"] == 0
    assert "database_ready" not in {e.get("event") for e in third.events}, "the fast path should have answered"
    quoted = f"`{table}`" if database.driver == "mariadb" else f'"{table}"'
    assert database.rows(f"SELECT version_num FROM {quoted}") == [(revisions.head,)]


def test_upgrade_to_a_branch_label_is_proven_by_the_revision_it_names(pg_database, revisions, sidecar):
    """The proof resolves a named target the way Alembic does (here a branch label), not by string comparison."""
    _, labelled, _ = revisions.chain(3)
    path = next(revisions.dir.glob(f"{labelled}_*.py"))
    path.write_text(path.read_text().replace("branch_labels = None", "branch_labels = ('release',)"))
    result = sidecar.run("upgrade", "release", env={"DATABASE_URL": pg_database.url})
    assert_exit(result, 0)
    assert pg_database.revisions() == [labelled]
