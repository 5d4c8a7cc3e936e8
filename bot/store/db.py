"""Typed models (SQLAlchemy 2), with the engine and migrations of ``bot.store.engine``."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.clock import utcnow
from bot.store.engine import create_db_engine, current_revision, downgrade_db, upgrade_db

__all__ = [
    "Base",
    "Broadcast",
    "BroadcastTally",
    "EntryDay",
    "Handover",
    "InboxEvent",
    "Member",
    "MessageLog",
    "NLUModel",
    "OutboxMessage",
    "ReviewQuestion",
    "SchedulerState",
    "ShareOpen",
    "TrainingRegistration",
    "TrainingSession",
    "UsageDay",
    "UsageDaySettled",
    "WebPush",
    "create_db_engine",
    "current_revision",
    "downgrade_db",
    "upgrade_db",
]


class Base(DeclarativeBase):
    """Declarative base of every table; every moment is stored with its time zone."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: DateTime(timezone=True)}


class ReviewQuestion(Base):
    """A question the bot could not answer from the knowledge base, kept for admins to review."""

    __tablename__ = "review_questions"
    __table_args__ = (
        Index("ix_review_questions_status", "status", "id"),
        Index("ix_review_questions_member", "member_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    channel: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(30))
    intent: Mapped[str | None] = mapped_column(String(80))
    confidence: Mapped[float | None] = mapped_column(Float)
    # open, labelled, new_entry (needs a knowledge entry), irrelevant, skipped.
    status: Mapped[str] = mapped_column(String(20), default="open")
    # The member who asked (their questions go when they delete their data) and,
    # for a 👎, the answered message.
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE", name="fk_review_questions_member")
    )
    message_id: Mapped[int | None] = mapped_column(Integer)
    # JSON list of [intent, confidence]: the classifier's top intents when asked.
    candidates: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(80))
    labelled_by: Mapped[str | None] = mapped_column(String(100))
    labelled_at: Mapped[dt.datetime | None] = mapped_column()


class Member(Base):
    """One person on one channel: where to reach them, their profile, role and consents."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_members_channel_user"),
        UniqueConstraint("trainer_code", name="uq_members_trainer_code"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(64))
    chat_id: Mapped[str] = mapped_column(String(64))
    # The bot account the member talks to (the bot's id from its token; "web" for the web
    # chat): only a process running that bot sends them anything. None: not known yet.
    bot_id: Mapped[str | None] = mapped_column(String(64))
    display_name: Mapped[str | None] = mapped_column(String(200))
    province: Mapped[str | None] = mapped_column(String(40), index=True)
    coop_type: Mapped[str | None] = mapped_column(String(40))
    coop_role: Mapped[str | None] = mapped_column(String(40))
    vat_period: Mapped[str | None] = mapped_column(String(20))
    role: Mapped[str] = mapped_column(String(20), default="member")
    consent_reminders: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_broadcasts: Mapped[bool] = mapped_column(Boolean, default=True)
    reminders_asked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # A trainer's (staff's, admin's) code in their share links, made on first use (``shares``).
    trainer_code: Mapped[str | None] = mapped_column(String(12))


class MessageLog(Base):
    """A member's question and how it was answered, with the member's feedback."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    intent: Mapped[str | None] = mapped_column(String(80))
    confidence: Mapped[float | None] = mapped_column(Float)
    entry_id: Mapped[str | None] = mapped_column(String(40))
    fallback: Mapped[bool] = mapped_column(Boolean, default=False)
    latency_ms: Mapped[float] = mapped_column(Float, default=0.0)
    feedback: Mapped[str | None] = mapped_column(String(10))
    feedback_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class UsageDay(Base):
    """The logged messages and hand-overs of one settled Vietnam day, counted once.

    The dashboard's rollup (:mod:`bot.store.stats`): one row per day, the member's
    province ("" for none), channel and kind (``handover`` for hand-overs, channel ""),
    with the count and the 👍/👎 among them.
    """

    __tablename__ = "usage_days"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    province: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)
    thumbs_up: Mapped[int] = mapped_column(Integer)
    thumbs_down: Mapped[int] = mapped_column(Integer)


class EntryDay(Base):
    """The questions answered with each entry on one settled Vietnam day, counted once.

    Per the member's province ("" for none), and once more for all of them under "*".
    """

    __tablename__ = "entry_days"

    province: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    questions: Mapped[int] = mapped_column(Integer)


class UsageDaySettled(Base):
    """A day whose ``usage_days`` rows are written (the guard against counting it twice)."""

    __tablename__ = "usage_days_settled"

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    counted_at: Mapped[dt.datetime] = mapped_column()


