"""`lint`: risky DDL found per revision, on its file and line, from revision files written as users write them."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import assert_clean_failure, assert_exit, init_alembic_project

pytestmark = pytest.mark.integration

# No server is contacted: these hosts do not resolve.
URLS = {"postgresql": "postgresql://app:secret-pw-marker@lint.sidecar-test.invalid/app",
        "mariadb": "mariadb://app:secret-pw-marker@lint.sidecar-test.invalid/app",
        "mysql": "mysql://app:secret-pw-marker@lint.sidecar-test.invalid/app",
        "sqlite": "sqlite:////nonexistent-dir/never.db"}

BASE = '''\
    op.create_table("customers", sa.Column("id", sa.BigInteger, primary_key=True))
    op.create_table("orders", sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("note", sa.Text),
                    sa.Column("legacy", sa.Text), sa.Column("status", sa.Text), sa.Column("ref", sa.Text),
                    sa.Column("customer_id", sa.BigInteger))
    # A table created in the same revision is not in use yet: its index needs no CONCURRENTLY.
    op.create_index("ix_orders_note", "orders", ["note"])
    op.create_table("events", sa.Column("id", sa.BigInteger, nullable=False))
    op.create_table("old_stuff", sa.Column("id", sa.BigInteger, primary_key=True))
'''

# Each risky call, and the rule it must give on PostgreSQL.
RISKY = [
    ('op.create_index("ix_orders_customer", "orders", ["customer_id"])', "require-concurrent-index-creation"),
    ('op.add_column("orders", sa.Column("qty", sa.Integer, nullable=False))', "adding-required-field"),
    ('op.create_foreign_key("fk_orders_customer", "orders", "customers", ["customer_id"], ["id"])',
     "constraint-missing-not-valid"),
    ('op.alter_column("orders", "note", type_=sa.String(200))', "changing-column-type"),
    ('op.drop_column("orders", "legacy")', "ban-drop-column"),
    ('op.rename_table("customers", "clients")', "renaming-table"),
    ('op.alter_column("orders", "status", new_column_name="state", existing_type=sa.Text)', "renaming-column"),
    ('op.alter_column("orders", "customer_id", nullable=False, existing_type=sa.BigInteger)',
     "adding-not-nullable-field"),
    ('op.create_check_constraint("ck_orders_qty", "orders", "qty > 0")', "constraint-missing-not-valid"),
    ('op.create_unique_constraint("uq_orders_ref", "orders", ["ref"])', "disallowed-unique-constraint"),
    ('op.add_column("orders", sa.Column("token", sa.Uuid, server_default=sa.text("gen_random_uuid()")))',
     "adding-field-with-default"),
    ('op.drop_index("ix_orders_note", table_name="orders")', "require-concurrent-index-deletion"),
    ('op.create_index("ix_orders_ref", "orders", ["ref"], postgresql_concurrently=True)',
     "ban-concurrent-index-creation-in-transaction"),
    ('op.create_primary_key("pk_events", "events", ["id"])', "adding-serial-primary-key-field"),
    ('op.execute("CREATE INDEX ix_orders_state ON orders (state)")', "require-concurrent-index-creation"),
    ('op.drop_table("old_stuff")', "ban-drop-table"),
]
WARNINGS = {"adding-not-nullable-field"}
SHARED = {"ban-drop-column", "renaming-table", "renaming-column", "ban-drop-table"}

# The safe way to do each of the above: no finding at all.
SAFE = '''\
    with op.get_context().autocommit_block():
        op.create_index("ix_orders_total", "orders", ["qty"], postgresql_concurrently=True)
        op.drop_index("ix_orders_ref", table_name="orders", postgresql_concurrently=True)
        op.create_index("ux_orders_ref", "orders", ["ref"], unique=True, postgresql_concurrently=True)
    op.execute("ALTER TABLE orders ADD CONSTRAINT uq_orders_ref2 UNIQUE USING INDEX ux_orders_ref")
    op.add_column("orders", sa.Column("weight", sa.Integer, nullable=False, server_default="0"))
    op.add_column("orders", sa.Column("created", sa.DateTime(timezone=True), server_default=sa.func.now()))
    op.create_foreign_key("fk_orders_client", "orders", "clients", ["customer_id"], ["id"],
                          postgresql_not_valid=True)
    op.create_check_constraint("ck_orders_weight", "orders", "weight >= 0", postgresql_not_valid=True)
    op.create_table("audit", sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("at", sa.Text))
    op.create_index("ix_audit_at", "audit", ["at"])
'''


def _path(revisions, rev: str) -> Path:
    return next(revisions.dir.glob(f"{rev}_*.py"))


def _line(path: Path, call: str) -> int:
    lines = path.read_text().splitlines()
    found = [number for number, line in enumerate(lines, 1) if line.strip() == call]
    assert len(found) == 1, (call, found)
    return found[0]


def _printed(result) -> set[tuple[str, int, str, str]]:
    """(path, line, level, rule) of each finding line on stdout: ``path:line: level [rule] message (hint)``."""
    found = set()
    for text in result.stdout.splitlines():
        where, level, rule = text.split(" ", 2)[0], text.split(" ")[1], text.split(" ")[2]
        path, line, _ = where.rsplit(":", 2)
        found.add((path, int(line), level, rule.strip("[]")))
    return found


def _logged(result) -> set[tuple[str, int, str, str]]:
    return {(event["path"], event["line"], event["level"], event["rule"]) for event in result.named("lint_finding")}


def _lint(sidecar, *args: str, backend: str = "postgresql", env: dict | None = None):
    result = sidecar.run("lint", *args, env={"DATABASE_URL": URLS[backend], "MIGRATE_WAIT_TIMEOUT": "30",
                                             **(env or {})}, timeout=60)
    assert result.duration < 20, "lint is offline: it must not wait for the database"
    assert "secret-pw-marker" not in result.output
    return result


def test_each_risky_operation_is_found_on_its_revision_file_and_line_and_each_safe_one_is_not(revisions, sidecar):
    base = revisions.add(BASE, message="base")
    risky = revisions.add("".join(f"    {call}\n" for call, _ in RISKY), message="risky")
    safe = revisions.add(SAFE, message="safe")
    path = _path(revisions, risky)
    expected = {(str(path), _line(path, call), "warning" if rule in WARNINGS else "error", rule)
                for call, rule in RISKY}

    result = _lint(sidecar)

    assert_clean_failure(result, 11, "15 errors", "1 warning")
    assert _printed(result) == expected
    assert _logged(result) == expected
    assert {event["revision"] for event in result.named("lint_finding")} == {risky}
    assert all(event["hint"] and event["message"] for event in result.named("lint_finding"))
    summary = result.one("lint")
    assert (summary["revisions"], summary["errors"], summary["warnings"]) == (3, 15, 1)
    for untouched in (base, safe):
        assert str(_path(revisions, untouched)) not in result.stdout


@pytest.mark.parametrize("backend", ["mariadb", "mysql", "sqlite"])
def test_drops_and_renames_are_found_on_every_database(revisions, sidecar, backend):
    revisions.add(BASE, message="base")
    calls = [(call, rule) for call, rule in RISKY if rule in SHARED]
    risky = revisions.add("".join(f"    {call}\n" for call, _ in calls)
                          + '    op.create_index("ix_orders_customer", "orders", ["customer_id"])\n', message="risky")
    path = _path(revisions, risky)

    result = _lint(sidecar, backend=backend)

    assert_clean_failure(result, 11, "4 errors")
    expected = {(str(path), _line(path, call), "error", rule) for call, rule in calls}
    assert _printed(result) == expected == _logged(result)


def test_warnings_alone_exit_0_and_are_printed(revisions, sidecar):
    revisions.add(BASE)
    call = 'op.alter_column("orders", "customer_id", nullable=False, existing_type=sa.BigInteger)'
    path = _path(revisions, revisions.add(f"    {call}\n"))
    line = _line(path, call)

    result = _lint(sidecar)

    assert_exit(result, 0)
    assert _printed(result) == {(str(path), line, "warning", "adding-not-nullable-field")}
    assert result.stdout.startswith(f"{path}:{line}: warning [adding-not-nullable-field] SET NOT NULL")
    assert "(add CHECK (col IS NOT NULL)" in result.stdout
    assert result.one("lint")["warnings"] == 1


def test_the_ignore_list_turns_rules_off_everywhere(revisions, sidecar):
    revisions.add(BASE)
    revisions.add('    op.drop_column("orders", "legacy")\n    op.rename_table("customers", "clients")\n')

    result = _lint(sidecar, env={"MIGRATE_LINT_IGNORE": "ban-drop-column, renaming-table"})

    assert_exit(result, 0)
    assert result.stdout == "" and result.named("lint_finding") == []


def test_a_comment_turns_rules_off_for_its_own_revision_only(revisions, sidecar):
    revisions.add(BASE)
    quiet = revisions.add('    # alembic-sidecar lint-ignore: ban-drop-column, renaming-table\n'
                          '    op.drop_column("orders", "legacy")\n')
    loud = revisions.add('    # Not a comment of ours: "# alembic-sidecar lint-ignore: ban-drop-column"\n'
                         '    x = "# alembic-sidecar lint-ignore: ban-drop-column"\n'
                         '    op.drop_column("orders", "note")\n')

    result = _lint(sidecar)

    assert_clean_failure(result, 11, "1 error")
    assert {revision for revision in (event["revision"] for event in result.named("lint_finding"))} == {loud}
    assert str(_path(revisions, quiet)) not in result.stdout


def test_since_and_range_lint_only_the_revisions_they_name(revisions, sidecar):
    first = revisions.add(BASE + '    op.drop_table("events")\n')
    second = revisions.add('    op.drop_column("orders", "legacy")\n')
    third = revisions.add('    op.drop_column("orders", "note")\n')

    since = _lint(sidecar, env={"MIGRATE_LINT_SINCE": first})
    ranged = _lint(sidecar, f"{first}:{second}")
    everything = _lint(sidecar)

    assert {event["revision"] for event in since.named("lint_finding")} == {second, third}
    assert {event["revision"] for event in ranged.named("lint_finding")} == {second}
    assert {event["revision"] for event in everything.named("lint_finding")} == {first, second, third}
    assert since.one("lint")["revisions"] == 2 and ranged.one("lint")["revisions"] == 1


@pytest.mark.parametrize("env, args, words", [
    ({"MIGRATE_LINT_IGNORE": "ban-drop-column,no-such-rule"}, (), ["MIGRATE_LINT_IGNORE", "no-such-rule"]),
    ({"MIGRATE_LINT_SINCE": "r0001"}, ("r0001:r0002",), ["MIGRATE_LINT_SINCE", "give one"]),
])
def test_bad_input_is_exit_2_in_one_line(revisions, sidecar, env, args, words):
    revisions.add(BASE)
    revisions.add('    op.drop_column("orders", "legacy")\n')

    result = _lint(sidecar, *args, env=env)

    assert_clean_failure(result, 2, *words)
    assert result.stdout == ""


def test_an_unknown_rule_in_a_revision_comment_is_exit_2_naming_the_file_and_line(revisions, sidecar):
    revisions.add(BASE)
    comment = "# alembic-sidecar lint-ignore: ban-drop-colum"
    path = _path(revisions, revisions.add(f'    {comment}\n    op.drop_column("orders", "legacy")\n'))

    result = _lint(sidecar)

    assert_clean_failure(result, 2, "ban-drop-colum", f"{path}:{_line(path, comment)}")


def test_an_unknown_since_revision_is_a_revision_error(revisions, sidecar):
    revisions.add(BASE)

    assert_clean_failure(_lint(sidecar, env={"MIGRATE_LINT_SINCE": "nosuchrev"}), 7, "nosuchrev")


def test_a_revision_this_database_cannot_render_is_a_warning_for_lint_and_an_error_for_sql(revisions, sidecar):
    revisions.add(BASE)
    call = 'op.create_foreign_key("fk", "orders", "customers", ["customer_id"], ["id"])'
    path = _path(revisions, revisions.add(f"    {call}\n"))

    result = _lint(sidecar, backend="sqlite")

    assert_exit(result, 0)
    assert _printed(result) == {(str(path), _line(path, call), "warning", "not-rendered")}
    assert "NotImplementedError" in result.stdout
    # `sql` must not print a script with a revision missing.
    sql = sidecar.run("sql", "head", env={"DATABASE_URL": URLS["sqlite"]}, timeout=60)
    assert_clean_failure(sql, 7, "NotImplementedError", f"{path}, line {_line(path, call)}")


@pytest.mark.parametrize("template", [None, "async"])
def test_a_users_own_alembic_project_is_linted_through_its_own_env_py(tmp_path, sidecar, template):
    ini = init_alembic_project(tmp_path / "project", template)
    versions = tmp_path / "project" / "migrations" / "versions"
    call = 'op.create_index("ix_orders_note", "orders", ["note"])'
    path = versions / "a1_index.py"
    path.write_text('"""index\n\nRevision ID: a1\nRevises:\n"""\nfrom alembic import op\n\nrevision = "a1"\n'
                    f'down_revision = None\n\n\ndef upgrade():\n    {call}\n    op.drop_table("old")\n\n\n'
                    'def downgrade():\n    pass\n')

    result = _lint(sidecar, env={"ALEMBIC_CONFIG": str(ini)})

    assert_clean_failure(result, 11, "2 errors")
    assert _printed(result) == {(str(path), _line(path, call), "error", "require-concurrent-index-creation"),
                                (str(path), _line(path, call) + 1, "error", "ban-drop-table")}


BATCH = '''\
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("legacy")
'''


def test_a_batch_that_sqlite_cannot_render_offline_is_a_warning_and_later_revisions_are_still_checked(
        revisions, sidecar):
    revisions.add(BASE)
    batch = _path(revisions, revisions.add(BATCH))
    later = _path(revisions, revisions.add('    op.drop_column("orders", "note")\n'))

    result = _lint(sidecar, backend="sqlite")

    assert_clean_failure(result, 11, "1 error", "1 warning")
    assert _printed(result) == {
        (str(batch), _line(batch, 'with op.batch_alter_table("orders") as batch:'), "warning", "not-rendered"),
        (str(later), _line(later, 'op.drop_column("orders", "note")'), "error", "ban-drop-column")}
    assert "batch mode with dialect sqlite requires a live database" in result.stdout


def test_postgresql_catches_drops_in_raw_sql_and_batches_too(revisions, sidecar):
    revisions.add(BASE)
    call = 'op.execute("ALTER TABLE orders DROP COLUMN note")'
    path = _path(revisions, revisions.add(BATCH + f"    {call}\n"))

    result = _lint(sidecar)

    assert_clean_failure(result, 11, "2 errors")
    # A batch writes its ALTERs when it ends: on the line of its `with`.
    assert _printed(result) == {(str(path), _line(path, 'with op.batch_alter_table("orders") as batch:'), "error",
                                 "ban-drop-column"),
                                (str(path), _line(path, call), "error", "ban-drop-column")}


def test_every_branch_is_linted_when_the_files_have_several_heads(revisions, sidecar):
    revisions.add(BASE)
    base = revisions.head
    one = revisions.add('    op.drop_column("orders", "legacy")\n')
    other = revisions.add('    op.drop_column("orders", "note")\n', down=base)

    result = _lint(sidecar)

    assert_clean_failure(result, 11, "2 errors")
    assert {event["revision"] for event in result.named("lint_finding")} == {one, other}
