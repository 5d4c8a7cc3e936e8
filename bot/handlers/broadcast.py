"""Composing and following broadcasts in chat (staff and admins; the router checks the role).

``/thongbao <nội dung>`` stores a draft and shows who would receive it; the
staff member narrows the segment with buttons (province, cooperative type,
role, reminders on), sees a preview with the recipient count, and confirms or
cancels. The draft lives in the database, so a restart loses nothing.
``/thongbao_trangthai [id]`` shows the progress with a stop button.

Payloads ``tb:<action>:<broadcast id>[:<value>]``::

    tb:seg:<id>              the segment menu       tb:p:<id>[:<page>]   provinces
    tb:ps:<id>:<code>        add a province         tb:t:<id>            types
    tb:ts:<id>:<code>        add a type             tb:r:<id>:<role>     add a role
    tb:s:<id>                reminders on only      tb:clr:<id>          everyone again
    tb:v:<id>                preview                tb:go:<id>           send
    tb:x:<id>                discard / stop         tb:st:<id>           progress
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Final

from bot.handlers.base import ButtonPrefix, Command, Handler, Services
from bot.profile import ProfileOptions
from bot.replies import Button, Reply
from bot.store.broadcasts import (
    BroadcastError,
    BroadcastInfo,
    BroadcastStore,
    Segment,
    progress_line,
    render_broadcast,
)
from bot.store.members import MemberInfo
from bot.store.roles import ROLE_LABELS, STAFF_ROLES

__all__ = ["HANDLER", "BroadcastChat"]

PAGE: Final = 12
STALE: Final = "Lựa chọn này không còn hiệu lực. Gõ /thongbao để soạn thông báo mới."
HOW_TO: Final = (
    "Soạn thông báo: gõ /thongbao rồi nội dung ngay sau đó (có thể nhiều dòng), ví dụ:\n"
    "/thongbao Liên minh HTX tỉnh mở lớp tập huấn kê khai thuế điện tử ngày 15/01. "
    "Gõ /taphuan để đăng ký.\n\n"
    "Sau đó bạn chọn nhóm nhận, xem trước và xác nhận gửi."
)


class BroadcastChat:
    """The staff side of broadcasts in chat."""

    def __init__(self, store: BroadcastStore, options: ProfileOptions) -> None:
        """Reads and changes broadcasts through ``store``."""
        self.store = store
        self.options = options

    async def compose(self, member: MemberInfo, text: str) -> Reply:
        """``/thongbao <text>``: a draft for everyone, then the segment menu."""
        if not text.strip():
            return Reply(HOW_TO)
        try:
            draft = await asyncio.to_thread(
                self.store.draft, text, f"{member.channel}:{member.external_id}"
            )
        except BroadcastError as exc:
            return Reply(str(exc))
        return await self._segment_menu(draft, edit=False)

    async def status(self, args: str) -> Reply:
        """``/thongbao_trangthai [id]``: the progress of one broadcast (default: newest)."""
        if args.strip().lstrip("#").isdigit():
            broadcast_id = int(args.strip().lstrip("#"))
        else:
            latest = [
                b for b in await asyncio.to_thread(self.store.latest, 20) if b.status != "draft"
            ]
            if not latest:
                return Reply("Chưa có thông báo nào được gửi.")
            broadcast_id = latest[0].id
        return await self._progress(broadcast_id, edit=False)

    async def button(self, rest: str) -> Reply:
        """Handles ``tb:`` payloads (``rest`` follows ``tb:``)."""
        action, _, tail = rest.partition(":")
        id_text, _, value = tail.partition(":")
        if not id_text.isdigit():
            return Reply(STALE, notice=True)
        info = await asyncio.to_thread(self.store.get, int(id_text))
        if info is None:
            return Reply(STALE, notice=True)
        if action == "st":
            return await self._progress(info.id, edit=True)
        if action == "x":
            return await self._cancel(info)
        if info.status != "draft":
            return Reply("Thông báo này đã được gửi hoặc đã huỷ.", notice=True)
        segment = info.segment
        match action:
            case "seg":
                return await self._segment_menu(info)
            case "p":
                page = int(value) if value.isdigit() else 0
                return self._choices(info, "province", "ps", page)
            case "t":
                return self._choices(info, "coop_type", "ts", 0)
            case "ps" | "ts":
                field = "province" if action == "ps" else "coop_type"
                if not self.options.is_valid(field, value):
                    return Reply(STALE, notice=True)
                chosen = tuple(sorted({*getattr(segment, field), value}))
                if field == "province":
                    return await self._update(info, dataclasses.replace(segment, province=chosen))
                return await self._update(info, dataclasses.replace(segment, coop_type=chosen))
            case "r" if value in ROLE_LABELS:
                roles = tuple(sorted({*segment.role, value}))
                return await self._update(info, dataclasses.replace(segment, role=roles))
            case "s":
                return await self._update(info, dataclasses.replace(segment, subscribed=True))
            case "clr":
                return await self._update(info, Segment())
            case "v":
                return await self._preview(info)
            case "go":
                return await self._send(info)
        return Reply(STALE, notice=True)

    async def _update(self, info: BroadcastInfo, segment: Segment) -> Reply:
        updated = await asyncio.to_thread(self.store.set_segment, info.id, segment)
        if updated is None:
            return Reply("Thông báo này đã được gửi hoặc đã huỷ.", notice=True)
        return await self._segment_menu(updated)

    async def _segment_menu(self, info: BroadcastInfo, edit: bool = True) -> Reply:
        count = await asyncio.to_thread(self.store.count, info.segment)
        text = (
            f"📝 Bản nháp thông báo #{info.id}.\n"
            f"Nhóm nhận: {info.segment.describe(self.options)} ({count:,} người).\n\n"
            "Thu hẹp nhóm nhận bằng các nút dưới đây (các tiêu chí khác nhau cùng áp dụng; "
            "nhiều tỉnh là tỉnh này hoặc tỉnh kia), rồi xem trước để gửi."
        )
        buttons = [
            Button("📍 Thêm tỉnh", f"tb:p:{info.id}"),
            Button("🏷 Thêm loại hình", f"tb:t:{info.id}"),
            Button("👥 Chỉ cán bộ", f"tb:r:{info.id}:staff"),
            Button("🔔 Chỉ người đã bật nhắc hạn", f"tb:s:{info.id}"),
            Button("♻️ Gửi mọi thành viên", f"tb:clr:{info.id}"),
            Button("👁 Xem trước", f"tb:v:{info.id}"),
            Button("🗑 Bỏ bản nháp", f"tb:x:{info.id}"),
        ]
        return Reply(text, tuple(buttons), edit=edit)

    def _choices(self, info: BroadcastInfo, field: str, action: str, page: int) -> Reply:
        choices = self.options.choices(field)
        pages = max((len(choices) + PAGE - 1) // PAGE, 1)
        page = min(max(page, 0), pages - 1)
        shown = choices[page * PAGE : (page + 1) * PAGE]
        buttons = [Button(c.label, f"tb:{action}:{info.id}:{c.code}") for c in shown]
        if page > 0:
            buttons.append(Button("◀ Trước", f"tb:p:{info.id}:{page - 1}"))
        if page < pages - 1:
            buttons.append(Button("Sau ▶", f"tb:p:{info.id}:{page + 1}"))
        buttons.append(Button("↩ Quay lại", f"tb:seg:{info.id}"))
        title = "tỉnh, thành phố" if field == "province" else "loại hình"
        return Reply(f"Chọn {title} để thêm vào nhóm nhận:", tuple(buttons), edit=True)

    async def _preview(self, info: BroadcastInfo) -> Reply:
        count = await asyncio.to_thread(self.store.count, info.segment)
        text = (
            f"👁 Xem trước thông báo #{info.id}\n"
            f"Nhóm nhận: {info.segment.describe(self.options)}\n"
            f"Số người nhận: {count:,}\n"
            "──────────\n"
            f"{render_broadcast(info.text)}"
        )
        buttons = (
            Button(f"✅ Gửi cho {count:,} người", f"tb:go:{info.id}"),
            Button("↩ Sửa nhóm nhận", f"tb:seg:{info.id}"),
            Button("🗑 Huỷ", f"tb:x:{info.id}"),
        )
        return Reply(text, buttons, edit=True)

    async def _send(self, info: BroadcastInfo) -> Reply:
        try:
            sent = await asyncio.to_thread(self.store.queue, info.id)
        except BroadcastError as exc:
            return Reply(str(exc), notice=True)
        return Reply(
            f"🚀 Đang gửi thông báo #{sent.id} tới {sent.recipients:,} người. "
            f"Xem tiến độ: /thongbao_trangthai {sent.id}",
            (Button("📊 Tiến độ", f"tb:st:{sent.id}"), Button("⏹ Dừng gửi", f"tb:x:{sent.id}")),
            edit=True,
        )

    async def _cancel(self, info: BroadcastInfo) -> Reply:
        try:
            dropped = await asyncio.to_thread(self.store.cancel, info.id)
        except BroadcastError as exc:
            return Reply(str(exc), notice=True)
        if info.status == "draft":
            return Reply(f"Đã bỏ bản nháp #{info.id}.", edit=True)
        return Reply(f"⏹ Đã dừng thông báo #{info.id}; {dropped:,} tin chưa gửi sẽ không gửi.")

    async def _progress(self, broadcast_id: int, edit: bool) -> Reply:
        progress = await asyncio.to_thread(self.store.progress, broadcast_id)
        if progress is None:
            return Reply(f"Không có thông báo #{broadcast_id}.")
        buttons: tuple[Button, ...] = (Button("🔄 Cập nhật", f"tb:st:{broadcast_id}"),)
        if progress.broadcast.status == "sending":
            buttons += (Button("⏹ Dừng gửi", f"tb:x:{broadcast_id}"),)
        text = f"📊 Thông báo #{broadcast_id}\n{progress_line(progress, width=12)}"
        return Reply(text, buttons, edit=edit)


async def compose(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Store a draft and show who would receive it (``/thongbao <nội dung>``)."""
    return [await _broadcasts(services).compose(member, args)]


async def status(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Show the progress of a broadcast (``/thongbao_trangthai [id]``)."""
    return [await _broadcasts(services).status(args)]


async def draft_button(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Narrow, preview, send or stop a broadcast (``tb:<action>:<id>[:<value>]``)."""
    return await _broadcasts(services).button(rest)


def _broadcasts(services: Services) -> BroadcastChat:
    assert services.broadcasts is not None  # checked by the router (``needs``)
    return BroadcastChat(services.broadcasts, services.options)


def _switched_on(services: Services) -> bool:
    return services.broadcasts is not None


HANDLER: Final = Handler(
    commands=(
        Command("thongbao", compose, roles=STAFF_ROLES, needs=_switched_on),
        Command("thongbao_trangthai", status, roles=STAFF_ROLES, needs=_switched_on),
    ),
    buttons=(ButtonPrefix("tb", draft_button, roles=STAFF_ROLES, needs=_switched_on),),
)
