"""Replies with an image (a QR code) on every channel, against the fake Bot API servers.

The channels are the real ones (python-telegram-bot and the Telegram channel's
handlers, the Zalo channel and its httpx client, the web chat and its push store,
on real SQLite databases and real HTTP); only the core is scripted: it answers
with hand-made ``Reply(image=...)``, as ``/chiase`` will. Each QR code the fake
received is decoded back to its URL with zxing-cpp.
"""

from __future__ import annotations

import asyncio
import html
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import zxingcpp
from PIL import Image as PILImage
from sqlalchemy.engine import Engine
from telegram import Bot

from bot.answers.links import qr_png
from bot.channels.telegram.app import TelegramChannel
from bot.channels.telegram.render import TelegramSender
from bot.channels.webchat.chat import WebChat
from bot.channels.zalo.channel import ZaloChannel
from bot.conversation import Incoming
from bot.replies import Button, Image, Reply
from bot.sending import RecipientBlocked, Senders
from bot.settings import Settings
from bot.store.pushes import PushStore
from tests.fakes import FakeTelegram, FakeZalo

TG_TOKEN = "777001:images-token-ABC"
ZALO_TOKEN = "7770010000:zalo-images-XYZ"
QR_URL = "http://127.0.0.1:8080/faq/von_gop?t=ab12"  # what the QR code opens
IMAGE = Image(
    png=qr_png(QR_URL).png, url="/faq/von_gop/qr.png?t=ab12", alt="Mã QR: Vốn góp <HTX> & 🌾"
)
SHORT = "📌 Vốn góp của thành viên <HTX> & 🌾\nQuét mã QR để mở câu trả lời."
LONG = "\n\n".join(f"{i}. Điều lệ <HTX> & quy chế nội bộ 🌾. " * 12 for i in range(5))
OPEN = Button("🌐 Mở trang", "faq:von_gop")


def decode(png: bytes) -> str:
    """The text of the one QR code in ``png``."""
    with PILImage.open(io.BytesIO(png)) as image:
        (found,) = zxingcpp.read_barcodes(image)
    return str(found.text)


class ScriptedCore:
    """Stands in for ``Conversation``: answers a text or a button payload from a script."""

    def __init__(self, script: dict[str, list[Reply]]) -> None:
        self.script = script
        self.seen: list[Incoming] = []

    async def handle(self, incoming: Incoming) -> list[Reply]:
        self.seen.append(incoming)
        return self.script[incoming.payload or incoming.text]


SCRIPT = {
    "qr": [Reply(SHORT, (OPEN,), image=IMAGE)],
    "dai": [Reply(LONG, (OPEN,), image=IMAGE)],
    "faq:von_gop": [Reply("Trang 2", (OPEN,), image=IMAGE, edit=True)],
}


@pytest.fixture
def engine(sqlite_engine: Engine) -> Engine:
    """A migrated SQLite database (the channels' inbox, the web chat's pushes)."""
    return sqlite_engine


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def run_channel(channel: Any, scenario: Callable[[], Any]) -> Any:
    """Starts the channel, runs the (blocking) scenario in a thread, stops the channel."""

    async def main() -> Any:
        await channel.start()
        try:
            return await asyncio.to_thread(scenario)
        finally:
            await channel.stop()

    return asyncio.run(main())


# -- Telegram --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(tokens=(TG_TOKEN,)) as fake:
        yield fake


def to_chat(fake: FakeTelegram, chat_id: int) -> list[Any]:
    """The successful sends into ``chat_id``, in order."""
    return [
        c
        for c in fake.calls(token=TG_TOKEN)
        if c.ok and c.method.startswith("send") and c.params.get("chat_id") == chat_id
    ]


