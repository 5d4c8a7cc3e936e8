"""``/capquyen <kênh>:<mã người dùng> <vai trò>``: admins grant and withdraw roles in chat.

Alone, the command shows how to use it and who holds a role. The last admin
cannot be demoted.
"""

from __future__ import annotations

import asyncio
from typing import Final

from bot.handlers.base import ADMIN_ONLY, Command, Handler, Services
from bot.replies import Reply
from bot.store.members import LastAdminError, MemberInfo
from bot.store.roles import ROLE_LABELS, parse_person, parse_role

__all__ = ["HANDLER"]


async def grant(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Give a person a role, or list who holds one (``/capquyen``)."""
    first, _, rest = args.strip().partition(" ")
    person = parse_person(first)
    role = parse_role(rest) if rest.strip() else None
    if person is None or role is None:
        people = await asyncio.to_thread(services.members.with_roles)
        lines = [
            "Cấp quyền: /capquyen <kênh>:<mã người dùng> <vai trò>, ví dụ:",
            "/capquyen telegram:123456789 staff",
            "Vai trò: "
            + ", ".join(f"{code} ({label})" for code, label in ROLE_LABELS.items())
            + ". Đặt về member để bỏ quyền.",
            "",
            "Đang có quyền:",
        ]
        lines += [
            f"• {ROLE_LABELS[m.role]}: {m.display_name or '(chưa nhắn tin)'} "
            f"({m.channel}:{m.external_id})"
            for m in people
        ]
        return [Reply("\n".join(lines))]
    try:
        changed = await asyncio.to_thread(services.members.set_role, *person, role)
    except LastAdminError:
        return [Reply("Không thể bỏ quyền của quản trị viên cuối cùng; hãy cấp quyền quản trị "
                      "cho người khác trước.")]  # fmt: skip
    who = changed.display_name or "(chưa nhắn tin với bot)"
    return [Reply(f"✅ {who} ({person[0]}:{person[1]}) giờ là {ROLE_LABELS[role]}.")]


HANDLER: Final = Handler(commands=(Command("capquyen", grant, roles=ADMIN_ONLY),))
