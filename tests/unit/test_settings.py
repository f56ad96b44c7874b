"""Settings: environment, *_FILE secrets and flags resolve into one frozen dataclass; bad values fail clearly."""

import dataclasses

import pytest

from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.settings import OPTIONS, Secret, Settings, from_environ

pytestmark = pytest.mark.unit

BY_ENV = {option.env: option for option in OPTIONS}

#: For every option: a raw value other than its default, and the value it must arrive as.
NON_DEFAULT = {
    "database_url": ("postgresql://u:pw@h/db", Secret("postgresql://u:pw@h/db")),
    "db_driver": ("MySQL", "mysql"),
    "db_host": ("db.example", "db.example"),
    "db_port": ("6543", 6543),
    "db_user": ("someone", Secret("someone")),
    "db_password": ("hunter22", Secret("hunter22")),
    "db_name": ("app", "app"),
    "db_sslmode": ("verify-full", "verify-full"),
    "db_sslrootcert": ("/etc/ssl/db/ca.pem", "/etc/ssl/db/ca.pem"),
    "db_sslcert": ("/etc/ssl/db/client.pem", "/etc/ssl/db/client.pem"),
    "db_sslkey": ("/etc/ssl/db/client.key", "/etc/ssl/db/client.key"),
    "db_sslpassword": ("keypass22", Secret("keypass22")),
    "version_table_schema": ("app", "app"),
    "alembic_config": ("/app/alembic.ini", "/app/alembic.ini"),
    "versions_dir": ("/srv/versions", "/srv/versions"),
    "target": ("ae10", "ae10"),
    "wait_timeout": ("5s", 5.0),
    "lock_timeout": ("7.5", 7.5),
    "statement_timeout": ("600", 600.0),
    "ddl_lock_timeout": ("0.25s", 0.25),
    "ddl_lock_retries": ("3", 3),
    "run_timeout": ("900", 900.0),
    "ready_timeout": ("0", 0.0),
    "allow_downgrade": ("yes", True),
    "on_unknown_revision": ("ignore", "ignore"),
    "transaction_per_migration": ("off", False),
    "version_table": ("schema_history", "schema_history"),
    "lock_name": ("other-lock", "other-lock"),
    "history_table": ("our_history", "our_history"),
    "verify_history": ("strict", "strict"),
    "pythonpath": ("/a:/b", "/a:/b"),
    "metadata": ("myapp.models:Base", "myapp.models:Base"),
    "log_format": ("console", "console"),
    "log_level": ("debug", "debug"),
    "termination_log": ("/tmp/termination", "/tmp/termination"),
    "report_sarif": ("/tmp/report.sarif", "/tmp/report.sarif"),
    "report_junit": ("/tmp/junit.xml", "/tmp/junit.xml"),
    "report_codequality": ("/tmp/codequality.json", "/tmp/codequality.json"),
    "compare_type": ("false", False),
    "compare_server_default": ("on", True),
    "targets_file": ("/etc/fleet/targets", "/etc/fleet/targets"),
    "parallel": ("16", 16),
    "canary": ("2", 2),
    "continue_on_error": ("true", True),
    "shards": ("3", 3),
    "shard_index": ("2", 2),
    "lint_ignore": (" ban-drop-column, renaming-table,,ban-drop-column ", ("ban-drop-column", "renaming-table")),
    "lint_since": ("abc123", "abc123"),
}

