"""`lint`'s pieces without a revision directory: rule names, the revision comment, squawk's mapping, the line."""

from __future__ import annotations

import os

import pytest

from alembic_sidecar import linting
from alembic_sidecar.databases import squawk
from alembic_sidecar.errors import ConfigurationError
from alembic_sidecar.findings import Finding, as_line

pytestmark = pytest.mark.unit


def test_every_rule_has_a_unique_name_a_level_and_one_line_of_what_and_instead():
    rules = [*linting.SHARED_RULES, *squawk.RULES]
    assert len({rule.name for rule in rules}) == len(rules)
    for rule in rules:
        assert rule.level in ("error", "warning")
        assert rule.what and rule.instead and "\n" not in rule.what + rule.instead


def test_unknown_rule_names_are_refused_naming_them_and_where():
    with pytest.raises(ConfigurationError, match=r"^MIGRATE_LINT_IGNORE names unknown lint rules nope, zilch:"):
        linting.check_names(["ban-drop-column", "zilch", "nope"], "MIGRATE_LINT_IGNORE")
    assert linting.check_names(["ban-drop-column", "changing-column-type"], "x") == {
        "ban-drop-column", "changing-column-type"}


def test_only_a_real_comment_turns_rules_off(tmp_path):
    path = tmp_path / "r1.py"
    path.write_text('x = "# alembic-sidecar lint-ignore: renaming-table"\n'
                    "def upgrade():\n"
                    "    op.drop_column('t', 'c')  # alembic-sidecar lint-ignore: ban-drop-column,ban-drop-table\n")
    assert linting.ignored_in_file(str(path)) == {"ban-drop-column", "ban-drop-table"}


def test_squawk_findings_land_on_the_statement_that_caused_them_and_unique_wins_over_not_valid():
    # As Alembic writes them: terminated, some over several lines.
    first = ["CREATE TABLE t (\n    id bigint\n);", "CREATE INDEX ix ON t (id);", "CREATE INDEX iy ON u (id);",
             "ALTER TABLE u\n    ADD CONSTRAINT uq UNIQUE (a);"]
    second = ["CREATE INDEX iz ON t (id);"]
    assert squawk.lint([first, second, []]) == [
        {(2, "require-concurrent-index-creation"), (3, "disallowed-unique-constraint")},
        {(0, "require-concurrent-index-creation")}, set()]


def test_a_finding_reads_as_a_linter_line_with_the_path_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inside = Finding("ban-drop-column", "error", "drops a column", "do it later", "r1",
                     str(tmp_path / "versions" / "r1.py"), 7)
    outside = Finding("renaming-table", "warning", "renames", "", "r2", "/elsewhere/r2.py", 3)
    assert as_line(inside) == f"versions{os.sep}r1.py:7: error [ban-drop-column] drops a column (do it later)"
    assert as_line(outside) == "/elsewhere/r2.py:3: warning [renaming-table] renames"


def test_a_statement_squawk_cannot_parse_is_an_error_since_its_revision_goes_unchecked():
    # squawk checks nothing else in that input: the plain CREATE INDEX before it goes unreported.
    assert squawk.lint([["CREATE INDEX ix ON t (id);", "SELECT (;"], ["CREATE INDEX iy ON t (id);"]]) == [
        {(1, "syntax-error")}, {(0, "require-concurrent-index-creation")}]
    assert {rule.name: rule.level for rule in squawk.RULES}["syntax-error"] == "error"


def rules_table() -> str:
    shared = {rule.name for rule in linting.SHARED_RULES}
    rows = ["| rule | level | databases | what it catches | do this instead |", "|---|---|---|---|---|"]
    rows += [f"| `{rule.name}` | {rule.level} | {'all' if rule.name in shared else 'PostgreSQL'} | {rule.what} | "
             f"{rule.instead} |" for rule in [*linting.SHARED_RULES, *squawk.RULES]]
    return "\n".join(rows) + "\n"


def test_the_reference_lists_every_rule_as_the_code_declares_it(repo_root):
    import re

    path = repo_root / "docs" / "reference.md"
    text = path.read_text()
    pattern = re.compile(r"(<!-- lint-rules:start -->\n)(.*?)(<!-- lint-rules:end -->)", re.S)
    match = pattern.search(text)
    assert match, "docs/reference.md lacks the lint-rules markers"
    if os.environ.get("UPDATE_README") == "1":
        path.write_text(pattern.sub(lambda m: m.group(1) + rules_table() + m.group(3), text))
        return
    assert match.group(2) == rules_table(), f"the rules table is stale: run UPDATE_README=1 pytest {__file__}"


def _run_lint(tmp_path, upgrade: str):
    import asyncio

    from alembic_sidecar.runner import Runner
    from alembic_sidecar.settings import from_environ

    versions = tmp_path / "versions"
    versions.mkdir()
    header = 'import sqlalchemy as sa\nfrom alembic import op\n\nrevision = "{rev}"\ndown_revision = {down}\n\n\n'
    (versions / "a1_base.py").write_text(header.format(rev="a1", down=None) + "def upgrade():\n    op.create_table("
                                         '"t", sa.Column("id", sa.BigInteger, primary_key=True), sa.Column("c", '
                                         'sa.Text))\n')
    path = versions / "b2_change.py"
    path.write_text(header.format(rev="b2", down='"a1"') + f"def upgrade():\n    {upgrade}\n")
    settings = from_environ({"DB_DRIVER": "postgresql", "MIGRATE_VERSIONS_DIR": str(versions)}, ["lint"])
    line = path.read_text().splitlines().index(f"    {upgrade}") + 1
    return path, line, lambda: asyncio.run(Runner(settings).run())


def test_a_passing_lint_carries_its_warnings_as_findings_for_the_ci_reports(tmp_path):
    path, line, run = _run_lint(tmp_path, 'op.alter_column("t", "c", nullable=False, existing_type=sa.Text)')
    result = run()
    assert [(f.rule, f.level, f.revision, f.path, f.line) for f in result.findings] == [
        ("adding-not-nullable-field", "warning", "b2", str(path), line)]
    assert result.output == [as_line(result.findings[0])]


def test_an_error_finding_is_a_risky_migration_exit_11_carrying_every_finding(tmp_path):
    from alembic_sidecar.errors import RiskyMigration

    path, line, run = _run_lint(tmp_path, 'op.drop_column("t", "c")')
    with pytest.raises(RiskyMigration) as raised:
        run()
    assert raised.value.exit_code == 11
    assert [(f.rule, f.level, f.path, f.line) for f in raised.value.findings] == [
        ("ban-drop-column", "error", str(path), line)]
