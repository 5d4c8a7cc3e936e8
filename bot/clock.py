"""Time helpers shared by every layer: the current UTC moment, Vietnam's zone, date formats.

The database keeps UTC; SQLite hands values back naive, so readers pass them
through :func:`aware`. Members see Vietnam's local time, as dd/mm/yyyy.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Protocol
from zoneinfo import ZoneInfo

__all__ = ["VIETNAM", "aware", "format_date", "format_timestamp", "local", "utcnow"]

VIETNAM: Final = ZoneInfo("Asia/Ho_Chi_Minh")


class _Day(Protocol):
    @property
    def day(self) -> int: ...
    @property
    def month(self) -> int: ...
    @property
    def year(self) -> int: ...


def utcnow() -> dt.datetime:
    """The current time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)


def aware(moment: dt.datetime) -> dt.datetime:
    """A timezone-aware UTC moment (SQLite hands back naive UTC values)."""
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def local(moment: dt.datetime) -> dt.datetime:
    """The moment in Vietnam's time zone (a naive value is read as UTC)."""
    return aware(moment).astimezone(VIETNAM)


def format_date(day: _Day) -> str:
    """A date (or the date of a moment) the Vietnamese way: dd/mm/yyyy."""
    return f"{day.day:02d}/{day.month:02d}/{day.year}"


def format_timestamp(moment: dt.datetime | None, seconds: bool = False) -> str:
    """A moment in Vietnam's time as dd/mm/yyyy HH:MM (and :SS); ``-`` for none."""
    if moment is None:
        return "-"
    return f"{local(moment):%d/%m/%Y %H:%M:%S}" if seconds else f"{local(moment):%d/%m/%Y %H:%M}"
