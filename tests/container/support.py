"""Helpers for the container tests: run the built image the way users do, locked down like a restricted pod."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.databases import assert_no_secrets
from tests.fixtures.docker import ContainerResult, Runner, docker

#: An arbitrary UID with group 0, as OpenShift assigns; the image must not care which UID it runs as.
ARBITRARY_USER = "12345:0"
#: Runs a module (``pytestmark``) or a test once on the image built on the newest supported CPython and once on the
#: oldest: its ``container_sidecar``, ``tested_image`` and ``tested_base`` are that Python's (see conftest.py).
ON_EACH_PYTHON = pytest.mark.parametrize("python", ["newest", "oldest"], indirect=True)
VERSIONS_IN_IMAGE = "/migrations/versions"
#: A revision a pull request adds to the example revisions, as a user writes it: a NOT NULL column without a default
#: on an existing table, and an index built without CONCURRENTLY (docs/pictures/step-summary.sh shows it too).
RISKY_REVISION = (Path(__file__).parent / "data" / "0004_order_status.py").read_text()


class ContainerSidecar:
    """``alembic-sidecar:test`` with the test's versions directory mounted read-only at /migrations/versions.

    By default every container runs as :data:`ARBITRARY_USER` on a read-only root filesystem (how a restricted
    Kubernetes pod runs it); ``user=None`` / ``read_only=False`` use the image's own defaults instead.
    Every result's ``docker logs`` output is checked for the registered secrets.
    """

    def __init__(self, runner: Runner, image: str, versions_dir: Path) -> None:
        self.runner, self.image, self.versions_dir = runner, image, versions_dir

    def _kw(self, env: dict[str, str] | None, volumes: dict[str, str] | None, user: str | None | bool,
            read_only: bool, **kw: Any) -> dict[str, Any]:
        mounts = {str(self.versions_dir): f"{VERSIONS_IN_IMAGE}:ro", **(volumes or {})}
        return dict(env=env or {}, volumes=mounts, user=ARBITRARY_USER if user is True else user,
                    read_only=read_only, **kw)

    def start(self, *args: str, env: dict[str, str] | None = None, volumes: dict[str, str] | None = None,
              user: str | None | bool = True, read_only: bool = True, **kw: Any) -> str:
        return self.runner.start(self.image, *args, **self._kw(env, volumes, user, read_only, **kw))

    def wait(self, name: str, timeout: float = 120) -> ContainerResult:
        result = self.runner.wait(name, timeout)
        assert_no_secrets(result.output)
        return result

    def run(self, *args: str, timeout: float = 120, **kw: Any) -> ContainerResult:
        return self.wait(self.start(*args, **kw), timeout)


#: Prints, as JSON, every installed pip/setuptools/wheel (package or metadata directory) anywhere in the image, the
#: pip commands on PATH (pip, pip3, pip3.X), and the exit status of `-m pip` for every Python interpreter the image has
#: (python, python3, python3.X).
FIND_PACKAGING_TOOLS = """
import json, os, shutil, subprocess, sys
tools = ('pip', 'setuptools', 'wheel')
found = []
for top in ('/usr', '/opt', '/root', '/home', '/tmp', '/var', '/srv', '/migrations'):
    for path, dirs, _ in os.walk(top):
        for name in dirs:
            tool = name.split('-')[0]
            if tool in tools and (name.endswith(('.dist-info', '.egg-info'))
                                  or name == tool and os.path.exists(os.path.join(path, name, '__init__.py'))):
                found.append(os.path.join(path, name))
bins = ('/usr/bin', '/usr/local/bin', '/opt/venv/bin')
names = {n for d in bins if os.path.isdir(d) for n in os.listdir(d)}
pythons = {sys.executable, *(os.path.join(d, n) for d in bins for n in names
                             if n in ('python', 'python3') or n.startswith('python3.') and n[8:].isdigit())}
print(json.dumps({
    'installed': sorted(found),
    'on_path': sorted(n for n in names | {'pip', 'pip3', 'easy_install'}
                      if (n.startswith('pip') or n == 'easy_install') and shutil.which(n)),
    'python_m_pip': {p: subprocess.run([p, '-m', 'pip', '--version'], capture_output=True).returncode
                     for p in sorted(pythons) if os.path.exists(p)},
}))
"""


def packaging_tools(runner: Runner, image: str) -> dict[str, Any]:
    """What :data:`FIND_PACKAGING_TOOLS` finds in ``image`` (run as root, so that no directory is hidden from it)."""
    result = runner(image, "-c", FIND_PACKAGING_TOOLS, entrypoint="python", user="0:0", read_only=True)
    assert_exit(result, 0)
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_no_packaging_tools(found: dict[str, Any]) -> None:
    """No pip, setuptools or wheel installed anywhere, no pip command, and `-m pip` fails for every Python."""
    assert found["installed"] == [], found
    assert found["on_path"] == [], found
    assert found["python_m_pip"] and all(code != 0 for code in found["python_m_pip"].values()), found


def wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout}s")
        time.sleep(0.05)


def container_state(name: str) -> str:
    return docker("inspect", "-f", "{{.State.Status}}", name, check=False).stdout.strip()


def assert_exit(result: ContainerResult, code: int) -> None:
    assert result.returncode == code, f"expected exit {code}, {result}"


def assert_failed(result: ContainerResult, code: int, *words: str) -> dict[str, Any]:
    """Exit ``code`` with one ``failed`` event naming it, a one-line error mentioning ``words``, no traceback."""
    assert_exit(result, code)
    assert "Traceback" not in result.output, str(result)
    failed = result.event("failed")
    assert failed["level"] == "error" and failed["exit_code"] == code, failed
    assert "\n" not in failed["error"], failed
    for word in words:
        assert word.lower() in failed["error"].lower(), f"{word!r} not in {failed['error']!r}"
    return failed


def pg_advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock key the sidecar derives from MIGRATE_LOCK_NAME (first 8 bytes of SHA-256)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def secret_file(path: Path, text: str, mode: int = 0o444) -> Path:
    """Write ``text`` to ``path`` readable by any container UID (mounted secrets are files like this)."""
    path.write_text(text)
    os.chmod(path, mode)
    return path
