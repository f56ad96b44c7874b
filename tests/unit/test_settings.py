"""Settings: environment, *_FILE secrets and flags resolve into one frozen dataclass; bad values fail clearly."""

import pytest

from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.settings import OPTIONS, Secret, from_environ

pytestmark = pytest.mark.unit


def test_defaults_match_the_documented_ones():
    settings = from_environ({}, [])
    assert settings.command == "upgrade"
    assert settings.versions_dir == "/migrations/versions"
    assert (settings.target, settings.wait_timeout, settings.lock_timeout) == ("head", 60.0, 300.0)
    assert settings.statement_timeout is None and settings.ddl_lock_timeout is None
    assert settings.on_unknown_revision == "error" and settings.transaction_per_migration is True


def test_flags_override_environment_before_or_after_the_command():
    env = {"MIGRATE_WAIT_TIMEOUT": "5", "MIGRATE_TARGET": "0002"}
    assert from_environ(env, ["--wait-timeout", "7", "upgrade"]).wait_timeout == 7.0
    assert from_environ(env, ["upgrade", "--wait-timeout", "8"]).wait_timeout == 8.0
    assert from_environ(env, []).target == "0002"
    assert from_environ(env, ["upgrade", "0003"]).target == "0003"
    assert from_environ(env, ["--target", "0001"]).target == "0001"
    assert from_environ(env, ["upgrade", "--target", "0001"]).target == "0001"
    assert from_environ(env, ["sql", "0001:0003"]).sql_range == "0001:0003"


def test_every_option_has_a_working_flag():
    flags = {option.cli_flag for option in OPTIONS}
    assert len(flags) == len(OPTIONS)
    for option in OPTIONS:
        value = "1" if option.default is None or isinstance(option.default, (float, bool)) else str(option.default)
        if option.field in ("db_driver",):
            value = "sqlite"
        if option.field == "db_sslmode":
            value = "require"
        if option.field in ("on_unknown_revision", "log_format", "log_level"):
            continue  # choice values covered elsewhere
        settings = from_environ({}, [option.cli_flag, value, "check"])
        assert getattr(settings, option.field) is not None, option.cli_flag


def test_secret_file_is_read_and_its_trailing_newline_dropped(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("p@ss:w/rd%#? é\n")
    settings = from_environ({"DB_PASSWORD_FILE": str(secret)}, [])
    assert settings.db_password == Secret("p@ss:w/rd%#? é")
    assert "p@ss" not in repr(settings)


def test_value_and_file_together_are_refused(tmp_path):
    secret = tmp_path / "url"
    secret.write_text("sqlite:///x.db")
    with pytest.raises(ConfigurationError, match="both DATABASE_URL and DATABASE_URL_FILE"):
        from_environ({"DATABASE_URL": "sqlite:///y.db", "DATABASE_URL_FILE": str(secret)}, [])


def test_unreadable_secret_file_names_the_variable_not_the_content(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read DB_PASSWORD_FILE") as raised:
        from_environ({"DB_PASSWORD_FILE": str(tmp_path / "missing")}, [])
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("variable", ["MIGRATE_WAIT_TIMEOUT", "MIGRATE_LOCK_TIMEOUT", "MIGRATE_STATEMENT_TIMEOUT"])
@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf"])
def test_non_numeric_timeouts_are_configuration_errors(variable, value):
    with pytest.raises(ConfigurationError, match=f"{variable} must be a number of seconds"):
        from_environ({variable: value}, [])


def test_unknown_driver_and_command_are_configuration_errors():
    with pytest.raises(ConfigurationError, match="DB_DRIVER must be one of"):
        from_environ({"DB_DRIVER": "oracle"}, [])
    with pytest.raises(ConfigurationError, match="invalid choice"):
        from_environ({}, ["migrate"])


def test_file_variants_have_flags_too(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    settings = from_environ({"DB_PASSWORD": "from-the-environment"}, ["--db-password-file", str(secret)])
    assert settings.db_password == Secret("from-a-file")
    with pytest.raises(ConfigurationError, match="both --db-password and --db-password-file"):
        from_environ({}, ["--db-password", "x", "--db-password-file", str(secret)])


@pytest.mark.parametrize("table", ["alembic_version; DROP TABLE accounts", "1table", "a-b"])
def test_version_table_must_be_a_plain_name(table):
    with pytest.raises(ConfigurationError, match="MIGRATE_VERSION_TABLE=.* is not a plain table name"):
        from_environ({"MIGRATE_VERSION_TABLE": table}, [])
