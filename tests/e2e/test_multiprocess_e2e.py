"""Two `coopbot run`, two bots, one PostgreSQL database; the scheduler leader is killed with -9.

The outbox holds a broadcast to every member and, falling due a few seconds
later on the real clock, each member's "one day before" reminder of a
training session they registered for.

Reproduced on main before: instance A (bot 333333) broadcast to its members,
instance B (bot 444444) started on the same database and sent most of A's
messages through bot B, and reset A's reservations. Now each process sends
only its own bot's members' rows, reservations are leases, and when the
leader dies the other process leads within 10 s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from bot.store.broadcasts import BroadcastStore, Segment
from bot.store.db import SchedulerState, upgrade_db
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from bot.store.training import TrainingStore
from bot.store.training_sessions import SessionDraft
from scheduler.leader import LEADER_STATE
from tests.conftest import _drop_everything, postgres_engine
from tests.fakes import FakeTelegram
from tests.processes import run_env, start_run, wait_until

BOT_A, BOT_B = "333333:bot-a-token", "444444:bot-b-token"
TEXT = "Liên minh HTX tỉnh thông báo: hạn nộp báo cáo tài chính năm 2026."
MEMBERS = 40
SESSION_TITLE = "Kê khai thuế điện tử cho HTX"


def _statuses(engine: Engine) -> Counter[str]:
    return Counter(Outbox(engine).counts(kind="broadcast"))


def _leader(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return connection.scalar(
            select(SchedulerState.value).where(SchedulerState.name == LEADER_STATE)
        )


def _received(fake: FakeTelegram, text: str = TEXT) -> Counter[tuple[str, str]]:
    """(bot token, chat) of every message containing ``text`` the fake delivered."""
    return Counter(
        (c.token, str(c.params["chat_id"]))
        for c in fake.calls("sendMessage")
        if c.ok and text in str(c.params.get("text"))
    )


def _reminders(engine: Engine) -> Counter[str]:
    return Counter(Outbox(engine).counts(kind="session", slot="1d"))


def test_two_processes_two_bots_each_member_reached_once_by_their_own_bot(
    nlu_url: str, tmp_path: Path
):
    engine = postgres_engine()
    _drop_everything(engine)
    upgrade_db(engine)
    members = MemberStore(engine)
    with contextlib.ExitStack() as stack, FakeTelegram(tokens=(BOT_A, BOT_B)) as fake:
        # A session starting in a day and 20 s: its "1 day before" reminders fall due
        # 20 s from now, while the broadcast is still going out.
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1, seconds=20)
        training = TrainingStore(engine, Outbox(engine))
        session = training.create(
            SessionDraft.build(
                title=SESSION_TITLE,
                starts_at=start,
                ends_at=start + dt.timedelta(hours=2),
                place="Hội trường Liên minh HTX tỉnh",
                capacity=500,
            )
        )
        chats: dict[str, list[str]] = {BOT_A: [], BOT_B: []}
        for token in (BOT_A, BOT_B):
            for index in range(MEMBERS):
                user = str(fake.user(first_name=f"Thành viên {index}")["id"])
                member = members.touch("telegram", user, user, None, bot_id=token.split(":")[0])
                training.register(session.id, member.id)
                chats[token].append(user)
        BroadcastStore(engine, Outbox(engine)).create(TEXT, Segment(), "test")
        url = engine.url.render_as_string(hide_password=False)

        def start(token: str) -> subprocess.Popen[str]:
            env = run_env(
                NLU_URL=nlu_url,
                DATABASE_URL=url,
                TELEGRAM_BOT_TOKEN=token,
                TELEGRAM_BASE_URL=fake.base_url,
                WEB_PORT="0",
                OUTBOX_POLL_SECONDS="0.2",
                OUTBOX_CONCURRENCY="1",
                OUTBOX_LEASE_SECONDS="3",
                SCHEDULER_LEADER_RETRY_SECONDS="0.5",
                TELEGRAM_RATE="2",
            )
            log = stack.enter_context((tmp_path / f"run-{token[:6]}.log").open("a"))
            return start_run(tmp_path, env, log)

        def state() -> str:
            return (
                f"broadcast {dict(_statuses(engine))}, reminders {dict(_reminders(engine))}, "
                f"leader {_leader(engine)}; see {tmp_path}"
            )

        # Both start together (so neither has finished before the other sends); the one
        # that wins the scheduler lock is killed in the middle of its broadcast.
        running = {BOT_A: start(BOT_A), BOT_B: start(BOT_B)}
        processes: list[subprocess.Popen[Any]] = list(running.values())
        try:
            wait_until(lambda: _leader(engine) is not None, 90, "a scheduler leader", state)
            doomed = next(t for t, p in running.items() if f":{p.pid}:" in str(_leader(engine)))
            other = BOT_B if doomed == BOT_A else BOT_A
            first, second = running[doomed], running[other]

            def sent_by(token: str) -> int:
                return sum(1 for t, _ in _received(fake) if t == token)

            wait_until(lambda: sent_by(other) >= 2, 90, "the follower's first sends", state)
            wait_until(lambda: sent_by(doomed) >= 3, 90, "the leader's first sends", state)
            os.kill(first.pid, signal.SIGKILL)  # the leader, in the middle of its broadcast
            first.wait(30)
            killed = time.monotonic()
            wait_until(lambda: f":{second.pid}:" in str(_leader(engine)), 10, "a new leader", state)
            moved = time.monotonic() - killed
            sent_before = sent_by(doomed)
            assert sent_before < MEMBERS, "the leader was killed before it reached everyone"
            time.sleep(4)  # the dead one's leases lapse; the other must still leave its members
            assert all(t == other for t, chat in _received(fake) if chat in chats[other])
            assert sent_by(doomed) <= sent_before + 1  # only the reply held at the kill
            restarted = start(doomed)
            processes.append(restarted)
            wait_until(
                lambda: (
                    _statuses(engine)["sent"] == 2 * MEMBERS
                    and not _statuses(engine)["sending"]
                    and _reminders(engine)["pending"] == 0
                    and not _reminders(engine)["sending"]
                ),
                120,
                "the whole broadcast and the reminders",
                state,
            )
            assert f":{second.pid}:" in str(_leader(engine))  # the leader stays put
        finally:
            for process in processes:
                if process.poll() is None:
                    process.terminate()
            for process in processes:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(30)
                if process.poll() is None:
                    process.kill()
    received = _received(fake)
    expected = Counter({(token, chat): 1 for token, owned in chats.items() for chat in owned})
    assert set(received) == set(expected), "every member, through their own bot"
    assert sum((received - expected).values()) <= 1  # only A's send in flight may repeat
    # Reminders: at most once each (one in flight at the kill may be "unknown"), never
    # through the other bot.
    reminded = _received(fake, SESSION_TITLE)
    assert set(reminded) <= set(expected) and max(reminded.values()) == 1
    statuses = _reminders(engine)
    assert statuses["sent"] == len(reminded) >= 2 * MEMBERS - 1
    assert statuses["sent"] + statuses["unknown"] == 2 * MEMBERS and statuses["unknown"] <= 1
    assert moved < 10
    print(f"scheduler leader moved {moved:.1f} s after the kill")
    _drop_everything(engine)
    engine.dispose()
