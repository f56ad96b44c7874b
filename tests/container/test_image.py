"""What the image is: its configuration, what it carries (no pip), how big the project's layers are, how it starts,
which Python it runs (its base's, within the supported range, or no image at all), and what its build takes in
(hash-locked packages only)."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import tomllib
from pathlib import Path

import pytest

from tests.fixtures.docker import build_image, docker

from .support import ARBITRARY_USER, ON_EACH_PYTHON, assert_exit, assert_no_packaging_tools, packaging_tools

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


def layer_bytes(image: str) -> int:
    return sum(int(line) for line in docker("history", "--no-trunc", "--format", "{{.Size}}", "--human=false",
                                            image).stdout.split())


@ON_EACH_PYTHON
def test_layers_added_on_top_of_the_base_stay_under_45_mb(tested_image, tested_base):
    base_layers = json.loads(docker("image", "inspect", tested_base.image).stdout)[0]["RootFS"]["Layers"]
    history = json.loads(docker("image", "inspect", tested_image).stdout)[0]["RootFS"]["Layers"]
    assert history[:len(base_layers)] == base_layers, "the runtime stage is not built on BASE_IMAGE"
    added = layer_bytes(tested_image) - layer_bytes(tested_base.image)
    assert 0 < added < MAX_ADDED_BYTES, f"{added / 1e6:.1f} MB added on top of {tested_base.image}"


@ON_EACH_PYTHON
def test_bytecode_is_compiled_at_build_time_and_no_build_tools_remain(docker_run, tested_image):
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
    result = docker_run(tested_image, "-c", script, entrypoint="python", read_only=True, user=ARBITRARY_USER)
    assert_exit(result, 0)
    assert result.stdout.split("\n")[:5] == ["pyc True", "setuptools False", "gcc False", "build False",
                                             "tests False"], result.stdout


@ON_EACH_PYTHON
def test_help_works_with_any_uid_on_a_read_only_root(docker_run, tested_image):
    result = docker_run(tested_image, "--help", read_only=True, user=ARBITRARY_USER)
    assert_exit(result, 0)
    assert "usage: alembic-sidecar" in result.output


def test_default_command_without_a_database_is_a_configuration_error(docker_run, sidecar_image):
    result = docker_run(sidecar_image)
    assert_exit(result, 2)
    assert result.event("failed")["exit_code"] == 2


# --- the Python it runs -------------------------------------------------------------------------------------------

@ON_EACH_PYTHON
def test_the_image_runs_its_bases_python_with_the_extensions_built_for_it(docker_run, tested_image, tested_base):
    script = ("import sys, asyncpg.protocol.protocol as pg, greenlet._greenlet as gl\n"
              "from sqlalchemy.util import has_compiled_ext\n"
              "print('%d.%d' % sys.version_info[:2], sys.prefix, has_compiled_ext())\n"
              "print(pg.__file__.rsplit('.', 2)[1], gl.__file__.rsplit('.', 2)[1])\n")
    result = docker_run(tested_image, "-c", script, entrypoint="python", read_only=True, user=ARBITRARY_USER)
    assert_exit(result, 0)
    minor, prefix, compiled, *suffixes = result.stdout.split()
    assert (minor, prefix, compiled) == (tested_base.minor, "/opt/venv", "True"), result.stdout
    abi = f"cpython-{tested_base.minor.replace('.', '')}-"
    assert len(suffixes) == 2 and all(suffix.startswith(abi) for suffix in suffixes), result.stdout


def failed_build(context: Path, base: str) -> str:
    """Build ``context``, expecting the build to fail; returns its output."""
    tag = f"alembic-sidecar:test-must-fail-{secrets.token_hex(4)}"
    done = docker("build", "--network", "host", "--force-rm", "--build-arg", f"BASE_IMAGE={base}", "-t", tag,
                  str(context), check=False, timeout=1200)
    if done.returncode == 0:
        docker("rmi", "-f", tag, check=False)
    assert done.returncode != 0, f"the build succeeded:\n{done.stdout[-3000:]}"
    return done.stdout + done.stderr


def supported_range() -> str:
    minors = [c.rsplit(" :: ", 1)[1] for c in tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "classifiers"] if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    return f"alembic-sidecar supports CPython {minors[0]} to {minors[-1]}"


def assert_refused_at_the_first_step(output: str, line: str) -> None:
    """The build stopped in the builder stage's first RUN (the only one that starts `oldest=`), printing ``line``."""
    assert re.search(r"/bin/sh -c oldest=\S+ newest=\S+ ", output), output[-3000:]
    printed = [text for text in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines() if line in text]
    assert printed and all(text.strip().endswith("(BASE_IMAGE=python:3.X-slim-trixie)") for text in printed), \
        output[-3000:]


