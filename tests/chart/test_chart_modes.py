"""job.mode through Helm's engine: each mode's objects, Job name and annotations on every Kubernetes minor claimed."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.chart.chartkit import (
    CHART_DIR, CI_VALUES, ci_values, kinds, kube_floor, minors_from, only, render, schema_errors,
)

pytestmark = pytest.mark.chart

MINORS = minors_from(kube_floor(CHART_DIR))
VALUE_SETS = {"defaults": {}} | {p.stem: ci_values(p) for p in CI_VALUES}
#: A release that renders every object the chart can: its own Secret (a literal URL) and a ServiceAccount.
EVERYTHING = {"database": {"url": "postgresql://app:pw@postgres:5432/app"}, "serviceAccount": {"create": True}}
HOOK, WEIGHT, HOOK_DELETE = "helm.sh/hook", "helm.sh/hook-weight", "helm.sh/hook-delete-policy"
ARGO_HOOK, WAVE = "argocd.argoproj.io/hook", "argocd.argoproj.io/sync-wave"
ARGO_DELETE = "argocd.argoproj.io/hook-delete-policy"
#: job values of each mode, and the annotations it must give the Job and the chart's Secret and ServiceAccount.
MODES: dict[str, tuple[dict[str, Any], dict[str, str], dict[str, str]]] = {
    "plain": ({"mode": "plain"}, {}, {}),
    "helm-hook": (
        {"mode": "helm-hook", "hookWeight": 3},
        {HOOK: "pre-install,pre-upgrade", WEIGHT: "3", HOOK_DELETE: "before-hook-creation,hook-succeeded"},
        {HOOK: "pre-install,pre-upgrade", WEIGHT: "2", HOOK_DELETE: "before-hook-creation"}),
    "argocd": ({"mode": "argocd"}, {WAVE: "-1"}, {WAVE: "-2"}),
    "argocd PreSync": (
        {"mode": "argocd", "argocd": {"hook": "PreSync", "syncWave": 5}},
        {ARGO_HOOK: "PreSync", WAVE: "5", ARGO_DELETE: "BeforeHookCreation"},
        {ARGO_HOOK: "PreSync", WAVE: "4", ARGO_DELETE: "BeforeHookCreation"}),
    "argocd Sync": (
        {"mode": "argocd", "argocd": {"hook": "Sync", "hookDeletePolicy": "HookSucceeded"}},
        {ARGO_HOOK: "Sync", WAVE: "-1", ARGO_DELETE: "HookSucceeded"},
        {WAVE: "-2"}),
}
HASHED_NAME = re.compile(r"shop-alembic-sidecar-[0-9a-f]{8}")
#: Helm's install order (pkg/release/util/kind_sorter.go) for the kinds this chart renders; `helm template` prints
#: in this order too, so `kubectl apply -f` and Flux's helm-controller create them in it.
HELM_KIND_ORDER = ["ServiceAccount", "Secret", "ConfigMap", "Job"]


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj["metadata"].get("annotations", {})


def helm_order(obj: dict[str, Any]) -> tuple[int, int, int]:
    """When Helm creates ``obj`` on install: pre-install hooks first by weight, then the rest by kind."""
    found = annotations(obj)
    if HOOK in found:
        return 0, int(found[WEIGHT]), 0
    return 1, 0, HELM_KIND_ORDER.index(obj["kind"])


def argocd_order(obj: dict[str, Any]) -> tuple[int, int]:
    """When Argo CD applies ``obj``: by phase (PreSync before Sync, where ordinary resources are), then by wave."""
    found = annotations(obj)
    return {"PreSync": 0, "Sync": 1}[found.get(ARGO_HOOK, "Sync")], int(found.get(WAVE, "0"))


def job_values(mode: str) -> dict[str, Any]:
    return EVERYTHING | {"job": MODES[mode][0]}


@pytest.mark.parametrize("minor", MINORS)
@pytest.mark.parametrize("mode", MODES)
def test_each_mode_renders_its_objects_and_annotations_on_every_claimed_minor(chart, mode, minor):
    objects = render(chart, job_values(mode), kube_version=minor)
    _, job_annotations, earlier_annotations = MODES[mode]
    assert kinds(objects) == ["Job", "Secret", "ServiceAccount"]
    assert {o["kind"]: annotations(o) for o in objects} == {
        "Job": job_annotations, "Secret": earlier_annotations, "ServiceAccount": earlier_annotations}
    name = only(objects, "Job")["metadata"]["name"]
    if HOOK in job_annotations or ARGO_HOOK in job_annotations:
        assert name == "shop-alembic-sidecar", "a hook keeps one name: its delete policy replaces it"
    else:
        assert HASHED_NAME.fullmatch(name), name
    assert [f"{o['kind']}: {e}" for o in objects for e in schema_errors(o, [minor])] == []


@pytest.mark.parametrize("mode", MODES)
def test_the_charts_secret_and_service_account_exist_before_the_job_in_every_mode(chart, mode):
    # formbricks/hub#27: an Argo CD PreSync Job ran before the chart's ordinary Secret existed.
    order = argocd_order if mode.startswith("argocd") else helm_order
    objects = render(chart, job_values(mode))
    job = order(only(objects, "Job"))
    for kind in ("Secret", "ServiceAccount"):
        assert order(only(objects, kind)) < job, kind


@pytest.mark.parametrize("name", VALUE_SETS)
def test_each_value_set_carries_only_its_own_modes_annotations(chart, name):
    values = VALUE_SETS[name]
    mode = values.get("job", {}).get("mode", "plain")
    objects = render(chart, values)
    keys = {key for o in objects for key in annotations(o)}
    assert any(key.startswith("helm.sh/") for key in keys) == (mode == "helm-hook" and "Job" in kinds(objects))
    assert any(key.startswith("argocd.argoproj.io/") for key in keys) == (mode == "argocd")
    order = argocd_order if mode == "argocd" else helm_order
    for obj in objects:
        if obj["kind"] != "Job" and "Job" in kinds(objects):
            assert order(obj) < order(only(objects, "Job")), f"{name}: {obj['kind']}"


def test_plain_is_the_default_mode_and_hooks_are_off(chart):
    assert chart.values["job"]["mode"] == "plain"
    assert annotations(only(render(chart), "Job")) == {}


def test_the_modes_own_annotations_win_over_job_annotations(chart):
    values = {"commonAnnotations": {"owner": "payments", WAVE: "9"},
              "job": {"mode": "argocd", "annotations": {WAVE: "7", "team": "db"}}}
    assert annotations(only(render(chart, values), "Job")) == {WAVE: "-1", "team": "db", "owner": "payments"}


def job_name(chart, values: dict[str, Any], **kwargs: Any) -> str:
    return only(render(chart, values, **kwargs), "Job")["metadata"]["name"]


@pytest.mark.parametrize("mode", ["plain", "argocd"])
def test_a_hookless_job_keeps_its_name_when_nothing_it_runs_changes(chart, mode):
    # Argo CD renders every sync as revision 1 and Helm counts up: neither may rename (and so rerun) the Job.
    values = {"job": {"mode": mode}, "serviceAccount": {"annotations": {"x": "y"}}}
    names = {job_name(chart, values, revision=revision, kube_version=minor)
             for revision in (1, 2, 17) for minor in (MINORS[0], MINORS[-1])}
    names.add(job_name(chart, values | {"job": {"mode": mode, "annotations": {"note": "metadata only"}}}))
    assert len(names) == 1 and HASHED_NAME.fullmatch(names.pop())


def test_plain_and_hookless_argocd_name_the_same_job(chart):
    # Moving a release from Flux or a pipeline to Argo CD (or back) does not rerun its migration.
    assert job_name(chart, {"job": {"mode": "plain"}}) == job_name(chart, {"job": {"mode": "argocd"}})


CHANGES = {
    "image tag": {"image": {"tag": "0.1.1"}},
    "image digest": {"image": {"digest": "sha256:" + "ab" * 32}},
    "revisions source": {"revisions": {"source": "configMap", "configMap": "shop-revisions"}},
    "revisions ConfigMap": {"revisions": {"source": "configMap", "configMap": "shop-revisions-v2"}},
    "command": {"command": "check"},
    "target": {"migration": {"target": "0003"}},
    "a timeout": {"migration": {"lockTimeout": 301}},
    "extra environment": {"extraEnv": [{"name": "MIGRATE_PYTHONPATH", "value": "/app"}]},
    "a pod annotation (a checksum of the revision files)": {"podAnnotations": {"checksum/revisions": "1f2e"}},
    "the Job's deadline": {"job": {"activeDeadlineSeconds": 1200}},
}


def test_a_hookless_jobs_name_changes_with_what_it_runs(chart):
    # alphagov/govuk-helm-charts#510: a changed Job template under one name fails with "field is immutable".
    names = {case: job_name(chart, values) for case, values in CHANGES.items()} | {"defaults": job_name(chart, {})}
    assert len(set(names.values())) == len(names), names
    assert all(HASHED_NAME.fullmatch(name) for name in names.values())


def test_a_hashed_job_name_fits_a_label_value(chart):
    # The Job controller puts the name in its pods' job-name label, which holds 63 characters.
    name = job_name(chart, {"fullnameOverride": "m" * 63})
    assert name == "m" * 54 + name[-9:] and len(name) == 63 and re.fullmatch(r"-[0-9a-f]{8}", name[-9:])


def test_a_hook_job_keeps_one_name_across_upgrades(chart):
    for mode in ("helm-hook", "argocd PreSync", "argocd Sync"):
        values = {"job": MODES[mode][0]}
        assert {job_name(chart, values, revision=r) for r in (1, 2)} | {
            job_name(chart, values | {"image": {"tag": "0.1.1"}})} == {"shop-alembic-sidecar"}, mode
