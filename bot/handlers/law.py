"""The law verbatim in chat: "📜 Nguyên văn" under an answer, and ``/dieu <số> [văn bản]``.

Everything shown here is the source text itself, marked as a quote and named
(document, article heading); nothing is paraphrased. Long texts are paged so
that one page fits in one message on every channel (Zalo's limit is 2,000
characters), with ◀ / ▶ choices (numbers on Zalo).

Payloads: ``law:<entry_id>:<page>`` (the quotes of an entry's basis) and
``dieu:<document-slug>:<article>:<page>`` (an article).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from bot.answers.texts import QUOTE_MARK
from bot.handlers.base import ButtonPrefix, Command, Handler, Services
from bot.replies import Button, Reply
from bot.store.members import MemberInfo
from knowledge.base import KnowledgeBase
from knowledge.law.corpus import LegalCorpus, Quote
from knowledge.law.register import Document

__all__ = ["DEFAULT_DOCUMENT", "HANDLER", "PAGE_CHARS", "LawChat", "paginate"]

DEFAULT_DOCUMENT: Final = "17/2023/QH15"
# One page of quoted text; the header and footer add at most ~300 characters.
PAGE_CHARS: Final = 1600
STALE: Final = "Lựa chọn này không còn hiệu lực. Gõ /help để xem các lệnh."
_DIEU_ARGS = re.compile(r"^(?:điều|dieu|đ)?\s*(\d{1,3})(?:\s+(.+))?$", re.IGNORECASE)


def paginate(blocks: list[str], limit: int = PAGE_CHARS) -> list[str]:
    """Packs text blocks into pages of at most ``limit`` characters, cutting long blocks at lines.

    A single line longer than the limit is cut at spaces; no character is lost
    or changed, so the pages joined with line breaks give back the text.
    """
    lines: list[str] = []
    for block in blocks:
        for line in block.split("\n"):
            while len(line) > limit:
                cut = line.rfind(" ", 0, limit)
                cut = cut if cut > 0 else limit
                lines.append(line[:cut])
                line = line[cut:].lstrip(" ")
            lines.append(line)
        lines.append("")
    pages: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) + 1 > limit:
            pages.append("\n".join(current).strip("\n"))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if any(line for line in current):
        pages.append("\n".join(current).strip("\n"))
    return pages or [""]


class LawChat:
    """Shows cited clauses and whole articles verbatim."""

    def __init__(self, corpus: LegalCorpus, kb: KnowledgeBase) -> None:
        """Uses the corpus for texts and the knowledge base for entries' references."""
        self.corpus = corpus
        self.kb = kb

    # -- "📜 Nguyên văn" under an answer ---------------------------------------------------

    def quotes(self, rest: str) -> Reply:
        """The verbatim basis of an entry (``law:<entry_id>[:<page>]``), paged."""
        entry_id, _, page_text = rest.partition(":")
        entry = self.kb.get(entry_id)
        quotes = self.corpus.quotes(entry.basis) if entry else []
        if entry is None or not quotes:
            return Reply(STALE, notice=True)
        blocks = [_quote_block(q) for q in quotes]
        pages = paginate(blocks)
        page = _page_number(page_text, len(pages))
        header = f"{QUOTE_MARK} căn cứ pháp lý của «{entry.title}»:"
        text = f"{header}\n\n{pages[page]}"
        return self._paged(text, page, len(pages), f"law:{entry.id}", first_page=page == 0)

    # -- /dieu -------------------------------------------------------------------------------

    def command(self, args: str) -> Reply:
        """``/dieu 33``, ``/dieu 33 295/2026``: an article, paged; alone: how to use it."""
        match = _DIEU_ARGS.match(args.strip())
        if not match:
            return Reply(self._usage())
        number = int(match.group(1))
        wanted = (match.group(2) or "").strip()
        doc = (
            self.corpus.register.find(wanted) if wanted else self.corpus.document(DEFAULT_DOCUMENT)
        )
        if doc is None:
            return Reply(f"Mình không biết văn bản «{wanted}».\n\n{self._usage()}")
        return self._article(doc, number, 0, first_page=True)

    def page(self, rest: str) -> Reply:
        """A page of an article (``dieu:<slug>:<article>:<page>``).

        Without the page (``dieu:<slug>:<article>``, the "full article" choice under
        a quoted clause) the article's first page comes as a new message.
        """
        parts = rest.split(":")
        if len(parts) not in (2, 3) or not parts[1].isdigit():
            return Reply(STALE, notice=True)
        doc = self.corpus.register.by_slug(parts[0])
        if doc is None or self.corpus.article(doc.number, int(parts[1])) is None:
            return Reply(STALE, notice=True)
        if len(parts) == 2:
            return self._article(doc, int(parts[1]), 0, first_page=True)
        return self._article(doc, int(parts[1]), _page_number(parts[2], 10**6), first_page=False)

    def _article(self, doc: Document, number: int, page: int, *, first_page: bool) -> Reply:
        if not doc.has_text:
            status = doc.status_on(dt.date.today()).label
            return Reply(
                f"Mình chưa có toàn văn {doc.name} ({status}) nên không trích nguyên văn được. "
                "Gõ /lienhe để hỏi cán bộ."
            )
        article = self.corpus.article(doc.number, number)
        if article is None:
            count = len(self.corpus.texts[doc.number].articles)
            return Reply(
                f"{doc.name} có {count} điều (Điều 1 đến Điều {count}); không có Điều {number}."
            )
        where = " · ".join(x for x in (article.chapter, article.section) if x)
        pages = paginate([article.text])
        page = min(page, len(pages) - 1)
        lines = [f"{QUOTE_MARK} {doc.name}"]
        if where:
            lines.append(where)
        lines += [article.heading, "", pages[page]]
        return self._paged(
            "\n".join(lines), page, len(pages), f"dieu:{doc.slug}:{number}", first_page=first_page
        )

    def _paged(self, text: str, page: int, pages: int, prefix: str, *, first_page: bool) -> Reply:
        buttons = []
        if pages > 1:
            text += f"\n\n(trang {page + 1}/{pages})"
            if page > 0:
                buttons.append(Button("◀ Trang trước", f"{prefix}:{page - 1}"))
            if page < pages - 1:
                buttons.append(Button("Trang sau ▶", f"{prefix}:{page + 1}"))
        # The first page is a new message; turning pages edits it in place.
        return Reply(text, tuple(buttons), edit=not first_page)

    def _usage(self) -> str:
        held = [d for d in self.corpus.register if d.has_text]
        lines = [
            "Đọc nguyên văn một điều: /dieu <số điều> [số hiệu văn bản], ví dụ:",
            "/dieu 33 (Điều 33 Luật HTX 2023)",
            "/dieu 48 295/2026 (Điều 48 Nghị định 295/2026/NĐ-CP)",
            "",
            "Văn bản có toàn văn:",
        ]
        lines += [
            f"• {d.number}: {d.title} ({len(self.corpus.texts[d.number].articles)} điều)"
            for d in held
        ]
        return "\n".join(lines)


def _quote_block(quote: Quote) -> str:
    return f"▪ {quote.document.name}\n{quote.article.heading}\n{quote.text}"


def _page_number(text: str, pages: int) -> int:
    page = int(text) if text.isdigit() else 0
    return min(max(page, 0), pages - 1)


async def read_article(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show an article verbatim (``/dieu 33 [văn bản]``)."""
    return [_law(services).command(args)]


async def entry_quotes(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show an entry's basis verbatim (``law:<entry id>[:<page>]``)."""
    return _law(services).quotes(rest)


async def article_page(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show a page of an article (``dieu:<slug>:<article>[:<page>]``)."""
    return _law(services).page(rest)


def _law(services: Services) -> LawChat:
    return LawChat(services.answers.corpus, services.kb)


HANDLER: Final = Handler(
    commands=(Command("dieu", read_article, aliases=("luat",)),),
    buttons=(ButtonPrefix("law", entry_quotes), ButtonPrefix("dieu", article_page)),
    help=(
        "• /dieu 33: đọc nguyên văn Điều 33 Luật HTX 2023 (/dieu 48 295/2026: điều của nghị định)",
    ),
)