def test_a_base_with_a_python_below_the_range_fails_the_build_at_once_naming_the_supported_versions(python_bases):
    # A real CPython (3.9 or 3.10), not a fake version string: what a user's old base would do.
    output = failed_build(REPO, python_bases["unsupported"].image)
    found = re.search(r"BASE_IMAGE has cpython (3\.\d+); " + re.escape(supported_range()), output)
    assert found and found[1] in ("3.9", "3.10"), output[-3000:]
    assert_refused_at_the_first_step(output, found[0])


def test_a_base_without_python_fails_the_build_at_once_naming_the_supported_versions(base_images):
    # The PostgreSQL image has a shell and apt, and no Python at all.
    output = failed_build(REPO, base_images.postgres)
    assert_refused_at_the_first_step(output, f"BASE_IMAGE has no python command; {supported_range()}")


# --- no pip at run time ------------------------------------------------------------------------------------------

@ON_EACH_PYTHON
def test_the_image_carries_no_pip_setuptools_or_wheel(docker_run, tested_image):
    assert_no_packaging_tools(packaging_tools(docker_run, tested_image))


#: A stand-in for the official python:*-slim layout where those images cannot be pulled: pip (and setuptools, where
#: its venv brings it) installed for the system Python under /usr/local, a `pip` command, no EXTERNALLY-MANAGED marker.
BASE_WITH_PIP = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN python -m venv /tmp/v \\
 && cp -a /tmp/v/lib/python3.*/site-packages/. "$(python -c 'import site; print(site.getsitepackages()[0])')"/ \\
 && printf '#!/usr/bin/env python3\\nimport sys\\nfrom pip._internal.cli.main import main\\nsys.exit(main())\\n' \\
      > /usr/local/bin/pip \\
 && chmod 0755 /usr/local/bin/pip \\
 && rm -rf /tmp/v /usr/lib/python3*/EXTERNALLY-MANAGED
"""


@pytest.fixture(scope="module")
def image_on_a_base_with_pip(base_images, tmp_path_factory) -> tuple[str, str]:
    """(base, image): a base that carries pip, and the sidecar image built on it."""
    context = tmp_path_factory.mktemp("base-with-pip")
    (context / "Dockerfile").write_text(BASE_WITH_PIP)
    suffix = secrets.token_hex(4)
    base = build_image(f"alembic-sidecar-test-base:pip-{suffix}", context, build_args={"BASE_IMAGE": base_images.base})
    image = build_image(f"alembic-sidecar:test-pip-base-{suffix}", REPO, build_args={"BASE_IMAGE": base})
    yield base, image
    docker("rmi", "-f", image, base, check=False)


def test_a_base_that_carries_pip_gives_an_image_without_it(docker_run, image_on_a_base_with_pip):
    base, image = image_on_a_base_with_pip
    before = packaging_tools(docker_run, base)
    assert before["on_path"] == ["pip"] and any("/pip" in path for path in before["installed"]), before
    assert_no_packaging_tools(packaging_tools(docker_run, image))


# --- the build takes in hash-locked packages only --------------------------------------------------------------------

def pip_commands(dockerfile: Path) -> list[str]:
    """Every pip command that fetches or builds packages in ``dockerfile``'s RUN instructions."""
    text = dockerfile.read_text().replace("\\\n", " ")
    runs = [line.removeprefix("RUN ") for line in text.splitlines() if line.startswith("RUN ")]
    commands = [command.strip() for run in runs for command in re.split(r"&&|\|\||;", run)]
    return [command for command in commands if re.search(r"\bpip\b.*\s(install|wheel|download)\s", command)]


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "image/derived-example/Dockerfile"])
def test_every_pip_command_of_a_build_is_hash_checked_or_offline(dockerfile):
    commands = pip_commands(REPO / dockerfile)
    assert commands, f"no pip command found in {dockerfile}"
    unchecked = [c for c in commands if "--require-hashes" not in c.split() and "--no-index" not in c.split()]
    assert unchecked == [], f"pip may fetch packages without checking their hashes: {unchecked}"
    assert all("--no-build-isolation" in c.split() for c in commands if re.search(r"\swheel\s", c)), commands


