"""Which deadline reminders each member asked for (``/nhacnho``), and the one-time question."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.store.db import Member, ReminderSubscription

__all__ = ["SubscriptionStore"]


class SubscriptionStore:
    """Reads and replaces a member's reminder subscriptions."""

    def __init__(self, engine: Engine) -> None:
        """Uses ``engine`` (migrated)."""
        self._engine = engine

    def rules(self, member_id: int) -> frozenset[str]:
        """The rule ids the member gets reminders for."""
        with Session(self._engine) as session:
            rows = session.scalars(
                select(ReminderSubscription.rule_id).where(
                    ReminderSubscription.member_id == member_id
                )
            )
            return frozenset(rows)

    def replace(self, member_id: int, rule_ids: Iterable[str]) -> frozenset[str]:
        """Sets the member's subscriptions to exactly ``rule_ids``; keeps the consent flag."""
        wanted = frozenset(rule_ids)
        with Session(self._engine) as session, session.begin():
            current = set(
                session.scalars(
                    select(ReminderSubscription.rule_id).where(
                        ReminderSubscription.member_id == member_id
                    )
                )
            )
            if current - wanted:
                session.execute(
                    delete(ReminderSubscription).where(
                        ReminderSubscription.member_id == member_id,
                        ReminderSubscription.rule_id.in_(current - wanted),
                    )
                )
            session.add_all(
                ReminderSubscription(member_id=member_id, rule_id=rule_id)
                for rule_id in sorted(wanted - current)
            )
            session.execute(
                update(Member)
                .where(Member.id == member_id)
                .values(consent_reminders=bool(wanted), reminders_asked=True)
            )
        return wanted

    def ask_once(self, member_id: int) -> bool:
        """True exactly once per member: the first time, /start asks about reminders."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(Member)
                .where(Member.id == member_id, Member.reminders_asked.is_(False))
                .values(reminders_asked=True)
            )
        return bool(result.rowcount)
