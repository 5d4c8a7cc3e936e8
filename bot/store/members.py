"""Members: one row per person per channel, with profile, role and consents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import utcnow
from bot.store.db import (
    Handover,
    Member,
    MessageLog,
    OutboxMessage,
    ReminderSubscription,
    ReviewQuestion,
    TrainingRegistration,
)

__all__ = [
    "PROFILE_FIELDS",
    "ROLES",
    "LastAdminError",
    "MemberInfo",
    "MemberStore",
    "StoredData",
    "reached_through",
]

# Profile fields a member sets with /hoso.
PROFILE_FIELDS = ("province", "coop_type", "coop_role", "vat_period")
# Roles, least to most trusted: trainers point learners to entries; staff run
# training sessions and broadcasts; admins also grant roles and retrain the model.
ROLES = ("member", "trainer", "staff", "admin")
_MAX_NAME = 200


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A detached copy of a member row, safe to pass between threads."""

    id: int
    channel: str
    external_id: str
    chat_id: str
    display_name: str | None
    province: str | None
    coop_type: str | None
    coop_role: str | None
    vat_period: str | None
    role: str
    consent_reminders: bool
    consent_broadcasts: bool
    active: bool
    created_at: dt.datetime

    @classmethod
    def of(cls, row: Member) -> MemberInfo:
        """Copies the row's columns."""
        return cls(**{f.name: getattr(row, f.name) for f in fields(cls)})


_INFO_COLUMNS = tuple(getattr(Member, f.name) for f in fields(MemberInfo))


@dataclass(frozen=True, slots=True)
class StoredData:
    """Everything stored about one member, as /toi shows it."""

    member: MemberInfo
    questions: int
    feedback_given: int
    handovers: int


class LastAdminError(ValueError):
    """Refused: taking the role from the last admin would leave nobody to grant roles."""


