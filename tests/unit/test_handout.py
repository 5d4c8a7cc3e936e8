"""The printable handout: its text, its QR codes (decoded), its command line and its errors."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import pypdf
import pytest
import typer
import zxingcpp
from pypdf.generic import ContentStream
from starlette.applications import Starlette
from typer.testing import CliRunner

from bot.answers.links import entry_links
from bot.app import Knowledge, build_answers
from bot.cli.faq import faq_app
from bot.clock import format_date
from bot.nlu_model.service import free_port
from bot.settings import Settings
from bot.web import handout
from bot.web.faq import faq_routes
from bot.web.handout import CAVEAT, MORE, HandoutFontError, build_handout, short_answer
from knowledge.base import Entry
from tests.serving import serve_app

BASE = "https://hotro.example.vn"
TODAY = dt.date(2026, 12, 15)


@dataclass(frozen=True)
class ReadHandout:
    """What a reader finds in a handout: each page's text and the QR codes it decodes."""

    pages: list[str]
    qr: list[list[str]]  # per page, the text of every QR code found in its images
    images: int  # images in the whole document
    widths: list[float]  # the width (cm) each image is drawn at, in the whole document

    @property
    def text(self) -> str:
        return "\n".join(self.pages)

    @property
    def flat(self) -> str:
        """The text with runs of white space as one space (lines wrap where they like)."""
        return " ".join(self.text.split())


