"""What the public FAQ and law pages show, and the Jinja2 templates that render it.

Pure functions of the knowledge base, the legal corpus and the day: the routes
(:mod:`bot.web.faq`) read the request and call these. Every template extends
``base.html`` (``lang="vi"``, the viewport, the canonical URL, the stylesheet);
autoescaping is on, so entry and law texts are always escaped. The only markup
not written in a template is a QR code's SVG, which ``segno`` draws.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import jinja2
from markupsafe import Markup
from starlette.responses import Response

from bot.answers.links import EntryLinks, qr_svg
from bot.clock import format_date, format_timestamp, local, utcnow
from knowledge.base import Entry, KnowledgeBase
from knowledge.law.corpus import LegalCorpus, UnresolvedReference
from knowledge.law.parser import POINT_LETTERS, Article
from knowledge.law.references import Reference
from knowledge.law.register import Document

__all__ = [
    "STATIC_DIR",
    "BasisItem",
    "Line",
    "ShareCode",
    "article_blocks",
    "article_href",
    "basis_items",
    "entry_href",
    "lines_of",
    "related_entries",
    "render",
    "share_codes",
]

WEB_DIR: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = WEB_DIR / "templates"
STATIC_DIR: Final = WEB_DIR / "static"

_ENV: Final = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)
_ENV.filters["date_vn"] = format_date
_ENV.filters["when"] = format_timestamp
# A point line of a clause: "a) ...", "đ) ...", "a.1) ..." (sub-points of NĐ 252/2026).
_POINT_LINE: Final = re.compile(rf"^([{POINT_LETTERS}](?:\.\d+)?)\)\s")
_KIND_LABELS: Final = {
    "web": "Trang web (gửi qua Zalo, Facebook, tin nhắn...)",
    "telegram": "Telegram",
}


def render(template: str, **context: Any) -> str:
    """Renders ``templates/<template>`` with ``context`` (a missing variable is an error)."""
    return _ENV.get_template(template).render(**context)


def lines_of(text: str | None) -> list[str]:
    """The non-empty lines of ``text``: one paragraph each."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def entry_href(entry_id: str) -> str:
    """The path of an entry's page."""
    return f"/faq/{quote(entry_id)}"


def _anchor(ref: Reference) -> str:
    if ref.clause is not None:
        return f"k{ref.clause}" + (f"-{ref.point}" if ref.point else "")
    return f"diem-{ref.point}" if ref.point else ""


def article_href(doc: Document, article: int, anchor: str = "") -> str:
    """The path of an article's page, with ``#anchor`` when given."""
    return f"/luat/{doc.slug}/{article}" + (f"#{quote(anchor)}" if anchor else "")


# -- an entry ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BasisItem:
    """One reference of an entry's basis, as the page shows it.

    ``href`` links to the quoted clause on its article page (None: we hold no
    text for it); ``status`` is set when the document is not in force today, with
    its ``successor`` (name, and path when we hold its text).
    """

    label: str
    href: str | None
    quote: tuple[str, ...]
    status: str | None
    successor: str | None
    successor_href: str | None


def basis_items(refs: Iterable[Reference], corpus: LegalCorpus, day: dt.date) -> list[BasisItem]:
    """References (an entry's basis), each with its link, its verbatim text and its validity."""
    items = []
    for ref in refs:
        doc = corpus.register.get(ref.doc)
        if doc is None:  # the knowledge check refuses this; shown plainly all the same
            items.append(BasisItem(ref.id, None, (), None, None, None))
            continue
        label = f"{doc.name}, {ref.label}" if ref.label else doc.name
        try:
            quoted = corpus.resolve(ref)
        except UnresolvedReference:
            quoted = None
        href = article_href(doc, quoted.article.number, _anchor(ref)) if quoted else None
        status = successor = successor_href = None
        if not doc.in_force_on(day):
            status = doc.status_on(day).label
            after = corpus.register.get(doc.replaced_by) if doc.replaced_by else None
            if after is not None:
                successor = after.name
                successor_href = f"/luat/{after.slug}" if after.has_text else None
        text = tuple(lines_of(quoted.text)) if quoted else ()
        items.append(BasisItem(label, href, text, status, successor, successor_href))
    return items


