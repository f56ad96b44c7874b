"""A fleet's list: every line checked before any work (exit 2 naming the line, never echoing it), the shard's
targets, and the exit code order that lets a Job tell "retry" from "stop"."""

import pytest

from alembic_sidecar import targets
from alembic_sidecar.errors import FLEET_ORDER, ConfigurationError, worst
from alembic_sidecar.settings import from_environ

pytestmark = pytest.mark.unit

SECRET = "Fleet-secret-pw-77"
PG = "postgresql://app@db.example:5432/app"


def listed(tmp_path, text: str, **environ: str) -> list[targets.Target]:
    path = tmp_path / "targets"
    path.write_text(text)
    return targets.read(from_environ({"MIGRATE_TARGETS_FILE": str(path), **environ}))


def refusal(tmp_path, text: str, **environ: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        listed(tmp_path, text, **environ)
    message = str(caught.value)
    assert SECRET not in message and "\n" not in message
    return message


def test_urls_schemas_and_databases_become_single_runs_labelled_without_passwords(tmp_path):
    found = listed(tmp_path, f"# tenants\n\n  schema=tenant_1  \ndatabase=tenant_2\n"
                             f"postgresql://app:{SECRET}@other.example/app3\nsqlite:////tmp/t4.db\n",
                   DATABASE_URL=PG)
    assert [target.line for target in found] == [3, 4, 5, 6]
    assert [target.label for target in found] == ["schema=tenant_1", "database=tenant_2",
                                                  "postgresql://app:***@other.example:5432/app3",
                                                  "sqlite:////tmp/t4.db"]
    schema, database, url, _ = (target.settings for target in found)
    assert (schema.target_schema, schema.version_table_schema, schema.targets_file) == ("tenant_1", "tenant_1", None)
    assert database.target_database == "tenant_2"
    assert url.database_url is not None and SECRET in url.database_url.reveal()


def test_database_targets_apply_to_the_db_settings_too(tmp_path):
    from alembic_sidecar import endpoint

    found = listed(tmp_path, "database=tenant_9\n", DB_DRIVER="mariadb", DB_HOST="db", DB_USER="root",
                   DB_NAME="mysql")
    assert endpoint.from_settings(found[0].settings).database == "tenant_9"


@pytest.mark.parametrize(("text", "environ", "words"), [
    ("schema=a\nschema=tenant-1\n", {"DATABASE_URL": PG}, ["line 2", "plain schema name"]),
    ("schema=a\n\nwhat is this\n", {"DATABASE_URL": PG}, ["line 3", "neither a database URL"]),
    (f"schema=a\npostgresql://app:{SECRET}@db:99999/app\n", {"DATABASE_URL": PG}, ["line 2", "port"]),
    (f"schema=a\noracle://app:{SECRET}@db/app\n", {"DATABASE_URL": PG}, ["line 2", "unsupported database kind"]),
    (f"mysql://app:{SECRET}@db/app?nonsense=1\n", {}, ["line 1", "nonsense"]),
    ("schema=a\nschema=a\n", {"DATABASE_URL": PG}, ["line 2 names the same target as line 1"]),
    ("schema=a\n", {}, ["line 1", "no database URL"]),
    ("schema=a\n", {"DATABASE_URL": "mariadb://root@db/app"}, ["line 1", "needs PostgreSQL"]),
    ("database=a\n", {"DATABASE_URL": "sqlite:///app.db"}, ["line 1", "full URL"]),
    ("database=a b\n", {"DATABASE_URL": PG}, ["line 1", "plain database name"]),
    ("schema=a\n", {"DATABASE_URL": PG, "MIGRATE_VERSION_TABLE_SCHEMA": "x"}, ["line 1",
                                                                               "MIGRATE_VERSION_TABLE_SCHEMA"]),
    ("# nothing\n\n", {"DATABASE_URL": PG}, ["lists no target"]),
])
def test_a_bad_list_is_refused_naming_its_line_and_never_its_secret(tmp_path, text, environ, words):
    message = refusal(tmp_path, text, **environ)
    for word in words:
        assert word in message, message


def test_an_unreadable_list_and_a_command_that_answers_for_one_database_are_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="cannot read MIGRATE_TARGETS_FILE"):
        targets.read(from_environ({"MIGRATE_TARGETS_FILE": str(tmp_path / "missing")}))
    (tmp_path / "targets").write_text("schema=a\n")
    with pytest.raises(ConfigurationError, match="works with upgrade and check, not current"):
        targets.read(from_environ({"MIGRATE_TARGETS_FILE": str(tmp_path / "targets"), "DATABASE_URL": PG},
                                  ["current"]))


@pytest.mark.parametrize(("shards", "index", "positions"), [(1, None, [0, 1, 2, 3, 4]), (2, 0, [0, 2, 4]),
                                                            (2, 1, [1, 3]), (3, 2, [2]), (7, 6, [])])
def test_a_shard_runs_the_targets_whose_position_modulo_the_shard_count_is_its_index(tmp_path, shards, index,
                                                                                      positions):
    environ = {"DATABASE_URL": PG, "MIGRATE_SHARDS": str(shards)}
    if index is not None:
        environ["JOB_COMPLETION_INDEX"] = str(index)
    found = listed(tmp_path, "".join(f"schema=s{n}\n" for n in range(5)), **environ)
    settings = from_environ({**environ, "MIGRATE_TARGETS_FILE": str(tmp_path / "targets")})
    assert [target.settings.target_schema for target in targets.shard(found, settings)] == \
        [f"s{n}" for n in positions]


@pytest.mark.parametrize(("environ", "words"), [({"MIGRATE_SHARDS": "3"}, "needs JOB_COMPLETION_INDEX"),
                                                ({"MIGRATE_SHARDS": "3", "JOB_COMPLETION_INDEX": "3"},
                                                 "is not below MIGRATE_SHARDS=3")])
def test_a_sharded_run_without_its_index_is_refused(tmp_path, environ, words):
    found = listed(tmp_path, "schema=a\n", DATABASE_URL=PG, **environ)
    with pytest.raises(ConfigurationError, match=words):
        targets.shard(found, from_environ({"DATABASE_URL": PG, **environ}))


def test_a_failure_that_needs_a_person_outranks_an_interruption_which_outranks_what_a_rerun_can_fix():
    assert worst([0, 3, 9, 1, 4]) == 1
    assert worst([0, 3, 143, 9]) == 143
    assert worst([3, 4, 9, 0]) == 9
    assert worst([0, 0]) == 0 and worst([]) == 0
    assert worst([5, 2]) == 2 and worst([42, 1]) == 70  # an unknown code counts as a bug
    assert FLEET_ORDER.index(143) < min(FLEET_ORDER.index(code) for code in (3, 4, 9))
    assert max(FLEET_ORDER.index(code) for code in (1, 2, 5, 6, 7)) < FLEET_ORDER.index(143)


def test_the_operations_page_and_help_show_the_fleet_events_sample(repo_root):
    from alembic_sidecar.settings import FLEET_SAMPLE, build_parser

    page, shown = (repo_root / "docs" / "operations.md").read_text(), build_parser().format_help()
    for line in FLEET_SAMPLE.splitlines():
        assert line in page and line in shown