SERVER_TIMEOUT = "from 0.001 to 2147483"
CLIENT_TIMEOUT = "from 0 to 2147483"
#: (variable, refused value, words the message must contain besides the variable's name)
REFUSED = [
    *[(variable, value, [SERVER_TIMEOUT])
      for variable in ("MIGRATE_STATEMENT_TIMEOUT", "MIGRATE_DDL_LOCK_TIMEOUT")
      for value in ("0", "0.0005", "1e12", "3600000", "2147483.5", "nan", "inf", "-1", "soon", "5m", "1_0", "٥")],
    *[(variable, value, [CLIENT_TIMEOUT])
      for variable in ("MIGRATE_WAIT_TIMEOUT", "MIGRATE_LOCK_TIMEOUT", "MIGRATE_READY_TIMEOUT")
      for value in ("-1", "1e12", "3600000", "nan", "inf", "-inf", "soon", "١٠")],
    *[("MIGRATE_TIMEOUT", value, ["more than 0 and at most 2147483"])
      for value in ("0", "-1", "1e12", "3600000", "nan", "inf")],
    *[("MIGRATE_DDL_LOCK_RETRIES", value, ["from 0 to 100"]) for value in ("-1", "101", "1.5", "²", "many")],
    *[("DB_PORT", value, ["from 1 to 65535"])
      for value in ("0", "65536", "²", "٥٤٣٢", "54 32", "-1", "5432.0", "99999999999999999999")],
    ("DB_DRIVER", "oracle", ["postgresql, mysql, mariadb, sqlite"]),
    ("DB_SSLMODE", "on", ["disable, allow"]),
    ("MIGRATE_ALLOW_DOWNGRADE", "maybe", ["true or false"]),
    ("MIGRATE_TRANSACTION_PER_MIGRATION", "2", ["true or false"]),
    ("MIGRATE_COMPARE_TYPE", "sometimes", ["true or false"]),
    ("MIGRATE_COMPARE_SERVER_DEFAULT", "2", ["true or false"]),
    ("MIGRATE_ON_UNKNOWN_REVISION", "skip", ["error, ignore"]),
    ("MIGRATE_VERSION_TABLE", "alembic_version; DROP TABLE accounts", ["plain table name"]),
    ("MIGRATE_VERSION_TABLE", "1table", ["plain table name"]),
    ("MIGRATE_VERSION_TABLE", "a-b", ["plain table name"]),
    ("MIGRATE_LOG_FORMAT", "xml", ["auto, json, console"]),
    ("MIGRATE_LOG_LEVEL", "trace", ["debug, info"]),
    *[("MIGRATE_PARALLEL", value, ["from 1 to 64"]) for value in ("0", "65", "-1", "two")],
    *[("MIGRATE_SHARDS", value, ["from 1 to 10000"]) for value in ("0", "10001")],
    ("MIGRATE_CANARY", "-1", ["from 0 to 100000"]),
    ("MIGRATE_CONTINUE_ON_ERROR", "sometimes", ["true or false"]),
    ("JOB_COMPLETION_INDEX", "-1", ["from 0 to 9999"]),
]


def test_defaults_match_the_documented_ones():
    settings = from_environ({}, [])
    assert settings.command == "upgrade"
    assert settings.versions_dir == "/migrations/versions"
    assert (settings.target, settings.wait_timeout, settings.lock_timeout) == ("head", 60.0, 300.0)
    assert settings.statement_timeout is None and settings.ddl_lock_timeout is None
    assert settings.on_unknown_revision == "error" and settings.transaction_per_migration is True
    assert settings.run_timeout is None and settings.ddl_lock_retries == 0
    assert settings.ready_timeout == 300.0


def test_every_option_is_a_settings_field_with_the_same_default():
    defaults = {f.name: f.default for f in dataclasses.fields(Settings)}
    for option in OPTIONS:
        assert option.field in defaults, option.env
        assert defaults[option.field] == option.default and type(defaults[option.field]) is type(option.default), \
            f"Settings.{option.field} defaults to {defaults[option.field]!r}, OPTIONS says {option.default!r}"
    assert set(defaults) - {option.field for option in OPTIONS} == {"command", "sql_range", "extra",
                                                                     "target_schema", "target_database"}


def test_the_non_default_table_covers_every_option():
    assert set(NON_DEFAULT) == {option.field for option in OPTIONS}
    for option in OPTIONS:
        assert NON_DEFAULT[option.field][1] != option.default, option.env


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.env)
def test_every_option_arrives_in_its_field_from_variable_flag_and_files(option, tmp_path):
    raw, expected = NON_DEFAULT[option.field]
    assert getattr(from_environ({option.env: raw}, []), option.field) == expected
    assert getattr(from_environ({}, [option.cli_flag, raw]), option.field) == expected
    assert getattr(from_environ({}, ["check", option.cli_flag, raw]), option.field) == expected
    if option.from_file:
        path = tmp_path / "value"
        path.write_text(raw + "\n")
        assert getattr(from_environ({option.env + "_FILE": str(path)}, []), option.field) == expected
        assert getattr(from_environ({}, [option.cli_flag + "-file", str(path)]), option.field) == expected


