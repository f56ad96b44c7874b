"""The supervised child dies with the parent that forked it, however the parent dies (issue 14, item 1).

tests/integration/test_parent_death.py measures what this buys against real servers; these tests pin down the two
ways the child learns it, with plain processes.
"""

import contextlib
import os
import select
import signal
import sys
import time

import pytest

from alembic_sidecar import supervisor

pytestmark = [pytest.mark.unit,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")]


def test_the_child_is_killed_when_its_parent_is_killed():
    read_end, write_end = os.pipe()
    sidecar = os.fork()
    if sidecar == 0:  # plays the sidecar: forks the migrating child, then waits to be killed
        try:
            parent = os.getpid()
            if os.fork() == 0:  # plays the child: says who it is, then would run for a minute
                supervisor.die_with(parent)
                os.write(write_end, f"{os.getpid()}\n".encode())
                time.sleep(60)
            else:
                os.close(write_end)
                time.sleep(60)
        finally:
            os._exit(0)  # never back into pytest from a forked process
    os.close(write_end)
    child = None
    try:
        assert select.select([read_end], [], [], 10)[0], "the child did not start"
        child = int(os.read(read_end, 64))
        os.kill(sidecar, signal.SIGKILL)
        os.waitpid(sidecar, 0)
        # The child held the pipe's last write end: it closes when the child is gone.
        assert select.select([read_end], [], [], 5)[0] and os.read(read_end, 64) == b"", \
            "the child outlived its killed parent"
    finally:
        os.close(read_end)
        for pid in (sidecar, child):
            with contextlib.suppress(ProcessLookupError, TypeError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                if pid == sidecar:
                    os.waitpid(pid, 0)


def test_a_child_whose_parent_died_before_it_could_ask_ends_at_once():
    """The parent may die between fork and prctl: then no signal comes, and the child is someone else's already."""
    pid = os.fork()
    if pid == 0:
        try:
            supervisor.die_with(os.getpid())  # a pid that is not this process's parent: the recorded one is gone
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
