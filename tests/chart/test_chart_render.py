"""The chart through Helm's own engine: lint, render, schema, Kubernetes validation and the rendered objects."""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shutil
from typing import Any

import helm_python as helm
import pytest
import yaml

from alembic_sidecar.errors import TransientFault
from alembic_sidecar.settings import OPTIONS
from tests.chart.chartkit import (
    CHART_DIR, CI_VALUES, EXAMPLE_DIR, KUBE_VERSION, SCHEMA_MINORS, ci_values, kinds, kube_floor,
    minor_key, minors_from, only, pod_spec, render, schema_errors,
)

pytestmark = pytest.mark.chart

VALUE_SETS: dict[str, dict[str, Any]] = {"defaults": {}} | {p.stem: ci_values(p) for p in CI_VALUES}
#: What each value set must render, so a template that silently renders nothing fails.
EXPECTED_KINDS = {
    "defaults": ["Job"],
    "image-volume-values": ["Job"],
    "init-container-copy-values": [],
    "job-argocd-literal-url-values": ["Job", "Secret", "ServiceAccount"],
    "job-argocd-presync-values": ["Job", "ServiceAccount"],
    "job-host-hooks-values": ["Job", "ServiceAccount"],
    "job-literal-url-values": ["Job", "Secret"],
    "job-tls-values": ["Job"],
    "job-url-secret-values": ["Job"],
}
#: Value sets that use an API younger than the chart's floor, and the minor they need (the README says so too):
#: image volumes are in the schemas from 1.31 (alpha) and beta from 1.33.
NEEDS_NEWER_KUBERNETES = {"image-volume-values": "1.33"}
#: The one finding Helm's linter reports for this chart: an informational nudge to add an icon URL.
ACCEPTED_LINT_INFO = {"icon is recommended"}


def lint_findings(report: dict[str, Any]) -> list[Any]:
    messages = [m for m in report["messages"] if not (m["severity"] == 1 and m["error"] in ACCEPTED_LINT_INFO)]
    return messages + report["errors"]


