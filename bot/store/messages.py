"""The message log: each member question, how it was answered, and the member's feedback."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.clock import utcnow
from bot.store.db import MessageLog
from nlu.privacy import mask_personal_data

__all__ = ["FEEDBACK_VALUES", "LoggedQuestion", "MessageLogStore"]

FEEDBACK_VALUES = ("up", "down")
_MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class LoggedQuestion:
    """A question from the log."""

    id: int
    member_id: int
    text: str
    entry_id: str | None
    fallback: bool
    feedback: str | None
    created_at: dt.datetime
    kind: str = ""
    intent: str | None = None
    confidence: float | None = None
    channel: str = ""


class MessageLogStore:
    """Writes and reads the message log."""

    def __init__(self, engine: Engine) -> None:
        """Uses ``engine`` (migrated)."""
        self._engine = engine

    def record(
        self,
        *,
        member_id: int,
        channel: str,
        text: str,
        kind: str,
        intent: str | None,
        confidence: float | None,
        entry_id: str | None,
        fallback: bool,
        latency_ms: float,
    ) -> int:
        """Stores one answered question (phone, e-mail and ID numbers masked); returns its id."""
        statement = (
            insert(MessageLog)
            .values(
                member_id=member_id,
                channel=channel,
                text=mask_personal_data(text[:_MAX_TEXT]),
                kind=kind,
                intent=intent,
                confidence=confidence,
                entry_id=entry_id,
                fallback=fallback,
                latency_ms=latency_ms,
                created_at=utcnow(),
            )
            .returning(MessageLog.id)
        )
        with self._engine.begin() as connection:
            return int(connection.execute(statement).scalar_one())

    def set_feedback(self, message_id: int, member_id: int, value: str) -> bool:
        """Stores 👍/👎 on the member's own message; False if it is not theirs or is gone."""
        if value not in FEEDBACK_VALUES:
            raise ValueError(f"feedback must be one of {FEEDBACK_VALUES}, got {value!r}")
        with Session(self._engine) as session, session.begin():
            result = session.execute(
                update(MessageLog)
                .where(MessageLog.id == message_id, MessageLog.member_id == member_id)
                .values(feedback=value, feedback_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def get(self, message_id: int) -> LoggedQuestion | None:
        """One logged question."""
        with Session(self._engine) as session:
            row = session.get(MessageLog, message_id)
            return _copy(row) if row is not None else None

    def latest(self, member_id: int, since: dt.datetime | None = None) -> LoggedQuestion | None:
        """The member's most recent question (after ``since``, when given)."""
        query = select(MessageLog).where(MessageLog.member_id == member_id)
        if since is not None:
            query = query.where(MessageLog.created_at >= since)
        with Session(self._engine) as session:
            row = session.scalar(query.order_by(MessageLog.id.desc()).limit(1))
            return _copy(row) if row is not None else None


def _copy(row: MessageLog) -> LoggedQuestion:
    return LoggedQuestion(
        row.id,
        row.member_id,
        row.text,
        row.entry_id,
        row.fallback,
        row.feedback,
        row.created_at,
        row.kind,
        row.intent,
        row.confidence,
        row.channel,
    )
