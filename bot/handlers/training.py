"""Training sessions in chat: ``/taphuan`` for members, ``/taphuan_tao`` for staff.

Button payloads (``th:<action>:<session id>``)::

    th:v:<id>   details            th:r:<id>   take a seat
    th:u:<id>   give the seat back th:x:<id>   cancel the session (staff only)

On Zalo the buttons become numbered choices, so members register by typing a
number. Who may use what is declared in ``HANDLER`` and checked by the router
(cancelling a session is checked here: staff only).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Final

from bot.handlers.base import ButtonPrefix, Command, Handler, Services, profile_of
from bot.profile import ProfileOptions, folded
from bot.replies import Button, Reply, shorten
from bot.store.members import MemberInfo
from bot.store.roles import STAFF_ROLES
from bot.store.training import TrainingStore
from bot.store.training_sessions import (
    Registration,
    SessionDraft,
    SessionInfo,
    TrainingError,
    entry_ids,
)
from knowledge.base import KnowledgeBase
from scheduler.training import describe, end_moment, format_moment, parse_moment

__all__ = ["FORM_HELP", "HANDLER", "TrainingChat", "parse_form"]

LISTED: Final = 8
STALE: Final = "Lựa chọn này không còn hiệu lực. Gõ /taphuan để xem lịch mới nhất."
FORM_HELP: Final = (
    "Tạo buổi tập huấn: gửi /taphuan_tao kèm thông tin, mỗi mục một dòng, ví dụ:\n\n"
    "/taphuan_tao\n"
    "Tiêu đề: Chuyển đổi số cho HTX\n"
    "Bắt đầu: 15/01/2027 08:00\n"
    "Kết thúc: 11:00\n"
    "Địa điểm: Hội trường Liên minh HTX tỉnh\n"
    "Link: https://... (nếu học trực tuyến)\n"
    "Tỉnh: Hà Nội\n"
    "Loại hình: HTX nông nghiệp\n"
    "Số chỗ: 50\n"
    "Mô tả: Hướng dẫn kê khai thuế điện tử, hoá đơn điện tử.\n"
    "Hỏi đáp: han_khai_thue_quy, hoa_don_dien_tu\n\n"
    "Bắt buộc: tiêu đề, bắt đầu, kết thúc (ngày giờ, hoặc chỉ giờ nếu cùng ngày), số chỗ, "
    "và địa điểm hoặc link. Bỏ trống tỉnh, loại hình: dành cho mọi thành viên. "
    "Hỏi đáp (không bắt buộc): mã các mục hỏi đáp, cách nhau bằng dấu phẩy; người đăng ký "
    "nhận danh sách kèm liên kết 1 giờ sau khi buổi học kết thúc."
)
_KEYS: Final = {
    "tieu de": "title",
    "ten": "title",
    "bat dau": "start",
    "ket thuc": "end",
    "dia diem": "place",
    "link": "online_url",
    "duong dan": "online_url",
    "tinh": "province",
    "tinh thanh": "province",
    "loai hinh": "coop_type",
    "so cho": "capacity",
    "mo ta": "description",
    "hoi dap": "entries",
    "muc hoi dap": "entries",
}
_LINE: Final = re.compile(r"^\s*([^:]{1,20}):\s*(.*)$")


def parse_form(text: str, options: ProfileOptions, kb: KnowledgeBase) -> SessionDraft:
    """Reads the ``Key: value`` lines of ``/taphuan_tao``; raises ``TrainingError``.

    The entries (``Hỏi đáp: id1, id2``) must be in ``kb``.
    """
    values: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        match = _LINE.match(line)
        key = _KEYS.get(folded(match.group(1))) if match else None
        if match and key is not None:
            current = key
            values[key] = match.group(2).strip()
        elif current is not None and line.strip():
            values[current] = f"{values[current]}\n{line.strip()}".strip()
    required = (("title", "Tiêu đề"), ("start", "Bắt đầu"), ("end", "Kết thúc"),
                ("capacity", "Số chỗ"))  # fmt: skip
    missing = [label for key, label in required if not values.get(key)]
    if missing:
        raise TrainingError(f"Còn thiếu: {', '.join(missing)}.")
    starts_at = parse_moment(values["start"])
    ends_at = end_moment(values["end"], starts_at)
    if not values["capacity"].isdigit():
        raise TrainingError(f"Số chỗ phải là một số, không phải {values['capacity']!r}.")
    codes: dict[str, str | None] = {}
    for field, label in (("province", "Tỉnh"), ("coop_type", "Loại hình")):
        typed = values.get(field, "").strip()
        if not typed:
            codes[field] = None
            continue
        code = options.find(field, typed)
        if code is None:
            raise TrainingError(f"{label} không có trong danh sách: {typed!r}.")
        codes[field] = code
    return SessionDraft.build(
        title=values["title"],
        description=values.get("description", ""),
        starts_at=starts_at,
        ends_at=ends_at,
        place=values.get("place") or None,
        online_url=values.get("online_url") or None,
        capacity=int(values["capacity"]),
        entries=entry_ids(values.get("entries", ""), kb),
        **codes,
    )


class TrainingChat:
    """What members and staff see of training sessions in chat."""

    def __init__(self, store: TrainingStore, options: ProfileOptions, kb: KnowledgeBase) -> None:
        """Reads and changes sessions through ``store``; entries attached are checked in ``kb``."""
        self.store = store
        self.options = options
        self.kb = kb

    def _describe(self, session: SessionInfo) -> str:
        return describe(session, lambda code: self.options.label("province", code))

    async def upcoming(self, member: MemberInfo, profile: Mapping[str, str | None]) -> Reply:
        """The member's upcoming sessions, each with a register or unregister button."""
        sessions = (await asyncio.to_thread(self.store.upcoming, profile))[:LISTED]
        if not sessions:
            return Reply(
                "Hiện chưa có buổi tập huấn nào sắp diễn ra dành cho bạn. Liên minh HTX sẽ "
                "thông báo khi có lịch mới."
            )
        mine = await asyncio.to_thread(self.store.registered_ids, member.id)
        lines = ["📅 Các buổi tập huấn sắp tới:"]
        buttons = []
        for number, session in enumerate(sessions, start=1):
            where = session.place or ("Trực tuyến" if session.online_url else "")
            if session.place and session.online_url:
                where += " và trực tuyến"
            if session.id in mine:
                seats = "✅ Bạn đã đăng ký"
                buttons.append(Button(f"❌ Huỷ đăng ký {number}", f"th:u:{session.id}"))
            elif session.seats_left:
                seats = f"Còn {session.seats_left}/{session.capacity} chỗ"
                label = f"➕ Đăng ký {number}: {shorten(session.title, 40)}"
                buttons.append(Button(label, f"th:r:{session.id}"))
            else:
                seats = "Đã hết chỗ"
                buttons.append(Button(f"ℹ️ Xem {number}", f"th:v:{session.id}"))
            lines.append(
                f"\n{number}. {session.title}\n   🕗 {format_moment(session.starts_at)}\n"
                f"   📍 {where}\n   {seats}"
            )
        return Reply("\n".join(lines), tuple(buttons))

    async def button(
        self, member: MemberInfo, rest: str, profile: Mapping[str, str | None]
    ) -> Reply:
        """Handles ``th:`` payloads (``rest`` is what follows ``th:``)."""
        action, _, id_text = rest.partition(":")
        if not id_text.isdigit():
            return Reply(STALE, notice=True)
        session_id = int(id_text)
        session = await asyncio.to_thread(self.store.get, session_id)
        if session is None:
            return Reply(STALE, notice=True)
        match action:
            case "v":
                mine = await asyncio.to_thread(self.store.is_registered, session_id, member.id)
                return Reply(self._describe(session), _seat_buttons(session, mine))
            case "r":
                return await self._register(member, session, profile)
            case "u":
                if await asyncio.to_thread(self.store.unregister, session_id, member.id):
                    return Reply(
                        f"Đã huỷ đăng ký buổi “{session.title}”. Chỗ của bạn đã được nhường "
                        "cho người khác."
                    )
                return Reply("Bạn chưa đăng ký buổi này.")
            case "x" if member.role in STAFF_ROLES:
                try:
                    cancelled = await asyncio.to_thread(self.store.cancel, session_id)
                except TrainingError as exc:
                    return Reply(str(exc))
                return Reply(
                    f"Đã huỷ buổi #{session_id}; {cancelled.registered} người đã đăng ký sẽ "
                    "nhận được thông báo."
                )
        return Reply(STALE, notice=True)

    async def _register(
        self, member: MemberInfo, session: SessionInfo, profile: Mapping[str, str | None]
    ) -> Reply:
        if not session.visible_to(profile):
            return Reply("Buổi này dành cho tỉnh hoặc loại hình HTX khác với hồ sơ của bạn.")
        outcome, other = await asyncio.to_thread(self.store.register, session.id, member.id)
        match outcome:
            case Registration.OK:
                assert other is not None
                return Reply(
                    f"✅ Bạn đã đăng ký thành công:\n\n{self._describe(other)}\n\n"
                    "Mình sẽ nhắc bạn trước 1 ngày và trước 1 giờ. Nếu có thay đổi, mình sẽ "
                    "báo ngay.",
                    (Button("❌ Huỷ đăng ký", f"th:u:{session.id}"),),
                )
            case Registration.ALREADY:
                return Reply("Bạn đã đăng ký buổi này rồi.")
            case Registration.FULL:
                return Reply("Rất tiếc, buổi này vừa hết chỗ. Gõ /taphuan để xem các buổi khác.")
            case Registration.CLASH if other is not None:
                return Reply(
                    f"Bạn đã đăng ký buổi “{other.title}” ({format_moment(other.starts_at)}) "
                    "trùng giờ với buổi này. Huỷ buổi kia trước nếu muốn đổi.",
                    (Button("❌ Huỷ buổi kia", f"th:u:{other.id}"),),
                )
        return Reply("Buổi này đã bắt đầu, đã kết thúc hoặc đã bị huỷ nên không đăng ký được nữa.")

    async def create(self, member: MemberInfo, form: str) -> Reply:
        """``/taphuan_tao`` for staff: the form's help, or a new session."""
        if not form.strip():
            return Reply(FORM_HELP)
        try:
            draft = parse_form(form, self.options, self.kb)
            session = await asyncio.to_thread(
                self.store.create, draft, f"{member.channel}:{member.external_id}"
            )
        except TrainingError as exc:
            return Reply(f"{exc}\nGõ /taphuan_tao để xem mẫu.")
        attached = ""
        if session.entries:
            titles = "\n".join(f"• {e.title}" for i in session.entries if (e := self.kb.get(i)))
            attached = f"\n\n📚 Gửi người đăng ký 1 giờ sau buổi học:\n{titles}"
        return Reply(
            f"✅ Đã tạo buổi tập huấn #{session.id}:\n\n{self._describe(session)}{attached}\n\n"
            "Thành viên xem và đăng ký bằng /taphuan.",
            (Button("❌ Huỷ buổi này", f"th:x:{session.id}"),),
        )


