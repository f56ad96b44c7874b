"""`drift`: the database compared with the models as `alembic check` does; exit 10 listing each difference."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.fixtures.faults import holding_migration_lock

from .conftest import assert_clean_failure, assert_exit, init_alembic_project
from .naming import DRIFTED, copy_history

pytestmark = pytest.mark.integration


@pytest.fixture
def naming(tmp_path):
    return copy_history(tmp_path)


def migrated(database, naming, sidecar, target: str = "head") -> None:
    assert_exit(sidecar.run("upgrade", target, env=naming.env(database)), 0)


def test_drift_has_help(sidecar):
    result = sidecar.run("drift", "--help", env={})
    assert_exit(result, 0)
    assert "alembic check" in result.stdout and "--metadata" in result.stdout


def test_drift_is_0_when_the_database_matches_the_models(database, naming, sidecar):
    migrated(database, naming, sidecar)
    result = sidecar.run("drift", env=naming.env(database))
    assert_exit(result, 0)
    assert result.one("no_drift")["revision"] == "n3"
    assert not result.named("drift")
    assert "matching the models" in sidecar.termination_log.read_text()


def test_drift_is_0_with_a_declarative_base(database, naming, sidecar):
    migrated(database, naming, sidecar)
    assert_exit(sidecar.run("drift", env=naming.env(database, metadata="naming_orm:Base")), 0)


def test_drift_is_10_and_lists_each_difference_in_one_json_event(database, naming, sidecar):
    migrated(database, naming, sidecar)
    result = sidecar.run("drift", env=naming.env(database, metadata="naming_drifted:metadata"))
    failed = assert_clean_failure(result, 10, "differ in 2 ways", *DRIFTED)
    assert failed["kind"] == "schema drift"
    event = result.one("drift")
    assert event["level"] == "warning"
    assert sorted(event["differences"]) == DRIFTED and event["count"] == 2
    assert sidecar.termination_log.read_text().startswith("exit 10 (schema drift): ")
    assert database.revisions() == ["n3"] and "audit" not in database.tables(), "drift must write nothing"


def test_drift_names_a_removed_table_and_a_changed_column(pg_database, naming, sidecar):
    migrated(pg_database, naming, sidecar)
    (naming.models / "fewer_models.py").write_text(
        "import sqlalchemy as sa\nfrom naming_models import CONVENTION\n"
        "metadata = sa.MetaData(naming_convention=CONVENTION)\n"
        "users = sa.Table('users', metadata, sa.Column('id', sa.Integer, primary_key=True),\n"
        "                 sa.Column('email', sa.String(200), nullable=True),\n"
        "                 sa.Index('ix_users_email', 'email', unique=True))\n")
    result = sidecar.run("drift", env=naming.env(pg_database, metadata="fewer_models:metadata"))
    assert_exit(result, 10)
    assert sorted(result.one("drift")["differences"]) == [
        "modify_nullable users.email: False -> True", "remove_index ix_items_name on items (name)",
        "remove_table items"]


def test_drift_with_pending_revisions_is_8(database, naming, sidecar):
    migrated(database, naming, sidecar, "n1")
    result = sidecar.run("drift", env=naming.env(database))
    assert_clean_failure(result, 8, "n1", "n3", "upgrade")
    assert database.revisions() == ["n1"]


def test_drift_on_an_empty_database_is_8(pg_database, naming, sidecar):
    result = sidecar.run("drift", env=naming.env(pg_database))
    assert_clean_failure(result, 8, "base", "n3")
    assert pg_database.tables() == []


def test_drift_on_a_database_ahead_of_the_files_is_6(pg_database, naming, sidecar):
    migrated(pg_database, naming, sidecar)
    pg_database.execute("UPDATE alembic_version SET version_num = 'f00d'")
    result = sidecar.run("drift", env={**naming.env(pg_database), "MIGRATE_ON_UNKNOWN_REVISION": "ignore"})
    assert_clean_failure(result, 6, "f00d")


def test_drift_without_metadata_is_2_before_connecting(naming, sidecar, sqlite_database):
    result = sidecar.run("drift", env=naming.env(sqlite_database, metadata=None))
    assert_clean_failure(result, 2, "MIGRATE_METADATA", "module:attribute")
    assert not sqlite_database.path.exists(), "the SQLite file was created: the run connected"


def test_drift_with_bad_metadata_is_2_and_writes_nothing(pg_database, naming, sidecar):
    (naming.models / "raises.py").write_text('raise RuntimeError("no models without SETTINGS_MODULE")\n')
    result = sidecar.run("drift", env=naming.env(pg_database, metadata="raises:metadata"))
    assert_clean_failure(result, 2, "MIGRATE_METADATA", "SETTINGS_MODULE")
    assert pg_database.tables() == []


def test_drift_does_not_wait_for_the_migration_lock(server_database, naming, sidecar):
    """A read-only comparison takes no lock: a CI gate must not hang behind (or block) a deployment's migration."""
    migrated(server_database, naming, sidecar)
    with holding_migration_lock(server_database):
        result = sidecar.run("drift", env={**naming.env(server_database), "MIGRATE_LOCK_TIMEOUT": "2"})
    assert_exit(result, 0)
    assert not result.named("lock_acquired")


