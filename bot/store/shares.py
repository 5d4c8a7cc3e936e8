"""Trainers' share links: their codes, the opens of their links, and what the opens led to.

A member whose role is trainer, staff or admin gets a short code
(``members.trainer_code``, ``[a-z0-9]{6}``) the first time they share an entry;
their links carry it (``?t=<code>`` on the web page, ``faq-<id>-t<code>`` in a
Telegram deep link). Each open of such a link is one row of ``share_opens``: the
entry, the code, where it was opened (``web``, ``telegram``, ``zalo``) and, when
it came through a chat, the member who opened it; nothing else about the learner
(and that link is cut when the member deletes their data). A trainer opening
their own link is not counted.

Follow-up questions: the questions a member asked (message log rows of any kind
but ``browse``: typed, not picked from the menu) within 7 days after opening a
link in chat (``FOLLOW_UP_WINDOW``, fixed at the open). An entry's row counts
each such question once, however many opens of that entry it follows; web opens
carry no member, so no follow-ups.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import (
    DateTime,
    Integer,
    String,
    and_,
    case,
    distinct,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.clock import format_date, local, utcnow
from bot.store.db import Member, MessageLog, ShareOpen
from knowledge.base import KnowledgeBase

__all__ = [
    "FOLLOW_UP_WINDOW",
    "TRAINER_ROLES",
    "VIAS",
    "ShareStat",
    "ShareStore",
    "format_stats",
]

TRAINER_ROLES: Final = frozenset({"trainer", "staff", "admin"})
VIAS: Final = ("web", "telegram", "zalo")
FOLLOW_UP_WINDOW: Final = dt.timedelta(days=7)
_VIA_LABELS: Final = {"web": "web", "telegram": "Telegram", "zalo": "Zalo"}
# No 0/o, 1/l/i: a code read off a printed page is typed back right.
_ALPHABET: Final = "abcdefghjkmnpqrstuvwxyz23456789"
_CODE_LENGTH: Final = 6


@dataclass(frozen=True, slots=True)
class ShareStat:
    """The opens of one trainer's links to one entry, by where they were opened."""

    trainer_code: str
    entry_id: str
    web: int
    telegram: int
    zalo: int
    follow_ups: int

    @property
    def opens(self) -> int:
        """All opens, wherever."""
        return self.web + self.telegram + self.zalo


