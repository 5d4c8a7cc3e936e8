"""The dashboard in headless Chromium: the login link opened from another site, the charts.

The admin pages are served over real HTTP by uvicorn on the hand-counted fixture
(``tests/dashboard_seed.py``), behind the real security headers. The login link is
clicked on a page of another origin, as from a chat app: the session cookie is
``SameSite=Strict``, so this is where a redirect-based login would fail.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.engine import Engine

from bot.store.admin_sessions import AdminSessionStore
from bot.store.db import create_db_engine, upgrade_db
from bot.web.server import admin_app
from tests.chromium import phone_chromium
from tests.dashboard_seed import NOW, board_of, seed
from tests.serving import serve_app

WIDTH, HEIGHT = 360, 900  # a phone, in CSS pixels


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine, int]]:
    """The dashboard on a seeded SQLite database; yields (base URL, engine, admin's id)."""
    folder = tmp_path_factory.mktemp("dashboard")
    engine = create_db_engine(f"sqlite:///{folder / 'bot.db'}")
    upgrade_db(engine)
    ids = seed(engine, folder)
    with serve_app(admin_app(board_of(engine, folder))) as url:
        yield url, engine, ids["lan"]
    engine.dispose()


@pytest.fixture(scope="module")
def phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    with phone_chromium(tmp_path_factory.mktemp("chromium-admin"), WIDTH, HEIGHT) as driver:
        yield driver


def test_login_from_another_site_then_the_overview_with_its_charts(site, phone, tmp_path: Path):
    url, engine, admin = site
    token = AdminSessionStore(engine, lambda: NOW).issue_token(admin)
    # A page of another origin (as a chat app's link preview would be) holding the link.
    phone.get(f"data:text/html,<a id='go' href='{url}/admin/login?token={token}'>Mở</a>")
    phone.find_element(By.ID, "go").click()
    WebDriverWait(phone, 15).until(lambda d: d.current_url.rstrip("/").endswith("/admin"))
    WebDriverWait(phone, 15).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart[data-drawn]")) == 2
    )
    assert phone.find_element(By.TAG_NAME, "h1").text == "Tổng quan"
    assert "vai trò quản trị viên (admin)" in phone.find_element(By.CSS_SELECTOR, ".who").text

    phone.get(f"{url}/admin?days=7")
    WebDriverWait(phone, 15).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".chart[data-drawn]")) == 2
    )
    charts = phone.find_elements(By.CSS_SELECTOR, ".chart")
    assert [c.get_attribute("data-drawn") for c in charts] == ["1", "1"]
    for chart in charts:
        canvas = chart.find_element(By.TAG_NAME, "canvas")
        assert canvas.size["width"] > 200 and canvas.size["height"] > 100
        assert chart.rect["x"] + chart.rect["width"] <= WIDTH
    legend = phone.find_element(By.ID, "chart-questions").text
    assert "Telegram" in legend and "Zalo" in legend and "Web" in legend
    width = phone.execute_script("return document.documentElement.scrollWidth;")
    assert width <= WIDTH  # tables scroll inside their own box

    shot = Image.open(io.BytesIO(phone.get_screenshot_as_png())).convert("RGB")
    shot.save(tmp_path / "overview.png")
    assert shot.size == (WIDTH, HEIGHT)
    colours = {shot.getpixel((x, y)) for x in range(0, 360, 4) for y in range(0, 900, 4)}
    assert len(colours) > 20, "the page looks blank"  # text, cards and coloured lines
    problems = [e for e in phone.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []


def test_every_page_draws_without_errors(site, phone):
    url, engine, admin = site
    token = AdminSessionStore(engine, lambda: NOW).issue_token(admin)
    phone.get(f"{url}/admin/login?token={token}")
    WebDriverWait(phone, 15).until(lambda d: d.current_url.rstrip("/").endswith("/admin"))
    phone.get_log("browser")  # start afresh
    for path in ("/admin/topics", "/admin/members", "/admin/broadcasts", "/admin/reminders",
                 "/admin/review", "/admin/models", "/admin/roles"):  # fmt: skip
        phone.get(f"{url}{path}?days=7")
        expected = len(phone.find_elements(By.CSS_SELECTOR, ".chart"))
        WebDriverWait(phone, 15).until(
            lambda d, n=expected: len(d.find_elements(By.CSS_SELECTOR, ".chart[data-drawn]")) == n
        )
        drawn = {
            c.get_attribute("data-drawn") for c in phone.find_elements(By.CSS_SELECTOR, ".chart")
        }
        assert drawn <= {"1", "empty"}, path
        width = phone.execute_script("return document.documentElement.scrollWidth;")
        assert width <= WIDTH, path
    problems = [e for e in phone.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert problems == []
