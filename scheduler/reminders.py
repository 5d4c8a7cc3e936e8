"""Reminders: APScheduler plans them, an outbox worker delivers them.

``ReminderService`` runs inside ``coopbot run``:

* APScheduler (``AsyncIOScheduler``, timezone Asia/Ho_Chi_Minh) keeps its jobs
  in the application database (``SQLAlchemyJobStore``, table
  ``apscheduler_jobs``): the daily planner (00:00:30) that puts the next
  deadline reminders into the outbox, and a weekly clean-up. A run missed
  while the service was down fires once at start-up (coalesced); the planner
  also runs at every start-up, so days missed are caught up (``planner``).
* The worker sends due outbox rows through the channel-neutral ``Senders``,
  paced per channel and per chat; each row is claimed before and finished
  after its send, so it goes out at most once (``outbox``). Rows past their
  deadline are dropped with a log line instead of being sent late.
* Training session messages are put into the outbox by ``TrainingStore``
  (the CLI, another process, writes there too; the worker polls).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Final

from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import delete, exists, select, update
from sqlalchemy.engine import Engine

from bot.clock import aware, utcnow
from bot.profile import ProfileOptions
from bot.replies import Button, Reply
from bot.sending import ChannelUnavailable, RateLimited, RecipientBlocked, SendError, Senders
from bot.store.broadcasts import BROADCAST, render_broadcast
from bot.store.db import (
    Broadcast,
    Member,
    OutboxMessage,
    ReminderSubscription,
    TrainingRegistration,
)
from bot.store.inbox import prune_inbox
from bot.store.members import PROFILE_FIELDS
from bot.store.outbox import DEADLINE, SESSION, SESSION_CHANGE, Outbox, OutboxItem
from bot.store.pushes import PushStore
from scheduler.deadlines import Rule, due_dates, format_date
from scheduler.leader import Leadership
from scheduler.planner import VIETNAM, DeadlinePlanner, PlanResult
from scheduler.training import SessionInfo, TrainingStore, describe, format_moment

__all__ = ["ReminderService", "SendPacer", "render_deadline"]

log = logging.getLogger(__name__)

PLANNER_JOB: Final = "plan-deadline-reminders"
CLEANUP_JOB: Final = "clean-up-outbox"
KEEP_FINISHED: Final = dt.timedelta(days=90)
KEEP_EVENT_CLAIMS: Final = dt.timedelta(days=7)
CHANNEL_RETRY: Final = dt.timedelta(minutes=5)
BROADCAST_ATTEMPTS: Final = 3  # a broadcast message that fails otherwise is tried 3 times
RETRY_BACKOFF: Final = dt.timedelta(seconds=30)  # then 60 s
_SERVICES: dict[str, ReminderService] = {}


# -- APScheduler jobs: module-level, found by reference from the job store -------------------


async def run_planner(key: str) -> None:
    """The daily planner job."""
    service = _SERVICES.get(key)
    if service is None:
        log.warning("planner job fired with no reminder service running for %s", key)
        return
    await service.plan()


async def run_cleanup(key: str) -> None:
    """The weekly job that forgets finished outbox rows older than 90 days."""
    service = _SERVICES.get(key)
    if service is not None:
        await asyncio.to_thread(service.clean_up)


# -- pacing ------------------------------------------------------------------------------------


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


# -- rendering ----------------------------------------------------------------------------------


def render_deadline(rule: Rule, period: str, due: dt.date, nominal: dt.date, today: dt.date) -> str:
    """A deadline reminder's text."""
    left = (due - today).days
    when = "hôm nay là hạn cuối" if left <= 0 else f"còn {left} ngày"
    lines = [
        f"⏰ Nhắc hạn: {rule.title}",
        f"Kỳ: {period}",
        f"Hạn cuối: {format_date(due)} ({when})",
        f"Căn cứ: {rule.basis_text(due)}",
    ]
    if due != nominal:
        lines.append(
            f"(Hạn gốc {format_date(nominal)} là ngày nghỉ nên được tính sang ngày làm việc "
            "liền kề sau đó.)"
        )
    if rule.unconfirmed:
        lines.append("Hạn này chưa được xác nhận chắc chắn cho HTX; gõ /lienhe để hỏi cán bộ.")
    lines.append("\nĐổi hoặc tắt nhắc hạn: /nhacnho")
    return "\n".join(lines)


