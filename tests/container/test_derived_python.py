"""image/derived-example's application needs Python 3.14+: built FROM the newest tag it migrates; built FROM the oldest
(3.11) it builds, and its migration fails with one line naming the application's NameError (exit 7)."""

from __future__ import annotations

import secrets
import shutil

import pytest

from tests.fixtures.docker import build_image, docker

from .support import ARBITRARY_USER, assert_exit, assert_failed
from .test_recipes import RECIPE, build_wheel

pytestmark = pytest.mark.container


def build_derived(sidecar_image: str, tmp_path_factory) -> str:
    context = tmp_path_factory.mktemp("derived") / "context"
    shutil.copytree(RECIPE, context, ignore=shutil.ignore_patterns("__pycache__"))
    build_wheel(context / "example_types", context / "wheels")
    return build_image(f"alembic-sidecar-derived:test-{secrets.token_hex(4)}", context,
                       build_args={"SIDECAR_IMAGE": sidecar_image})


@pytest.fixture(scope="module")
def derived_newest(sidecar_image, tmp_path_factory):
    tag = build_derived(sidecar_image, tmp_path_factory)
    yield tag
    docker("rmi", "-f", tag, check=False)


@pytest.fixture(scope="module")
def derived_oldest(sidecar_image_oldest, tmp_path_factory):
    tag = build_derived(sidecar_image_oldest, tmp_path_factory)
    yield tag
    docker("rmi", "-f", tag, check=False)


def python_minor(docker_run, image: str) -> str:
    result = docker_run(image, "-c", "import sys; print('%d.%d' % sys.version_info[:2])", entrypoint="python",
                        user=ARBITRARY_USER, read_only=True)
    assert_exit(result, 0)
    return result.stdout.strip()


def test_the_application_on_the_newest_python_migrates(derived_newest, docker_run, pg_database, python_bases):
    assert python_minor(docker_run, derived_newest) == python_bases["newest"].minor
    result = docker_run(derived_newest, env={"DATABASE_URL": pg_database.url}, user=ARBITRARY_USER, read_only=True)
    assert_exit(result, 0)
    assert [event["revision"] for event in result.events if event["event"] == "revision_applied"] == ["0001", "0002"]
    assert pg_database.revisions() == ["0002"]
    assert {"subscribers", "users", "items"} <= set(pg_database.tables())
    # The column's length comes from the application's enum, imported by the revision.
    assert pg_database.scalar("SELECT character_maximum_length FROM information_schema.columns "
                              "WHERE table_name = 'items' AND column_name = 'status'") == 20


def test_the_application_on_the_oldest_python_fails_with_its_name_error_and_exit_7(derived_oldest, docker_run,
                                                                                 pg_database, python_bases):
    assert python_minor(docker_run, derived_oldest) == python_bases["oldest"].minor
    result = docker_run(derived_oldest, env={"DATABASE_URL": pg_database.url}, user=ARBITRARY_USER, read_only=True)
    failed = assert_failed(result, 7, "0002_create_users_and_items.py", "NameError: name 'Item' is not defined")
    assert f"this image runs Python {python_bases['oldest'].minor}" in failed["error"], failed
    assert pg_database.tables() == []