def with_job(values: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(values)
    values.setdefault("job", {})["enabled"] = True
    return values


def test_every_value_set_under_ci_is_covered():
    assert set(VALUE_SETS) == set(EXPECTED_KINDS)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_lint_is_clean_in_strict_mode(name):
    report = helm.lint(CHART_DIR, VALUE_SETS[name], strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["total_charts_linted"] == 1
    assert lint_findings(report) == []


def test_example_app_lints_clean_with_its_dependency(example_dir):
    # The packaged dependency under charts/ is linted on its own above; this lints the app rendering with it.
    report = helm.lint(example_dir, strict=True, kube_version=f"v{KUBE_VERSION}")
    assert report["total_charts_linted"] == 1
    assert lint_findings(report) == []


def test_lint_reports_a_broken_template(tmp_path):
    broken = tmp_path / "alembic-sidecar"
    shutil.copytree(CHART_DIR, broken)
    (broken / "templates" / "broken.yaml").write_text("{{ include \"no-such-template\" . }}\n")
    assert lint_findings(helm.lint(broken, strict=True)) != []


@pytest.mark.parametrize("name", VALUE_SETS)
def test_renders_the_expected_objects(chart, name):
    assert kinds(render(chart, VALUE_SETS[name])) == EXPECTED_KINDS[name]


def test_example_app_renders_the_job_deployment_and_revisions_configmap(example_dir):
    objects = render(example_dir)
    assert kinds(objects) == ["ConfigMap", "Deployment", "Job"]
    files = only(objects, "ConfigMap")["data"]
    assert sorted(files) == ["0001_create_accounts.py", "0002_add_display_name.py", "0003_create_orders.py"]


def floor_for(chart_floor: str, name: str) -> str:
    return max(chart_floor, NEEDS_NEWER_KUBERNETES.get(name, chart_floor), key=minor_key)


@pytest.fixture(scope="module")
def rendered(chart, example_dir) -> list[tuple[str, str, dict[str, Any]]]:
    """(value set, Kubernetes minor, object) for every object both charts render for each minor they claim.

    Each render tells Helm the minor (.Capabilities.KubeVersion), as a cluster of that minor would.
    """
    chart_floor, app_floor = kube_floor(CHART_DIR), kube_floor(example_dir)
    sets = [(name, floor_for(chart_floor, name), chart, values) for name, values in VALUE_SETS.items()]
    sets += [("example-app", app_floor, example_dir, {})]
    sets += [(f"example-app+{name}", floor_for(app_floor, name), example_dir, {"migrations": with_job(values)})
             for name, values in VALUE_SETS.items()]
    return [(name, minor, o) for name, floor, source, values in sets for minor in minors_from(floor)
            for o in render(source, values, kube_version=minor)]


def test_every_rendered_object_validates_against_every_kubernetes_minor_the_charts_claim(rendered):
    # Each object is rendered for, and checked against the strict schemas of, every minor from the floor its chart
    # declares (Chart.yaml kubeVersion) to the newest kubernetes-validate ships: a field one minor requires and
    # another lacks fails here, not on a user's cluster.
    failures = [f"{name}: {obj['kind']} {obj['metadata']['name']}: {e}"
                for name, minor, obj in rendered for e in schema_errors(obj, [minor])]
    assert failures == []
    assert sorted({minor for _, minor, _ in rendered}, key=minor_key) == minors_from(kube_floor(CHART_DIR))
    assert len(rendered) >= 25 * len(minors_from(kube_floor(CHART_DIR)))


def test_the_example_app_claims_no_older_kubernetes_than_the_chart_it_includes():
    assert minor_key(kube_floor(EXAMPLE_DIR)) >= minor_key(kube_floor(CHART_DIR))


@pytest.mark.parametrize("name", NEEDS_NEWER_KUBERNETES)
def test_a_value_set_is_exempt_from_the_floor_only_while_the_floor_lacks_its_api(chart, name):
    floor = kube_floor(CHART_DIR)
    assert minor_key(floor) < minor_key(NEEDS_NEWER_KUBERNETES[name]), "the floor caught up: drop the exemption"
    assert schema_errors(only(render(chart, VALUE_SETS[name]), "Job"), [floor])


def test_kubernetes_validation_rejects_a_broken_job(chart):
    job = only(render(chart), "Job")
    job["spec"]["template"]["spec"]["containers"][0]["terminationMessagePolicy"] = ["FallbackToLogsOnError"]
    minors = minors_from(kube_floor(CHART_DIR))
    assert [e.split(":")[0] for e in schema_errors(job, minors)] == minors


def failing_minors(obj: dict[str, Any]) -> list[str]:
    return sorted({e.split(":")[0] for e in schema_errors(obj, SCHEMA_MINORS)}, key=minor_key)


def test_pod_failure_policy_carries_the_fields_older_schemas_require(chart):
    # Checking the newest schemas alone missed both: the Job passed 1.35 to 1.37 and failed every older minor.
    job = only(render(chart), "Job")
    fail_job, ignore = job["spec"]["podFailurePolicy"]["rules"]
    assert fail_job["onPodConditions"] == [] and "onExitCodes" in fail_job
    assert ignore["onPodConditions"] == [{"type": "DisruptionTarget", "status": "True"}]
    assert failing_minors(job) == []

    without_status = copy.deepcopy(job)
    del without_status["spec"]["podFailurePolicy"]["rules"][1]["onPodConditions"][0]["status"]
    assert failing_minors(without_status) == [m for m in SCHEMA_MINORS if minor_key(m) <= (1, 34)]

    without_empty_conditions = copy.deepcopy(job)
    del without_empty_conditions["spec"]["podFailurePolicy"]["rules"][0]["onPodConditions"]
    assert failing_minors(without_empty_conditions) == [m for m in SCHEMA_MINORS if minor_key(m) <= (1, 28)]


BAD_VALUES = {
    "unknown top-level key": ({"migrations": {}}, "additional properties 'migrations' not allowed"),
    "unknown nested key": ({"image": {"tga": "1.0"}}, "at '/image': additional properties 'tga' not allowed"),
    "string timeout": ({"migration": {"lockTimeout": "300"}}, "at '/migration/lockTimeout': got string, want number"),
    "string port": ({"database": {"host": "db", "name": "a", "user": "a", "port": "5432"}},
                    "at '/database/port': got string, want null or integer"),
    "missing Secret name": ({"database": {"existingSecret": ""}}, "at '/database/existingSecret': minLength"),
    "host without user": ({"database": {"host": "db", "name": "app"}}, "at '/database/user': minLength"),
    "configMap source without its name": ({"revisions": {"source": "configMap"}}, "at '/revisions/configMap'"),
    "copy source without an image": ({"revisions": {"source": "copy"}}, "at '/revisions/copy/image'"),
    "unknown log format": ({"logFormat": "xml"}, "at '/logFormat'"),
    "negative timeout": ({"migration": {"waitTimeout": -1}}, "at '/migration/waitTimeout': minimum"),
    "zero run deadline": ({"migration": {"timeout": 0}}, "at '/migration/timeout': exclusiveMinimum"),
    "run deadline past the entrypoint's bound": ({"migration": {"timeout": 2147484}},
                                                 "at '/migration/timeout': maximum"),
    "fractional DDL lock retries": ({"migration": {"ddlLockRetries": 1.5}},
                                    "at '/migration/ddlLockRetries': got number, want integer"),
    "too many DDL lock retries": ({"migration": {"ddlLockRetries": 101}},
                                  "at '/migration/ddlLockRetries': maximum"),
    "transient fault listed as fail-fast": ({"job": {"failFastExitCodes": [2, 9]}},
                                            "at '/job/failFastExitCodes/1'"),
    "registry with a scheme": ({"image": {"registry": "https://registry.example.com"}}, "at '/image/registry'"),
    "global registry with a trailing slash": ({"global": {"imageRegistry": "mirror.example.com/"}},
                                              "at '/global/imageRegistry'"),
    "unknown TLS mode": ({"database": {"tls": {"mode": "verify_full"}}}, "at '/database/tls/mode'"),
    "the TLS mode where it was before": ({"database": {"sslmode": "require"}},
                                         "at '/database': additional properties 'sslmode' not allowed"),
    "a CA from a Secret and a ConfigMap at once": (
        {"database": {"tls": {"ca": {"existingSecret": "db-ca", "existingConfigMap": "db-ca"}}}},
        "at '/database/tls/ca/existingConfigMap': maxLength"),
    "a key password without a client certificate": (
        {"database": {"tls": {"keyPassword": {"existingSecret": "db-key-password"}}}},
        "at '/database/tls/clientCertificate/existingSecret': minLength"),
    "a client key without its certificate": (
        {"database": {"tls": {"clientCertificate": {"existingSecret": "db-client", "certKey": ""}}}},
        "at '/database/tls/clientCertificate/certKey'"),
    "a client certificate without its key": (
        {"database": {"tls": {"clientCertificate": {"existingSecret": "db-client", "keyKey": ""}}}},
        "at '/database/tls/clientCertificate/keyKey'"),
    "TLS disabled with a CA": ({"database": {"tls": {"mode": "disable", "ca": {"existingConfigMap": "db-ca"}}}},
                               "at '/database/tls/ca/existingConfigMap': maxLength"),
    "TLS disabled with a client certificate": (
        {"database": {"tls": {"mode": "disable", "clientCertificate": {"existingSecret": "db-client"}}}},
        "at '/database/tls/clientCertificate/existingSecret': maxLength"),
    "a CA key that is no Secret key": ({"database": {"tls": {"ca": {"existingSecret": "db-ca", "key": "ca/crt"}}}},
                                       "at '/database/tls/ca/key'"),
    "the hook switch that job.mode replaced": ({"job": {"useHelmHooks": True}},
                                                "at '/job': additional properties 'useHelmHooks' not allowed"),
    "unknown job mode": ({"job": {"mode": "flux"}}, "at '/job/mode'"),
    "an Argo CD hook after the rollout": ({"job": {"mode": "argocd", "argocd": {"hook": "PostSync"}}},
                                          "at '/job/argocd/hook'"),
    "a Helm delete policy given to Argo CD": ({"job": {"argocd": {"hookDeletePolicy": "hook-succeeded"}}},
                                              "at '/job/argocd/hookDeletePolicy'"),
    "unknown TLS key": ({"database": {"tls": {"clientCertificate": {"secretName": "db-client"}}}},
                        "at '/database/tls/clientCertificate': additional properties 'secretName' not allowed"),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_schema_rejects_bad_values_with_helms_error(chart, case):
    values, expected = BAD_VALUES[case]
    with pytest.raises(helm.HelmValuesError) as error:
        chart.render(values, name="shop")
    assert "values don't meet the specifications of the schema" in str(error.value)
    assert expected in str(error.value)
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


def test_schema_applies_to_the_chart_as_a_dependency(example_dir):
    with pytest.raises(helm.HelmValuesError, match="additional properties 'bogus' not allowed"):
        render(example_dir, {"migrations": {"bogus": True}})


def job_and_init_containers(chart, values) -> list[dict[str, Any]]:
    spec = pod_spec(render(chart, values), "Job")
    return spec.get("initContainers", []) + spec["containers"]


def assert_locked_down(container: dict[str, Any]) -> None:
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True
    assert isinstance(sc["runAsUser"], int) and sc["runAsUser"] > 0
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize("name", VALUE_SETS)
def test_containers_and_pod_are_locked_down_by_default(chart, name):
    values = with_job(VALUE_SETS[name])
    spec = pod_spec(render(chart, values), "Job")
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert_locked_down(container)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["automountServiceAccountToken"] is False
    assert spec["restartPolicy"] == "Never"


def test_example_app_init_container_is_locked_down_without_a_pod_security_context(example_dir):
    spec = pod_spec(render(example_dir, {"migrations": VALUE_SETS["init-container-copy-values"]}), "Deployment")
    assert [c["name"] for c in spec["initContainers"]] == ["copy-revisions", "migrate"]
    for container in spec["initContainers"]:
        assert_locked_down(container)


def test_job_fails_fast_on_exit_codes_a_retry_cannot_fix(chart):
    job = only(render(chart), "Job")["spec"]
    assert job["backoffLimit"] == 3 and job["activeDeadlineSeconds"] == 900
    assert job["ttlSecondsAfterFinished"] == 86400
    fail_job = next(r for r in job["podFailurePolicy"]["rules"] if r["action"] == "FailJob")
    assert fail_job["onExitCodes"] == {"containerName": "migrate", "operator": "In", "values": [2, 5, 6, 7]}


def test_a_transient_fault_is_retried_within_backoff_limit_not_fail_fast(chart):
    # Exit 9 (connection lost, read-only, lock or deadlock timeout, MIGRATE_TIMEOUT) rolled back: a retry can work.
    transient = TransientFault.exit_code
    assert transient == 9
    assert transient not in chart.values["job"]["failFastExitCodes"]
    for name, values in VALUE_SETS.items():
        rules = only(render(chart, with_job(values)), "Job")["spec"]["podFailurePolicy"]["rules"]
        fail_job = [r["onExitCodes"] for r in rules if r["action"] == "FailJob" and "onExitCodes" in r]
        assert fail_job, f"{name}: no FailJob rule to check"
        for codes in fail_job:
            assert (transient in codes["values"]) == (codes["operator"] == "NotIn"), f"{name}: {codes}"


PLAIN_CREDENTIAL = re.compile(r"://[^/\s@:]+:[^/\s@]+@")


@pytest.mark.parametrize("name", [n for n in VALUE_SETS if "literal" not in n])
def test_no_plaintext_credential_when_an_existing_secret_is_used(chart, name):
    objects = render(chart, with_job(VALUE_SETS[name]))
    assert "Secret" not in kinds(objects)
    container = pod_spec(objects, "Job")["containers"][0]
    names = {e["name"] for e in container["env"]}
    assert names & {"DATABASE_URL_FILE", "DB_PASSWORD_FILE"}
    assert not names & {"DATABASE_URL", "DB_PASSWORD"}
    assert all("valueFrom" not in e for e in container["env"]), "secrets reach the process as files only"
    assert not PLAIN_CREDENTIAL.search(yaml.safe_dump_all(objects))


def test_literal_url_lives_only_in_the_charts_own_secret(chart):
    values = VALUE_SETS["job-literal-url-values"]
    objects = render(chart, values)
    text = yaml.safe_dump_all(objects)
    assert "s3cr3t-literal" in values["database"]["url"]
    assert "s3cr3t-literal" not in text
    secret = only(objects, "Secret")
    volume = next(v for v in pod_spec(objects, "Job")["volumes"] if "secret" in v)
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    assert volume["secret"]["items"] == [{"key": "url", "path": "url"}]


def test_secret_files_named_by_file_variables_are_mounted(chart):
    for name, values in VALUE_SETS.items():
        spec = pod_spec(render(chart, with_job(values)), "Job")
        container = spec["containers"][0]
        volumes = {v["name"]: v for v in spec["volumes"]}
        for env in container["env"]:
            if not env["name"].endswith("_FILE"):
                continue
            directory, filename = posixpath.split(env["value"])
            mount = next(m for m in container["volumeMounts"] if m["mountPath"] == directory)
            assert mount.get("readOnly") is True, name
            volume = volumes[mount["name"]]
            sources = volume["projected"]["sources"] if "projected" in volume else [volume]
            secrets = [source["secret"] for source in sources if "secret" in source]
            assert [i["key"] for s in secrets for i in s["items"] if i["path"] == filename], f"{name}: {filename}"


def test_every_environment_variable_is_one_the_entrypoint_reads(rendered):
    known = {o.env for o in OPTIONS} | {o.env + "_FILE" for o in OPTIONS if o.from_file}
    user_given = {"MIGRATE_PYTHONPATH"}  # from ci/job-host-hooks-values.yaml's extraEnv
    for name, _, obj in rendered:
        if obj["kind"] not in ("Job", "Deployment"):
            continue
        spec = obj["spec"]["template"]["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                assert env["name"] in known | user_given, f"{name}: {env['name']}"


def without_job(values: dict[str, Any]) -> dict[str, Any]:
    values = copy.deepcopy(values)
    values.setdefault("job", {})["enabled"] = False
    return values


@pytest.mark.parametrize("name", VALUE_SETS)
def test_init_container_from_the_named_template_equals_the_jobs_container(example_dir, name):
    # The example app migrates in its pods when the Job is off; the same values otherwise render the same container.
    job = pod_spec(render(example_dir, {"migrations": with_job(VALUE_SETS[name])}), "Job")
    app = pod_spec(render(example_dir, {"migrations": without_job(VALUE_SETS[name])}), "Deployment")
    assert app["initContainers"] == job.get("initContainers", []) + job["containers"]
    assert app["volumes"] == job["volumes"]


APP_SECRET = {"existingSecret": "{{ .Release.Name }}-app-db", "urlKey": "app-url", "passwordKey": "app-password",
              "user": "shop_app"}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_ready_init_container_is_the_jobs_container_running_ready_with_the_applications_secret(example_dir, name):
    values = with_job(VALUE_SETS[name]) | {"ready": {"database": APP_SECRET, "timeout": 45}}
    objects = render(example_dir, {"migrations": values})
    job, app = pod_spec(objects, "Job"), pod_spec(objects, "Deployment")
    expected = copy.deepcopy(job.get("initContainers", []) + job["containers"])
    migrate = expected[-1]
    migrate |= {"name": "ready", "args": ["ready"]}
    env = migrate["env"]
    if any(e["name"] == "DB_USER" for e in env):
        next(e for e in env if e["name"] == "DB_USER")["value"] = "shop_app"
    at = next(i for i, e in enumerate(env) if e["name"] == "MIGRATE_ON_UNKNOWN_REVISION")
    env.insert(at, {"name": "MIGRATE_READY_TIMEOUT", "value": "45"})
    assert app["initContainers"] == expected
    # The one secret volume is the application's; the migrator's Secret (or the chart's own) is not in its pod.
    volumes = copy.deepcopy(job["volumes"])
    secret = volumes[0]["secret"]
    host = any(e["name"] == "DB_HOST" for e in env)
    secret |= {"secretName": "shop-app-db", "items": [{"key": "app-password" if host else "app-url",
                                                         "path": "password" if host else "url"}]}
    assert app["volumes"] == volumes


def test_ready_init_container_defaults_to_the_applications_secret_and_five_minutes(example_dir):
    spec = pod_spec(render(example_dir), "Deployment")
    (ready,) = spec["initContainers"]
    env = {e["name"]: e["value"] for e in ready["env"]}
    assert ready["args"] == ["ready"] and env["MIGRATE_READY_TIMEOUT"] == "300"
    assert spec["volumes"][0]["secret"]["secretName"] == "shop-app-database"
    assert pod_spec(render(example_dir), "Job")["volumes"][0]["secret"]["secretName"] == "shop-database"


def test_image_tag_defaults_to_app_version_and_digest_wins(chart):
    container = job_and_init_containers(chart, {})[0]
    assert container["image"] == f"alembic-sidecar:{chart.metadata['appVersion']}"
    digest = "sha256:" + "ab" * 32
    container = job_and_init_containers(chart, {"image": {"repository": "r.io/m", "tag": "9", "digest": digest}})[0]
    assert container["image"] == f"r.io/m@{digest}"


def test_image_registry_prefixes_the_repository_and_global_image_registry_wins(chart):
    def image(values):
        return job_and_init_containers(chart, values)[-1]["image"]
    ours = {"registry": "registry.example.com:5000", "repository": "team/migrate", "tag": "9"}
    mirror = {"global": {"imageRegistry": "mirror.example.com/hub"}}
    digest = "sha256:" + "cd" * 32
    assert image({"image": ours}) == "registry.example.com:5000/team/migrate:9"
    assert image({"image": ours | {"digest": digest}}) == f"registry.example.com:5000/team/migrate@{digest}"
    assert image({"image": ours} | mirror) == "mirror.example.com/hub/team/migrate:9"
    assert image(mirror) == f"mirror.example.com/hub/alembic-sidecar:{chart.metadata['appVersion']}"


def test_a_parent_charts_global_image_registry_reaches_the_init_container(chart, example_dir):
    # The initContainer runs inside another chart's pod: one global.imageRegistry there moves every image of the
    # pod to the mirror, except revisions.copy.image, which is a full reference to the application's own image.
    values = {"global": {"imageRegistry": "mirror.example.com"},
              "migrations": VALUE_SETS["init-container-copy-values"]}
    spec = pod_spec(render(example_dir, values), "Deployment")
    images = {c["name"]: c["image"] for c in spec["initContainers"] + spec["containers"]}
    assert images == {
        "copy-revisions": "registry.example.com/team/app:1.4.2",
        "migrate": f"mirror.example.com/alembic-sidecar:{chart.metadata['appVersion']}",
        "app": "mirror.example.com/example-app:1.0.0",
    }


def test_values_reach_the_environment(chart):
    values = VALUE_SETS["job-url-secret-values"]
    env = {e["name"]: e["value"] for e in job_and_init_containers(chart, values)[0]["env"]}
    assert env == {
        "DATABASE_URL_FILE": "/var/run/secrets/alembic-sidecar/url",
        "MIGRATE_VERSIONS_DIR": "/migrations/versions",
        "MIGRATE_TARGET": "head",
        "MIGRATE_TIMEOUT": "840",
        "MIGRATE_WAIT_TIMEOUT": "120",
        "MIGRATE_LOCK_TIMEOUT": "600",
        "MIGRATE_STATEMENT_TIMEOUT": "30",
        "MIGRATE_DDL_LOCK_TIMEOUT": "2.5",
        "MIGRATE_DDL_LOCK_RETRIES": "5",
        "MIGRATE_ON_UNKNOWN_REVISION": "ignore",
        "MIGRATE_VERIFY_HISTORY": "strict",
        "MIGRATE_LOG_FORMAT": "json",
        "MIGRATE_LOG_LEVEL": "info",
    }
    volumes = pod_spec(render(chart, values), "Job")["volumes"]
    assert {"name": "alembic-sidecar-revisions", "configMap": {"name": "shop-revisions"}} in volumes
    assert volumes[0]["secret"]["secretName"] == "app-database"
    assert volumes[0]["secret"]["items"] == [{"key": "DATABASE_URL", "path": "url"}]


def test_run_deadline_is_unset_and_ddl_lock_retries_zero_by_default(chart):
    env = {e["name"]: e["value"] for e in job_and_init_containers(chart, {})[0]["env"]}
    assert "MIGRATE_TIMEOUT" not in env and "MIGRATE_STATEMENT_TIMEOUT" not in env
    assert env["MIGRATE_DDL_LOCK_RETRIES"] == "0"


def test_whole_seconds_render_without_an_exponent(chart):
    # Go prints a large float64 as 2.147483e+06; a manifest reader (and a strict integer parser) wants 2147483.
    values = {"migration": {"timeout": 2147483, "lockTimeout": 1000000, "statementTimeout": 0.25}}
    env = {e["name"]: e["value"] for e in job_and_init_containers(chart, values)[0]["env"]}
    assert (env["MIGRATE_TIMEOUT"], env["MIGRATE_LOCK_TIMEOUT"], env["MIGRATE_STATEMENT_TIMEOUT"]) == (
        "2147483", "1000000", "0.25")


def test_host_mode_passes_the_password_as_a_file(chart):
    spec = pod_spec(render(chart, VALUE_SETS["job-host-hooks-values"]), "Job")
    env = {e["name"]: e["value"] for e in spec["containers"][0]["env"] if "value" in e}
    assert {k: env[k] for k in ("DB_DRIVER", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_SSLMODE")} == {
        "DB_DRIVER": "postgresql", "DB_HOST": "postgres.databases.svc", "DB_PORT": "5432", "DB_NAME": "app",
        "DB_USER": "app_migrator", "DB_SSLMODE": "require"}
    assert env["DB_PASSWORD_FILE"] == "/var/run/secrets/alembic-sidecar/password"
    assert spec["volumes"][0]["secret"] == {
        "secretName": "app-db-password", "defaultMode": 0o444,
        "items": [{"key": "postgres-password", "path": "password"}]}
    assert spec["serviceAccountName"] == "shop-alembic-sidecar"
    assert spec["imagePullSecrets"] == [{"name": "registry-credentials"}]


def test_image_volume_mounts_the_subpath_read_only(chart):
    spec = pod_spec(render(chart, VALUE_SETS["image-volume-values"]), "Job")
    volume = next(v for v in spec["volumes"] if v["name"] == "alembic-sidecar-revisions")
    assert volume["image"] == {"reference": "registry.example.com/team/app:1.4.2", "pullPolicy": "IfNotPresent"}
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "alembic-sidecar-revisions")
    assert mount == {"name": "alembic-sidecar-revisions", "mountPath": "/migrations/versions", "readOnly": True,
                     "subPath": "srv/app/migrations/versions"}


def test_copy_source_copies_into_the_shared_empty_dir(chart):
    spec = pod_spec(render(chart, with_job(VALUE_SETS["init-container-copy-values"])), "Job")
    copier = only([dict(c, kind=c["name"]) for c in spec["initContainers"]], "copy-revisions")
    assert copier["image"] == "registry.example.com/team/app:1.4.2"
    assert copier["imagePullPolicy"] == "IfNotPresent"
    assert copier["command"] == ["cp", "-R", "/srv/app/migrations/versions/.", "/migrations/versions"]
    volume = next(v for v in spec["volumes"] if v["name"] == "alembic-sidecar-revisions")
    assert "emptyDir" in volume


def test_schema_and_values_agree_on_every_default(chart):
    schema = chart.schema
    def walk(node: dict[str, Any], values: Any, path: str) -> None:
        assert "description" in node, f"{path}: no description"
        assert node["default"] == values, f"{path}: schema default {node['default']!r} != values.yaml {values!r}"
        if "properties" in node:
            assert set(node["properties"]) == set(values), path
            for key, child in node["properties"].items():
                walk(child, values[key], f"{path}.{key}")
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    assert set(schema["properties"]) == set(values)
    for key, node in schema["properties"].items():
        walk(node, values[key], key)
    assert json.loads((CHART_DIR / "values.schema.json").read_text())["additionalProperties"] is False
