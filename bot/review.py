"""The review log: unanswered questions stored for admins, with personal data left as typed."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.db import ReviewQuestion

__all__ = ["ReviewLog"]

_MAX_TEXT = 4000


class ReviewLog:
    """Records questions the bot could not answer."""

    def __init__(self, engine: Engine) -> None:
        """Uses ``engine`` (tables must exist)."""
        self._engine = engine

    def record(
        self,
        *,
        channel: str,
        text: str,
        reason: str,
        intent: str | None,
        confidence: float | None,
    ) -> int:
        """Stores one question and returns its id."""
        with Session(self._engine) as session, session.begin():
            row = ReviewQuestion(
                channel=channel,
                text=text[:_MAX_TEXT],
                reason=reason,
                intent=intent,
                confidence=confidence,
            )
            session.add(row)
            session.flush()
            return row.id

    def count_open(self) -> int:
        """Number of questions waiting for review."""
        with Session(self._engine) as session:
            query = select(func.count()).select_from(ReviewQuestion)
            return int(session.scalar(query.where(ReviewQuestion.status == "open")) or 0)

    def latest(self, limit: int = 20) -> list[ReviewQuestion]:
        """The newest questions waiting for review."""
        with Session(self._engine) as session:
            query = (
                select(ReviewQuestion)
                .where(ReviewQuestion.status == "open")
                .order_by(ReviewQuestion.id.desc())
                .limit(limit)
            )
            return list(session.scalars(query))
