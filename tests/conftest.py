"""Shared fixtures live in tests/fixtures/; each suite picks them up from here."""

import os
import pathlib

import pytest

pytest_plugins = [
    module
    for module in ("tests.fixtures.databases", "tests.fixtures.revisions", "tests.fixtures.docker",
                   "tests.fixtures.faults", "tests.fixtures.tls")
    if (pathlib.Path(__file__).parent / "fixtures" / (module.rsplit(".", 1)[1] + ".py")).exists()
]

REPO = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return REPO


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")