# -- MIGRATE_COMPARE_SERVER_DEFAULT and MIGRATE_COMPARE_TYPE: Alembic's comparison options -------------------------

N4 = '''"""items.stock with a server default

Revision ID: n4
Revises: n3
"""
import sqlalchemy as sa
from alembic import op

revision = "n4"
down_revision = "n3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("items", sa.Column("stock", sa.Integer, nullable=False, server_default="0"))
'''


def with_stock(naming, module: str, stock: str, name: str = "sa.String(100)") -> None:
    """Revision n4 (items.stock, server default 0) and the models at n4 as ``module``, with ``stock`` and ``name``
    as the model's columns."""
    (naming.versions / "n4_items_stock.py").write_text(N4)
    source = (naming.models / "naming_models.py").read_text()
    assert 'sa.Column("name", sa.String(100), nullable=False, index=True))' in source
    (naming.models / f"{module}.py").write_text(source.replace(
        'sa.Column("name", sa.String(100), nullable=False, index=True))',
        f'sa.Column("name", {name}, nullable=False, index=True),\n{" " * 17}sa.Column("stock", {stock}))'))


def test_a_changed_server_default_is_drift_only_with_compare_server_default(database, naming, sidecar):
    with_stock(naming, "stock_models", 'sa.Integer, nullable=False, server_default="0"')
    with_stock(naming, "stock_default_changed", 'sa.Integer, nullable=False, server_default="5"')
    migrated(database, naming, sidecar)
    compare = {"MIGRATE_COMPARE_SERVER_DEFAULT": "true"}
    # The same default on both sides is no drift with the comparison on: no false alarm on any database.
    assert_exit(sidecar.run("drift", env={**naming.env(database, metadata="stock_models:metadata"), **compare}), 0)
    changed = naming.env(database, metadata="stock_default_changed:metadata")
    assert_exit(sidecar.run("drift", env=changed), 0)  # Alembic's default: server defaults are not compared
    result = sidecar.run("drift", env={**changed, **compare})
    assert_clean_failure(result, 10, "modify_default items.stock")
    (found,) = result.one("drift")["differences"]
    assert found.startswith("modify_default items.stock: ") and found.endswith("5"), found
    assert_exit(sidecar.run("drift", "--compare-server-default", "yes", env=changed), 10)


