"""Personal data: ``/toi`` shows what is stored about the member, ``/xoadulieu`` deletes it.

Deleting asks first (``del:yes`` / ``del:no``); it cannot be undone.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bot.clock import format_date, local
from bot.handlers.base import ButtonPrefix, Command, Handler, Services
from bot.handlers.profile import profile_lines
from bot.replies import Button, Reply
from bot.store.members import MemberInfo

__all__ = ["HANDLER"]


async def stored_data(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show everything stored about the member (``/toi``)."""
    data = await asyncio.to_thread(services.members.stored_data, member.id)
    if data is None:
        return [Reply("Mình không lưu dữ liệu nào về bạn.")]
    m = data.member
    lines = [
        "🔎 Dữ liệu mình đang lưu về bạn:",
        f"• Kênh: {m.channel}, mã người dùng {m.external_id}",
        f"• Tên hiển thị: {m.display_name or '(không có)'}",
        *profile_lines(services.options, m),
        f"• Nhận nhắc hạn: {'có' if m.consent_reminders else 'không'}",
        f"• Nhận thông báo: {'có' if m.consent_broadcasts else 'không'}",
        f"• Số câu hỏi đã lưu: {data.questions} (trong đó {data.feedback_given} có góp ý)",
        f"• Số lần chuyển cán bộ: {data.handovers}",
        f"• Bắt đầu trò chuyện: {format_date(local(m.created_at))}",
        "",
        "Câu hỏi chưa trả lời được cũng được lưu ẩn danh để cán bộ bổ sung kiến thức.",
        "Gõ /xoadulieu để xoá toàn bộ dữ liệu trên.",
    ]
    return [Reply("\n".join(lines), (Button("🗑 Xoá dữ liệu của tôi", "cmd:xoadulieu"),))]


async def confirm_delete(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Ask before deleting the member's data (``/xoadulieu``)."""
    return [
        Reply(
            "Bạn có chắc muốn xoá toàn bộ dữ liệu mình lưu về bạn (hồ sơ, câu hỏi, góp ý, "
            "yêu cầu chuyển cán bộ)? Việc này không hoàn tác được.",
            (Button("🗑 Xoá hết", "del:yes"), Button("Huỷ", "del:no")),
        )
    ]


async def delete(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Delete the member's data, or keep it (``del:yes``, ``del:no``)."""
    if rest == "yes":
        await asyncio.to_thread(services.members.delete, member.id)
        return Reply(
            "Đã xoá toàn bộ dữ liệu của bạn. Nếu bạn nhắn tiếp, mình sẽ coi như lần đầu "
            "trò chuyện.",
            edit=True,
        )
    return Reply("Đã huỷ, dữ liệu của bạn vẫn được giữ nguyên.", edit=True)


HANDLER: Final = Handler(
    commands=(
        Command("toi", stored_data, menu=True),
        Command("xoadulieu", confirm_delete, menu=True),
    ),
    buttons=(ButtonPrefix("del", delete),),
    help=(
        "• /toi: xem dữ liệu mình đang lưu về bạn",
        "• /xoadulieu: xoá dữ liệu của bạn",
    ),
)
