"""The durable inbox: an inbound update is committed to the database before it is acknowledged.

Telegram and Zalo never resend an update they got a 200 for (webhook) or that a
later poll acknowledged (polling). So a channel first *accepts* the update into
``inbox_events`` (one row per bot and update key: a redelivery is a no-op), then
answers 200 or polls again, and an ``InboxWorker`` handles the row. A handled
row is marked ``done`` and loses its payload (the member's text lives on only
where the core keeps it, masked).

Each pending row is *leased* by the worker handling it (its owner id and an
expiry, renewed while it runs). When a process dies, its leases run out and any
process of the same bot takes the rows over: a ``kill -9`` loses no acknowledged
update. An update is handled at least once and, outside the few seconds between
a reply and the ``done`` mark, exactly once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import and_, delete, func, insert, or_, select, true, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from bot.clock import aware, utcnow
from bot.store.db import InboxEvent
from bot.tasks import cancel_and_wait

__all__ = ["Inbox", "InboxDepth", "InboxRow", "InboxWorker", "prune_inbox", "worker_id"]

log = logging.getLogger(__name__)

MAX_KEY: Final = 200
MAX_ATTEMPTS: Final = 3  # an update whose handling crashes this often is set aside as failed
KEEP_FINISHED: Final = dt.timedelta(days=7)  # platforms redeliver within hours


def worker_id() -> str:
    """This process's name in leases: host, pid and a random part (pids are reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class InboxRow:
    """A pending update taken by a worker."""

    id: int
    event_key: str
    payload: str


@dataclass(frozen=True, slots=True)
class InboxDepth:
    """Pending updates of one channel and the age of the oldest, in seconds."""

    pending: int
    oldest_age_s: float


class Inbox:
    """The ``inbox_events`` table for one channel and bot (the bot's id, never its token)."""

    def __init__(
        self,
        engine: Engine,
        channel: str,
        bot_id: str,
        owner: str,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        """Rows of ``channel``/``bot_id``; ``owner``: this worker's id in its leases."""
        self._engine = engine
        self.channel = channel
        self.bot_id = bot_id
        self.owner = owner
        self.lease = lease
        self._clock = clock
        self._mine = and_(InboxEvent.channel == channel, InboxEvent.bot_id == bot_id)
        self.sole_process = engine.dialect.name == "sqlite"  # SQLite: one process by design

    def accept(self, event_key: str, payload: str) -> int | None:
        """Commits a new update, leased to this worker; None when it was accepted before."""
        now = self._clock()
        statement = insert(InboxEvent).values(
            channel=self.channel,
            bot_id=self.bot_id,
            event_key=event_key[:MAX_KEY],
            payload=payload,
            status="pending",
            attempts=0,
            lease_owner=self.owner,
            lease_until=now + self.lease,
            received_at=now,
        )
        try:
            with self._engine.begin() as connection:
                result = connection.execute(statement)
        except IntegrityError:
            return None
        key = result.inserted_primary_key
        return int(key[0]) if key else None

    def take_expired(self, limit: int = 100, *, everything: bool = False) -> list[InboxRow]:
        """Leases pending rows whose lease has run out (their worker died), oldest first.

        Each row is taken by a conditional update, so two processes never take
        the same row. ``everything``: leased or not (the only process of a SQLite
        database, starting: whatever is pending was left by its predecessor).
        """
        now = self._clock()
        lapsed = (
            true()
            if everything
            else or_(InboxEvent.lease_until.is_(None), InboxEvent.lease_until < now)
        )
        with self._engine.connect() as connection:
            candidates = connection.execute(
                select(InboxEvent.id, InboxEvent.event_key, InboxEvent.payload)
                .where(self._mine, InboxEvent.status == "pending", lapsed)
                .order_by(InboxEvent.id)
                .limit(limit)
            ).all()
        taken = []
        for row_id, key, payload in candidates:
            with self._engine.begin() as connection:
                result = connection.execute(
                    update(InboxEvent)
                    .where(InboxEvent.id == row_id, InboxEvent.status == "pending", lapsed)
                    .values(lease_owner=self.owner, lease_until=now + self.lease)
                )
            if result.rowcount == 1 and payload is not None:
                taken.append(InboxRow(row_id, key, payload))
        return taken

    def renew(self, row_ids: list[int]) -> None:
        """Extends this worker's leases on rows it is still handling."""
        if not row_ids:
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(row_ids), InboxEvent.lease_owner == self.owner)
                .values(lease_until=self._clock() + self.lease)
            )

    def finish(self, *row_ids: int) -> None:
        """Marks rows handled and drops their payloads (one statement for a batch)."""
        if not row_ids:
            return
        with self._engine.begin() as connection:
            connection.execute(
                update(InboxEvent)
                .where(InboxEvent.id.in_(row_ids))
                .values(status="done", payload=None, finished_at=self._clock(), lease_owner=None)
            )

    def retry_later(self, row_id: int, error: str, delay: dt.timedelta) -> bool:
        """Counts a failed attempt; the row is retried after ``delay`` or, the last time, set aside.

        Returns True when the row will be retried.
        """
        with self._engine.begin() as connection:
            attempts = connection.execute(
                select(InboxEvent.attempts).where(InboxEvent.id == row_id)
            ).scalar_one()
            again = attempts + 1 < MAX_ATTEMPTS
            values: dict[str, object] = {"attempts": attempts + 1, "error": error[:200]}
            if again:
                values.update(lease_owner=None, lease_until=self._clock() + delay)
            else:
                values.update(status="failed", payload=None, finished_at=self._clock())
            connection.execute(update(InboxEvent).where(InboxEvent.id == row_id).values(**values))
        return again

    def depth(self) -> InboxDepth:
        """How many updates wait, and for how long the oldest has."""
        with self._engine.connect() as connection:
            count, oldest = connection.execute(
                select(func.count(), func.min(InboxEvent.received_at)).where(
                    self._mine, InboxEvent.status == "pending"
                )
            ).one()
        if oldest is None:
            return InboxDepth(0, 0.0)
        return InboxDepth(int(count), max(0.0, (self._clock() - aware(oldest)).total_seconds()))


