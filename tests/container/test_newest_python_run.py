"""tests/newest-python/run: the tests it runs run on the newest supported CPython, and what fails there fails it."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.fixtures.docker import IMAGES_ENV, REPO

pytestmark = pytest.mark.container

RUNNER = REPO / "tests" / "newest-python" / "run"


def run(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, SIDECAR_IMAGES_ENV=str(IMAGES_ENV))
    return subprocess.run([str(RUNNER), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)


def test_the_tests_run_on_the_newest_python(python_bases):
    newest = python_bases["newest"].minor
    done = run("tests/unit/test_redaction.py")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    # pytest's header names the interpreter that ran the tests.
    assert f"-- Python {newest}." in done.stdout, done.stdout[-3000:]
    assert " passed" in done.stdout


def test_no_test_collected_is_a_failure(base_images):
    done = run("-k", "no_test_has_this_name")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "pytest collected no tests: that is a failure here" in done.stderr


def test_a_pytest_error_inside_is_the_runners_exit_status(base_images):
    done = run("tests/unit/no_such_test_file.py")
    assert done.returncode == 4, done.stdout[-3000:] + done.stderr[-3000:]
