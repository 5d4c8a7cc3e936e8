"""Browsing the knowledge base: ``/faq`` (``/tracuu``), its categories and its entries.

Payloads: ``cats:`` (the categories), ``cat:<key>:<page>`` (a page of one
category), ``faq:<entry id>`` (an entry, logged with 👍/👎) and
``more:<entry id>`` (an entry's details).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Final

from bot.answers import citations, quote_button, render_entry
from bot.handlers.base import ButtonPrefix, Command, Handler, Services, entry_page, stale
from bot.handlers.questions import feedback_buttons
from bot.replies import Button, Reply
from bot.store.members import MemberInfo
from knowledge.base import Entry, KnowledgeBase

__all__ = ["HANDLER", "entry_reply"]

FAQ_PAGE_SIZE: Final = 6


async def show_categories(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show the categories (``/faq``)."""
    return [_categories(services.kb)]


async def back_to_categories(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show the categories again in place of a category page (``cats:``)."""
    return replace(_categories(services.kb), edit=True)


async def category_page(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show one page of a category's entries (``cat:<key>:<page>``)."""
    paged = entry_page(
        services.kb,
        rest,
        size=FAQ_PAGE_SIZE,
        open_prefix="faq",
        page_prefix="cat",
        back=Button("↩ Chủ đề", "cats:"),
    )
    if paged is None:
        return stale()
    header, buttons = paged
    return Reply(f"📚 {header}\nChọn câu hỏi:", buttons, edit=True)


async def open_entry(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show an entry chosen from a list, logged so that it can get 👍/👎 (``faq:<id>``)."""
    entry = services.kb.get(rest)
    if entry is None:
        return stale()
    message_id = await asyncio.to_thread(
        services.messages.record,
        member_id=member.id,
        channel=member.channel,
        text=entry.title,
        kind="browse",
        intent=None,
        confidence=None,
        entry_id=entry.id,
        fallback=False,
        latency_ms=0.0,
    )
    reply = entry_reply(services, entry)
    return Reply(reply.text, (*feedback_buttons(message_id), *reply.buttons), reply.citations)


async def entry_detail(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show an entry's details (``more:<id>``)."""
    entry = services.kb.get(rest)
    if entry is None or not entry.detail:
        return stale()
    return Reply(f"{entry.title}\n\n{entry.detail}", _related_buttons(services.kb, entry))


def entry_reply(services: Services, entry: Entry) -> Reply:
    """Render an entry with its basis, details and related entries as buttons (not logged)."""
    buttons = _related_buttons(services.kb, entry)
    cited = citations(entry, services.answers.corpus)
    if any(c.quotable for c in cited):
        buttons = (quote_button(entry), *buttons)
    if entry.detail:
        buttons = (Button("📖 Xem chi tiết", f"more:{entry.id}"), *buttons)
    return Reply(render_entry(entry, services.answers.corpus), buttons, cited)


def _categories(kb: KnowledgeBase) -> Reply:
    buttons = tuple(
        Button(f"{c.title} ({len(kb.in_category(c.key))})", f"cat:{c.key}:0")
        for c in kb.categories
        if kb.in_category(c.key)
    )
    return Reply("📚 Chọn một chủ đề:", buttons)


def _related_buttons(kb: KnowledgeBase, entry: Entry) -> tuple[Button, ...]:
    return tuple(Button(e.title, f"faq:{e.id}") for r in entry.related if (e := kb.get(r)))


HANDLER: Final = Handler(
    commands=(Command("faq", show_categories, aliases=("tracuu",), menu=True),),
    buttons=(
        ButtonPrefix("faq", open_entry),
        ButtonPrefix("more", entry_detail),
        ButtonPrefix("cats", back_to_categories),
        ButtonPrefix("cat", category_page),
    ),
    help=("• /faq: tra cứu câu hỏi theo chủ đề",),
)
