"""One run of a command, in the supervised child: open what the command declares it needs, and run it."""

from __future__ import annotations

import dataclasses
from typing import Any

from . import alembic_env, commands, databases, endpoint as endpoints, logs
from .commands import Context, Result
from .commands.migration_failure import failure_state
from .redaction import secret_forms
from .report import EndpointMessage, Reporter
from .session import Session
from .settings import Settings

__all__ = ["Result", "Runner"]


class Runner:
    """Holds the run's context so that a signal can stop the migration and free the lock."""

    def __init__(self, settings: Settings, reporter: Reporter | None = None, *, wait_timeout: float | None = None,
                 lock_timeout: float | None = None) -> None:
        self.command = commands.get(settings.command)
        self.context = Context(settings, reporter or Reporter(None))
        self.wait_timeout = settings.wait_timeout if wait_timeout is None else wait_timeout
        self.lock_timeout = settings.lock_timeout if lock_timeout is None else lock_timeout

    async def run(self) -> Result:
        command, context, settings = self.command, self.context, self.context.settings
        refuse = command.function("refuse")
        if refuse is not None:
            refuse(settings)
        if command.reads_files or settings.alembic_config is not None:
            context.project, context.fallback_url = alembic_env.open_project(settings)
        run = command.function()
        assert run is not None
        if not command.connects:
            return await run(context)
        context.endpoint = endpoint = endpoints.from_settings(settings, fallback_url=context.fallback_url)
        context.database = databases.driver_for(endpoint.backend)
        known = [secret for secret in (endpoint.password, endpoint.sslpassword) if secret]
        if known:  # from alembic.ini perhaps, which the settings never saw
            logs.add_secrets(secret_forms(known))
        context.reporter.send(EndpointMessage(dataclasses.asdict(endpoint)))
        prepare = command.function("prepare")
        if prepare is not None:
            prepare(context.project)
        context.session = Session(settings, endpoint, context.database, wait_timeout=self.wait_timeout,
                                  lock_timeout=self.lock_timeout)
        try:
            await context.session.open(migrating=command.takes_lock)
            return await run(context)
        finally:
            if context.users_env is None or not context.users_env.still_running():
                await context.session.close()
            # else a user's env.py may still run DDL: the lock goes only with this process, which ends it too

    async def interrupt(self) -> None:
        """Called on SIGTERM/SIGINT: end the migrating session on the server, which rolls back and frees the lock."""
        context = self.context
        if not context.migrating or context.session is None:
            return
        if context.settings.alembic_config is not None:
            # The user's env.py migrates on sessions of its own: end them on the server before the lock can go.
            running = context.users_env.running_sessions() if context.users_env is not None else None
            if running is not None:
                await context.session.kill(running)
            return
        await context.session.kill()

    def failure_state(self) -> str | None:
        return failure_state(self.context)

    # What the supervisor reads of the run after it ended or while a signal stops it.
    @property
    def migrating(self) -> bool:
        return self.context.migrating

    @property
    def connection_lost(self) -> bool:
        return self.context.connection_lost

    @property
    def endpoint(self) -> endpoints.Endpoint | None:
        return self.context.endpoint

    @property
    def database(self) -> Any:
        return self.context.database

    @property
    def recorded(self) -> tuple[str, ...] | None:
        return self.context.recorded
