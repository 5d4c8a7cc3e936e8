"""The outbox worker: sends due rows through the channel-neutral ``Senders``, paced.

Each row is claimed before and finished after its send, so it goes out at most
once (``bot.store.outbox``); rows past their deadline are dropped with a log
line instead of being sent late. What a row says is asked of the renderer of
its kind (``renderers``: kind -> renderer), so the worker knows no message kind
itself; kinds in ``resend`` are tried again after a send error (up to three
attempts) and after a crash while in flight. Every process delivers the rows
of its own bot accounts and keeps the leases of the rows it reserved alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import Final

from sqlalchemy.engine import Engine

from bot.clock import utcnow
from bot.replies import Reply
from bot.sending import ChannelUnavailable, RateLimited, RecipientBlocked, SendError, Senders
from bot.store.members import MemberStore
from bot.store.outbox import Outbox, OutboxItem
from bot.tasks import cancel_and_wait

__all__ = ["Delivery", "Renderer", "SendPacer"]

log = logging.getLogger(__name__)

# The message for a row, or None and why it is no longer wanted.
Renderer = Callable[[OutboxItem], tuple[Reply | None, str]]

CHANNEL_RETRY: Final = dt.timedelta(minutes=5)
RESEND_ATTEMPTS: Final = 3  # a message of a resent kind that fails otherwise is tried 3 times
RETRY_BACKOFF: Final = dt.timedelta(seconds=30)  # then 60 s


class SendPacer:
    """At most ``rates[channel]`` sends per second per channel, one per ``per_chat`` s per chat.

    A channel without a rate (the web chat) is not paced overall.
    """

    def __init__(self, rates: Mapping[str, float], per_chat: float = 1.0) -> None:
        """``rates``: messages per second per channel (Telegram allows about 30)."""
        self.intervals = {channel: 1.0 / rate for channel, rate in rates.items()}
        self.per_chat = per_chat
        self._next_channel: dict[str, float] = {}
        self._next_chat: dict[tuple[str, str], float] = {}

    async def wait(self, channel: str, chat_id: str) -> None:
        """Sleeps until this send may go."""
        now = time.monotonic()
        at = max(now, self._next_channel.get(channel, 0.0))
        self._next_channel[channel] = at + self.intervals.get(channel, 0.0)
        at = max(at, self._next_chat.get((channel, chat_id), 0.0))
        self._next_chat[(channel, chat_id)] = at + self.per_chat
        if len(self._next_chat) > 10_000:
            self._next_chat = {k: v for k, v in self._next_chat.items() if v > now}
        if at > now:
            await asyncio.sleep(at - now)


class Delivery:
    """Delivers due outbox rows of this process's bots; renders each with its kind's renderer."""

    def __init__(
        self,
        engine: Engine,
        outbox: Outbox,
        senders: Senders,
        renderers: Mapping[str, Renderer],
        *,
        worker: str,
        pacer: SendPacer,
        clock: Callable[[], dt.datetime] = utcnow,
        poll_interval: float = 15.0,
        concurrency: int = 4,
        batch: int = 200,
        accounts: Mapping[str, str | None] | None = None,
        resend: Collection[str] = (),
    ) -> None:
        """Sends ``outbox`` rows through ``senders`` as ``worker``.

        ``accounts``: ``{channel: bot id}`` of the bots this process runs; it sends
        only their members' rows (None: every row). ``resend``: the kinds sent again
        after a failure (at least once rather than at most once).
        """
        self._engine = engine
        self.outbox = outbox
        self.senders = senders
        self.renderers = dict(renderers)
        self.worker = worker
        self.pacer = pacer
        self.clock = clock
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.batch = batch
        self.accounts = dict(accounts) if accounts is not None else None
        self.resend = tuple(resend)
        self._members = MemberStore(engine)
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.sent = 0

    # -- life cycle ------------------------------------------------------------------------------

    async def recover(self) -> None:
        """Takes back the rows a dead worker left (on SQLite, the sole process: every row)."""
        sole = self._engine.dialect.name == "sqlite"  # SQLite: one process by design
        await asyncio.to_thread(self.outbox.recover_in_flight, self.resend, everything=sole)

    def start(self) -> None:
        """Starts the worker and the lease keeper."""
        self._task = asyncio.create_task(self._run(), name="reminder-worker")
        self._keeper = asyncio.create_task(self._keep_leases(), name="outbox-leases")

    async def stop(self) -> None:
        """Stops the worker (sends in flight finish) and gives back the rows it reserved."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await cancel_and_wait(self._keeper)
        await asyncio.to_thread(self.outbox.unreserve, self.worker)

    def wake(self) -> None:
        """Look at the outbox now (after an enqueue)."""
        self._wake.set()

    async def _keep_leases(self) -> None:
        """Renews this worker's leases and takes back what dead workers left, every third lease."""
        every = max(0.05, self.outbox.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.outbox.renew, self.worker)
                if await asyncio.to_thread(self.outbox.recover_in_flight, self.resend):
                    self._wake.set()
            except Exception:  # the database may be away for a moment
                log.exception("outbox lease renewal failed")

    # -- the worker ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                handled = await self.deliver_due()
                if handled >= self.batch:
                    continue  # more are due right now
                next_at = await asyncio.to_thread(self.outbox.next_send_at)
            except Exception:
                log.exception("reminder delivery pass failed; retrying")
                next_at = None
            wait = self.poll_interval
            if next_at is not None:
                wait = min(max((next_at - self.clock()).total_seconds(), 0.05), wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def deliver_due(self) -> int:
        """One pass: sends (or drops) the rows due now; returns how many were handled."""
        items = await asyncio.to_thread(self.outbox.reserve, self.worker, self.batch, self.accounts)
        gate = asyncio.Semaphore(self.concurrency)
        tasks = []
        for item in items:
            if self._stopping:
                break
            await gate.acquire()
            task = asyncio.create_task(self._deliver(item))
            task.add_done_callback(lambda _t: gate.release())
            tasks.append(task)
        if tasks:
            await asyncio.gather(*tasks)
        return len(tasks)

    async def _deliver(self, item: OutboxItem) -> None:
        try:
            await self._deliver_one(item)
        except Exception:
            log.exception("reminder #%d: delivery failed unexpectedly", item.id)

    async def _deliver_one(self, item: OutboxItem) -> None:
        now = self.clock()
        if item.expires_at <= now:
            log.info(
                "reminder #%d (%s %s %s %s) dropped: its time passed before it could be sent",
                item.id, item.kind, item.ref, item.occurrence, item.slot,
            )  # fmt: skip
            await asyncio.to_thread(self.outbox.drop, item.id, "expired before delivery")
            return
        if await asyncio.to_thread(self.outbox.superseded, item):
            log.info("reminder #%d dropped: a later reminder of the same is due too", item.id)
            await asyncio.to_thread(self.outbox.drop, item.id, "superseded by a later reminder")
            return
        if not self.senders.has(item.channel):
            await asyncio.to_thread(
                self.outbox.postpone, item.id, now + CHANNEL_RETRY, "channel not running"
            )
            return
        reply, reason = await asyncio.to_thread(self._render, item)
        if reply is None:
            await asyncio.to_thread(self.outbox.drop, item.id, reason)
            return
        await self.pacer.wait(item.channel, item.chat_id)
        if not await asyncio.to_thread(self.outbox.claim, item.id, self.worker):
            return  # another worker took it
        try:
            await self.senders.send(item.channel, item.chat_id, replace(reply, bulk=True))
        except RecipientBlocked as exc:
            await asyncio.to_thread(self.outbox.finish, item.id, "blocked", str(exc))
            await asyncio.to_thread(self._members.set_active, item.member_id, False)
        except RateLimited as exc:  # refused, so not delivered: safe to try again
            retry = self.clock() + dt.timedelta(seconds=exc.retry_after)
            await asyncio.to_thread(self.outbox.release, item.id, retry, str(exc))
        except ChannelUnavailable as exc:
            retry = self.clock() + CHANNEL_RETRY
            await asyncio.to_thread(self.outbox.release, item.id, retry, str(exc))
        except SendError as exc:
            attempts = item.attempts + 1
            if item.kind in self.resend and attempts < RESEND_ATTEMPTS:
                retry = self.clock() + RETRY_BACKOFF * 2 ** (attempts - 1)
                log.info("%s message #%d failed (%s); retrying at %s", item.kind, item.id, exc,
                         retry)  # fmt: skip
                await asyncio.to_thread(self.outbox.release, item.id, retry, str(exc))
                return
            log.warning("message #%d not delivered: %s", item.id, exc)
            await asyncio.to_thread(self.outbox.finish, item.id, "failed", str(exc))
        except Exception as exc:
            await asyncio.to_thread(self.outbox.finish, item.id, "failed", repr(exc))
            raise
        else:
            await asyncio.to_thread(self.outbox.finish, item.id, "sent")
            self.sent += 1

    def _render(self, item: OutboxItem) -> tuple[Reply | None, str]:
        """The message for a row, or None and why it is no longer wanted."""
        renderer = self.renderers.get(item.kind)
        if renderer is None:
            return None, f"unknown kind {item.kind!r}"
        return renderer(item)