def test_the_new_options_have_their_names_and_flags():
    assert (BY_ENV["MIGRATE_TIMEOUT"].field, BY_ENV["MIGRATE_TIMEOUT"].cli_flag) == ("run_timeout", "--timeout")
    retries = BY_ENV["MIGRATE_DDL_LOCK_RETRIES"]
    assert (retries.field, retries.cli_flag, retries.default) == ("ddl_lock_retries", "--ddl-lock-retries", 0)


def test_flags_override_environment_before_or_after_the_command():
    env = {"MIGRATE_WAIT_TIMEOUT": "5", "MIGRATE_TARGET": "0002"}
    assert from_environ(env, ["--wait-timeout", "7", "upgrade"]).wait_timeout == 7.0
    assert from_environ(env, ["upgrade", "--wait-timeout", "8"]).wait_timeout == 8.0
    assert from_environ(env, []).target == "0002"
    assert from_environ(env, ["upgrade", "0003"]).target == "0003"
    assert from_environ(env, ["--target", "0001"]).target == "0001"
    assert from_environ(env, ["upgrade", "--target", "0001"]).target == "0001"
    assert from_environ(env, ["sql", "0001:0003"]).sql_range == "0001:0003"


@pytest.mark.parametrize("variable, value, expected", [
    ("MIGRATE_STATEMENT_TIMEOUT", "0.001", 0.001),
    ("MIGRATE_STATEMENT_TIMEOUT", "2147483", 2147483.0),
    ("MIGRATE_DDL_LOCK_TIMEOUT", " 30s ", 30.0),
    ("MIGRATE_DDL_LOCK_TIMEOUT", "1.5e1", 15.0),
    ("MIGRATE_WAIT_TIMEOUT", "0", 0.0),
    ("MIGRATE_LOCK_TIMEOUT", "2147483s", 2147483.0),
    ("MIGRATE_TIMEOUT", "0.5", 0.5),
    ("MIGRATE_TIMEOUT", "2147483", 2147483.0),
    ("MIGRATE_DDL_LOCK_RETRIES", "0", 0),
    ("MIGRATE_DDL_LOCK_RETRIES", "100", 100),
    ("DB_PORT", "1", 1),
    ("DB_PORT", "65535", 65535),
    ("DB_PORT", " 05432 ", 5432),
])
def test_values_at_the_edges_of_their_range_are_accepted(variable, value, expected):
    assert getattr(from_environ({variable: value}, []), BY_ENV[variable].field) == expected


@pytest.mark.parametrize("variable, value, words", REFUSED)
def test_refused_values_are_one_line_configuration_errors_naming_the_variable_range_and_an_example(
        variable, value, words):
    option = BY_ENV[variable]
    # `--flag=value`: argparse would take a separate "-inf" for an option of its own.
    for environ, argv, name in (({variable: value}, [], variable), ({}, [f"{option.cli_flag}={value}"],
                                                                     option.cli_flag)):
        with pytest.raises(ConfigurationError) as raised:
            from_environ(environ, argv)
        message = str(raised.value)
        assert raised.value.exit_code == 2
        assert "\n" not in message and message.startswith(name + " must be "), message
        assert "set it like " + name in message, message
        for word in words:
            assert word in message, message
        assert (value not in message) if option.secret else (repr(value) in message), message


def test_a_refused_value_read_from_a_file_names_the_file_variable(tmp_path):
    path = tmp_path / "port"
    path.write_text("http\n")
    with pytest.raises(ConfigurationError, match=r"^DB_PORT \(read from DB_PORT_FILE\) must be a port number"):
        from_environ({"DB_PORT_FILE": str(path)}, [])
    with pytest.raises(ConfigurationError, match=r"^--db-port \(read from --db-port-file\) must be a port number"):
        from_environ({}, ["--db-port-file", str(path)])


def test_a_refused_secret_value_is_never_echoed():
    secret_port = dataclasses.replace(BY_ENV["DB_PORT"], secret=True)
    for source in ("variable", "flag", "variable-file", "flag-file"):
        with pytest.raises(ConfigurationError) as raised:
            secret_port.convert("hunter2-not-a-port", source)
        assert "hunter2" not in str(raised.value) and "must be a port number" in str(raised.value)


