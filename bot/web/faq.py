"""The public FAQ and law pages: what a trainer shows, prints and shares, and learners open.

Routes (all GET, public, served whether or not the web chat is on):

- ``/faq``: the topics with their entries; ``/faq?q=...`` searches with the chat's
  answer service (diacritic-insensitive); ``/faq/chu-de/<category>``: one topic;
  ``/faq/chu-de/<category>/tai-lieu.pdf``: its printable handout;
- ``/faq/<entry id>``: one entry (answer, basis linked to the quoted clauses,
  last-checked date, related entries, share links with QR codes);
  ``?t=<trainer code>`` counts the visit for that trainer (``on_open``);
  ``/faq/<entry id>/qr.png`` and ``qr.svg`` (``?kind=web|telegram``, ``t=<code>``);
- ``/luat``, ``/luat/<document slug>``, ``/luat/<document slug>/<article>``: the
  texts we hold, an article verbatim with clause anchors (``#k1``) and validity;
- ``/assets/``: the stylesheet.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import inspect
import logging
import math
from collections.abc import Callable
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from bot.answers import AnswerService
from bot.answers.links import EntryLinks, entry_links, parse_trainer_code, qr_png, qr_svg
from bot.channels.webchat.chat import Floodgate, WebChatError
from bot.settings import Settings
from bot.web import pages
from bot.web.search import search_view
from knowledge.law.register import Document

__all__ = ["MAX_QUERY_CHARS", "OpenRecorder", "asset_routes", "faq_routes"]

log = logging.getLogger(__name__)

# Told of an entry page opened with a trainer's code: (entry id, trainer code, "web").
OpenRecorder = Callable[[str, str, str], object]
MAX_QUERY_CHARS: Final = 500
_HANDOUT_MODULE: Final = "bot.web.handout"
_PAGE_CACHE: Final = {"Cache-Control": "no-cache"}


def faq_routes(
    answers: AnswerService,
    settings: Settings,
    *,
    on_open: OpenRecorder | None = None,
    today: Callable[[], dt.date] | None = None,
    floodgate: Floodgate | None = None,
) -> list[BaseRoute]:
    """The routes of the public pages.

    ``on_open`` is told of each entry page opened with a valid ``?t=`` (a plain
    function runs in a thread; a coroutine function is awaited); ``today`` gives
    the day documents' validity is judged on (default: today in Vietnam);
    ``floodgate``: the web chat's message limits, which each search takes from.
    """
    site = _FaqSite(answers, settings, on_open, today or pages.vietnam_today, floodgate)
    return [
        Route("/faq", site.index, methods=["GET"]),
        Route("/faq/chu-de/{category}", site.topic, methods=["GET"]),
        Route("/faq/chu-de/{category}/tai-lieu.pdf", site.handout, methods=["GET"]),
        Route("/faq/{entry_id}", site.entry, methods=["GET"]),
        Route("/faq/{entry_id}/qr.png", site.qr_png, methods=["GET"]),
        Route("/faq/{entry_id}/qr.svg", site.qr_svg, methods=["GET"]),
        Route("/luat", site.documents, methods=["GET"]),
        Route("/luat/{slug}", site.document, methods=["GET"]),
        Route("/luat/{slug}/{article}", site.article, methods=["GET"]),
        *asset_routes(),
    ]


def asset_routes() -> list[BaseRoute]:
    """``/assets/``: the stylesheets, the dashboard's script and the vendored uPlot."""
    return [Mount("/assets", StaticFiles(directory=pages.STATIC_DIR), name="assets")]