def read_handout(pdf: bytes) -> ReadHandout:
    """Extracts the text of every page and decodes the QR codes of every image (pypdf, zxing)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    pages, codes, images, widths = [], [], 0, []
    for page in reader.pages:
        pages.append(page.extract_text())
        scale = 0.0
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"cm":  # the last transform before an image scales it to its size
                scale = float(operands[0])
            elif operator == b"Do":
                widths.append(scale / 72 * 2.54)
        found = []
        for image in page.images:
            images += 1
            found += [code.text for code in zxingcpp.read_barcodes(image.image)]
        codes.append(found)
    return ReadHandout(pages, codes, images, widths)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def knowledge() -> Knowledge:
    return Knowledge.load()


def make(knowledge: Knowledge, entries: list[Entry], title: str = "Tài liệu tập huấn") -> bytes:
    return build_handout(
        entries,
        kb=knowledge.kb,
        corpus=knowledge.corpus,
        base_url=BASE,
        telegram_username="HtxTroLyBot",
        title=title,
        today=TODAY,
    )


def check_entries(read: ReadHandout, knowledge: Knowledge, entries: list[Entry]) -> None:
    """Every entry's title, basis and date are there, and exactly one QR code to its page.

    The QR code of an entry is on the page that prints its title.
    """
    text = read.flat
    for entry in entries:
        assert flat(entry.title) in text, entry.id
        assert flat(f"Căn cứ: {knowledge.corpus.cite(entry.basis)}") in text, entry.id
        assert f"Cập nhật: {format_date(entry.checked)}" in text, entry.id
        short, cut = short_answer(entry.answer)
        assert flat(short) in text, entry.id
        if cut:  # a short answer, never the whole text
            assert flat(entry.answer) not in text, entry.id
    cut_count = sum(short_answer(e.answer)[1] for e in entries)
    assert text.count(flat(MORE)) == cut_count
    decoded = [url for page in read.qr for url in page]
    expected = [entry_links(BASE, e.id).web for e in entries]
    assert sorted(decoded) == sorted(expected)  # exactly one per entry, none other
    assert read.images == len(entries)
    assert len(read.widths) == len(entries) and min(read.widths) >= 2.5  # cm
    by_url = {entry_links(BASE, e.id).web: e for e in entries}
    for page_text, urls in zip(read.pages, read.qr, strict=True):
        for url in urls:
            assert flat(by_url[url].title) in flat(page_text), url
            # The address is printed under the code (wrapped anywhere inside the column).
            assert url in re.sub(r"\s+", "", page_text)


def test_topic_handout_has_cover_entries_bases_dates_and_a_qr_code_each(knowledge):
    entries = list(knowledge.kb.in_category("thanh_vien"))
    assert len(entries) >= 10
    read = read_handout(make(knowledge, entries, "Hỏi đáp: Thành viên và thành lập HTX"))
    cover = flat(read.pages[0])
    assert "Hỏi đáp: Thành viên và thành lập HTX" in cover
    assert "Ngày: 15/12/2026" in cover
    assert "Hỏi thêm ở đâu?" in cover
    assert "@HtxTroLyBot" in cover and "/lienhe" in cover and "Zalo" in cover
    assert f"{BASE}/" in cover
    assert read.qr[0] == []  # the cover has no code
    assert "Thành viên và thành lập HTX" in flat(read.pages[1])  # the topic's heading
    check_entries(read, knowledge, entries)
    count = len(read.pages)
    for number, page in enumerate(read.pages, start=1):
        assert f"Trang {number}/{count}" in page


def test_forty_entries_with_the_unconfirmed_ones_carry_the_caveat(knowledge):
    unconfirmed = [e for e in knowledge.kb if e.unconfirmed]
    assert unconfirmed
    others = [e for e in knowledge.kb if not e.unconfirmed]
    entries = unconfirmed + others[: 40 - len(unconfirmed)]
    assert len(entries) == 40
    read = read_handout(make(knowledge, entries))
    check_entries(read, knowledge, entries)
    assert read.flat.count(flat(CAVEAT)) == len(unconfirmed)
    numbered = [f"{i}. {flat(e.title)}" for i, e in enumerate(entries, start=1)]
    positions = [read.flat.index(n) for n in numbered]
    assert positions == sorted(positions)  # printed in the order given


def test_a_short_answer_is_cut_at_a_sentence_or_a_line():
    sentence = "Câu thứ nhất nói về vốn góp của thành viên HTX. "
    one_paragraph = sentence * 12
    text, cut = short_answer(one_paragraph, limit=200)
    assert cut and text.endswith("HTX.") and len(text) <= 200
    assert one_paragraph.startswith(text)
    lines = "Hồ sơ gồm:\n• Giấy đề nghị\n• Điều lệ\n" + "• Một dòng dài của danh sách\n" * 20
    text, cut = short_answer(lines, limit=80)
    assert cut and text.startswith("Hồ sơ gồm:\n• Giấy đề nghị\n• Điều lệ") and len(text) <= 80
    assert short_answer("Một câu trả lời ngắn.\nDòng hai.") == (
        "Một câu trả lời ngắn.\nDòng hai.",
        False,
    )
    text, cut = short_answer("không có dấu câu nào " * 30, limit=100)
    assert cut and text.endswith(" …") and len(text) <= 102


def test_every_entry_short_answer_is_a_start_of_its_answer(knowledge):
    cut_any = False
    for entry in knowledge.kb:
        text, cut = short_answer(entry.answer)
        assert 20 <= len(text) <= handout.SHORT_ANSWER_CHARS + 2, entry.id
        start = text.removesuffix(" …")
        assert flat(entry.answer).startswith(flat(start)), entry.id
        cut_any |= cut
    assert cut_any


def test_missing_font_names_the_file_and_the_package(monkeypatch, tmp_path):
    monkeypatch.setattr(handout, "FONT_DIRS", (tmp_path,))
    with pytest.raises(HandoutFontError, match=r"DejaVuSans\.ttf.*fonts-dejavu-core"):
        handout.register_fonts.__wrapped__()


def test_no_entries_is_an_error(knowledge):
    with pytest.raises(ValueError, match="at least one entry"):
        make(knowledge, [])


# -- the command line ---------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Runs ``coopbot faq ...`` in-process with the settings of this test only."""
    monkeypatch.chdir(tmp_path)  # no .env
    monkeypatch.setenv("PUBLIC_BASE_URL", f"{BASE}/")
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@HtxTroLyBot")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    app = typer.Typer()
    app.add_typer(faq_app, name="faq")

    def run(*args: str):
        return CliRunner().invoke(app, ["faq", *args])

    return run


def test_cli_writes_topics_then_listed_entries_once(cli, knowledge, tmp_path):
    von = list(knowledge.kb.in_category("von"))
    extra = next(e for e in knowledge.kb if e.category not in {"von", "quan_tri"})
    quan_tri = list(knowledge.kb.in_category("quan_tri"))
    out = tmp_path / "tai-lieu.pdf"
    result = cli(
        "handout", "--topic", "von", "--topic", "quan_tri",
        "--entries", f"{von[0].id}, {extra.id},{extra.id}", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    expected = [*von, *quan_tri, extra]
    assert f"{len(expected)} câu hỏi" in result.output
    read = read_handout(out.read_bytes())
    check_entries(read, knowledge, expected)
    numbered = [read.flat.index(f"{i}. {flat(e.title)}") for i, e in enumerate(expected, 1)]
    assert numbered == sorted(numbered)
    assert "@HtxTroLyBot" in read.pages[0] and "Hỏi đáp về hợp tác xã" in read.pages[0]


def test_cli_one_topic_is_the_title(cli, knowledge, tmp_path):
    out = tmp_path / "ocop.pdf"
    result = cli("handout", "-t", "ocop", "-o", str(out))
    assert result.exit_code == 0, result.output
    read = read_handout(out.read_bytes())
    assert "Hỏi đáp: Chương trình OCOP" in read.pages[0]
    check_entries(read, knowledge, list(knowledge.kb.in_category("ocop")))


def test_cli_without_selection_prints_every_entry(cli, knowledge, tmp_path):
    out = tmp_path / "all.pdf"
    result = cli("handout", "--out", str(out))
    assert result.exit_code == 0, result.output
    read = read_handout(out.read_bytes())
    assert read.images == len(knowledge.kb)
    assert sorted(url for page in read.qr for url in page) == sorted(
        entry_links(BASE, e.id).web for e in knowledge.kb
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--topic", "von", "--topic", "khong_co"], "'khong_co'"),
        (["--entries", "von_gop_toi_da_x,ten_htx"], "'von_gop_toi_da_x'"),
        (["--topic", "Von"], "'Von'"),
    ],
)
def test_cli_unknown_topic_or_entry_exits_2_and_writes_nothing(cli, tmp_path, args, named):
    out = tmp_path / "x.pdf"
    result = cli("handout", *args, "--out", str(out))
    assert result.exit_code == 2
    assert named in result.stderr and "Không có" in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_cli_missing_directory_exits_2(cli, tmp_path):
    out = tmp_path / "nowhere" / "x.pdf"
    result = cli("handout", "--topic", "ocop", "--out", str(out))
    assert result.exit_code == 2 and "nowhere" in result.stderr
    assert not out.parent.exists()


