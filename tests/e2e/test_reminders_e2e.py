"""Reminders end to end: the real assistant, the fake Telegram and Zalo servers, restarts.

* A graceful restart in the middle of a morning's deadline reminders (clock moved
  with time-machine): every member on both channels gets exactly one.
* ``kill -9`` of ``coopbot run`` in the middle of training-session reminders (real
  clock): after the restart nothing is repeated and nothing is lost; the one
  message in flight at the kill (already at the fake) is marked ``unknown``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import time_machine
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bot.settings import PROJECT_ROOT
from bot.store.db import OutboxMessage, create_db_engine, upgrade_db
from bot.store.members import MemberStore
from bot.store.outbox import Outbox
from bot.store.subscriptions import SubscriptionStore
from bot.store.training import TrainingStore
from bot.store.training_sessions import SessionDraft
from scheduler.deadlines import load_rules
from scheduler.planner import DeadlinePlanner
from tests.conftest import bot_settings
from tests.fakes import FakeTelegram, FakeZalo
from tests.processes import wait_until
from tests.running_bot import RunningBot

VN = ZoneInfo("Asia/Ho_Chi_Minh")
TG_TOKEN = "880001:reminders-telegram"
ZALO_TOKEN = "8800020000:reminders-zalo"
KILL_TOKEN = "880003:reminders-kill"


def _statuses(engine: Engine, **where: Any) -> Counter[str]:
    query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    for name, value in where.items():
        query = query.where(getattr(OutboxMessage, name) == value)
    with engine.connect() as connection:
        return Counter(dict(connection.execute(query).all()))  # type: ignore[arg-type]


def _sent(fake: Any) -> list[Any]:
    return [c for c in fake.calls("sendMessage") if c.ok]


def test_deadline_reminders_reach_both_channels_exactly_once_across_a_restart(
    nlu_url: str, tmp_path: Path
):
    database = tmp_path / "bot.store.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    # Reminders were planned up to the start of 13/01; the 08:00 slot is next.
    DeadlinePlanner(engine, Outbox(engine), load_rules()).mark_planned_until(
        dt.datetime(2027, 1, 13, tzinfo=VN)
    )
    members, subscriptions = MemberStore(engine), SubscriptionStore(engine)
    chats: dict[str, set[str]] = {"telegram": set(), "zalo": set()}
    # time-machine also moves time.monotonic: every event loop of the test (fakes
    # and bot) lives inside the travel, so none sees the clock jump back.
    with (
        time_machine.travel(dt.datetime(2027, 1, 13, 7, 59, 57, tzinfo=VN), tick=True),
        FakeTelegram(tokens=(TG_TOKEN,)) as telegram,
        FakeZalo(tokens=(ZALO_TOKEN,)) as zalo,
    ):
        for index in range(12):
            tg_user = str(telegram.user(first_name=f"Lan {index}")["id"])
            zalo_user = zalo.user(display_name=f"Hùng {index}")["id"]
            for channel, user in (("telegram", tg_user), ("zalo", zalo_user)):
                member = members.touch(channel, user, user, None)
                members.update_profile(member.id, vat_period="monthly")
                subscriptions.replace(member.id, ("gtgt_thang",))
                chats[channel].add(user)
        settings = bot_settings(
            nlu_url,
            database,
            telegram_bot_token=TG_TOKEN,
            telegram_base_url=telegram.base_url,
            zalo_bot_token=ZALO_TOKEN,
            zalo_base_url=zalo.base_url,
            outbox_poll_seconds=0.2,
            outbox_concurrency=1,
            telegram_rate=1000,
            zalo_rate=1000,
        )
        telegram.slow("sendMessage", 0.1, times=100)
        zalo.slow("sendMessage", 0.1, times=100)
        with RunningBot(settings):
            telegram.wait_for_request("sendMessage", count=5, timeout=60)
        # Stopped in the middle: the reply in flight finished, the rest wait.
        first_run = len(_sent(telegram)) + len(_sent(zalo))
        assert 5 <= first_run < 24
        assert _statuses(engine) == Counter({"sent": first_run, "pending": 24 - first_run})
        with RunningBot(settings):
            wait_until(lambda: _statuses(engine)["sent"] == 24, 60, "all 24 reminders sent")
        for channel, fake in (("telegram", telegram), ("zalo", zalo)):
            sent = _sent(fake)
            assert Counter(str(c.params["chat_id"]) for c in sent) == Counter(
                {chat: 1 for chat in chats[channel]}
            ), channel
            for call in sent:
                text = str(call.params["text"])
                assert "Nhắc hạn: Nộp tờ khai thuế GTGT tháng" in text
                assert "20/01/2027 (còn 7 ngày)" in text
    assert _statuses(engine) == Counter({"sent": 24})
    engine.dispose()


def test_kill_minus_nine_mid_delivery_neither_repeats_nor_loses_a_reminder(
    nlu_url: str, tmp_path: Path
):
    database = tmp_path / "bot.store.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    members = MemberStore(engine)
    with FakeTelegram(tokens=(KILL_TOKEN,)) as telegram:
        # A session starting in one day and eight seconds: its "1 day before"
        # reminders fall due eight seconds from now, on the real clock.
        start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1, seconds=8)
        store = TrainingStore(engine, Outbox(engine))
        session = store.create(
            SessionDraft.build(
                title="Kê khai thuế điện tử cho HTX",
                starts_at=start,
                ends_at=start + dt.timedelta(hours=2),
                place="Hội trường Liên minh HTX tỉnh",
                capacity=50,
            )
        )
        chats = []
        for index in range(15):
            user = str(telegram.user(first_name=f"Mai {index}")["id"])
            member = members.touch("telegram", user, user, None)
            store.register(session.id, member.id)
            chats.append(user)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEB_"))},
            "NLU_URL": nlu_url,
            "DATABASE_URL": f"sqlite:///{database}",
            "TELEGRAM_BOT_TOKEN": KILL_TOKEN,
            "TELEGRAM_BASE_URL": telegram.base_url,
            "WEB_PORT": "0",
            "OUTBOX_POLL_SECONDS": "0.2",
            "OUTBOX_CONCURRENCY": "1",
            "TELEGRAM_RATE": "1000",
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        telegram.slow("sendMessage", 0.3, times=100)

        def start_bot() -> subprocess.Popen[str]:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            return process

        process = start_bot()
        try:
            telegram.wait_for_request("sendMessage", count=5, timeout=90)
            process.kill()  # SIGKILL while the fifth reminder is held by the fake
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
        # The fake still answers the request in flight (the client is gone).
        telegram.wait_for(lambda c: c.method == "sendMessage", count=5, timeout=10)
        assert _statuses(engine, kind="session") == Counter(
            {"sent": 4, "sending": 1, "pending": 10 + 15}  # + the 1-hour reminders
        )

        process = start_bot()
        try:
            wait_until(
                lambda: _statuses(engine, kind="session", slot="1d")["pending"] == 0,
                90,
                "the remaining reminders",
            )
            wait_until(lambda: len(_sent(telegram)) >= 15, 30, "15 messages at the fake")
        finally:
            process.terminate()
            process.wait(30)
    sent = _sent(telegram)
    assert Counter(str(c.params["chat_id"]) for c in sent) == Counter({c: 1 for c in chats})
    assert all("Nhắc lịch tập huấn" in str(c.params["text"]) for c in sent)
    assert _statuses(engine, kind="session", slot="1d") == Counter({"sent": 14, "unknown": 1})
    engine.dispose()


ZALO_SOLO = "8800040000:reminders-zalo-seat"


def test_a_zalo_member_takes_a_seat_by_number_and_is_reminded(nlu_url: str, tmp_path: Path):
    database = tmp_path / "bot.store.db"
    engine = create_db_engine(f"sqlite:///{database}")
    upgrade_db(engine)
    with FakeZalo(tokens=(ZALO_SOLO,)) as zalo:
        settings = bot_settings(
            nlu_url,
            database,
            zalo_bot_token=ZALO_SOLO,
            zalo_base_url=zalo.base_url,
            outbox_poll_seconds=0.2,
        )
        user = zalo.user(display_name="Chị Hoa")
        chat = user["id"]

        def say(text: str, count: int) -> str:
            zalo.send_user_message(ZALO_SOLO, user, text)
            zalo.wait_for_message(chat, timeout=20, count=count)
            return str(zalo.sent_messages(chat)[-1]["text"])

        with RunningBot(settings):
            # Created once the bot is up, so a slow start cannot eat the margin: the
            # "1 day before" reminder falls due 20 s from now, on the real clock. A
            # member who registers after that moment gets no "1 day before" reminder.
            start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1, seconds=20)
            TrainingStore(engine, Outbox(engine)).create(
                SessionDraft.build(
                    title="Hoá đơn điện tử cho HTX",
                    starts_at=start,
                    ends_at=start + dt.timedelta(hours=2),
                    online_url="https://meet.example.vn/hoa-don",
                    capacity=20,
                )
            )
            listing = say("/taphuan", 1)
            assert "1. Hoá đơn điện tử cho HTX" in listing and "Còn 20/20 chỗ" in listing
            assert "1. ➕ Đăng ký 1: Hoá đơn điện tử cho HTX" in listing
            assert "Gõ số 1 để chọn." in listing
            taken = say("1", 2)
            assert taken.startswith("✅ Bạn đã đăng ký thành công")
            zalo.wait_for_message(chat, timeout=60, count=3)
            reminder = str(zalo.sent_messages(chat)[-1]["text"])
        assert "Nhắc lịch tập huấn: buổi học bắt đầu ngày mai" in reminder
        assert "https://meet.example.vn/hoa-don" in reminder
        assert "1. ❌ Huỷ đăng ký" in reminder  # the reminder's button, as a number
    assert _statuses(engine, kind="session") == Counter({"sent": 1, "pending": 1})
    engine.dispose()
