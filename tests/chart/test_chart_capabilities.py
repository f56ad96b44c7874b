"""Values that need a newer Kubernetes fail the render, through Helm's engine told the cluster's minor."""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.chart.chartkit import (
    CHART_DIR, CI_VALUES, ci_values, kinds, kube_floor, minor_key, minors_from, only, render, schema_errors,
)

pytestmark = pytest.mark.chart

MINORS = minors_from(kube_floor(CHART_DIR))
VALUE_SETS = {"defaults": {}} | {p.stem: ci_values(p) for p in CI_VALUES}

IMAGE_VOLUME = VALUE_SETS["image-volume-values"]
IMAGE_VOLUME_MINIMUM = "1.33"


@pytest.mark.parametrize("minor", MINORS)
def test_image_volume_renders_only_for_a_cluster_that_has_it(chart, minor):
    if minor_key(minor) >= minor_key(IMAGE_VOLUME_MINIMUM):
        job = only(render(chart, IMAGE_VOLUME, kube_version=minor), "Job")
        assert schema_errors(job, [minor]) == []
        return
    with pytest.raises(helm.HelmRenderError) as error:
        render(chart, IMAGE_VOLUME, kube_version=minor)
    message = str(error.value)
    assert message.endswith(f"revisions.source: imageVolume needs Kubernetes 1.33 or newer; the target is v{minor}.0")
    assert "\n" not in message


def test_a_providers_build_of_a_new_enough_minor_passes_and_of_an_older_one_fails(chart):
    # Managed clusters report versions such as v1.33.2-eks-4b2f: a pre-release to semver, which ">=1.33.0" refuses.
    assert only(render(chart, IMAGE_VOLUME, kube_version="v1.33.2-eks-4b2f"), "Job")
    with pytest.raises(helm.HelmRenderError, match="the target is v1.32.9-gke.1200"):
        render(chart, IMAGE_VOLUME, kube_version="v1.32.9-gke.1200")


def test_an_application_chart_that_includes_the_init_container_gets_the_same_check(example_dir):
    values = {"migrations": IMAGE_VOLUME | {"job": {"enabled": False}}}
    with pytest.raises(helm.HelmRenderError, match="revisions.source: imageVolume needs Kubernetes 1.33 or newer"):
        render(example_dir, values, kube_version="1.32")
    assert kinds(render(example_dir, values, kube_version="1.33")) == ["ConfigMap", "Deployment"]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_each_value_set_renders_on_every_claimed_minor_its_values_allow(chart, name):
    # helm lint cannot show this: its engine logs a template's fail instead of failing (lint mode).
    values = VALUE_SETS[name] | {"job": VALUE_SETS[name].get("job", {}) | {"enabled": True}}
    needs = IMAGE_VOLUME_MINIMUM if values.get("revisions", {}).get("source") == "imageVolume" else None
    for minor in MINORS:
        if needs and minor_key(minor) < minor_key(needs):
            with pytest.raises(helm.HelmRenderError, match=f"needs Kubernetes {needs} or newer"):
                render(chart, values, kube_version=minor)
        else:
            assert "Job" in kinds(render(chart, values, kube_version=minor)), f"{name} on {minor}"