class MemberStore:
    """Creates, reads, updates and deletes members."""

    def __init__(self, engine: Engine, admins: Mapping[str, frozenset[str]] | None = None) -> None:
        """Uses ``engine`` (migrated); ``admins``: user ids per channel made admin on sight."""
        self._engine = engine
        self._admins = dict(admins or {})

    def touch(
        self,
        channel: str,
        external_id: str,
        chat_id: str,
        display_name: str | None,
        bot_id: str | None = None,
    ) -> MemberInfo:
        """Returns the member, creating it on first contact; refreshes chat, name and last seen.

        ``bot_id``: the bot account the member wrote to; later messages to the member
        (reminders, broadcasts) go out through that bot only.
        """
        name = display_name[:_MAX_NAME] if display_name else None
        # One UPDATE ... RETURNING on every message; an INSERT only on first contact.
        values: dict[str, Any] = {"chat_id": chat_id, "last_seen_at": utcnow(), "active": True}
        if name:
            values["display_name"] = name
        if bot_id:
            values["bot_id"] = bot_id[:64]
        refresh = (
            update(Member)
            .where(Member.channel == channel, Member.external_id == external_id)
            .values(**values)
            .returning(*_INFO_COLUMNS)
        )
        for _attempt in range(3):
            with self._engine.begin() as connection:
                found = connection.execute(refresh).one_or_none()
            if found is not None:
                return MemberInfo(**found._asdict())
            try:
                with Session(self._engine) as session, session.begin():
                    row = Member(
                        channel=channel,
                        external_id=external_id,
                        chat_id=chat_id,
                        bot_id=bot_id[:64] if bot_id else None,
                        display_name=name,
                        role="admin" if external_id in self._admins.get(channel, ()) else "member",
                        consent_reminders=False,
                        consent_broadcasts=True,
                        active=True,
                    )
                    session.add(row)
                    session.flush()
                    return MemberInfo.of(row)
            except IntegrityError:
                continue  # a concurrent first message created it: read it back
        raise RuntimeError(f"could not create member {channel}:{external_id}")

    def get(self, member_id: int) -> MemberInfo | None:
        """The member with this id, if any."""
        with Session(self._engine) as session:
            row = session.get(Member, member_id)
            return MemberInfo.of(row) if row is not None else None

    def find(self, channel: str, external_id: str) -> MemberInfo | None:
        """The member known by this channel's user id, if any."""
        with Session(self._engine) as session:
            row = session.scalar(
                select(Member).where(Member.channel == channel, Member.external_id == external_id)
            )
            return MemberInfo.of(row) if row is not None else None

    def update_profile(self, member_id: int, **values: Any) -> MemberInfo:
        """Sets profile fields (``province``, ``coop_type``, ``coop_role``, ``vat_period``)."""
        unknown = set(values) - set(PROFILE_FIELDS)
        if unknown:
            raise ValueError(f"not profile fields: {sorted(unknown)}")
        with Session(self._engine) as session, session.begin():
            row = session.get(Member, member_id)
            if row is None:
                raise LookupError(f"no member {member_id}")
            for key, value in values.items():
                setattr(row, key, value)
            session.flush()
            return MemberInfo.of(row)

    def promote_admins(self) -> int:
        """Gives the configured admins who already wrote to the bot the admin role."""
        count = 0
        with self._engine.begin() as connection:
            for channel, ids in self._admins.items():
                if ids:
                    result = connection.execute(
                        update(Member)
                        .where(
                            Member.channel == channel,
                            Member.external_id.in_(sorted(ids)),
                            Member.role != "admin",
                        )
                        .values(role="admin")
                    )
                    count += int(result.rowcount or 0)
        return count

    def set_role(self, channel: str, external_id: str, role: str) -> MemberInfo:
        """Grants ``role`` to the person (created if they never wrote to the bot yet)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        member = self.find(channel, external_id) or self.touch(
            channel, external_id, external_id, None
        )
        if member.role == "admin" and role != "admin" and self._admin_count() <= 1:
            raise LastAdminError("the last admin keeps the role; grant admin to someone first")
        with self._engine.begin() as connection:
            connection.execute(update(Member).where(Member.id == member.id).values(role=role))
        found = self.get(member.id)
        assert found is not None
        return found

    def _admin_count(self) -> int:
        with self._engine.connect() as connection:
            return int(connection.scalar(select(func.count()).where(Member.role == "admin")) or 0)

    def with_roles(self) -> list[MemberInfo]:
        """Everyone whose role is not ``member``, most trusted first."""
        with Session(self._engine) as session:
            rows = session.scalars(select(Member).where(Member.role != "member"))
            found = [MemberInfo.of(row) for row in rows]
        return sorted(found, key=lambda m: (-ROLES.index(m.role), m.channel, m.external_id))

    def set_broadcasts(self, member_id: int, wanted: bool) -> None:
        """Opts the member in to (or out of) staff announcements."""
        with self._engine.begin() as connection:
            connection.execute(
                update(Member).where(Member.id == member_id).values(consent_broadcasts=wanted)
            )

    def set_active(self, member_id: int, active: bool) -> None:
        """Marks a member reachable or not (blocked the bot, deactivated)."""
        with Session(self._engine) as session, session.begin():
            session.execute(update(Member).where(Member.id == member_id).values(active=active))

    def stored_data(self, member_id: int) -> StoredData | None:
        """What is stored about the member: the row and counts of what hangs off it."""
        with Session(self._engine) as session:
            row = session.get(Member, member_id)
            if row is None:
                return None
            questions = session.scalar(
                select(func.count()).where(MessageLog.member_id == member_id)
            )
            feedback = session.scalar(
                select(func.count()).where(
                    MessageLog.member_id == member_id, MessageLog.feedback.is_not(None)
                )
            )
            handovers = session.scalar(select(func.count()).where(Handover.member_id == member_id))
            return StoredData(MemberInfo.of(row), questions or 0, feedback or 0, handovers or 0)

    def delete(self, member_id: int) -> bool:
        """Deletes the member and everything linked to it; True when there was something."""
        with Session(self._engine) as session, session.begin():
            # Explicit deletes, so that nothing depends on the database enforcing cascades.
            session.execute(delete(MessageLog).where(MessageLog.member_id == member_id))
            session.execute(delete(Handover).where(Handover.member_id == member_id))
            tables = (ReminderSubscription, TrainingRegistration, OutboxMessage, ReviewQuestion)
            for table in tables:
                session.execute(delete(table).where(table.member_id == member_id))
            result = session.execute(delete(Member).where(Member.id == member_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]


def reached_through(accounts: Mapping[str, str | None]) -> ColumnElement[bool]:
    """Members reached through one of these bot accounts (or whose bot is not known yet).

    ``accounts``: ``{channel: bot id}``; a bot id of None: any member of that channel.
    """
    parts = [
        Member.channel == channel
        if bot_id is None
        else and_(Member.channel == channel, or_(Member.bot_id == bot_id, Member.bot_id.is_(None)))
        for channel, bot_id in accounts.items()
    ]
    return or_(*parts) if parts else Member.id.is_(None)