class _FaqSite:
    """The pages' handlers, sharing the knowledge, the settings and the handout cache."""

    def __init__(
        self,
        answers: AnswerService,
        settings: Settings,
        on_open: OpenRecorder | None,
        today: Callable[[], dt.date],
        floodgate: Floodgate | None,
    ) -> None:
        self.answers = answers
        self.floodgate = floodgate
        self.kb = answers.kb
        self.corpus = answers.corpus
        self.settings = settings
        self.base_url = settings.public_url
        self.on_open = on_open
        self.today = today
        self._handouts: dict[tuple[str, dt.date], bytes] = {}
        self._handout_lock = asyncio.Lock()

    # -- rendering -----------------------------------------------------------------------

    def _page(
        self,
        template: str,
        path: str,
        status: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> Response:
        context.setdefault("query", "")
        html = pages.render(template, canonical=f"{self.base_url}{path}", **context)
        return HTMLResponse(html, status_code=status, headers={**_PAGE_CACHE, **(headers or {})})

    def _not_found(self, path: str, message: str) -> Response:
        return self._page(
            "not_found.html", path, status=404, title="Không tìm thấy trang", message=message
        )

    def _topics(self) -> list[dict[str, Any]]:
        return [
            {"key": c.key, "title": c.title, "entries": self.kb.in_category(c.key)}
            for c in self.kb.categories
            if self.kb.in_category(c.key)
        ]

    # -- the FAQ -------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        """The topics, or the answers to ``?q=``."""
        query = request.query_params.get("q", "").strip()
        if not query:
            return self._page(
                "index.html", "/faq", title="Hỏi đáp về hợp tác xã", topics=self._topics()
            )
        if len(query) > MAX_QUERY_CHARS:
            return self._page(
                "search.html",
                "/faq",
                status=400,
                title="Câu hỏi quá dài",
                query=query[:MAX_QUERY_CHARS],
                error=f"Câu hỏi dài quá {MAX_QUERY_CHARS} ký tự. Bạn hãy hỏi ngắn gọn hơn.",
                view=None,
            )
        refused = self._flooded(request, query)
        if refused is not None:
            return refused
        answer = await self.answers.answer(query, channel="faq_web", review=False)
        view = search_view(answer, self.answers.search, self.corpus, self.today())
        return self._page(
            "search.html", "/faq", title=f"Tìm: {query}", query=query, error=None, view=view
        )

    def _flooded(self, request: Request, query: str) -> Response | None:
        """A refusal page when the client (or everyone) searches faster than the limits."""
        if self.floodgate is None:
            return None
        client = request.client.host if request.client is not None else "unknown"
        try:
            self.floodgate.message(client)
        except WebChatError as exc:
            wait = max(1, math.ceil(exc.retry_after or 1))
            return self._page(
                "search.html",
                "/faq",
                status=exc.status,
                headers={"Retry-After": str(wait)},
                title="Vui lòng chờ",
                query=query,
                error=str(exc),
                view=None,
            )
        return None

    async def topic(self, request: Request) -> Response:
        """One topic's entries, with its handout."""
        key = request.path_params["category"]
        path = f"/faq/chu-de/{key}"
        entries = self.kb.in_category(key)
        if not entries:
            return self._not_found(path, "Không có chủ đề này.")
        title = self.kb.category_title(key)
        return self._page("topic.html", path, title=title, key=key, entries=entries)

    async def entry(self, request: Request) -> Response:
        """One entry; a valid ``?t=`` is counted for its trainer, a bad one ignored."""
        entry = self.kb.get(request.path_params["entry_id"])
        if entry is None:
            return self._not_found(request.url.path, "Không có câu hỏi này trong mục Hỏi đáp.")
        code = parse_trainer_code(request.query_params.get("t"))
        if code is not None and request.method == "GET":
            await self._report_open(entry.id, code)
        day = self.today()
        links = self._links(entry.id, code)
        return self._page(
            "entry.html",
            pages.entry_href(entry.id),
            title=entry.title,
            entry=entry,
            category=self.kb.category_title(entry.category),
            answer=pages.lines_of(entry.answer),
            detail=pages.lines_of(entry.detail),
            basis=pages.basis_items(entry.basis, self.corpus, day),
            related=pages.related_entries(entry, self.kb),
            shares=pages.share_codes(links, code),
        )

    def _links(self, entry_id: str, code: str | None) -> EntryLinks:
        username = self.settings.telegram_bot_username
        try:
            return entry_links(
                self.base_url, entry_id, telegram_username=username, trainer_code=code
            )
        except ValueError:  # an id no deep link can carry: the web page alone
            return entry_links(self.base_url, entry_id, trainer_code=code)

    async def _report_open(self, entry_id: str, code: str) -> None:
        if self.on_open is None:
            return
        try:
            if inspect.iscoroutinefunction(self.on_open):
                await self.on_open(entry_id, code, "web")
            else:
                await asyncio.to_thread(self.on_open, entry_id, code, "web")
        except Exception:  # counting must never cost a learner the page
            log.exception("could not count an FAQ page opened through a trainer's link")

    # -- QR codes ------------------------------------------------------------------------

    def _qr_url(self, request: Request) -> tuple[str, str] | Response:
        """``(entry id, URL)`` the QR code of this request encodes, or the error response."""
        entry = self.kb.get(request.path_params["entry_id"])
        if entry is None:
            return Response("Không có câu hỏi này.", status_code=404, media_type="text/plain")
        kind = request.query_params.get("kind", "web").strip().lower()
        raw = request.query_params.get("t")
        code = parse_trainer_code(raw)
        if raw and code is None:
            return pages.bad_request("Mã người hướng dẫn (t) chỉ gồm 4-12 chữ thường và số.")
        links = self._links(entry.id, code)
        url = {"web": links.web, "zalo": links.zalo, "telegram": links.telegram}.get(kind)
        if kind == "telegram" and url is None:
            return Response(
                "Trợ lý chưa có tên Telegram nên chưa có liên kết Telegram.",
                status_code=404,
                media_type="text/plain",
            )
        if url is None:
            return pages.bad_request("Loại mã (kind) là web, zalo hoặc telegram.")
        return f"qr-{entry.id}-{kind}", url

    async def qr_png(self, request: Request) -> Response:
        """The QR code of an entry's link as a PNG image."""
        found = self._qr_url(request)
        if isinstance(found, Response):
            return found
        name, url = found
        return Response(
            qr_png(url).png, media_type="image/png", headers=pages.qr_headers(name, "png")
        )

    async def qr_svg(self, request: Request) -> Response:
        """The QR code of an entry's link as an SVG image."""
        found = self._qr_url(request)
        if isinstance(found, Response):
            return found
        name, url = found
        svg = qr_svg(url, scale=8, title=url)
        return Response(svg, media_type="image/svg+xml", headers=pages.qr_headers(name, "svg"))

    # -- the handout ---------------------------------------------------------------------

    async def handout(self, request: Request) -> Response:
        """A topic's printable handout (PDF), built once a day per topic."""
        key = request.path_params["category"]
        entries = self.kb.in_category(key)
        if not entries:
            return self._not_found(request.url.path, "Không có chủ đề này.")
        try:
            module = importlib.import_module(_HANDOUT_MODULE)
        except ModuleNotFoundError as exc:
            if exc.name != _HANDOUT_MODULE:
                raise
            return self._page(
                "not_found.html",
                request.url.path,
                status=503,
                title="Chưa có tài liệu",
                message="Tài liệu PDF chưa sẵn sàng. Bạn hãy xem các câu hỏi trên trang web.",
            )
        day = self.today()
        pdf = self._handouts.get((key, day)) or await self._build_handout(
            module.build_handout, key, day
        )
        headers = {"Content-Disposition": f'inline; filename="tai-lieu-{key}.pdf"'}
        return Response(pdf, media_type="application/pdf", headers=headers)

    async def _build_handout(self, build: Callable[..., bytes], key: str, day: dt.date) -> bytes:
        """Builds (one at a time: each takes seconds) and keeps a topic's handout of ``day``."""
        async with self._handout_lock:
            cached = self._handouts.get((key, day))
            if cached is not None:
                return cached
            pdf = await asyncio.to_thread(
                build,
                self.kb.in_category(key),
                kb=self.kb,
                corpus=self.corpus,
                base_url=self.base_url,
                telegram_username=self.settings.telegram_bot_username,
                title=self.kb.category_title(key),
                today=day,
            )
            self._handouts = {k: v for k, v in self._handouts.items() if k[1] == day}
            self._handouts[(key, day)] = pdf
            return pdf

    # -- the law -------------------------------------------------------------------------

    async def documents(self, request: Request) -> Response:
        """The documents whose text we hold, and the others we cite."""
        day = self.today()
        held = [d for d in self.corpus.register if d.has_text]
        return self._page(
            "documents.html",
            "/luat",
            title="Văn bản pháp luật về hợp tác xã",
            held=[(d, d.status_on(day), len(self.corpus.texts[d.number].articles)) for d in held],
        )

    async def document(self, request: Request) -> Response:
        """A document's articles, by chapter."""
        doc = self.corpus.register.by_slug(request.path_params["slug"])
        if doc is None or not doc.has_text:
            return self._not_found(request.url.path, _no_text(doc))
        parsed = self.corpus.texts[doc.number]
        chapters = [
            (f"Chương {c.number}. {c.title}", [parsed.articles[n] for n in c.articles])
            for c in parsed.chapters
        ] or [("", list(parsed.articles.values()))]
        return self._page(
            "document.html",
            f"/luat/{doc.slug}",
            title=doc.name,
            doc=doc,
            validity=doc.status_on(self.today()),
            successor=self._successor(doc),
            chapters=chapters,
        )

    async def article(self, request: Request) -> Response:
        """An article verbatim, with its clauses anchored and its document's validity."""
        doc = self.corpus.register.by_slug(request.path_params["slug"])
        number_text = request.path_params["article"]
        if doc is None or not doc.has_text:
            return self._not_found(request.url.path, _no_text(doc))
        article = (
            self.corpus.article(doc.number, int(number_text)) if number_text.isdigit() else None
        )
        if article is None:
            count = len(self.corpus.texts[doc.number].articles)
            return self._not_found(
                request.url.path, f"{doc.name} có {count} điều; không có điều này."
            )
        intro, clauses = pages.article_blocks(article)
        numbers = self.corpus.texts[doc.number].articles
        return self._page(
            "article.html",
            f"/luat/{doc.slug}/{article.number}",
            title=f"{article.heading} ({doc.name})",
            doc=doc,
            article=article,
            where=" · ".join(x for x in (article.chapter, article.section) if x),
            validity=doc.status_on(self.today()),
            successor=self._successor(doc),
            intro=intro,
            clauses=clauses,
            previous=article.number - 1 if article.number - 1 in numbers else None,
            next=article.number + 1 if article.number + 1 in numbers else None,
        )

    def _successor(self, doc: Document) -> Document | None:
        return self.corpus.register.get(doc.replaced_by) if doc.replaced_by else None


def _no_text(doc: Document | None) -> str:
    if doc is None:
        return "Không có văn bản này trong danh mục của Trợ lý HTX."
    return f"Trợ lý HTX chưa có toàn văn {doc.name} nên không trích nguyên văn được."