_DEADLINE_BUTTONS: Final = (
    Button("🗓 Xem lịch nộp", "cmd:lichnop"),
    Button("🔔 Đổi nhắc hạn", "cmd:nhacnho"),
)


class ReminderService:
    """Plans deadline reminders, keeps the APScheduler jobs, runs the delivery worker."""

    def __init__(
        self,
        engine: Engine,
        senders: Senders,
        rules: Sequence[Rule],
        options: ProfileOptions | None = None,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        poll_interval: float = 15.0,
        rates: Mapping[str, float] | None = None,
        per_chat: float = 1.0,
        concurrency: int = 4,
        batch: int = 200,
        accounts: Mapping[str, str | None] | None = None,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        leader_retry: float = 2.0,
    ) -> None:
        """Wires the outbox, planner and training store to ``engine`` and ``senders``.

        ``accounts``: ``{channel: bot id}`` of the bots this process runs; it sends
        only their members' rows (None: every row). ``lease``: how long a reservation
        of outbox rows holds unrenewed; ``leader_retry``: how often a follower tries
        to become the scheduler leader (PostgreSQL).
        """
        self._engine = engine
        self.senders = senders
        self.rules = {rule.id: rule for rule in rules}
        self.options = options
        self.clock = clock
        self.outbox = Outbox(engine, clock, lease)
        self.accounts = dict(accounts) if accounts is not None else None
        self.planner = DeadlinePlanner(engine, self.outbox, rules, clock)
        self.training = TrainingStore(engine, self.outbox, clock)
        self.poll_interval = poll_interval
        self.pacer = SendPacer(rates or {"telegram": 30.0, "zalo": 20.0}, per_chat)
        self.concurrency = concurrency
        self.batch = batch
        self.key = engine.url.render_as_string(hide_password=True)
        self.worker = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.scheduler: AsyncIOScheduler | None = None
        self.leadership = Leadership(
            engine, self.worker, self._lead, self._follow, retry=leader_retry
        )
        self._keeper: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._plan_lock = asyncio.Lock()
        self.sent = 0

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recovers rows a dead worker left, competes for the scheduler, starts the worker.

        The scheduler leader (one per database) runs APScheduler and plans; every
        process delivers its own bots' rows and keeps its leases alive.
        """
        sole = self._engine.dialect.name == "sqlite"  # SQLite: one process by design
        await asyncio.to_thread(self.outbox.recover_in_flight, (BROADCAST,), everything=sole)
        _SERVICES[self.key] = self
        await self.leadership.start()
        self._task = asyncio.create_task(self._run(), name="reminder-worker")
        self._keeper = asyncio.create_task(self._keep_leases(), name="outbox-leases")

    async def _lead(self) -> None:
        """Now the scheduler leader: starts APScheduler with the jobs and plans."""
        self.scheduler = AsyncIOScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self._engine)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=VIETNAM,
        )
        self.scheduler.start()
        self._keep_job(
            PLANNER_JOB,
            run_planner,
            CronTrigger(hour=0, minute=0, second=30, timezone=VIETNAM),
            "plan the next deadline reminders",
        )
        self._keep_job(
            CLEANUP_JOB,
            run_cleanup,
            CronTrigger(day_of_week="sun", hour=3, minute=15, timezone=VIETNAM),
            "forget old finished outbox rows",
        )
        await self.plan()

    async def _follow(self) -> None:
        """No longer the leader: stops APScheduler (another process runs the jobs)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop
        self.scheduler = None

    async def _keep_leases(self) -> None:
        """Renews this worker's leases and takes back what dead workers left, every third lease."""
        every = max(0.05, self.outbox.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.outbox.renew, self.worker)
                if await asyncio.to_thread(self.outbox.recover_in_flight, (BROADCAST,)):
                    self._wake.set()
            except Exception:  # the database may be away for a moment
                log.exception("outbox lease renewal failed")

    def _keep_job(
        self,
        job_id: str,
        func: Callable[[str], object],
        trigger: CronTrigger,
        name: str,
    ) -> None:
        """Adds the job unless the job store has it with the same trigger.

        A stored job keeps its next run time, so a run missed while the service
        was down fires once now (coalesced).
        """
        assert self.scheduler is not None
        stored = self.scheduler.get_job(job_id)
        if stored is not None and str(stored.trigger) == str(trigger):
            return
        with contextlib.suppress(ConflictingIdError):  # another process added it meanwhile
            self.scheduler.add_job(
                func, trigger, args=[self.key], id=job_id, name=name, replace_existing=True
            )

    async def stop(self) -> None:
        """Stops the worker (sends in flight finish) and the scheduler."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)
        await asyncio.to_thread(self.outbox.unreserve, self.worker)
        await self.leadership.stop()
        if _SERVICES.get(self.key) is self:
            del _SERVICES[self.key]

    def wake(self) -> None:
        """Look at the outbox and the jobs now (after an enqueue, or a clock jump in tests)."""
        self._wake.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.wakeup()

    async def plan(self) -> PlanResult:
        """Plans deadline reminders up to the end of tomorrow (idempotent)."""
        async with self._plan_lock:
            result = await asyncio.to_thread(self.planner.plan)
        self._wake.set()
        return result

    async def plan_member(self, member_id: int) -> int:
        """Plans the reminders still ahead for one member (after /nhacnho or /hoso)."""
        count = await asyncio.to_thread(self.planner.plan_member, member_id)
        if count:
            self._wake.set()
        return count

    def clean_up(self) -> int:
        """Deletes finished rows older than 90 days (pending ones stay).

        Handled inbound updates older than a week go too (platforms redeliver within hours),
        and web-chat messages no page fetched within a day.
        """
        now = self.clock()
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.status.not_in(("pending", "sending")),
                    OutboxMessage.send_at < now - KEEP_FINISHED,
                )
            )
        prune_inbox(self._engine, now, KEEP_EVENT_CLAIMS)
        PushStore(self._engine, clock=lambda: now).prune()
        return int(result.rowcount or 0)

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
            await asyncio.to_thread(self._deactivate, item.member_id)
        except RateLimited as exc:  # refused, so not delivered: safe to try again
            retry = self.clock() + dt.timedelta(seconds=exc.retry_after)
            await asyncio.to_thread(self.outbox.release, item.id, retry, str(exc))
        except ChannelUnavailable as exc:
            retry = self.clock() + CHANNEL_RETRY
            await asyncio.to_thread(self.outbox.release, item.id, retry, str(exc))
        except SendError as exc:
            attempts = item.attempts + 1
            if item.kind == BROADCAST and attempts < BROADCAST_ATTEMPTS:
                retry = self.clock() + RETRY_BACKOFF * 2 ** (attempts - 1)
                log.info("broadcast message #%d failed (%s); retrying at %s", item.id, exc, retry)
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

    def _deactivate(self, member_id: int) -> None:
        with self._engine.begin() as connection:
            connection.execute(update(Member).where(Member.id == member_id).values(active=False))

    # -- what each row says ---------------------------------------------------------------------

    def _render(self, item: OutboxItem) -> tuple[Reply | None, str]:
        """The message for a row, or None and why it is no longer wanted."""
        if item.kind == DEADLINE:
            return self._render_deadline(item)
        if item.kind in (SESSION, SESSION_CHANGE):
            return self._render_session(item)
        if item.kind == BROADCAST:
            return self._render_broadcast(item)
        return None, f"unknown kind {item.kind!r}"

    def _render_broadcast(self, item: OutboxItem) -> tuple[Reply | None, str]:
        with self._engine.connect() as connection:
            found = connection.execute(
                select(Broadcast.status, Broadcast.text).where(Broadcast.id == int(item.ref))
            ).one_or_none()
            member = connection.execute(
                select(Member.active, Member.consent_broadcasts).where(Member.id == item.member_id)
            ).one_or_none()
        if found is None or found.status == "cancelled":
            return None, "the broadcast was cancelled"
        if member is None or not member.active:
            return None, "member inactive or gone"
        if not member.consent_broadcasts:
            return None, "the member turned announcements off"
        return Reply(render_broadcast(found.text)), ""

    def _render_deadline(self, item: OutboxItem) -> tuple[Reply | None, str]:
        rule = self.rules.get(item.ref)
        if rule is None:
            return None, "the rule no longer exists"
        with self._engine.connect() as connection:
            member = connection.execute(
                select(
                    Member.active,
                    Member.consent_reminders,
                    *(getattr(Member, name) for name in PROFILE_FIELDS),
                    exists().where(
                        ReminderSubscription.member_id == Member.id,
                        ReminderSubscription.rule_id == rule.id,
                    ),
                ).where(Member.id == item.member_id)
            ).one_or_none()
        if member is None or not member[0]:
            return None, "member inactive or gone"
        if not member[1] or not member[-1]:
            return None, "the member no longer wants this reminder"
        profile = dict(zip(PROFILE_FIELDS, member[2:-1], strict=True))
        if not rule.applies(profile):
            return None, "the rule no longer applies to the member's profile"
        due_day = dt.date.fromisoformat(item.occurrence)
        found = [d for d in due_dates([rule], due_day, due_day) if d.rule.id == rule.id]
        if not found:
            return None, "the due date moved (rule file changed)"
        due = found[0]
        today = self.clock().astimezone(VIETNAM).date()
        text = render_deadline(rule, due.period, due.date, due.nominal, today)
        return Reply(text, _DEADLINE_BUTTONS), ""

    def _render_session(self, item: OutboxItem) -> tuple[Reply | None, str]:
        session = self.training.get(int(item.ref))
        if session is None:
            return None, "the session no longer exists"
        with self._engine.connect() as connection:
            active = connection.scalar(select(Member.active).where(Member.id == item.member_id))
            seat = connection.scalar(
                select(
                    exists().where(
                        TrainingRegistration.session_id == session.id,
                        TrainingRegistration.member_id == item.member_id,
                    )
                )
            )
        if not active:
            return None, "member inactive or gone"
        if item.kind == SESSION:
            if not seat:
                return None, "the member gave the seat back"
            if session.status != "scheduled":
                return None, "the session was cancelled"
            if aware(session.starts_at).isoformat() != item.occurrence:
                return None, "the session moved"
            return self._session_reminder(session, item.slot), ""
        if item.slot == "cancelled":
            text = (
                f"❌ Buổi tập huấn bạn đã đăng ký đã bị huỷ:\n{session.title}, "
                f"{format_moment(session.starts_at)}.\n\n"
                "Xin lỗi vì sự bất tiện. Xem các buổi khác: /taphuan"
            )
            return Reply(text, (Button("📅 Các buổi tập huấn", "cmd:taphuan"),)), ""
        if not seat:
            return None, "the member gave the seat back"
        text = "📢 Buổi tập huấn bạn đã đăng ký có thay đổi. Thông tin mới:\n\n" + describe(
            session, self._province_label
        )
        return Reply(text, _session_buttons(session)), ""

    def _session_reminder(self, session: SessionInfo, slot: str) -> Reply:
        when = "ngày mai" if slot == "1d" else "sau khoảng 1 giờ nữa"
        head = f"⏰ Nhắc lịch tập huấn: buổi học bắt đầu {when}."
        return Reply(
            f"{head}\n\n{describe(session, self._province_label)}", _session_buttons(session)
        )

    def _province_label(self, code: str) -> str | None:
        return self.options.label("province", code) if self.options is not None else None


def _session_buttons(session: SessionInfo) -> tuple[Button, ...]:
    return (
        Button("❌ Huỷ đăng ký", f"th:u:{session.id}"),
        Button("📅 Các buổi tập huấn", "cmd:taphuan"),
    )