class ReminderSubscription(Base):
    """A member's yes to the reminders of one deadline rule (``scheduler/deadlines.yml``)."""

    __tablename__ = "reminder_subscriptions"
    __table_args__ = (Index("ix_reminder_subscriptions_rule", "rule_id"),)

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    rule_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class InboxEvent(Base):
    """An inbound platform update, stored before it is acknowledged and kept until handled.

    ``status``: ``pending`` (to handle; ``lease_owner`` handles it until
    ``lease_until``), ``done`` or ``failed`` (the payload is then dropped).
    The unique key makes a redelivery a no-op, also across a restart.
    """

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("channel", "bot_id", "event_key", name="uq_inbox_events_key"),
        Index("ix_inbox_events_pending", "status", "lease_until"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    bot_id: Mapped[str] = mapped_column(String(64))
    event_key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(String(200))


class WebPush(Base):
    """A message for a web-chat page (a staff answer), kept until the page fetches it."""

    __tablename__ = "web_pushes"
    __table_args__ = (Index("ix_web_pushes_session", "session_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)  # the reply as the page's JSON
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class Handover(Base):
    """A question handed to staff: the post in the staff chat links a staff reply to the member."""

    __tablename__ = "handovers"
    __table_args__ = (Index("ix_handovers_staff_post", "staff_chat_id", "staff_message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="open")
    staff_chat_id: Mapped[str | None] = mapped_column(String(64))
    staff_message_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    answered_at: Mapped[dt.datetime | None] = mapped_column()


class TrainingSession(Base):
    """A training session staff scheduled; members register for its seats."""

    __tablename__ = "training_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[dt.datetime] = mapped_column(index=True)
    ends_at: Mapped[dt.datetime] = mapped_column()
    place: Mapped[str | None] = mapped_column(String(300))
    online_url: Mapped[str | None] = mapped_column(String(500))
    province: Mapped[str | None] = mapped_column(String(40))
    coop_type: Mapped[str | None] = mapped_column(String(40))
    capacity: Mapped[int] = mapped_column(Integer)
    # Knowledge entries for the learners, comma-separated ids: sent an hour after the end.
    entries: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    # Bumped on every change members are told about; keys the change messages.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class TrainingRegistration(Base):
    """A member's seat in a training session."""

    __tablename__ = "training_registrations"
    __table_args__ = (Index("ix_training_registrations_member", "member_id"),)

    session_id: Mapped[int] = mapped_column(
        ForeignKey("training_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ShareOpen(Base):
    """One open of a trainer's share link to an entry (``bot.store.shares``).

    ``via``: ``web``, ``telegram`` or ``zalo``; ``member_id``: who opened it, when
    through chat (None on the web, and once the member deleted their data). Their
    questions until ``follow_up_until`` count as the link's follow-up questions.
    """

    __tablename__ = "share_opens"
    __table_args__ = (
        Index("ix_share_opens_trainer", "trainer_code", "opened_at"),
        Index("ix_share_opens_member", "member_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(40))
    trainer_code: Mapped[str] = mapped_column(String(12))
    via: Mapped[str] = mapped_column(String(10))
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL", name="fk_share_opens_member")
    )
    opened_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    follow_up_until: Mapped[dt.datetime] = mapped_column()


class OutboxMessage(Base):
    """One message to one member, waiting for (or past) its delivery.

    ``(member_id, kind, ref, occurrence, slot)`` is the message's unique key:
    for a deadline reminder (kind ``deadline``) the rule id, the due date and
    the offset (``7d``, ``2d``, ``0d``); for a session reminder (``session``)
    the session id, its start and ``1d``/``1h``; for a session change
    (``session_change``) the session id, its version and ``changed`` or
    ``cancelled``; for the entries after a session (``session_after``) the session
    id, ``entries`` and ``1h``. A message past ``expires_at`` is dropped, not sent.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("member_id", "kind", "ref", "occurrence", "slot", name="uq_outbox_key"),
        Index("ix_outbox_status_send_at", "status", "send_at", "id"),
        Index("ix_outbox_kind_ref", "kind", "ref", "status"),  # per broadcast / rule / session
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(20))
    ref: Mapped[str] = mapped_column(String(40))
    occurrence: Mapped[str] = mapped_column(String(40))
    slot: Mapped[str] = mapped_column(String(12))
    send_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    # The worker that picked this pending row for its current batch (several workers
    # take disjoint batches: SELECT ... FOR UPDATE SKIP LOCKED on PostgreSQL).
    reserved_by: Mapped[str | None] = mapped_column(String(80))
    # The reservation's lease: renewed while its worker lives; once past, others may take over.
    lease_until: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column()


class SchedulerState(Base):
    """Small named values the scheduler keeps (how far deadline reminders are planned)."""

    __tablename__ = "scheduler_state"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Broadcast(Base):
    """A staff announcement; its recipients are ``outbox`` rows of kind ``broadcast``."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    text: Mapped[str] = mapped_column(Text)
    segment: Mapped[str] = mapped_column(Text)  # JSON: {"province": [...], ...}
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(20), default="sending")
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()


class BroadcastTally(Base):
    """A finished broadcast's messages per Vietnam day and final state, counted once.

    The dashboard's rollup (:mod:`bot.store.stats`): a message counts on the day it was
    sent, else on the day it was queued.
    """

    __tablename__ = "broadcast_tallies"

    broadcast_id: Mapped[int] = mapped_column(
        ForeignKey("broadcasts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[str] = mapped_column(String(12), primary_key=True)
    messages: Mapped[int] = mapped_column(Integer)


class NLUModel(Base):
    """One trained NLU model in the registry: its data, metrics and deployment.

    ``status``: ``training`` (a retrain is running; also the lock against a
    second one), ``deployed`` (the one the assistant should serve), ``retired``
    (deployed before), ``refused`` (worse than the deployed one), ``candidate``
    (trained, not deployed), ``failed``.
    """

    __tablename__ = "nlu_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(20), unique=True)
    file: Mapped[str | None] = mapped_column(String(200))  # a file name in MODEL_DIR
    data_hash: Mapped[str | None] = mapped_column(String(64))
    examples: Mapped[int | None] = mapped_column(Integer)
    reviewed_examples: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    metrics: Mapped[str | None] = mapped_column(Text)  # JSON
    decision: Mapped[str | None] = mapped_column(Text)
    train_seconds: Mapped[float | None] = mapped_column(Float)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deployed_by: Mapped[str | None] = mapped_column(String(100))
    deployed_at: Mapped[dt.datetime | None] = mapped_column()
    loaded_at: Mapped[dt.datetime | None] = mapped_column()


# APScheduler's SQLAlchemyJobStore table, in its layout; created by the migrations.
APSCHEDULER_JOBS = Table(
    "apscheduler_jobs",
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
