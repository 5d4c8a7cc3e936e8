"""Hand-overs to staff: the member's question, the staff-chat post, and its answer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.clock import utcnow
from bot.store.db import Handover

__all__ = ["HandoverInfo", "HandoverStore"]

_MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class HandoverInfo:
    """A detached copy of a hand-over row."""

    id: int
    member_id: int
    question: str
    status: str
    staff_chat_id: str | None
    staff_message_id: str | None
    created_at: dt.datetime


class HandoverStore:
    """Opens hand-overs, links them to staff-chat posts and closes them when answered."""

    def __init__(self, engine: Engine) -> None:
        """Uses ``engine`` (migrated)."""
        self._engine = engine

    def open(self, member_id: int, question: str) -> HandoverInfo:
        """Records a question handed to staff."""
        with Session(self._engine) as session, session.begin():
            row = Handover(member_id=member_id, question=question[:_MAX_TEXT], status="open")
            session.add(row)
            session.flush()
            return _copy(row)

    def attach_staff_post(self, handover_id: int, staff_chat_id: str, message_id: str) -> None:
        """Remembers the staff-chat post, so that a reply to it finds the member."""
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(Handover)
                .where(Handover.id == handover_id)
                .values(staff_chat_id=staff_chat_id, staff_message_id=message_id)
            )

    def find_by_staff_post(self, staff_chat_id: str, message_id: str) -> HandoverInfo | None:
        """The hand-over posted as ``message_id`` in the staff chat."""
        with Session(self._engine) as session:
            row = session.scalar(
                select(Handover).where(
                    Handover.staff_chat_id == staff_chat_id,
                    Handover.staff_message_id == message_id,
                )
            )
            return _copy(row) if row is not None else None

    def mark_answered(self, handover_id: int) -> None:
        """Records that staff answered (further replies still reach the member)."""
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(Handover)
                .where(Handover.id == handover_id)
                .values(status="answered", answered_at=utcnow())
            )

    def opened_since(self, since: dt.datetime, member_id: int | None = None) -> int:
        """Hand-overs opened since ``since``: the member's, or everybody's."""
        query = select(func.count()).select_from(Handover).where(Handover.created_at >= since)
        if member_id is not None:
            query = query.where(Handover.member_id == member_id)
        with Session(self._engine) as session:
            return int(session.scalar(query) or 0)

    def open_count(self, member_id: int) -> int:
        """Hand-overs of the member still waiting for staff."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(Handover.id).where(
                    Handover.member_id == member_id, Handover.status == "open"
                )
            )
            return len(list(rows))


def _copy(row: Handover) -> HandoverInfo:
    return HandoverInfo(
        row.id,
        row.member_id,
        row.question,
        row.status,
        row.staff_chat_id,
        row.staff_message_id,
        row.created_at,
    )
