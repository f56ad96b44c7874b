"""The two documented ways to give revision files the user's own libraries: a derived image and MIGRATE_PYTHONPATH."""

from __future__ import annotations

import base64
import hashlib
import shutil
import tomllib
import zipfile
from pathlib import Path

import pytest

from tests.fixtures.docker import build_image, docker

from .support import assert_exit, assert_failed

pytestmark = pytest.mark.container

RECIPE = Path(__file__).resolve().parents[2] / "image" / "derived-example"
PACKAGE_SRC = RECIPE / "example_types" / "src"


def build_wheel(project: Path, dist: Path) -> Path:
    """A pure-Python wheel of a src-layout project, written directly (what `pip wheel` makes; no build backend or
    network needed on the test machine)."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    name, version = meta["name"].replace("-", "_"), meta["version"]
    dist_info = f"{name}-{version}.dist-info"
    files = {str(path.relative_to(project / "src")): path.read_bytes()
             for path in sorted((project / "src").rglob("*.py"))}
    files[f"{dist_info}/METADATA"] = (f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {version}\n"
                                      + "".join(f"Requires-Dist: {d}\n" for d in meta["dependencies"])).encode()
    files[f"{dist_info}/WHEEL"] = b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = "".join(
        f"{path},sha256={base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()},{len(data)}\n"
        for path, data in files.items()) + f"{dist_info}/RECORD,,\n"
    files[f"{dist_info}/RECORD"] = record.encode()
    dist.mkdir(parents=True, exist_ok=True)
    wheel = dist / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


@pytest.fixture
def derived_image(sidecar_image, tmp_path) -> str:
    """image/derived-example built FROM the image under test, its local package as a wheel (no network)."""
    context = tmp_path / "context"
    shutil.copytree(RECIPE, context, ignore=shutil.ignore_patterns("__pycache__"))
    build_wheel(context / "example_types", context / "wheels")
    tag = build_image(f"alembic-sidecar-derived:test-{tmp_path.name[-12:].lower()}", context,
                      build_args={"SIDECAR_IMAGE": sidecar_image})
    yield tag
    docker("rmi", "-f", tag, check=False)


def test_derived_image_runs_a_revision_that_imports_a_pip_installed_type(derived_image, docker_run, pg_database):
    # The revisions are baked into the derived image: nothing is mounted.
    result = docker_run(derived_image, env={"DATABASE_URL": pg_database.url}, user="12345:0", read_only=True)
    assert_exit(result, 0)
    assert pg_database.revisions() == ["0001"]
    assert pg_database.scalar("SELECT character_maximum_length FROM information_schema.columns "
                              "WHERE table_name = 'subscribers' AND column_name = 'email'") == 320


def test_migrate_pythonpath_mount_makes_the_same_revision_importable(docker_run, sidecar_image, pg_database):
    mounts = {str(RECIPE / "versions"): "/migrations/versions:ro", str(PACKAGE_SRC): "/opt/app-lib:ro"}
    result = docker_run(sidecar_image, env={"DATABASE_URL": pg_database.url, "MIGRATE_PYTHONPATH": "/opt/app-lib"},
                        volumes=mounts, user="12345:0", read_only=True)
    assert_exit(result, 0)
    assert pg_database.revisions() == ["0001"]
    assert "subscribers" in pg_database.tables()


def test_without_either_recipe_the_import_fails_with_7_and_nothing_changes(docker_run, sidecar_image, pg_database):
    result = docker_run(sidecar_image, env={"DATABASE_URL": pg_database.url},
                        volumes={str(RECIPE / "versions"): "/migrations/versions:ro"})
    assert_failed(result, 7, "sidecar_example_types")
    assert pg_database.tables() == []
