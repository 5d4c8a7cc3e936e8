"""The web chat page in a real browser: headless Chromium against the real assistant.

The bot runs with the real NLU service (``web_chat_url``); Chromium and its
driver are Debian's (``scripts/ensure-chromium`` installs them). Every wait is
an explicit condition, never a sleep.
"""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.chromium import headless_chromium

WAIT_S = 60  # an answer goes through the NLU service; the first parse can be slow

GREETING_START = "Mình là Trợ lý HTX"
BASIS = re.compile(r"📘 Căn cứ: Luật HTX 2023 \(17/2023/QH15\), Điều \d+")
CHECKED = re.compile(r"🗓 Cập nhật: \d{2}/\d{2}/\d{4}")
XSS_TEXT = "<script>alert(1)</script> & <b>x</b> 🌾"
LOG_PROBE = "coopbot-console-probe"


@pytest.fixture(scope="module")
def browser(web_chat_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium (quit before the bot stops, as it depends on ``web_chat_url``)."""
    driver = headless_chromium(
        tmp_path_factory.mktemp("chromium-profile"), "--window-size=1024,900"
    )
    try:
        yield driver
    finally:
        driver.quit()


# -- helpers ----------------------------------------------------------------------------


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    """Waits for ``condition`` to return something truthy; stale elements mean "not yet"."""
    return WebDriverWait(
        driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition, f"timed out waiting for {what}")


def text_of(element: WebElement) -> str:
    """The element's exact ``textContent`` (not Selenium's whitespace-normalised text)."""
    return str(element.get_property("textContent"))


def bot_messages(driver: WebDriver) -> list[WebElement]:
    """The bot's messages in the chat log, oldest first."""
    return driver.find_elements(By.CSS_SELECTOR, "#chat-log .msg.msg-bot")


def user_messages(driver: WebDriver) -> list[WebElement]:
    """The member's messages in the chat log, oldest first."""
    return driver.find_elements(By.CSS_SELECTOR, "#chat-log .msg.msg-user")


def message_text(message: WebElement) -> str:
    """The text part of a message bubble."""
    return text_of(message.find_element(By.CSS_SELECTOR, ".msg-text"))


def choices(message: WebElement) -> list[WebElement]:
    """The choice buttons of a bot message."""
    return message.find_elements(By.CSS_SELECTOR, ".choices button.choice")


def choice(message: WebElement, label: str) -> WebElement:
    """The choice button whose label starts with ``label``."""
    found = [b for b in choices(message) if text_of(b).startswith(label)]
    labels = [text_of(b) for b in choices(message)]
    assert found, f"no choice starting with {label!r} in {labels}"
    return found[0]


def idle(driver: WebDriver) -> bool:
    """No request in flight: the typing indicator is hidden and the send button enabled."""
    typing = driver.find_element(By.ID, "typing")
    return (
        typing.get_attribute("hidden") is not None
        and driver.find_element(By.ID, "chat-send").is_enabled()
    )


def wait_new_bot_message(driver: WebDriver, before: int) -> WebElement:
    """Waits for the page to settle with more than ``before`` bot messages; the newest."""
    wait_for(
        driver,
        lambda d: idle(d) and len(bot_messages(d)) > before,
        f"a new bot message (had {before})",
    )
    return bot_messages(driver)[-1]


def open_chat(driver: WebDriver, url: str) -> WebElement:
    """Loads the page and waits for the greeting; returns the greeting message."""
    driver.get(url)
    return wait_for(
        driver,
        lambda d: (
            idle(d)
            and next((m for m in bot_messages(d) if GREETING_START in message_text(m)), False)
        ),
        "the greeting",
    )


def send_text(driver: WebDriver, text: str) -> None:
    """Types ``text`` into the input and presses Enter."""
    box = driver.find_element(By.ID, "chat-input")
    box.click()
    # ChromeDriver's send_keys only types the Basic Multilingual Plane; the DevTools
    # "insert text" command types any character (as an input method would).
    driver.execute_cdp_cmd("Input.insertText", {"text": text})
    assert box.get_property("value") == text
    box.send_keys(Keys.ENTER)


def assert_cited_answer(text: str) -> None:
    """A legal answer: its basis (document and article) and its last-checked date."""
    assert BASIS.search(text), text
    assert CHECKED.search(text), text


# -- tests --------------------------------------------------------------------------------


def test_greeting_and_menu(browser: WebDriver, web_chat_url: str) -> None:
    greeting = open_chat(browser, web_chat_url)
    assert message_text(greeting).startswith("Xin chào! Mình là Trợ lý HTX")
    assert greeting.get_attribute("data-id")
    labels = [text_of(b) for b in choices(greeting)]
    assert labels[-4:] == [
        "📚 Tra cứu theo chủ đề",
        "👤 Hồ sơ HTX của tôi",
        "🙋 Hỏi cán bộ",
        "ℹ️ Hướng dẫn",
    ]
    # A new session is asked once about deadline reminders.
    assert labels[:-4] in ([], ["🔔 Có, nhắc tôi", "Không, cảm ơn"])
    # The hidden start command leaves no bubble of the member's.
    assert user_messages(browser) == []
    assert browser.title == "Trợ lý HTX"
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "vi"
    session = browser.execute_script("return localStorage.getItem('coopbot.session')")
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", session)


