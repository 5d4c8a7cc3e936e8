"""``/quantri``: a one-time link that logs staff and admins in to the admin pages.

The link (``<PUBLIC_BASE_URL>/admin/login?token=...``) is valid 10 minutes and opens
one session (:mod:`bot.store.admin_sessions`). The router checks the roles; the store
checks them again when it makes the token.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final
from urllib.parse import urlencode

from bot.handlers.base import Command, Handler, Services
from bot.replies import Reply
from bot.store.admin_sessions import TOKEN_LIFETIME
from bot.store.members import MemberInfo
from bot.store.roles import STAFF_ROLES

__all__ = ["HANDLER", "LOGIN_PATH"]

log = logging.getLogger(__name__)

LOGIN_PATH: Final = "/admin/login"
_MINUTES: Final = int(TOKEN_LIFETIME.total_seconds() // 60)


async def login_link(services: Services, member: MemberInfo, args: str) -> list[Reply]:
    """Reply with a one-time login link to the admin pages (``/quantri``)."""
    store = services.admin_sessions
    if store is None:  # the router's ``needs`` keeps this from happening
        return [Reply("Trang quản trị chưa được bật.")]
    try:
        token = await asyncio.to_thread(store.issue_token, member.id)
    except (PermissionError, LookupError):
        log.warning("admin login link refused for member %d", member.id)
        return [Reply("Bạn không có quyền vào trang quản trị.")]
    url = f"{services.public_url}{LOGIN_PATH}?{urlencode({'token': token})}"
    return [
        Reply(
            "🔐 Liên kết đăng nhập trang quản trị (dùng được một lần, "
            f"trong {_MINUTES} phút):\n{url}\n\n"
            "Đừng chuyển liên kết này cho người khác. Cần liên kết mới thì gõ lại /quantri."
        )
    ]


HANDLER: Final = Handler(
    commands=(
        Command(
            "quantri",
            login_link,
            roles=STAFF_ROLES,
            needs=lambda services: services.admin_sessions is not None,
        ),
    ),
    # No /help line: /help is the same for everyone, and members cannot use it.
)
