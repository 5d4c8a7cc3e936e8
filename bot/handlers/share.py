"""Share links for trainers: ``/chiase`` and ``/chiase_thongke`` (trainer, staff and admin).

``/chiase <entry id or words>`` finds the entry (its id, else the answer service's
search, as for a question) and replies with its links carrying the trainer's code
and the web link's QR code as an image; ``/chiase`` alone lists the topics.
``/chiase_thongke [days]`` shows the opens of the trainer's own links.

Payloads: ``sht:`` (the topics), ``sht:<topic key>:<page>`` (a topic's entries),
``sh:<entry id>`` (share one entry). The router checks the roles.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Final
from urllib.parse import quote, urlencode

from bot.answers import AnswerKind
from bot.answers.links import entry_links, qr_png
from bot.handlers.base import ButtonPrefix, Command, Handler, Services, entry_page, stale
from bot.replies import Button, Image, Reply, shorten
from bot.store.members import MemberInfo
from bot.store.shares import TRAINER_ROLES, ShareStore, format_stats
from knowledge.base import Entry, KnowledgeBase

__all__ = ["HANDLER", "share_reply"]

log = logging.getLogger(__name__)

CANDIDATES: Final = 5
PAGE_SIZE: Final = 8
STATS_ENTRIES: Final = 20  # entries per trainer in a chat message
_MAX_WORDS: Final = 500
TOPICS_BUTTON: Final = Button("📚 Chọn theo chủ đề", "sht:")


async def share(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Share an entry found by id or words, or list the topics (``/chiase``)."""
    words = args.strip()
    if not words:
        return [_topics(services.kb)]
    entry = services.kb.get(words.lower())
    if entry is not None:
        return [await share_reply(services, member, entry)]
    answer = await services.answers.answer(
        words[:_MAX_WORDS], channel=member.channel, member_id=member.id, review=False
    )
    if answer.kind is AnswerKind.ENTRY and answer.entry is not None and not answer.parts:
        return [await share_reply(services, member, answer.entry)]
    # Not sure: the entries the answer named, then the search's best, for the trainer to pick.
    found = [a.entry for a in answer.answered if a.entry is not None]
    found += [hit.entry for hit in services.answers.search.search(words[:_MAX_WORDS])]
    candidates = list({e.id: e for e in found}.values())[:CANDIDATES]
    if not candidates:
        return [
            Reply(
                f"Không tìm thấy mục hỏi đáp nào khớp với «{shorten(words, 80)}». "
                "Bạn thử từ khác, hoặc chọn theo chủ đề.",
                (TOPICS_BUTTON,),
            )
        ]
    buttons = tuple(Button(e.title, f"sh:{e.id}") for e in candidates)
    return [Reply("Bạn muốn chia sẻ mục nào?", (*buttons, TOPICS_BUTTON))]


async def share_button(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Share the entry of a button (``sh:<entry id>``)."""
    entry = services.kb.get(rest)
    if entry is None:
        return stale()
    return await share_reply(services, member, entry)


async def topic_button(services: Services, member: MemberInfo, rest: str) -> Reply:
    """The topics (``sht:``), or one page of a topic's entries (``sht:<key>:<page>``)."""
    if not rest:
        return _topics(services.kb)
    paged = entry_page(
        services.kb,
        rest,
        size=PAGE_SIZE,
        open_prefix="sh",
        page_prefix="sht",
        back=Button("↩ Chủ đề", "sht:"),
    )
    if paged is None:
        return stale()
    header, buttons = paged
    return Reply(f"🔗 {header}\nChọn mục muốn chia sẻ:", buttons, edit=True)


async def share_reply(services: Services, member: MemberInfo, entry: Entry) -> Reply:
    """The entry's links with the trainer's code, and the web link's QR code as an image."""
    code = await _code(services, member)
    try:
        links = entry_links(
            services.public_url,
            entry.id,
            telegram_username=services.telegram_username,
            trainer_code=code,
        )
    except ValueError:  # an id no Telegram deep link can carry: the web page alone
        links = entry_links(services.public_url, entry.id, trainer_code=code)
    lines = [
        f"🔗 Chia sẻ: {entry.title}",
        "",
        "🌐 Trang web (mở được trên mọi điện thoại, cả trong Zalo):",
        links.web,
    ]
    if links.telegram is not None:
        lines += ["", "✈️ Telegram (mở thẳng trong trò chuyện với trợ lý):", links.telegram]
    lines += ["", "Mã QR kèm theo mở trang web trên."]
    if code is not None:
        lines.append(
            f"Mã giảng viên của bạn: {code}. Lượt mở qua các liên kết này được tính cho bạn; "
            "xem bằng /chiase_thongke."
        )
    query = {"kind": "web", **({"t": code} if code is not None else {})}
    image = Image(
        png=(await asyncio.to_thread(qr_png, links.web)).png,
        url=f"/faq/{quote(entry.id)}/qr.png?{urlencode(query)}",
        alt=f"Mã QR mở trang «{entry.title}»",
    )
    return Reply("\n".join(lines), (TOPICS_BUTTON,), image=image)


async def own_stats(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """The opens of the trainer's own links (``/chiase_thongke [days]``)."""
    words = args.strip()
    if words and not (words.isdigit() and 0 < int(words) <= 3650):
        return [Reply("Gõ /chiase_thongke, hoặc /chiase_thongke 30 để xem 30 ngày gần đây.")]
    since = services.clock() - dt.timedelta(days=int(words)) if words else None
    code = await _code(services, member)
    if code is None:
        return [Reply("Chưa thống kê được lúc này. Bạn thử lại sau nhé.")]
    rows = await asyncio.to_thread(_shares(services).stats, code, since)
    return [Reply(format_stats(rows, services.kb, since=since, limit=STATS_ENTRIES))]


async def _code(services: Services, member: MemberInfo) -> str | None:
    """The member's trainer code; None (links without one) if it cannot be had now."""
    try:
        return await asyncio.to_thread(_shares(services).trainer_code, member.id)
    except Exception:  # the links work without the code; only the counting is lost
        log.exception("no trainer code for member %d", member.id)
        return None


def _shares(services: Services) -> ShareStore:
    assert services.shares is not None  # checked by the router (``needs``)
    return services.shares


def _topics(kb: KnowledgeBase) -> Reply:
    buttons = tuple(
        Button(f"{c.title} ({len(kb.in_category(c.key))})", f"sht:{c.key}:0")
        for c in kb.categories
        if kb.in_category(c.key)
    )
    return Reply("🔗 Chia sẻ câu trả lời cho học viên. Chọn một chủ đề:", buttons)


def _switched_on(services: Services) -> bool:
    return services.shares is not None


HANDLER: Final = Handler(
    commands=(
        Command("chiase", share, roles=TRAINER_ROLES, needs=_switched_on),
        Command("chiase_thongke", own_stats, roles=TRAINER_ROLES, needs=_switched_on),
    ),
    buttons=(
        ButtonPrefix("sh", share_button, roles=TRAINER_ROLES, needs=_switched_on),
        ButtonPrefix("sht", topic_button, roles=TRAINER_ROLES, needs=_switched_on),
    ),
)
