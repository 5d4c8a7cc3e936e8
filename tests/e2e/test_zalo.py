"""Zalo end to end: the real assistant and its httpx client against a fake Zalo Bot API.

The bot runs as in production (``bot.app.serve``: real NLU service, real SQLite
database, real HTTP). One module-scoped bot polls the fake Zalo server and also
runs Telegram against the fake Telegram server, for hand-overs to the staff
chat; another runs the Zalo webhook.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.zalo.channel import ChoiceMemory, ZaloSender
from bot.channels.zalo.client import (
    ZaloBadRequest,
    ZaloBadToken,
    ZaloClient,
    ZaloForbidden,
    ZaloRateLimited,
    ZaloServerError,
    ZaloTimeout,
)
from bot.nlu_model.service import free_port
from bot.replies import Button, Reply
from bot.sending import RecipientBlocked
from bot.store.db import Member, MessageLog, create_db_engine
from tests.conftest import bot_settings
from tests.fakes import FakeTelegram, FakeZalo
from tests.running_bot import RunningBot

ZALO_TOKEN = "1234567890:zalo-secret-ABC"
HOOK_TOKEN = "2234567890:zalo-webhook-XYZ"
# Bots started inside one test poll with their own token: two bots polling one token
# would take each other's updates.
SOLO_TOKEN = "3234567890:zalo-solo-QRS"
TG_TOKEN = "5550001:telegram-for-zalo-tests"
STAFF_CHAT = -1009876543210


@pytest.fixture(scope="module")
def zalo() -> Iterator[FakeZalo]:
    """The fake Zalo server (polling and webhook bots use different tokens)."""
    with FakeZalo(tokens=(ZALO_TOKEN, HOOK_TOKEN, SOLO_TOKEN)) as server:
        yield server


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    """The fake Telegram server, for the staff chat."""
    with FakeTelegram(tokens=(TG_TOKEN,)) as server:
        yield server


def _settings(zalo: FakeZalo, telegram: FakeTelegram, nlu_url: str, database: Path) -> Any:
    return bot_settings(
        nlu_url,
        database,
        zalo_bot_token=ZALO_TOKEN,
        zalo_base_url=zalo.base_url,
        telegram_bot_token=TG_TOKEN,
        telegram_base_url=telegram.base_url,
        telegram_staff_chat_id=STAFF_CHAT,
    )


def _solo_settings(zalo: FakeZalo, nlu_url: str, database: Path) -> Any:
    """A Zalo-only bot on its own token, started and stopped inside one test."""
    return bot_settings(nlu_url, database, zalo_bot_token=SOLO_TOKEN, zalo_base_url=zalo.base_url)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The polling bot's SQLite file (kept for the restart test)."""
    return tmp_path_factory.mktemp("zalo-polling") / "bot.store.db"


@pytest.fixture(scope="module")
def polling(zalo, telegram, nlu_url, database):
    """A running assistant polling Zalo (and Telegram for the staff chat); yields its engine."""
    with RunningBot(_settings(zalo, telegram, nlu_url, database)):
        engine = create_db_engine(f"sqlite:///{database}")
        try:
            yield engine
        finally:
            engine.dispose()


class ZaloMember:
    """One simulated Zalo member."""

    def __init__(self, fake: FakeZalo, token: str = ZALO_TOKEN, **user: Any) -> None:
        self.fake = fake
        self.token = token
        self.user = fake.user(**user)
        self.chat_id = self.user["id"]

    def sent(self) -> list[str]:
        return [m["text"] for m in self.fake.sent_messages(self.chat_id)]

    def expect(self, action: Any, n: int = 1) -> list[str]:
        """Runs ``action``; returns the next ``n`` texts the bot sent to this member."""
        before = len(self.sent())
        action()
        self.fake.wait_for_message(self.chat_id, timeout=20, count=before + n)
        return self.sent()[before : before + n]

    def say(self, text: str, n: int = 1) -> list[str]:
        """Sends ``text``; returns the bot's next ``n`` messages."""
        return self.expect(lambda: self.fake.send_user_message(self.token, self.user, text), n)


def _option(text: str, label_start: str) -> str:
    """The number of the option whose label starts with ``label_start``."""
    for line in text.splitlines():
        number, dot, label = line.partition(". ")
        if dot and number.isdigit() and label.startswith(label_start):
            return number
    raise AssertionError(f"no option {label_start!r} in:\n{text}")


