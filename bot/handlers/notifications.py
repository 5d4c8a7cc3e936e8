"""``/tatthongbao`` and ``/batthongbao``: the member turns the Alliance's broadcasts off or on.

Deadline reminders and training sessions the member chose are not broadcasts
and keep coming.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bot.handlers.base import Command, Handler, Services
from bot.replies import Reply
from bot.store.members import MemberInfo

__all__ = ["HANDLER"]


async def broadcasts_off(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Stop the Alliance's broadcasts to the member (``/tatthongbao``)."""
    await asyncio.to_thread(services.members.set_broadcasts, member.id, False)
    return [
        Reply(
            "🔕 Đã tắt thông báo của Liên minh HTX. Nhắc hạn và lịch tập huấn bạn "
            "đã chọn vẫn được gửi. Gõ /batthongbao để bật lại."
        )
    ]


async def broadcasts_on(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Send the Alliance's broadcasts to the member again (``/batthongbao``)."""
    await asyncio.to_thread(services.members.set_broadcasts, member.id, True)
    return [Reply("🔔 Đã bật lại thông báo của Liên minh HTX.")]


HANDLER: Final = Handler(
    commands=(Command("tatthongbao", broadcasts_off), Command("batthongbao", broadcasts_on)),
    help=("• /tatthongbao, /batthongbao: tắt hoặc bật thông báo của Liên minh HTX",),
)