def test_typed_question_gets_a_cited_answer(browser: WebDriver, web_chat_url: str) -> None:
    open_chat(browser, web_chat_url)
    before = len(bot_messages(browser))
    box = browser.find_element(By.ID, "chat-input")
    box.send_keys("htx can bao nhieu thanh vien", Keys.ENTER)

    answer = wait_new_bot_message(browser, before)
    assert [message_text(m) for m in user_messages(browser)] == ["htx can bao nhieu thanh vien"]
    assert box.get_property("value") == ""
    text = message_text(answer)
    # Answered directly or as "Có phải bạn hỏi về ...?": either way the member sees
    # the entry itself, with its legal basis and date.
    assert "Số thành viên tối thiểu để thành lập HTX" in text
    assert "ít nhất 05 thành viên chính thức" in text
    assert_cited_answer(text)
    labels = [text_of(b) for b in choices(answer)]
    assert labels[:2] == ["👍 Hữu ích", "👎 Chưa đúng"]
    assert "🙋 Hỏi cán bộ (/lienhe)" in labels


def test_browsing_topics_pages_in_place(browser: WebDriver, web_chat_url: str) -> None:
    greeting = open_chat(browser, web_chat_url)
    before = len(bot_messages(browser))
    choice(greeting, "📚 Tra cứu theo chủ đề").click()

    topics = wait_new_bot_message(browser, before)
    assert message_text(topics) == "📚 Chọn một chủ đề:"
    assert [message_text(m) for m in user_messages(browser)] == ["📚 Tra cứu theo chủ đề"]
    topic_labels = [text_of(b) for b in choices(topics)]
    assert len(topic_labels) >= 10
    assert all(re.fullmatch(r".+ \(\d+\)", label) for label in topic_labels), topic_labels

    # A topic opens its first page in place of the topic list (an edit, no new turn).
    messages = len(bot_messages(browser))
    choice(topics, "Thành viên và thành lập HTX (").click()
    wait_for(browser, lambda d: idle(d) and "(trang 1/" in message_text(topics), "page 1")
    assert message_text(topics).startswith("📚 Thành viên và thành lập HTX (trang 1/4)")
    assert len(bot_messages(browser)) == messages
    assert len(user_messages(browser)) == 1
    first_page = [text_of(b) for b in choices(topics)]
    assert "Số thành viên tối thiểu để thành lập HTX" in first_page
    assert first_page[-2:] == ["Sau ▶", "↩ Chủ đề"]

    choice(topics, "Sau ▶").click()
    wait_for(browser, lambda d: idle(d) and "(trang 2/4)" in message_text(topics), "page 2")
    second_page = [text_of(b) for b in choices(topics)]
    assert second_page[-3:] == ["◀ Trước", "Sau ▶", "↩ Chủ đề"]
    assert not set(second_page[:-3]) & set(first_page)
    assert len(bot_messages(browser)) == messages

    # An entry of the page is a new turn: the label as the member's bubble, then the answer.
    title = second_page[0]
    choice(topics, title).click()
    answer = wait_new_bot_message(browser, messages)
    assert user_messages(browser)[-1] == browser.find_elements(By.CSS_SELECTOR, ".msg")[-2]
    assert message_text(user_messages(browser)[-1]) == title
    text = message_text(answer)
    assert text.startswith(title + "\n\n")
    assert CHECKED.search(text), text
    assert "📘 Căn cứ: " in text
    # The page's buttons are usable again once the answer is in.
    assert all(b.is_enabled() for b in choices(topics))


def test_feedback_shows_a_notice(browser: WebDriver, web_chat_url: str) -> None:
    greeting = open_chat(browser, web_chat_url)
    before = len(bot_messages(browser))
    choice(greeting, "📚 Tra cứu theo chủ đề").click()
    topics = wait_new_bot_message(browser, before)
    choice(topics, "Luật HTX 2023 (").click()
    wait_for(browser, lambda d: idle(d) and "(trang 1/" in message_text(topics), "page 1")
    before = len(bot_messages(browser))
    choices(topics)[0].click()
    answer = wait_new_bot_message(browser, before)
    assert_cited_answer(message_text(answer))

    users = len(user_messages(browser))
    choice(answer, "👍 Hữu ích").click()
    notice = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "#chat-log .msg-notice"),
        "the feedback notice",
    )[0]
    assert text_of(notice) == "Cảm ơn bạn đã góp ý! 👍"
    wait_for(browser, idle, "the page to be idle")
    # An acknowledgement is no new turn: no bubble, no new message.
    assert len(user_messages(browser)) == users
    assert len(bot_messages(browser)) == before + 1


def test_markup_is_shown_as_text(browser: WebDriver, web_chat_url: str) -> None:
    open_chat(browser, web_chat_url)
    before = len(bot_messages(browser))
    send_text(browser, XSS_TEXT)

    reply = wait_new_bot_message(browser, before)
    (bubble,) = user_messages(browser)
    assert message_text(bubble) == XSS_TEXT
    assert browser.find_elements(By.CSS_SELECTOR, "#chat-log script, #chat-log b") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 (the property raises when no alert is open)
    assert message_text(reply)  # the bot still answers (a fallback is fine)
    assert choices(reply)


def test_security_headers_and_clean_console(browser: WebDriver, web_chat_url: str) -> None:
    with urllib.request.urlopen(web_chat_url, timeout=10) as response:
        csp = response.headers["Content-Security-Policy"]
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp

    # Everything the browser logged in this module (all the tests above, and a fresh
    # load): no errors such as a CSP violation, a failed resource or a script error.
    open_chat(browser, web_chat_url)
    browser.execute_script(f"console.error('{LOG_PROBE}')")
    entries: list[dict[str, Any]] = []

    def probe_logged(driver: WebDriver) -> bool:
        entries.extend(driver.get_log("browser"))
        return any(LOG_PROBE in str(e.get("message")) for e in entries)

    wait_for(browser, probe_logged, "the console probe in the browser log")
    severe = [
        e for e in entries if e.get("level") == "SEVERE" and LOG_PROBE not in str(e["message"])
    ]
    assert severe == []
