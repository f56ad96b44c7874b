"""Fixtures of the container tests: the image under test, run against the test's revisions directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.docker import Runner

from .support import ContainerSidecar


@pytest.fixture
def container_sidecar(docker_run: Runner, sidecar_image: str, revisions) -> ContainerSidecar:
    """Runs the image under test against the ``revisions`` directory (see :class:`ContainerSidecar`)."""
    return ContainerSidecar(docker_run, sidecar_image, revisions.dir)


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A host directory any container UID may write to (SQLite files, markers); mount it where needed."""
    path = tmp_path / "shared"
    path.mkdir()
    path.chmod(0o777)
    return path