def test_telegram_direct_replies_send_the_qr_code_as_a_photo(telegram, engine):
    core = ScriptedCore(SCRIPT)
    channel = TelegramChannel(
        settings(telegram_bot_token=TG_TOKEN, telegram_base_url=telegram.base_url), core, engine
    )
    member = telegram.user(first_name="Giảng viên Lan")
    chat = member["id"]

    def scenario() -> None:
        telegram.send_user_message(TG_TOKEN, member, "qr")
        telegram.wait_for(lambda c: c.method == "sendPhoto" and c.params["chat_id"] == chat)
        telegram.send_user_message(TG_TOKEN, member, "dai")
        telegram.wait_for(
            lambda c: c.method == "sendMessage" and c.params["chat_id"] == chat, timeout=20
        )
        first_photo = telegram.sent_photos(chat)[0]
        telegram.press_button(TG_TOKEN, member, first_photo, OPEN.payload)
        telegram.wait_for(
            lambda c: c.method == "sendPhoto" and c.params["chat_id"] == chat, count=3, timeout=20
        )

    run_channel(channel, scenario)
    sends = to_chat(telegram, chat)
    assert [c.method for c in sends] == ["sendPhoto", "sendPhoto", "sendMessage", "sendPhoto"]
    short, long_photo, long_text, paged = sends

    # A text that fits the caption: one photo, the text as its caption, the buttons on it.
    upload = short.params["photo"]
    assert upload.data == IMAGE.png and decode(upload.data) == QR_URL
    assert short.params["caption"] == html.escape(SHORT, quote=False)
    assert short.params["parse_mode"] == "HTML"
    assert short.result["caption"] == SHORT
    assert short.params["reply_markup"]["inline_keyboard"] == [
        [{"text": OPEN.label, "callback_data": OPEN.payload}]
    ]
    assert telegram.file_bytes(short.result["photo"][-1]["file_id"]) == IMAGE.png

    # Too long for a caption: the photo with the alt text, then the text with the buttons.
    assert decode(long_photo.params["photo"].data) == QR_URL
    assert long_photo.result["caption"] == IMAGE.alt
    assert "reply_markup" not in long_photo.params
    assert long_text.result["text"] == LONG.strip()
    assert long_text.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == (
        OPEN.payload
    )
    assert long_photo.result["message_id"] < long_text.result["message_id"]

    # An edit with an image cannot replace a photo's caption: it is sent as a new photo.
    assert paged.result["caption"] == "Trang 2"
    assert telegram.calls("editMessageText") == []
    assert [i.text for i in core.seen] == ["qr", "dai", OPEN.label]


def sender_run(fake: FakeTelegram, action: Callable[[Senders], Any], paid: bool = False) -> Any:
    async def main() -> Any:
        async with Bot(TG_TOKEN, base_url=f"{fake.base_url}/bot") as bot:
            senders = Senders()
            senders.register("telegram", TelegramSender(bot, paid_broadcast=paid))
            return await action(senders)

    return asyncio.run(main())


def test_telegram_replies_through_the_senders_carry_the_photo(telegram):
    chat = telegram.user()["id"]

    async def send_both(senders: Senders) -> tuple[str | None, str | None]:
        first = await senders.send("telegram", str(chat), Reply(SHORT, image=IMAGE, bulk=True))
        second = await senders.send("telegram", str(chat), Reply(LONG, (OPEN,), image=IMAGE))
        return first, second

    first, second = sender_run(telegram, send_both, paid=True)
    short, long_photo, long_text = to_chat(telegram, chat)
    assert [c.method for c in (short, long_photo, long_text)] == [
        "sendPhoto",
        "sendPhoto",
        "sendMessage",
    ]
    assert first == str(short.result["message_id"])  # the photo is the message sent
    assert second == str(long_text.result["message_id"])  # the last part of the reply
    assert short.params.get("allow_paid_broadcast") is True  # a bulk reply, paid switched on
    assert long_photo.params.get("allow_paid_broadcast") is None
    assert short.result["caption"] == SHORT and decode(short.params["photo"].data) == QR_URL
    assert long_photo.result["caption"] == IMAGE.alt
    assert long_text.params["reply_markup"]

    telegram.block(chat)
    with pytest.raises(RecipientBlocked):
        sender_run(telegram, lambda s: s.send("telegram", str(chat), Reply(SHORT, image=IMAGE)))


# -- Zalo -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zalo() -> Iterator[FakeZalo]:
    with FakeZalo(tokens=(ZALO_TOKEN,)) as fake:
        yield fake


