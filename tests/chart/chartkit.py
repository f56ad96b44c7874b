"""Load, build and render the charts through Helm's own Go engine (helm-python-sdk), and pick objects apart."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import helm_python as helm
from helm_python import _native
import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "helm" / "alembic-sidecar"
EXAMPLE_DIR = REPO / "helm" / "examples" / "example-app"
CI_VALUES = sorted((CHART_DIR / "ci").glob("*.yaml"))
RELEASE, NAMESPACE = "shop", "apps"
#: The newest Kubernetes minor kubernetes-validate ships schemas for.
KUBE_VERSION = kubernetes_validate.latest_version()
#: Every Kubernetes minor kubernetes-validate ships schemas for, oldest first ("1.25", "1.26", ...).
SCHEMA_MINORS = list(dict.fromkeys(".".join(v.split(".")[:2]) for v in all_versions()))


def minor_key(minor: str) -> tuple[int, int]:
    major, number = minor.split(".")
    return int(major), int(number)


def kube_floor(chart_dir: Path) -> str:
    """The oldest Kubernetes minor a chart's ``kubeVersion: ">=X.Y..."`` admits."""
    constraint = yaml.safe_load((chart_dir / "Chart.yaml").read_text()).get("kubeVersion")
    assert constraint, f"{chart_dir.name}: Chart.yaml declares no kubeVersion"
    match = re.fullmatch(r">=\s*v?(\d+)\.(\d+)(\.\d+)?(-0)?", constraint.strip())
    assert match, f"{chart_dir.name}: kubeVersion {constraint!r} is not a plain lower bound"
    return f"{match[1]}.{match[2]}"


def minors_from(floor: str) -> list[str]:
    """The minors from ``floor`` to the newest with schemas; the floor itself must have schemas."""
    assert floor in SCHEMA_MINORS, f"kubernetes-validate has no schemas for {floor} (it has {SCHEMA_MINORS})"
    return [m for m in SCHEMA_MINORS if minor_key(m) >= minor_key(floor)]


def schema_errors(obj: dict[str, Any], minors: Iterable[str]) -> list[str]:
    """Why ``obj`` fails the strict schema of each of ``minors`` ("1.29: spec.x: message"); empty when it passes."""
    errors = []
    for minor in minors:
        try:
            used = kubernetes_validate.validate(obj, minor, strict=True)
        except kubernetes_validate.ValidationError as error:
            errors.append(f"{minor}: {'.'.join(str(p) for p in error.path)}: {error.message}")
        else:
            assert used == minor, f"asked for the {minor} schemas, kubernetes-validate used {used}'s"
    return errors


def ci_values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def render(chart: str | Path | helm.Chart, values: dict[str, Any] | None = None, *,
           revision: int = 1, kube_version: str | None = None) -> list[dict[str, Any]]:
    """Every object the chart renders for ``values`` (NOTES.txt and empty documents left out).

    ``kube_version`` is what ``.Capabilities.KubeVersion`` reports, as ``helm template --kube-version`` sets it: a
    minor ("1.32" means v1.32.0) or a whole version ("v1.33.2-eks-4b2f"); None leaves Helm's default.
    """
    owned = not isinstance(chart, helm.Chart)
    loaded = helm.Chart.load(chart) if owned else chart
    options: dict[str, Any] = {"name": RELEASE, "namespace": NAMESPACE, "revision": revision,
                               "is_install": revision == 1, "is_upgrade": revision > 1}
    if kube_version is not None:
        options["kube_version"] = kube_version if kube_version.startswith("v") else f"v{kube_version}.0"
    try:
        # Chart.render (helm-python-sdk 0.2.2) does not pass kube_version on, though the library's render takes it.
        manifests = json.loads(_native.call_string("helm_render", loaded._raw(), json.dumps(values or {}),
                                                   json.dumps(options)))
    finally:
        if owned:
            loaded.close()
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects


def only(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one object of ``kind``; fails when there are none or several."""
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def kinds(objects: Iterable[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def pod_spec(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    return only(objects, kind)["spec"]["template"]["spec"]


def build_example(destination: Path, revisions_dir: Path | None = None) -> Path:
    """A copy of helm/ under ``destination`` with the example app's dependency vendored into its charts/.

    Helm resolves ``file://../../alembic-sidecar`` and packages it exactly as ``helm dependency update`` does;
    with ``revisions_dir`` the example ships those revision files instead of the bundled examples.
    """
    root = destination / "helm"
    shutil.copytree(REPO / "helm", root, ignore=shutil.ignore_patterns("charts", "Chart.lock"))  # follows symlinks
    example = root / "examples" / EXAMPLE_DIR.name
    if revisions_dir is not None:
        shutil.rmtree(example / "migrations")
        shutil.copytree(revisions_dir, example / "migrations")
    helm.dependency_update(example)
    return example


def values_rows(schema: dict[str, Any], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(key, type, default, description) for every value, depth first, from values.schema.json."""
    rows = []
    for key, node in schema["properties"].items():
        path = prefix + key
        kind = node["type"] if isinstance(node["type"], str) else " or ".join(node["type"])
        if "properties" in node:
            rows += values_rows(node, path + ".")
        else:
            description = node["description"]
            if "enum" in node:
                description += " One of: " + ", ".join(f"`{v}`" if v else '`""`' for v in node["enum"]) + "."
            rows.append((path, kind, json.dumps(node["default"]), description))
    return rows


def values_table(schema: dict[str, Any]) -> str:
    """The README's values table: one row per leaf of values.schema.json."""
    lines = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, kind, default, description in values_rows(schema):
        default = default.replace("|", "\\|")
        lines.append(f"| `{key}` | {kind} | `{default}` | {description.replace('|', chr(92) + '|')} |")
    return "\n".join(lines)


if __name__ == "__main__":  # python -m tests.chart.chartkit: print the values table for the chart README
    print(values_table(json.loads((CHART_DIR / "values.schema.json").read_text())))
