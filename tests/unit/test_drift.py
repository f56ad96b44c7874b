"""MIGRATE_METADATA (its shape, its import) and how `drift` words each difference Alembic's comparison finds."""

from __future__ import annotations

import itertools

import pytest
import sqlalchemy as sa

from alembic_sidecar.alembic_env import load_metadata
from alembic_sidecar.drift import comparison_options, describe, drift_error
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit

_names = (f"sidecar_unit_models_{n}" for n in itertools.count())


# -- the setting ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("myapp.models:Base", "myapp.models:Base"),
    ("models:metadata", "models:metadata"),
    ("myapp.db:Base.metadata", "myapp.db:Base.metadata"),
    ("  models:metadata\n", "models:metadata"),
])
def test_metadata_setting_takes_module_colon_attribute(raw, expected):
    assert from_environ({"MIGRATE_METADATA": raw}, []).metadata == expected
    assert from_environ({}, ["drift", "--metadata", raw]).metadata == expected


@pytest.mark.parametrize("raw", ["models", "models:", ":Base", "models:Base:x", "1models:Base", "my-app:Base",
                                 "models.:Base", "models:Base."])
def test_metadata_setting_refuses_anything_else_naming_the_variable(raw):
    with pytest.raises(ConfigurationError) as raised:
        from_environ({"MIGRATE_METADATA": raw}, [])
    assert raised.value.exit_code == 2
    assert "MIGRATE_METADATA" in str(raised.value) and "module:attribute" in str(raised.value)


def test_comparison_settings_default_to_alembics_own_configure_defaults():
    import inspect

    from alembic.runtime.environment import EnvironmentContext

    alembics = inspect.signature(EnvironmentContext.configure).parameters
    options = comparison_options(from_environ({}, []))
    assert options == {name: alembics[name].default for name in options} == {
        "compare_type": True, "compare_server_default": False}


def test_comparison_settings_become_configure_keywords():
    settings = from_environ({"MIGRATE_COMPARE_TYPE": "false"}, ["drift", "--compare-server-default", "true"])
    assert comparison_options(settings) == {"compare_type": False, "compare_server_default": True}


def test_drift_is_a_command_bare_and_with_flags():
    assert from_environ({}, ["drift"]).command == "drift"
    assert from_environ({}, ["drift", "--metadata", "m:metadata"]).command == "drift"


# -- the import ------------------------------------------------------------------------------------------------------