# -- polling ----------------------------------------------------------------------------------


def test_question_gets_a_cited_answer_and_a_number_gives_feedback(zalo, polling):
    member = ZaloMember(zalo, display_name="Lan <&> 🌾")
    (answer,) = member.say("Hợp tác xã cần tối thiểu bao nhiêu thành viên?")
    assert "Căn cứ:" in answer and "Cập nhật:" in answer and "Gõ số (1-" in answer
    (thanks,) = member.say(_option(answer, "👎 Chưa đúng"))
    assert thanks.startswith("Cảm ơn bạn!")
    with Session(polling) as session:
        row = session.scalars(
            select(MessageLog).join(Member).where(Member.external_id == member.chat_id)
        ).one()
        assert row.feedback == "down" and row.channel == "zalo"
        assert (
            session.scalars(select(Member.display_name).where(Member.id == row.member_id)).one()
            == "Lan <&> 🌾"
        )


def test_the_law_verbatim_by_number(zalo, polling):
    member = ZaloMember(zalo)
    (answer,) = member.say("Hợp tác xã cần tối thiểu bao nhiêu thành viên?")
    (quoted,) = member.say(_option(answer, "📜 Nguyên văn"))
    assert quoted.startswith("📜 Trích nguyên văn căn cứ pháp lý của «")
    assert "7.Hợp tác xã là tổ chức có tư cách pháp nhân do ít nhất 05 thành viên chính thức" in (
        quoted
    )
    assert len(quoted) <= 2000
    (article,) = member.say("/dieu 33")
    assert "Điều 33. Chấm dứt tư cách thành viên hợp tác xã" in article


def test_faq_browsing_by_numbers(zalo, polling):
    member = ZaloMember(zalo)
    (topics,) = member.say("/faq")
    (page1,) = member.say(_option(topics, "Thành viên và thành lập HTX"))
    assert "(trang 1/4)" in page1
    (page2,) = member.say(_option(page1, "Sau ▶"))
    assert "(trang 2/4)" in page2
    first_entry = next(line for line in page2.splitlines() if line.startswith("1. "))[3:]
    (entry,) = member.say("1")
    assert entry.startswith(first_entry) and "Căn cứ:" in entry


def test_profile_flow_by_numbers(zalo, polling):
    member = ZaloMember(zalo)
    (summary,) = member.say("/hoso")
    (provinces,) = member.say(_option(summary, "✏️ Cập nhật hồ sơ"))
    assert "Gõ số (1-35)" in provinces
    (types,) = member.say(_option(provinces, "Cần Thơ"))
    (roles,) = member.say(_option(types, "Bỏ qua"))
    (vat,) = member.say(_option(roles, "Giám đốc"))
    (done,) = member.say(_option(vat, "Khai thuế GTGT theo quý"))
    assert done.startswith("✅ Đã lưu hồ sơ") and "Cần Thơ" in done
    with Session(polling) as session:
        stored = session.scalars(select(Member).where(Member.external_id == member.chat_id)).one()
        assert (stored.province, stored.coop_role, stored.vat_period) == (
            "can_tho",
            "giam_doc",
            "quarterly",
        )


def test_lichnop_as_a_text_command(zalo, polling):
    member = ZaloMember(zalo)
    (shown,) = member.say("/lichnop")
    assert shown.startswith("🗓 Các hạn nộp sắp tới của HTX bạn:") and "Căn cứ:" in shown
    assert shown.endswith("1. ✏️ Cập nhật hồ sơ\n\nGõ số 1 để chọn.")


def test_toi_and_xoadulieu_as_text_commands(zalo, polling):
    member = ZaloMember(zalo, display_name="Bình")
    (shown,) = member.say("/toi")
    assert "Kênh: zalo" in shown and "Tên hiển thị: Bình" in shown
    (confirm,) = member.say("/xoadulieu")
    (done,) = member.say(_option(confirm, "🗑 Xoá hết"))
    assert done.startswith("Đã xoá toàn bộ dữ liệu")
    with Session(polling) as session:
        assert (
            session.scalars(select(Member).where(Member.external_id == member.chat_id)).all() == []
        )


