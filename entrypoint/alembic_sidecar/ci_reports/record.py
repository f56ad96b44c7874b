"""The one record every CI report reads: what a run did and found, written once, after the final verdict."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

from ..findings import ERROR, Finding
from ..redaction import redact

# What happened to one revision in the run.
APPLIED = "applied"
PENDING = "pending"
FAILED = "failed"
ROUND_TRIPPED = "round-tripped"


@dataclass(frozen=True)
class Revision:
    """One revision's outcome; ``duration_ms`` for an applied or round-tripped one."""

    revision: str
    outcome: str  # APPLIED, PENDING, FAILED or ROUND_TRIPPED
    path: str | None = None
    duration_ms: int | None = None


@dataclass(frozen=True)
class Target:
    """One database of a fleet run (MIGRATE_TARGETS_FILE; cli.py fills ``Details.targets`` from fleet.py's result):
    the summary and JUnit show each."""

    name: str  # the target's label: a masked URL, schema=NAME or database=NAME
    outcome: str  # migrated, unchanged, failed, interrupted, not started
    exit_code: int | None  # None: never started
    summary: str  # the error, or the outcome
    applied: int = 0
    duration_ms: int | None = None


@dataclass
class Details:
    """What the run learned for the reports, filled in as it goes (by the supervisor from the child's messages, or
    from an in-process command's Result); never what decides the exit code."""

    current: tuple[str, ...] | None = None
    heads: tuple[str, ...] | None = None
    revisions: list[Revision] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)  # a fleet run: one per database, in the fleet's order


@dataclass(frozen=True)
class Record:
    """A finished run as the reports show it. ``targets`` is empty unless a fleet ran (one row per database)."""

    command: str
    exit_code: int
    title: str  # "success", or the failure's kind (errors.SidecarError.title)
    summary: str  # the one line the termination log holds
    root: str  # the directory report paths are relative to (the workspace, the project, or the working directory)
    versions_dir: str
    current: tuple[str, ...] | None = None
    heads: tuple[str, ...] | None = None
    revisions: tuple[Revision, ...] = ()
    findings: tuple[Finding, ...] = ()
    targets: tuple[Target, ...] = ()

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def count(self, outcome: str) -> int:
        return sum(1 for revision in self.revisions if revision.outcome == outcome)

    @property
    def errors(self) -> int:
        return sum(1 for finding in self.findings if finding.level == ERROR)

    def relative(self, path: str | None) -> str | None:
        """``path`` relative to ``root`` with forward slashes; an absolute path when it lies outside the root."""
        if path is None:
            return None
        absolute = os.path.abspath(path)
        inside = os.path.relpath(absolute, self.root)
        return absolute if inside.startswith("..") else inside.replace(os.sep, "/")

    def redacted(self, secrets: list[str]) -> Record:
        """The record with every text masked as the logs are: no report may carry a secret, whatever put it there."""
        def clean(text: str | None) -> str | None:
            return None if text is None else redact(text, secrets)

        findings = tuple(dataclasses.replace(finding, message=clean(finding.message) or "",
                                             hint=clean(finding.hint) or "") for finding in self.findings)
        targets = tuple(dataclasses.replace(target, summary=clean(target.summary) or "") for target in self.targets)
        return dataclasses.replace(self, summary=clean(self.summary) or "", findings=findings, targets=targets)


def report_root(environ: dict[str, str] | os._Environ[str]) -> str:
    """Where the CI system checked the repository out: paths in reports are relative to it."""
    return environ.get("GITHUB_WORKSPACE") or environ.get("CI_PROJECT_DIR") or os.getcwd()
