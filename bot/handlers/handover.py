"""Hand-over to staff: ``/lienhe <câu hỏi>`` posts a question to the staff chat.

A staff member answers by replying to the post in the staff chat; the answer
(text, or a file copied as it is) goes to the member. Open hand-overs are
limited per member and per hour (:class:`bot.handlers.base.StaffDesk`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Final

from bot.clock import utcnow
from bot.handlers.base import Command, Handler, Incoming, Services
from bot.profile import PROFILE_STEPS
from bot.replies import Reply, shorten
from bot.sending import RecipientBlocked, SendError
from bot.store.members import MemberInfo

__all__ = ["HANDLER"]

log = logging.getLogger(__name__)

MAX_OPEN_HANDOVERS: Final = 5
HANDOVER_RECENT: Final = dt.timedelta(minutes=60)


async def hand_over(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Post the question (or the member's last one) to the staff chat (``/lienhe``)."""
    question = args
    if not question:
        since = utcnow() - HANDOVER_RECENT
        latest = await asyncio.to_thread(services.messages.latest, member.id, since)
        question = latest.text if latest is not None else ""
    if not question:
        return [
            Reply(
                "Bạn hãy gõ /lienhe kèm câu hỏi cần cán bộ hỗ trợ, ví dụ:\n"
                "/lienhe HTX tôi muốn vay vốn Quỹ hỗ trợ phát triển HTX thì cần hồ sơ gì?"
            )
        ]
    waiting = await asyncio.to_thread(services.handovers.open_count, member.id)
    if waiting >= MAX_OPEN_HANDOVERS:
        return [
            Reply(
                f"Bạn đang có {waiting} câu hỏi chờ cán bộ trả lời. "
                "Mình sẽ báo ngay khi cán bộ trả lời; bạn vui lòng chờ thêm nhé."
            )
        ]
    refused = await _limit(services, member)
    if refused is not None:
        return [refused]
    handover = await asyncio.to_thread(services.handovers.open, member.id, question)
    if not await _post_to_staff(services, member, handover.id, question):
        return [
            Reply(
                f"Mình đã lưu câu hỏi của bạn (mã #{handover.id}), nhưng hiện chưa kết nối "
                "được với cán bộ qua kênh này. Bạn có thể liên hệ Liên minh HTX tỉnh, thành "
                "phố nơi HTX đăng ký để được hỗ trợ sớm."
            )
        ]
    return [
        Reply(
            f"Mình đã chuyển câu hỏi của bạn tới cán bộ Liên minh HTX (mã #{handover.id}):\n"
            f"«{shorten(question, 300)}»\n\n"
            "Một cán bộ sẽ trả lời bạn ngay tại đây, thường trong giờ hành chính."
        )
    ]


async def staff_answer(services: Services, incoming: Incoming) -> list[Reply]:
    """Send a staff reply to a hand-over post to the member who asked."""
    staff = services.staff
    if incoming.reply_to_message_id is None:
        return []  # staff talking among themselves
    if not (incoming.text.strip() or incoming.attachment):
        return []
    assert staff.chat_id is not None  # checked by the router (is_staff_chat)
    handover = await asyncio.to_thread(
        services.handovers.find_by_staff_post, staff.chat_id, incoming.reply_to_message_id
    )
    if handover is None:
        return []
    member = await asyncio.to_thread(services.members.get, handover.member_id)
    if member is None:
        return [Reply(f"Thành viên của câu hỏi #{handover.id} đã xoá dữ liệu; không gửi được.")]
    header = f"💬 Cán bộ Liên minh HTX trả lời câu hỏi #{handover.id} của bạn"
    footer = "Gõ /lienhe kèm câu hỏi nếu bạn cần hỏi thêm."
    senders = services.senders
    try:
        if incoming.attachment:
            # A form or a photo: copied as it is (caption included) after a short header.
            if member.channel != staff.channel or incoming.message_id is None:
                return [
                    Reply(
                        f"Thành viên của câu hỏi #{handover.id} dùng kênh {member.channel}, "
                        "chỉ nhận được tin nhắn chữ. Vui lòng trả lời bằng chữ."
                    )
                ]
            await senders.send(
                member.channel, member.chat_id, Reply(f"{header} (tệp bên dưới).\n\n{footer}")
            )
            await senders.copy(member.channel, member.chat_id, staff.chat_id, incoming.message_id)
        else:
            reply = Reply(f"{header}:\n\n{incoming.text.strip()}\n\n{footer}")
            await senders.send(member.channel, member.chat_id, reply)
    except RecipientBlocked:
        await asyncio.to_thread(services.members.set_active, member.id, False)
        return [Reply(f"Không gửi được câu trả lời #{handover.id}: thành viên đã chặn bot.")]
    except SendError as exc:
        log.warning("staff answer to hand-over #%d not delivered: %s", handover.id, exc)
        return [Reply(f"Chưa gửi được câu trả lời #{handover.id}; vui lòng thử lại sau.")]
    await asyncio.to_thread(services.handovers.mark_answered, handover.id)
    return [Reply(f"✅ Đã gửi câu trả lời #{handover.id} tới thành viên.")]


async def _limit(services: Services, member: MemberInfo) -> Reply | None:
    hour_ago = utcnow() - dt.timedelta(hours=1)
    handovers, staff = services.handovers, services.staff
    mine = await asyncio.to_thread(handovers.opened_since, hour_ago, member.id)
    if mine >= staff.per_member_hour:
        return Reply(
            f"Trong một giờ qua bạn đã gửi {mine} câu hỏi cho cán bộ. Bạn vui lòng chờ cán "
            "bộ trả lời, hoặc gửi thêm sau ít phút nhé."
        )
    everyone = await asyncio.to_thread(handovers.opened_since, hour_ago)
    if everyone >= staff.per_hour:
        log.warning("hand-over refused: %d opened in the last hour", everyone)
        return Reply(
            "Hiện có nhiều câu hỏi đang chờ cán bộ. Bạn vui lòng gửi lại sau ít phút, hoặc "
            "liên hệ Liên minh HTX tỉnh, thành phố nơi HTX đăng ký."
        )
    return None


async def _post_to_staff(
    services: Services, member: MemberInfo, handover_id: int, question: str
) -> bool:
    staff, senders = services.staff, services.senders
    if staff.chat_id is None or not senders.has(staff.channel):
        return False
    profile = ", ".join(
        label
        for step in PROFILE_STEPS[:2]
        if (label := services.options.label(step.field, getattr(member, step.field)))
    )
    text = (
        f"🙋 Câu hỏi chuyển cán bộ #{handover_id}\n"
        f"Từ: {member.display_name or 'thành viên'} (kênh {member.channel})\n"
        + (f"Hồ sơ: {profile}\n" if profile else "")
        + f"\n{question}\n\n"
        "↩ Trả lời (reply) tin nhắn này để gửi câu trả lời cho thành viên."
    )
    try:
        posted = await senders.send(staff.channel, staff.chat_id, Reply(text))
    except SendError:
        log.exception("could not post hand-over #%d to the staff chat", handover_id)
        return False
    if posted is not None:
        await asyncio.to_thread(
            services.handovers.attach_staff_post, handover_id, staff.chat_id, posted
        )
    return True


HANDLER: Final = Handler(
    commands=(Command("lienhe", hand_over, menu=True),),
    help=("• /lienhe: chuyển câu hỏi cho cán bộ Liên minh HTX",),
    on_staff_chat=staff_answer,
)
