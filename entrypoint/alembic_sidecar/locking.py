"""The migration lock's wait: poll the database's lock until it is ours or MIGRATE_LOCK_TIMEOUT runs out.

Each database module makes the lock itself (see ``databases``); this loop bounds every poll on the client, so a
network path that stops answering cannot stretch the wait past the timeout.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from .errors import LockTimeout
from .logs import get_logger

POLL_INTERVAL = 0.2
LOG_EVERY = 5.0
# A poll that takes longer than this has lost its server; with a shorter time left, that time is the bound.
POLL_BOUND = 5.0


class Lock(Protocol):
    description: str

    async def try_acquire(self) -> bool: ...

    async def release(self) -> None: ...


def _timed_out(lock: Lock, timeout: float) -> LockTimeout:
    return LockTimeout(f"another migrator held {lock.description} for more than {timeout:g} s",
                       hint="wait for it to finish, or raise MIGRATE_LOCK_TIMEOUT")


async def acquire(lock: Lock, timeout: float) -> float:
    """Take the lock within ``timeout`` seconds; return how long it took. Raise LockTimeout otherwise."""
    log = get_logger()
    started = time.monotonic()
    deadline = started + timeout
    last_logged = started
    while True:
        remaining = deadline - time.monotonic()
        try:
            async with asyncio.timeout(max(0.5, min(POLL_BOUND, remaining + 0.5))):
                got = await lock.try_acquire()
        except TimeoutError:
            if time.monotonic() >= deadline:
                raise _timed_out(lock, timeout) from None
            raise
        if got:
            waited = time.monotonic() - started
            log.info("lock_acquired", lock=lock.description, waited_ms=round(waited * 1000))
            return waited
        now = time.monotonic()
        if now >= deadline:
            raise _timed_out(lock, timeout)
        if now - last_logged >= LOG_EVERY or last_logged == started:
            last_logged = now
            log.info("lock_waiting", lock=lock.description, elapsed_s=round(now - started, 1), timeout_s=timeout)
        await asyncio.sleep(min(POLL_INTERVAL, max(0.0, deadline - now)))
