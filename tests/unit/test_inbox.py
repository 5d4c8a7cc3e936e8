"""The durable inbox on SQLite and PostgreSQL: accepted once, leased, taken over, retried."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.store.db import InboxEvent
from bot.store.inbox import MAX_ATTEMPTS, Inbox, InboxRow, InboxWorker, prune_inbox


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def _rows(engine: Engine) -> list[tuple[str, str, str, str | None, int]]:
    with engine.connect() as connection:
        return [
            (r.bot_id, r.event_key, r.status, r.payload, r.attempts)
            for r in connection.execute(select(InboxEvent).order_by(InboxEvent.id))
        ]


def test_an_update_is_accepted_once_per_bot_also_by_a_new_store(db_engine):
    inbox = Inbox(db_engine, "telegram", "111", "w1")
    first = inbox.accept("5001", '{"update_id": 5001}')
    assert first is not None
    assert inbox.accept("5001", '{"update_id": 5001}') is None
    assert Inbox(db_engine, "telegram", "111", "w2").accept("5001", "{}") is None  # restart
    assert Inbox(db_engine, "telegram", "222", "w1").accept("5001", "{}") is not None  # other bot
    assert Inbox(db_engine, "zalo", "111", "w1").accept("5001", "{}") is not None  # other channel
    assert [r[:3] for r in _rows(db_engine)] == [
        ("111", "5001", "pending"),
        ("222", "5001", "pending"),
        ("111", "5001", "pending"),
    ]


def test_a_lease_is_taken_over_only_once_it_has_lapsed(db_engine):
    clock = Clock()
    lease = dt.timedelta(seconds=30)
    dead = Inbox(db_engine, "telegram", "111", "dead", lease=lease, clock=clock)
    row_id = dead.accept("7", '{"update_id": 7}')
    heir = Inbox(db_engine, "telegram", "111", "heir", lease=lease, clock=clock)
    other_bot = Inbox(db_engine, "telegram", "999", "other", lease=lease, clock=clock)
    assert heir.take_expired() == []  # the owner may still be working on it
    clock.now += dt.timedelta(seconds=31)
    assert other_bot.take_expired() == []  # never another bot's updates
    assert heir.take_expired() == [InboxRow(row_id, "7", '{"update_id": 7}')]  # type: ignore[arg-type]
    assert heir.take_expired() == []  # leased again, to the heir
    clock.now += dt.timedelta(seconds=20)
    heir.renew([row_id])  # type: ignore[list-item]
    clock.now += dt.timedelta(seconds=20)
    assert dead.take_expired() == []  # renewed: 50 s after the take-over it is still the heir's
    heir.finish(row_id)  # type: ignore[arg-type]
    clock.now += dt.timedelta(hours=1)
    assert dead.take_expired() == []
    assert _rows(db_engine) == [("111", "7", "done", None, 0)]


def test_a_failing_update_is_retried_then_set_aside(db_engine):
    clock = Clock()
    inbox = Inbox(db_engine, "zalo", "3", "w", clock=clock)
    row_id = inbox.accept("message.text.received:c:m", '{"x": 1}')
    assert row_id is not None
    for attempt in range(1, MAX_ATTEMPTS):
        assert inbox.retry_later(row_id, "boom", dt.timedelta(seconds=5)) is True
        assert inbox.take_expired() == []
        clock.now += dt.timedelta(seconds=6)
        assert [r.id for r in inbox.take_expired()] == [row_id]
        assert _rows(db_engine)[0][4] == attempt
    assert inbox.retry_later(row_id, "boom", dt.timedelta(seconds=5)) is False
    assert _rows(db_engine) == [("3", "message.text.received:c:m", "failed", None, MAX_ATTEMPTS)]


def test_depth_and_pruning(db_engine):
    clock = Clock()
    inbox = Inbox(db_engine, "telegram", "1", "w", clock=clock)
    assert inbox.depth().pending == 0
    done, waiting = inbox.accept("1", "{}"), inbox.accept("2", "{}")
    inbox.finish(done)  # type: ignore[arg-type]
    clock.now += dt.timedelta(seconds=90)
    depth = inbox.depth()
    assert depth.pending == 1 and 89 <= depth.oldest_age_s <= 91
    assert prune_inbox(db_engine, clock.now + dt.timedelta(days=8)) == 1  # the pending one stays
    assert [r[1] for r in _rows(db_engine)] == ["2"]
    assert waiting is not None


def test_the_worker_handles_new_rows_and_resumes_a_dead_workers_rows(sqlite_engine):
    handled: list[str] = []
    failures = {"boom": 1}

    async def handler(row: InboxRow) -> None:
        if failures.get(row.event_key, 0) > 0:
            failures[row.event_key] -= 1
            raise RuntimeError("handler crashed")
        handled.append(row.event_key)

    async def scenario() -> None:
        lease = dt.timedelta(seconds=0.3)
        dead = Inbox(sqlite_engine, "telegram", "1", "dead", lease=lease)
        dead.accept("orphan", "{}")  # accepted, then the process died
        worker = InboxWorker(
            Inbox(sqlite_engine, "telegram", "1", "alive", lease=lease), handler, sweep_every=0.1
        )
        await worker.start()
        try:
            assert await worker.submit("new", "{}") is True
            assert await worker.submit("new", "{}") is False  # redelivered
            assert await worker.submit("boom", "{}") is True
            deadline = asyncio.get_running_loop().time() + 10
            while len(handled) < 3:
                assert asyncio.get_running_loop().time() < deadline, handled
                await asyncio.sleep(0.05)
        finally:
            await worker.stop()

    asyncio.run(scenario())
    assert sorted(handled) == ["boom", "new", "orphan"]
    assert {r[1]: (r[2], r[4]) for r in _rows(sqlite_engine)} == {
        "orphan": ("done", 0),
        "new": ("done", 0),
        "boom": ("done", 1),
    }
