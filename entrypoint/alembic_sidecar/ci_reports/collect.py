"""The record's details of a supervised run, from the child's messages and the parent's own reads."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..findings import ERROR, Finding
from ..redaction import redact
from ..report import Done, Failed, Message, Revisions, RoundTripped, Step
from .record import APPLIED, FAILED, PENDING, ROUND_TRIPPED, Details, Revision


def from_messages(details: Details, messages: Sequence[Message], *, command: str, failure: str | None,
                  read_back: tuple[str, ...] | None, undone: Sequence[str], culprit: tuple[str, str] | None,
                  secrets: list[str]) -> None:
    """Fill ``details`` in. ``failure``: the final error's message (None for a passed run); ``read_back``: the
    database's revisions as the parent read them (they win over the child's); ``undone``: revisions a rollback undid;
    ``culprit``: the (revision, file) that was running when a migration failed; ``secrets``: what the parent knows
    that the child may have put in a finding (a password from ALEMBIC_CONFIG's ini)."""
    position = _last(messages, Revisions)
    if position is not None:
        details.current, details.heads = position.current, position.heads
    if read_back is not None:
        details.current = read_back
    ended = _last(messages, Failed) if failure is not None else _last(messages, Done)
    for fields in ended.findings if ended is not None else ():
        finding = Finding(**fields)
        details.findings.append(dataclasses.replace(finding, message=redact(finding.message, secrets),
                                                    hint=redact(finding.hint, secrets)))
    # `test` runs each revision three times: its outcome is its round trip, never a step.
    applied = {} if command == "test" else {
        message.revision: message.duration_ms for message in messages
        if isinstance(message, Step) and message.duration_ms is not None and message.revision not in undone}
    tested = {message.revision: message.duration_ms for message in messages if isinstance(message, RoundTripped)}
    failed = {finding.revision for finding in details.findings if finding.revision}
    if failure is not None and culprit is not None and culprit[0] not in failed and command != "test":
        failed.add(culprit[0])
        details.findings.append(Finding("migration-failed", ERROR, failure, "fix the revision and rerun", *culprit))
    for revision, path in position.pending if position is not None else ():
        outcome = ROUND_TRIPPED if revision in tested else FAILED if revision in failed else \
            APPLIED if revision in applied else PENDING
        details.revisions.append(Revision(revision, outcome, path, tested.get(revision, applied.get(revision))))


def _last(messages: Sequence[Message], kind: type) -> Message | None:
    return next((message for message in reversed(messages) if isinstance(message, kind)), None)