def zalo_channel(fake: FakeZalo, engine: Engine, core: ScriptedCore, **values: Any) -> Any:
    configured = settings(zalo_bot_token=ZALO_TOKEN, zalo_base_url=fake.base_url, **values)
    return ZaloChannel(configured, core, engine)  # type: ignore[arg-type]


def test_zalo_with_a_public_base_url_sends_the_photo_by_its_url(zalo, engine):
    zalo.reset()
    core = ScriptedCore(SCRIPT)
    channel = zalo_channel(zalo, engine, core, public_base_url="https://hotro.lienminhhtx.vn/")
    member = zalo.user("Giảng viên Hoa")

    def scenario() -> list[dict[str, Any]]:
        zalo.send_user_message(ZALO_TOKEN, member, "qr")
        return zalo.wait_for_message(member["id"], timeout=20)

    (text,) = run_channel(channel, scenario)
    (photo,) = zalo.sent_photos(member["id"])
    assert photo["photo"] == "https://hotro.lienminhhtx.vn/faq/von_gop/qr.png?t=ab12"
    assert photo["caption"] == IMAGE.alt  # plain text: Zalo shows no markup
    assert text["text"] == f"{SHORT}\n\n1. {OPEN.label}\n\nGõ số 1 để chọn."
    assert "Mã QR:" not in text["text"]
    sends = [c.method for c in zalo.calls() if c.method.startswith("send")]
    assert sends == ["sendPhoto", "sendMessage"]  # the photo first


def test_zalo_without_a_public_base_url_sends_the_link_in_the_text(zalo, engine):
    zalo.reset()
    core = ScriptedCore(SCRIPT)
    channel = zalo_channel(zalo, engine, core, web_host="127.0.0.1", web_port=8080)
    chat = zalo.user()["id"]

    async def send(reply: Reply) -> str | None:
        senders = Senders()
        senders.register("zalo", channel.sender)
        try:
            return await senders.send("zalo", chat, reply)
        finally:
            await channel.client.aclose()

    asyncio.run(send(Reply(SHORT, (OPEN,), image=IMAGE)))
    assert zalo.calls("sendPhoto") == []  # Zalo could not fetch a local address
    (text,) = zalo.sent_messages(chat)
    link = "Mã QR: http://127.0.0.1:8080/faq/von_gop/qr.png?t=ab12"
    assert text["text"] == f"{SHORT}\n\n{link}\n\n1. {OPEN.label}\n\nGõ số 1 để chọn."


def test_zalo_falls_back_to_the_link_when_the_photo_is_refused(zalo, engine):
    zalo.reset()
    channel = zalo_channel(
        zalo, engine, ScriptedCore({}), public_base_url="https://hotro.lienminhhtx.vn"
    )
    chat = zalo.user()["id"]
    zalo.fail_next("sendPhoto", 400, "Bad Request: cannot download the photo")

    async def send() -> str | None:
        try:
            return await channel.send(chat, Reply(SHORT, image=IMAGE))
        finally:
            await channel.client.aclose()

    assert asyncio.run(send())
    assert [c.status for c in zalo.calls("sendPhoto")] == [400]  # a send is never repeated
    (text,) = zalo.sent_messages(chat)
    assert text["text"].endswith(
        "\n\nMã QR: https://hotro.lienminhhtx.vn/faq/von_gop/qr.png?t=ab12"
    )


# -- the web chat --------------------------------------------------------------------------------


def test_web_chat_json_carries_the_image_url_and_alt(engine):
    chat = WebChat(ScriptedCore({}), PushStore(engine))  # type: ignore[arg-type]
    session = "s" * 24

    async def push_and_fetch() -> dict[str, Any]:
        await chat.send(session, Reply(SHORT, (OPEN,), image=IMAGE))
        await chat.send(session, Reply("Không có ảnh"))
        return await chat.wait_inbox(session, 0)

    fetched = asyncio.run(push_and_fetch())
    with_image, without = json.loads(json.dumps(fetched))["replies"]  # what the page receives
    assert with_image["image"] == {"url": IMAGE.url, "alt": IMAGE.alt}
    assert with_image["text"] == SHORT
    assert without["image"] is None  # the PNG bytes never go into the JSON