def test_every_stage_starts_from_base_image_as_given_so_a_digest_pins_the_whole_build():
    # BASE_IMAGE=python:3.15-slim-trixie@sha256:<digest> reaches every FROM unchanged (no tag is appended or derived).
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+$", text, re.M)
    stages = [line.split() for line in text.splitlines() if line.startswith("FROM ")]
    # Each stage starts from BASE_IMAGE itself or from a stage built from it (the ci and default stages: deploy).
    named: set[str] = set()
    for words in stages:
        assert words[1] == "${BASE_IMAGE}" or words[1] in named, words
        if len(words) == 4 and words[2].upper() == "AS":
            named.add(words[3])
    assert [words[1] for words in stages].count("${BASE_IMAGE}") == 2


def build_context(destination: Path) -> Path:
    """A copy of what the image is built from: the paths .dockerignore lets in."""
    ignore = (REPO / ".dockerignore").read_text()
    destination.mkdir()
    shutil.copy2(REPO / ".dockerignore", destination)
    for pattern in (line[1:] for line in ignore.splitlines() if line.startswith("!")):
        for source in REPO.glob(pattern):
            name = source.relative_to(REPO)
            if source.is_dir():
                shutil.copytree(source, destination / name,
                                ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
            else:
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / name)
    return destination


def tamper_hashes(lock: Path, package: str) -> None:
    """Change one hex digit of every hash of ``package`` in ``lock``, as a swapped or corrupted download would."""
    text = lock.read_text()
    block = re.search(rf"^{re.escape(package)}==\S+ \\\n(?:\s+--hash=sha256:[0-9a-f]{{64}}(?: \\)?\n)+", text, re.M)
    assert block, f"{package} is not in {lock.name}"
    tampered = re.sub(r"(?<=sha256:)([0-9a-f]{63})([0-9a-f])",
                      lambda m: m[1] + ("1" if m[2] == "0" else "0"), block[0])
    lock.write_text(text.replace(block[0], tampered))


@pytest.mark.parametrize(("kind", "package"), [("build", "setuptools"), ("runtime", "tenacity")])
def test_a_tampered_hash_in_either_lock_fails_the_build(kind, package, base_images, tmp_path):
    # Every minor's lock of that kind is tampered with: whichever the base's Python picks is.
    context = build_context(tmp_path / "context")
    locks = sorted((context / "requirements").glob(f"{kind}-py3.*.lock"))
    assert locks, f"no requirements/{kind}-py3.*.lock in the build context"
    for lock in locks:
        tamper_hashes(lock, package)
    output = failed_build(context, base_images.base)
    assert "do not match the hashes" in output.lower(), output[-3000:]
    assert package in output.lower(), output[-3000:]


def test_a_build_requirement_missing_from_the_build_lock_fails_the_build_instead_of_being_fetched(base_images,
                                                                                                  tmp_path):
    # `wheel` is on PyPI: an isolated build (pip's default) would fetch it, unhashed, and succeed.
    context = build_context(tmp_path / "context")
    pyproject = context / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('requires = ["setuptools>=77"]',
                                                       'requires = ["setuptools>=77", "wheel"]', 1))
    assert '"wheel"' in pyproject.read_text()
    output = failed_build(context, base_images.base)
    assert "wheel" in output and "build dependencies" in output.lower(), output[-3000:]
