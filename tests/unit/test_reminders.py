"""Reminders: planning into the outbox, catch-up, delivery at most once, APScheduler jobs, seats.

The clock is controlled two ways: a settable clock handed to the services, and
time-machine (for APScheduler, which reads the system clock).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
from collections import deque
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from bot.replies import Reply
from bot.sending import RateLimited, RecipientBlocked, Senders
from bot.store.db import (
    APSCHEDULER_JOBS,
    InboxEvent,
    Member,
    OutboxMessage,
    TrainingRegistration,
)
from bot.store.inbox import Inbox
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from bot.store.training import TrainingStore
from bot.store.training_sessions import Registration, SessionDraft
from scheduler.deadlines import load_rules
from scheduler.planner import DeadlinePlanner, deadline_slots
from scheduler.reminders import ReminderService

VN = ZoneInfo("Asia/Ho_Chi_Minh")
RULES = load_rules()


def vn(*args: int) -> dt.datetime:
    """A Vietnam-time moment, as UTC."""
    return dt.datetime(*args, tzinfo=VN).astimezone(dt.UTC)  # type: ignore[misc]


class Clock:
    """A clock the test sets."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


class Recorder:
    """A channel sender that records what it was asked to send (or fails on demand)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, Reply]] = []
        self.failures: dict[str, deque[Exception]] = {}

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        queue = self.failures.get(chat_id)
        if queue:
            raise queue.popleft()
        self.sent.append((chat_id, reply))
        return str(len(self.sent))

    def texts(self, chat_id: str) -> list[str]:
        return [reply.text for chat, reply in self.sent if chat == chat_id]


def make_member(engine: Engine, user: str, rules: tuple[str, ...] = (), **profile: Any) -> int:
    members = MemberStore(engine)
    member = members.touch("telegram", user, user, f"Thành viên {user}")
    if profile:
        members.update_profile(member.id, **profile)
    if rules:
        SubscriptionStore(engine).replace(member.id, rules)
    return member.id


def outbox_rows(engine: Engine, **where: Any) -> list[OutboxMessage]:
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    with engine.connect() as connection:
        return list(connection.execute(query).all())  # type: ignore[arg-type]


def service_for(engine: Engine, clock: Clock, recorder: Recorder, **kw: Any) -> ReminderService:
    senders = Senders()
    senders.register("telegram", recorder)
    return ReminderService(engine, senders, RULES, clock=clock, per_chat=0.0, **kw)


# -- slots and planning ---------------------------------------------------------------------------


def test_slots_fall_at_eight_in_the_morning_vietnam_time_before_the_working_day_due_date():
    monthly = [r for r in RULES if r.id == "gtgt_thang"]
    slots = deadline_slots(monthly, vn(2027, 1, 1), vn(2027, 2, 1))
    assert [(s.name, s.occurrence, s.send_at) for s in slots] == [
        ("7d", "2027-01-20", vn(2027, 1, 13, 8, 0)),
        ("2d", "2027-01-20", vn(2027, 1, 18, 8, 0)),
        ("0d", "2027-01-20", vn(2027, 1, 20, 8, 0)),
    ]
    assert all(s.expires_at == vn(2027, 1, 21) for s in slots)
    # 20/02/2027 is a Saturday: the due date moves to Monday 22/02, reminders with it.
    february = deadline_slots(monthly, vn(2027, 2, 1), vn(2027, 3, 1))
    assert [(s.name, s.occurrence) for s in february] == [
        ("7d", "2027-02-22"),
        ("2d", "2027-02-22"),
        ("0d", "2027-02-22"),
    ]
    assert february[0].send_at == vn(2027, 2, 15, 8, 0)


def test_planner_enqueues_the_slots_of_consenting_subscribers_once(db_engine):
    monthly = make_member(db_engine, "1", ("gtgt_thang",), vat_period="monthly")
    unset = make_member(db_engine, "2", ("gtgt_thang",))
    quarterly = make_member(db_engine, "3", ("gtgt_quy",), vat_period="quarterly")
    withdrawn = make_member(db_engine, "4", ("gtgt_thang",), vat_period="monthly")
    inactive = make_member(db_engine, "5", ("gtgt_thang",), vat_period="monthly")
    never = make_member(db_engine, "6", vat_period="monthly")
    with db_engine.begin() as connection:
        connection.execute(
            update(Member).where(Member.id == withdrawn).values(consent_reminders=False)
        )
        connection.execute(update(Member).where(Member.id == inactive).values(active=False))
    clock = Clock(vn(2027, 1, 13, 0, 0, 30))
    outbox = Outbox(db_engine, clock)
    planner = DeadlinePlanner(db_engine, outbox, RULES, clock)

    result = planner.plan()

    rows = outbox_rows(db_engine)
    assert {(r.member_id, r.kind, r.ref, r.occurrence, r.slot) for r in rows} == {
        (monthly, "deadline", "gtgt_thang", "2027-01-20", "7d"),
        (unset, "deadline", "gtgt_thang", "2027-01-20", "7d"),
    }
    assert {r.status for r in rows} == {"pending"}
    assert all(r.send_at.replace(tzinfo=dt.UTC) == vn(2027, 1, 13, 8, 0) for r in rows)
    assert result.enqueued == 2
    assert planner.planned_until() == vn(2027, 1, 15)  # the end of tomorrow
    assert quarterly and never  # planned nothing for them
    # Running again over the same window adds nothing; so does a second planner.
    assert planner.plan().enqueued == 0
    planner.mark_planned_until(vn(2027, 1, 13))
    assert DeadlinePlanner(db_engine, outbox, RULES, clock).plan().enqueued == 0
    assert len(outbox_rows(db_engine)) == 2


def test_missed_slots_the_latest_goes_out_now_if_the_deadline_is_ahead(sqlite_engine, caplog):
    member = make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 19, 10, 0))  # down from 10/01 to 19/01 10:00
    planner = DeadlinePlanner(sqlite_engine, Outbox(sqlite_engine, clock), RULES, clock)
    planner.mark_planned_until(vn(2027, 1, 10))

    with caplog.at_level(logging.INFO, logger="scheduler.planner"):
        result = planner.plan()

    rows = outbox_rows(sqlite_engine, member_id=member)
    assert [(r.slot, r.send_at.replace(tzinfo=dt.UTC)) for r in rows] == [
        ("2d", clock.now),  # missed on 18/01, deadline 20/01 ahead: now
        ("0d", vn(2027, 1, 20, 8, 0)),  # still to come, at its time
    ]
    assert result.caught_up == 1
    assert any("a later one goes out" in m and "(7d" in m for m in caplog.messages)


def test_missed_slots_whose_deadline_passed_are_dropped_with_a_log_line(sqlite_engine, caplog):
    make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 22, 9, 0))
    planner = DeadlinePlanner(sqlite_engine, Outbox(sqlite_engine, clock), RULES, clock)
    planner.mark_planned_until(vn(2027, 1, 10))

    with caplog.at_level(logging.INFO, logger="scheduler.planner"):
        result = planner.plan()

    assert outbox_rows(sqlite_engine) == []
    assert len(result.dropped_slots) == 3
    dropped = [m for m in caplog.messages if "deadline passed" in m]
    assert len(dropped) == 3 and all("gtgt_thang hạn 20/01/2027" in m for m in dropped)


# -- delivery -----------------------------------------------------------------------------------


def test_reminders_go_out_at_their_time_once_with_the_rule_and_basis(sqlite_engine):
    a = make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    b = make_member(sqlite_engine, "2", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 13, 0, 0, 30))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    service.planner.plan()

    clock.now = vn(2027, 1, 13, 7, 59, 59)
    assert asyncio.run(service.deliver_due()) == 0
    clock.now = vn(2027, 1, 13, 8, 0, 1)
    assert asyncio.run(service.deliver_due()) == 2
    assert asyncio.run(service.deliver_due()) == 0  # sent once

    (text,) = recorder.texts("1")
    assert "Nhắc hạn: Nộp tờ khai thuế GTGT tháng" in text
    assert "Kỳ: tháng 12/2026" in text
    assert "Hạn cuối: 20/01/2027 (còn 7 ngày)" in text
    # A due date after 01/07/2026 rests on the tax-administration decree of 2026.
    assert "Căn cứ: Nghị định 252/2026/NĐ-CP, Điều 10 khoản 2" in text
    assert [b.payload for b in recorder.sent[0][1].buttons] == ["cmd:lichnop", "cmd:nhacnho"]
    assert len(recorder.texts("2")) == 1
    assert {r.status for r in outbox_rows(sqlite_engine)} == {"sent"}
    assert {r.member_id for r in outbox_rows(sqlite_engine)} == {a, b}


def test_a_reminder_no_longer_wanted_is_dropped_not_sent(sqlite_engine):
    stays = make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    leaves = make_member(sqlite_engine, "2", ("gtgt_thang",), vat_period="monthly")
    switches = make_member(sqlite_engine, "3", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 13, 0, 0, 30))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    service.planner.plan()
    SubscriptionStore(sqlite_engine).replace(leaves, ())  # /nhacnho: off
    MemberStore(sqlite_engine).update_profile(switches, vat_period="quarterly")  # /hoso

    clock.now = vn(2027, 1, 13, 8, 0, 1)
    asyncio.run(service.deliver_due())

    assert [chat for chat, _ in recorder.sent] == ["1"]
    by_member = {r.member_id: r for r in outbox_rows(sqlite_engine)}
    assert by_member[stays].status == "sent"
    assert by_member[leaves].status == "dropped"
    assert by_member[switches].status == "dropped"
    assert "profile" in by_member[switches].error


def test_blocked_members_are_deactivated_and_rate_limits_retried_later(sqlite_engine):
    blocked = make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    limited = make_member(sqlite_engine, "2", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 13, 0, 0, 30))
    recorder = Recorder()
    recorder.failures["1"] = deque([RecipientBlocked("Forbidden: bot was blocked by the user")])
    recorder.failures["2"] = deque([RateLimited(3)])
    service = service_for(sqlite_engine, clock, recorder)
    service.planner.plan()

    clock.now = vn(2027, 1, 13, 8, 0, 1)
    asyncio.run(service.deliver_due())
    by_member = {r.member_id: r for r in outbox_rows(sqlite_engine)}
    assert by_member[blocked].status == "blocked"
    assert MemberStore(sqlite_engine).get(blocked).active is False  # type: ignore[union-attr]
    assert by_member[limited].status == "pending"
    assert by_member[limited].send_at.replace(tzinfo=dt.UTC) == clock.now + dt.timedelta(seconds=3)

    clock.now += dt.timedelta(seconds=2)
    assert asyncio.run(service.deliver_due()) == 0  # not yet
    clock.now += dt.timedelta(seconds=2)
    assert asyncio.run(service.deliver_due()) == 1
    assert recorder.texts("2") and not recorder.texts("1")
    assert {r.member_id: r.status for r in outbox_rows(sqlite_engine)}[limited] == "sent"


def test_a_row_in_flight_at_a_crash_is_never_sent_again(sqlite_engine, caplog):
    make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    make_member(sqlite_engine, "2", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 13, 0, 0, 30))
    outbox = Outbox(sqlite_engine, clock)
    DeadlinePlanner(sqlite_engine, outbox, RULES, clock).plan()
    clock.now = vn(2027, 1, 13, 8, 0, 1)
    first = outbox.due()[0]
    assert outbox.claim(first.id)  # the crash happened during this send

    with caplog.at_level(logging.WARNING):
        assert outbox.recover_in_flight() == 1
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    asyncio.run(service.deliver_due())

    assert len(recorder.sent) == 1 and recorder.sent[0][0] != str(first.member_id)
    statuses = {r.id: r.status for r in outbox_rows(sqlite_engine)}
    assert statuses[first.id] == "unknown"
    assert any("not sent again" in m for m in caplog.messages)


def test_rows_past_their_deadline_at_start_up_are_dropped_with_a_log_line(sqlite_engine, caplog):
    make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 20, 0, 0, 30))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    service.planner.plan()  # the 0d slot of 20/01, due at 08:00
    clock.now = vn(2027, 1, 21, 9, 0)  # the service was down until the next day

    with caplog.at_level(logging.INFO, logger="scheduler.delivery"):
        asyncio.run(service.deliver_due())

    assert recorder.sent == []
    assert [r.status for r in outbox_rows(sqlite_engine)] == ["dropped"]
    assert any("dropped: its time passed" in m for m in caplog.messages)


def test_after_downtime_only_the_latest_due_reminder_of_a_deadline_is_sent(sqlite_engine):
    make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 17, 0, 0, 30))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    service.planner.plan()  # plans 17/01 and 18/01: nothing, then the 2d slot
    clock.now = vn(2027, 1, 19, 0, 0, 30)
    service.planner.plan()  # 19/01-20/01: the 0d slot of 20/01 08:00
    clock.now = vn(2027, 1, 20, 9, 30)  # the service was down from 18/01 to 20/01 09:30

    asyncio.run(service.deliver_due())

    (text,) = recorder.texts("1")
    assert "hôm nay là hạn cuối" in text
    assert {r.slot: r.status for r in outbox_rows(sqlite_engine)} == {
        "2d": "dropped",
        "0d": "sent",
    }


def test_a_channel_that_is_not_running_keeps_the_reminder_for_later(sqlite_engine):
    make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    clock = Clock(vn(2027, 1, 13, 0, 0, 30))
    service = ReminderService(sqlite_engine, Senders(), RULES, clock=clock)  # no channel
    service.planner.plan()
    clock.now = vn(2027, 1, 13, 8, 0, 1)
    asyncio.run(service.deliver_due())
    (row,) = outbox_rows(sqlite_engine)
    assert row.status == "pending"
    assert row.send_at.replace(tzinfo=dt.UTC) == clock.now + dt.timedelta(minutes=5)


def test_the_clean_up_forgets_handled_updates_older_than_a_week(sqlite_engine):
    telegram = Inbox(sqlite_engine, "telegram", "42", "w1")
    zalo = Inbox(sqlite_engine, "zalo", "7", "w1")
    old, recent = telegram.accept("1", "{}"), zalo.accept("t:c:m", "{}")
    assert old and recent and telegram.accept("2", "{}")
    telegram.finish(old)
    zalo.finish(recent)
    with sqlite_engine.begin() as connection:  # the Telegram rows are eight days old
        connection.execute(
            update(InboxEvent)
            .where(InboxEvent.channel == "telegram")
            .values(received_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=8))
        )
    service = ReminderService(sqlite_engine, Senders(), RULES, clock=Clock(dt.datetime.now(dt.UTC)))
    service.clean_up()
    assert telegram.accept("1", "{}")  # forgotten: a redelivery would be new again
    assert zalo.accept("t:c:m", "{}") is None  # a day-old update is kept
    assert telegram.accept("2", "{}") is None  # a pending update is never deleted


# -- APScheduler with its jobs in the database ---------------------------------------------


async def _until(predicate: Any, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def _jobs(engine: Engine) -> dict[str, dt.datetime]:
    with engine.connect() as connection:
        rows = connection.execute(select(APSCHEDULER_JOBS.c.id, APSCHEDULER_JOBS.c.next_run_time))
        return {
            job_id: dt.datetime.fromtimestamp(stamp, dt.UTC).astimezone(VN)
            for job_id, stamp in rows
        }


def test_the_daily_planner_job_is_persisted_fires_at_midnight_and_after_a_restart(sqlite_engine):
    make_member(sqlite_engine, "1", ("gtgt_thang",), vat_period="monthly")
    recorder = Recorder()
    senders = Senders()
    senders.register("telegram", recorder)

    async def scenario(traveller: Any) -> None:
        service = ReminderService(sqlite_engine, senders, RULES, poll_interval=0.1, per_chat=0)
        await service.start()
        try:
            jobs = _jobs(sqlite_engine)
            assert jobs["plan-deadline-reminders"] == dt.datetime(2027, 1, 14, 0, 0, 30, tzinfo=VN)
            assert "clean-up-outbox" in jobs
            assert service.planner.planned_until() == vn(2027, 1, 15)
            traveller.move_to(dt.datetime(2027, 1, 14, 0, 0, 31, tzinfo=VN))
            service.wake()
            await _until(lambda: service.planner.planned_until() == vn(2027, 1, 16))
        finally:
            await service.stop()
        assert _jobs(sqlite_engine)["plan-deadline-reminders"] == dt.datetime(
            2027, 1, 15, 0, 0, 30, tzinfo=VN
        )

        # Down for three days: the stored job is overdue and fires once at start-up.
        traveller.move_to(dt.datetime(2027, 1, 18, 7, 59, 58, tzinfo=VN))
        service = ReminderService(sqlite_engine, senders, RULES, poll_interval=0.1, per_chat=0)
        await service.start()
        try:
            await _until(
                lambda: (
                    _jobs(sqlite_engine)["plan-deadline-reminders"]
                    == dt.datetime(2027, 1, 19, 0, 0, 30, tzinfo=VN)
                )
            )
            assert service.planner.planned_until() == vn(2027, 1, 20)
            # The 7d reminder of 13/01 was missed; the 2d one of 18/01 08:00 comes on time.
            await _until(lambda: len(recorder.sent) == 1, timeout=15)
        finally:
            await service.stop()
        assert "Hạn cuối: 20/01/2027 (còn 2 ngày)" in recorder.sent[0][1].text

    with time_machine.travel(dt.datetime(2027, 1, 13, 23, 59, 50, tzinfo=VN)) as traveller:
        asyncio.run(scenario(traveller))


# -- training sessions: seats, reminders, changes ------------------------------------------


def _session(store: TrainingStore, capacity: int = 1, **kw: Any) -> int:
    values: dict[str, Any] = {
        "title": "Chuyển đổi số cho HTX",
        "starts_at": vn(2027, 3, 10, 8, 0),
        "ends_at": vn(2027, 3, 10, 11, 0),
        "place": "Hội trường Liên minh HTX tỉnh",
        "capacity": capacity,
    }
    values.update(kw)
    return store.create(SessionDraft.build(**values)).id


def test_two_members_racing_for_the_last_seat_one_gets_it(db_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    store = TrainingStore(db_engine, Outbox(db_engine, clock), clock)
    members = [make_member(db_engine, str(i)) for i in range(2)]
    for round_ in range(8):
        start = vn(2027, 3, 10 + round_, 8, 0)
        session = _session(store, 1, starts_at=start, ends_at=start + dt.timedelta(hours=2))
        barrier = threading.Barrier(2)
        outcomes: list[Registration] = []

        def take(
            member: int, session: int = session, barrier: Any = barrier, out: Any = outcomes
        ) -> None:
            barrier.wait()
            out.append(store.register(session, member)[0])

        threads = [threading.Thread(target=take, args=(m,)) for m in members]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(o.value for o in outcomes) == ["full", "ok"], round_
        with db_engine.connect() as connection:
            seats = connection.execute(
                select(TrainingRegistration).where(TrainingRegistration.session_id == session)
            ).all()
        assert len(seats) == 1


def test_twenty_members_racing_for_five_seats(db_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    store = TrainingStore(db_engine, Outbox(db_engine, clock), clock)
    members = [make_member(db_engine, str(i)) for i in range(20)]
    session = _session(store, 5)
    barrier = threading.Barrier(len(members))
    outcomes: list[Registration] = []
    lock = threading.Lock()

    def take(member: int) -> None:
        barrier.wait()
        outcome = store.register(session, member)[0]
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=take, args=(m,)) for m in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count(Registration.OK) == 5
    assert outcomes.count(Registration.FULL) == 15
    assert store.get(session).registered == 5  # type: ignore[union-attr]


def test_no_double_booking_same_session_or_overlapping_times(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    store = TrainingStore(sqlite_engine, Outbox(sqlite_engine, clock), clock)
    member = make_member(sqlite_engine, "1")
    morning = _session(store, 10)
    overlapping = _session(
        store, 10, starts_at=vn(2027, 3, 10, 10, 0), ends_at=vn(2027, 3, 10, 12, 0)
    )
    afternoon = _session(
        store, 10, starts_at=vn(2027, 3, 10, 13, 0), ends_at=vn(2027, 3, 10, 16, 0)
    )
    assert store.register(morning, member)[0] is Registration.OK
    assert store.register(morning, member)[0] is Registration.ALREADY
    outcome, clash = store.register(overlapping, member)
    assert outcome is Registration.CLASH and clash is not None and clash.id == morning
    assert store.register(afternoon, member)[0] is Registration.OK
    store.cancel(afternoon)
    assert store.register(afternoon, member)[0] is Registration.CLOSED


def test_session_reminders_follow_moves_and_cancellations(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    recorder = Recorder()
    service = service_for(sqlite_engine, clock, recorder)
    store = service.training
    a = make_member(sqlite_engine, "1")
    b = make_member(sqlite_engine, "2")
    session = _session(store, 10, online_url="https://meet.example.vn/htx")
    assert store.register(session, a)[0] is Registration.OK
    assert store.register(session, b)[0] is Registration.OK
    planned = outbox_rows(sqlite_engine, kind="session")
    assert {(r.member_id, r.slot, r.send_at.replace(tzinfo=dt.UTC)) for r in planned} == {
        (a, "1d", vn(2027, 3, 9, 8, 0)),
        (a, "1h", vn(2027, 3, 10, 7, 0)),
        (b, "1d", vn(2027, 3, 9, 8, 0)),
        (b, "1h", vn(2027, 3, 10, 7, 0)),
    }
    assert store.unregister(session, b)
    assert {r.status for r in outbox_rows(sqlite_engine, member_id=b)} == {"dropped"}

    # Staff move it one day later: old reminders dropped, new ones, a change message.
    store.update(session, starts_at=vn(2027, 3, 11, 8, 0), ends_at=vn(2027, 3, 11, 11, 0))
    asyncio.run(service.deliver_due())
    (changed,) = recorder.texts("1")
    assert "có thay đổi" in changed and "08:00 Thứ Năm 11/03/2027" in changed
    assert "https://meet.example.vn/htx" in changed
    pending = outbox_rows(sqlite_engine, member_id=a, kind="session", status="pending")
    assert {r.send_at.replace(tzinfo=dt.UTC) for r in pending} == {
        vn(2027, 3, 10, 8, 0),
        vn(2027, 3, 11, 7, 0),
    }

    clock.now = vn(2027, 3, 10, 8, 0, 5)  # one day before
    asyncio.run(service.deliver_due())
    assert "buổi học bắt đầu ngày mai" in recorder.texts("1")[-1]
    clock.now = vn(2027, 3, 10, 9, 0)
    store.cancel(session)
    asyncio.run(service.deliver_due())
    texts = recorder.texts("1")
    assert len(texts) == 3 and "đã bị huỷ" in texts[-1]
    clock.now = vn(2027, 3, 11, 7, 0, 5)  # the 1h reminder of a cancelled session
    asyncio.run(service.deliver_due())
    assert len(recorder.texts("1")) == 3
    assert recorder.texts("2") == []


def test_session_validation_speaks_vietnamese(sqlite_engine):
    clock = Clock(vn(2027, 3, 1, 9, 0))
    store = TrainingStore(sqlite_engine, Outbox(sqlite_engine, clock), clock)
    with pytest.raises(ValueError, match="giờ kết thúc phải sau giờ bắt đầu"):
        _session(store, 5, ends_at=vn(2027, 3, 10, 7, 0))
    with pytest.raises(ValueError, match="cần địa điểm hoặc đường dẫn"):
        _session(store, 5, place=None)
    with pytest.raises(ValueError, match="đã qua"):
        _session(store, 5, starts_at=vn(2027, 2, 1, 8, 0), ends_at=vn(2027, 2, 1, 9, 0))
    session = _session(store, 2)
    for user in ("1", "2"):
        store.register(session, make_member(sqlite_engine, user))
    with pytest.raises(ValueError, match="số chỗ không thể nhỏ hơn"):
        store.update(session, capacity=1)


def test_a_training_title_with_an_rtl_override_is_stored_as_it_reads():
    draft = SessionDraft.build(
        title="\u202eLớp chuyển đổi số\u200b",
        starts_at=vn(2027, 3, 10, 8, 0),
        ends_at=vn(2027, 3, 10, 11, 0),
        place="Hội\u2066 trường\u2069",
        capacity=5,
    )
    assert (draft.title, draft.place) == ("Lớp chuyển đổi số", "Hội trường")
