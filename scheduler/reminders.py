"""Reminders: APScheduler plans them, the outbox worker delivers them.

``ReminderService`` runs inside ``coopbot run``:

* APScheduler (``AsyncIOScheduler``, timezone Asia/Ho_Chi_Minh) keeps its jobs
  in the application database (``SQLAlchemyJobStore``, table
  ``apscheduler_jobs``): the daily planner (00:00:30) that puts the next
  deadline reminders into the outbox, and a weekly clean-up. A run missed
  while the service was down fires once at start-up (coalesced); the planner
  also runs at every start-up, so days missed are caught up (``planner``).
  Only the scheduler leader of the database runs them (``leader``).
* The worker (``delivery``) sends due outbox rows through the channel-neutral
  ``Senders``, paced per channel and per chat, each rendered by the renderer of
  its kind (``renderers``).
* Training session messages are put into the outbox by ``TrainingStore``
  (the CLI, another process, writes there too; the worker polls). The entries
  attached to a session are planned here, every 5 minutes: an hour after the
  session ended, one message to each member holding a seat, keyed by the session
  alone (``session_after``), so it goes once, whatever is edited afterwards; a
  cancelled session sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Final

from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.clock import VIETNAM, aware, utcnow
from bot.profile import ProfileOptions
from bot.sending import Senders
from bot.store.broadcasts import BROADCAST
from bot.store.db import TrainingRegistration, TrainingSession
from bot.store.inbox import prune_inbox
from bot.store.outbox import SESSION_AFTER, Outbox
from bot.store.pushes import PushStore
from bot.store.training import TrainingStore
from knowledge.base import KnowledgeBase
from scheduler.deadlines import Rule
from scheduler.delivery import Delivery, SendPacer
from scheduler.leader import Leadership
from scheduler.planner import DeadlinePlanner, PlanResult
from scheduler.renderers import EntryLinksFn, OutboxRenderers

__all__ = ["AFTER_SESSION", "ReminderService", "plan_after_sessions"]

log = logging.getLogger(__name__)

PLANNER_JOB: Final = "plan-deadline-reminders"
CLEANUP_JOB: Final = "clean-up-outbox"
AFTER_SESSION_JOB: Final = "plan-after-session-entries"
AFTER_SESSION: Final = dt.timedelta(hours=1)  # after the end: the session's entries
AFTER_SESSION_KEPT: Final = dt.timedelta(days=2)  # not sent later than this after that
KEEP_FINISHED: Final = dt.timedelta(days=90)
KEEP_EVENT_CLAIMS: Final = dt.timedelta(days=7)
_SERVICES: dict[str, ReminderService] = {}


# -- APScheduler jobs: module-level, found by reference from the job store -------------------


async def run_planner(key: str) -> None:
    """The daily planner job."""
    service = _SERVICES.get(key)
    if service is None:
        log.warning("planner job fired with no reminder service running for %s", key)
        return
    await service.plan()


async def run_after_sessions(key: str) -> None:
    """The job that plans the entries of sessions that ended an hour ago."""
    service = _SERVICES.get(key)
    if service is not None:
        await service.plan_after_sessions()


def plan_after_sessions(engine: Engine, outbox: Outbox, now: dt.datetime) -> int:
    """Puts the entries of each session that ended an hour ago into the outbox (idempotent).

    Sessions that ended between ``AFTER_SESSION + AFTER_SESSION_KEPT`` and
    ``AFTER_SESSION`` ago, not cancelled, with entries; one row per seat, keyed
    ``(member, session_after, session id, entries, 1h)``: never a second one.
    """
    ended = select(TrainingSession.id, TrainingSession.ends_at).where(
        TrainingSession.status == "scheduled",
        TrainingSession.entries != "",
        TrainingSession.ends_at <= now - AFTER_SESSION,
        TrainingSession.ends_at > now - AFTER_SESSION - AFTER_SESSION_KEPT,
    )
    with engine.connect() as connection:
        sessions = {row.id: aware(row.ends_at) + AFTER_SESSION for row in connection.execute(ended)}
        seats = connection.execute(
            select(TrainingRegistration.session_id, TrainingRegistration.member_id).where(
                TrainingRegistration.session_id.in_(list(sessions))
            )
        ).all()
    return outbox.add(
        {
            "member_id": member_id,
            "kind": SESSION_AFTER,
            "ref": str(session_id),
            "occurrence": "entries",
            "slot": "1h",
            "send_at": sessions[session_id],
            "expires_at": sessions[session_id] + AFTER_SESSION_KEPT,
        }
        for session_id, member_id in seats
    )


async def run_cleanup(key: str) -> None:
    """The weekly job that forgets finished outbox rows older than 90 days."""
    service = _SERVICES.get(key)
    if service is not None:
        await asyncio.to_thread(service.clean_up)


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
        kb: KnowledgeBase | None = None,
        links: EntryLinksFn | None = None,
    ) -> None:
        """Wires the outbox, planner, training store and delivery to ``engine`` and ``senders``.

        ``accounts``: ``{channel: bot id}`` of the bots this process runs; it sends
        only their members' rows (None: every row). ``lease``: how long a reservation
        of outbox rows holds unrenewed; ``leader_retry``: how often a follower tries
        to become the scheduler leader (PostgreSQL). ``kb`` and ``links``: the entries
        sent after a training session and their links (``OutboxRenderers``).
        """
        self._engine = engine
        self.clock = clock
        self.outbox = Outbox(engine, clock, lease)
        self.planner = DeadlinePlanner(engine, self.outbox, rules, clock)
        self.training = TrainingStore(engine, self.outbox, clock)
        self.key = engine.url.render_as_string(hide_password=True)
        self.worker = f"{socket.gethostname()[:20]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.delivery = Delivery(
            engine,
            self.outbox,
            senders,
            OutboxRenderers(
                engine, rules, self.training, options, clock, kb=kb, links=links
            ).by_kind(),
            worker=self.worker,
            pacer=SendPacer(rates or {"telegram": 30.0, "zalo": 20.0}, per_chat),
            clock=clock,
            poll_interval=poll_interval,
            concurrency=concurrency,
            batch=batch,
            accounts=accounts,
            resend=(BROADCAST,),  # a broadcast is sent at least once, a reminder at most once
        )
        self.scheduler: AsyncIOScheduler | None = None
        self.leadership = Leadership(
            engine, self.worker, self._lead, self._follow, retry=leader_retry
        )
        self._plan_lock = asyncio.Lock()

    # -- life cycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Recovers rows a dead worker left, competes for the scheduler, starts the worker.

        The scheduler leader (one per database) runs APScheduler and plans; every
        process delivers its own bots' rows and keeps its leases alive.
        """
        await self.delivery.recover()
        _SERVICES[self.key] = self
        await self.leadership.start()
        self.delivery.start()

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
        self._keep_job(
            AFTER_SESSION_JOB,
            run_after_sessions,
            CronTrigger(minute="*/5", timezone=VIETNAM),
            "send training sessions' entries an hour after they end",
        )
        await self.plan()

    async def _follow(self) -> None:
        """No longer the leader: stops APScheduler (another process runs the jobs)."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop
        self.scheduler = None

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
        await self.delivery.stop()
        await self.leadership.stop()
        if _SERVICES.get(self.key) is self:
            del _SERVICES[self.key]

    def wake(self) -> None:
        """Look at the outbox and the jobs now (after an enqueue, or a clock jump in tests)."""
        self.delivery.wake()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.wakeup()

    async def plan(self) -> PlanResult:
        """Plans deadline reminders up to the end of tomorrow (idempotent)."""
        async with self._plan_lock:
            result = await asyncio.to_thread(self.planner.plan)
        await self.plan_after_sessions()
        return result

    async def plan_after_sessions(self) -> int:
        """Plans the entries of the sessions that ended an hour ago (idempotent)."""
        now = self.clock()
        count = await asyncio.to_thread(plan_after_sessions, self._engine, self.outbox, now)
        self.delivery.wake()
        return count

    async def plan_member(self, member_id: int) -> int:
        """Plans the reminders still ahead for one member (after /nhacnho or /hoso)."""
        count = await asyncio.to_thread(self.planner.plan_member, member_id)
        if count:
            self.delivery.wake()
        return count

    def clean_up(self) -> int:
        """Deletes finished rows older than 90 days (pending ones stay).

        Handled inbound updates older than a week go too (platforms redeliver within hours),
        and web-chat messages no page fetched within a day.
        """
        now = self.clock()
        count = self.outbox.prune(now - KEEP_FINISHED)
        prune_inbox(self._engine, now, KEEP_EVENT_CLAIMS)
        PushStore(self._engine, clock=lambda: now).prune()
        return count

    async def deliver_due(self) -> int:
        """One delivery pass now: sends (or drops) the rows due; returns how many were handled."""
        return await self.delivery.deliver_due()
