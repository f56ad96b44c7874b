"""The sessions a user's env.py opens itself (ALEMBIC_CONFIG): bounded like ours, and recorded so a signal ends them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .databases.base import Driver


class UsersSessions:
    """While entered, every new pooled connection in this process gets ``statements`` and is recorded.

    A pool-wide listener, because the env.py builds its engines itself (``engine_from_config``,
    ``async_engine_from_config``); the sidecar's own session is connected before this is entered.
    """

    def __init__(self, database: Driver, statements: list[str]) -> None:
        self.database = database
        self.statements = statements
        self.backend_ids: list[int] = []
        self._guard = threading.Lock()

    def __enter__(self) -> UsersSessions:
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.listen(Pool, "connect", self._on_connect)
        return self

    def __exit__(self, *exc_info: object) -> None:
        from sqlalchemy import event
        from sqlalchemy.pool import Pool

        event.remove(Pool, "connect", self._on_connect)

    def _on_connect(self, dbapi_connection: Any, connection_record: Any) -> None:
        query = self.database.backend_id_query
        if not self.statements and query is None:
            return
        cursor = dbapi_connection.cursor()
        try:
            for statement in self.statements:
                cursor.execute(statement)
            if query is not None:
                cursor.execute(query)
                backend_id = cursor.fetchone()[0]
        finally:
            cursor.close()
        # Session settings survive only a committed transaction (PostgreSQL rolls back a SET with it).
        dbapi_connection.commit()
        if query is not None:
            with self._guard:
                self.backend_ids.append(int(backend_id))

    def running(self) -> list[int]:
        with self._guard:
            return list(self.backend_ids)