def _seat_buttons(session: SessionInfo, mine: bool) -> tuple[Button, ...]:
    if mine:
        return (Button("❌ Huỷ đăng ký", f"th:u:{session.id}"),)
    if session.seats_left and session.status == "scheduled":
        return (Button("➕ Đăng ký", f"th:r:{session.id}"),)
    return ()


async def upcoming_sessions(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """List the sessions open to the member (``/taphuan``)."""
    if services.training is None:
        return [Reply("Tính năng tập huấn chưa được bật trên hệ thống này.")]
    return [await _training(services).upcoming(member, profile_of(member))]


async def create_session(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Create a session from the staff member's form (``/taphuan_tao``)."""
    return [await _training(services).create(member, args)]


async def session_button(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Show, take, give back or cancel a seat or a session (``th:<action>:<id>``)."""
    return await _training(services).button(member, rest, profile_of(member))


def _training(services: Services) -> TrainingChat:
    assert services.training is not None  # checked by the router (``needs``)
    return TrainingChat(services.training, services.options, services.kb)


def _switched_on(services: Services) -> bool:
    return services.training is not None


HANDLER: Final = Handler(
    commands=(
        Command("taphuan", upcoming_sessions, menu=True),
        Command("taphuan_tao", create_session, roles=STAFF_ROLES, needs=_switched_on),
    ),
    buttons=(ButtonPrefix("th", session_button, needs=_switched_on),),
    help=("• /taphuan: lịch tập huấn, đăng ký tham gia",),
)
