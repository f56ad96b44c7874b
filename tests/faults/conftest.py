"""Fault-injection suite: the real `alembic-sidecar` against real servers while the tests break things."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

# The fault fixtures come from the tests.fixtures.faults plugin (tests/conftest.py); the sidecar runner is shared
# with the integration suite.
from tests.fixtures.faults import pg_sessions, remove_stale_rules
from tests.integration.conftest import assert_clean_failure, sidecar  # noqa: F401

TRANSIENT = "transient database fault"


@pytest.fixture(scope="session", autouse=True)
def _no_stale_partitions() -> None:
    """A test run killed mid-partition leaves iptables rules behind; clear those of dead processes first."""
    remove_stale_rules()


def assert_transient(result: Any) -> dict[str, Any]:
    """Exit 9, one clean `failed` event of kind "transient database fault" that does not ask to fix anything."""
    failed = assert_clean_failure(result, 9)
    assert failed.get("kind") == TRANSIENT, failed
    assert "fix" not in failed["error"].lower(), f"a transient fault is not the revision's fault: {failed['error']}"
    return failed


def revision_file(revisions: Any, rev: str) -> Path:
    return next(revisions.dir.glob(f"{rev}_*.py"))


def sleeping_in_the_database(database: Any) -> bool:
    """A session of ``database`` is running the slow revision's pg_sleep."""
    return any(s["state"] == "active" and (s["query"] or "").startswith("SELECT pg_sleep")
               for s in pg_sessions(database))


def tcp_sessions(database: Any) -> list[dict[str, Any]]:
    """Sessions on ``database`` that came over TCP: on a server of our own, the sidecar's and nobody else's."""
    return [s for s in pg_sessions(database) if s["client_addr"] is not None]