def test_images_stickers_and_unsupported_events_get_a_polite_text(zalo, polling):
    member = ZaloMember(zalo)
    for event, fields in (
        ("message.image.received", {"photo_url": "https://example.org/a.jpg"}),
        ("message.sticker.received", {"sticker": "abc"}),
        ("message.unsupported.received", {}),
    ):
        (reply,) = member.expect(
            lambda e=event, f=fields: zalo.send_user_event(ZALO_TOKEN, member.user, e, **f)
        )
        assert reply.startswith("Mình mới đọc được tin nhắn chữ")


def test_bad_updates_are_ignored_and_later_messages_answered(zalo, polling):
    member = ZaloMember(zalo)
    good = {"chat": {"id": member.chat_id}, "from": member.user, "date": 1}
    for update in (
        {"no_event": True},
        {"event_name": "message.text.received"},
        {"event_name": "message.text.received", "message": {**good, "message_id": "m1"}},
        {"event_name": 7, "message": {**good, "message_id": "m2", "text": "x"}},
        {
            "event_name": "message.text.received",
            "message": {**good, "message_id": "m3", "text": ["x"]},
        },
        {"event_name": "user.joined", "message": {**good, "message_id": "m4"}},
        [1, 2, 3],
        "just a string",
    ):
        zalo.push_update(ZALO_TOKEN, update)  # type: ignore[arg-type]
    huge = "hợp tác xã " * 10_000  # about 110 KB
    (reply,) = member.say(huge)
    assert reply  # answered from the beginning of the text
    (greeting,) = member.say("/start")
    assert greeting.startswith("Xin chào")
    assert len(member.sent()) == 2  # nothing for the malformed or unknown events


def test_a_redelivered_event_is_answered_once(zalo, polling):
    member = ZaloMember(zalo)
    sent_before = len(zalo.calls("sendMessage", ZALO_TOKEN))
    update = zalo.send_user_message(ZALO_TOKEN, member.user, "/help")
    zalo.wait_for_message(member.chat_id, count=1, timeout=20)
    zalo.redeliver(ZALO_TOKEN, update)
    zalo.redeliver(ZALO_TOKEN, update)
    (after,) = member.say("/start")  # handled after the duplicates were fetched
    assert after.startswith("Xin chào")
    member.say("/toi")
    texts = member.sent()
    assert sum(t.startswith("Cách dùng Trợ lý HTX") for t in texts) == 1
    assert len(zalo.calls("sendMessage", ZALO_TOKEN)) - sent_before == 3


def test_handover_from_zalo_is_answered_from_the_telegram_staff_chat(zalo, telegram, polling):
    member = ZaloMember(zalo, display_name="Hùng")
    (told,) = member.say("/lienhe HTX tôi muốn vay vốn Quỹ hỗ trợ phát triển HTX")
    assert "đã chuyển câu hỏi" in told
    (post,) = telegram.wait_for_message(STAFF_CHAT, text_contains="vay vốn Quỹ hỗ trợ", timeout=20)
    assert "kênh zalo" in post["text"]
    staff = telegram.user(first_name="Cán bộ Mai")
    (relayed,) = member.expect(
        lambda: telegram.send_user_message(
            TG_TOKEN, staff, "Anh mang hồ sơ <đủ> & đến Quỹ 🌾", chat_id=STAFF_CHAT,
            reply_to_message_id=post["message_id"],
        )
    )  # fmt: skip
    assert "Anh mang hồ sơ <đủ> & đến Quỹ 🌾" in relayed
    assert telegram.wait_for_message(STAFF_CHAT, text_contains="✅ Đã gửi câu trả lời")


def test_redelivery_after_a_restart_is_still_answered_once(zalo, nlu_url, tmp_path):
    database = tmp_path / "restart.db"
    member = ZaloMember(zalo, SOLO_TOKEN)
    with RunningBot(_solo_settings(zalo, nlu_url, database)):
        update = zalo.send_user_message(SOLO_TOKEN, member.user, "/help")
        zalo.wait_for_message(member.chat_id, count=1, timeout=20)
    with RunningBot(_solo_settings(zalo, nlu_url, database)):
        zalo.redeliver(SOLO_TOKEN, update)
        (after,) = member.say("/start")
    assert after.startswith("Xin chào")
    assert sum(t.startswith("Cách dùng Trợ lý HTX") for t in member.sent()) == 1


