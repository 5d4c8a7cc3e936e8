"""Printable handouts: knowledge-base entries as an A4 PDF with a QR code to each full answer.

A trainer hands these out in a training hall: a cover (title, date, where to ask),
then for each entry its title, a short answer, its legal basis with the date it was
last checked, and a QR code to the entry's web page with the address printed under
it. Unconfirmed entries carry a caveat; answers that cite a document not in force
carry the chat's warning. Built with reportlab's platypus; the DejaVu Sans fonts
(Debian package ``fonts-dejavu-core``) are embedded so every Vietnamese diacritic
prints. Served by ``GET /faq/chu-de/<category>/tai-lieu.pdf`` and written by
``coopbot faq handout``.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Image,
    KeepTogether,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from bot.answers.links import entry_links, qr_png
from bot.answers.render import stale_warnings
from bot.clock import format_date
from knowledge.base import Entry, KnowledgeBase
from knowledge.law.corpus import LegalCorpus

__all__ = [
    "FONT_DIRS",
    "FONT_PACKAGE",
    "MORE",
    "SHORT_ANSWER_CHARS",
    "HandoutFontError",
    "build_handout",
    "register_fonts",
    "short_answer",
]

FONT_PACKAGE: Final = "fonts-dejavu-core"
# Where Debian (and Ubuntu) put the package's files; then other distributions' places.
FONT_DIRS: Final = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
)
_REGULAR: Final = "DejaVuSans"
_BOLD: Final = "DejaVuSans-Bold"
SHORT_ANSWER_CHARS: Final = 380  # a short answer is at most this long (before the "…")
QR_WIDTH: Final = 3.0 * cm
_QR_COLUMN: Final = 4.2 * cm
_MARGIN: Final = 1.8 * cm
_GREY: Final = colors.HexColor("#555555")
_SENTENCE_END: Final = re.compile(r"[.!?](?=\s)")
CAVEAT: Final = (
    "⚠ Nội dung này chưa được đối chiếu đủ với văn bản gốc. Trước khi làm theo, hãy hỏi lại "
    "cơ quan có thẩm quyền hoặc nhắn /lienhe để cán bộ hỗ trợ."
)
MORE: Final = "(Quét mã QR để đọc câu trả lời đầy đủ.)"


class HandoutFontError(RuntimeError):
    """A font the handout embeds is not installed."""


@functools.cache
def register_fonts() -> None:
    """Registers DejaVu Sans and DejaVu Sans Bold with reportlab (once per process).

    Raises:
        HandoutFontError: a font file is in none of :data:`FONT_DIRS`; the message names
            the file and the Debian package to install.
    """
    for name in (_REGULAR, _BOLD):
        file = f"{name}.ttf"
        path = next((d / file for d in FONT_DIRS if (d / file).is_file()), None)
        if path is None:
            raise HandoutFontError(
                f"font file {file} not found (looked in {', '.join(map(str, FONT_DIRS))}); "
                f"install the Debian package {FONT_PACKAGE} (apt-get install {FONT_PACKAGE}, "
                "or run scripts/ensure-fonts)"
            )
        pdfmetrics.registerFont(TTFont(name, str(path)))
    pdfmetrics.registerFontFamily(_REGULAR, normal=_REGULAR, bold=_BOLD)


def short_answer(answer: str, limit: int = SHORT_ANSWER_CHARS) -> tuple[str, bool]:
    """The start of an answer for paper, and whether anything was left out.

    Whole lines (the first paragraph, then the next while they fit in ``limit``
    characters); a first paragraph longer than ``limit`` is cut after its last
    sentence that fits (or, with no sentence end, at a word, with "…").
    """
    lines = [line.strip() for line in answer.splitlines() if line.strip()]
    if not lines:
        return "", False
    kept: list[str] = []
    size = 0
    for line in lines:
        if kept and size + len(line) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    cut = len(kept) < len(lines)
    first = kept[0]
    if len(first) > limit:
        ends = [m.end() for m in _SENTENCE_END.finditer(first, 0, limit) if m.end() > limit // 3]
        first = first[: ends[-1]] if ends else first[:limit].rsplit(" ", 1)[0] + " …"
        kept, cut = [first], True
    return "\n".join(kept), cut


def _styles() -> dict[str, ParagraphStyle]:
    body = ParagraphStyle("body", fontName=_REGULAR, fontSize=10, leading=13.5)
    return {
        "body": body,
        "cover_title": ParagraphStyle(
            "cover_title", parent=body, fontName=_BOLD, fontSize=22, leading=28, spaceAfter=10
        ),
        "cover_date": ParagraphStyle("cover_date", parent=body, fontSize=12, spaceAfter=18),
        "heading": ParagraphStyle(
            "heading", parent=body, fontName=_BOLD, fontSize=13, leading=17, spaceAfter=4
        ),
        "topic": ParagraphStyle(
            "topic",
            parent=body,
            fontName=_BOLD,
            fontSize=14,
            leading=18,
            spaceBefore=6,
            spaceAfter=6,
            textColor=colors.HexColor("#1f4e79"),
        ),
        "title": ParagraphStyle(
            "title", parent=body, fontName=_BOLD, fontSize=11.5, leading=15, spaceAfter=3
        ),
        "small": ParagraphStyle("small", parent=body, fontSize=8.5, leading=11, textColor=_GREY),
        "caveat": ParagraphStyle(
            "caveat", parent=body, fontSize=9, leading=12, textColor=colors.HexColor("#8a3b00")
        ),
        "url": ParagraphStyle(
            "url", parent=body, fontSize=6.5, leading=8, alignment=1, textColor=_GREY
        ),
    }


def _para(text: str, style: ParagraphStyle) -> Paragraph:
    """A paragraph of plain text (escaped for reportlab's markup; line breaks kept)."""
    return Paragraph(escape(text).replace("\n", "<br/>"), style)


def _cover(
    entries: Sequence[Entry],
    kb: KnowledgeBase,
    base_url: str,
    telegram_username: str | None,
    title: str,
    today: dt.date,
    styles: dict[str, ParagraphStyle],
) -> list[Any]:
    topics = list(dict.fromkeys(kb.category_title(e.category) for e in entries))
    ask = [
        f"• Trên web: mở {base_url}/ và gõ câu hỏi, có dấu hay không dấu đều được.",
        (
            f"• Trên Telegram: tìm @{telegram_username} (https://t.me/{telegram_username}) "
            "và nhắn câu hỏi."
            if telegram_username
            else "• Trên Telegram: nhắn câu hỏi cho Trợ lý HTX."
        ),
        "• Trên Zalo: nhắn câu hỏi cho Trợ lý HTX của Liên minh HTX.",
        "• Cần cán bộ trả lời: gõ /lienhe kèm câu hỏi, cán bộ Liên minh HTX sẽ liên hệ lại.",
    ]
    return [
        Spacer(1, 3 * cm),
        _para(title, styles["cover_title"]),
        _para(f"Ngày: {format_date(today)}", styles["cover_date"]),
        _para(
            f"Tài liệu gồm {len(entries)} câu hỏi thường gặp của Trợ lý HTX, theo các chủ đề: "
            + "; ".join(topics)
            + ".",
            styles["body"],
        ),
        Spacer(1, 0.4 * cm),
        _para(
            "Mỗi câu hỏi có câu trả lời ngắn, căn cứ pháp lý và ngày cập nhật. Quét mã QR bên "
            "cạnh bằng camera điện thoại để đọc câu trả lời đầy đủ, căn cứ và các câu hỏi liên "
            "quan.",
            styles["body"],
        ),
        Spacer(1, 1 * cm),
        _para("Hỏi thêm ở đâu?", styles["heading"]),
        *(_para(line, styles["body"]) for line in ask),
        Spacer(1, 1 * cm),
        _para(
            "Tài liệu này tóm tắt để tham khảo. Khi cần quyết định quan trọng, hãy đọc văn bản "
            "gốc hoặc hỏi cán bộ, cơ quan đăng ký.",
            styles["small"],
        ),
        PageBreak(),
    ]


def _warnings(entry: Entry, corpus: LegalCorpus, today: dt.date) -> list[str]:
    """The chat's warnings on cited documents not in force (DejaVu has no emoji variant)."""
    return [line.replace("⚠️", "⚠") for line in stale_warnings(entry, corpus, today)]


def _entry_block(
    number: int,
    entry: Entry,
    corpus: LegalCorpus,
    base_url: str,
    today: dt.date,
    styles: dict[str, ParagraphStyle],
    text_width: float,
) -> Table:
    answer, cut = short_answer(entry.answer)
    left: list[Any] = [
        _para(f"{number}. {entry.title}", styles["title"]),
        _para(answer, styles["body"]),
    ]
    if cut:
        left.append(_para(MORE, styles["small"]))
    left.append(Spacer(1, 3))
    left.append(_para(f"Căn cứ: {corpus.cite(entry.basis)}", styles["small"]))
    left.append(_para(f"Cập nhật: {format_date(entry.checked)}", styles["small"]))
    notes = [CAVEAT] if entry.unconfirmed else []
    notes += _warnings(entry, corpus, today)
    left += [_para(note, styles["caveat"]) for note in notes]
    url = entry_links(base_url, entry.id).web
    qr = Image(io.BytesIO(qr_png(url).png), width=QR_WIDTH, height=QR_WIDTH)
    href = escape(url, {'"': "&quot;"})
    link = Paragraph(f'<a href="{href}">{escape(url)}</a>', styles["url"])
    table = Table(
        [[left, [qr, link]]], colWidths=[text_width - _QR_COLUMN, _QR_COLUMN], hAlign="LEFT"
    )
    table.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("ALIGN", (1, 0), (1, 0), "CENTER"),
                ("LEFTPADDING", (0, 0), (0, 0), 0),
                ("LINEBELOW", (0, 0), (-1, -1), 0.5, colors.HexColor("#bbbbbb")),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 8),
                ("TOPPADDING", (0, 0), (-1, -1), 6),
            ]
        )
    )
    return table


