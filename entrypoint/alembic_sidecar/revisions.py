"""Revision files: a fast textual scan for the heads, and Alembic's full load with errors that name the file."""

from __future__ import annotations

import ast
import functools
import os
import re
import sys
import traceback
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .errors import ConfigurationError, RevisionError

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory

# `revision = "abc"` / `down_revision: Union[str, None] = ("a", "b")`, at the start of a line, as Alembic writes them;
# an indented one (under an `if`, or a local in upgrade()) is caught too, and sends the run to the full load.
_ASSIGNMENT = re.compile(r"^([ \t]*)(revision|down_revision|depends_on)\s*(?::[^=\n]*)?=\s*(.+?)\s*(?:#.*)?$", re.M)
_PLAIN_STRING = re.compile(r"""^(['"])([^'"\\]*)\1$""")
_SOURCE_FILE = re.compile(r"^(?!\.#|__init__)(.*\.py)$")


@dataclass(frozen=True)
class RevisionIndex:
    """What the fast scan learned: each revision's parents, and the heads; and each one's file with the sha256 of
    its bytes (the applied history's cheap comparison)."""

    parents: dict[str, tuple[str, ...]]
    files: dict[str, tuple[str, str]] = field(default_factory=dict, compare=False)

    @property
    def heads(self) -> frozenset[str]:
        referenced = {parent for parents in self.parents.values() for parent in parents}
        return frozenset(self.parents) - referenced


def check_versions_dir(path: str) -> tuple[str, ...]:
    """The revision file names in ``path``; a missing or empty directory is a configuration error."""
    if not os.path.isdir(path):
        if os.path.exists(path):
            raise ConfigurationError(f"versions directory {path!r} is not a directory",
                                     hint="point MIGRATE_VERSIONS_DIR at the directory that holds your revision files")
        raise ConfigurationError(f"versions directory {path!r} does not exist",
                                 hint="mount your revision files there or set MIGRATE_VERSIONS_DIR")
    try:
        names = tuple(sorted(name for name in os.listdir(path) if _SOURCE_FILE.match(name)))
    except OSError as exc:
        raise ConfigurationError(f"cannot read versions directory {path!r}: {exc.strerror}",
                                 hint="make it readable by this user") from None
    if not names:
        raise ConfigurationError(f"versions directory {path!r} holds no revision files (*.py)",
                                 hint="mount your revision files there or set MIGRATE_VERSIONS_DIR")
    return names


@functools.lru_cache(maxsize=8)
def scan(path: str, names: tuple[str, ...]) -> RevisionIndex | None:
    """Read revision ids without importing the files; None when any file is not plainly written, or when the ids do
    not form a plain graph (an id declared twice, a parent no file declares): then load() explains it."""
    import hashlib

    parents: dict[str, tuple[str, ...]] = {}
    files: dict[str, tuple[str, str]] = {}
    for name in names:
        file_path = os.path.join(path, name)
        try:
            with open(file_path, "rb") as handle:
                content = handle.read()
            source = content.decode()
        except (OSError, UnicodeDecodeError):
            return None
        found: dict[str, object] = {}
        for match in _ASSIGNMENT.finditer(source):
            indent, name, value = match.groups()
            if indent or name in found:
                return None  # assigned twice or conditionally: only executing the file can tell which wins
            try:
                found[name] = _literal(value)
            except (ValueError, SyntaxError):
                return None
        revision, down = found.get("revision"), found.get("down_revision", None)
        if not isinstance(revision, str) or revision in parents or found.get("depends_on"):
            return None
        files[revision] = (file_path, hashlib.sha256(content).hexdigest())
        if down is None:
            parents[revision] = ()
        elif isinstance(down, str):
            parents[revision] = (down,)
        elif isinstance(down, (tuple, list)) and all(isinstance(item, str) for item in down):
            parents[revision] = tuple(down)
        else:
            return None
    if any(parent not in parents for parents_of in parents.values() for parent in parents_of):
        return None
    return RevisionIndex(parents, files)


def _literal(text: str) -> object:
    """ast.literal_eval, with the two shapes almost every file uses read without compiling anything."""
    plain = _PLAIN_STRING.match(text)
    if plain:
        return plain.group(2)
    if text == "None":
        return None
    return ast.literal_eval(text)


