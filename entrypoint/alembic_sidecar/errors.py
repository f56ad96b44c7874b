"""The exceptions a run can end with; each carries the exit code the command line returns for it."""

from __future__ import annotations


class SidecarError(Exception):
    """Base of every failure a user can cause or meet; ``exit_code`` is what the process returns."""

    exit_code = 70
    title = "internal error"
    findings: tuple = ()  # findings.Finding: what the CI reports show for this failure, where it has any
    applied = 0  # revisions of the failed run that stay applied, as the supervisor read them back (a fleet shows it)

    def __init__(self, message: str, *, hint: str | None = None, fault: object = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fault = fault  # the failures.Fault behind it, where one database error was

    def __str__(self) -> str:
        return f"{self.message}: {self.hint}" if self.hint else self.message


class Signalled(BaseException):
    """SIGTERM or SIGINT, raised where the signal found the process; turned into :class:`Interrupted`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class MigrationFailed(SidecarError):
    """A revision raised while it was applied; earlier revisions stay applied where the database allows."""

    exit_code = 1
    title = "migration failed"


class ConfigurationError(SidecarError):
    """The settings are unusable: bad URL, unknown driver, missing versions directory, bad number, unreadable file."""

    exit_code = 2
    title = "configuration error"


class DatabaseUnreachable(SidecarError):
    """No login succeeded before ``MIGRATE_WAIT_TIMEOUT`` ran out."""

    exit_code = 3
    title = "database not reachable in time"


class LockTimeout(SidecarError):
    """Another migrator held the migration lock for longer than ``MIGRATE_LOCK_TIMEOUT``."""

    exit_code = 4
    title = "lock not acquired in time"


class AccessDenied(SidecarError):
    """The server refused the login or a privilege (wrong password, unknown user or database, missing grant), or TLS
    failed on a certificate: the server's did not verify, or the server refused ours."""

    exit_code = 5
    title = "authentication or permission failure"


class UnknownDatabaseRevision(SidecarError):
    """The database carries a revision the versions directory does not know (it is ahead of this image)."""

    exit_code = 6
    title = "unknown database revision"


class RevisionError(SidecarError):
    """The revision files are unusable (syntax or import error, several heads, broken graph), or the target is unknown
    or cannot be reached from the database's revision."""

    exit_code = 7
    title = "revision graph error"


class PendingRevisions(SidecarError):
    """``check`` or ``drift`` found revisions that are not applied yet, or ``ready`` waited for them in vain."""

    exit_code = 8
    title = "pending revisions"


class TransientFault(SidecarError):
    """The database failed under the run (connection lost, read-only, lock or deadlock timeout); a rerun can fix it."""

    exit_code = 9
    title = "transient database fault"


class SchemaDrift(SidecarError):
    """``drift`` found differences between the database and the models' metadata."""

    exit_code = 10
    title = "schema drift"


class RiskyMigration(SidecarError):
    """``lint`` found error-level findings: statements that lock or rewrite a busy table, or break the application
    version still running."""

    exit_code = 11
    title = "risky migration"

    def __init__(self, message: str, *, hint: str | None = None, findings: tuple = ()) -> None:
        super().__init__(message, hint=hint)
        self.findings = findings


class AppliedHistoryChanged(SidecarError):
    """An applied revision's file changed or disappeared since it was applied (``check``; ``upgrade`` with
    ``MIGRATE_VERIFY_HISTORY=strict``); ``findings`` names each one."""

    exit_code = 12
    title = "applied history changed"

    def __init__(self, message: str, *, hint: str | None = None, findings: tuple = ()) -> None:
        super().__init__(message, hint=hint)
        self.findings = findings


class Interrupted(SidecarError):
    """SIGTERM or SIGINT arrived; the current transaction was rolled back and the lock released."""

    title = "interrupted"

    def __init__(self, signal_name: str, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.signal_name = signal_name
        self.exit_code = exit_code


REPORT_THIS = "please report this with the log"


def unexpected(message: str) -> SidecarError:
    """The fallback for what the sidecar did not expect (exit 70): a bug to report, said in one line."""
    return SidecarError(message, hint=REPORT_THIS)


def unexpected_exception(exc: BaseException) -> SidecarError:
    """An exception nothing translated: its type and message, never a traceback that could carry a secret."""
    return unexpected(f"unexpected {type(exc).__name__}: {exc}")


#: Every documented exit code, in README order: (code, title, what to do).
EXIT_CODES: list[tuple[int, str, str]] = [
    (0, "success", "the database is at the target (also when it already was), or the command did its job"),
    (MigrationFailed.exit_code, MigrationFailed.title,
     "a revision raised; read the error (it says what the database holds after the rollback), fix the revision, "
     "rerun"),
    (ConfigurationError.exit_code, ConfigurationError.title,
     "a setting, flag or file is wrong; the message names it; retrying will not help"),
    (DatabaseUnreachable.exit_code, DatabaseUnreachable.title,
     "no login within MIGRATE_WAIT_TIMEOUT; check host, port, network; retrying later may help"),
    (LockTimeout.exit_code, LockTimeout.title,
     "another migrator held the lock past MIGRATE_LOCK_TIMEOUT; retrying later may help"),
    (AccessDenied.exit_code, AccessDenied.title,
     "wrong password, unknown user or database, or a missing grant; or TLS: the server's certificate did not verify "
     "(CA, host name), the server refused ours (or its absence), or the handshake failed; retrying will not help"),
    (UnknownDatabaseRevision.exit_code, UnknownDatabaseRevision.title,
     "the database is ahead of these revisions; deploy the newer image or set MIGRATE_ON_UNKNOWN_REVISION=ignore"),
    (RevisionError.exit_code, RevisionError.title,
     "a revision file does not load, there are several heads, or the target is unknown or cannot be reached from the "
     "database's revision (`+1` at the head); fix the revision files or the target"),
    (PendingRevisions.exit_code, PendingRevisions.title,
     "`check`, `drift` and `ready` only: revisions are waiting to be applied (`ready`: MIGRATE_READY_TIMEOUT ran "
     "out before the database reached them)"),
    (TransientFault.exit_code, TransientFault.title,
     "the connection was lost, the server turned read-only, a lock or deadlock timeout hit, or MIGRATE_TIMEOUT ran "
     "out; nothing half-done stays recorded; safe to retry"),
    (SchemaDrift.exit_code, SchemaDrift.title,
     "`drift` only: the database and your models (MIGRATE_METADATA, or your env.py's target_metadata) differ; the "
     "`drift` log event lists each difference; write the missing revision (`alembic revision --autogenerate`) or "
     "fix the models"),
    (RiskyMigration.exit_code, RiskyMigration.title,
     "`lint` only: a revision locks or rewrites a table, or drops or renames what the running application uses; "
     "each finding is printed as `file:line: error [rule] ...` with what to do instead; fix the revision, or turn "
     "the rule off (MIGRATE_LINT_IGNORE, or a `# alembic-sidecar lint-ignore: RULE` comment in the revision file)"),
    (AppliedHistoryChanged.exit_code, AppliedHistoryChanged.title,
     "`check`, and `upgrade` with MIGRATE_VERIFY_HISTORY=strict (before applying anything): the file of an applied "
     "revision changed (beyond whitespace and comments) or disappeared; the `applied_history_changed` event names "
     "each; revert the file and write a new revision for the change"),
    (SidecarError.exit_code, SidecarError.title, "a bug in alembic-sidecar; please report it with the log"),
    (130, "interrupted by SIGINT", "the current transaction was rolled back and the lock released"),
    (143, "interrupted by SIGTERM", "the current transaction was rolled back and the lock released"),
]


#: A fleet exits with its worst target's code, the first of this order that any target gave: a failure that needs a
#: person (a bug, bad settings, bad revisions, a database ahead, a refused login, a failed revision, drift, pending
#: revisions), then an interruption, then what a rerun can fix (a transient fault, a lock held, a server not up).
FLEET_ORDER: tuple[int, ...] = (70, 2, 7, 6, 5, 1, 10, 8, 143, 130, 9, 4, 3, 0)


def worst(codes: list[int]) -> int:
    """The code a fleet exits with (an unknown code counts as a bug)."""
    ranks = [FLEET_ORDER.index(code) if code in FLEET_ORDER else 0 for code in codes]
    return FLEET_ORDER[min(ranks)] if ranks else 0