@pytest.fixture
def module(tmp_path, monkeypatch):
    """Writes a module with a fresh name on sys.path and returns its name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str) -> str:
        name = next(_names)
        (tmp_path / f"{name}.py").write_text(source)
        return name
    return write


@pytest.mark.parametrize("source, attribute", [
    ("import sqlalchemy as sa\nmetadata = sa.MetaData(naming_convention={'uq': 'uq_%(table_name)s'})\n", "metadata"),
    ("import sqlalchemy as sa\nfrom sqlalchemy.orm import DeclarativeBase\n"
     "class Base(DeclarativeBase):\n    metadata = sa.MetaData(naming_convention={'uq': 'uq_%(table_name)s'})\n",
     "Base"),
    ("import sqlalchemy as sa\nfrom sqlalchemy.orm import declarative_base\n"
     "Base = declarative_base(metadata=sa.MetaData(naming_convention={'uq': 'uq_%(table_name)s'}))\n", "Base"),
    ("import sqlalchemy as sa\nfrom sqlalchemy.orm import DeclarativeBase\n"
     "class Base(DeclarativeBase):\n    metadata = sa.MetaData(naming_convention={'uq': 'uq_%(table_name)s'})\n",
     "Base.metadata"),
])
def test_metadata_or_declarative_base_loads_as_metadata(module, source, attribute):
    metadata = load_metadata(f"{module(source)}:{attribute}")
    assert isinstance(metadata, sa.MetaData)
    assert metadata.naming_convention["uq"] == "uq_%(table_name)s"


@pytest.mark.parametrize("source, attribute, words", [
    ("x = 1\n", "missing", ["has no attribute 'missing'"]),
    ("x = 1\n", "x", ["is a int", "not a SQLAlchemy MetaData"]),
    ("raise KeyError('DATABASE_HOST')\n", "metadata", ["raised KeyError", "DATABASE_HOST", ", line 1"]),
    ("import sys\nsys.exit(3)\n", "metadata", ["raised SystemExit"]),
    ("import no_such_dependency_of_the_models\n", "metadata",
     ["raised ModuleNotFoundError", "no_such_dependency_of_the_models"]),
    ("def f(:\n", "metadata", ["raised SyntaxError"]),
])
def test_a_bad_module_or_attribute_is_one_configuration_line(module, source, attribute, words):
    reference = f"{module(source)}:{attribute}"
    with pytest.raises(ConfigurationError) as raised:
        load_metadata(reference)
    message = str(raised.value)
    assert f"MIGRATE_METADATA={reference}" in message and "\n" not in message
    for word in words:
        assert word in message, message


def test_a_module_not_on_the_path_says_where_to_put_it():
    with pytest.raises(ConfigurationError) as raised:
        load_metadata("no_such_package_for_sidecar.models:Base")
    assert "is not importable" in str(raised.value) and "MIGRATE_PYTHONPATH" in str(raised.value)


# -- the words of each difference --------------------------------------------------------------------------------------

def _differences(old: sa.MetaData, new: sa.MetaData) -> list[str]:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        old.create_all(connection)
        found = compare_metadata(MigrationContext.configure(connection), new)
    flat = [item for diff in found for item in (diff if isinstance(diff, list) else [diff])]
    return sorted(describe(diff) for diff in flat)


def test_each_difference_reads_as_kind_and_object():
    old, new = sa.MetaData(), sa.MetaData()
    sa.Table("users", old, sa.Column("id", sa.Integer, primary_key=True), sa.Column("legacy", sa.Integer),
             sa.Column("age", sa.Integer, nullable=False))
    sa.Table("gone", old, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("users", new, sa.Column("id", sa.Integer, primary_key=True), sa.Column("email", sa.String(50)),
             sa.Column("age", sa.BigInteger, nullable=True), sa.Index("ix_users_email", "email"))
    sa.Table("items", new, sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE")))
    assert _differences(old, new) == [
        "add_column users.email",
        "add_index ix_users_email on users (email)",
        "add_table items",
        "modify_nullable users.age: False -> True",
        "modify_type users.age: INTEGER -> BIGINT",
        "remove_column users.legacy",
        "remove_table gone",
    ]


def test_foreign_keys_and_constraints_name_their_columns_and_actions():
    users = sa.Table("users", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    fk = sa.ForeignKeyConstraint(["owner_id"], [users.c.id], name="fk_items_owner", ondelete="CASCADE")
    sa.Table("items", users.metadata, sa.Column("id", sa.Integer, primary_key=True), sa.Column("owner_id", sa.Integer),
             fk, sa.UniqueConstraint("owner_id", name="uq_items_owner"))
    assert describe(("add_fk", fk)) == "add_fk fk_items_owner on items (owner_id) -> users.id ON DELETE CASCADE"
    unique = next(c for c in users.metadata.tables["items"].constraints if isinstance(c, sa.UniqueConstraint))
    assert describe(("remove_constraint", unique)) == "remove_constraint UniqueConstraint uq_items_owner on items " \
                                                     "(owner_id)"


def test_a_difference_of_an_unknown_shape_is_still_said():
    assert describe(("add_sequence", "app", "invoice_no")) == "add_sequence app invoice_no"


def test_the_error_names_the_first_differences_and_counts_the_rest():
    error = drift_error([f"add_table t{n}" for n in range(7)])
    assert error.exit_code == 10
    assert "differ in 7 ways" in str(error) and "add_table t4" in str(error) and "add_table t5" not in str(error)
    assert "and 2 more" in str(error)
    assert "differ in 1 way:" in str(drift_error(["add_table t"]))
