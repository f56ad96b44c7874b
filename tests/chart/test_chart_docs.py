"""The chart's documentation agrees with the chart: values.yaml comments, the README's values and exit-code tables."""

from __future__ import annotations

import json
import re

import pytest

from alembic_sidecar.errors import EXIT_CODES
from tests.chart.chartkit import CHART_DIR, values_rows, values_table

pytestmark = pytest.mark.chart

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
README = (CHART_DIR / "README.md").read_text()
KEY_LINE = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z][A-Za-z0-9]*):")


def documented_paths(schema, prefix=""):
    """Every key the chart defines: leaves and the structured objects holding them (not free-form Kubernetes)."""
    paths = set()
    for key, node in schema["properties"].items():
        paths.add(prefix + key)
        if "properties" in node:
            paths |= documented_paths(node, prefix + key + ".")
    return paths


def test_readme_values_table_matches_the_schema():
    block = re.search(r"<!-- values-table:start -->\n(.*?)\n<!-- values-table:end -->", README, re.S)
    assert block, "README lacks the values-table markers"
    assert block.group(1) == values_table(SCHEMA), "regenerate it: python -m tests.chart.chartkit"


def test_every_value_is_in_the_readme_table():
    keys = {row[0] for row in values_rows(SCHEMA)}
    assert {"database.existingSecret", "migration.lockTimeout", "job.mode", "job.argocd.hook", "revisions.source",
            "image.registry", "global.imageRegistry"} <= keys
    for key in keys:
        assert f"| `{key}` |" in README


def test_every_key_in_values_yaml_has_a_comment_that_starts_with_its_name():
    wanted = documented_paths(SCHEMA)
    stack: list[tuple[int, str]] = []
    seen = set()
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    for number, line in enumerate(lines):
        match = KEY_LINE.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = ".".join([k for _, k in stack] + [match["key"]])
        stack.append((indent, match["key"]))
        if path not in wanted:
            continue
        seen.add(path)
        above = number - 1
        while above >= 0 and lines[above].lstrip().startswith("#") and not lines[above].lstrip().startswith(
                f"# {match['key']}"):
            above -= 1  # a comment may run over several lines; find its first one
        assert above >= 0 and lines[above].strip().startswith(f"# {match['key']}"), f"{path}: no comment"
    assert seen == wanted


def test_readme_explains_every_exit_code():
    table = README.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for row in re.findall(r"^\| ([0-9, ]+) \|", table, re.M):
        documented |= {int(code) for code in row.split(",")}
    assert documented == {code for code, _, _ in EXIT_CODES}


def test_readme_explains_each_job_mode_and_its_tool():
    section = README.split("## Helm, Argo CD, Flux (`job.mode`)", 1)[1].split("\n## ", 1)[0]
    modes = SCHEMA["properties"]["job"]["properties"]["mode"]["enum"]
    assert all(f"| `{mode}`" in section for mode in modes)
    for cited in ("apache/airflow#11979", "formbricks/hub#27", "alphagov/govuk-helm-charts#510", "helm#9864",
                  "argo-cd#15968", "--wait", "**Argo CD**", "**Flux**", "**Plain Helm.**", "**The hashed name.**"):
        assert cited in section, cited
