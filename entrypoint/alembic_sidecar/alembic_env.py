"""Alembic's side: the bundled or the user's project, revision checks, and running a migration through it."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from . import revisions
from .errors import ConfigurationError, RevisionError, SidecarError, UnknownDatabaseRevision
from .settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy import MetaData
    from sqlalchemy.engine import Connection

# The attribute that hands MIGRATE_METADATA to the bundled env.py, which passes it on as target_metadata.
TARGET_METADATA = "target_metadata"


def bundled_env_dir() -> str:
    """The installed copy of image/ (env.py, script.py.mako), shipped as the package alembic_sidecar.image."""
    from . import image

    return os.path.dirname(os.path.abspath(image.__file__))


# The bundled project's revision files as imported and checked, by versions directory: a fleet's parent imports
# them once before forking, and each target process starts with them instead of importing every file again.
_BUILT: dict[str, ScriptDirectory] = {}


@dataclass
class Project:
    """Where revisions come from: the bundled environment plus a versions directory, or the user's alembic.ini."""

    settings: Settings
    config: Config | None = None
    index: revisions.RevisionIndex | None = None
    _script: ScriptDirectory | None = field(default=None, repr=False)
    _metadata: MetaData | None = field(default=None, repr=False)

    @property
    def bundled(self) -> bool:
        return self.settings.alembic_config is None

    @property
    def versions_dirs(self) -> list[str]:
        if self.bundled:
            return [self.settings.versions_dir]
        return [str(path) for path in self.script._version_locations]

    def alembic_config(self) -> Config:
        if self.config is None:
            from alembic.config import Config

            self.config = Config(stdout=sys.stdout)
        return self.config

    @property
    def script(self) -> ScriptDirectory:
        """Alembic's view of the revisions; building it imports every revision file."""
        if self._script is None and self.bundled:
            self._script = _BUILT.get(self.settings.versions_dir)
        if self._script is None:
            from alembic.script import ScriptDirectory
            from alembic.util import CommandError

            try:
                if self.bundled:
                    script = ScriptDirectory(bundled_env_dir(), version_locations=[self.settings.versions_dir])
                else:
                    script = ScriptDirectory.from_config(self.alembic_config())
            except CommandError as exc:
                raise ConfigurationError(f"the Alembic project cannot be used: {exc}",
                                         hint="check script_location in your alembic.ini") from None
            directory = self.settings.versions_dir if self.bundled else script.dir
            revisions.load(script, directory)
            self._script = script
            if self.bundled:
                _BUILT[self.settings.versions_dir] = script
        return self._script

    @property
    def metadata(self) -> MetaData | None:
        """MIGRATE_METADATA, imported on first use (never by the fast no-op); None when it is not set."""
        if self._metadata is None and self.settings.metadata is not None:
            self._metadata = load_metadata(self.settings.metadata)
        return self._metadata

    def heads(self) -> frozenset[str]:
        if self.index is not None:
            return self.index.heads
        return frozenset(self.script.get_heads())

    def is_known(self, revision: str) -> bool:
        if self.index is not None and revision in self.index.parents:
            return True
        from alembic.util import CommandError

        try:
            return self.script.get_revision(revision) is not None
        except CommandError:
            return False


def open_project(settings: Settings) -> tuple[Project, str | None]:
    """Check the revision source before any connection; return it and the ini's URL (ALEMBIC_CONFIG mode only)."""
    _extend_sys_path(settings.pythonpath)
    if settings.alembic_config is None:
        names = revisions.check_versions_dir(settings.versions_dir)
        return Project(settings, index=revisions.scan(settings.versions_dir, names)), None
    path = settings.alembic_config
    if settings.metadata is not None:
        raise ConfigurationError("MIGRATE_METADATA is for the bundled env.py; with ALEMBIC_CONFIG your env.py sets "
                                 "its own target_metadata",
                                 hint="unset MIGRATE_METADATA and set target_metadata in your env.py")
    if not os.path.isfile(path):
        raise ConfigurationError(f"ALEMBIC_CONFIG={path!r} is not a file", hint="point it at your alembic.ini")
    from alembic.config import Config

    config = Config(path, stdout=sys.stdout)
    try:
        fallback_url = config.get_main_option("sqlalchemy.url")
    except Exception as exc:  # configparser's interpolation errors
        raise ConfigurationError(f"cannot read {path}: {type(exc).__name__}",
                                 hint="double every % in its values (%%)") from None
    return Project(settings, config=config), fallback_url


