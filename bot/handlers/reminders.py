"""Reminder consent: ``/nhacnho`` lists the deadlines the member may be reminded of.

Payloads: ``nh:yes`` / ``nh:no`` (the question in the first greeting),
``nh:all`` / ``nh:none`` and ``nh:t:<rule id>`` (turn one rule on or off).
Nothing is reminded unless chosen.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Final

from bot.handlers.base import ButtonPrefix, Command, Handler, Services, profile_of, stale
from bot.replies import Button, Reply
from bot.store.members import MemberInfo
from scheduler.deadlines import Rule

__all__ = ["HANDLER"]


async def show_reminders(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show the reminder choices as a new message (``/nhacnho``)."""
    return [replace(await _menu(services, member), edit=False)]


async def reminder_choice(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Turn reminders on or off (``nh:yes|no|all|none``, ``nh:t:<rule id>``)."""
    store = services.subscriptions
    if store is None or not services.deadline_rules:
        return stale()
    applicable = {rule.id for rule in _applicable_rules(services, member)}
    current = await asyncio.to_thread(store.rules, member.id)
    kind, _, rule_id = rest.partition(":")
    match kind:
        case "yes" | "all":
            await asyncio.to_thread(store.replace, member.id, current | applicable)
            await services.reminders_changed(member.id)
            prefix = "Đã bật nhắc hạn. " if kind == "yes" else ""
            return await _menu(services, member, prefix)
        case "no":
            await asyncio.to_thread(store.replace, member.id, current)
            return Reply(
                "Đã hiểu, mình sẽ không nhắc hạn. Bạn có thể bật lại bất cứ lúc nào bằng /nhacnho.",
                edit=True,
            )
        case "none":
            await asyncio.to_thread(store.replace, member.id, ())
            return await _menu(services, member)
        case "t" if rule_id in applicable:
            await asyncio.to_thread(store.replace, member.id, current ^ {rule_id})
            await services.reminders_changed(member.id)
            return await _menu(services, member)
    return stale()


def _applicable_rules(services: Services, member: MemberInfo) -> list[Rule]:
    profile = profile_of(member)
    return [rule for rule in services.deadline_rules if rule.applies(profile)]


async def _menu(services: Services, member: MemberInfo, prefix: str = "") -> Reply:
    if services.subscriptions is None or not services.deadline_rules:
        return Reply("Tính năng nhắc hạn chưa được bật trên hệ thống này.")
    chosen = await asyncio.to_thread(services.subscriptions.rules, member.id)
    lines = [prefix + "🔔 Nhắc hạn nộp (trước 7 ngày, trước 2 ngày và 8 giờ sáng ngày đến hạn):"]
    buttons: list[Button] = []
    for rule in _applicable_rules(services, member):
        on = rule.id in chosen
        lines.append(f"{'✅' if on else '⬜'} {rule.title}")
        buttons.append(Button(f"{'🔕 Tắt' if on else '🔔 Bật'}: {rule.title}", f"nh:t:{rule.id}"))
    lines.append("\nChọn từng mục để bật hoặc tắt. Mặc định không nhắc gì.")
    buttons += [Button("🔔 Bật tất cả", "nh:all"), Button("🔕 Tắt tất cả", "nh:none")]
    return Reply("\n".join(lines), tuple(buttons), edit=True)


HANDLER: Final = Handler(
    commands=(Command("nhacnho", show_reminders, menu=True),),
    buttons=(ButtonPrefix("nh", reminder_choice),),
    help=("• /nhacnho: chọn các hạn nộp muốn được nhắc",),
)
