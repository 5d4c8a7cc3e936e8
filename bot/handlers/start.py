"""The greeting and the menu: ``/start`` (with a trainer's ``faq-<id>`` deep link) and ``/help``.

The first greeting also asks, once, whether the member wants deadline
reminders (``nh:yes`` / ``nh:no``, answered by :mod:`bot.handlers.reminders`).
A deep link carrying a trainer's code (``faq-<id>-t<code>``) opens the entry the
same way and counts the open for that trainer (:mod:`bot.store.shares`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from bot.answers.links import parse_deep_link
from bot.handlers.base import Command, Handler, Services
from bot.handlers.faq import entry_reply
from bot.replies import Button, Reply
from bot.store.members import MemberInfo
from bot.store.shares import VIAS

__all__ = ["HANDLER", "MENU_BUTTONS", "help_text"]

log = logging.getLogger(__name__)

GREETING: Final = (
    "Xin chào{name}! Mình là Trợ lý HTX, trợ lý hỏi đáp về Luật Hợp tác xã 2023, chính sách "
    "hỗ trợ, thủ tục đăng ký và thuế dành cho thành viên hợp tác xã.\n\n"
    "Bạn cứ gõ câu hỏi, có dấu hay không dấu đều được, ví dụ: "
    '"htx can bao nhieu thanh vien". Hoặc chọn một mục bên dưới.'
)
HELP_TITLE: Final = "Cách dùng Trợ lý HTX:"
HELP_FOOTER: Final = (
    "Câu trả lời kèm căn cứ pháp lý và ngày cập nhật; khi cần quyết định quan trọng, "
    "bạn nên hỏi thêm cán bộ hoặc cơ quan đăng ký."
)
MENU_BUTTONS: Final = (
    Button("📚 Tra cứu theo chủ đề", "cmd:faq"),
    Button("👤 Hồ sơ HTX của tôi", "cmd:hoso"),
    Button("🙋 Hỏi cán bộ", "cmd:lienhe"),
    Button("ℹ️ Hướng dẫn", "cmd:help"),
)
REMINDER_QUESTION: Final = (
    "Bạn có muốn mình nhắc các hạn nộp thuế, báo cáo và đại hội của HTX (trước 7 ngày, "
    "trước 2 ngày và sáng ngày đến hạn) không? Bạn có thể đổi bất cứ lúc nào bằng /nhacnho."
)
REMINDER_QUESTION_BUTTONS: Final = (
    Button("🔔 Có, nhắc tôi", "nh:yes"),
    Button("Không, cảm ơn", "nh:no"),
)


async def start(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Greet the member, or open the entry a trainer's ``faq-<id>[-t<code>]`` link names."""
    kb = services.kb
    parsed = parse_deep_link(args, exists=lambda entry_id: kb.get(entry_id) is not None)
    if parsed is not None and (entry := kb.get(parsed[0])) is not None:
        code = parsed[1]
        if code is not None:
            await _count_open(services, member, entry.id, code)
        # A trainer's link opens the entry directly; the menu follows.
        return [entry_reply(services, entry), Reply("Bạn có thể hỏi tiếp.", MENU_BUTTONS)]
    if args:
        log.info("unknown /start payload (%d chars); showing the menu", len(args))
    name = f", {member.display_name}" if member.display_name else ""
    greeting = Reply(GREETING.format(name=name), MENU_BUTTONS)
    subscriptions = services.subscriptions
    if (
        subscriptions is not None
        and services.deadline_rules
        and await asyncio.to_thread(subscriptions.ask_once, member.id)
    ):
        # Asked once, inside the greeting: the answer buttons come before the menu.
        greeting = Reply(
            f"{greeting.text}\n\n{REMINDER_QUESTION}",
            (*REMINDER_QUESTION_BUTTONS, *MENU_BUTTONS),
        )
    return [greeting]


async def _count_open(services: Services, member: MemberInfo, entry_id: str, code: str) -> None:
    """Count the open for the trainer; a failure costs the count, never the reply."""
    if services.shares is None or member.channel not in VIAS:
        return
    try:
        await asyncio.to_thread(
            services.shares.record_open, entry_id, code, member.channel, member.id
        )
    except Exception:
        log.exception("could not count an open of %s (trainer link)", entry_id)


async def show_help(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show how to use the assistant, with the menu."""
    return [Reply(help_text(services.help_lines), MENU_BUTTONS)]


def help_text(lines: tuple[str, ...]) -> str:
    """Return the ``/help`` text made of the registered handlers' lines."""
    return "\n".join((HELP_TITLE, *lines)) + "\n\n" + HELP_FOOTER


HANDLER: Final = Handler(
    commands=(
        Command("start", start, menu=True),
        Command("help", show_help, aliases=("huongdan",), menu=True),
    ),
)
