"""Roles as people type them: codes or Vietnamese names, and ``channel:user_id`` references."""

from __future__ import annotations

import re
from typing import Final

from bot.profile import folded
from bot.store.members import ROLES

__all__ = ["CHANNELS", "ROLE_LABELS", "STAFF_ROLES", "parse_person", "parse_role"]

CHANNELS: Final = ("telegram", "zalo", "web")
STAFF_ROLES: Final = frozenset({"staff", "admin"})
ROLE_LABELS: Final = {
    "member": "thành viên",
    "trainer": "giảng viên",
    "staff": "cán bộ",
    "admin": "quản trị viên",
}
_PERSON: Final = re.compile(r"^\s*(telegram|zalo|web)\s*:\s*([A-Za-z0-9_-]{1,64})\s*$", re.I)


def parse_role(text: str) -> str | None:
    """``staff``, ``Cán bộ``, ``can bo``... to the role code; None when unknown."""
    wanted = folded(text)
    for code in ROLES:
        if wanted in (code, folded(ROLE_LABELS[code])):
            return code
    return None


def parse_person(text: str) -> tuple[str, str] | None:
    """``telegram:123`` to ``("telegram", "123")``; None when malformed."""
    match = _PERSON.match(text)
    return (match.group(1).lower(), match.group(2)) if match else None
