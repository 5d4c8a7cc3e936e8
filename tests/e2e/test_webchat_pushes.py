"""Later messages for web-chat pages live in the database until the page fetches them.

The flood reproduces what was seen on main: 10,100 polls with new random
session ids evicted a member whose staff answer was waiting (in-memory, at most
10,000 sessions), so the member's poll returned ``[]``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from pathlib import Path

import httpx

from bot.store.pushes import PUSHES_MAX, PushStore
from tests.conftest import bot_settings
from tests.fakes import FakeTelegram
from tests.running_bot import RunningBot

TOKEN = "880011:pushes-token"
STAFF_CHAT = -1009876543210


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


def test_messages_wait_in_order_are_taken_once_and_are_bounded(db_engine):
    clock = Clock()
    store = PushStore(db_engine, clock=clock)
    session, other = "s" * 20, "o" * 20
    first = store.add(session, {"text": "một"})
    store.add(other, {"text": "khác"})
    store.add(session, {"text": "hai"})
    assert PushStore(db_engine).waiting(session) == 2  # in the database, not in a process
    taken = store.take(session)
    assert [m["text"] for m in taken] == ["một", "hai"]
    assert taken[0]["id"] == f"p{first}"
    assert store.take(session) == []  # fetched once
    assert [m["text"] for m in store.take(other)] == ["khác"]
    for index in range(PUSHES_MAX + 5):
        store.add(session, {"text": str(index)})
    assert [m["text"] for m in store.take(session)] == [str(i) for i in range(5, PUSHES_MAX + 5)]


def test_messages_expire_after_a_day(db_engine):
    clock = Clock()
    store = PushStore(db_engine, clock=clock)
    store.add("s" * 20, {"text": "cũ"})
    clock.now += dt.timedelta(hours=23)
    store.add("s" * 20, {"text": "mới"})
    clock.now += dt.timedelta(hours=2)
    assert store.prune() == 1
    assert [m["text"] for m in store.take("s" * 20)] == ["mới"]


async def _flood(base_url: str, polls: int) -> list[int]:
    statuses: list[int] = []
    limits = httpx.Limits(max_connections=32)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker(count: int) -> None:
            for _ in range(count):
                session = secrets.token_urlsafe(18)
                response = await client.get("/chat/api/inbox", params={"session": session})
                statuses.append(response.status_code)

        await asyncio.gather(*(worker(polls // 32 + 1) for _ in range(32)))
    return statuses


def test_a_staff_answer_survives_a_restart_and_a_session_flood(nlu_url: str, tmp_path: Path):
    database = tmp_path / "bot.store.db"
    session = secrets.token_urlsafe(24)
    with FakeTelegram(tokens=(TOKEN,)) as fake:
        settings = bot_settings(
            nlu_url,
            database,
            telegram_bot_token=TOKEN,
            telegram_base_url=fake.base_url,
            telegram_staff_chat_id=STAFF_CHAT,
            web_poll_seconds=0,  # the flood's polls answer at once
        )
        staff = fake.user(first_name="Cán bộ Hùng")
        bot = RunningBot(settings).start()
        try:
            with httpx.Client(base_url=bot.url, timeout=30) as client:
                asked = client.post(
                    "/chat/api/messages",
                    json={"session": session, "text": "/lienhe cho tôi xin mẫu điều lệ HTX"},
                )
                assert asked.status_code == 200, asked.text
                assert "đã chuyển câu hỏi" in asked.json()["replies"][0]["text"]
            (post,) = fake.wait_for(
                lambda c: c.method == "sendMessage" and c.params.get("chat_id") == STAFF_CHAT
            )
            answer = "Mẫu điều lệ có ở phòng Kinh tế xã, anh chị ghé lấy nhé 🌾"
            fake.send_user_message(
                TOKEN,
                staff,
                answer,
                chat_id=STAFF_CHAT,
                reply_to_message_id=post.result["message_id"],
            )
            fake.wait_for(
                lambda c: c.method == "sendMessage" and "✅" in str(c.params.get("text")),
                timeout=30,
            )
            bot.stop()  # the answer waits in the database, not in this process
            bot = RunningBot(settings).start()
            statuses = asyncio.run(_flood(bot.url, 10_100))
            assert len(statuses) >= 10_100 and set(statuses) == {200}
            with httpx.Client(base_url=bot.url, timeout=30) as client:
                fetched = client.get("/chat/api/inbox", params={"session": session}).json()
                again = client.get("/chat/api/inbox", params={"session": session}).json()
        finally:
            bot.stop()
    (message,) = fetched["replies"]
    assert answer in message["text"] and "Cán bộ Liên minh HTX trả lời" in message["text"]
    assert again["replies"] == []  # fetched once
