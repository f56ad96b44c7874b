"""CI reports: one record of the run (record.py), written once by the command line after the final verdict, in
each CI system's own format: GitHub Actions (github.py), SARIF (sarif.py), JUnit XML (junit.py) and GitLab Code
Quality (codequality.py).

Every path is tried before any database work, so a report that cannot be written is exit 2 naming its setting; a
report that fails later is logged and never changes the run's exit code.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError

#: The report files: the settings field, its variable, and the module (in this package) that renders it.
FILES = (("report_sarif", "MIGRATE_REPORT_SARIF", "sarif"),
         ("report_junit", "MIGRATE_REPORT_JUNIT", "junit"),
         ("report_codequality", "MIGRATE_REPORT_CODEQUALITY", "codequality"))
#: The files a GitHub Actions runner hands each step, appended to (never replaced).
GITHUB_FILES = ("GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT")


@dataclass(frozen=True)
class Reports:
    """The reports this run writes: files by setting name, and whether it runs under GitHub Actions."""

    files: tuple[tuple[str, str, str], ...]  # (variable, path, module)
    github: bool
    github_files: tuple[tuple[str, str], ...]  # (variable, path)

    def check(self) -> None:
        """Exit 2 (ConfigurationError) naming the setting whose path cannot be written, before any database work."""
        for name, path, _ in self.files:
            _check_writable(name, path, append=False)
        for name, path in self.github_files:
            _check_writable(name, path, append=True)

    def write(self, record: object, stdout: object) -> list[tuple[str, str]]:
        """Write every report; the (variable, reason) of each that failed."""
        from . import github

        failed = []
        for name, path, module in self.files:
            render = importlib.import_module(f"{__name__}.{module}").render
            failed += _write(name, path, render(record), append=False)
        if self.github:
            for line in github.annotations(record):
                print(line, file=stdout)  # type: ignore[call-overload]
            texts = {"GITHUB_STEP_SUMMARY": github.summary(record), "GITHUB_OUTPUT": github.outputs(record)}
            for name, path in self.github_files:
                failed += _write(name, path, texts[name], append=True)
        return failed


def requested(settings: object, environ: Mapping[str, str]) -> Reports | None:
    """The reports the settings and the environment ask for; None when there are none (no import, no cost)."""
    files = tuple((name, getattr(settings, field), module) for field, name, module in FILES
                  if getattr(settings, field) is not None)
    github = environ.get("GITHUB_ACTIONS") == "true"
    github_files = tuple((name, environ[name]) for name in GITHUB_FILES if github and environ.get(name))
    if not files and not github:
        return None
    return Reports(files, github, github_files)


def _check_writable(name: str, path: str, *, append: bool) -> None:
    if os.path.isdir(path):
        raise ConfigurationError(f"{name}={path!r} is a directory", hint=f"set {name} to a file path inside it")
    existed = os.path.exists(path)
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        where = "its directory does not exist" if not existed and not os.path.isdir(os.path.dirname(path) or ".") \
            else exc.strerror
        raise ConfigurationError(f"{name}={path!r} cannot be written: {where}",
                                 hint=f"create its directory, make it writable by this user, or unset {name}") \
            from None
    if not existed and not append:
        os.unlink(path)  # tried only: an empty report would look like a run that found nothing


def _write(name: str, path: str, text: str, *, append: bool) -> list[tuple[str, str]]:
    try:
        with open(path, "a" if append else "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        return [(name, exc.strerror or str(exc))]
    return []
