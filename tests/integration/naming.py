"""The naming-convention history in data/naming, copied for one test, and how each database names its constraints.

``versions/``: n1 creates users and items with unnamed constraints; n2 and n3 drop and replace them by the names the
convention gives them (``fk_items_owner_id_users``, ``ck_items_price_positive``, ``uq_users_email``). ``models/``:
``naming_models:metadata`` (MetaData with the convention, the schema at n3), ``naming_orm:Base`` (the same as a
declarative base), ``naming_drifted:metadata`` (n3 plus ``users.display_name`` and table ``audit``).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).parent / "data" / "naming"
REVISIONS = ["n1", "n2", "n3"]
#: What `drift` reports for naming_drifted against a database at n3, on every database.
DRIFTED = ["add_column users.display_name", "add_table audit"]


@dataclass
class NamingHistory:
    versions: Path
    models: Path

    def env(self, database, metadata: str | None = "naming_models:metadata") -> dict[str, str | None]:
        return {"DATABASE_URL": database.url, "MIGRATE_VERSIONS_DIR": str(self.versions),
                "MIGRATE_PYTHONPATH": str(self.models), "MIGRATE_METADATA": metadata}


def copy_history(tmp_path: Path) -> NamingHistory:
    """A private copy, so that bytecode caches and edits stay in tmp_path."""
    root = tmp_path / "naming"
    shutil.copytree(DATA, root)
    return NamingHistory(root / "versions", root / "models")


def schema_names(database) -> set[str]:
    """The names of the constraints and indexes on users and items, as the database reports them."""
    if database.driver == "postgresql":
        return {row[0] for row in database.rows(
            "SELECT c.conname FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE t.relname IN ('users', 'items') "
            "UNION SELECT indexname FROM pg_indexes WHERE tablename IN ('users', 'items')")}
    if database.driver == "mariadb":
        return {row[0] for row in database.rows(
            "SELECT constraint_name FROM information_schema.table_constraints "
            "WHERE table_schema = DATABASE() AND table_name IN ('users', 'items') "
            "UNION SELECT index_name FROM information_schema.statistics "
            "WHERE table_schema = DATABASE() AND table_name IN ('users', 'items')")}
    names = set()
    for kind, name, sql in database.rows(
            "SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ('users', 'items')"):
        if kind == "index" and not name.startswith("sqlite_autoindex"):
            names.add(name)
        names |= set(re.findall(r"CONSTRAINT (\w+)", sql or ""))
    return names


def owner_fk_cascades(database) -> bool:
    """Whether the foreign key fk_items_owner_id_users deletes items with their owner."""
    if database.driver == "postgresql":
        return database.rows("SELECT confdeltype::text FROM pg_constraint "
                             "WHERE conname = 'fk_items_owner_id_users'") == [("c",)]
    if database.driver == "mariadb":
        return database.rows("SELECT delete_rule FROM information_schema.referential_constraints "
                             "WHERE constraint_schema = DATABASE() "
                             "AND constraint_name = 'fk_items_owner_id_users'") == [("CASCADE",)]
    sql = database.rows("SELECT sql FROM sqlite_master WHERE name = 'items'")[0][0]
    return bool(re.search(r"CONSTRAINT fk_items_owner_id_users FOREIGN KEY\s*\(owner_id\) REFERENCES users "
                          r"\(id\) ON DELETE CASCADE", sql))
