"""The public FAQ and law pages: every entry and article rendered, links, QR codes, visits.

The pages are served by their real routes (``bot.web.faq.faq_routes``) behind the
real security headers, with the real knowledge base and legal corpus and the
answer service on lexical search (no NLU service: the search box's answers
through the classifier are checked end to end in tests/e2e/test_faq_pages.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import zxingcpp
from PIL import Image
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.testclient import TestClient

from bot.answers import AnswerService
from bot.answers.links import parse_deep_link
from bot.app import Knowledge, build_answers
from bot.channels.webchat.chat import Floodgate, WebLimits
from bot.settings import Settings
from bot.web import SecurityHeaders
from bot.web.faq import OpenRecorder, faq_routes
from tests.html_check import Page, check_html

PUBLIC = "https://hoidap.example.vn"
BOT = "HtxTroLyBot"
SAMPLE = "so_thanh_vien_toi_thieu"


@pytest.fixture(scope="module")
def answers() -> AnswerService:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    return build_answers(settings, Knowledge.load(), None, None)


def _client(
    answers: AnswerService,
    *,
    username: str | None = BOT,
    on_open: OpenRecorder | None = None,
    today: Callable[[], dt.date] | None = None,
) -> TestClient:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, public_base_url=PUBLIC, telegram_bot_username=username
    )
    routes = faq_routes(answers, settings, on_open=on_open, today=today)
    return TestClient(Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)]))


@pytest.fixture(scope="module")
def opens() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture(scope="module")
def client(answers: AnswerService, opens: list[tuple[str, str, str]]) -> Iterator[TestClient]:
    with _client(answers, on_open=lambda *visit: opens.append(visit)) as test_client:
        yield test_client


def _page(client: TestClient, path: str, status: int = 200) -> Page:
    response = client.get(path)
    assert response.status_code == status, (path, response.text[:500])
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = check_html(response.text)
    assert page.problems == [], (path, page.problems)
    assert page.lang == "vi" and page.viewport, path
    return page


def _decode(png: bytes) -> str:
    results = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(results) == 1
    return str(results[0].text)


def test_every_entry_page_renders_with_its_basis_linked_to_the_quoted_clauses(client, answers):
    articles: dict[str, Page] = {}
    for entry in answers.kb:
        page = _page(client, f"/faq/{entry.id}")
        assert page.canonical == f"{PUBLIC}/faq/{entry.id}"
        assert entry.title in page.text
        assert f"Kiểm tra lần cuối: {entry.checked:%d/%m/%Y}" in page.text
        for related in entry.related:
            assert f"/faq/{related}" in page.links
        law_links = [link for link in page.links if link.startswith("/luat/")]
        quotable = [r for r in entry.basis if answers.corpus.resolve(r) is not None]
        assert len(law_links) == len(quotable), entry.id
        for link in law_links:
            path, _, anchor = link.partition("#")
            if path not in articles:
                articles[path] = _page(client, path)
            assert not anchor or unquote(anchor) in articles[path].ids, (entry.id, link)
        caveat = "Chưa được xác nhận đầy đủ" in page.text
        assert caveat == entry.unconfirmed, entry.id
        assert len(page.svgs) == 2  # web (Zalo too) and Telegram
    assert len(articles) > 20


def test_every_article_of_every_document_renders_verbatim_with_clause_anchors(client, answers):
    corpus = answers.corpus
    held = [d for d in corpus.register if d.has_text]
    assert len(held) >= 4
    for doc in held:
        index = _page(client, f"/luat/{doc.slug}")
        assert index.canonical == f"{PUBLIC}/luat/{doc.slug}"
        for number, article in corpus.texts[doc.number].articles.items():
            path = f"/luat/{doc.slug}/{number}"
            assert path in index.links
            page = _page(client, path)
            assert page.canonical == f"{PUBLIC}{path}"
            assert article.heading in page.text
            assert "Trích nguyên văn" in page.text
            assert f"Hiệu lực: {doc.status_on(dt.date.today()).label}" in page.text
            for clause in article.clauses:
                assert f"k{clause.number}" in page.ids
                for line in clause.text.splitlines():
                    assert line.strip() in page.text, (path, line)
                for point in clause.points:
                    assert f"k{clause.number}-{point.label}" in page.ids
            if not article.clauses:
                assert all(line.strip() in page.text for line in article.text.splitlines())
    documents = _page(client, "/luat")
    assert {f"/luat/{d.slug}" for d in held} <= set(documents.links)


def test_topics_list_every_entry_with_a_handout_link(client, answers):
    kb = answers.kb
    index = _page(client, "/faq")
    assert index.canonical == f"{PUBLIC}/faq"
    assert {f"/faq/{e.id}" for e in kb} <= set(index.links)
    for category in kb.categories:
        entries = kb.in_category(category.key)
        if not entries:
            continue
        handout = f"/faq/chu-de/{category.key}/tai-lieu.pdf"
        assert handout in index.links
        topic = _page(client, f"/faq/chu-de/{category.key}")
        assert topic.canonical == f"{PUBLIC}/faq/chu-de/{category.key}"
        assert [link for link in topic.links if link.startswith("/faq/") and "chu-de" not in link][
            : len(entries)
        ] == [f"/faq/{e.id}" for e in entries]
        assert handout in topic.links


def test_unknown_pages_are_404_in_vietnamese(client):
    for path in (
        "/faq/khong_co_cau_nay",
        "/faq/chu-de/khong_co",
        "/luat/khong-co/1",
        "/luat/17-2023-qh15/999",
        "/luat/17-2023-qh15/abc",
        "/luat/113-2024-nd-cp/1",  # registered, text not held
        "/luat/khong-co",
    ):
        page = _page(client, path, status=404)
        assert "Không" in page.text and "/faq" in page.links, path
    assert client.get("/faq/khong_co/qr.png").status_code == 404


def test_pages_carry_the_strict_content_security_policy(client):
    for path in ("/faq", f"/faq/{SAMPLE}", "/luat/17-2023-qh15/33", "/faq?q=von+gop"):
        policy = client.get(path).headers["content-security-policy"]
        assert "form-action 'self'" in policy and "script-src 'self'" in policy
        assert "style-src 'self'" in policy and "unsafe-inline" not in policy
    css = client.get("/assets/faq.css")
    assert css.status_code == 200 and "@media print" in css.text


def _results(page: Page) -> list[str]:
    return [link for link in page.links if link.startswith("/faq/") and "chu-de" not in link]


def test_search_finds_entries_with_or_without_diacritics(client):
    plain = _page(client, "/faq?q=htx+can+bao+nhieu+thanh+vien")
    marked = _page(client, "/faq?q=HTX+cần+bao+nhiêu+thành+viên")
    assert f"/faq/{SAMPLE}" in _results(plain)
    assert _results(plain) == _results(marked)
    assert plain.canonical == f"{PUBLIC}/faq"
    nothing = _page(client, "/faq?q=qwzx+vbnm+plokij")
    assert "Chưa có câu trả lời chắc chắn" in nothing.text and "/lienhe" in nothing.text
    found = _page(client, "/faq?q=vốn+góp+tối+đa+của+một+thành+viên")
    assert "Chưa có câu trả lời chắc chắn" not in found.text
    assert "/faq/von_gop_toi_da" in _results(found)
    too_long = _page(client, "/faq?q=" + "a" * 501, status=400)
    assert "500 ký tự" in too_long.text


def test_a_visit_with_a_trainer_code_is_reported_and_a_bad_code_ignored(client, opens):
    opens.clear()
    page = _page(client, f"/faq/{SAMPLE}?t=Abcd12")
    assert opens == [(SAMPLE, "abcd12", "web")]
    assert page.canonical == f"{PUBLIC}/faq/{SAMPLE}"  # the code is not part of the page's URL
    assert f"{PUBLIC}/faq/{SAMPLE}?t=abcd12" in page.links  # shared on with the code
    for bad in ("ab", "abc!de", "a" * 13, ""):
        _page(client, f"/faq/{SAMPLE}?t={bad}")
    _page(client, f"/faq/{SAMPLE}")
    assert client.head(f"/faq/{SAMPLE}?t=abcd12").status_code == 200
    assert opens == [(SAMPLE, "abcd12", "web")]


def test_visits_are_reported_to_coroutines_and_a_failing_counter_costs_nothing(answers):
    seen: list[tuple[str, str, str]] = []

    async def record(entry_id: str, code: str, via: str) -> None:
        await asyncio.sleep(0)
        seen.append((entry_id, code, via))

    def broken(entry_id: str, code: str, via: str) -> None:
        raise RuntimeError("database down")

    with _client(answers, on_open=record) as client:
        _page(client, f"/faq/{SAMPLE}?t=trainer1")
    assert seen == [(SAMPLE, "trainer1", "web")]
    with _client(answers, on_open=broken) as client:
        _page(client, f"/faq/{SAMPLE}?t=trainer1")


def test_qr_codes_decode_to_the_shared_links(client, answers):
    for code in (None, "lop2026"):
        suffix = f"?t={code}" if code else ""
        page = _page(client, f"/faq/{SAMPLE}{suffix}")
        shared = [link for link in page.links if link.startswith(("https://", "http://"))]
        web = f"{PUBLIC}/faq/{SAMPLE}{suffix}"
        telegram = f"https://t.me/{BOT}?start=faq-{SAMPLE}" + (f"-t{code}" if code else "")
        assert shared == [web, telegram]
        for svg in page.svgs:  # inline codes: well-formed SVG
            assert ET.fromstring(svg).tag == "{http://www.w3.org/2000/svg}svg"
        for kind, url in (("web", web), ("telegram", telegram)):
            query = f"?kind={kind}" + (f"&t={code}" if code else "")
            assert f"/faq/{SAMPLE}/qr.png{query}" in page.links
            png = client.get(f"/faq/{SAMPLE}/qr.png{query}")
            assert png.status_code == 200 and png.headers["content-type"] == "image/png"
            assert _decode(png.content) == url
            svg = client.get(f"/faq/{SAMPLE}/qr.svg{query}")
            assert svg.headers["content-type"].startswith("image/svg+xml")
            root = ET.fromstring(svg.content)
            # both drawn with a 4-module quiet zone: PNG at 8 px a module, SVG at 8 units
            png_modules = Image.open(io.BytesIO(png.content)).size[0] // 8 - 8
            assert int(root.attrib["width"]) // 8 - 8 == png_modules
    opened = _page(client, urlsplit(web).path + "?" + urlsplit(web).query)
    assert opened.canonical == f"{PUBLIC}/faq/{SAMPLE}"
    start = parse_qs(urlsplit(telegram).query)["start"][0]
    assert parse_deep_link(start) == (SAMPLE, "lop2026")
    zalo = client.get(f"/faq/{SAMPLE}/qr.png?kind=zalo")
    assert _decode(zalo.content) == f"{PUBLIC}/faq/{SAMPLE}"
    assert client.get(f"/faq/{SAMPLE}/qr.png?kind=fax").status_code == 400
    assert client.get(f"/faq/{SAMPLE}/qr.svg?t=NO!").status_code == 400


def test_without_a_telegram_username_only_the_web_link_is_shared(answers):
    with _client(answers, username=None) as client:
        page = _page(client, f"/faq/{SAMPLE}")
        assert not any("t.me" in link for link in page.links)
        assert len(page.svgs) == 1
        assert client.get(f"/faq/{SAMPLE}/qr.png?kind=telegram").status_code == 404


def test_a_document_no_longer_in_force_is_marked(answers):
    # Judged on a day before Luật HTX 2023 took effect, its references are not current.
    with _client(answers, today=lambda: dt.date(2024, 1, 1)) as client:
        page = _page(client, f"/faq/{SAMPLE}")
        assert "chưa có hiệu lực" in page.text
        assert "văn bản không còn hiệu lực" in page.text
        article = _page(client, "/luat/17-2023-qh15/33")
        assert "Hiệu lực: chưa có hiệu lực" in article.text
    with _client(answers) as client:
        assert "không còn hiệu lực" not in _page(client, f"/faq/{SAMPLE}").text


def test_each_topic_handout_is_a_pdf(client):
    response = client.get("/faq/chu-de/ocop/tai-lieu.pdf")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert client.get("/faq/chu-de/khong_co/tai-lieu.pdf").status_code == 404


def test_searches_take_from_the_web_chats_message_limits(answers):
    gate = Floodgate(WebLimits(messages_per_ip_minute=2, messages_per_second=50))
    settings = Settings(_env_file=None, public_base_url=PUBLIC)  # type: ignore[call-arg]
    routes = faq_routes(answers, settings, floodgate=gate)
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)])
    with TestClient(app) as client:
        assert client.get("/faq?q=von+gop").status_code == 200
        assert client.get("/faq?q=von+gop").status_code == 200
        refused = client.get("/faq?q=von+gop")
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "Bạn gửi nhanh quá" in refused.text
        assert client.get("/faq/htx_la_gi").status_code == 200  # pages are not searches