def _extend_sys_path(pythonpath: str | None) -> None:
    for entry in reversed([item for item in (pythonpath or "").split(":") if item]):
        if entry not in sys.path:
            sys.path.insert(0, entry)


def load_metadata(reference: str) -> MetaData:
    """The MetaData that ``module:attribute`` names: a MetaData itself, or a declarative base (its ``.metadata``)."""
    import importlib

    from sqlalchemy import MetaData

    module_name, _, attribute = reference.partition(":")
    setting = f"MIGRATE_METADATA={reference}"
    try:
        found: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name + ".").startswith(exc.name + "."):
            raise _import_failed(setting, module_name, exc) from None
        raise ConfigurationError(f"{setting}: module {module_name!r} is not importable",
                                 hint="add the directory that holds it to MIGRATE_PYTHONPATH, or install it in a "
                                      "derived image") from None
    except (Exception, SystemExit) as exc:  # the module's own code runs here and may raise anything
        raise _import_failed(setting, module_name, exc) from None
    for name in attribute.split("."):
        try:
            found = getattr(found, name)
        except Exception:  # AttributeError, or a property of the user's that raises
            raise ConfigurationError(f"{setting}: {module_name} has no attribute {attribute!r}",
                                     hint="name the MetaData or declarative base defined in that module") from None
    if isinstance(found, MetaData):
        return found
    try:
        inner = getattr(found, "metadata", None)
    except Exception:
        inner = None
    if isinstance(inner, MetaData):
        return inner
    raise ConfigurationError(f"{setting} is a {type(found).__name__}, not a SQLAlchemy MetaData or declarative base",
                             hint="name a MetaData(...) or a declarative base (its .metadata is used)")


def _import_failed(setting: str, module_name: str, exc: BaseException) -> ConfigurationError:
    import traceback

    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not frame.filename.startswith("<")]
    where = f" at {frames[-1].filename}, line {frames[-1].lineno}" if frames else ""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return ConfigurationError(f"{setting}: importing {module_name} raised {type(exc).__name__}"
                              f"{': ' + text if text else ''}{where}",
                              hint="fix that module or install what it imports (MIGRATE_PYTHONPATH, or a derived "
                                   "image)")


def check_revisions(project: Project, target: str, current: Iterable[str]) -> list[str]:
    """Raise for a broken graph or an unknown target; return the database revisions these files do not know."""
    from alembic.util import CommandError

    script = project.script
    heads = script.get_heads()
    if target == "head" and len(heads) > 1:
        raise RevisionError(f"the revision files have {len(heads)} heads: {', '.join(sorted(heads))}",
                            hint="merge them with `alembic merge heads`, or set MIGRATE_TARGET=heads")
    if target not in ("head", "heads", "base") and not target.startswith(("+", "-")):
        try:
            if not script.get_revisions(target):
                raise CommandError("not found")
        except CommandError:
            raise RevisionError(f"target revision {target!r} is not in the revision files",
                                hint="use `alembic-sidecar heads` to list revisions, or MIGRATE_TARGET=head") from None
    return [revision for revision in current if not project.is_known(revision)]


