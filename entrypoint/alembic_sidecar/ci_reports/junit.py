"""JUnit XML: one test case per revision and per finding, plus the run itself (Jenkins, Azure DevOps, GitLab)."""

from __future__ import annotations

from xml.etree import ElementTree

from ..findings import ERROR
from .record import FAILED, PENDING, Record


def render(record: Record) -> str:
    name = f"alembic-sidecar {record.command}"
    suite = ElementTree.Element("testsuite", name=name)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total_ms = 0

    def case(classname: str, title: str, *, ms: int | None = None, file: str | None = None,
             outcome: tuple[str, str, str] | None = None, out: str | None = None) -> None:
        """``outcome``: (failure|error|skipped, message, text); None for a pass."""
        element = ElementTree.SubElement(suite, "testcase", classname=classname, name=title,
                                         time=f"{(ms or 0) / 1000:.3f}")
        if file:
            element.set("file", file)
        counts["tests"] += 1
        if outcome is not None:
            kind, message, text = outcome
            counts["failures" if kind == "failure" else "errors" if kind == "error" else "skipped"] += 1
            child = ElementTree.SubElement(element, kind, message=message)
            if kind != "skipped":
                child.set("type", record.title if kind == "error" else "finding")
            child.text = text or None
        if out:
            ElementTree.SubElement(element, "system-out").text = out

    for revision in record.revisions:
        total_ms += revision.duration_ms or 0
        outcome = None
        if revision.outcome == FAILED:
            outcome = ("failure", f"revision {revision.revision} failed", record.summary)
        elif revision.outcome == PENDING:
            # Pending is what a `check` fails on; elsewhere (after a failed upgrade) it was not reached.
            outcome = ("failure", f"revision {revision.revision} is not applied", record.summary) \
                if record.command == "check" else ("skipped", "not reached", "")
        case(f"{name}.revisions", f"{revision.revision} {revision.outcome}", ms=revision.duration_ms,
             file=record.relative(revision.path), outcome=outcome)
    for finding in record.findings:
        where = record.relative(finding.path)
        where = f"{where}:{finding.line}" if where and finding.line else where
        title = f"{finding.rule}" + (f" {finding.revision}" if finding.revision else "") + (f" {where}" if where
                                                                                            else "")
        text = "\n".join(part for part in (finding.message, finding.hint) if part)
        if finding.level == ERROR:
            case(f"{name}.findings", title, file=record.relative(finding.path),
                 outcome=("failure", finding.message, text))
        else:  # a warning passes, as it does the run: said in the case's output
            case(f"{name}.findings", title, file=record.relative(finding.path), out=f"warning: {text}")
    for target in record.targets:
        outcome = None if target.exit_code == 0 else ("skipped", target.outcome, "") if target.exit_code is None \
            else ("failure", f"exit {target.exit_code} ({target.outcome})", target.summary)
        case(f"{name}.targets", target.name, ms=target.duration_ms, outcome=outcome, out=target.summary)
    # The run itself: its verdict is a test case, so a failure no finding explains still shows.
    explained = counts["failures"] > 0
    case(name, "run", outcome=None if record.passed else
         ("failure" if explained else "error", f"exit {record.exit_code} ({record.title})", record.summary),
         out=record.summary)
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total_ms / 1000:.3f}")
    suites = ElementTree.Element("testsuites", name="alembic-sidecar", **{key: suite.get(key) or "0"
                                                                           for key in (*counts, "time")})
    suites.append(suite)
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
