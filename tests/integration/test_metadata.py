"""MIGRATE_METADATA: the bundled env.py's target_metadata, so histories that rely on a naming convention apply."""

from __future__ import annotations

import pytest

from .conftest import assert_clean_failure, assert_exit
from .naming import REVISIONS, copy_history, owner_fk_cascades, schema_names

pytestmark = pytest.mark.integration

#: The names n1's unnamed constraints get from the convention (MariaDB names every primary key PRIMARY).
CONVENTION_NAMES = {"uq_users_email", "fk_items_owner_id_users", "ck_items_price_positive", "ix_items_name"}


@pytest.fixture
def naming(tmp_path):
    return copy_history(tmp_path)


def test_unnamed_constraints_get_the_convention_names(database, naming, sidecar):
    result = sidecar.run("upgrade", "n1", env=naming.env(database))
    assert_exit(result, 0)
    names = schema_names(database)
    assert CONVENTION_NAMES <= names, names
    if database.driver != "mariadb":
        assert {"pk_users", "pk_items"} <= names, names


def test_history_that_drops_constraints_by_convention_names_applies(database, naming, sidecar):
    result = sidecar.run(env=naming.env(database))
    assert_exit(result, 0)
    assert database.revisions() == ["n3"]
    assert [event["revision"] for event in result.named("revision_applied")] == REVISIONS
    names = schema_names(database)
    assert {"fk_items_owner_id_users", "ix_users_email", "ix_items_name"} <= names, names
    assert not {"uq_users_email", "ck_items_price_positive"} & names, names
    assert owner_fk_cascades(database)


def test_without_metadata_that_history_fails_at_its_first_drop_by_convention_name(database, naming, sidecar):
    """The reproduction of the issue: the database named n1's constraints itself (PostgreSQL items_owner_id_fkey,
    MariaDB items_ibfk_1, SQLite none), so n2 cannot find fk_items_owner_id_users."""
    result = sidecar.run(env=naming.env(database, metadata=None))
    assert_clean_failure(result, 1, "n2_owner_cascades", "fk_items_owner_id_users")
    assert database.revisions() == ["n1"]
    assert "fk_items_owner_id_users" not in schema_names(database)


def test_a_declarative_base_works_as_the_metadata(database, naming, sidecar):
    result = sidecar.run(env=naming.env(database, metadata="naming_orm:Base"))
    assert_exit(result, 0)
    assert database.revisions() == ["n3"]
    assert "fk_items_owner_id_users" in schema_names(database)
    assert owner_fk_cascades(database)


def test_offline_sql_names_constraints_by_the_convention(naming, sidecar):
    env = {"DATABASE_URL": "postgresql://u@unreachable.sidecar-test.invalid/db", "MIGRATE_VERSIONS_DIR":
           str(naming.versions), "MIGRATE_PYTHONPATH": str(naming.models), "MIGRATE_METADATA": "naming_models:metadata"}
    with_metadata = sidecar.run("sql", "n1", env=env, timeout=30)
    assert_exit(with_metadata, 0)
    assert "CONSTRAINT uq_users_email UNIQUE" in with_metadata.stdout
    without = sidecar.run("sql", "n1", env={**env, "MIGRATE_METADATA": None}, timeout=30)
    assert_exit(without, 0)
    assert "uq_users_email" not in without.stdout and "UNIQUE (email)" in without.stdout


# -- bad values: exit 2, one line naming MIGRATE_METADATA, nothing written -------------------------------------------

BROKEN_MODULES = {
    "raises.py": 'raise RuntimeError("the models need SETTINGS_MODULE")\n',
    "needs_a_library.py": "import no_such_library_for_sidecar_tests\n",
    "not_metadata.py": "import sqlalchemy as sa\nengine_url = 'sqlite://'\nmetadata = sa.MetaData()\n",
}


@pytest.mark.parametrize("value, words", [
    ("naming_models", ["module:attribute", "myapp.models:Base"]),
    ("naming_models:metadata:x", ["module:attribute"]),
    ("no_such_models_module:metadata", ["no_such_models_module", "not importable", "MIGRATE_PYTHONPATH"]),
    ("naming_models:no_such_attribute", ["no attribute", "no_such_attribute"]),
    ("not_metadata:engine_url", ["is a str", "not a SQLAlchemy MetaData"]),
    ("naming_models:CONVENTION", ["is a dict"]),
    ("raises:metadata", ["RuntimeError", "SETTINGS_MODULE", "raises.py, line 1"]),
    ("needs_a_library:metadata", ["ModuleNotFoundError", "no_such_library_for_sidecar_tests", "needs_a_library.py"]),
])
def test_bad_metadata_is_exit_2_and_writes_nothing(pg_database, naming, sidecar, value, words):
    for name, text in BROKEN_MODULES.items():
        (naming.models / name).write_text(text)
    result = sidecar.run(env=naming.env(pg_database, metadata=value))
    failed = assert_clean_failure(result, 2, "MIGRATE_METADATA", *words)
    assert failed["kind"] == "configuration error"
    assert pg_database.tables() == []


def test_bad_metadata_fails_before_any_connection(naming, sidecar, sqlite_database):
    result = sidecar.run(env=naming.env(sqlite_database, metadata="naming_models:no_such_attribute"))
    assert_clean_failure(result, 2, "MIGRATE_METADATA")
    assert not sqlite_database.path.exists(), "the SQLite file was created: the run connected"


def test_metadata_with_your_own_alembic_project_is_refused(naming, sidecar, sqlite_database, tmp_path):
    ini = tmp_path / "alembic.ini"
    ini.write_text(f"[alembic]\nscript_location = {tmp_path}\n")
    result = sidecar.run(env={**naming.env(sqlite_database), "ALEMBIC_CONFIG": str(ini),
                              "MIGRATE_VERSIONS_DIR": None})
    assert_clean_failure(result, 2, "MIGRATE_METADATA", "ALEMBIC_CONFIG", "target_metadata")
    assert not sqlite_database.path.exists()


def test_the_fast_no_op_does_not_import_the_metadata(database, naming, sidecar, tmp_path):
    """Every pod restart pays the fast path: it reads the version table and nothing else."""
    marker = tmp_path / "imported"
    (naming.models / "marking_models.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nfrom naming_models import metadata\n")
    env = naming.env(database, metadata="marking_models:metadata")
    assert_exit(sidecar.run(env=env), 0)
    assert marker.exists(), "the full path must import MIGRATE_METADATA"
    marker.unlink()
    again = sidecar.run(env=env)
    assert_exit(again, 0)
    assert again.one("migration_complete")["applied"] == 0
    assert not marker.exists(), "the fast no-op imported MIGRATE_METADATA"
