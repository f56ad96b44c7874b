"""The child's reports to its supervisor: one typed message a line, as JSON, on an inherited pipe.

What crosses, and why the parent needs it: where the child logged in (to prove the outcome with a login of its own),
the migration's plan and steps (to prove the target and name the revision that was running when the child died),
and how the run ended (the summary to print, or the failure to exit with); and, for the CI reports only, the
revisions' positions, durations and the findings, which the parent shows but never decides on. Nothing else: the settings the parent
already has, and no secret but the endpoint's, which its own login needs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any, ClassVar, Union


@dataclass(frozen=True)
class EndpointMessage:
    """Where the child logged in, as ``dataclasses.asdict(endpoint)``. The password and TLS key password cross the
    pipe because the parent proves the outcome with its own fresh login to the same place (``_read_versions``), and
    masks them in the failure it prints: they may come from an ini file the parent never read."""

    kind: ClassVar[str] = "endpoint"
    endpoint: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """Before the first revision runs: what the database holds, and what the parent must find after."""

    kind: ClassVar[str] = "plan"
    heads: tuple[str, ...] | None  # an upgrade to the heads: the heads the database must be at
    targets: tuple[str, ...] | None  # a named upgrade target: the revisions it resolves to
    before: tuple[str, ...]


@dataclass(frozen=True)
class Steps:
    """The revisions Alembic is about to run, with their files, and the version table it records them in."""

    kind: ClassVar[str] = "steps"
    steps: tuple[tuple[str, str], ...]  # (revision, path)
    table: str
    schema: str | None


@dataclass(frozen=True)
class Step:
    """One revision applied (or reverted), and the heads Alembic recorded with it."""

    kind: ClassVar[str] = "step"
    revision: str
    heads: tuple[str, ...]
    duration_ms: int | None = None  # for the CI reports


@dataclass(frozen=True)
class Revisions:
    """For the CI reports only (never the verdict): where the database is, the heads, and the revisions pending
    above it with their files, in the order an upgrade applies them."""

    kind: ClassVar[str] = "revisions"
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: tuple[tuple[str, str], ...]  # (revision, path)


@dataclass(frozen=True)
class RoundTripped:
    """For the CI reports: a revision passed `test`'s round trip, in this long (all three steps)."""

    kind: ClassVar[str] = "round_tripped"
    revision: str
    duration_ms: int


@dataclass(frozen=True)
class Done:
    """The command's result."""

    kind: ClassVar[str] = "done"
    summary: str
    output: tuple[str, ...] = ()
    before: tuple[str, ...] | None = None  # upgrade and downgrade: what the parent must prove
    expected: tuple[str, ...] | None = None
    applied: int = 0
    findings: tuple[dict[str, Any], ...] = ()  # findings.Finding as dicts, for the CI reports


@dataclass(frozen=True)
class Failed:
    """The error the run ended with; ``state`` is the part of its message that says what the database holds, for
    the parent to replace with what its own read shows."""

    kind: ClassVar[str] = "failed"
    exit_code: int
    title: str
    message: str
    state: str | None = None
    connection_lost: bool = False
    findings: tuple[dict[str, Any], ...] = ()


Message = Union[EndpointMessage, Plan, Steps, Step, Revisions, RoundTripped, Done, Failed]
_KINDS: dict[str, type[Message]] = {kind.kind: kind for kind in (EndpointMessage, Plan, Steps, Step, Revisions,
                                                                  RoundTripped, Done, Failed)}


def encode(message: Message) -> bytes:
    return json.dumps({"kind": message.kind, **dataclasses.asdict(message)}, default=str).encode() + b"\n"


def decode(line: bytes) -> Message | None:
    """The message on ``line``; None for a line that is none (cut short, or not ours)."""
    try:
        data = json.loads(line)
        kind = _KINDS[data.pop("kind")]
        # JSON has no tuples: the lists come back as the tuples they were (the endpoint's fields stay as sent).
        return kind(**{name: value if isinstance(value, dict) else _tuples(value) for name, value in data.items()})
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _tuples(value: Any) -> Any:
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


class Reporter:
    """Sends messages; without a pipe (in-process runs) it sends nothing."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, message: Message) -> None:
        if self.fd is None:
            return
        line = encode(message)
        try:
            while line:
                line = line[os.write(self.fd, line):]
        except OSError:
            pass  # the supervisor is gone; nobody is left to tell


def read_reports(buffer: bytearray, chunk: bytes) -> list[Message]:
    """Append ``chunk`` to ``buffer`` and take every complete message out of it."""
    buffer.extend(chunk)
    reports = []
    while b"\n" in buffer:
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        message = decode(line)
        if message is not None:
            reports.append(message)
    return reports
