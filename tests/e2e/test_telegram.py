"""Telegram end to end: the real assistant and python-telegram-bot against a fake Bot API.

The bot runs as in production (``bot.app.serve``: real NLU service, real SQLite
database, real HTTP); the fake Telegram server on 127.0.0.1 plays the members
and records every call, which is what these tests assert on.
"""

from __future__ import annotations

import asyncio
import html
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from telegram import Bot

from bot.channels.telegram.render import TelegramSender
from bot.nlu_model.service import free_port
from bot.replies import Button, Reply
from bot.sending import RateLimited, RecipientBlocked
from bot.settings import PROJECT_ROOT
from bot.store.db import Handover, Member, MessageLog, create_db_engine
from knowledge.base import load_knowledge_base
from tests.conftest import bot_settings
from tests.fakes import FakeTelegram, utf16_len
from tests.running_bot import RunningBot

POLL_TOKEN = "123456:polling-token-ABC"
HOOK_TOKEN = "654321:webhook-token-XYZ"
STAFF_CHAT = -1001234567890
HOSTILE = "<script>alert(1)</script> & <b>Lan</b> 🌾 &amp; </i>"
KB = load_knowledge_base()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeTelegram]:
    """The fake Bot API server, shared by the polling and the webhook bot."""
    with FakeTelegram(tokens=(POLL_TOKEN, HOOK_TOKEN)) as server:
        yield server