def test_a_changed_column_type_is_drift_unless_compare_type_is_false(database, naming, sidecar):
    with_stock(naming, "stock_models", 'sa.Integer, nullable=False, server_default="0"')
    with_stock(naming, "name_longer", 'sa.Integer, nullable=False, server_default="0"', name="sa.String(150)")
    migrated(database, naming, sidecar)
    assert_exit(sidecar.run("drift", env=naming.env(database, metadata="stock_models:metadata")), 0)
    changed = naming.env(database, metadata="name_longer:metadata")
    result = sidecar.run("drift", env=changed)  # Alembic's default: types are compared
    assert_clean_failure(result, 10, "modify_type items.name")
    assert result.one("drift")["differences"] == ["modify_type items.name: VARCHAR(100) -> VARCHAR(150)"]
    assert_exit(sidecar.run("drift", env={**changed, "MIGRATE_COMPARE_TYPE": "false"}), 0)
    assert_exit(sidecar.run("drift", "--compare-type", "off", env=changed), 0)


# -- your own Alembic project: its env.py's target_metadata ------------------------------------------------------

def alembic_project(tmp_path: Path, naming, template: str | None, models: str | None) -> Path:
    """`alembic init` (or `-t async`) with the naming history, env.py's target_metadata set to ``models``."""
    ini = init_alembic_project(tmp_path / f"project-{template or 'generic'}", template)
    project = ini.parent
    for revision in naming.versions.glob("*.py"):
        shutil.copy(revision, project / "migrations" / "versions")
    env_py = project / "migrations" / "env.py"
    assert "\ntarget_metadata = None\n" in env_py.read_text()
    if models:
        module, _, attribute = models.partition(":")
        env_py.write_text(env_py.read_text().replace(
            "\ntarget_metadata = None\n", f"\nimport {module}\ntarget_metadata = {module}.{attribute}\n"))
    return ini


@pytest.mark.parametrize("template", ["async", None], ids=["async-env", "sync-env"])
def test_drift_through_your_own_env_py(server_database, naming, sidecar, tmp_path, template):
    matching = alembic_project(tmp_path / "matching", naming, template, "naming_models:metadata")
    env = {"ALEMBIC_CONFIG": str(matching), "DATABASE_URL": server_database.url, "MIGRATE_VERSIONS_DIR": None,
           "MIGRATE_PYTHONPATH": str(naming.models)}
    assert_exit(sidecar.run("upgrade", env=env), 0)
    assert_exit(sidecar.run("drift", env=env), 0)
    drifted = alembic_project(tmp_path / "drifted", naming, template, "naming_drifted:metadata")
    result = sidecar.run("drift", env={**env, "ALEMBIC_CONFIG": str(drifted)})
    assert_clean_failure(result, 10, *DRIFTED)
    assert sorted(result.one("drift")["differences"]) == DRIFTED


def test_drift_through_an_env_py_without_target_metadata_is_2(pg_database, naming, sidecar, tmp_path):
    migrated(pg_database, naming, sidecar)  # bundled: this history needs the convention to apply
    ini = alembic_project(tmp_path, naming, "async", None)
    result = sidecar.run("drift", env={"ALEMBIC_CONFIG": str(ini), "DATABASE_URL": pg_database.url,
                                       "MIGRATE_VERSIONS_DIR": None})
    assert_clean_failure(result, 2, "target_metadata", "env.py")


@pytest.mark.parametrize("variable, value", [("MIGRATE_COMPARE_SERVER_DEFAULT", "true"),
                                             ("MIGRATE_COMPARE_TYPE", "false")])
def test_drift_through_your_own_env_py_refuses_a_comparison_setting_it_would_not_see(
        sqlite_database, naming, sidecar, tmp_path, variable, value):
    ini = alembic_project(tmp_path, naming, "async", "naming_models:metadata")
    result = sidecar.run("drift", env={"ALEMBIC_CONFIG": str(ini), "DATABASE_URL": sqlite_database.url,
                                       "MIGRATE_VERSIONS_DIR": None, "MIGRATE_PYTHONPATH": str(naming.models),
                                       variable: value})
    assert_clean_failure(result, 2, variable, "ALEMBIC_CONFIG", "context.configure()")
    assert not sqlite_database.path.exists(), "the SQLite file was created: the run connected"
