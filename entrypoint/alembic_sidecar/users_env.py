"""A user's own env.py (ALEMBIC_CONFIG): run in a thread where it may call asyncio.run(), a sync one inside
greenlet_spawn, its sessions bounded like ours, while our session keeps the lock alive."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

from .errors import ConfigurationError
from .guards import RevisionEscaped
from .users_sessions import UsersSessions

if TYPE_CHECKING:
    from .commands import Context

# A lock session that sits idle while a user's env.py migrates is pinged this often, so the server keeps it.
HEARTBEAT_EVERY = 20.0
# What to fix when the user's env.py itself failed.
FIX_ENV_PY = "fix env.py or what it imports (MIGRATE_PYTHONPATH), its driver or its sqlalchemy.url"


class UsersEnv:
    """One run of the user's env.py: its thread, and the sessions it opened (which a signal ends)."""

    def __init__(self) -> None:
        self.thread: threading.Thread | None = None
        self.sessions: UsersSessions | None = None

    def still_running(self) -> bool:
        """It may still run DDL: the lock goes only with this process, which ends it too."""
        return self.thread is not None and self.thread.is_alive()

    def running_sessions(self) -> list[int] | None:
        return self.sessions.running() if self.sessions is not None else None

    async def run(self, context: Context, run_env: Callable[[], None]) -> None:
        """``run_env`` runs where no event loop runs, in a daemon thread.

        Its sessions get the run's timeouts and liveness bounds as they connect (UsersSessions). The lock stays on
        our session until that thread has ended: on a signal, the runner's ``interrupt`` ends those sessions on the
        server first, and the lock goes only with this process.
        """
        endpoint, session, database, project = context.endpoint, context.session, context.database, context.project
        assert endpoint is not None and session is not None and project is not None
        config = project.alembic_config()
        # Always the URL of the driver this image ships, even when it came from the ini: `alembic init` users write
        # postgresql:// (psycopg) or mysql+pymysql://, which would otherwise need a second driver in the image.
        rendered = endpoint.sqlalchemy_url().render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
        from .tls import hand_to_users_engines

        hand_to_users_engines(endpoint, database)  # the env.py's engines log in with our TLS
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finish(error: BaseException | None) -> None:
            if not done.done():
                done.set_result(None) if error is None else done.set_exception(RevisionEscaped.wrap(error))

        def work() -> None:
            # A sync env.py's first connect on the async driver is closed unawaited (MissingGreenlet, below): its
            # RuntimeWarning would be printed raw on stderr, the one line of the run that is not JSON.
            warnings.filterwarnings("ignore", r"coroutine '.*' was never awaited", RuntimeWarning)
            try:
                try:
                    run_env()
                except Exception as exc:
                    if not _needs_greenlet(exc):
                        raise
                    # A sync env.py (`alembic init`) on the async driver this image ships: its first connect failed
                    # before anything ran. Run it again inside greenlet_spawn, which is how AsyncEngine drives the
                    # same dialect, so no second (sync) driver is needed.
                    from sqlalchemy.util.concurrency import greenlet_spawn

                    asyncio.run(greenlet_spawn(run_env))
            except BaseException as exc:  # handed to the event loop, which raises it
                hand_over(exc)
            else:
                hand_over(None)

        def hand_over(error: BaseException | None) -> None:
            try:
                loop.call_soon_threadsafe(finish, error)
            except RuntimeError:
                # The loop has closed: a signal ended the run while env.py's statement was being cut short, and no
                # one waits for this thread. Raising here would print a traceback as the process exits.
                pass

        assert session.connection is not None
        is_mariadb = bool(getattr(session.connection.dialect, "is_mariadb", False))
        self.sessions = UsersSessions(database, database.users_session_settings(
            context.settings, endpoint, is_mariadb=is_mariadb))
        with self.sessions:
            self.thread = threading.Thread(target=work, name="alembic-env", daemon=True)
            self.thread.start()
            while not done.done():
                await asyncio.wait([done], timeout=HEARTBEAT_EVERY)
                if not done.done():
                    await session.heartbeat()
        done.result()


async def run_users_env(context: Context, run_env: Callable[[], None]) -> None:
    """Run ``run_env`` (the user's env.py) as :meth:`UsersEnv.run` does, recorded on the context for a signal."""
    context.users_env = UsersEnv()
    await context.users_env.run(context, run_env)


def env_py_failed(where: str, reason: str, state: str | None = None) -> ConfigurationError:
    """The user's env.py itself failed (an import, a driver, its URL): ``state`` says what changed, if anything."""
    return ConfigurationError(f"your env.py failed at {where}: {reason}",
                              hint=f"{state}; {FIX_ENV_PY}" if state is not None else FIX_ENV_PY)


def _needs_greenlet(exc: BaseException) -> bool:
    from .failures import causes

    return any(type(cause).__name__ == "MissingGreenlet" for cause in causes(exc))