def _canvas_maker(footer: str) -> type[Canvas]:
    """A canvas class that prints ``footer`` and "Trang X/Y" at the foot of every page."""

    class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab has no type hints
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:  # reportlab's name
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self.setFont(_REGULAR, 8)
                self.setFillColor(_GREY)
                self.drawString(_MARGIN, 1.0 * cm, footer)
                self.drawRightString(A4[0] - _MARGIN, 1.0 * cm, f"Trang {self._pageNumber}/{total}")
                super().showPage()
            super().save()

    return NumberedCanvas


def build_handout(
    entries: Sequence[Entry],
    *,
    kb: KnowledgeBase,
    corpus: LegalCorpus,
    base_url: str,
    telegram_username: str | None,
    title: str,
    today: dt.date,
) -> bytes:
    """The handout of ``entries`` (in this order) as the bytes of an A4 PDF.

    Args:
        entries: the entries to print, at least one.
        kb: the knowledge base (topic titles).
        corpus: the legal corpus (the basis lines and the documents' validity on ``today``).
        base_url: the public base URL (no trailing slash) of the FAQ pages the QR codes open.
        telegram_username: the bot's Telegram username for the cover, if configured.
        title: the handout's title (the cover, the footer, the PDF's metadata).
        today: the date printed on the cover; documents are checked as of this day.

    Raises:
        ValueError: no entries.
        HandoutFontError: the DejaVu fonts are not installed.
    """
    if not entries:
        raise ValueError("a handout needs at least one entry")
    register_fonts()
    base_url = base_url.rstrip("/")
    styles = _styles()
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=_MARGIN,
        rightMargin=_MARGIN,
        topMargin=_MARGIN,
        bottomMargin=_MARGIN + 0.4 * cm,
        title=title,
        author="Trợ lý HTX",
        subject="Tài liệu hỏi đáp",
        lang="vi",
    )
    story = _cover(entries, kb, base_url, telegram_username, title, today, styles)
    topic = None
    for number, entry in enumerate(entries, start=1):
        block = _entry_block(number, entry, corpus, base_url, today, styles, doc.width)
        if entry.category != topic:
            topic = entry.category
            heading = _para(kb.category_title(topic), styles["topic"])
            story.append(KeepTogether([heading, block]))
        else:
            story.append(block)
    footer = f"{title} · {format_date(today)}"
    doc.build(story, canvasmaker=_canvas_maker(footer))
    return buffer.getvalue()
