"""The child's reports to its supervisor: one JSON object a line on an inherited pipe."""

from __future__ import annotations

import json
import os
from typing import Any


class Reporter:
    """Sends ``{"kind": ..., ...}`` lines; without a pipe (in-process runs) it sends nothing."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, kind: str, **data: Any) -> None:
        if self.fd is None:
            return
        line = json.dumps({"kind": kind, **data}, default=str).encode() + b"\n"
        try:
            while line:
                line = line[os.write(self.fd, line):]
        except OSError:
            pass  # the supervisor is gone; nobody is left to tell


def read_reports(buffer: bytearray, chunk: bytes) -> list[dict[str, Any]]:
    """Append ``chunk`` to ``buffer`` and take every complete report out of it."""
    buffer.extend(chunk)
    reports = []
    while b"\n" in buffer:
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        try:
            reports.append(json.loads(line))
        except ValueError:
            continue
    return reports