# -- webhook ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook(zalo, nlu_url, tmp_path_factory):
    """An assistant in Zalo webhook mode on a fixed port; yields (its /zalo URL, secret)."""
    port = free_port()
    secret = "zalo_webhook_secret-123"
    settings = bot_settings(
        nlu_url,
        tmp_path_factory.mktemp("zalo-webhook") / "bot.store.db",
        web_port=port,
        zalo_bot_token=HOOK_TOKEN,
        zalo_base_url=zalo.base_url,
        zalo_webhook_url=f"http://127.0.0.1:{port}/zalo",
        zalo_webhook_secret=secret,
    )
    with RunningBot(settings) as bot:
        yield bot.url.rstrip("/") + "/zalo", secret


def test_webhook_conversation_and_duplicate_delivery(zalo, webhook):
    _, secret = webhook
    hook = zalo.webhook(HOOK_TOKEN)
    assert hook is not None and hook["url"].endswith("/zalo")
    assert hook.get("secret_token", secret) == secret
    member = ZaloMember(zalo, HOOK_TOKEN)
    (answer,) = member.say("thủ tục giải thể hợp tác xã")
    assert "Căn cứ:" in answer
    before = len(member.sent())
    update = zalo.send_user_message(HOOK_TOKEN, member.user, "/help")
    zalo.wait_for_message(member.chat_id, count=before + 1, timeout=20)
    zalo.redeliver(HOOK_TOKEN, update)
    (after,) = member.say("/start")
    assert after.startswith("Xin chào")
    member.say("/toi")
    assert sum(t.startswith("Cách dùng Trợ lý HTX") for t in member.sent()) == 1
    statuses = {d.status for d in zalo.webhook_deliveries() if d.token == HOOK_TOKEN}
    assert statuses == {200}


def test_two_chats_messages_with_the_same_id_are_both_answered(zalo, webhook):
    # Zalo message ids are unique per chat: another chat's message with the same id is
    # another event, not a redelivery.
    first, second = ZaloMember(zalo, HOOK_TOKEN), ZaloMember(zalo, HOOK_TOKEN)
    shared_id = "same-id-in-two-chats"

    def send(member: ZaloMember) -> None:
        message = {
            "message_id": shared_id,
            "date": int(time.time() * 1000),
            "chat": {"id": member.user["id"], "chat_type": "PRIVATE"},
            "from": dict(member.user),
            "text": "/help",
        }
        zalo.push_update(HOOK_TOKEN, {"event_name": "message.text.received", "message": message})

    (one,) = first.expect(lambda: send(first))
    (two,) = second.expect(lambda: send(second))
    assert one.startswith("Cách dùng Trợ lý HTX") and two.startswith("Cách dùng Trợ lý HTX")


def test_forged_and_malformed_webhook_calls_are_refused(zalo, webhook):
    url, secret = webhook
    victim = zalo.user()
    update = {
        "event_name": "message.text.received",
        "message": {
            "message_id": "forged1",
            "date": int(time.time() * 1000),
            "chat": {"id": victim["id"], "chat_type": "PRIVATE"},
            "from": victim,
            "text": "/start",
        },
    }
    right = {"X-Bot-Api-Secret-Token": secret}
    with httpx.Client(timeout=10) as client:
        assert client.post(url, json=update).status_code == 403
        forged = {"X-Bot-Api-Secret-Token": "guessed-secret"}
        assert client.post(url, json=update, headers=forged).status_code == 403
        for body in (
            b"{not json",
            b"\xff\xfe\x00broken utf-8",
            b"[]",
            b'{"event_name": "message.text.received"}',
            b'{"event_name": "message.text.received", "message": {"message_id": "x"}}',
        ):
            assert client.post(url, content=body, headers=right).status_code == 400, body
        big = b'{"event_name": "x", "pad": "' + b"x" * 100_000 + b'"}'
        assert client.post(url, content=big, headers=right).status_code == 413
        unknown = {**update, "event_name": "user.reacted.message"}
        assert client.post(url, json=unknown, headers=right).status_code == 200
    # Nothing forged, malformed or unknown produced a message; real members still get answers.
    assert zalo.sent_messages(victim["id"]) == []
    (reply,) = ZaloMember(zalo, HOOK_TOKEN).say("/help")
    assert reply.startswith("Cách dùng")


# -- the client and the sender, without the assistant --------------------------------------------


