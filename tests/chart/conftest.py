"""Fixtures of the chart tests: the chart loaded once per module, and the example app built with it."""

from __future__ import annotations

from pathlib import Path

import helm_python as helm
import pytest

from tests.chart.chartkit import CHART_DIR, build_example


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(CHART_DIR) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory) -> Path:
    """The example app with this chart vendored as its dependency."""
    return build_example(tmp_path_factory.mktemp("example"))