# Code written for a newer Python (3.14's deferred annotations, new syntax) fails to import with a NameError or a
# SyntaxError on an image whose Python is older; the fix is then the image tag of the right Python, not the code.
_NEWER_PYTHON = (f"; this image runs Python {sys.version_info[0]}.{sys.version_info[1]}: code written for a newer "
                 "Python needs the image tag of that Python (-py3.X)")


def load(script: ScriptDirectory, versions_dir: str) -> None:
    """Import every revision file now, so a broken one fails before the database is touched."""
    from alembic.util import CommandError

    loaded = _record_loaded(script)
    try:
        with warnings.catch_warnings():
            # Alembic only warns of an id declared twice (and keeps one file) or of a missing parent (then fails
            # on it): both are reported below, naming the files.
            warnings.filterwarnings("ignore", r"Revision \S+ (is present more than once|referenced from .*)",
                                    UserWarning)
            script.revision_map.heads  # noqa: B018 - building the map imports every file
    except SyntaxError as exc:
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "a revision file"
        raise RevisionError(f"syntax error in {where}: {exc.msg}", hint=f"fix the file{_NEWER_PYTHON}") from None
    except Exception as exc:
        error = _graph_error(loaded)  # a duplicated id or a missing parent is what broke the graph
        if error is not None:
            raise error from None
        if isinstance(exc, CommandError):
            raise RevisionError(f"the revision files do not form a valid graph: {exc}",
                                hint="fix down_revision in the files named") from None
        culprit = _file_in_traceback(exc, versions_dir) or "a revision file"
        python = "" if isinstance(exc, (ImportError, AttributeError)) else _NEWER_PYTHON
        raise RevisionError(f"{culprit} failed to import: {type(exc).__name__}: {exc}",
                            hint=f"install what it imports (see MIGRATE_PYTHONPATH) or fix the file{python}") from None
    error = _graph_error(loaded)
    if error is not None:
        raise error


def _record_loaded(script: ScriptDirectory) -> list[Script]:
    """Every revision file Alembic loads, in a list: its map keeps only one file per id."""
    loaded: list[Script] = []
    load_files = script.revision_map._generator

    def recording() -> Iterator[Script]:
        for revision in load_files():
            loaded.append(revision)
            yield revision

    script.revision_map._generator = recording
    return loaded


def _graph_error(loaded: list[Script]) -> RevisionError | None:
    """A revision id that two files declare, or a parent that no file declares, naming the files."""
    files: dict[str, list[str]] = {}
    for revision in loaded:
        files.setdefault(revision.revision, []).append(revision.path)
    for revision_id, paths in files.items():
        if len(paths) > 1:
            return RevisionError(f"revision id {revision_id!r} is duplicated: declared by "
                                 f"{' and '.join(sorted(paths))}",
                                 hint="give each revision file its own id (keep one, or give the other a new id and "
                                      "fix the down_revision that follows it)")
    known = set(files) | {label for revision in loaded for label in revision.branch_labels}
    for revision in loaded:
        for name, references in (("down_revision", revision.down_revision), ("depends_on", revision.dependencies)):
            for missing in (reference for reference in _as_tuple(references) if reference not in known):
                return RevisionError(f"{revision.path}: {name} {missing!r} is declared by no revision file",
                                     hint=f"restore the file of revision {missing!r}, or fix {name} in that file")
    return None


def _as_tuple(references: str | Sequence[str] | None) -> tuple[str, ...]:
    if references is None:
        return ()
    return (references,) if isinstance(references, str) else tuple(references)


def _file_in_traceback(exc: BaseException, directory: str) -> str | None:
    found = frame_in_traceback(exc, directory)
    return f"{found[0]}, line {found[1]}" if found else None


def frame_in_traceback(exc: BaseException, directory: str) -> tuple[str, int] | None:
    """The innermost (file, line) of ``exc``'s traceback inside ``directory``."""
    directory = os.path.abspath(directory) + os.sep
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.abspath(frame.filename).startswith(directory):
            return frame.filename, frame.lineno or 0
    return None