@pytest.fixture(scope="module")
def polling(fake: FakeTelegram, nlu_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A running assistant fetching updates by long polling; yields (bot, its database)."""
    database = tmp_path_factory.mktemp("telegram-polling") / "bot.store.db"
    settings = bot_settings(
        nlu_url,
        database,
        telegram_bot_token=POLL_TOKEN,
        telegram_base_url=fake.base_url,
        telegram_staff_chat_id=STAFF_CHAT,
    )
    with RunningBot(settings) as bot:
        engine = create_db_engine(settings.database_url)
        try:
            yield bot, engine
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def webhook(fake: FakeTelegram, nlu_url: str, tmp_path_factory: pytest.TempPathFactory):
    """A running assistant in webhook mode on a fixed local port; yields (bot, secret, database)."""
    port = free_port()
    database = tmp_path_factory.mktemp("telegram-webhook") / "bot.store.db"
    secret = "s3cret_webhook-token"
    settings = bot_settings(
        nlu_url,
        database,
        web_port=port,
        telegram_bot_token=HOOK_TOKEN,
        telegram_base_url=fake.base_url,
        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram",
        telegram_webhook_secret=secret,
    )
    with RunningBot(settings) as bot:
        yield bot, secret, database


class Member_:
    """One simulated member (or staff user) talking to the bot through the fake server."""

    def __init__(self, fake: FakeTelegram, token: str, **user: Any) -> None:
        self.fake = fake
        self.token = token
        self.user = fake.user(**user)
        self.chat_id = self.user["id"]

    def _calls_to_chat(self, method: str) -> list[Any]:
        return [
            c
            for c in self.fake.calls(method, self.token)
            if str(c.params.get("chat_id")) == str(self.chat_id)
        ]

    def _ok(self, method: str, chat_id: int) -> list[Any]:
        return [
            c
            for c in self.fake.calls(method, self.token)
            if c.status == 200 and str(c.params.get("chat_id")) == str(chat_id)
        ]

    def _wait(self, method: str, chat_id: int, before: int, n: int) -> list[dict[str, Any]]:
        self.fake.wait_for(
            lambda c: (
                c.method == method
                and c.token == self.token
                and c.status == 200
                and str(c.params.get("chat_id")) == str(chat_id)
            ),
            timeout=20,
            count=before + n,
        )
        calls = self._ok(method, chat_id)[before : before + n]
        results = [c.response["result"] for c in calls]
        # The fake's stored copy also keeps the raw HTML as sent.
        return [
            {**r, "html": self.fake.message(r["chat"]["id"], r["message_id"], self.token)["html"]}
            for r in results
        ]

    def say(self, text: str, n: int = 1, chat_id: int | None = None, **kw: Any) -> list[dict]:
        """Sends ``text``; returns the bot's next ``n`` messages in that chat."""
        chat = chat_id if chat_id is not None else self.chat_id
        before = len(self._ok("sendMessage", chat))
        self.fake.send_user_message(self.token, self.user, text, chat_id=chat_id, **kw)
        return self._wait("sendMessage", chat, before, n)

    def press(self, message: dict, label: str, method: str = "sendMessage") -> dict[str, Any]:
        """Presses the button labelled ``label``; returns the bot's sent or edited message."""
        data = buttons(message)[label]
        before = len(self._ok(method, self.chat_id))
        update = self.fake.press_button(self.token, self.user, message, data)
        (result,) = self._wait(method, self.chat_id, before, 1)
        query_id = update["callback_query"]["id"]
        answered = self.fake.wait_for(
            lambda c: (
                c.method == "answerCallbackQuery" and c.params.get("callback_query_id") == query_id
            )
        )
        assert answered[0].status == 200
        return result


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """The inline keyboard of a bot message, label -> callback data."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def _one(engine: Engine, statement: Any) -> Any:
    with Session(engine) as session:
        return session.scalars(statement).one_or_none()


# -- polling ------------------------------------------------------------------------------


def test_the_command_menu_is_set_in_vietnamese(fake, polling):
    (call,) = [c for c in fake.calls("setMyCommands", POLL_TOKEN) if c.status == 200]
    commands = {c["command"]: c["description"] for c in call.params["commands"]}
    assert set(commands) == {
        "start",
        "help",
        "faq",
        "hoso",
        "lienhe",
        "lichnop",
        "nhacnho",
        "taphuan",
        "toi",
        "xoadulieu",
    }
    assert commands["lienhe"] == "Hỏi cán bộ Liên minh HTX"


def test_start_greets_a_hostile_name_escaped_with_the_menu(fake, polling):
    member = Member_(fake, POLL_TOKEN, first_name=HOSTILE, last_name="Nguyễn")
    (greeting,) = member.say("/start")
    assert f"Xin chào, {HOSTILE} Nguyễn!" in greeting["text"]
    assert html.escape(HOSTILE, quote=False) in greeting["html"]
    assert set(buttons(greeting).values()) >= {"cmd:faq", "cmd:hoso", "cmd:lienhe", "cmd:help"}


def test_deep_link_opens_the_entry_and_bad_payloads_show_the_menu(fake, polling):
    entry = KB.get("ho_so_dang_ky_htx")
    assert entry is not None
    member = Member_(fake, POLL_TOKEN)
    opened, menu = member.say(f"/start faq-{entry.id}", n=2)
    assert opened["text"].startswith(entry.title)
    assert "Căn cứ:" in opened["text"] and "Cập nhật:" in opened["text"]
    assert "cmd:faq" in buttons(menu).values()
    for payload in ("faq-khong_ton_tai", "<b>&amp;", "x" * 64):
        (shown,) = member.say(f"/start {payload}")
        assert shown["text"].startswith("Xin chào")
    assert all(c.status == 200 for c in fake.calls("sendMessage", POLL_TOKEN))


def test_question_gets_a_cited_answer_and_feedback_is_stored(fake, polling):
    _, engine = polling
    member = Member_(fake, POLL_TOKEN)
    (answer,) = member.say("Hợp tác xã cần tối thiểu bao nhiêu thành viên?")
    assert "Căn cứ:" in answer["text"] and "Cập nhật:" in answer["text"]
    data = buttons(answer)
    assert data["👍 Hữu ích"].startswith("fb:up:") and data["👎 Chưa đúng"].startswith("fb:down:")
    update = fake.press_button(POLL_TOKEN, member.user, answer, data["👎 Chưa đúng"])
    query_id = update["callback_query"]["id"]
    (call,) = fake.wait_for(
        lambda c: c.method == "answerCallbackQuery" and c.params["callback_query_id"] == query_id
    )
    assert call.status == 200 and "xem lại" in call.params["text"]
    logged = _one(engine, select(MessageLog).where(MessageLog.id == int(data["👍 Hữu ích"][6:])))
    assert logged.feedback == "down" and logged.entry_id is not None
    assert logged.text == "Hợp tác xã cần tối thiểu bao nhiêu thành viên?"


def test_hostile_question_text_is_answered_without_breaking_html(fake, polling):
    member = Member_(fake, POLL_TOKEN)
    (reply,) = member.say(HOSTILE)
    assert reply["text"]  # parsed by the fake's HTML checker: escaping held
    assert all(c.status == 200 for c in fake.calls("sendMessage", POLL_TOKEN))


def test_faq_browsing_pages_through_a_category_by_editing_the_message(fake, polling):
    member = Member_(fake, POLL_TOKEN)
    (categories,) = member.say("/faq")
    label = next(k for k, v in buttons(categories).items() if v == "cat:thanh_vien:0")
    page1 = member.press(categories, label, method="editMessageText")
    assert "(trang 1/4)" in page1["text"] and page1["message_id"] == categories["message_id"]
    page2 = member.press(page1, "Sau ▶", method="editMessageText")
    assert "(trang 2/4)" in page2["text"] and "◀ Trước" in buttons(page2)
    assert set(buttons(page1)) != set(buttons(page2))
    title = next(k for k, v in buttons(page2).items() if v.startswith("faq:"))
    entry = member.press(page2, title)
    assert entry["text"].startswith(title) and "Căn cứ:" in entry["text"]
    back = member.press(page2, "↩ Chủ đề", method="editMessageText")
    assert back["text"] == categories["text"]


def test_profile_flow_stores_the_choices(fake, polling):
    _, engine = polling
    member = Member_(fake, POLL_TOKEN)
    (summary,) = member.say("/hoso")
    assert "Tỉnh/thành: chưa khai báo" in summary["text"]
    step = member.press(summary, "✏️ Cập nhật hồ sơ", method="editMessageText")
    province = next(k for k, v in buttons(step).items() if v == "hs:p:can_tho")
    assert len([v for v in buttons(step).values() if v.startswith("hs:p:")]) == 35  # 34 + skip
    step = member.press(step, province, method="editMessageText")
    step = member.press(step, "Bỏ qua", method="editMessageText")  # cooperative type
    role = next(k for k, v in buttons(step).items() if v == "hs:r:giam_doc")
    step = member.press(step, role, method="editMessageText")
    vat = next(k for k, v in buttons(step).items() if v == "hs:v:quarterly")
    done = member.press(step, vat, method="editMessageText")
    assert done["text"].startswith("✅ Đã lưu hồ sơ") and province in done["text"]
    stored = _one(engine, select(Member).where(Member.external_id == str(member.user["id"])))
    assert (stored.province, stored.coop_type, stored.coop_role, stored.vat_period) == (
        "can_tho",
        None,
        "giam_doc",
        "quarterly",
    )


def test_handover_round_trip_through_the_staff_chat(fake, polling):
    _, engine = polling
    member = Member_(fake, POLL_TOKEN, first_name="Lan <&>")
    staff = Member_(fake, POLL_TOKEN, first_name="Cán bộ Hùng")
    member.say("HTX muốn vay Quỹ hỗ trợ phát triển HTX cần thế chấp không?")
    before = len(staff._ok("sendMessage", STAFF_CHAT))
    (told,) = member.say("/lienhe")
    assert "đã chuyển câu hỏi" in told["text"]
    (post,) = staff._wait("sendMessage", STAFF_CHAT, before, 1)
    assert "vay Quỹ hỗ trợ phát triển HTX" in post["text"] and "Lan <&>" in post["text"]

    answer = "Không bắt buộc <thế chấp> & lãi suất ưu đãi 🌾"
    (ack,) = staff.say(answer, chat_id=STAFF_CHAT, reply_to_message_id=post["message_id"])
    assert ack["text"].startswith("✅ Đã gửi câu trả lời")
    relayed = fake.wait_for_message(member.chat_id, text_contains=answer)
    assert "Cán bộ Liên minh HTX trả lời" in relayed[-1]["text"]
    handover = _one(
        engine, select(Handover).where(Handover.staff_message_id == str(post["message_id"]))
    )
    assert handover.status == "answered" and handover.answered_at is not None

    # Staff chatting among themselves (not a reply) reaches nobody.
    staff_posts = len(staff._ok("sendMessage", STAFF_CHAT))
    member_messages = len(member._ok("sendMessage", member.chat_id))
    fake.send_user_message(POLL_TOKEN, staff.user, "họp lúc 2 giờ", chat_id=STAFF_CHAT)
    staff.say("/help")  # handled after the chatter was fetched
    assert len(staff._ok("sendMessage", STAFF_CHAT)) == staff_posts
    assert len(member._ok("sendMessage", member.chat_id)) == member_messages


def test_staff_file_reply_is_copied_to_the_member(fake, polling):
    member = Member_(fake, POLL_TOKEN)
    staff = Member_(fake, POLL_TOKEN, first_name="Cán bộ Mai")
    before = len(staff._ok("sendMessage", STAFF_CHAT))
    member.say("/lienhe cho tôi xin mẫu điều lệ HTX")
    (post,) = staff._wait("sendMessage", STAFF_CHAT, before, 1)
    update = fake.send_user_photo(
        POLL_TOKEN, staff.user, chat_id=STAFF_CHAT, reply_to_message_id=post["message_id"],
        caption="Mẫu điều lệ <mới>",
    )  # fmt: skip
    source_id = update["message"]["message_id"]
    (copy,) = fake.wait_for(
        lambda c: c.method == "copyMessage" and str(c.params.get("chat_id")) == str(member.chat_id)
    )
    assert copy.status == 200
    assert (int(copy.params["from_chat_id"]), int(copy.params["message_id"])) == (
        STAFF_CHAT,
        source_id,
    )
    header = fake.wait_for_message(member.chat_id, text_contains="tệp bên dưới")
    assert header


def test_toi_shows_the_data_and_xoadulieu_deletes_it(fake, polling):
    _, engine = polling
    member = Member_(fake, POLL_TOKEN, first_name="Bình")
    member.say("vốn góp tối đa của một thành viên là bao nhiêu")
    (shown,) = member.say("/toi")
    assert "Tên hiển thị: Bình" in shown["text"] and "Số câu hỏi đã lưu: 1" in shown["text"]
    (confirm,) = member.say("/xoadulieu")
    done = member.press(confirm, "🗑 Xoá hết", method="editMessageText")
    assert done["text"].startswith("Đã xoá toàn bộ dữ liệu")
    assert _one(engine, select(Member).where(Member.external_id == str(member.user["id"]))) is None


def test_photo_gets_a_polite_text_reply(fake, polling):
    member = Member_(fake, POLL_TOKEN)
    before = len(member._ok("sendMessage", member.chat_id))
    fake.send_user_photo(POLL_TOKEN, member.user)
    (reply,) = member._wait("sendMessage", member.chat_id, before, 1)
    assert reply["text"].startswith("Mình mới đọc được tin nhắn chữ")


def test_a_failed_send_gets_an_apology_and_the_next_message_is_answered(fake, polling):
    member = Member_(fake, POLL_TOKEN)
    fake.fail_next("sendMessage", 500, "Internal Server Error")
    (apology,) = member.say("/help")  # the first send failed: the error handler apologises
    assert apology["text"].startswith("Xin lỗi, hệ thống đang gặp sự cố")
    failed = [c for c in member._calls_to_chat("sendMessage") if c.status == 500]
    assert len(failed) == 1
    (greeting,) = member.say("/start")
    assert greeting["text"].startswith("Xin chào")


def test_blocked_member_does_not_stop_the_bot(fake, polling):
    member = Member_(fake, POLL_TOKEN)
    fake.block(member.chat_id)
    fake.send_user_message(POLL_TOKEN, member.user, "/help")
    fake.wait_for(
        lambda c: (
            c.method == "sendMessage"
            and c.status == 403
            and str(c.params.get("chat_id")) == str(member.chat_id)
        )
    )
    other = Member_(fake, POLL_TOKEN)
    (reply,) = other.say("/help")
    assert reply["text"].startswith("Cách dùng Trợ lý HTX")


# -- webhook ----------------------------------------------------------------------------------


def test_webhook_is_set_with_the_secret_and_answers_members(fake, webhook):
    _bot, secret, _database = webhook
    info = fake.webhook(HOOK_TOKEN)
    assert info is not None and info["url"].endswith("/telegram")
    assert info["secret_token"] == secret
    member = Member_(fake, HOOK_TOKEN, first_name="Hoa & <Huệ>")
    (greeting,) = member.say("/start")
    assert "Xin chào, Hoa & <Huệ>!" in greeting["text"]
    (answer,) = member.say("thủ tục giải thể hợp tác xã")
    assert "Căn cứ:" in answer["text"]
    statuses = {d.status for d in fake.webhook_deliveries() if d.token == HOOK_TOKEN}
    assert statuses == {200}


def test_forged_or_malformed_webhook_calls_are_refused(fake, webhook):
    bot, secret, _database = webhook
    url = bot.url.rstrip("/") + "/telegram"
    victim = fake.user()
    update = {
        "update_id": 999_999,
        "message": {
            "message_id": 1,
            "date": int(time.time()),
            "chat": {"id": victim["id"], "type": "private"},
            "from": victim,
            "text": "/start",
        },
    }
    sent_before = len(fake.calls("sendMessage", HOOK_TOKEN))
    with httpx.Client(timeout=10) as client:
        assert client.post(url, json=update).status_code == 403
        forged = {"X-Telegram-Bot-Api-Secret-Token": "guessed"}
        assert client.post(url, json=update, headers=forged).status_code == 403
        right = {"X-Telegram-Bot-Api-Secret-Token": secret}
        for body in (
            b"{not json",
            b"[]",
            b'{"update_id": "x"}',
            "\udcff".encode("utf-8", "surrogatepass"),
        ):
            response = client.post(url, content=body, headers=right)
            assert response.status_code == 400, body
        big = b'{"update_id": 1, "pad": "' + b"x" * 70_000 + b'"}'
        assert client.post(url, content=big, headers=right).status_code == 413
    # Nothing forged produced a message, and the bot still answers real updates.
    assert len(fake.calls("sendMessage", HOOK_TOKEN)) == sent_before
    (reply,) = Member_(fake, HOOK_TOKEN).say("/help")
    assert reply["text"].startswith("Cách dùng")


def _post_update(bot: Any, secret: str, update: dict[str, Any]) -> int:
    url = bot.url.rstrip("/") + "/telegram"
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret}
    return httpx.post(url, json=update, headers=headers, timeout=10).status_code


def _text_update(update_id: int, user: dict[str, Any], text: Any) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "chat": {"id": user["id"], "type": "private"},
            "from": user,
            "text": text,
        },
    }


def test_an_update_delivered_three_times_is_answered_once(fake, webhook):
    bot, secret, _database = webhook
    member = Member_(fake, HOOK_TOKEN)
    update = _text_update(7_000_001, member.user, "/help")
    assert [_post_update(bot, secret, update) for _ in range(3)] == [200, 200, 200]
    (reply,) = member._wait("sendMessage", member.chat_id, 0, 1)
    assert reply["text"].startswith("Cách dùng")
    (later,) = member.say("/start")  # answered after the copies would have been
    assert later["text"].startswith("Xin chào")
    texts = [c.params.get("text", "") for c in member._ok("sendMessage", member.chat_id)]
    assert sum(t.startswith("Cách dùng") for t in texts) == 1


def test_updates_with_wrong_field_types_are_refused_and_create_no_member(fake, webhook):
    bot, secret, database = webhook
    victim = fake.user()
    wrong_text = _text_update(7_000_101, victim, 12345)
    wrong_chat = _text_update(7_000_102, victim, "/start")
    wrong_chat["message"]["chat"]["id"] = str(victim["id"])
    wrong_user = _text_update(7_000_103, victim, "/start")
    wrong_user["message"]["from"] = {**victim, "id": str(victim["id"])}
    wrong_button = {"update_id": 7_000_104, "callback_query": {"id": 5, "from": victim}}
    for update in (wrong_text, wrong_chat, wrong_user, wrong_button):
        assert _post_update(bot, secret, update) == 400, update
    (reply,) = Member_(fake, HOOK_TOKEN).say("/help")  # still serving
    assert reply["text"].startswith("Cách dùng")
    assert fake.calls("sendMessage", HOOK_TOKEN)
    assert not [
        c
        for c in fake.calls("sendMessage", HOOK_TOKEN)
        if str(c.params.get("chat_id")) == str(victim["id"])
    ]
    engine = create_db_engine(f"sqlite:///{database}")
    try:
        with Session(engine) as session:
            found = session.scalars(
                select(Member).where(Member.external_id == str(victim["id"]))
            ).all()
    finally:
        engine.dispose()
    assert found == []


def test_get_updates_conflicts_while_the_webhook_is_set(fake, webhook):
    response = httpx.post(f"{fake.base_url}/bot{HOOK_TOKEN}/getUpdates", json={"timeout": 0})
    assert response.status_code == 409 and response.json()["ok"] is False


# -- `coopbot run` as a process -------------------------------------------------------------------


def test_coopbot_run_stops_on_sigterm_after_delivering_the_reply_in_flight(
    nlu_url: str, tmp_path: Path
):
    token = "777:sigterm-token"
    with FakeTelegram(tokens=(token,)) as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WEB_"))},
            "NLU_URL": nlu_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.store.db'}",
            "TELEGRAM_BOT_TOKEN": token,
            "TELEGRAM_BASE_URL": server.base_url,
            "WEB_PORT": "0",
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "run"],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert process.stdout is not None
            lines = []
            for line in process.stdout:
                lines.append(line)
                if line.startswith("Web chat:"):
                    break
            assert any(line.startswith("Web chat:") for line in lines), "".join(lines)
            server.wait_for_request("getUpdates")  # polling (the long poll is held open)
            member = server.user()
            server.slow("sendMessage", 1.0)  # the reply is still in flight at SIGTERM
            update = server.send_user_message(token, member, "/help")
            server.wait_for_request("sendMessage")  # received, not answered yet
            process.send_signal(signal.SIGTERM)
            output, _ = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        (sent,) = server.wait_for(lambda c: c.method == "sendMessage" and c.status == 200)
        assert sent.response["result"]["text"].startswith("Cách dùng Trợ lý HTX")
        assert update["update_id"] >= 1
        assert token not in output  # the token is never logged


# -- sending through the real client, without the assistant ------------------------------------


def _sender_run(fake: FakeTelegram, action: Any, paid: bool = False) -> Any:
    async def main() -> Any:
        async with Bot(POLL_TOKEN, base_url=f"{fake.base_url}/bot") as bot:
            return await action(TelegramSender(bot, paid_broadcast=paid))

    return asyncio.run(main())


@pytest.mark.parametrize("paid", [False, True])
def test_bulk_messages_are_paid_broadcasts_only_when_switched_on(fake, paid):
    chat = fake.user()["id"]
    for bulk in (False, True):
        _sender_run(fake, lambda s, b=bulk: s.send(str(chat), Reply("Thông báo", bulk=b)), paid)
    calls = [c for c in fake.calls("sendMessage", POLL_TOKEN) if c.params["chat_id"] == chat]
    assert [c.params.get("allow_paid_broadcast") for c in calls] == [None, True if paid else None]
    assert all(c.ok for c in calls)


def test_a_long_answer_is_split_at_paragraphs_with_the_buttons_on_the_last_part(fake):
    paragraph = "Điều lệ <HTX> & quy chế nội bộ 🌾. " * 40  # about 1,400 characters
    text = "\n\n".join(f"{i}. {paragraph.strip()}" for i in range(8))
    chat = fake.user()["id"]
    reply = Reply(text, (Button("👍 Hữu ích", "fb:up:1"), Button("Tiếp", "faq:x")))
    _sender_run(fake, lambda sender: sender.send(str(chat), reply))
    calls = [c for c in fake.calls("sendMessage", POLL_TOKEN) if c.params["chat_id"] == chat]
    assert len(calls) >= 3 and all(c.status == 200 for c in calls)
    parts = [c.response["result"]["text"] for c in calls]
    assert all(utf16_len(p) <= 4096 for p in parts)
    assert all(p.split(". ", 1)[0].isdigit() for p in parts)  # cut at paragraph starts
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")
    assert [bool(c.params.get("reply_markup")) for c in calls] == [False] * (len(calls) - 1) + [
        True
    ]


def test_send_errors_map_to_blocked_and_rate_limited(fake):
    chat = fake.user()["id"]
    fake.block(chat)
    with pytest.raises(RecipientBlocked):
        _sender_run(fake, lambda sender: sender.send(str(chat), Reply("xin chào")))
    other = fake.user()["id"]
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(RateLimited) as caught:
        _sender_run(fake, lambda sender: sender.send(str(other), Reply("xin chào")))
    assert caught.value.retry_after == 7