@dataclass(frozen=True, slots=True)
class ShareCode:
    """One way to open an entry: its link, its QR code (inline SVG) and where to download it."""

    kind: str
    label: str
    url: str
    svg: Markup
    png_href: str
    svg_href: str


@functools.lru_cache(maxsize=2048)
def _inline_qr(url: str, title: str) -> Markup:
    # segno writes the SVG (escaping the title): trusted markup, cached per URL.
    return Markup(qr_svg(url, scale=4, title=title))


def share_codes(links: EntryLinks, trainer_code: str | None) -> list[ShareCode]:
    """The entry's web link (Zalo's too) and, when configured, its Telegram deep link."""
    codes = []
    for kind, url in (("web", links.web), ("telegram", links.telegram)):
        if url is None:
            continue
        query = f"?kind={kind}" + (f"&t={trainer_code}" if trainer_code else "")
        path = entry_href(links.entry_id)
        title = f"Mã QR: {_KIND_LABELS[kind]}"
        codes.append(
            ShareCode(
                kind,
                _KIND_LABELS[kind],
                url,
                _inline_qr(url, title),
                f"{path}/qr.png{query}",
                f"{path}/qr.svg{query}",
            )
        )
    return codes


def related_entries(entry: Entry, kb: KnowledgeBase) -> list[Entry]:
    """The entries an entry points to, in its order."""
    return [e for r in entry.related if (e := kb.get(r)) is not None]


# -- an article ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """One paragraph of an article, with its anchor (a point's) when it starts one."""

    text: str
    anchor: str | None = None


@dataclass(frozen=True, slots=True)
class ClauseBlock:
    """A clause of an article: its anchor (``k1``) and its paragraphs, verbatim."""

    anchor: str
    lines: tuple[Line, ...]


def _lines(text: str, prefix: str, labels: set[str]) -> tuple[Line, ...]:
    lines, seen = [], set()
    for paragraph in lines_of(text):
        match = _POINT_LINE.match(paragraph)
        label = match.group(1) if match else None
        anchor = None
        if label is not None and label in labels and label not in seen:
            seen.add(label)
            anchor = f"{prefix}{label}"
        lines.append(Line(paragraph, anchor))
    return tuple(lines)


def article_blocks(article: Article) -> tuple[tuple[Line, ...], list[ClauseBlock]]:
    """An article's text as paragraphs: the lines before its clauses, then each clause.

    Clauses are anchored ``k<n>``, their points ``k<n>-<letter>`` (``k1-đ``,
    ``k1-a.1``) and the points of an article without clauses ``diem-<letter>``:
    the anchors of :func:`basis_items` links.
    """
    if not article.clauses:
        labels = {p.label for p in article.points} | {
            s.label for p in article.points for s in p.subpoints
        }
        return _lines(article.text, "diem-", labels), []
    clauses = []
    for clause in article.clauses:
        labels = {p.label for p in clause.points} | {
            s.label for p in clause.points for s in p.subpoints
        }
        anchor = f"k{clause.number}"
        clauses.append(ClauseBlock(anchor, _lines(clause.text, f"{anchor}-", labels)))
    return _lines(article.intro, "", set()), clauses


def vietnam_today() -> dt.date:
    """Today in Vietnam (the day documents' validity is judged on)."""
    return local(utcnow()).date()


def bad_request(message: str) -> Response:
    """A plain-text 400."""
    return Response(message, status_code=400, media_type="text/plain")


def qr_headers(name: str, extension: str) -> dict[str, str]:
    """Headers of a QR code download: cached for a day, shown inline as ``name.extension``."""
    return {
        "Cache-Control": "public, max-age=86400",
        "Content-Disposition": f'inline; filename="{name}.{extension}"',
    }
