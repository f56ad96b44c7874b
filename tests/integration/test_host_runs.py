"""A run on a plain host, as root, with the default MIGRATE_TERMINATION_LOG creates nothing in /dev (issue 14, 11).

The run gets a /dev of its own (a tmpfs in a private mount namespace), so the machine's /dev is never touched, even
by code that gets this wrong.
"""

from __future__ import annotations

import subprocess

import pytest

from .conftest import SIDECAR, assert_exit

pytestmark = pytest.mark.integration

# Exit status of the script when this machine does not let it make a private /dev (not root, no mount namespace).
NO_PRIVATE_DEV = 77
SCRIPT = f"""
mount -t tmpfs tmpfs /dev 2>/dev/null || exit {NO_PRIVATE_DEV}
"$0" upgrade
code=$?
echo "/dev holds: $(ls -A /dev)"
exit $code
"""


def test_a_run_with_the_default_termination_log_creates_nothing_in_dev(sqlite_database, revisions, sidecar):
    revisions.chain(1)
    env = sidecar.environment({"DATABASE_URL": sqlite_database.url, "MIGRATE_TERMINATION_LOG": None})
    try:
        result = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", SCRIPT, str(SIDECAR)],
                                env=env, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.skip("no unshare(1) here")
    if result.returncode == NO_PRIVATE_DEV or "unshare failed" in result.stderr:
        pytest.skip(f"cannot give the run a private /dev here: {result.stderr.strip()}")
    assert_exit(result, 0)
    assert "/dev holds: \n" in result.stdout, result.stdout
    assert sqlite_database.revisions() == [revisions.head]
