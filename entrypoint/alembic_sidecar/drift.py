"""Drift: compare the database with the models' metadata as `alembic check` does, and name each difference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .alembic_env import TARGET_METADATA, Project
from .errors import ConfigurationError, PendingRevisions, SchemaDrift, SidecarError, unexpected
from .failures import Fault, describe as describe_error
from .settings import OPTIONS, Settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# At most this many differences are named in the one-line error; the `drift` event lists all of them.
IN_SUMMARY = 5


def comparison_options(settings: Settings) -> dict[str, Any]:
    """The configure() keywords of MIGRATE_COMPARE_*: what the bundled env.py's comparison looks at."""
    return {"compare_type": settings.compare_type, "compare_server_default": settings.compare_server_default}


def require_metadata(project: Project) -> None:
    """Refuse `drift` before any connection when there is nothing to compare with, or when a comparison setting
    would be lost in the user's env.py; import MIGRATE_METADATA now."""
    if not project.bundled:
        changed = [option.env for option in OPTIONS if option.field in comparison_options(project.settings)
                   and getattr(project.settings, option.field) != option.default]
        if changed:
            names = " and ".join(changed)
            raise ConfigurationError(f"{names} {'applies' if len(changed) == 1 else 'apply'} only to the bundled "
                                     "env.py; with ALEMBIC_CONFIG your env.py passes its own comparison options",
                                     hint=f"unset {names} and pass compare_type / compare_server_default to "
                                          "context.configure() in your env.py")
    elif project.metadata is None:
        raise ConfigurationError("drift compares the database with your models, and MIGRATE_METADATA is not set",
                                 hint="set MIGRATE_METADATA=module:attribute to your models' MetaData or declarative "
                                      "base (importable through MIGRATE_PYTHONPATH)")


def differences(project: Project, connection: Connection | None,
                configure_options: dict[str, Any] | None = None) -> list[str]:
    """Run Alembic's autogenerate comparison through the project's env.py, as `alembic check` does.

    ``connection`` (bundled env.py only) is handed to env.py; the user's env.py connects on its own and brings its
    own target_metadata and comparison options (include_object, compare_type...); the bundled one gets
    MIGRATE_COMPARE_TYPE and MIGRATE_COMPARE_SERVER_DEFAULT.
    """
    from alembic.autogenerate import RevisionContext
    from alembic.runtime.environment import EnvironmentContext

    script = project.script
    config = project.alembic_config()
    if project.bundled:
        config.attributes["configure_options"] = {**(configure_options or {}), **comparison_options(project.settings)}
        config.attributes["connection"] = connection
        config.attributes[TARGET_METADATA] = project.metadata
    revision_context = RevisionContext(config, script, dict(
        message=None, autogenerate=True, sql=False, head="head", splice=False, branch_label=None,
        version_path=None, rev_id=None, depends_on=None))

    def compare(revision: Any, context: Any) -> list[Any]:
        # Alembic would say only "Target database is not up to date" or "does not provide a MetaData": say more.
        if set(script.get_revisions(revision)) != set(script.get_revisions("heads")):
            current = ",".join(sorted(context.get_current_heads())) or "base"
            raise PendingRevisions(f"the database is at {current}, not at the heads of the revision files "
                                   f"({','.join(sorted(script.get_heads()))}): it cannot be compared with the models",
                                   hint="run `alembic-sidecar upgrade` first")
        if context.opts.get("target_metadata") is None:
            raise ConfigurationError("your env.py passes no target_metadata to context.configure(), so there is "
                                     "nothing to compare the database with",
                                     hint="set target_metadata in your env.py to your models' MetaData")
        _leave_out_table(context, project.settings.history_table)
        revision_context.run_autogenerate(revision, context)
        return []

    with EnvironmentContext(config, script, fn=compare, as_sql=False,
                            template_args=revision_context.template_args, revision_context=revision_context):
        script.run_env()
    # A process_revision_directives hook of the user's may empty the list when nothing changed.
    return [describe(diff) for generated in revision_context.generated_revisions
            for upgrade_ops in generated.upgrade_ops_list for diff in _flat(upgrade_ops.as_diffs())]


