"""What the image is: its configuration, what it carries, how big the project's layers are, how it starts."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from tests.fixtures.docker import docker

from .support import ARBITRARY_USER, assert_exit

pytestmark = pytest.mark.container

REPO = Path(__file__).resolve().parents[2]

#: Issue 3's target for what this project adds on top of the base image (uncompressed).
MAX_ADDED_BYTES = 45 * 1000 * 1000


@pytest.fixture(scope="module")
def image_config(sidecar_image: str) -> dict:
    return json.loads(docker("image", "inspect", sidecar_image).stdout)[0]


def test_entrypoint_is_exec_form_with_upgrade_as_default_command(image_config):
    config = image_config["Config"]
    assert config["Entrypoint"] == ["alembic-sidecar"]
    assert config["Cmd"] == ["upgrade"]


def test_user_is_numeric_and_not_root(image_config):
    user, _, group = image_config["Config"]["User"].partition(":")
    assert user.isdigit() and int(user) != 0, image_config["Config"]["User"]
    assert group == "0"


def test_workdir_is_migrations_and_no_volume_is_declared(image_config):
    # A VOLUME would give every run an anonymous writable volume, and no derived image could take it back.
    assert image_config["Config"]["WorkingDir"] == "/migrations"
    assert not image_config["Config"]["Volumes"], image_config["Config"]["Volumes"]


def test_oci_labels_state_only_what_the_build_knows(image_config, repo_root, base_images):
    # No source URL or revision is made up: a CI that knows them adds them with `docker build --label`.
    project = tomllib.loads((repo_root / "pyproject.toml").read_text())["project"]
    labels = {key: value for key, value in image_config["Config"]["Labels"].items()
              if key.startswith("org.opencontainers.image.")}
    assert labels == {
        "org.opencontainers.image.title": project["name"],
        "org.opencontainers.image.description": project["description"],
        "org.opencontainers.image.version": project["version"],
        "org.opencontainers.image.licenses": project["license"],
        "org.opencontainers.image.base.name": base_images.base,
    }


def test_python_runs_unbuffered_and_writes_no_bytecode(image_config):
    env = dict(item.split("=", 1) for item in image_config["Config"]["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_layers_added_on_top_of_the_base_stay_under_45_mb(sidecar_image, base_images):
    base_layers = json.loads(docker("image", "inspect", base_images.base).stdout)[0]["RootFS"]["Layers"]
    history = json.loads(docker("image", "inspect", sidecar_image).stdout)[0]["RootFS"]["Layers"]
    assert history[:len(base_layers)] == base_layers, "the runtime stage is not built on BASE_IMAGE"
    sizes = [int(line) for line in docker("history", "--no-trunc", "--format", "{{.Size}}", "--human=false",
                                          sidecar_image).stdout.split()]
    base_sizes = [int(line) for line in docker("history", "--no-trunc", "--format", "{{.Size}}", "--human=false",
                                               base_images.base).stdout.split()]
    added = sum(sizes) - sum(base_sizes)
    assert 0 < added < MAX_ADDED_BYTES, f"{added / 1e6:.1f} MB added on top of {base_images.base}"


def test_bytecode_is_compiled_at_build_time_and_no_build_tools_remain(docker_run, sidecar_image):
    script = (
        "import importlib.util, pathlib, shutil, sys, alembic_sidecar.cli as cli\n"
        "src = pathlib.Path(cli.__file__)\n"
        "pyc = pathlib.Path(importlib.util.cache_from_source(str(src)))\n"
        "print('pyc', pyc.exists())\n"
        "print('setuptools', importlib.util.find_spec('setuptools') is not None)\n"
        "print('gcc', shutil.which('gcc') is not None)\n"
        "print('build', pathlib.Path('/build').exists())\n"
        "print('tests', any(pathlib.Path(sys.prefix).rglob('tests/container')))\n"
    )
    result = docker_run(sidecar_image, "-c", script, entrypoint="python", read_only=True, user=ARBITRARY_USER)
    assert_exit(result, 0)
    assert result.stdout.split("\n")[:5] == ["pyc True", "setuptools False", "gcc False", "build False",
                                             "tests False"], result.stdout


def test_help_works_with_any_uid_on_a_read_only_root(docker_run, sidecar_image):
    result = docker_run(sidecar_image, "--help", read_only=True, user=ARBITRARY_USER)
    assert_exit(result, 0)
    assert "usage: alembic-sidecar" in result.output


def test_default_command_without_a_database_is_a_configuration_error(docker_run, sidecar_image):
    result = docker_run(sidecar_image)
    assert_exit(result, 2)
    assert result.event("failed")["exit_code"] == 2


def test_every_stage_starts_from_base_image_as_given_so_a_digest_pins_the_whole_build():
    # BASE_IMAGE=python:3.11-slim@sha256:<digest> reaches every FROM unchanged (no tag is appended or derived).
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+$", text, re.M)
    assert [line.split()[1] for line in text.splitlines() if line.startswith("FROM ")] == ["${BASE_IMAGE}"] * 2
