"""Staff broadcasts: a segment of members, one outbox row per recipient.

A segment combines fields with AND and the values of one field with OR:
``province=ha_noi,hue`` and ``coop_type=htx_nong_nghiep`` reach agricultural
cooperatives of Hà Nội or Huế. Members who opted out (``/tatthongbao``) or are
inactive are never included. Creating a broadcast is one transaction: the
broadcast row and an ``INSERT ... SELECT`` of its recipients into the outbox
(kind ``broadcast``, keyed by member and broadcast, so nobody gets it twice).

Unlike reminders (at most once), a broadcast row left ``sending`` by a crash
is sent again at start-up: a kill repeats at most the message in flight and
loses none.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from sqlalchemy import DateTime, Integer, String, func, insert, literal, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import aware, utcnow
from bot.profile import ProfileOptions
from bot.store.db import Broadcast, Member, OutboxMessage
from bot.store.members import ROLES
from bot.store.outbox import Outbox
from bot.store.roles import CHANNELS, ROLE_LABELS
from nlu.textnorm import strip_invisible

__all__ = [
    "BROADCAST",
    "BroadcastError",
    "BroadcastInfo",
    "BroadcastStore",
    "Progress",
    "Segment",
    "progress_line",
    "render_broadcast",
]

BROADCAST: Final = "broadcast"
MAX_TEXT: Final = 3500  # leaves room for the header and footer within Telegram's 4096
KEEP_TRYING: Final = dt.timedelta(days=3)
_FIELDS: Final = ("province", "coop_type", "role", "channel")


class BroadcastError(ValueError):
    """Refused input; the message (Vietnamese) is shown to staff as is."""


@dataclass(frozen=True)
class Segment:
    """Who a broadcast reaches (empty: everyone who accepts announcements)."""

    province: tuple[str, ...] = ()
    coop_type: tuple[str, ...] = ()
    role: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    subscribed: bool | None = None  # True: only members who turned reminders on

    @classmethod
    def parse(cls, items: Iterable[str], options: ProfileOptions) -> Segment:
        """``KEY=VALUE[,VALUE...]`` items (codes or labels); raises ``BroadcastError``."""
        values: dict[str, Any] = {}
        for item in items:
            key, sep, raw = item.partition("=")
            key = key.strip().lower()
            if not sep or not raw.strip():
                raise BroadcastError(f"Nhóm nhận không hợp lệ: {item!r} (viết KHOÁ=GIÁ_TRỊ).")
            if key == "subscribed":
                flag = raw.strip().lower()
                if flag not in ("yes", "no", "true", "false", "co", "khong"):
                    raise BroadcastError(f"subscribed nhận yes hoặc no, không phải {raw!r}.")
                values["subscribed"] = flag in ("yes", "true", "co")
                continue
            if key not in _FIELDS:
                raise BroadcastError(
                    f"Không có tiêu chí {key!r}; dùng: {', '.join((*_FIELDS, 'subscribed'))}."
                )
            codes = []
            for typed in raw.split(","):
                code = _code(key, typed.strip(), options)
                if code is None:
                    raise BroadcastError(f"Giá trị không có trong danh sách: {key}={typed!r}.")
                codes.append(code)
            values[key] = tuple(sorted(set(codes) | set(values.get(key, ()))))
        return cls(**values)

    def to_json(self) -> str:
        """The stored form."""
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Segment:
        """Reads the stored form."""
        data: dict[str, Any] = json.loads(text)
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        return cls(**values)

    def conditions(self) -> list[ColumnElement[bool]]:
        """SQL conditions on ``members`` (consent and active always apply)."""
        found: list[ColumnElement[bool]] = [
            Member.active.is_(True),
            Member.consent_broadcasts.is_(True),
        ]
        for name in _FIELDS:
            wanted = getattr(self, name)
            if wanted:
                found.append(getattr(Member, name).in_(wanted))
        if self.subscribed is not None:
            found.append(Member.consent_reminders.is_(self.subscribed))
        return found

    def describe(self, options: ProfileOptions) -> str:
        """In Vietnamese, for previews and status."""
        parts = []
        if self.province:
            parts.append(
                "tỉnh " + ", ".join(options.label("province", c) or c for c in self.province)
            )
        if self.coop_type:
            parts.append(
                "loại hình " + ", ".join(options.label("coop_type", c) or c for c in self.coop_type)
            )
        if self.role:
            parts.append("vai trò " + ", ".join(ROLE_LABELS[r] for r in self.role))
        if self.channel:
            parts.append("kênh " + ", ".join(self.channel))
        if self.subscribed is not None:
            parts.append("đã bật nhắc hạn" if self.subscribed else "chưa bật nhắc hạn")
        return "; ".join(parts) if parts else "mọi thành viên"


def _code(field: str, typed: str, options: ProfileOptions) -> str | None:
    if field == "role":
        return typed if typed in ROLES else None
    if field == "channel":
        return typed if typed in CHANNELS else None
    return options.find(field, typed)


def render_broadcast(text: str) -> str:
    """What a member receives."""
    return (
        f"📢 Thông báo từ Liên minh HTX:\n\n{text}\n\n"
        "Không muốn nhận thông báo nữa? Gõ /tatthongbao."
    )


@dataclass(frozen=True, slots=True)
class BroadcastInfo:
    """A broadcast row."""

    id: int
    text: str
    segment: Segment
    recipients: int
    status: str
    created_by: str | None
    created_at: dt.datetime


@dataclass
class Progress:
    """Where a broadcast stands."""

    broadcast: BroadcastInfo
    counts: dict[str, int] = field(default_factory=dict)
    rate: float = 0.0  # messages per second over the last minute
    remaining_s: float | None = None

    @property
    def pending(self) -> int:
        """Not yet sent (incl. retries waiting and the one in flight)."""
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)

    @property
    def done(self) -> int:
        """Handled one way or another."""
        return self.broadcast.recipients - self.pending


class BroadcastStore:
    """Creates broadcasts with their recipients, reports progress, cancels."""

    def __init__(
        self, engine: Engine, outbox: Outbox, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        """Uses ``engine`` (migrated); recipients go into ``outbox``."""
        self._engine = engine
        self.outbox = outbox
        self.clock = clock

    def count(self, segment: Segment) -> int:
        """How many members the segment reaches now."""
        with self._engine.connect() as connection:
            return int(connection.scalar(select(func.count()).where(*segment.conditions())) or 0)

    def create(self, text: str, segment: Segment, created_by: str | None = None) -> BroadcastInfo:
        """Stores the broadcast and one outbox row per recipient, in one transaction."""
        draft = self.draft(text, created_by, segment)
        return self.queue(draft.id)

    def draft(
        self, text: str, created_by: str | None = None, segment: Segment | None = None
    ) -> BroadcastInfo:
        """Stores a broadcast not yet sent (composed in chat step by step)."""
        text = strip_invisible(text).strip()
        if not text:
            raise BroadcastError("Nội dung thông báo đang trống.")
        if len(text) > MAX_TEXT:
            raise BroadcastError(f"Thông báo dài {len(text)} ký tự; tối đa {MAX_TEXT}.")
        with self._engine.begin() as connection:
            broadcast_id = connection.execute(
                insert(Broadcast)
                .values(
                    text=text,
                    segment=(segment or Segment()).to_json(),
                    recipients=0,
                    status="draft",
                    created_by=created_by,
                    created_at=self.clock(),
                )
                .returning(Broadcast.id)
            ).scalar_one()
        found = self.get(broadcast_id)
        assert found is not None
        return found

    def set_segment(self, broadcast_id: int, segment: Segment) -> BroadcastInfo | None:
        """Changes a draft's segment; None when it is no longer a draft."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == "draft")
                .values(segment=segment.to_json())
            )
        return self.get(broadcast_id) if result.rowcount else None

    def queue(self, broadcast_id: int) -> BroadcastInfo:
        """Draft → sending: one outbox row per recipient, in one transaction (once only).

        The rows are queued, not sent: the outbox worker sends them.
        """
        now = self.clock()
        stamp = DateTime(timezone=True)
        with self._engine.begin() as connection:
            found = connection.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status == "draft")
                .values(status="sending", created_at=now)
                .returning(Broadcast.segment)
            ).one_or_none()
            if found is None:
                raise BroadcastError(f"Thông báo #{broadcast_id} đã được gửi hoặc đã huỷ.")
            segment = Segment.from_json(found.segment)
            recipients = select(
                Member.id,
                literal(BROADCAST, String()),
                literal(str(broadcast_id), String()),
                literal("", String()),
                literal("", String()),
                literal(now, stamp),
                literal(now + KEEP_TRYING, stamp),
                literal("pending", String()),
                literal(0, Integer()),
                literal(now, stamp),
            ).where(*segment.conditions())
            count = self.outbox.add_selected(connection, recipients)
            connection.execute(
                update(Broadcast).where(Broadcast.id == broadcast_id).values(recipients=count)
            )
        info = self.get(broadcast_id)
        assert info is not None
        return info

    def get(self, broadcast_id: int) -> BroadcastInfo | None:
        """The broadcast, if it exists."""
        with self._engine.connect() as connection:
            row = connection.execute(
                select(Broadcast).where(Broadcast.id == broadcast_id)
            ).one_or_none()
        return _info(row) if row is not None else None

    def latest(self, limit: int = 10) -> list[BroadcastInfo]:
        """The newest broadcasts first."""
        with self._engine.connect() as connection:
            rows = connection.execute(
                select(Broadcast).order_by(Broadcast.id.desc()).limit(limit)
            ).all()
        return [_info(row) for row in rows]

    def progress(self, broadcast_id: int) -> Progress | None:
        """Counts per state, the recent rate, the time left; marks a finished one done."""
        info = self.get(broadcast_id)
        if info is None:
            return None
        now = self.clock()
        counts = self.outbox.counts(kind=BROADCAST, ref=str(broadcast_id))
        with self._engine.connect() as connection:
            recent = connection.scalar(
                select(func.count()).where(
                    OutboxMessage.kind == BROADCAST,
                    OutboxMessage.ref == str(broadcast_id),
                    OutboxMessage.status == "sent",
                    OutboxMessage.sent_at >= now - dt.timedelta(seconds=60),
                )
            )
        progress = Progress(info, counts)
        progress.rate = (recent or 0) / 60.0
        if progress.pending and progress.rate:
            progress.remaining_s = progress.pending / progress.rate
        if not progress.pending and info.status == "sending":
            with self._engine.begin() as connection:
                connection.execute(
                    update(Broadcast)
                    .where(Broadcast.id == broadcast_id, Broadcast.status == "sending")
                    .values(status="done", finished_at=now)
                )
            progress.broadcast = self.get(broadcast_id) or info
        return progress

    def cancel(self, broadcast_id: int) -> int:
        """Stops a broadcast: its pending rows are dropped; returns how many."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id, Broadcast.status.in_(("draft", "sending")))
                .values(status="cancelled", finished_at=self.clock())
            )
        if not result.rowcount:
            info = self.get(broadcast_id)
            if info is None:
                raise BroadcastError(f"Không có thông báo #{broadcast_id}.")
            raise BroadcastError(f"Thông báo #{broadcast_id} đã kết thúc ({info.status}).")
        return self.outbox.drop_pending("the broadcast was cancelled", kind=BROADCAST,
                                        ref=str(broadcast_id))  # fmt: skip


def progress_line(progress: Progress, width: int = 20) -> str:
    """``[████░░░░] 40% 400/1,000 · đã gửi 390 · lỗi 2 · chặn bot 8 · chờ 600 · ...``."""
    total = progress.broadcast.recipients
    share = progress.done / total if total else 1.0
    filled = round(share * width)
    counts = progress.counts
    parts = [
        f"[{'█' * filled}{'░' * (width - filled)}] {share:.0%} {progress.done:,}/{total:,}",
        f"đã gửi {counts.get('sent', 0):,}",
        f"lỗi {counts.get('failed', 0):,}",
        f"chặn bot {counts.get('blocked', 0):,}",
        f"chờ {progress.pending:,}",
    ]
    dropped = counts.get("dropped", 0) + counts.get("unknown", 0)
    if dropped:
        parts.append(f"bỏ qua {dropped:,}")
    if progress.rate:
        parts.append(f"{progress.rate:.1f} tin/giây")
    if progress.remaining_s is not None:
        parts.append(f"còn khoảng {_duration(progress.remaining_s)}")
    parts.append(STATUS_LABELS.get(progress.broadcast.status, progress.broadcast.status))
    return " · ".join(parts)


STATUS_LABELS: Final = {
    "draft": "bản nháp",
    "sending": "đang gửi",
    "done": "xong",
    "cancelled": "đã huỷ",
}


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} giây"
    if seconds < 5400:
        return f"{seconds / 60:.0f} phút"
    return f"{seconds / 3600:.1f} giờ"


def _info(row: Any) -> BroadcastInfo:
    return BroadcastInfo(
        id=row.id,
        text=row.text,
        segment=Segment.from_json(row.segment),
        recipients=row.recipients,
        status=row.status,
        created_by=row.created_by,
        created_at=aware(row.created_at),
    )