def steps_to(project: Project, destination: str, current: Sequence[str], *, downgrade: bool) -> list[str]:
    """The revisions Alembic would run from ``current`` to ``destination``, resolved as Alembic's upgrade does.

    A target that cannot be reached from the database's revisions (``+1`` at the head, a downgrade target above
    them, ``+1`` from several heads) is a revision graph error: nothing has been written yet.
    """
    from alembic.util import CommandError

    script = project.script
    try:
        steps = (script._downgrade_revs(destination, tuple(current)) if downgrade
                 else script._upgrade_revs(destination, tuple(current)))
    except CommandError as exc:
        raise RevisionError(f"the target {destination!r} cannot be reached from the database's revision "
                            f"{','.join(sorted(current)) or 'base'}: {exc}",
                            hint=f"choose a target {'below' if downgrade else 'above'} it from `alembic-sidecar "
                                 "history`" + ("" if downgrade else ", or MIGRATE_TARGET=head")) from None
    return [step.revision.revision for step in steps]


def resolve(project: Project, destination: str) -> list[str] | None:
    """The revision ids a target names (an id, a partial id, ``label@rev``, ``heads``); None for a relative one."""
    from alembic.util import CommandError

    if destination.startswith(("+", "-")) or destination.partition("@")[2].startswith(("+", "-")):
        return None
    try:
        return sorted(script.revision for script in project.script.get_revisions(destination) if script is not None)
    except CommandError:
        return None


def unknown_revision_error(unknown: Sequence[str]) -> UnknownDatabaseRevision:
    return UnknownDatabaseRevision(
        f"the database is at revision {', '.join(unknown)}, which these revision files do not know "
        "(the database is ahead of this image)",
        hint="deploy the image with the newer revisions, or set MIGRATE_ON_UNKNOWN_REVISION=ignore to start anyway")


@dataclass
class AppliedStep:
    revision: str
    description: str
    duration_ms: int
    upgrade: bool


