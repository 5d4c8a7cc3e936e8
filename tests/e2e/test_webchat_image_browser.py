"""A reply's image in the web chat page: headless Chromium against the real assistant.

The reply reaches the page the way a later message does: `WebChat.send` stores
it in the assistant's database and the page's long poll fetches it. The page
must show it as an ``<img>`` above the text, from its own origin only. Whether
the image itself loads is the FAQ routes' business, not checked here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from bot.answers.links import qr_png
from bot.channels.webchat.chat import WebChat
from bot.replies import Button, Image, Reply
from bot.store.db import create_db_engine
from bot.store.pushes import PushStore
from tests.conftest import bot_settings
from tests.e2e.test_webchat_browser import (  # the module's browser and helpers
    bot_messages,
    browser,  # noqa: F401 (a fixture)
    choices,
    message_text,
    open_chat,
    text_of,
    wait_for,
)
from tests.running_bot import RunningBot

ALT = 'Mã QR: Vốn góp <b>"HTX"</b> & 🌾'
IMAGE = Image(png=qr_png("http://x/faq/von_gop").png, url="/faq/von_gop/qr.png?t=ab12", alt=ALT)
FOREIGN = Image(png=b"", url="https://evil.example/qr.png", alt="ngoài")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webchat-images") / "bot.db"


@pytest.fixture(scope="module")
def web_chat_url(nlu_url: str, database: Path) -> Iterator[str]:
    """This module's assistant (overrides the shared one: the test writes to its database)."""
    with RunningBot(bot_settings(nlu_url, database)) as bot:
        yield bot.url


def push(database: Path, session: str, *replies: Reply) -> None:
    """Sends replies to the page's session through the web channel's sender."""
    engine = create_db_engine(f"sqlite:///{database}")
    chat = WebChat(None, PushStore(engine))  # type: ignore[arg-type]  # only sends

    async def send_all() -> None:
        for reply in replies:
            await chat.send(session, reply)

    try:
        asyncio.run(send_all())
    finally:
        engine.dispose()


def test_a_reply_image_is_an_img_above_the_text(
    browser: WebDriver,  # noqa: F811
    web_chat_url: str,
    database: Path,
) -> None:
    open_chat(browser, web_chat_url)
    session = browser.execute_script("return localStorage.getItem('coopbot.session')")
    before = len(bot_messages(browser))
    push(
        database,
        session,
        Reply("📌 Vốn góp của thành viên", (Button("🌐 Mở trang", "faq:von_gop"),), image=IMAGE),
        Reply("Ảnh từ nơi khác", image=FOREIGN),
    )
    wait_for(browser, lambda d: len(bot_messages(d)) >= before + 2, "the pushed replies")
    shared, foreign = bot_messages(browser)[before : before + 2]

    (img,) = shared.find_elements(By.CSS_SELECTOR, "img.msg-image")
    assert img.get_attribute("src") == f"{web_chat_url.rstrip('/')}/faq/von_gop/qr.png?t=ab12"
    assert img.get_attribute("alt") == ALT  # an attribute value: shown as text, never markup
    first, second = shared.find_elements(By.XPATH, "./*")[:2]
    assert first == img and "msg-text" in str(second.get_attribute("class"))
    assert message_text(shared) == "📌 Vốn góp của thành viên"
    assert [text_of(b) for b in choices(shared)] == ["🌐 Mở trang"]
    assert browser.find_elements(By.CSS_SELECTOR, "#chat-log b") == []

    # An image from another origin is not shown (the CSP would block it anyway).
    assert foreign.find_elements(By.TAG_NAME, "img") == []
    assert message_text(foreign) == "Ảnh từ nơi khác"
