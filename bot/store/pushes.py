"""Messages waiting for web-chat pages (a staff answer after a hand-over), in the database.

A message stays in ``web_pushes`` until the page's long poll fetches it (at most
``PUSHES_MAX`` per session, the oldest dropped first; expired after a day), so a
restart, another process or a flood of new sessions never loses one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, Final

from sqlalchemy import delete, func, insert, select
from sqlalchemy.engine import Engine

from bot.clock import utcnow
from bot.store.db import WebPush

__all__ = ["PUSHES_MAX", "PUSH_TTL", "PushStore"]

PUSHES_MAX: Final = 50
PUSH_TTL: Final = dt.timedelta(days=1)


class PushStore:
    """Messages waiting for web-chat pages, in the ``web_pushes`` table."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime] = utcnow) -> None:
        """Uses ``engine`` (migrated)."""
        self._engine = engine
        self._clock = clock

    def add(self, session_id: str, message: dict[str, Any]) -> int:
        """Stores a message for the session; beyond ``PUSHES_MAX`` waiting, the oldest go."""
        with self._engine.begin() as connection:
            row_id = connection.execute(
                insert(WebPush)
                .values(
                    session_id=session_id,
                    message=json.dumps(message, ensure_ascii=False),
                    created_at=self._clock(),
                )
                .returning(WebPush.id)
            ).scalar_one()
            cut = connection.execute(
                select(WebPush.id)
                .where(WebPush.session_id == session_id)
                .order_by(WebPush.id.desc())
                .offset(PUSHES_MAX)
                .limit(1)
            ).scalar()
            if cut is not None:
                connection.execute(
                    delete(WebPush).where(WebPush.session_id == session_id, WebPush.id <= cut)
                )
        return int(row_id)

    def take(self, session_id: str) -> list[dict[str, Any]]:
        """Removes and returns the session's waiting messages, oldest first (not expired)."""
        fresh = (WebPush.session_id == session_id, WebPush.created_at >= self._clock() - PUSH_TTL)
        with self._engine.connect() as connection:  # most polls find nothing: no write then
            if connection.execute(select(WebPush.id).where(*fresh).limit(1)).first() is None:
                return []
        with self._engine.begin() as connection:
            rows = connection.execute(
                delete(WebPush).where(*fresh).returning(WebPush.id, WebPush.message)
            ).all()
        return [{**json.loads(message), "id": f"p{row_id}"} for row_id, message in sorted(rows)]

    def waiting(self, session_id: str) -> int:
        """How many messages wait for the session."""
        with self._engine.connect() as connection:
            count = connection.execute(
                select(func.count()).where(WebPush.session_id == session_id)
            ).scalar_one()
        return int(count)

    def prune(self) -> int:
        """Deletes messages older than ``PUSH_TTL`` that no page fetched."""
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(WebPush).where(WebPush.created_at < self._clock() - PUSH_TTL)
            )
        return int(result.rowcount or 0)