def migrate(project: Project, connection: Connection | None, destination: str, *, downgrade: bool = False,
            configure_options: dict[str, Any] | None = None,
            on_step: Callable[[AppliedStep, tuple[str, ...]], None] | None = None,
            on_plan: Callable[[list[tuple[str, str]], str, str | None], None] | None = None,
            on_start: Callable[[Connection], None] | None = None,
            on_record: Callable[[Connection, Any, int], None] | None = None) -> None:
    """Run Alembic's upgrade (or downgrade) to ``destination`` on ``connection`` (None: the env.py connects).

    ``on_plan`` hears the steps (revision, file) and the version table (name, schema) the env.py configured before
    any step runs; ``on_step`` hears each applied step with the
    heads Alembic records after it, from Alembic's own ``on_version_apply`` hook. The applied history's hooks get the
    migration's connection: ``on_start`` before the first step, inside the transaction Alembic's own reads began
    (which the first step joins, as Alembic's creation of its version table does), ``on_record`` each step inside
    its transaction, before it commits.
    """
    from alembic.runtime.environment import EnvironmentContext

    script = project.script
    config = project.alembic_config()
    mark = time.monotonic()

    def record(ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        nonlocal mark
        now = time.monotonic()
        if on_record is not None:
            on_record(ctx.connection, step, round((now - mark) * 1000))
        if on_step is not None:
            # A downgrade step's revision is the one it removes: its up_revision too.
            script_revision = step.up_revision
            on_step(AppliedStep(",".join(step.up_revision_ids) or "base",
                                (getattr(script_revision, "doc", "") or "").strip(),
                                round((now - mark) * 1000), step.is_upgrade), tuple(heads))
        mark = now

    options = dict(configure_options or {})
    options["on_version_apply"] = record
    config.attributes["configure_options"] = options
    config.attributes["connection"] = connection
    config.attributes[TARGET_METADATA] = project.metadata if project.bundled else None

    def steps(revision: Any, context: Any) -> Any:
        if record not in context.on_version_apply_callbacks:
            # A user's env.py calls configure() with options of its own: hook in beside them.
            context.on_version_apply_callbacks = (*context.on_version_apply_callbacks, record)
        if on_start is not None:
            on_start(context.connection)
        planned = (script._downgrade_revs(destination, revision) if downgrade
                   else script._upgrade_revs(destination, revision))
        if on_plan is not None:
            on_plan([(step.revision.revision, step.revision.path) for step in planned],
                     context.version_table, context.version_table_schema)
        return planned

    with EnvironmentContext(config, script, fn=steps, destination_rev=destination):
        script.run_env()


def offline_sql(project: Project, url: str, revision_range: str, version_table: str,
                version_table_schema: str | None = None, output: TextIO | None = None,
                on_failure: Callable[[str, Exception], None] | None = None) -> None:
    """Alembic's offline mode: write the upgrade's SQL to ``output`` (default: stdout) without connecting.

    With ``on_failure``, a revision whose upgrade() raises is handed to it (its id, the exception) and the next one
    is rendered; without, the first failure ends the rendering.
    """
    from alembic.runtime.environment import EnvironmentContext
    from alembic.util import CommandError

    script = project.script
    config = project.alembic_config()
    if output is not None:
        config.output_buffer = output  # a user's env.py gets it too, unless it passes an output_buffer of its own
    config.attributes["offline_url"] = url
    if not project.bundled:  # a user's env.py renders offline from its ini's URL: only the dialect matters
        config.set_main_option("sqlalchemy.url", url)
    config.attributes["configure_options"] = {"version_table": version_table,
                                              "version_table_schema": version_table_schema}
    # Offline SQL names constraints as the online upgrade would: by the metadata's naming_convention.
    config.attributes[TARGET_METADATA] = project.metadata
    starting, _, destination = revision_range.rpartition(":")
    try:
        def steps(revision: Any, context: Any) -> Any:
            planned = script._upgrade_revs(destination, revision)
            return planned if on_failure is None else [_Tolerant(step, on_failure) for step in planned]

        with EnvironmentContext(config, script, fn=steps, as_sql=True, starting_rev=starting or None,
                                destination_rev=destination):
            script.run_env()
    except CommandError as exc:
        raise RevisionError(f"cannot render {revision_range!r}: {exc}",
                            hint="name revisions listed by `alembic-sidecar history`") from None
    except Exception as exc:  # a revision's own code, or an operation this database cannot render offline
        if isinstance(exc, (BrokenPipeError, SidecarError)):  # stdout's reader left (the command line's to settle)
            raise
        import traceback

        directories = tuple(os.path.join(os.path.abspath(path), "") for path in project.versions_dirs)
        frames = [frame for frame in traceback.extract_tb(exc.__traceback__)
                  if os.path.abspath(frame.filename).startswith(directories)]
        where = f" at {frames[-1].filename}, line {frames[-1].lineno}" if frames else ""
        text = (str(exc).strip().splitlines() or [""])[0]
        raise RevisionError(f"rendering {revision_range!r} offline raised {type(exc).__name__}"
                            f"{': ' + text if text else ''}{where}",
                            hint="fix that revision for this database (where its ALTER is limited: "
                                 "op.batch_alter_table)" if frames else "fix env.py's offline mode") from None


class _Tolerant:
    """An upgrade step whose upgrade() failure goes to ``on_failure`` instead of ending the offline rendering."""

    def __init__(self, step: Any, on_failure: Callable[[str, Exception], None]) -> None:
        self._step, self._on_failure = step, on_failure

    def __getattr__(self, name: str) -> Any:
        return getattr(self._step, name)

    @property
    def migration_fn(self) -> Callable[..., None]:
        def run(**kw: Any) -> None:
            try:
                self._step.migration_fn(**kw)
            except Exception as exc:  # the revision's own code, or an operation Alembic cannot render offline
                if isinstance(exc, (BrokenPipeError, SidecarError)):
                    raise
                self._on_failure(self._step.revision.revision, exc)
        return run
