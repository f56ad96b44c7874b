"""The README's settings and exit-code tables are generated from the code; this keeps them in step."""

import os
import re

import pytest

from alembic_sidecar.errors import EXIT_CODES
from alembic_sidecar.settings import OPTIONS

pytestmark = pytest.mark.unit


def settings_table() -> str:
    rows = ["| environment variable | flag | default | meaning |", "|---|---|---|---|"]
    for option in OPTIONS:
        env = f"`{option.env}`" + (f" / `{option.env}_FILE`" if option.from_file else "")
        flag = "`upgrade TARGET`, `--target`" if option.field == "target" else f"`{option.cli_flag}`"
        if option.from_file:
            flag += f" / `{option.cli_flag}-file`"
        default = "" if option.default is None else f"`{_show(option.default)}`"
        rows.append(f"| {env} | {flag} | {default} | {option.help.replace('|', chr(92) + '|')} |")
    return "\n".join(rows)


def exit_code_table() -> str:
    rows = ["| exit code | meaning | what to do |", "|---|---|---|"]
    rows += [f"| {code} | {title} | {action} |" for code, title, action in EXIT_CODES]
    return "\n".join(rows)


def _show(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


TABLES = {"settings-table": settings_table, "exit-codes": exit_code_table}


@pytest.mark.parametrize("marker", sorted(TABLES))
def test_readme_table_matches_the_code(repo_root, marker):
    readme = repo_root / "README.md"
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- {marker}:start -->\n)(.*?)(<!-- {marker}:end -->)", re.S)
    match = pattern.search(text)
    assert match, f"README.md lacks the {marker} markers"
    expected = TABLES[marker]() + "\n"
    if os.environ.get("UPDATE_README") == "1":
        readme.write_text(pattern.sub(lambda m: m.group(1) + expected + m.group(3), text))
        return
    assert match.group(2) == expected, f"README {marker} is stale: run UPDATE_README=1 pytest {__file__}"