def _leave_out_table(context: Any, name: str) -> None:
    """The applied history's table is the sidecar's, as the version table is Alembic's: not the models' to hold.
    Wrapped around the env.py's own include_name, if it has one."""
    own = context.opts.get("include_name")

    def include_name(candidate: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "table" and candidate == name:
            return False
        return own(candidate, type_, parent_names) if own is not None else True

    context.opts["include_name"] = include_name


def drift_error(found: list[str]) -> SchemaDrift:
    from .findings import ERROR, Finding

    shown = "; ".join(found[:IN_SUMMARY]) + (f"; and {len(found) - IN_SUMMARY} more" if len(found) > IN_SUMMARY
                                             else "")
    error = SchemaDrift(f"the database and the models differ in {len(found)} "
                        f"{'way' if len(found) == 1 else 'ways'}: {shown}",
                        hint="the `drift` log event lists every difference; write the missing revision "
                             "(`alembic revision --autogenerate`) or fix the models")
    # One finding per difference: Alembic would write it into the missing revision.
    error.findings = tuple(Finding("schema-drift", ERROR, f"to match the models Alembic would: {difference}",
                                   "write the missing revision (`alembic revision --autogenerate`) or fix the models")
                           for difference in found)
    return error


def failure(exc: BaseException, database: Any, project: Project, *, timed_out: bool = False) -> SidecarError:
    """The error for a comparison that could not be made (not a difference found)."""
    from . import revisions
    from .fault_errors import Phase, fault_error
    from .session import OWN_STATEMENT_BOUND

    reason = describe_error(exc)
    fault = Fault.UNAVAILABLE if timed_out else database.classify(exc)
    phase = Phase("comparing the schema", rerun="nothing was changed; rerunning is safe",
                  refused="the server refused reading the schema",
                  refused_hint="grant the user read access to the tables and the catalog")
    what = f"the database did not answer a catalog read within {OWN_STATEMENT_BOUND:g} s" if timed_out else None
    error = fault_error(fault, phase, reason, what=what)
    if error is not None:
        return error
    env_py = None if project.bundled else revisions._file_in_traceback(exc, project.script.dir)
    if env_py:
        from .users_env import env_py_failed

        return env_py_failed(env_py, reason)
    return unexpected(f"the comparison failed: {reason}")


def _flat(diffs: list[Any]) -> list[Any]:
    """Column changes come as a list of tuples per column; every other difference is one tuple."""
    flat: list[Any] = []
    for diff in diffs:
        flat.extend(diff if isinstance(diff, list) else [diff])
    return flat


def describe(diff: tuple[Any, ...]) -> str:
    """One difference in a log system's words: ``add_column users.email``, ``remove_fk fk_a_b_c on a (b) -> c (id)``."""
    kind = diff[0]
    try:
        if kind in ("add_table", "remove_table"):
            return f"{kind} {_qualified(diff[1].schema, diff[1].name)}"
        if kind in ("add_table_comment", "remove_table_comment"):
            return f"{kind} {_qualified(diff[1].schema, diff[1].name)}"
        if kind in ("add_column", "remove_column"):
            return f"{kind} {_qualified(diff[1], diff[2])}.{diff[3].name}"
        if kind in ("add_index", "remove_index"):
            index = diff[1]
            return f"{kind} {index.name} on {_table(index)} ({_names(index.expressions)})"
        if kind in ("add_fk", "remove_fk"):
            fk = diff[1]
            target = ", ".join(element.target_fullname for element in fk.elements)
            actions = "".join(f" ON {event} {action.upper()}" for event, action in
                              (("DELETE", fk.ondelete), ("UPDATE", fk.onupdate)) if action)
            return f"{kind} {fk.name or '(unnamed)'} on {_table(fk)} ({_names(fk.columns)}) -> {target}{actions}"
        if kind in ("add_constraint", "remove_constraint"):
            constraint = diff[1]
            columns = getattr(constraint, "columns", None)
            on = f" on {_table(constraint)}" + (f" ({_names(columns)})" if columns is not None and len(columns) else "")
            return f"{kind} {type(constraint).__name__} {constraint.name or '(unnamed)'}{on}"
        if kind.startswith("modify_"):
            _, schema, table, column, _existing, old, new = diff
            return f"{kind} {_qualified(schema, table)}.{column}: {_shown(old)} -> {_shown(new)}"
    except Exception:  # a shape this Alembic did not use before: say it plainly rather than fail the gate
        pass
    return " ".join(_shown(part) for part in diff)


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _table(item: Any) -> str:
    table = getattr(item, "table", None)
    return _qualified(table.schema, table.name) if table is not None else "?"


def _names(items: Any) -> str:
    return ", ".join(str(getattr(item, "name", item)) for item in items)


def _shown(value: Any) -> str:
    if value is None or isinstance(value, (bool, int, float, str)):
        return str(value)
    try:
        return str(getattr(value, "arg", value))  # server defaults: DefaultClause(text) shows its text
    except Exception:
        return type(value).__name__
