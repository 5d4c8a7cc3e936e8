"""The FAQ and law pages in headless Chromium at a phone's width (360 px), and printed.

The pages are served over real HTTP by uvicorn (their real routes behind the
security headers; the answer service without the NLU service, which these
pages never ask). The screenshots are checked for layout sanity, not pixels:
nothing wider than the screen, the page drawn (text on a light background),
the right margin empty.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from starlette.applications import Starlette
from starlette.middleware import Middleware

from bot.app import Knowledge, build_answers
from bot.settings import Settings
from bot.web import SecurityHeaders
from bot.web.faq import faq_routes
from tests.chromium import phone_chromium
from tests.serving import serve_app

WIDTH, HEIGHT = 360, 780  # a phone, in CSS pixels
PAGES = ("/faq", "/faq/so_thanh_vien_toi_thieu", "/luat/17-2023-qh15/33", "/faq?q=von+gop")


@pytest.fixture(scope="module")
def faq_url() -> Iterator[str]:
    """The FAQ pages served by uvicorn on a free loopback port, in a thread."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, public_base_url="https://hoidap.example.vn", telegram_bot_username="HtxBot"
    )
    answers = build_answers(settings, Knowledge.load(), None, None)
    app = Starlette(routes=faq_routes(answers, settings), middleware=[Middleware(SecurityHeaders)])
    with serve_app(app) as url:
        yield url


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium emulating a 360-px phone."""
    with phone_chromium(tmp_path_factory.mktemp("chromium-faq"), WIDTH, HEIGHT) as driver:
        yield driver


def _width(driver: WebDriver, script: str) -> float:
    return float(driver.execute_script(script))


def test_pages_fit_a_phone_screen_and_keep_to_the_policy(faq_url, phone, tmp_path):
    for path in PAGES:
        phone.get(f"{faq_url}{path}")
        assert phone.find_element(By.TAG_NAME, "h1").is_displayed()
        assert _width(phone, "return document.documentElement.scrollWidth;") <= WIDTH
        search = phone.find_element(By.ID, "q")
        assert search.rect["x"] >= 0 and search.rect["x"] + search.rect["width"] <= WIDTH
        font = _width(phone, "return parseFloat(getComputedStyle(document.body).fontSize);")
        assert font >= 16
        for code in phone.find_elements(By.CSS_SELECTOR, "svg.segno"):
            assert code.rect["x"] + code.rect["width"] <= WIDTH, path
        shot = Image.open(io.BytesIO(phone.get_screenshot_as_png())).convert("L")
        shot.save(tmp_path / f"{path.strip('/').replace('/', '_').replace('?', '_')}.png")
        assert shot.size == (WIDTH, HEIGHT)
        dark = sum(shot.histogram()[:100])
        assert dark > 500, f"{path}: nothing drawn"  # text is there
        margin = shot.crop((WIDTH - 6, 0, WIDTH, HEIGHT))
        assert margin.getextrema()[0] > 200, f"{path}: something runs into the right edge"
    refused = [e for e in phone.get_log("browser") if "Content Security Policy" in e["message"]]
    assert refused == []


def test_printing_hides_the_navigation_and_keeps_the_answer(faq_url, phone):
    phone.get(f"{faq_url}/faq/so_thanh_vien_toi_thieu")
    phone.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        hidden = phone.execute_script(
            "return ['form.search', '.site-nav', '.downloads'].map("
            "s => getComputedStyle(document.querySelector(s)).display);"
        )
        assert hidden == ["none", "none", "none"]
        assert phone.find_element(By.CSS_SELECTOR, ".answer").is_displayed()
        after = phone.execute_script(
            "return getComputedStyle(document.querySelector('.basis a'), '::after').content;"
        )
        assert "/luat/17-2023-qh15/" in after  # links are printed
    finally:
        phone.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
