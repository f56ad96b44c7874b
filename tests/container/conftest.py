"""Fixtures of the container tests: the images under test (one per tested Python), run against the test's revisions
directory.

The image is built on two bases, the newest supported CPython (the Dockerfile's default, ``sidecar_image``) and the
oldest (``sidecar_image_oldest``). A module or test marked with :data:`support.ON_EACH_PYTHON` runs once on each;
its ``container_sidecar`` and ``tested_image`` are then the image of that run's Python. Everything else runs on the
newest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.docker import IMAGE, IMAGES_ENV, REPO, BaseImages, Runner, _read_images_env, build_image, docker

from .actions_runner import ActionsRunner
from .support import ContainerSidecar


@dataclass(frozen=True)
class PythonBase:
    """A base image tests/setup/docker.sh chose and the CPython minor it carries."""

    minor: str
    image: str


@pytest.fixture(scope="session")
def python_bases(base_images: BaseImages) -> dict[str, PythonBase]:
    """``newest``, ``oldest`` and ``unsupported`` (a CPython below the range) as tests/setup/docker.sh chose them."""
    values = _read_images_env(IMAGES_ENV)
    missing = [key for key in ("BASE_IMAGE_OLDEST", "PYTHON_NEWEST", "PYTHON_OLDEST", "BASE_IMAGE_UNSUPPORTED")
               if key not in values]
    if missing:
        pytest.fail(f"{IMAGES_ENV} has no {', '.join(missing)}; rerun tests/setup/docker.sh", pytrace=False)
    bases = {"newest": PythonBase(values["PYTHON_NEWEST"], base_images.base),
             "oldest": PythonBase(values["PYTHON_OLDEST"], values["BASE_IMAGE_OLDEST"]),
             "unsupported": PythonBase("", values["BASE_IMAGE_UNSUPPORTED"])}
    for base in bases.values():
        if docker("image", "inspect", base.image, check=False).returncode != 0:
            pytest.fail(f"{base.image} (from {IMAGES_ENV}) is not present; rerun tests/setup/docker.sh", pytrace=False)
    return bases


@pytest.fixture(scope="session")
def sidecar_image_oldest(python_bases: dict[str, PythonBase]) -> str:
    """The real Dockerfile built on the oldest supported CPython's base, once per session."""
    return build_image(f"{IMAGE}-oldest", REPO, build_args={"BASE_IMAGE": python_bases["oldest"].image})


@pytest.fixture(scope="session")
def ci_image(base_images) -> str:
    """The Dockerfile's `ci` target: the deploy image plus squawk."""
    return build_image(f"{IMAGE}-ci", REPO, build_args={"BASE_IMAGE": base_images.base}, target="ci")


@pytest.fixture(scope="session")
def action_image(base_images, tmp_path_factory) -> ActionsRunner:
    """The action's image, built once per session as the runner builds it (see actions_runner.py)."""
    return ActionsRunner.build(REPO / "action.yml", f"{IMAGE}-action", tmp_path_factory.mktemp("actions"),
                               base_images.base)


@pytest.fixture
def python(request) -> str:
    """Which tested Python this test runs on: ``newest`` unless :data:`support.ON_EACH_PYTHON` says otherwise."""
    return getattr(request, "param", "newest")


@pytest.fixture
def tested_image(python: str, request) -> str:
    """The image built on this test's Python (see :func:`python`)."""
    return request.getfixturevalue("sidecar_image" if python == "newest" else "sidecar_image_oldest")


@pytest.fixture
def tested_base(python: str, python_bases: dict[str, PythonBase]) -> PythonBase:
    """The base :func:`tested_image` was built on."""
    return python_bases[python]


@pytest.fixture
def container_sidecar(docker_run: Runner, tested_image: str, revisions) -> ContainerSidecar:
    """Runs the image under test against the ``revisions`` directory (see :class:`ContainerSidecar`)."""
    return ContainerSidecar(docker_run, tested_image, revisions.dir)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A host directory any container UID may write to (SQLite files, markers); mount it where needed."""
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o777)
    return path