def _with_client(zalo: FakeZalo, action: Any, timeout: float = 5.0) -> Any:
    async def main() -> Any:
        async with ZaloClient(ZALO_TOKEN, zalo.base_url, timeout=timeout) as client:
            return await action(client)

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ZaloBadRequest),
        (401, ZaloBadToken),
        (403, ZaloForbidden),
        (404, ZaloBadToken),
        (500, ZaloServerError),
    ],
)
def test_send_errors_are_mapped_and_sends_are_not_repeated(zalo, status, error):
    zalo.reset()
    zalo.fail_next("sendMessage", status, f"error {status}", times=3)
    with pytest.raises(error):
        _with_client(zalo, lambda c: c.send_message("abc", "xin chào"))
    assert len(zalo.calls("sendMessage")) == 1  # never repeated: it may have gone through


def test_rate_limits_are_waited_out_and_safe_calls_retried(zalo):
    zalo.reset()
    zalo.fail_next("sendMessage", 429, "Too Many Requests", retry_after=1)
    started = time.monotonic()
    message_id = _with_client(zalo, lambda c: c.send_message("abc", "xin chào"))
    assert message_id and time.monotonic() - started >= 0.9
    zalo.fail_next("getMe", 500, "Internal Server Error")
    me = _with_client(zalo, lambda c: c.get_me())
    assert me["id"] and [c.status for c in zalo.calls("getMe")] == [500, 200]
    zalo.fail_next("sendMessage", 429, "Too Many Requests", retry_after=120)
    with pytest.raises(ZaloRateLimited) as caught:
        _with_client(zalo, lambda c: c.send_message("abc", "xin chào"))
    assert caught.value.retry_after == 120


def test_timeouts_and_unreachable_servers(zalo):
    zalo.reset()
    zalo.slow("sendMessage", 2.0)
    with pytest.raises(ZaloTimeout):
        _with_client(zalo, lambda c: c.send_message("abc", "xin chào"), timeout=0.5)

    async def unreachable() -> None:
        async with ZaloClient(ZALO_TOKEN, f"http://127.0.0.1:{free_port()}") as client:
            await client.get_me()

    with pytest.raises(ZaloServerError) as caught:
        asyncio.run(unreachable())
    assert ZALO_TOKEN not in str(caught.value)
    assert asyncio.run(_polls_empty(zalo)) == []


async def _polls_empty(zalo: FakeZalo) -> list[dict[str, Any]]:
    async with ZaloClient(ZALO_TOKEN, zalo.base_url) as client:
        return await client.get_updates(timeout=1)  # the fake's 408: nothing new


def test_long_replies_are_split_and_blocked_members_reported(zalo):
    zalo.reset()
    chat = zalo.user()["id"]
    text = "\n\n".join(f"Đoạn {i}. " + "quy chế HTX " * 150 for i in range(6))

    async def send(reply: Reply, to: str) -> None:
        async with ZaloClient(ZALO_TOKEN, zalo.base_url) as client:
            await ZaloSender(client, ChoiceMemory()).send(to, reply)

    asyncio.run(send(Reply(text, (Button("Tiếp", "more:x"),)), chat))
    parts = [m["text"] for m in zalo.sent_messages(chat)]
    assert len(parts) >= 3 and all(len(p) <= 2000 for p in parts)
    assert parts[-1].endswith("Gõ số 1 để chọn.")
    zalo.block(chat)
    with pytest.raises(RecipientBlocked):
        asyncio.run(send(Reply("xin chào"), chat))


def test_shutdown_finishes_the_reply_in_flight(zalo, nlu_url, tmp_path):
    member = ZaloMember(zalo, SOLO_TOKEN)
    bot = RunningBot(_solo_settings(zalo, nlu_url, tmp_path / "shutdown.db")).start()
    try:
        requests = len(zalo.calls("sendMessage"))
        zalo.slow("sendMessage", 1.0)
        zalo.send_user_message(SOLO_TOKEN, member.user, "/help")
        zalo.wait_for_request("sendMessage", count=requests + 1, timeout=20)
    finally:
        bot.stop()  # the same path as SIGTERM: stop fetching, finish what is in flight
    (sent,) = zalo.sent_messages(member.chat_id)
    assert sent["text"].startswith("Cách dùng Trợ lý HTX")
