"""Usage aggregates for the dashboard and ``coopbot stats``: one grouped SQL statement each.

Every function takes the engine, a window ``[since, until)`` (aware moments; the
database keeps UTC) and optionally a province code (the members' ``province``),
runs one statement that groups in the database, and returns small frozen
dataclasses. Days and weeks are Vietnam's (UTC+7): ``local_day`` and
``local_week`` compile to one expression per dialect.

Questions are the logged messages of every kind but ``browse`` (an entry opened
from the menu); 👍/👎 are counted on every logged message, browsed entries included.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    Date,
    Select,
    String,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    union_all,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from bot.clock import VIETNAM, aware, utcnow
from bot.store.db import (
    Broadcast,
    BroadcastTally,
    EntryDay,
    Handover,
    Member,
    MessageLog,
    OutboxMessage,
    UsageDay,
    UsageDaySettled,
)

__all__ = [
    "BROWSE",
    "HANDOVER",
    "OUTCOMES",
    "PERIODS",
    "BroadcastDelivery",
    "ChannelDay",
    "Count",
    "DayStatus",
    "DeliveryCount",
    "Outcomes",
    "StaffMember",
    "WeekCount",
    "active_members",
    "broadcast_deliveries",
    "days_window",
    "delivery_days",
    "local_day",
    "local_week",
    "members_by",
    "new_members_per_week",
    "outcomes",
    "questions_per_day",
    "reminder_deliveries",
    "settle",
    "settle_window",
    "staff_members",
    "top_entries",
]

BROWSE: Final = "browse"  # an entry opened from the menu: not a question
HANDOVER: Final = "handover"  # a question handed to staff (the handovers table)
# The outcomes in display order: the answer kinds (``bot.answers.AnswerKind``), then hand-overs.
OUTCOMES: Final = (
    "entry",
    "suggested",
    "clause",
    "out_of_scope",
    "fallback",
    "chitchat",
    HANDOVER,
)
MEMBER_FIELDS: Final = ("province", "coop_type", "channel")
PERIODS: Final = (7, 30, 90)  # the dashboard's windows, in days
# Today and yesterday (Vietnam) are read from the log itself; older days from the rollup.
LIVE_DAYS: Final = 2
ALL_PROVINCES: Final = "*"  # entry_days: the row for all provinces together
# A broadcast finished this long ago has no message left on its way: its tally is final.
SETTLE_AFTER: Final = dt.timedelta(minutes=15)
_REMINDER_KINDS: Final = ("deadline", "session", "session_change", "session_after")


class local_day(FunctionElement[dt.date]):
    """The Vietnam calendar day of a UTC timestamp column."""

    type = Date()
    inherit_cache = True
    name = "local_day"


class local_week(FunctionElement[dt.date]):
    """The Monday (Vietnam's calendar) of the ISO week of a UTC timestamp column."""

    type = Date()
    inherit_cache = True
    name = "local_week"


@compiles(local_day, "postgresql")
def _day_postgresql(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(timezone('{VIETNAM.key}', {column}) AS DATE)"


@compiles(local_day)
def _day_sqlite(element: local_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps naive UTC text; Vietnam has had no daylight saving time since 1975.
    return f"date({compiler.process(element.clauses, **kw)}, '+7 hours')"


@compiles(local_week, "postgresql")
def _week_postgresql(element: local_week, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"CAST(date_trunc('week', timezone('{VIETNAM.key}', {column})) AS DATE)"


@compiles(local_week)
def _week_sqlite(element: local_week, compiler: SQLCompiler, **kw: Any) -> str:
    # 'weekday 0': forward to the Sunday (the day itself if a Sunday); six days back: Monday.
    column = compiler.process(element.clauses, **kw)
    return f"date({column}, '+7 hours', 'weekday 0', '-6 days')"


@dataclass(frozen=True, slots=True)
class ChannelDay:
    """Questions asked on one Vietnam day through one channel."""

    day: dt.date
    channel: str
    count: int


@dataclass(frozen=True, slots=True)
class Outcomes:
    """How the window's questions were answered, with hand-overs and feedback.

    ``counts``: questions per answer kind (``OUTCOMES``; hand-overs under ``HANDOVER``).
    """

    counts: dict[str, int]
    thumbs_up: int
    thumbs_down: int

    @property
    def questions(self) -> int:
        """Questions asked (hand-overs are not questions of their own)."""
        return sum(n for kind, n in self.counts.items() if kind != HANDOVER)

    def share(self, kind: str) -> float:
        """The share of the questions with outcome ``kind`` (0 when none were asked)."""
        total = self.questions
        return self.counts.get(kind, 0) / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Count:
    """A count under a key (an entry id, a province code...; None: not given)."""

    key: str | None
    count: int


@dataclass(frozen=True, slots=True)
class WeekCount:
    """A count for the ISO week starting on ``week_start`` (a Monday, Vietnam's calendar)."""

    week_start: dt.date
    count: int

    @property
    def iso_week(self) -> tuple[int, int]:
        """(ISO year, ISO week number)."""
        year, week, _ = self.week_start.isocalendar()
        return year, week


@dataclass(frozen=True, slots=True)
class BroadcastDelivery:
    """One broadcast and its messages per (Vietnam day, delivery state)."""

    id: int
    segment: str  # JSON, as stored
    recipients: int
    status: str
    created_at: dt.datetime
    by_day: dict[tuple[dt.date, str], int]

    @property
    def counts(self) -> dict[str, int]:
        """Messages per delivery state."""
        total: Counter[str] = Counter()
        for (_, status), n in self.by_day.items():
            total[status] += n
        return dict(total)


@dataclass(frozen=True, slots=True)
class DeliveryCount:
    """Reminders of one kind and rule (``ref``) in one delivery state."""

    kind: str
    ref: str
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class DayStatus:
    """Messages in one delivery state on one Vietnam day."""

    day: dt.date
    status: str
    count: int


@dataclass(frozen=True, slots=True)
class StaffMember:
    """A member with a staff or admin role."""

    id: int
    name: str | None
    role: str
    channel: str
    province: str | None


def days_window(days: int, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The last ``days`` Vietnam calendar days up to ``now``: [their first midnight, now)."""
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    today = aware(now).astimezone(VIETNAM).date()
    first = dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(), VIETNAM)
    return first.astimezone(dt.UTC), aware(now)


def questions_per_day(
    engine: Engine, since: dt.datetime, until: dt.datetime, province: str | None = None
) -> tuple[ChannelDay, ...]:
    """Questions per Vietnam day and channel, by day then channel (days without any: absent)."""
    settled, live_since = _settled(engine, since, until)
    counts: Counter[tuple[dt.date, str]] = Counter()
    if settled:
        n = func.sum(UsageDay.messages)
        rolled = _rolled(select(UsageDay.day, UsageDay.channel, n), settled, province)
        rolled = rolled.where(UsageDay.kind.not_in((BROWSE, HANDOVER)))
        for d, channel, count in _all(engine, rolled.group_by(UsageDay.day, UsageDay.channel)):
            counts[(_date(d), channel)] += int(count)
    day = local_day(MessageLog.created_at).label("day")
    query = _questions(
        select(day, MessageLog.channel, func.count()), live_since, until, province
    ).group_by(day, MessageLog.channel)
    for d, channel, count in _all(engine, query):
        counts[(_date(d), channel)] += int(count)
    return tuple(ChannelDay(d, channel, n) for (d, channel), n in sorted(counts.items()))


def outcomes(
    engine: Engine, since: dt.datetime, until: dt.datetime, province: str | None = None
) -> Outcomes:
    """Questions per answer kind, hand-overs opened, and 👍/👎, in the window."""
    settled, live_since = _settled(engine, since, until)
    up, down = _thumbs()
    kinds = _window(
        select(MessageLog.kind, func.count(), up, down), MessageLog, live_since, until, province
    ).group_by(MessageLog.kind)
    handovers = _window(
        select(cast(literal(HANDOVER), String(20)), func.count(), literal(0), literal(0)),
        Handover,
        live_since,
        until,
        province,
    )
    rows = _all(engine, union_all(kinds, handovers))
    if settled:
        sums = (
            func.sum(UsageDay.messages),
            func.sum(UsageDay.thumbs_up),
            func.sum(UsageDay.thumbs_down),
        )
        rolled = _rolled(select(UsageDay.kind, *sums), settled, province)
        rows += _all(engine, rolled.group_by(UsageDay.kind))
    counts = dict.fromkeys(OUTCOMES, 0)
    thumbs_up = thumbs_down = 0
    for kind, n, kind_up, kind_down in rows:
        thumbs_up += int(kind_up)
        thumbs_down += int(kind_down)
        if kind != BROWSE:
            counts[kind] = counts.get(kind, 0) + int(n)
    return Outcomes(counts, thumbs_up, thumbs_down)


def active_members(
    engine: Engine, since: dt.datetime, until: dt.datetime, province: str | None = None
) -> int:
    """How many members used the assistant (wrote, pressed, asked) since ``since``.

    Read from each member's last contact (indexed), not from the log: for a window
    that ends now, as every dashboard window does, that is the members active in it.
    """
    query = select(func.count()).where(
        Member.last_seen_at >= aware(since), Member.last_seen_at < aware(until)
    )
    if province is not None:
        query = query.where(Member.province == province)
    with engine.connect() as connection:
        return int(connection.scalar(query) or 0)


def top_entries(
    engine: Engine,
    since: dt.datetime,
    until: dt.datetime,
    province: str | None = None,
    limit: int | None = 10,
) -> tuple[Count, ...]:
    """The entries most questions were answered with, most first (ties by entry id).

    ``limit=None``: every entry answered in the window.
    """
    settled, live_since = _settled(engine, since, until)
    counts: Counter[str] = Counter()
    if settled:
        where = EntryDay.province == (ALL_PROVINCES if province is None else province)
        rolled = select(EntryDay.entry_id, func.sum(EntryDay.questions)).where(
            where, EntryDay.day.between(*settled)
        )
        for entry, n in _all(engine, rolled.group_by(EntryDay.entry_id)):
            counts[entry] += int(n)
    query = _questions(select(MessageLog.entry_id, func.count()), live_since, until, province)
    query = query.where(MessageLog.entry_id.is_not(None)).group_by(MessageLog.entry_id)
    for entry, n in _all(engine, query):
        counts[entry] += int(n)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple(Count(entry, n) for entry, n in ranked[:limit])


def members_by(engine: Engine, field: str, province: str | None = None) -> tuple[Count, ...]:
    """Active members per ``province``, ``coop_type`` or ``channel``, most first."""
    if field not in MEMBER_FIELDS:
        raise ValueError(f"field must be one of {MEMBER_FIELDS}, got {field!r}")
    column = getattr(Member, field)
    n = func.count().label("n")
    query = select(column, n).where(Member.active.is_(True))
    if province is not None:
        query = query.where(Member.province == province)
    rows = _all(engine, query.group_by(column).order_by(n.desc(), column.asc().nulls_last()))
    return tuple(Count(key, count) for key, count in rows)


def new_members_per_week(
    engine: Engine, since: dt.datetime, until: dt.datetime, province: str | None = None
) -> tuple[WeekCount, ...]:
    """Members who joined in the window, per ISO week (Vietnam's calendar), oldest first."""
    week = local_week(Member.created_at).label("week")
    query = select(week, func.count()).where(
        Member.created_at >= aware(since), Member.created_at < aware(until)
    )
    if province is not None:
        query = query.where(Member.province == province)
    rows = _all(engine, query.group_by(week).order_by(week))
    return tuple(WeekCount(_date(start), n) for start, n in rows)


def broadcast_deliveries(
    engine: Engine, since: dt.datetime, until: dt.datetime
) -> tuple[BroadcastDelivery, ...]:
    """The broadcasts created in the window, newest first, with their messages by state and day.

    A broadcast finished (done or stopped) ``SETTLE_AFTER`` ago is counted once into
    ``broadcast_tallies`` and read from there; the others from the outbox (indexed by
    kind and ref).
    """
    query = (
        select(
            Broadcast.id,
            Broadcast.segment,
            Broadcast.recipients,
            Broadcast.status,
            Broadcast.created_at,
            Broadcast.finished_at,
        )
        .where(Broadcast.created_at >= aware(since), Broadcast.created_at < aware(until))
        .order_by(Broadcast.id.desc())
    )
    found = _all(engine, query)
    settled_before = utcnow() - SETTLE_AFTER
    finished = {
        row.id
        for row in found
        if row.status in ("done", "cancelled")
        and row.finished_at is not None
        and aware(row.finished_at) <= settled_before
    }
    by_day: dict[int, dict[tuple[dt.date, str], int]] = {row.id: {} for row in found}
    tallied: set[int] = set()
    if finished:
        rows = _tally_rows(engine, finished)
        untallied = finished - {row[0] for row in rows}
        for broadcast_id in untallied:
            _tally(engine, broadcast_id)
        if untallied:  # read again with what was just counted
            rows = _tally_rows(engine, finished)
        for broadcast_id, day, status, n in rows:
            by_day[broadcast_id][(_date(day), status)] = int(n)
            tallied.add(broadcast_id)
    # Running ones, and finished ones not tallied (none sent, or a message on its way).
    live = [str(row.id) for row in found if row.id not in tallied]
    if live:
        day = local_day(func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at))
        rows = _all(
            engine,
            select(OutboxMessage.ref, day, OutboxMessage.status, func.count())
            .where(OutboxMessage.kind == "broadcast", OutboxMessage.ref.in_(live))
            .group_by(OutboxMessage.ref, day, OutboxMessage.status),
        )
        for ref, d, status, n in rows:
            by_day[int(ref)][(_date(d), status)] = int(n)
    return tuple(
        BroadcastDelivery(
            row.id, row.segment, row.recipients, row.status, aware(row.created_at), by_day[row.id]
        )
        for row in found
    )


def delivery_days(deliveries: Iterable[BroadcastDelivery]) -> tuple[DayStatus, ...]:
    """The broadcasts' messages per Vietnam day and state (sent: the day sent; else queued)."""
    total: Counter[tuple[dt.date, str]] = Counter()
    for delivery in deliveries:
        total.update(delivery.by_day)
    return tuple(DayStatus(day, status, n) for (day, status), n in sorted(total.items()))


def _tally_rows(engine: Engine, ids: Collection[int]) -> list[Any]:
    tally = BroadcastTally
    query = select(tally.broadcast_id, tally.day, tally.status, tally.messages)
    return _all(engine, query.where(tally.broadcast_id.in_(tuple(ids))))


def _tally(engine: Engine, broadcast_id: int) -> None:
    """Counts a finished broadcast into ``broadcast_tallies``.

    Nothing is written while one of its messages is still on its way, or when another
    process counted it first.
    """
    mine = (OutboxMessage.kind == "broadcast") & (OutboxMessage.ref == str(broadcast_id))
    day = local_day(func.coalesce(OutboxMessage.sent_at, OutboxMessage.created_at))
    counted = (
        select(literal(broadcast_id), day, OutboxMessage.status, func.count())
        .where(mine)
        .group_by(day, OutboxMessage.status)
    )
    on_the_way = select(func.count()).where(mine, OutboxMessage.status.in_(("pending", "sending")))
    try:
        with engine.begin() as connection:
            if connection.scalar(on_the_way):
                return
            columns = ["broadcast_id", "day", "status", "messages"]
            connection.execute(insert(BroadcastTally).from_select(columns, counted))
    except IntegrityError:
        return


def staff_members(engine: Engine) -> tuple[StaffMember, ...]:
    """The members with a staff or admin role, admins first, then by name."""
    query = (
        select(Member.id, Member.display_name, Member.role, Member.channel, Member.province)
        .where(Member.role.in_(("staff", "admin")))
        .order_by(Member.role, Member.display_name, Member.id)
    )
    return tuple(StaffMember(*row) for row in _all(engine, query))


def reminder_deliveries(
    engine: Engine, since: dt.datetime, until: dt.datetime, province: str | None = None
) -> tuple[DeliveryCount, ...]:
    """Reminders due in the window per kind, rule or session (``ref``) and delivery state."""
    query = select(OutboxMessage.kind, OutboxMessage.ref, OutboxMessage.status, func.count())
    query = query.where(
        OutboxMessage.kind.in_(_REMINDER_KINDS),
        OutboxMessage.send_at >= aware(since),
        OutboxMessage.send_at < aware(until),
    )
    if province is not None:
        query = query.join(Member, Member.id == OutboxMessage.member_id).where(
            Member.province == province
        )
    columns = (OutboxMessage.kind, OutboxMessage.ref, OutboxMessage.status)
    rows = _all(engine, query.group_by(*columns).order_by(*columns))
    return tuple(DeliveryCount(kind, ref, status, n) for kind, ref, status, n in rows)


def _settled(
    engine: Engine, since: dt.datetime, until: dt.datetime
) -> tuple[tuple[dt.date, dt.date] | None, dt.datetime]:
    """How to read [since, until): settled days from the rollup, the rest from the log.

    Answers the settled days (first, last), or None, and the moment from which the
    log itself is read; the settled days missing from the rollup are counted first.
    """
    settled, live_since = _split(since, until)
    if settled is not None:
        settle(engine, *settled)
    return settled, live_since


def _split(
    since: dt.datetime, until: dt.datetime
) -> tuple[tuple[dt.date, dt.date] | None, dt.datetime]:
    """The settled days (first, last) of [since, until), or None, and where live reading starts.

    A day is settled once it is ``LIVE_DAYS`` days behind ``until``'s day (late 👍/👎
    land on yesterday's answers). A window not starting at a Vietnam midnight is read live.
    """
    start = aware(since).astimezone(VIETNAM)
    live_day = aware(until).astimezone(VIETNAM).date() - dt.timedelta(days=LIVE_DAYS - 1)
    if start.time() != dt.time() or start.date() >= live_day:
        return None, since
    return (start.date(), live_day - dt.timedelta(days=1)), _midnight(live_day)


def settle_window(engine: Engine, days: int, now: dt.datetime | None = None) -> int:
    """Counts the settled days of the last ``days`` days not yet in the rollup; how many."""
    settled, _ = _split(*days_window(days, now or utcnow()))
    return 0 if settled is None else settle(engine, *settled)


def settle(engine: Engine, first: dt.date, last: dt.date) -> int:
    """Counts the days from ``first`` to ``last`` not yet in the rollup; returns how many.

    Each day is one transaction that first claims the day in ``usage_days_settled``: a
    day another process counted meanwhile is left to it.
    """
    with engine.connect() as connection:
        done = set(
            map(
                _date,
                connection.scalars(
                    select(UsageDaySettled.day).where(UsageDaySettled.day.between(first, last))
                ),
            )
        )
    counted = 0
    day = first
    while day <= last:
        if day not in done:
            counted += _settle_day(engine, day)
        day += dt.timedelta(days=1)
    return counted


def _settle_day(engine: Engine, day: dt.date) -> int:
    start = _midnight(day)
    end = start + dt.timedelta(days=1)
    on_day = literal(day, Date())
    province = func.coalesce(Member.province, "")
    up, down = _thumbs()
    on_the_day = (MessageLog.created_at >= start) & (MessageLog.created_at < end)
    by_member = Member.id == MessageLog.member_id
    messages = (
        select(on_day, province, MessageLog.channel, MessageLog.kind, func.count(), up, down)
        .select_from(MessageLog)
        .join(Member, by_member)
        .where(on_the_day)
        .group_by(Member.province, MessageLog.channel, MessageLog.kind)
    )
    handovers = (
        select(
            on_day,
            province,
            literal("", String(20)),
            literal(HANDOVER, String(20)),
            func.count(),
            literal(0),
            literal(0),
        )
        .select_from(Handover)
        .join(Member, Member.id == Handover.member_id)
        .where(Handover.created_at >= start, Handover.created_at < end)
        .group_by(Member.province)
    )
    answered = on_the_day & MessageLog.entry_id.is_not(None) & (MessageLog.kind != BROWSE)
    entries = (
        select(province, on_day, MessageLog.entry_id, func.count())
        .select_from(MessageLog)
        .join(Member, by_member)
        .where(answered)
        .group_by(Member.province, MessageLog.entry_id)
    )
    all_entries = (
        select(literal(ALL_PROVINCES, String(40)), on_day, MessageLog.entry_id, func.count())
        .where(answered)
        .group_by(MessageLog.entry_id)
    )
    usage = ["day", "province", "channel", "kind", "messages", "thumbs_up", "thumbs_down"]
    per_entry = ["province", "day", "entry_id", "questions"]
    try:
        with engine.begin() as connection:
            connection.execute(insert(UsageDaySettled).values(day=day, counted_at=utcnow()))
            connection.execute(insert(UsageDay).from_select(usage, messages))
            connection.execute(insert(UsageDay).from_select(usage, handovers))
            connection.execute(insert(EntryDay).from_select(per_entry, entries))
            connection.execute(insert(EntryDay).from_select(per_entry, all_entries))
    except IntegrityError:  # another process counted the day first
        return 0
    return 1


def _thumbs() -> tuple[ColumnElement[int], ColumnElement[int]]:
    """The 👍 and the 👎 among a group of logged messages."""

    def votes(vote: str) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((MessageLog.feedback == vote, 1), else_=0)), 0)

    return votes("up"), votes("down")


def _rolled(
    query: Select[Any], settled: tuple[dt.date, dt.date], province: str | None
) -> Select[Any]:
    """``query`` over the rollup's rows of the settled days (of ``province``)."""
    query = query.where(UsageDay.day.between(*settled))
    return query if province is None else query.where(UsageDay.province == province)


def _midnight(day: dt.date) -> dt.datetime:
    """The first moment of a Vietnam day, in UTC."""
    return dt.datetime.combine(day, dt.time(), VIETNAM).astimezone(dt.UTC)


def _questions(
    query: Select[Any], since: dt.datetime, until: dt.datetime, province: str | None
) -> Select[Any]:
    """``query`` over the window's questions (browsed entries left out)."""
    return _window(query, MessageLog, since, until, province).where(MessageLog.kind != BROWSE)


def _window(
    query: Select[Any],
    model: type[MessageLog] | type[Handover],
    since: dt.datetime,
    until: dt.datetime,
    province: str | None,
) -> Select[Any]:
    """``query`` over ``model``'s rows created in [since, until), of members of ``province``."""
    created: ColumnElement[dt.datetime] = model.created_at  # type: ignore[assignment]
    query = query.select_from(model).where(created >= aware(since), created < aware(until))
    if province is not None:
        query = query.join(Member, Member.id == model.member_id).where(Member.province == province)
    return query


def _all(engine: Engine, query: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(query).all())


def _date(value: dt.date | str) -> dt.date:
    """A date column's value (SQLite may hand back the text of an expression's result)."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