def test_cli_requires_out(cli):
    assert cli("handout", "--topic", "ocop").exit_code == 2


# -- the pages the codes open ------------------------------------------------------------


@contextmanager
def serve_faq(knowledge: Knowledge) -> Iterator[str]:
    """The public FAQ pages served over HTTP on 127.0.0.1 (lexical answers); yields the base."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(_env_file=None, public_base_url=base, web_port=port)  # type: ignore[call-arg]
    app = Starlette(routes=faq_routes(build_answers(settings, knowledge, None, None), settings))
    with serve_app(app, port) as url:
        assert url == base
        yield base


@pytest.fixture(scope="module")
def faq_site(knowledge: Knowledge) -> Iterator[str]:
    with serve_faq(knowledge) as base:
        with httpx.Client(trust_env=False) as client:
            assert client.get(f"{base}/faq").status_code == 200
        yield base


def check_pages_answer(read: ReadHandout, entries: list[Entry]) -> None:
    """Every code decodes to a URL whose page answers 200 and shows the entry's title."""
    urls = [url for page in read.qr for url in page]
    assert len(urls) == len(entries)
    titles = {e.id: e.title for e in entries}
    with httpx.Client(trust_env=False, timeout=30) as client:
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            entry_id = url.rsplit("/", 1)[1]
            assert titles[entry_id] in html.unescape(response.text), url


def test_every_code_of_a_forty_entry_handout_opens_a_page_that_answers_200(knowledge, faq_site):
    entries = list(knowledge.kb)[:40]
    pdf = build_handout(
        entries,
        kb=knowledge.kb,
        corpus=knowledge.corpus,
        base_url=faq_site,
        telegram_username=None,
        title="Tài liệu tập huấn",
        today=TODAY,
    )
    check_pages_answer(read_handout(pdf), entries)


def test_the_topic_page_serves_its_handout_and_its_codes_open_pages(knowledge, faq_site):
    with httpx.Client(trust_env=False, timeout=60) as client:
        response = client.get(f"{faq_site}/faq/chu-de/von/tai-lieu.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/pdf")
    read = read_handout(response.content)
    entries = list(knowledge.kb.in_category("von"))
    assert "Vốn góp" in read.pages[0] and "Telegram" in read.pages[0]
    check_pages_answer(read, entries)


def test_rendered_pages_show_every_code_readable_and_nothing_off_the_page(knowledge):
    """The pages as a reader sees them (drawn by PDFium): each code scans from the picture."""
    import pypdfium2

    entries = list(knowledge.kb.in_category("von"))[:6]
    document = pypdfium2.PdfDocument(make(knowledge, entries))
    scanned: list[str] = []
    for index in range(len(document)):
        page = document[index]
        width, height = page.get_size()
        assert (round(width), round(height)) == (595, 842)  # A4 in points
        image = page.render(scale=2).to_pil().convert("L")
        inked = image.point(lambda value: 255 if value < 128 else 0).getbbox()
        assert inked is not None  # something is drawn on every page
        left, top, right, bottom = inked
        margin = 2 * 14  # 5 mm at scale 2: nothing where a printer cannot print
        assert left >= margin and top >= margin
        assert right <= image.width - margin and bottom <= image.height - margin
        scanned += [found.text for found in zxingcpp.read_barcodes(image)]
    assert sorted(scanned) == sorted(entry_links(BASE, e.id).web for e in entries)
