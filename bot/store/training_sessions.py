"""Training sessions as values: the draft staff enter, the stored session, a seat's outcome.

``TrainingStore`` (``bot.store.training``) validates with ``SessionDraft`` and
returns ``SessionInfo``, ``Registration`` and ``Attendee``; the chat and the
command line show them (``scheduler.training`` formats and parses).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.clock import aware
from bot.store.db import TrainingSession
from knowledge.base import ENTRY_ID_PATTERN, KnowledgeBase
from nlu.textnorm import strip_invisible

__all__ = [
    "MAX_ENTRIES",
    "Attendee",
    "Registration",
    "SessionDraft",
    "SessionInfo",
    "TrainingError",
    "entry_ids",
]

MAX_ENTRIES: Final = 10  # knowledge entries sent to a session's members after it
_ENTRY_ID: Final = re.compile(ENTRY_ID_PATTERN)


class TrainingError(ValueError):
    """A refused change; the message (Vietnamese) is shown to the staff member as is."""


class SessionDraft(BaseModel):
    """What staff enter for a session; validated before it is stored."""

    model_config = ConfigDict(str_strip_whitespace=True, frozen=True)

    title: str = Field(min_length=3, max_length=200)
    description: str = Field(default="", max_length=2000)
    starts_at: dt.datetime
    ends_at: dt.datetime
    place: str | None = Field(default=None, max_length=300)
    online_url: str | None = Field(default=None, max_length=500)
    province: str | None = Field(default=None, max_length=40)
    coop_type: str | None = Field(default=None, max_length=40)
    capacity: int = Field(ge=1, le=100_000)
    entries: tuple[str, ...] = Field(default=(), max_length=MAX_ENTRIES)

    @field_validator("entries")
    @classmethod
    def _entry_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [entry for entry in value if not _ENTRY_ID.match(entry)]
        if bad:
            raise ValueError(f"mã mục hỏi đáp không hợp lệ: {', '.join(map(repr, bad))}")
        return tuple(dict.fromkeys(value))

    @field_validator("title", "description", "place", mode="before")
    @classmethod
    def _visible(cls, value: Any) -> Any:
        # An RTL override or zero-width character would make a title show reversed or differ.
        return strip_invisible(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> SessionDraft:
        if aware(self.ends_at) <= aware(self.starts_at):
            raise ValueError("giờ kết thúc phải sau giờ bắt đầu")
        if not self.place and not self.online_url:
            raise ValueError("cần địa điểm hoặc đường dẫn học trực tuyến")
        if self.online_url and not re.match(r"^https?://\S+$", self.online_url):
            raise ValueError("đường dẫn trực tuyến phải bắt đầu bằng http:// hoặc https://")
        return self

    @classmethod
    def build(cls, **values: Any) -> SessionDraft:
        """Validates ``values``; raises ``TrainingError`` with a Vietnamese message."""
        try:
            return cls.model_validate({k: v for k, v in values.items() if v is not None})
        except ValidationError as exc:
            raise TrainingError(_explain(exc)) from None


_FIELD_NAMES: Final = {
    "title": "tiêu đề",
    "description": "mô tả",
    "starts_at": "bắt đầu",
    "ends_at": "kết thúc",
    "place": "địa điểm",
    "online_url": "đường dẫn",
    "capacity": "số chỗ",
    "province": "tỉnh",
    "coop_type": "loại hình",
    "entries": "mục hỏi đáp",
}


def _explain(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        name = _FIELD_NAMES.get(where, where)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "còn thiếu"
        elif error["type"] == "string_too_short":
            message = "quá ngắn"
        elif error["type"] in ("string_too_long", "too_long"):
            message = "quá dài" if error["type"] == "string_too_long" else "nhiều quá"
        elif error["type"] in ("greater_than_equal", "less_than_equal", "int_parsing"):
            message = "phải là số từ 1 đến 100000"
        parts.append(f"{name}: {message}" if name else message)
    return "Thông tin buổi tập huấn chưa hợp lệ: " + "; ".join(parts) + "."


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A detached copy of a session row with its seat count."""

    id: int
    title: str
    description: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    place: str | None
    online_url: str | None
    province: str | None
    coop_type: str | None
    capacity: int
    status: str
    version: int
    registered: int
    entries: tuple[str, ...] = ()  # knowledge entry ids, sent to the members after the session

    @classmethod
    def of(cls, session: TrainingSession, registered: int | None) -> SessionInfo:
        """Copies the row's columns (moments in UTC) with its seat count."""
        return cls(
            id=session.id,
            title=session.title,
            description=session.description,
            starts_at=aware(session.starts_at),
            ends_at=aware(session.ends_at),
            place=session.place,
            online_url=session.online_url,
            province=session.province,
            coop_type=session.coop_type,
            capacity=session.capacity,
            status=session.status,
            version=session.version,
            registered=int(registered or 0),
            entries=tuple(filter(None, (session.entries or "").split(","))),
        )

    @property
    def seats_left(self) -> int:
        """Free seats (never negative)."""
        return max(self.capacity - self.registered, 0)

    def visible_to(self, profile: Mapping[str, str | None]) -> bool:
        """Sessions for a province or cooperative type are shown to matching members.

        A member who has not set the field sees the session too.
        """
        for name in ("province", "coop_type"):
            wanted = getattr(self, name)
            value = profile.get(name)
            if wanted is not None and value is not None and value != wanted:
                return False
        return True


class Registration(enum.Enum):
    """The outcome of asking for a seat."""

    OK = "ok"
    ALREADY = "already"
    FULL = "full"
    CLOSED = "closed"
    CLASH = "clash"


@dataclass(frozen=True, slots=True)
class Attendee:
    """A registered member, as the attendee list shows them."""

    member_id: int
    channel: str
    external_id: str
    display_name: str | None
    province: str | None
    coop_type: str | None
    registered_at: dt.datetime


def entry_ids(text: str | Iterable[str], kb: KnowledgeBase) -> tuple[str, ...]:
    """Entry ids typed as ``id1, id2`` (or given one by one), checked against ``kb``.

    Raises ``TrainingError`` naming the ids that are not in the knowledge base.
    """
    typed = re.split(r"[\s,;]+", text) if isinstance(text, str) else list(text)
    ids = tuple(dict.fromkeys(word.strip().lower() for word in typed if word.strip()))
    unknown = [entry for entry in ids if kb.get(entry) is None]
    if unknown:
        raise TrainingError(
            f"Không có mục hỏi đáp mang mã: {', '.join(unknown)}. Mã mục xem bằng /chiase "
            "hoặc trên trang /faq (phần cuối địa chỉ trang)."
        )
    if len(ids) > MAX_ENTRIES:
        raise TrainingError(f"Gắn tối đa {MAX_ENTRIES} mục hỏi đáp cho một buổi.")
    return ids
