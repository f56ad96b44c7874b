"""A reader that closes the pipe (`| head -1`) ends a command whose answer can be piped: exit 0, nothing on stderr
about it (issue 14, item 10)."""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from .conftest import SIDECAR

pytestmark = pytest.mark.integration

# What a crash on the closed pipe would print (ours, or the interpreter's at exit).
NOISE = ("Traceback", "Exception ignored", "Broken pipe", "BrokenPipeError", '"failed"')
# The image sets PYTHONUNBUFFERED=1: each line is written (and fails) at once; buffered, at the final flush.
BUFFERING = pytest.mark.parametrize("buffering", [{"PYTHONUNBUFFERED": "1"}, {}], ids=["unbuffered", "buffered"])


def _run_into_a_closed_pipe(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader is already gone: the first write of the answer fails, every time."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run([str(SIDECAR), *argv], env=env, stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=60)
    finally:
        os.close(write_end)


@BUFFERING
@pytest.mark.parametrize("argv", [["sql", "base:head"], ["history"], ["heads"]])
def test_an_offline_answer_into_a_closed_pipe_ends_quietly_with_exit_0(revisions, sidecar, argv, buffering):
    revisions.chain(3)
    result = _run_into_a_closed_pipe(argv, sidecar.environment({"DB_DRIVER": "postgresql", **buffering}))
    assert (result.returncode, result.stderr) == (0, ""), f"{argv}: exit {result.returncode}\n{result.stderr}"


@BUFFERING
def test_current_into_a_closed_pipe_ends_quietly_with_exit_0(pg_database, revisions, sidecar, buffering):
    revisions.chain(2)
    env = {"DATABASE_URL": pg_database.url}
    assert sidecar.run("upgrade", env=env).returncode == 0
    result = _run_into_a_closed_pipe(["current"], sidecar.environment({**env, **buffering}))
    assert result.returncode == 0, result.stderr
    assert not [word for word in NOISE if word in result.stderr], result.stderr


# More than a pipe holds (64 KiB) plus what `head` reads at once, so `head -1` always closes it mid-answer.
LONGER_THAN_THE_PIPE = 100_000


def _long_history(revisions) -> None:
    for number in range(LONGER_THAN_THE_PIPE // 190):
        revisions.add(rev=f"r{number:04d}" + "x" * 190, message="long id")  # history prints one id a line


def _long_sql(revisions) -> None:
    revisions.add(f'    op.execute("SELECT 1 -- {"x" * LONGER_THAN_THE_PIPE}")\n')


@pytest.mark.parametrize("command, write", [("sql base:head", _long_sql), ("history", _long_history)])
def test_head_1_on_an_answer_longer_than_the_pipe_ends_quietly_with_exit_0(revisions, sidecar, command, write):
    """The shell pipeline a user writes: `head` prints the first line and closes the pipe mid-answer."""
    write(revisions)
    script = f"set -o pipefail; {shlex.quote(str(SIDECAR))} {command} | head -1"
    result = subprocess.run(["bash", "-c", script], env=sidecar.environment({"DB_DRIVER": "postgresql"}),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stderr}"
    assert len(result.stdout.splitlines()) == 1, result.stdout[:500]
    assert result.stderr == "", result.stderr


def test_a_closed_log_stream_fails_without_a_traceback(sqlite_database, revisions, sidecar):
    """`upgrade` logs on stdout: without a reader it cannot run as asked, but it says so in one line where it can."""
    revisions.chain(1)
    result = _run_into_a_closed_pipe(["upgrade"], sidecar.environment({"DATABASE_URL": sqlite_database.url,
                                                                        "PYTHONUNBUFFERED": "1"}))
    assert result.returncode != 0
    assert not [word for word in NOISE if word in result.stderr], result.stderr
    assert sidecar.termination_log.read_text().startswith(f"exit {result.returncode} ("), result.stderr
