"""One scheduler leader per database, through a PostgreSQL advisory lock.

Every ``coopbot run`` delivers its own bots' outbox rows, but only one of them
runs APScheduler (the nightly planner, the weekly clean-up). On PostgreSQL the
leader holds a session-level advisory lock on a connection of its own; when it
dies, the server ends its session and frees the lock, and a follower (which
tries every ``retry`` seconds) takes over. A leader whose connection breaks
steps down. On SQLite (one process by design) the process is always the
leader. The current leader's worker id is kept in ``scheduler_state``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from sqlalchemy import delete, insert, text
from sqlalchemy.engine import Connection, Engine

from bot.clock import utcnow
from bot.store.db import SchedulerState
from bot.tasks import cancel_and_wait

__all__ = ["LEADER_STATE", "Leadership"]

log = logging.getLogger(__name__)

LOCK_KEY: Final = 0x434F_4F50_4254  # "COOPBT": the same for every process of the database
LEADER_STATE: Final = "scheduler_leader"


class Leadership:
    """Becomes the scheduler leader when it can; calls ``on_gain``/``on_loss`` on changes."""

    def __init__(
        self,
        engine: Engine,
        worker: str,
        on_gain: Callable[[], Awaitable[None]],
        on_loss: Callable[[], Awaitable[None]],
        retry: float = 2.0,
    ) -> None:
        """Competes for ``engine``'s lock as ``worker``, trying again every ``retry`` s."""
        self._engine = engine
        self.worker = worker
        self._on_gain = on_gain
        self._on_loss = on_loss
        self.retry = retry
        self.leader = False
        self._connection: Connection | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Leads at once if the lock is free (SQLite: always); keeps trying or checking after."""
        if self._engine.dialect.name != "postgresql":
            await self._gain()
            return
        await self._step()
        self._task = asyncio.create_task(self._watch(), name="scheduler-leadership")

    async def stop(self) -> None:
        """Stops competing; a leader steps down and frees the lock."""
        await cancel_and_wait(self._task)
        self._task = None
        if self.leader:
            await self._lose()

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.retry)
            try:
                await self._step()
            except Exception:  # the database may be away for a moment
                log.exception("scheduler leadership check failed")

    async def _step(self) -> None:
        if not self.leader:
            if await asyncio.to_thread(self._try_lock):
                await self._gain()
        elif not await asyncio.to_thread(self._still_connected):
            log.error("lost the database connection holding the scheduler lock: stepping down")
            await self._lose()

    async def _gain(self) -> None:
        self.leader = True
        await asyncio.to_thread(self._record)
        log.info("scheduler leader: %s", self.worker)
        await self._on_gain()

    async def _lose(self) -> None:
        self.leader = False
        try:
            await self._on_loss()
        finally:
            await asyncio.to_thread(self._release)

    def _try_lock(self) -> bool:
        connection = self._engine.connect()
        try:
            got = bool(
                connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}
                ).scalar()
            )
            connection.commit()  # the lock is the session's, not the transaction's
        except Exception:
            connection.invalidate()
            connection.close()
            raise
        if not got:
            connection.close()
            return False
        self._connection = connection
        return True

    def _still_connected(self) -> bool:
        if self._connection is None:
            return False
        try:
            self._connection.execute(text("SELECT 1")).scalar()
            self._connection.commit()
        except Exception:
            return False
        return True

    def _release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            connection.commit()
        except Exception:  # a broken connection: the server frees the lock with the session
            connection.invalidate()
        finally:
            connection.close()

    def _record(self) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(SchedulerState).where(SchedulerState.name == LEADER_STATE))
            connection.execute(
                insert(SchedulerState).values(
                    name=LEADER_STATE, value=self.worker[:200], updated_at=utcnow()
                )
            )
