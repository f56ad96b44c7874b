"""Outside ``databases/`` no module names a backend or imports a driver library: each database is one driver."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "entrypoint" / "alembic_sidecar"
BACKEND_NAMES = {"postgresql", "postgres", "mysql", "mariadb", "sqlite"}
DRIVER_LIBRARIES = {"asyncpg", "aiomysql", "pymysql", "aiosqlite", "sqlite3"}


def _core_modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "databases" not in path.relative_to(PACKAGE).parts)


def _offences(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in BACKEND_NAMES:
            found.append(f"{where}: the string {node.value!r}")
        elif isinstance(node, ast.Name) and node.id.lower() in BACKEND_NAMES:
            found.append(f"{where}: the name {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr.lower() in BACKEND_NAMES:
            found.append(f"{where}: the attribute .{node.attr}")
        elif isinstance(node, ast.Import):
            found += [f"{where}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] in DRIVER_LIBRARIES]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] in DRIVER_LIBRARIES:
                found.append(f"{where}: from {node.module} import ...")
            found += [f"{where}: import of the backend module {alias.name}" for alias in node.names
                      if alias.name.lower() in BACKEND_NAMES]
    return found


def test_the_walk_sees_every_core_module_and_not_the_drivers():
    names = {path.name for path in _core_modules()}
    assert {"endpoint.py", "fastpath.py", "supervisor.py", "session.py", "runner.py"} <= names
    assert not any(path.parent.name == "databases" for path in _core_modules())


@pytest.mark.parametrize("source", [
    "kind = 'postgresql'", "if backend == 'SQLite': pass", "import asyncpg", "from pymysql.err import Error",
    "from .databases import mysql", "databases.mariadb.connect()", "import aiosqlite.core",
])
def test_the_walk_catches_a_backend_name_or_a_driver_import(source):
    assert _offences(ast.parse(source))


def test_the_walk_lets_prose_and_driver_free_code_through():
    assert not _offences(ast.parse("message = 'MySQL/MariaDB commit DDL implicitly'\nis_mariadb = True\n"
                                   "from . import databases\n"))


@pytest.mark.parametrize("path", _core_modules(), ids=lambda path: str(path.relative_to(PACKAGE)))
def test_no_module_outside_databases_names_a_backend_or_imports_a_driver(path):
    offences = _offences(ast.parse(path.read_text(), str(path)))
    assert not offences, f"{path.relative_to(PACKAGE)} knows a database; move it into databases/: {offences}"
