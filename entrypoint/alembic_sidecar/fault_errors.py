"""One translation of a classified database fault, and the phase it happened in, into the error to exit with."""

from __future__ import annotations

from dataclasses import dataclass

from .errors import AccessDenied, DatabaseUnreachable, SidecarError, TransientFault
from .failures import TRANSIENT, Fault

FAULT_TEXT = {
    Fault.UNAVAILABLE: "the connection to the database was lost",
    Fault.READ_ONLY: "the database is read-only (a failover or maintenance?)",
    Fault.LOCK_TIMEOUT: "a statement waited longer than MIGRATE_DDL_LOCK_TIMEOUT for a table lock",
    Fault.DEADLOCK: "the database aborted the transaction (deadlock or serialization failure)",
}


@dataclass(frozen=True)
class Phase:
    """Where a fault happened, in the words its errors use."""

    doing: str  # "comparing the schema": a transient fault's message says "<fault> while <doing>: <reason>"
    rerun: str  # a transient fault's hint: what a rerun finds
    refused: str | None = None  # the message of a refusal (exit 5), before ": <reason>"; None: not a refusal here
    refused_hint: str | None = None
    unreachable: str | None = None  # logging in: a lost connection means the server is not reachable (exit 3)
    unreachable_hint: str | None = None


def fault_error(fault: Fault | None, phase: Phase, reason: str, *, what: str | None = None) -> SidecarError | None:
    """The error for ``fault`` in ``phase``, carrying its exit code and the fault; None when the fault is none this
    phase translates (the caller's own error, or :func:`errors.unexpected`). ``what`` words the fault instead of
    FAULT_TEXT (a watchdog's timeout)."""
    if fault is Fault.ACCESS and phase.refused is not None:
        return AccessDenied(f"{phase.refused}: {reason}", hint=phase.refused_hint, fault=fault)
    if fault is Fault.UNAVAILABLE and phase.unreachable is not None:
        return DatabaseUnreachable(f"{phase.unreachable} ({reason})", hint=phase.unreachable_hint, fault=fault)
    if fault in TRANSIENT:
        return TransientFault(f"{what or FAULT_TEXT[fault]} while {phase.doing}: {reason}", hint=phase.rerun,
                              fault=fault)
    return None
