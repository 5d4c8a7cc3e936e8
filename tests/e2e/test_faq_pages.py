"""The public FAQ pages of the assembled assistant, over real HTTP, with the web chat off.

The bot runs as ``coopbot run`` does (``bot.web.serve``) with the real NLU
service, so the search box answers through the classifier as the chat does.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import pytest
import zxingcpp
from PIL import Image

from tests.conftest import bot_settings
from tests.html_check import Page, check_html
from tests.running_bot import RunningBot

PUBLIC = "https://hoidap.example.vn"
SAMPLE = "so_thanh_vien_toi_thieu"


@pytest.fixture(scope="module")
def site(nlu_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A running assistant without the web chat; yields an HTTP client on its address."""
    database = tmp_path_factory.mktemp("faq-pages") / "bot.db"
    settings = bot_settings(
        nlu_url,
        database,
        web_chat_enabled=False,
        public_base_url=PUBLIC,
        telegram_bot_username="HtxTroLyBot",
    )
    with RunningBot(settings) as bot, httpx.Client(base_url=bot.url, timeout=60) as client:
        yield client


def _page(client: httpx.Client, path: str, status: int = 200) -> Page:
    response = client.get(path)
    assert response.status_code == status, (path, response.text[:300])
    assert "form-action 'self'" in response.headers["content-security-policy"]
    page = check_html(response.text)
    assert page.problems == [], page.problems
    return page


def test_the_faq_is_served_when_the_web_chat_is_off(site):
    assert site.get("/").status_code == 404  # the chat page is off...
    index = _page(site, "/faq")  # ...the FAQ is public all the same
    assert index.canonical == f"{PUBLIC}/faq"
    assert f"/faq/{SAMPLE}" in index.links
    entry = _page(site, f"/faq/{SAMPLE}?t=lop2026")
    assert entry.canonical == f"{PUBLIC}/faq/{SAMPLE}"
    assert "/luat/17-2023-qh15/4#k7" in entry.links
    article = _page(site, "/luat/17-2023-qh15/4")
    assert "k7" in article.ids
    _page(site, "/faq/khong_co", status=404)
    assert site.get("/assets/faq.css").status_code == 200


def test_search_answers_through_the_classifier_with_or_without_diacritics(site):
    for query in ("htx can bao nhieu thanh vien", "HTX cần bao nhiêu thành viên?"):
        response = site.get("/faq", params={"q": query})
        assert response.status_code == 200
        page = check_html(response.text)
        assert page.problems == []
        entries = [link for link in page.links if link.startswith("/faq/")]
        assert entries[0] == f"/faq/{SAMPLE}", (query, entries)
        assert "Câu trả lời" in page.text and "Có phải bạn hỏi về" not in page.text


def test_the_qr_code_served_decodes_to_the_public_link(site):
    response = site.get(f"/faq/{SAMPLE}/qr.png", params={"kind": "telegram", "t": "lop2026"})
    assert response.status_code == 200
    (result,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(response.content)))
    assert result.text == f"https://t.me/HtxTroLyBot?start=faq-{SAMPLE}-tlop2026"
