"""A broadcast through `coopbot run` and the fake Telegram and Zalo servers, killed with -9.

The broadcast is created with the real command line (`coopbot broadcast send`);
`coopbot run` sends it paced; the test kills it with SIGKILL in the middle and
starts it again, then counts what each fake received per chat.

* Killed between two sends: every member gets the broadcast exactly once.
* Killed while a send is held by the fake: that one message arrives twice
  (its row was ``sending``; broadcasts are resent), every other exactly once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.store.broadcasts import BroadcastStore, Segment
from bot.store.db import OutboxMessage, create_db_engine, upgrade_db
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from tests.conftest import bot_settings
from tests.fakes import FakeTelegram, FakeZalo
from tests.processes import run_env, start_run, wait_until
from tests.running_bot import RunningBot

COOPBOT = Path(sys.executable).parent / "coopbot"
TEXT = "Liên minh HTX tỉnh thông báo lịch tập huấn quý I/2027."


def _statuses(engine: Any) -> Counter[str]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(OutboxMessage.status, func.count())
            .where(OutboxMessage.kind == "broadcast")
            .group_by(OutboxMessage.status)
        ).all()
    return Counter({status: count for status, count in rows})


def _received(fake: Any) -> Counter[str]:
    return Counter(
        str(c.params["chat_id"])
        for c in fake.calls("sendMessage")
        if c.ok and TEXT in str(c.params.get("text"))
    )


@pytest.mark.parametrize("moment", ["between-sends", "send-in-flight"])
def test_kill_minus_nine_mid_broadcast(nlu_url: str, tmp_path: Path, moment: str):
    tg_token, zalo_token = f"99{len(moment)}01:broadcast-tg", f"99{len(moment)}0200:bc-zalo"
    database = tmp_path / "bot.store.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    members = MemberStore(engine)
    with (
        contextlib.ExitStack() as stack,
        FakeTelegram(tokens=(tg_token,)) as telegram,
        FakeZalo(tokens=(zalo_token,)) as zalo,
    ):
        tg_chats, zalo_chats = [], []
        for index in range(12):
            user = str(telegram.user(first_name=f"Lan {index}")["id"])
            members.touch("telegram", user, user, None)
            tg_chats.append(user)
            zalo_user = zalo.user(display_name=f"Hùng {index}")["id"]
            members.touch("zalo", zalo_user, zalo_user, None)
            zalo_chats.append(zalo_user)
        members.set_broadcasts(members.find("telegram", tg_chats[-1]).id, False)  # type: ignore[union-attr]
        env = run_env(
            NLU_URL=nlu_url,
            DATABASE_URL=f"sqlite:///{database}",
            TELEGRAM_BOT_TOKEN=tg_token,
            TELEGRAM_BASE_URL=telegram.base_url,
            ZALO_BOT_TOKEN=zalo_token,
            ZALO_BASE_URL=zalo.base_url,
            WEB_PORT="0",
            OUTBOX_POLL_SECONDS="0.2",
            OUTBOX_CONCURRENCY="1",
            TELEGRAM_RATE="4",
            ZALO_RATE="4",
        )
        text_file = tmp_path / "thongbao.txt"
        text_file.write_text(TEXT, encoding="utf-8")
        created = subprocess.run(
            [str(COOPBOT), "broadcast", "send", "--text-file", str(text_file)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert created.returncode == 0, created.stderr
        assert "tới 23 thành viên" in created.stdout  # one Telegram member opted out

        log = stack.enter_context((tmp_path / "run.log").open("a"))  # kept for failures

        def start() -> subprocess.Popen[str]:
            return start_run(tmp_path, env, log)

        process = start()
        try:
            if moment == "send-in-flight":
                telegram.slow("sendMessage", 0.5, times=3)
                telegram.wait_for_request("sendMessage", count=3, timeout=90)
                time.sleep(0.1)  # the third request is now held by the fake
            else:
                wait_until(lambda: sum(_received(telegram).values()) >= 3, 90, "3 messages")
                time.sleep(0.05)  # the worker waits ~250 ms between Telegram sends
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
        in_flight = _statuses(engine)["sending"]
        if moment == "send-in-flight":
            assert in_flight == 1
            telegram.wait_for(lambda c: c.method == "sendMessage", count=3, timeout=10)
        sent_before = sum(_received(telegram).values()) + sum(_received(zalo).values())
        assert 3 <= sent_before < 23

        process = start()
        try:
            wait_until(
                lambda: _statuses(engine)["sent"] == 23 and not _statuses(engine)["sending"],
                90,
                "the rest of the broadcast",
                lambda: str(_statuses(engine)),
            )
        finally:
            process.terminate()
            process.wait(30)
    received = _received(telegram) + _received(zalo)
    expected = Counter({chat: 1 for chat in (*tg_chats[:-1], *zalo_chats)})
    duplicates = received - expected
    assert set(received) == set(expected), "no member lost the broadcast"
    # Only a message in flight at the kill can arrive twice (the held one does).
    assert sum(duplicates.values()) <= in_flight
    if moment == "send-in-flight":
        assert sum(duplicates.values()) == 1
    assert tg_chats[-1] not in received
    engine.dispose()


def test_429_is_honoured_and_a_blocked_member_is_never_retried(nlu_url: str, tmp_path: Path):
    token = "990777:broadcast-429"
    database = tmp_path / "bot.store.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    members = MemberStore(engine)
    with FakeTelegram(tokens=(token,)) as telegram:
        chats = []
        for index in range(6):
            user = str(telegram.user(first_name=f"Mai {index}")["id"])
            members.touch("telegram", user, user, None)
            chats.append(user)
        BroadcastStore(engine, Outbox(engine)).create(TEXT, Segment(), "test")
        telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
        telegram.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        settings = bot_settings(
            nlu_url,
            database,
            telegram_bot_token=token,
            telegram_base_url=telegram.base_url,
            outbox_poll_seconds=0.2,
            outbox_concurrency=1,
        )
        with RunningBot(settings):
            wait_until(
                lambda: _statuses(engine)["sent"] == 5, 30, "5 sent", lambda: str(_statuses(engine))
            )
        calls = telegram.calls("sendMessage", token)
    assert [c.status for c in calls[:2]] == [429, 403]
    limited, blocked = str(calls[0].params["chat_id"]), str(calls[1].params["chat_id"])
    retried = [c for c in calls if str(c.params["chat_id"]) == limited]
    assert [c.status for c in retried] == [429, 200]
    assert retried[1].at - retried[0].at >= 1.0  # waited retry_after
    assert [c.status for c in calls if str(c.params["chat_id"]) == blocked] == [403]
    assert _received(telegram) == Counter({chat: 1 for chat in chats if chat != blocked})
    assert _statuses(engine) == Counter({"sent": 5, "blocked": 1})
    assert members.find("telegram", blocked).active is False  # type: ignore[union-attr]
    engine.dispose()
