"""Several processes and bots on one database: own rows only, leases, one scheduler leader."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.store.broadcasts import BroadcastStore, Segment
from bot.store.db import Member, OutboxMessage, SchedulerState, upgrade_db
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from scheduler.leader import LEADER_STATE, Leadership
from tests.conftest import _drop_everything, postgres_engine


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2027, 1, 5, 2, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _broadcast_to(engine: Engine, clock: Clock) -> Outbox:
    members = MemberStore(engine)
    members.touch("telegram", "a1", "a1", None, bot_id="333333")
    members.touch("telegram", "a2", "a2", None, bot_id="333333")
    members.touch("telegram", "b1", "b1", None, bot_id="444444")
    members.touch("telegram", "old", "old", None)  # talked before bots were recorded
    members.touch("web", "w" * 20, "w" * 20, None, bot_id="web")
    members.touch("zalo", "z1", "z1", None, bot_id="777")
    outbox = Outbox(engine, clock)
    BroadcastStore(engine, outbox, clock).create("Thông báo", Segment(), "test")
    return outbox


def test_a_process_takes_only_its_own_bots_members(db_engine):
    outbox = _broadcast_to(db_engine, Clock())
    mine = outbox.reserve("a", accounts={"web": None, "telegram": "333333"})
    assert sorted(i.chat_id for i in mine) == ["a1", "a2", "old", "w" * 20]
    theirs = outbox.reserve("b", accounts={"web": None, "telegram": "444444"})
    assert [i.chat_id for i in theirs] == ["b1"]  # the web rows are already a's
    assert outbox.reserve("c", accounts={"telegram": "555555"}) == []


def test_a_bot_switch_follows_the_member(db_engine):
    MemberStore(db_engine).touch("telegram", "a1", "a1", None, bot_id="333333")
    MemberStore(db_engine).touch("telegram", "a1", "a1", None, bot_id="444444")
    with db_engine.connect() as connection:
        assert connection.scalar(select(Member.bot_id)) == "444444"


def test_leases_hold_while_renewed_and_lapse_when_the_worker_dies(db_engine):
    clock = Clock()
    outbox = _broadcast_to(db_engine, clock)
    first = outbox.reserve("w1")
    assert len(first) == 6 and outbox.reserve("w2") == []
    assert outbox.claim(first[0].id, "w1")  # one is being sent
    clock.now += outbox.lease - dt.timedelta(seconds=5)
    assert outbox.renew("w1") == 6
    clock.now += dt.timedelta(seconds=30)
    assert outbox.recover_in_flight(("broadcast",)) == 0  # w1 lives: nothing touched
    assert outbox.reserve("w2") == []
    clock.now += outbox.lease  # w1 stopped renewing: it died
    outbox.recover_in_flight(("broadcast",))
    taken = outbox.reserve("w2")
    assert sorted(i.id for i in taken) == sorted(i.id for i in first)  # the one in flight too
    assert not outbox.claim(first[1].id, "w1") and outbox.claim(first[1].id, "w2")
    with db_engine.connect() as connection:
        leases = connection.execute(
            select(OutboxMessage.reserved_by, OutboxMessage.lease_until)
        ).all()
    assert {owner for owner, _ in leases} == {"w2"}


def test_a_starting_sole_process_takes_everything_back(sqlite_engine):
    clock = Clock()
    outbox = _broadcast_to(sqlite_engine, clock)
    (item, *_rest) = outbox.reserve("dead")
    assert outbox.claim(item.id, "dead")
    outbox.recover_in_flight(("broadcast",), everything=True)
    assert len(outbox.reserve("new")) == 6


@pytest.fixture
def pg_engines() -> Iterator[list[Engine]]:
    """Two processes' engines on the migrated PostgreSQL test database."""
    engines = [postgres_engine(), postgres_engine()]
    _drop_everything(engines[0])
    upgrade_db(engines[0])
    try:
        yield engines
    finally:
        _drop_everything(engines[0])
        for engine in engines:
            engine.dispose()


def test_one_scheduler_leader_at_a_time_and_a_follower_takes_over(pg_engines):
    events: list[str] = []

    def leadership(engine: Engine, name: str) -> Leadership:
        async def gain() -> None:
            events.append(f"{name} leads")

        async def lose() -> None:
            events.append(f"{name} follows")

        return Leadership(engine, name, gain, lose, retry=0.1)

    async def scenario() -> None:
        first = leadership(pg_engines[0], "first")
        second = leadership(pg_engines[1], "second")
        await first.start()
        await second.start()
        await asyncio.sleep(0.5)
        assert (first.leader, second.leader) == (True, False)
        assert first._connection is not None
        first._connection.invalidate()  # the leader's session ends, as when it is killed
        deadline = asyncio.get_running_loop().time() + 10
        while not second.leader:
            assert asyncio.get_running_loop().time() < deadline, events
            await asyncio.sleep(0.05)
        await first.stop()
        await second.stop()

    asyncio.run(scenario())
    assert events[:2] == ["first leads", "second leads"] or events[:3] == [
        "first leads",
        "first follows",
        "second leads",
    ]
    assert "second follows" in events
    with pg_engines[0].connect() as connection:
        recorded = connection.scalar(
            select(SchedulerState.value).where(SchedulerState.name == LEADER_STATE)
        )
    assert recorded == "second"


def test_sqlite_is_always_its_own_leader(sqlite_engine):
    events: list[str] = []

    async def gain() -> None:
        events.append("lead")

    async def lose() -> None:
        events.append("follow")

    async def scenario() -> None:
        leadership = Leadership(sqlite_engine, "only", gain, lose)
        await leadership.start()
        assert leadership.leader
        await leadership.stop()

    asyncio.run(scenario())
    assert events == ["lead", "follow"]
    with sqlite_engine.connect() as connection:
        recorded = connection.scalar(
            select(SchedulerState.value).where(SchedulerState.name == LEADER_STATE)
        )
    assert recorded == "only"
