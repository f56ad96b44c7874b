"""GitHub Actions: workflow-command annotations on stdout, a Markdown step summary, and step outputs."""

from __future__ import annotations

import uuid

from ..findings import ERROR, Finding
from .record import APPLIED, FAILED, PENDING, ROUND_TRIPPED, Record

_LEVEL_ICON = {ERROR: "❌", "warning": "⚠️"}
# GitHub refuses a step summary over 1 MiB: the findings table stops here.
IN_SUMMARY = 500


def annotations(record: Record) -> list[str]:
    """One ``::error``/``::warning`` line per finding, on its file and line; for a failure no finding explains, one
    ``::error`` with the summary; a ``::notice`` on each revision a failed ``check`` found pending."""
    lines = [_annotation(record, finding) for finding in record.findings]
    if not record.passed and not record.errors:
        lines.append(_command("error", {"title": f"alembic-sidecar {record.command}: {record.title}"},
                              f"exit {record.exit_code}: {record.summary}"))
    if record.command == "check" and not record.passed:
        for revision in record.revisions:
            if revision.outcome == PENDING:
                lines.append(_command("notice", {"file": record.relative(revision.path),
                                                 "title": "alembic-sidecar: pending revision"},
                                      f"revision {revision.revision} is not applied to the database"))
    return lines


def _annotation(record: Record, finding: Finding) -> str:
    properties = {"file": record.relative(finding.path), "line": finding.line,
                  "title": f"{finding.rule}" + (f" ({finding.revision})" if finding.revision else "")}
    message = finding.message + (f"\n{finding.hint}" if finding.hint else "")
    return _command("error" if finding.level == ERROR else "warning", properties, message)


def _command(name: str, properties: dict[str, object], message: str) -> str:
    shown = ",".join(f"{key}={_escape_property(str(value))}" for key, value in properties.items()
                     if value is not None)
    return f"::{name}{' ' + shown if shown else ''}::{_escape_data(message)}"


def _escape_data(text: str) -> str:
    # As GitHub's runner decodes a command's message: "%" first, so no escape is decoded twice.
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def summary(record: Record) -> str:
    """The step summary: the verdict, the revisions (with durations), the findings, and a fleet's targets."""
    verdict = "✅ passed" if record.passed else f"❌ exit {record.exit_code} ({record.title})"
    parts = [f"### alembic-sidecar {record.command}: {verdict}\n", f"{_cell(record.summary)}\n"]
    if record.current is not None or record.heads is not None:
        parts.append("| Database at | Revision files' heads |\n|---|---|\n"
                     f"| {_revs(record.current)} | {_revs(record.heads)} |\n")
    if record.revisions:
        counts = ", ".join(f"{record.count(outcome)} {outcome}" for outcome in (APPLIED, ROUND_TRIPPED, FAILED,
                                                                                PENDING) if record.count(outcome))
        rows = "".join(f"| `{r.revision}` | {_outcome(r.outcome)} | {_ms(r.duration_ms)} | "
                       f"{_code(record.relative(r.path))} |\n" for r in record.revisions)
        parts.append(f"#### Revisions ({counts})\n\n| Revision | Outcome | Duration | File |\n|---|---|---:|---|\n"
                     + rows)
    if record.findings:
        shown = record.findings[:IN_SUMMARY]
        rows = "".join(f"| {_LEVEL_ICON.get(f.level, '')} {f.level} | `{f.rule}` | {_code(f.revision)} | "
                       f"{_where(record, f)} | {_cell(f.message)} | {_cell(f.hint)} |\n" for f in shown)
        more = len(record.findings) - len(shown)
        parts.append(f"#### Findings ({len(record.findings)})\n\n| Level | Rule | Revision | Where | Finding | "
                     "Do instead |\n|---|---|---|---|---|---|\n" + rows
                     + (f"\nand {more} more: the SARIF and JUnit reports and the log list every one\n" if more else ""))
    if record.targets:
        rows = "".join(f"| {_cell(t.name)} | {_target_icon(t.exit_code)} {t.outcome} | "
                       f"{'' if t.exit_code is None else t.exit_code} | {t.applied} | {_ms(t.duration_ms)} | "
                       f"{_cell(t.summary)} |\n" for t in record.targets)
        parts.append(f"#### Targets ({len(record.targets)})\n\n| Target | Outcome | Exit | Applied | Duration | "
                     "Summary |\n|---|---|---:|---:|---:|---|\n" + rows)
    return "\n".join(parts) + "\n"


def outputs(record: Record) -> str:
    """Step outputs, ``name=value`` a line; a value with a line break in GitHub's delimiter form."""
    values = {
        "command": record.command,
        "exit-code": str(record.exit_code),
        "current": ",".join(record.current or ()),
        "heads": ",".join(record.heads or ()),
        "applied": str(record.count(APPLIED)),
        "pending": str(record.count(PENDING)),
        "failed": str(record.count(FAILED)),
        "round-tripped": str(record.count(ROUND_TRIPPED)),
        "findings": str(len(record.findings)),
        "errors": str(record.errors),
        "summary": record.summary,
    }
    lines = []
    for name, value in values.items():
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")
        else:
            lines.append(f"{name}={value}\n")
    return "".join(lines)


def _where(record: Record, finding: Finding) -> str:
    path = record.relative(finding.path)
    if path is None:
        return ""
    return _code(f"{path}:{finding.line}" if finding.line else path)


def _outcome(outcome: str) -> str:
    return {APPLIED: "✅ applied", ROUND_TRIPPED: "✅ round-tripped", FAILED: "❌ failed",
            PENDING: "⏳ pending"}.get(outcome, outcome)


def _target_icon(code: int | None) -> str:
    return "⏸️" if code is None else "✅" if code == 0 else "❌"


def _ms(duration: int | None) -> str:
    return "" if duration is None else f"{duration} ms"


def _revs(revisions: tuple[str, ...] | None) -> str:
    return "" if revisions is None else ", ".join(f"`{rev}`" for rev in revisions) or "`base`"


def _code(text: str | None) -> str:
    return "" if not text else f"`{text.replace('`', '')}`"


def _cell(text: str) -> str:
    """Text that stays inside one Markdown table cell (or one paragraph)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ").replace("<", "&lt;")
