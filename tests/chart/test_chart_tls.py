"""database.tls renders: the DB_SSL* variables, one read-only projected volume of the TLS files, readable through
the pod's fsGroup, in the Job and in an application pod's initContainer alike."""

from __future__ import annotations

import posixpath
from typing import Any

import pytest

from tests.chart.chartkit import CHART_DIR, ci_values, kube_floor, minors_from, only, pod_spec, render, schema_errors

pytestmark = pytest.mark.chart

TLS_DIR = "/etc/alembic-sidecar/tls"
CI_TLS = ci_values(CHART_DIR / "ci" / "job-tls-values.yaml")
#: TLS value sets beside the ci/ one: a CA from a Secret in host mode, the mode alone, a client certificate alone.
VARIANTS: dict[str, dict[str, Any]] = {
    "ci": CI_TLS,
    "secret CA, host mode": {"database": {"host": "db", "name": "app", "user": "app", "tls": {
        "mode": "verify-ca", "ca": {"existingSecret": "{{ .Release.Name }}-db-ca"}}}},
    "mode only": {"database": {"tls": {"mode": "require"}}},
    "client certificate only": {"database": {"tls": {"clientCertificate": {"existingSecret": "db-client"}}}},
}


def ssl_env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("DB_SSL")}


def tls_volume(spec: dict[str, Any]) -> dict[str, Any] | None:
    return next((v for v in spec["volumes"] if v["name"] == "alembic-sidecar-tls"), None)


def tls_mounts(container: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in container["volumeMounts"] if m["name"] == "alembic-sidecar-tls"]


def test_the_ci_value_set_sets_every_variable_and_projects_every_file(chart):
    spec = pod_spec(render(chart, CI_TLS), "Job")
    (container,) = spec["containers"]
    assert ssl_env(container) == {
        "DB_SSLMODE": "verify-full",
        "DB_SSLROOTCERT": f"{TLS_DIR}/ca.crt",
        "DB_SSLCERT": f"{TLS_DIR}/client.crt",
        "DB_SSLKEY": f"{TLS_DIR}/client.key",
        "DB_SSLPASSWORD_FILE": f"{TLS_DIR}/client.key-password",
    }
    assert tls_mounts(container) == [{"name": "alembic-sidecar-tls", "mountPath": TLS_DIR, "readOnly": True}]
    assert tls_volume(spec)["projected"] == {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "shop-db-ca", "items": [{"key": "ca-bundle.pem", "path": "ca.crt"}]}},
        {"secret": {"name": "app-db-client-cert", "items": [{"key": "tls.crt", "path": "client.crt"},
                                                            {"key": "tls.key", "path": "client.key"}]}},
        {"secret": {"name": "app-db-client-key-password",
                    "items": [{"key": "passphrase", "path": "client.key-password"}]}},
    ]}


def test_a_ca_from_a_secret_in_host_mode_sets_the_mode_and_the_root_certificate_only(chart):
    spec = pod_spec(render(chart, VARIANTS["secret CA, host mode"]), "Job")
    assert ssl_env(spec["containers"][0]) == {"DB_SSLMODE": "verify-ca", "DB_SSLROOTCERT": f"{TLS_DIR}/ca.crt"}
    assert tls_volume(spec)["projected"]["sources"] == [
        {"secret": {"name": "shop-db-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]


def test_a_client_certificate_defaults_to_a_kubernetes_io_tls_secrets_keys(chart):
    spec = pod_spec(render(chart, VARIANTS["client certificate only"]), "Job")
    assert ssl_env(spec["containers"][0]) == {"DB_SSLCERT": f"{TLS_DIR}/client.crt",
                                              "DB_SSLKEY": f"{TLS_DIR}/client.key"}
    assert tls_volume(spec)["projected"]["sources"] == [{"secret": {"name": "db-client", "items": [
        {"key": "tls.crt", "path": "client.crt"}, {"key": "tls.key", "path": "client.key"}]}}]


def test_the_mode_alone_reaches_a_url_from_a_secret_and_mounts_nothing(chart):
    spec = pod_spec(render(chart, VARIANTS["mode only"]), "Job")
    (container,) = spec["containers"]
    assert "DATABASE_URL_FILE" in {e["name"] for e in container["env"]}
    assert ssl_env(container) == {"DB_SSLMODE": "require"}
    assert tls_volume(spec) is None and tls_mounts(container) == []


def test_no_tls_variable_or_volume_by_default(chart):
    spec = pod_spec(render(chart), "Job")
    assert ssl_env(spec["containers"][0]) == {}
    assert tls_volume(spec) is None and tls_mounts(spec["containers"][0]) == []


@pytest.mark.parametrize("name", VARIANTS)
def test_every_path_variable_names_a_file_of_the_tls_volume(chart, name):
    spec = pod_spec(render(chart, VARIANTS[name]), "Job")
    (container,) = spec["containers"]
    volume = tls_volume(spec)
    files = {item["path"] for source in (volume["projected"]["sources"] if volume else [])
             for kind in source.values() for item in kind["items"]}
    paths = {k: v for k, v in ssl_env(container).items() if k != "DB_SSLMODE"}
    assert {posixpath.dirname(p) for p in paths.values()} <= {TLS_DIR}
    assert {posixpath.basename(p) for p in paths.values()} == files


@pytest.mark.parametrize("name", VARIANTS)
def test_every_tls_variant_validates_against_every_kubernetes_minor_the_chart_claims(chart, name):
    assert schema_errors(only(render(chart, VARIANTS[name]), "Job"), minors_from(kube_floor(CHART_DIR))) == []


def test_the_files_are_private_to_root_and_the_pods_fs_group_which_the_job_pod_sets(chart):
    # 0440 owned by root: libpq accepts such a key, and the container's UID reads it through fsGroup alone.
    spec = pod_spec(render(chart, CI_TLS), "Job")
    assert tls_volume(spec)["projected"]["defaultMode"] & 0o007 == 0
    assert isinstance(spec["securityContext"]["fsGroup"], int)
    assert spec["containers"][0]["securityContext"]["runAsUser"] != 0


def test_an_application_pod_mounts_the_same_files_for_its_init_container_and_sets_an_fs_group(example_dir):
    objects = render(example_dir, {"migrations": CI_TLS | {"job": {"enabled": False}}})
    spec = pod_spec(objects, "Deployment")
    (init,) = spec["initContainers"]
    assert ssl_env(init) == ssl_env(pod_spec(render(CHART_DIR, CI_TLS), "Job")["containers"][0])
    assert tls_mounts(init) == [{"name": "alembic-sidecar-tls", "mountPath": TLS_DIR, "readOnly": True}]
    assert tls_volume(spec)["projected"]["defaultMode"] == 0o440
    assert isinstance(spec["securityContext"]["fsGroup"], int), "without it the initContainer cannot read the key"
    assert not schema_errors(only(objects, "Deployment"), minors_from(kube_floor(example_dir)))