@pytest.mark.parametrize("option", OPTIONS, ids=lambda option: option.env)
def test_an_empty_value_means_unset(option):
    default = getattr(from_environ({}, []), option.field)
    raw, expected = NON_DEFAULT[option.field]
    assert getattr(from_environ({option.env: ""}, []), option.field) == default
    assert getattr(from_environ({}, [option.cli_flag, ""]), option.field) == default
    assert getattr(from_environ({}, [f"{option.cli_flag}="]), option.field) == default
    # An empty flag does not override the variable; an empty variable does not clash with its _FILE twin.
    assert getattr(from_environ({option.env: raw}, [option.cli_flag, ""]), option.field) == expected
    if option.from_file:
        assert getattr(from_environ({option.env + "_FILE": ""}, []), option.field) == default
        assert getattr(from_environ({option.env: raw, option.env + "_FILE": ""}, []), option.field) == expected
        assert getattr(from_environ({option.env: raw}, [option.cli_flag + "-file", ""]), option.field) == expected


def test_an_empty_secret_file_sets_the_secret_to_empty(tmp_path):
    empty = tmp_path / "password"
    empty.write_text("\n")
    assert from_environ({"DB_PASSWORD_FILE": str(empty)}, []).db_password is None
    # A file given by flag still wins over the variable, even when it is empty.
    assert from_environ({"DB_PASSWORD": "from-env"}, ["--db-password-file", str(empty)]).db_password is None


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


def test_unknown_command_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="invalid choice"):
        from_environ({}, ["migrate"])


def test_file_variants_have_flags_too(tmp_path):
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n")
    settings = from_environ({"DB_PASSWORD": "from-the-environment"}, ["--db-password-file", str(secret)])
    assert settings.db_password == Secret("from-a-file")
    with pytest.raises(ConfigurationError, match="both --db-password and --db-password-file"):
        from_environ({}, ["--db-password", "x", "--db-password-file", str(secret)])


@pytest.mark.parametrize("argv", [["--db-pasword", "hunter22"], ["upgrade", "--db-pasword=hunter22"],
                                  ["--databse-url", "postgresql://u:hunter22@h/db"]])
def test_a_usage_error_does_not_echo_flag_values(argv):
    with pytest.raises(ConfigurationError) as raised:
        from_environ({}, argv)
    assert raised.value.exit_code == 2 and "hunter22" not in str(raised.value), str(raised.value)


def test_a_usage_error_still_names_a_mistyped_command():
    with pytest.raises(ConfigurationError, match="invalid choice: 'upgarde'"):
        from_environ({}, ["upgarde"])


# --- MIGRATE_* variables no setting reads ---------------------------------------------------------------------------

def test_a_misspelt_setting_is_named_with_the_setting_it_resembles():
    from alembic_sidecar.settings import unknown_variables

    found = unknown_variables({"MIGRATE_TARGTE": "abc", "MIGRATE_SOMETHING_ELSE": "1", "MIGRATE_TARGET": "head",
                               "DATABASE_URL_FILE": "/x", "MIGRATE_LOCK_TIMEOUT": "5", "PATH": "/bin"})
    assert found == [("MIGRATE_SOMETHING_ELSE", None), ("MIGRATE_TARGTE", "MIGRATE_TARGET")]


def test_every_setting_and_its_file_variant_is_known():
    from alembic_sidecar.settings import unknown_variables

    every = {option.env: "x" for option in OPTIONS} | {f"{o.env}_FILE": "x" for o in OPTIONS if o.from_file}
    assert unknown_variables(every) == []


def test_the_command_line_warns_of_a_misspelt_setting_in_one_event_without_its_value(tmp_path):
    import json
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "MIGRATE_VERSIONS_DIR": "image/examples/versions",
           "MIGRATE_ALLOW_DOWNGRDE": "secretvalue"}
    done = subprocess.run([sys.executable, "-m", "alembic_sidecar.cli", "heads"], env=env, capture_output=True,
                          text=True, timeout=60, cwd=__file__.rsplit("/tests/", 1)[0])
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines()]
    assert [event["event"] for event in events] == ["unknown_setting"]
    assert events[0]["variable"] == "MIGRATE_ALLOW_DOWNGRDE"
    assert "did you mean MIGRATE_ALLOW_DOWNGRADE?" in events[0]["hint"]
    assert "secretvalue" not in done.stderr + done.stdout
