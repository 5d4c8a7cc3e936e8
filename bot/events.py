"""Inbound events already handled: a redelivery is answered once, also after a restart."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.db import ProcessedEvent, utcnow

__all__ = ["ProcessedEvents"]

_MAX_KEY = 200


class ProcessedEvents:
    """Claims event keys in the database; the primary key makes a claim happen once."""

    def __init__(self, engine: Engine) -> None:
        """Uses ``engine`` (migrated)."""
        self._engine = engine

    def claim(self, channel: str, event_key: str) -> bool:
        """True the first time ``(channel, event_key)`` is claimed, False on a redelivery."""
        statement = insert(ProcessedEvent).values(
            channel=channel, event_key=event_key[:_MAX_KEY], received_at=utcnow()
        )
        try:
            with self._engine.begin() as connection:
                connection.execute(statement)
        except IntegrityError:
            return False
        return True

    def prune(self, older_than: dt.timedelta) -> int:
        """Forgets claims older than ``older_than`` (platforms redeliver within hours)."""
        cutoff = utcnow() - older_than
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(ProcessedEvent).where(ProcessedEvent.received_at < cutoff)
            )
        return int(result.rowcount or 0)