class ShareStore:
    """Trainer codes, link opens and their statistics."""

    def __init__(
        self,
        engine: Engine,
        entries: Container[str],
        clock: Callable[[], dt.datetime] = utcnow,
    ) -> None:
        """Uses ``engine`` (migrated); opens of entries not in ``entries`` are not counted.

        ``clock`` gives the current time (tests).
        """
        self._engine = engine
        self._entries = entries
        self.clock = clock

    def trainer_code(self, member_id: int) -> str:
        """The member's code, made on first use; raises ``PermissionError`` for a plain member.

        Raises ``LookupError`` when there is no such member.
        """
        for _attempt in range(5):
            with self._engine.connect() as connection:
                row = connection.execute(
                    select(Member.role, Member.trainer_code).where(Member.id == member_id)
                ).one_or_none()
            if row is None:
                raise LookupError(f"no member {member_id}")
            if row.trainer_code:
                return str(row.trainer_code)
            if row.role not in TRAINER_ROLES:
                raise PermissionError(f"member {member_id} is not a trainer")
            code = "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        update(Member)
                        .where(Member.id == member_id, Member.trainer_code.is_(None))
                        .values(trainer_code=code)
                    )
            except IntegrityError:
                continue  # another trainer holds this code: draw again
        raise RuntimeError(f"could not give member {member_id} a trainer code")

    def record_open(
        self, entry_id: str, trainer_code: str, via: str, member_id: int | None = None
    ) -> bool:
        """Counts one open of a trainer's link (``via``: ``web``, ``telegram`` or ``zalo``).

        Returns False, storing nothing, for an unknown code or entry, or the trainer's own open.
        """
        if via not in VIAS:
            raise ValueError(f"via must be one of {VIAS}, not {via!r}")
        code = trainer_code.strip().lower()
        if entry_id not in self._entries or not code or len(code) > 12:
            return False
        holder = [Member.trainer_code == code]
        if member_id is not None:
            holder.append(Member.id != member_id)
        now = self.clock()
        row = select(
            literal(entry_id, String()),
            literal(code, String()),
            literal(via, String()),
            literal(member_id, Integer()),
            literal(now, DateTime(timezone=True)),
            literal(now + FOLLOW_UP_WINDOW, DateTime(timezone=True)),
        ).where(exists().where(*holder))
        columns = ["entry_id", "trainer_code", "via", "member_id", "opened_at", "follow_up_until"]
        statement = (
            insert(ShareOpen)
            .from_select(columns, row)
            .execution_options(preserve_rowcount=True)  # psycopg reports -1 otherwise
        )
        with self._engine.begin() as connection:
            return bool(connection.execute(statement).rowcount)

    def stats(
        self, trainer_code: str | None = None, since: dt.datetime | None = None
    ) -> list[ShareStat]:
        """Opens and follow-up questions per trainer and entry, most opened first.

        ``trainer_code``: one trainer's links only; ``since``: opens from then on.
        """
        follows = and_(
            MessageLog.member_id == ShareOpen.member_id,
            MessageLog.kind != "browse",
            MessageLog.created_at > ShareOpen.opened_at,
            MessageLog.created_at <= ShareOpen.follow_up_until,
        )
        by_via = [
            func.count(distinct(case((ShareOpen.via == via, ShareOpen.id)))).label(via)
            for via in VIAS
        ]
        opens = func.count(distinct(ShareOpen.id))
        query = (
            select(
                ShareOpen.trainer_code,
                ShareOpen.entry_id,
                *by_via,
                func.count(distinct(MessageLog.id)).label("follow_ups"),
            )
            .select_from(ShareOpen)
            .outerjoin(MessageLog, follows)
            .group_by(ShareOpen.trainer_code, ShareOpen.entry_id)
            .order_by(ShareOpen.trainer_code, opens.desc(), ShareOpen.entry_id)
        )
        if trainer_code is not None:
            query = query.where(ShareOpen.trainer_code == trainer_code.strip().lower())
        if since is not None:
            query = query.where(ShareOpen.opened_at >= since)
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [ShareStat(**row._asdict()) for row in rows]


def format_stats(
    rows: Sequence[ShareStat],
    kb: KnowledgeBase,
    *,
    since: dt.datetime | None = None,
    limit: int | None = None,
) -> str:
    """The statistics in Vietnamese: per trainer the opens, then per entry (``limit`` each)."""
    period = f" từ {format_date(local(since))}" if since is not None else ""
    if not rows:
        return f"📊 Chưa có lượt mở nào qua liên kết chia sẻ{period}."
    lines = [f"📊 Lượt mở liên kết chia sẻ{period}:"]
    codes = list(dict.fromkeys(row.trainer_code for row in rows))
    for code in codes:
        mine = [row for row in rows if row.trainer_code == code]
        sums = {via: sum(getattr(row, via) for row in mine) for via in VIAS}
        total = ShareStat(code, "", sums["web"], sums["telegram"], sums["zalo"], follow_ups=0)
        lines.append(f"\nMã giảng viên {code}: {_opens(total)}")
        shown = mine if limit is None else mine[:limit]
        for row in shown:
            entry = kb.get(row.entry_id)
            title = entry.title if entry is not None else row.entry_id
            lines.append(f"• {title} ({row.entry_id}): {_opens(row)}")
            if row.follow_ups:
                lines.append(f"  ↳ {row.follow_ups} câu hỏi tiếp theo")
        if len(shown) < len(mine):
            lines.append(f"… và {len(mine) - len(shown)} mục khác.")
    lines.append(
        "\nCâu hỏi tiếp theo: câu hỏi mà người mở liên kết trong chat gõ trong "
        f"{FOLLOW_UP_WINDOW.days} ngày sau khi mở."
    )
    return "\n".join(lines)


def _opens(row: ShareStat) -> str:
    parts = ", ".join(
        f"{_VIA_LABELS[via]} {getattr(row, via)}" for via in VIAS if getattr(row, via)
    )
    return f"{row.opens} lượt mở ({parts})"
