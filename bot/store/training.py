"""Training sessions' tables: staff schedule sessions, members take seats, the outbox tells them.

Registering is one transaction that cannot overbook: on PostgreSQL the
session row is locked (``SELECT ... FOR UPDATE``) and the seat is inserted
only while fewer than ``capacity`` seats are taken (``INSERT ... SELECT ...
WHERE count < capacity``, atomic on SQLite too). A member cannot take two
seats in one session nor sessions whose times overlap.

Each seat gets reminders 1 day and 1 hour before the start (outbox kind
``session``, keyed by the start time, so a moved session gets new ones and the
old ones are dropped); a change or cancellation sends every registered member
one message (kind ``session_change``, keyed by the session's version). The
entries attached to a session go to its members an hour after it ends (kind
``session_after``, planned by ``scheduler.reminders``); changing them tells nobody.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, Final

from sqlalchemy import (
    DateTime,
    Integer,
    Select,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from bot.clock import aware, utcnow
from bot.store.db import Member, TrainingRegistration, TrainingSession
from bot.store.outbox import SESSION, SESSION_AFTER, SESSION_CHANGE, Outbox
from bot.store.training_sessions import (
    Attendee,
    Registration,
    SessionDraft,
    SessionInfo,
    TrainingError,
)

__all__ = ["REMINDER_SLOTS", "TrainingStore"]

# Reminder slots before a session's start.
REMINDER_SLOTS: Final = (("1d", dt.timedelta(days=1)), ("1h", dt.timedelta(hours=1)))
_CHANGE_FIELDS: Final = frozenset(
    {"title", "description", "starts_at", "ends_at", "place", "online_url", "province",
     "coop_type", "capacity", "entries"}
)  # fmt: skip
_NOTIFY_FIELDS: Final = frozenset({"title", "starts_at", "ends_at", "place", "online_url"})


class TrainingStore:
    """Sessions, seats, and the outbox rows that tell members about them."""

    def __init__(
        self, engine: Engine, outbox: Outbox, clock: Callable[[], dt.datetime] = utcnow
    ) -> None:
        """Uses ``engine`` (migrated); messages go into ``outbox``."""
        self._engine = engine
        self.outbox = outbox
        self.clock = clock

    # -- staff ----------------------------------------------------------------------------

    def create(self, draft: SessionDraft, created_by: str | None = None) -> SessionInfo:
        """Stores a new session; it must start in the future."""
        if aware(draft.starts_at) <= self.clock():
            raise TrainingError("Thời gian bắt đầu đã qua; chọn một thời điểm trong tương lai.")
        with self._engine.begin() as connection:
            row_id = connection.execute(
                insert(TrainingSession)
                .values(
                    **_stored(draft.model_dump()),
                    status="scheduled",
                    version=1,
                    created_by=created_by,
                    created_at=self.clock(),
                    updated_at=self.clock(),
                )
                .returning(TrainingSession.id)
            ).scalar_one()
        found = self.get(row_id)
        assert found is not None
        return found

    def update(self, session_id: int, **changes: Any) -> SessionInfo:
        """Changes fields; registered members are told when time, place or title changes."""
        unknown = set(changes) - _CHANGE_FIELDS
        if unknown:
            raise TrainingError(f"Không sửa được các trường: {', '.join(sorted(unknown))}.")
        changes = {k: v for k, v in changes.items() if v is not None}
        current = self.get(session_id)
        if current is None:
            raise TrainingError(f"Không có buổi tập huấn #{session_id}.")
        if current.status != "scheduled":
            raise TrainingError(f"Buổi #{session_id} đã bị huỷ, không sửa được nữa.")
        merged = {name: getattr(current, name) for name in _CHANGE_FIELDS} | changes
        draft = SessionDraft.build(**merged)
        if draft.capacity < current.registered:
            raise TrainingError(
                f"Đã có {current.registered} người đăng ký; số chỗ không thể nhỏ hơn số đó."
            )
        if "starts_at" in changes and aware(draft.starts_at) <= self.clock():
            raise TrainingError("Thời gian bắt đầu mới đã qua.")
        changed = {
            name
            for name in _CHANGE_FIELDS
            if _comparable(getattr(draft, name)) != _comparable(getattr(current, name))
        }
        if not changed:
            return current
        notify = bool(changed & _NOTIFY_FIELDS)
        now = self.clock()
        with self._engine.begin() as connection:
            connection.execute(
                update(TrainingSession)
                .where(TrainingSession.id == session_id)
                .values(
                    **_stored({name: getattr(draft, name) for name in changed}),
                    version=TrainingSession.version + (1 if notify else 0),
                    updated_at=now,
                )
            )
        updated = self.get(session_id)
        assert updated is not None
        if "starts_at" in changed:
            self.outbox.drop_pending("the session moved", kind=SESSION, ref=str(session_id))
            for member_id in self._member_ids(session_id):
                self._add_reminders(updated, member_id)
        if notify:
            self.outbox.drop_pending(
                "a newer change message replaces it", kind=SESSION_CHANGE, ref=str(session_id)
            )
            self._tell_members(updated, "changed")
        return updated

    def cancel(self, session_id: int) -> SessionInfo:
        """Cancels the session; registered members are told, their reminders dropped."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(TrainingSession)
                .where(TrainingSession.id == session_id, TrainingSession.status == "scheduled")
                .values(
                    status="cancelled", version=TrainingSession.version + 1, updated_at=self.clock()
                )
            )
        session = self.get(session_id)
        if session is None:
            raise TrainingError(f"Không có buổi tập huấn #{session_id}.")
        if not result.rowcount:
            raise TrainingError(f"Buổi #{session_id} đã bị huỷ từ trước.")
        self.outbox.drop_pending("the session was cancelled", kind=SESSION, ref=str(session_id))
        self.outbox.drop_pending(
            "the session was cancelled", kind=SESSION_CHANGE, ref=str(session_id)
        )
        self._tell_members(session, "cancelled")
        return session

    def _tell_members(self, session: SessionInfo, slot: str) -> None:
        now = self.clock()
        # A change message is useless after the start; a cancellation is kept a day longer.
        expires = max(aware(session.starts_at), now) + (
            dt.timedelta(days=1) if slot == "cancelled" else dt.timedelta()
        )
        self.outbox.add(
            {
                "member_id": member_id,
                "kind": SESSION_CHANGE,
                "ref": str(session.id),
                "occurrence": str(session.version),
                "slot": slot,
                "send_at": now,
                "expires_at": expires,
            }
            for member_id in self._member_ids(session.id)
        )

    # -- reading ----------------------------------------------------------------------------

    def _info_query(self) -> Select[Any]:
        seats = (
            select(func.count())
            .where(TrainingRegistration.session_id == TrainingSession.id)
            .correlate(TrainingSession)
            .scalar_subquery()
        )
        return select(TrainingSession, seats.label("registered"))

    def get(self, session_id: int) -> SessionInfo | None:
        """The session, if it exists."""
        with Session(self._engine) as orm:
            row = orm.execute(
                self._info_query().where(TrainingSession.id == session_id)
            ).one_or_none()
            return SessionInfo.of(*row) if row is not None else None

    def upcoming(
        self, profile: Mapping[str, str | None] | None = None, include_cancelled: bool = False
    ) -> list[SessionInfo]:
        """Sessions not yet started, soonest first (for ``profile``: those shown to it)."""
        query = self._info_query().where(TrainingSession.ends_at > self.clock())
        if not include_cancelled:
            query = query.where(TrainingSession.status == "scheduled")
        with Session(self._engine) as orm:
            rows = orm.execute(query.order_by(TrainingSession.starts_at)).all()
            sessions = [SessionInfo.of(*row) for row in rows]
        if profile is not None:
            sessions = [s for s in sessions if s.visible_to(profile)]
        return sessions

    def all(self) -> list[SessionInfo]:
        """Every session, past ones too, soonest first."""
        with Session(self._engine) as orm:
            rows = orm.execute(self._info_query().order_by(TrainingSession.starts_at))
            return [SessionInfo.of(*row) for row in rows]

    def registered_ids(self, member_id: int) -> frozenset[int]:
        """The sessions the member holds a seat in."""
        with self._engine.connect() as connection:
            rows = connection.scalars(
                select(TrainingRegistration.session_id).where(
                    TrainingRegistration.member_id == member_id
                )
            )
            return frozenset(rows)

    def is_registered(self, session_id: int, member_id: int) -> bool:
        """True when the member holds a seat in the session."""
        return session_id in self.registered_ids(member_id)

    def attendees(self, session_id: int) -> list[Attendee]:
        """Registered members in registration order."""
        query = (
            select(
                Member.id.label("member_id"),
                Member.channel,
                Member.external_id,
                Member.display_name,
                Member.province,
                Member.coop_type,
                TrainingRegistration.created_at.label("registered_at"),
            )
            .join(TrainingRegistration, TrainingRegistration.member_id == Member.id)
            .where(TrainingRegistration.session_id == session_id)
            .order_by(TrainingRegistration.created_at, Member.id)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [
            Attendee(**{**row._asdict(), "registered_at": aware(row.registered_at)}) for row in rows
        ]

    def _member_ids(self, session_id: int) -> list[int]:
        with self._engine.connect() as connection:
            return list(
                connection.scalars(
                    select(TrainingRegistration.member_id).where(
                        TrainingRegistration.session_id == session_id
                    )
                )
            )

    # -- members ------------------------------------------------------------------------------

    def register(self, session_id: int, member_id: int) -> tuple[Registration, SessionInfo | None]:
        """Takes a seat if one is free; returns the outcome and the session (or the clash)."""
        now = self.clock()
        with Session(self._engine) as orm, orm.begin():
            # Locks the session row on PostgreSQL, so seat counts are read one at a time.
            session = orm.scalar(
                select(TrainingSession).where(TrainingSession.id == session_id).with_for_update()
            )
            if session is None or session.status != "scheduled" or aware(session.starts_at) <= now:
                return Registration.CLOSED, None
            starts, ends = aware(session.starts_at), aware(session.ends_at)
            capacity = session.capacity
            connection = orm.connection()
            if self._holds_seat(connection, session_id, member_id):
                return Registration.ALREADY, None
            clash = self._clash(connection, member_id, starts, ends)
            if clash is not None:
                return Registration.CLASH, self.get(clash)
            taken = (
                select(func.count())
                .where(TrainingRegistration.session_id == session_id)
                .scalar_subquery()
            )
            inserted = connection.execute(
                insert(TrainingRegistration)
                .from_select(
                    ["session_id", "member_id", "created_at"],
                    select(
                        literal(session_id, Integer()),
                        literal(member_id, Integer()),
                        literal(now, DateTime(timezone=True)),
                    ).where(taken < capacity),
                )
                .execution_options(preserve_rowcount=True)  # psycopg reports -1 otherwise
            )
            if not inserted.rowcount:
                return Registration.FULL, None
        info = self.get(session_id)
        assert info is not None
        self._add_reminders(info, member_id)
        return Registration.OK, info

    def unregister(self, session_id: int, member_id: int) -> bool:
        """Gives the seat back; pending reminders of it are dropped. False if none was held."""
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(TrainingRegistration).where(
                    TrainingRegistration.session_id == session_id,
                    TrainingRegistration.member_id == member_id,
                )
            )
        if not result.rowcount:
            return False
        for kind in (SESSION, SESSION_CHANGE, SESSION_AFTER):
            self.outbox.drop_pending(
                "the member gave the seat back", kind=kind, ref=str(session_id), member_id=member_id
            )
        return True

    @staticmethod
    def _holds_seat(connection: Connection, session_id: int, member_id: int) -> bool:
        return bool(
            connection.scalar(
                select(
                    exists().where(
                        TrainingRegistration.session_id == session_id,
                        TrainingRegistration.member_id == member_id,
                    )
                )
            )
        )

    @staticmethod
    def _clash(
        connection: Connection, member_id: int, starts: dt.datetime, ends: dt.datetime
    ) -> int | None:
        return connection.scalar(
            select(TrainingSession.id)
            .join(TrainingRegistration, TrainingRegistration.session_id == TrainingSession.id)
            .where(
                and_(
                    TrainingRegistration.member_id == member_id,
                    TrainingSession.status == "scheduled",
                    TrainingSession.starts_at < ends,
                    TrainingSession.ends_at > starts,
                )
            )
            .limit(1)
        )

    def _add_reminders(self, session: SessionInfo, member_id: int) -> None:
        now = self.clock()
        start = aware(session.starts_at)
        self.outbox.add(
            {
                "member_id": member_id,
                "kind": SESSION,
                "ref": str(session.id),
                "occurrence": start.isoformat(),
                "slot": slot,
                "send_at": start - before,
                "expires_at": start,
            }
            for slot, before in REMINDER_SLOTS
            if start - before > now
        )


def _stored(values: dict[str, Any]) -> dict[str, Any]:
    """Moments in UTC (SQLite keeps the wall-clock time it is given); entries comma-separated."""
    return {
        k: aware(v) if isinstance(v, dt.datetime) else ",".join(v) if isinstance(v, tuple) else v
        for k, v in values.items()
    }


def _comparable(value: Any) -> Any:
    return aware(value) if isinstance(value, dt.datetime) else value
