"""A fleet through Helm's engine: the targets list as a mounted file, the Indexed Job of its shards, what is refused."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from alembic_sidecar.settings import OPTIONS
from tests.chart.chartkit import (
    CHART_DIR, KUBE_VERSION, kinds, kube_floor, minor_key, minors_from, only, pod_spec, render, schema_errors,
)

pytestmark = pytest.mark.chart

MINORS = minors_from(kube_floor(CHART_DIR))
#: backoffLimitPerIndex (and maxFailedIndexes, and podFailurePolicy's FailIndex) are GA from this minor.
PER_INDEX_MINIMUM = "1.33"
TARGETS = ["# tenants of the shop", "schema=tenant_a", "schema=tenant_b", "database=shop_eu",
           "postgresql://migrator@pg-eu.internal:5432/shop_eu2"]
FLEET = {"fleet": {"targets": TARGETS, "shards": 3, "parallel": 8, "canary": 2, "continueOnError": True}}
MOUNTED = "/etc/alembic-sidecar/fleet/targets"


def job_spec(values: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return only(render(CHART_DIR, values, **kwargs), "Job")["spec"]


def env_of(spec: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in spec["template"]["spec"]["containers"][0]["env"]}


def fail_fast_action(spec: dict[str, Any]) -> str:
    (rule,) = [r for r in spec["podFailurePolicy"]["rules"] if "onExitCodes" in r]
    return rule["action"]


@pytest.mark.parametrize("minor", MINORS)
def test_a_sharded_fleet_is_an_indexed_job_that_validates_on_every_claimed_minor(chart, minor):
    objects = render(chart, FLEET, kube_version=minor)
    assert kinds(objects) == ["ConfigMap", "Job"]
    assert [f"{o['kind']}: {e}" for o in objects for e in schema_errors(o, [minor])] == []
    spec = only(objects, "Job")["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 3, 3)
    if minor_key(minor) >= minor_key(PER_INDEX_MINIMUM):
        # One backoffLimit per shard, and a code no retry can fix fails that shard only: the others finish.
        assert spec["backoffLimitPerIndex"] == 3 and "backoffLimit" not in spec
        assert fail_fast_action(spec) == "FailIndex"
    else:
        assert spec["backoffLimit"] == 3 and "backoffLimitPerIndex" not in spec
        assert fail_fast_action(spec) == "FailJob"
    assert "maxFailedIndexes" not in spec


def test_the_inline_list_is_a_configmap_mounted_as_the_targets_file_with_the_settings_beside_it(chart):
    objects = render(chart, FLEET)
    config_map = only(objects, "ConfigMap")
    assert config_map["data"] == {"targets": "\n".join(TARGETS) + "\n"}
    spec = only(objects, "Job")["spec"]
    pod = spec["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "alembic-sidecar-fleet"]
    assert volume["configMap"] == {"name": config_map["metadata"]["name"],
                                   "items": [{"key": "targets", "path": "targets"}]}
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "alembic-sidecar-fleet")
    assert mount == {"name": "alembic-sidecar-fleet", "mountPath": "/etc/alembic-sidecar/fleet", "readOnly": True}
    env = env_of(spec)
    assert {k: env[k] for k in env if k in ("MIGRATE_TARGETS_FILE", "MIGRATE_SHARDS", "MIGRATE_PARALLEL",
                                            "MIGRATE_CANARY", "MIGRATE_CONTINUE_ON_ERROR")} == {
        "MIGRATE_TARGETS_FILE": MOUNTED, "MIGRATE_SHARDS": "3", "MIGRATE_PARALLEL": "8", "MIGRATE_CANARY": "2",
        "MIGRATE_CONTINUE_ON_ERROR": "true"}
    assert env["DATABASE_URL_FILE"], "schema= and database= lines apply to the database's own URL"


def test_every_fleet_variable_is_one_the_entrypoint_reads(chart):
    known = {o.env for o in OPTIONS} | {o.env + "_FILE" for o in OPTIONS if o.from_file}
    assert set(env_of(job_spec(FLEET))) - known == set()


@pytest.mark.parametrize("kind", ["existingConfigMap", "existingSecret"])
def test_a_list_the_user_created_is_mounted_from_its_key_and_the_chart_creates_none(chart, kind):
    values = {"fleet": {kind: "{{ .Release.Name }}-tenants", "key": "tenants.txt"}}
    objects = render(chart, values)
    assert kinds(objects) == ["Job"]
    pod = pod_spec(objects, "Job")
    (volume,) = [v for v in pod["volumes"] if v["name"] == "alembic-sidecar-fleet"]
    if kind == "existingSecret":
        assert volume["secret"] == {"secretName": "shop-tenants", "defaultMode": 0o444,
                                    "items": [{"key": "tenants.txt", "path": "targets"}]}
    else:
        assert volume["configMap"] == {"name": "shop-tenants", "items": [{"key": "tenants.txt", "path": "targets"}]}
    assert env_of(only(objects, "Job")["spec"])["MIGRATE_TARGETS_FILE"] == MOUNTED


def test_a_one_pod_fleet_is_an_ordinary_job(chart):
    spec = job_spec({"fleet": {"targets": ["schema=a"]}}, kube_version=KUBE_VERSION)
    assert "completionMode" not in spec and "backoffLimitPerIndex" not in spec and spec["backoffLimit"] == 3
    assert fail_fast_action(spec) == "FailJob"
    assert env_of(spec)["MIGRATE_SHARDS"] == "1"


def test_without_a_fleet_the_job_has_no_fleet_setting(chart):
    objects = render(chart)
    env = env_of(only(objects, "Job")["spec"])
    assert not [name for name in env if name in ("MIGRATE_TARGETS_FILE", "MIGRATE_SHARDS", "MIGRATE_PARALLEL")]
    assert "ConfigMap" not in kinds(objects)


def test_max_failed_shards_sets_max_failed_indexes_and_needs_kubernetes_1_33(chart):
    values = {"fleet": FLEET["fleet"] | {"maxFailedShards": 1}}
    assert job_spec(values, kube_version=PER_INDEX_MINIMUM)["maxFailedIndexes"] == 1
    with pytest.raises(helm.HelmRenderError) as error:
        render(chart, values, kube_version="1.32")
    assert str(error.value).endswith("fleet.maxFailedShards needs Kubernetes 1.33 or newer; the target is v1.32.0")


def test_a_changed_inline_list_renames_the_hash_named_job_so_it_runs_again(chart):
    first = only(render(chart, FLEET), "Job")
    grown = only(render(chart, {"fleet": FLEET["fleet"] | {"targets": TARGETS + ["schema=tenant_c"]}}), "Job")
    assert first["metadata"]["name"] != grown["metadata"]["name"]
    assert "checksum/fleet-targets" in first["spec"]["template"]["metadata"]["annotations"]


def test_in_a_hook_mode_the_list_exists_before_the_job(chart):
    objects = render(chart, FLEET | {"job": {"mode": "helm-hook", "hookWeight": 3}})
    assert only(objects, "ConfigMap")["metadata"]["annotations"] == {
        "helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "2",
        "helm.sh/hook-delete-policy": "before-hook-creation"}


def test_fleet_values_lint_clean_in_strict_mode():
    report = helm.lint(CHART_DIR, FLEET, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert [m for m in report["messages"] if m["error"] != "icon is recommended"] + report["errors"] == []


def render_error(source, values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmRenderError) as error:
        render(source, values)
    message = str(error.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("line", ["postgresql://migrator:s3cr3t-tenant@pg:5432/shop_eu",
                                  "mysql://root:s3cr3t-tenant@db/eu",
                                  "postgresql://pg/shop_eu?user=migrator&password=s3cr3t-tenant"])
def test_an_inline_target_with_a_password_fails_the_render_naming_its_line_and_not_the_password(chart, line):
    message = render_error(chart, {"fleet": {"targets": ["schema=a", "schema=b", line]}})
    assert message.endswith("fleet.targets[2] (line 3) carries a password: put the list in a Secret you create "
                            "and name it in fleet.existingSecret")
    assert "s3cr3t" not in message


def test_a_fleet_without_the_job_fails_the_render(chart):
    message = render_error(chart, {"fleet": {"targets": ["schema=a"]}, "job": {"enabled": False}})
    assert message.endswith("fleet: a fleet runs in the migration Job only; set job.enabled true (an initContainer "
                            "would migrate every target from every replica)")


@pytest.mark.parametrize("job", [False, True], ids=["initContainer", "readyInitContainer"])
def test_an_application_pod_that_includes_the_sidecar_refuses_a_fleet(example_dir, job):
    values = {"migrations": {"fleet": {"existingSecret": "tenants"}, "job": {"enabled": job}}}
    message = render_error(example_dir, values)
    assert "fleet: a fleet runs in the migration Job only" in message


def test_shards_without_a_list_fail_the_render(chart):
    assert render_error(chart, {"fleet": {"shards": 4}}).endswith(
        "fleet.shards needs a fleet: set fleet.targets, fleet.existingConfigMap or fleet.existingSecret")


BAD_VALUES = {
    "an inline list and a Secret": ({"targets": ["schema=a"], "existingSecret": "t"}, "/fleet/existingSecret"),
    "a ConfigMap and a Secret": ({"existingConfigMap": "t", "existingSecret": "t"}, "/fleet/existingSecret"),
    "an inline list and a ConfigMap": ({"targets": ["schema=a"], "existingConfigMap": "t"},
                                       "/fleet/existingConfigMap"),
    "no shards": ({"targets": ["schema=a"], "shards": 0}, "/fleet/shards"),
    "no parallelism": ({"targets": ["schema=a"], "parallel": 0}, "/fleet/parallel"),
    "an empty line as an item": ({"targets": ["schema=a", ""]}, "/fleet/targets/1"),
    "a list as one string": ({"targets": "schema=a\nschema=b"}, "/fleet/targets"),
    "an unknown key": ({"tenants": ["a"]}, "additional properties 'tenants' not allowed"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_schema_refuses_bad_fleet_values(chart, case):
    values, expected = BAD_VALUES[case]
    with pytest.raises(helm.HelmValuesError) as error:
        chart.render({"fleet": values}, name="shop")
    assert expected in str(error.value)
