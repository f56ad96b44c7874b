"""Run the real `alembic-sidecar` command as a subprocess and read what it printed."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.output import log_events

from tests.fixtures.databases import assert_no_secrets

SIDECAR = Path(sys.executable).parent / "alembic-sidecar"
DEFAULT_TIMEOUT = 60.0


def epoch(timestamp: str) -> float:
    """A log line's ISO timestamp as epoch seconds."""
    return datetime.fromisoformat(timestamp).timestamp()


@dataclass
class Result:
    """A finished sidecar process: exit code, output and the JSON log events it printed."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    started: float
    ended: float
    env: dict[str, str] = field(repr=False, default_factory=dict)

    @property
    def duration(self) -> float:
        return self.ended - self.started

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @cached_property
    def events(self) -> list[dict[str, Any]]:
        return log_events(self.output)

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def one(self, event: str) -> dict[str, Any]:
        found = self.named(event)
        assert len(found) == 1, f"expected one {event!r} event, got {len(found)}\n{self}"
        return found[0]

    @property
    def failure(self) -> dict[str, Any]:
        """The single `failed` event (error level) of a failed run."""
        failed = self.one("failed")
        assert failed.get("level") == "error", failed
        return failed

    def __str__(self) -> str:
        def tail(text: str) -> str:
            return text if len(text) < 6000 else "...\n" + text[-6000:]
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode} after {self.duration:.2f}s\n"
                f"--- stdout\n{tail(self.stdout)}--- stderr\n{tail(self.stderr)}")


def assert_exit(result: Result, code: int) -> None:
    assert result.returncode == code, f"expected exit {code}\n{result}"


def assert_clean_failure(result: Result, code: int, *words: str) -> dict[str, Any]:
    """Exit ``code``, no traceback, one `failed` event whose one-line error mentions every word (case-insensitive)."""
    assert_exit(result, code)
    assert "Traceback" not in result.output, str(result)
    failed = result.failure
    assert failed.get("exit_code") == code, failed
    error = str(failed.get("error", ""))
    assert error and "\n" not in error, failed
    for word in words:
        assert word.lower() in error.lower(), f"{word!r} not in error: {error}"
    return failed


class Running:
    """A sidecar started in the background."""

    def __init__(self, argv: list[str], env: dict[str, str], check_secrets: bool) -> None:
        self.argv, self.env, self.check_secrets = argv, env, check_secrets
        self.started = time.time()
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, encoding="utf-8", errors="replace", start_new_session=True)

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> Result:
        try:
            stdout, stderr = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            stdout, stderr = self.proc.communicate()
            result = Result(self.argv, -9, stdout, stderr, self.started, time.time(), self.env)
            pytest.fail(f"alembic-sidecar did not finish within {timeout}s (killed)\n{result}")
        result = Result(self.argv, self.proc.returncode, stdout, stderr, self.started, time.time(), self.env)
        if self.check_secrets:
            assert_no_secrets(result.output)
        return result

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


class Sidecar:
    """Starts `alembic-sidecar` with a clean environment: only PATH, HOME, LANG and what the test passes.

    ``env`` values of None remove a default. Defaults: MIGRATE_VERSIONS_DIR (the test's versions directory) and
    MIGRATE_TERMINATION_LOG (a file in tmp_path, never the machine's /dev/termination-log).
    """

    def __init__(self, tmp_path: Path, versions_dir: Path) -> None:
        self.termination_log = tmp_path / "termination-log"
        self.base = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "LANG": "C.UTF-8",
            "MIGRATE_VERSIONS_DIR": str(versions_dir),
            "MIGRATE_TERMINATION_LOG": str(self.termination_log),
        }
        self._running: list[Running] = []

    def environment(self, env: dict[str, str | None] | None) -> dict[str, str]:
        merged: dict[str, Any] = {**self.base, **(env or {})}
        return {k: str(v) for k, v in merged.items() if v is not None}

    def start(self, *args: str, env: dict[str, str | None] | None = None, check_secrets: bool = True) -> Running:
        if not SIDECAR.exists():
            pytest.fail(f"{SIDECAR} is missing: run `{sys.executable} -m pip install -e . --no-deps` first")
        running = Running([str(SIDECAR), *args], self.environment(env), check_secrets)
        self._running.append(running)
        return running

    def run(self, *args: str, env: dict[str, str | None] | None = None, timeout: float = DEFAULT_TIMEOUT,
            check_secrets: bool = True) -> Result:
        return self.start(*args, env=env, check_secrets=check_secrets).wait(timeout)

    def cleanup(self) -> None:
        for running in self._running:
            running.kill()


@pytest.fixture
def sidecar(tmp_path: Path, revisions) -> Any:
    """Runs `alembic-sidecar` (see :class:`Sidecar`); processes still running at the end are killed."""
    runner = Sidecar(tmp_path, revisions.dir)
    yield runner
    runner.cleanup()


def init_alembic_project(project: Path, template: str | None = None) -> Path:
    """`alembic init` (``template``: None for the default sync one, or "async") at ``project``, its env.py untouched;
    returns its alembic.ini, whose script_location is made absolute."""
    alembic = shutil.which("alembic", path=str(Path(sys.executable).parent))
    assert alembic, "alembic command missing from the venv"
    project.mkdir(parents=True, exist_ok=True)
    subprocess.run([alembic, "init", *(["-t", template] if template else []), str(project / "migrations")],
                   cwd=project.parent, check=True, capture_output=True, timeout=60)
    ini = project / "alembic.ini"
    if not ini.exists():  # older Alembic writes it to the working directory
        shutil.move(str(project.parent / "alembic.ini"), ini)
    text = ini.read_text()
    for form in ("script_location = migrations", "script_location = %(here)s/migrations"):
        text = text.replace(form, f"script_location = {project / 'migrations'}")
    ini.write_text(text)
    return ini


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


DATABASE_FIXTURES = {"postgresql": "pg_database", "mariadb": "mariadb_database", "sqlite": "sqlite_database"}


@pytest.fixture(params=list(DATABASE_FIXTURES))
def database(request):
    """Each of pg_database, mariadb_database and sqlite_database in turn."""
    return request.getfixturevalue(DATABASE_FIXTURES[request.param])


@pytest.fixture(params=["postgresql", "mariadb"])
def server_database(request):
    """pg_database and mariadb_database in turn (the servers with real locks and timeouts)."""
    return request.getfixturevalue(DATABASE_FIXTURES[request.param])