def prune_inbox(engine: Engine, now: dt.datetime, keep: dt.timedelta = KEEP_FINISHED) -> int:
    """Deletes handled or failed rows older than ``keep`` (until then, keys stop redeliveries)."""
    with engine.begin() as connection:
        result = connection.execute(
            delete(InboxEvent).where(
                InboxEvent.status != "pending", InboxEvent.received_at < now - keep
            )
        )
    return int(result.rowcount or 0)


Handler = Callable[[InboxRow], Awaitable[None]]


class InboxWorker:
    """Handles an inbox's rows: new ones at once, those of a dead worker after their lease.

    ``handler`` does the work for one row; an exception makes the row be
    retried later (at most ``MAX_ATTEMPTS`` times). At most ``concurrency``
    rows are handled at a time.
    """

    @classmethod
    def for_bot(
        cls,
        engine: Engine,
        channel: str,
        bot_id: str,
        handler: Handler,
        *,
        lease_seconds: float,
        sweep_seconds: float,
        concurrency: int,
    ) -> InboxWorker:
        """The worker of one bot's inbox in this process (a channel builds it so)."""
        inbox = Inbox(
            engine, channel, bot_id, worker_id(), lease=dt.timedelta(seconds=lease_seconds)
        )
        return cls(inbox, handler, concurrency=concurrency, sweep_every=sweep_seconds)

    def __init__(
        self,
        inbox: Inbox,
        handler: Handler,
        concurrency: int = 32,
        sweep_every: float = 10.0,
    ) -> None:
        """Handles rows of ``inbox`` with ``handler``; looks for orphans every ``sweep_every`` s."""
        self.inbox = inbox
        self._handler = handler
        self._slots = asyncio.Semaphore(concurrency)
        self._sweep_every = sweep_every
        self._running: dict[int, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        # Handled rows are marked done in batches (one commit for many updates); a crash
        # before the mark means those few are handled again, never lost.
        self._done: list[int] = []
        self._done_ready = asyncio.Event()
        self._marker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resumes the rows a crashed process left and keeps sweeping and renewing leases.

        On SQLite (one process by design) every pending row is resumed at once,
        without waiting for the dead process's leases.
        """
        if self.inbox.sole_process:
            for row in await asyncio.to_thread(self.inbox.take_expired, 1000, everything=True):
                self._spawn(row)
        self._sweeper = asyncio.create_task(self._sweep(), name=f"inbox-{self.inbox.channel}")
        self._marker = asyncio.create_task(self._mark_done(), name="inbox-done")

    async def stop(self) -> None:
        """Stops sweeping and waits for the rows in hand (their leases lapse if it cannot)."""
        await cancel_and_wait(self._sweeper)
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)
        await cancel_and_wait(self._marker)
        await self._flush_done()

    async def _mark_done(self) -> None:
        while True:
            await self._done_ready.wait()
            await asyncio.sleep(0.02)  # let a few more finish: one commit for all of them
            await self._flush_done()

    async def _flush_done(self) -> None:
        self._done_ready.clear()
        batch, self._done = self._done, []
        if not batch:
            return
        try:
            await asyncio.to_thread(self.inbox.finish, *batch)
        except Exception:  # their leases will lapse and the rows be handled again
            log.exception("could not mark %d inbox rows handled", len(batch))

    async def submit(self, event_key: str, payload: str) -> bool:
        """Commits an update and starts handling it; False (and nothing done) on a redelivery.

        Raises ``SQLAlchemyError`` when the database cannot store it (a webhook then
        asks for a redelivery).
        """
        row_id = await asyncio.to_thread(self.inbox.accept, event_key, payload)
        if row_id is None:
            log.info("%s update %s delivered again: already handled",
                     self.inbox.channel, event_key[:120])  # fmt: skip
            return False
        self._spawn(InboxRow(row_id, event_key, payload))
        return True

    async def submit_stored(self, event_key: str, payload: str) -> bool:
        """``submit``, retried while the database is away.

        Polling never moves past an update the inbox has not stored.
        """
        delay = 0.5
        while True:
            try:
                return await self.submit(event_key, payload)
            except SQLAlchemyError as exc:
                log.warning("inbox unavailable (%s); retrying in %.1f s", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _spawn(self, row: InboxRow) -> None:
        if row.id in self._running:
            return
        task = asyncio.create_task(self._run(row))
        self._running[row.id] = task
        task.add_done_callback(lambda _t: self._running.pop(row.id, None))

    async def _run(self, row: InboxRow) -> None:
        async with self._slots:
            try:
                await self._handler(row)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("%s update %s failed", self.inbox.channel, row.event_key[:80])
                error = f"{type(exc).__name__}: {exc}"
                delay = dt.timedelta(seconds=self._sweep_every)
                try:
                    await asyncio.to_thread(self.inbox.retry_later, row.id, error, delay)
                except Exception:
                    log.exception("could not record the failure of inbox row %s", row.id)
                return
            self._done.append(row.id)
            self._done_ready.set()

    async def _sweep(self) -> None:
        lease_s = self.inbox.lease.total_seconds()
        renew_every = max(0.05, min(self._sweep_every, lease_s / 3))
        last_sweep = float("-inf")
        loop = asyncio.get_running_loop()
        while True:
            try:
                if self._running:
                    await asyncio.to_thread(self.inbox.renew, list(self._running))
                if loop.time() - last_sweep >= self._sweep_every:
                    last_sweep = loop.time()
                    for row in await asyncio.to_thread(self.inbox.take_expired):
                        self._spawn(row)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database may be away for a moment: try again
                log.exception("%s inbox sweep failed", self.inbox.channel)
            await asyncio.sleep(renew_every)
