"""Training sessions in Vietnamese: moments parsed and formatted, a session described.

The sessions, seats and their outbox messages are kept by ``TrainingStore``
(``bot.store.training``); what staff enter is validated by ``SessionDraft``
(``bot.store.training_sessions``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Final

from bot.clock import VIETNAM, aware
from bot.store.training_sessions import SessionInfo, TrainingError

__all__ = ["describe", "end_moment", "format_moment", "parse_moment"]

_WEEKDAYS: Final = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
_MOMENT = re.compile(r"^\s*(\d{1,2})/(\d{1,2})/(\d{4})\s+(\d{1,2})[:hg](\d{2})?\s*$", re.IGNORECASE)
_TIME_ONLY = re.compile(r"^\s*(\d{1,2})[:hg](\d{2})?\s*$", re.IGNORECASE)


def parse_moment(text: str) -> dt.datetime:
    """``dd/mm/yyyy HH:MM`` (also ``8h30``) in Vietnam time, or ISO 8601; returns UTC."""
    match = _MOMENT.match(text)
    try:
        if match:
            day, month, year, hour, minute = match.groups()
            local = dt.datetime(
                int(year), int(month), int(day), int(hour), int(minute or 0), tzinfo=VIETNAM
            )
        else:
            local = dt.datetime.fromisoformat(text.strip())
            if local.tzinfo is None:
                local = local.replace(tzinfo=VIETNAM)
    except ValueError:
        raise TrainingError(
            f"Thời gian không hợp lệ: {text.strip()!r}. Viết theo dạng 15/01/2027 08:00."
        ) from None
    return local.astimezone(dt.UTC)


def end_moment(text: str, start: dt.datetime) -> dt.datetime:
    """An end given as ``dd/mm/yyyy HH:MM``, or as ``HH:MM`` on the start's (Vietnam) day."""
    match = _TIME_ONLY.match(text)
    if match is None:
        return parse_moment(text)
    day = aware(start).astimezone(VIETNAM)
    try:
        local = day.replace(hour=int(match.group(1)), minute=int(match.group(2) or 0))
    except ValueError:
        raise TrainingError(f"Giờ kết thúc không hợp lệ: {text.strip()!r}.") from None
    return local.astimezone(dt.UTC)


def format_moment(moment: dt.datetime, weekday: bool = True) -> str:
    """``08:00 Thứ Sáu 15/01/2027`` in Vietnam time."""
    local = aware(moment).astimezone(VIETNAM)
    day = f"{_WEEKDAYS[local.weekday()]} " if weekday else ""
    return f"{local:%H:%M} {day}{local:%d/%m/%Y}"


def describe(
    session: SessionInfo, province_label: Callable[[str], str | None] | None = None
) -> str:
    """The session's details in Vietnamese, several lines."""
    lines = [
        f"📅 {session.title}",
        f"🕗 {format_moment(session.starts_at)} – {format_moment(session.ends_at, weekday=False)}",
    ]
    if session.place:
        lines.append(f"📍 {session.place}")
    if session.online_url:
        lines.append(f"💻 Học trực tuyến: {session.online_url}")
    if session.province:
        label = province_label(session.province) if province_label else None
        lines.append(f"Dành cho: {label or session.province}")
    if session.description:
        lines.append(session.description)
    if session.status == "cancelled":
        lines.append("❌ Buổi này đã bị huỷ.")
    else:
        lines.append(f"Còn {session.seats_left}/{session.capacity} chỗ.")
    return "\n".join(lines)
