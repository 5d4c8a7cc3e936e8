"""The outbox: one row per message to one member, with its unique key and delivery state.

States::

    pending ──claim──► sending ──► sent | failed | blocked
       │                  │
       │                  └──(restart after a crash)──► unknown   (never sent again)
       └──(past expires_at, or superseded)──► dropped

A row is claimed (``pending`` → ``sending``, committed) right before its send
and finished right after, so a message is sent at most once: a crash between
the two leaves ``sending``, which the recovery turns into ``unknown`` instead
of sending it again. Inserting a row whose key exists does nothing.

Several processes share the outbox. A worker *reserves* a batch of rows with a
lease (its id and an expiry, renewed while it lives); only when the lease has
run out (the worker died) may another process recover or take the rows. A
worker reserves only rows of its own bot accounts (``accounts``: the member's
channel and the bot they talk to), so no message goes out through another bot.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from sqlalchemy import Select, and_, delete, exists, func, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.clock import aware, utcnow
from bot.store.db import Member, OutboxMessage
from bot.store.members import reached_through

__all__ = ["DEADLINE", "SESSION", "SESSION_AFTER", "SESSION_CHANGE", "Outbox", "OutboxItem"]

log = logging.getLogger(__name__)

DEADLINE: Final = "deadline"
SESSION: Final = "session"
SESSION_CHANGE: Final = "session_change"
SESSION_AFTER: Final = "session_after"  # a session's entries, an hour after it ends
_KEY_COLUMNS: Final = ("member_id", "kind", "ref", "occurrence", "slot")
_INSERT_COLUMNS: Final = (
    *_KEY_COLUMNS,
    "send_at",
    "expires_at",
    "status",
    "attempts",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A row due for delivery, with where its member is reached."""

    id: int
    member_id: int
    channel: str
    chat_id: str
    kind: str
    ref: str
    occurrence: str
    slot: str
    send_at: dt.datetime
    expires_at: dt.datetime
    attempts: int


_ITEM_COLUMNS: Final = tuple(
    getattr(Member if f.name in ("channel", "chat_id") else OutboxMessage, f.name)
    for f in fields(OutboxItem)
)


class Outbox:
    """Inserts, claims and finishes outbox rows."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], dt.datetime] = utcnow,
        lease: dt.timedelta = dt.timedelta(seconds=60),
    ) -> None:
        """Uses ``engine`` (migrated); ``clock`` gives the current time (tests move it).

        ``lease``: how long a reservation holds without being renewed.
        """
        self._engine = engine
        self.clock = clock
        self.lease = lease

    def _insert(self) -> Any:
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(OutboxMessage)

    def add(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Inserts rows (keys: member_id, kind, ref, occurrence, slot, send_at, expires_at).

        Rows whose unique key exists are left alone; returns how many were inserted.
        """
        now = self.clock()
        values = [{"status": "pending", "attempts": 0, "created_at": now, **row} for row in rows]
        if not values:
            return 0
        statement = (
            self._insert()
            .on_conflict_do_nothing(index_elements=list(_KEY_COLUMNS))
            .execution_options(preserve_rowcount=True)  # psycopg reports -1 otherwise
        )
        with self._engine.begin() as connection:
            result = connection.execute(statement, values)
        return int(result.rowcount or 0)

    def add_selected(self, connection: Connection, query: Select[Any]) -> int:
        """``INSERT ... SELECT`` of ``query`` (its columns in ``_INSERT_COLUMNS`` order).

        Used by the planner to enqueue a rule's reminders for every subscriber in
        one statement; existing keys are skipped.
        """
        statement = (
            self._insert()
            .from_select(list(_INSERT_COLUMNS), query)
            .on_conflict_do_nothing(index_elements=list(_KEY_COLUMNS))
            .execution_options(preserve_rowcount=True)
        )
        result = connection.execute(statement)
        return int(result.rowcount or 0)

    def reserve(
        self,
        worker: str,
        limit: int = 200,
        accounts: Mapping[str, str | None] | None = None,
    ) -> list[OutboxItem]:
        """Leases a batch of due rows to ``worker``; other workers skip them until it lapses.

        ``accounts``: ``{channel: bot id}`` of the bots this process runs (a bot id
        of None: any member of that channel, e.g. the web chat); only rows whose
        member talks to one of them are taken (members whose bot is not known yet
        go to any bot of their channel). None: every row (a single-bot process).
        On PostgreSQL the candidates are locked with ``FOR UPDATE SKIP LOCKED``, so two
        workers never pick the same rows; each row is still claimed one at a time
        (``claim``) right before its send.
        """
        now = self.clock()
        candidates = (
            select(OutboxMessage.id)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.send_at <= now,
                or_(
                    OutboxMessage.reserved_by.is_(None),
                    OutboxMessage.reserved_by == worker,
                    OutboxMessage.lease_until.is_(None),
                    OutboxMessage.lease_until < now,
                ),
            )
            .order_by(OutboxMessage.send_at, OutboxMessage.id)
            .limit(limit)
        )
        if accounts is not None:
            candidates = candidates.join(Member, Member.id == OutboxMessage.member_id).where(
                reached_through(accounts)
            )
        if self._engine.dialect.name == "postgresql":
            candidates = candidates.with_for_update(skip_locked=True, of=OutboxMessage)
        with self._engine.begin() as connection:
            ids = list(
                connection.scalars(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(candidates.scalar_subquery()))
                    .values(reserved_by=worker, lease_until=now + self.lease)
                    .returning(OutboxMessage.id)
                )
            )
        if not ids:
            return []
        return self._items(OutboxMessage.id.in_(ids))

    def due(self, limit: int = 200) -> list[OutboxItem]:
        """Pending rows whose time has come, oldest first (read only: status, benchmarks)."""
        now = self.clock()
        return self._items(
            and_(OutboxMessage.status == "pending", OutboxMessage.send_at <= now), limit
        )

    def _items(self, condition: ColumnElement[bool], limit: int | None = None) -> list[OutboxItem]:
        query = (
            select(*_ITEM_COLUMNS)
            .join(Member, Member.id == OutboxMessage.member_id)
            .where(condition)
            .order_by(OutboxMessage.send_at, OutboxMessage.id)
            .limit(limit)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        moments = ("send_at", "expires_at")
        return [
            OutboxItem(**{**row._asdict(), **{name: aware(getattr(row, name)) for name in moments}})
            for row in rows
        ]

    def superseded(self, item: OutboxItem) -> bool:
        """True when a later reminder of the same thing is also due now (after downtime).

        Only that later one is worth sending: "2 days left" makes "7 days left" moot.
        """
        later = aliased(OutboxMessage)
        query = select(
            exists().where(
                later.member_id == item.member_id,
                later.kind == item.kind,
                later.ref == item.ref,
                later.occurrence == item.occurrence,
                later.status == "pending",
                later.send_at > item.send_at,
                later.send_at <= self.clock(),
            )
        )
        with self._engine.connect() as connection:
            return bool(connection.scalar(query))

    def next_send_at(self) -> dt.datetime | None:
        """When the earliest pending row is due, if any."""
        with self._engine.connect() as connection:
            found = connection.scalar(
                select(func.min(OutboxMessage.send_at)).where(OutboxMessage.status == "pending")
            )
        return aware(found) if found is not None else None

    def claim(self, row_id: int, worker: str | None = None) -> bool:
        """``pending`` → ``sending``, committed; False when another worker took it.

        With ``worker``, only a row that worker reserved (and still holds) is claimed.
        """
        with self._engine.begin() as connection:
            statement = update(OutboxMessage).where(
                OutboxMessage.id == row_id, OutboxMessage.status == "pending"
            )
            if worker is not None:
                statement = statement.where(OutboxMessage.reserved_by == worker)
            result = connection.execute(
                statement.values(status="sending", attempts=OutboxMessage.attempts + 1)
            )
        return bool(result.rowcount)

    def renew(self, worker: str) -> int:
        """Extends the leases of the rows ``worker`` holds (pending or being sent)."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.reserved_by == worker,
                    OutboxMessage.status.in_(("pending", "sending")),
                )
                .values(lease_until=self.clock() + self.lease)
            )
        return int(result.rowcount or 0)

    def unreserve(self, worker: str | None = None, *, everything: bool = False) -> int:
        """Gives back the pending rows ``worker`` picked (default: every lapsed reservation).

        ``everything``: every reservation, lapsed or not (a sole process starting).
        """
        statement = update(OutboxMessage).where(
            OutboxMessage.status == "pending", OutboxMessage.reserved_by.is_not(None)
        )
        if worker is not None:
            statement = statement.where(OutboxMessage.reserved_by == worker)
        elif not everything:
            statement = statement.where(self._lapsed())
        with self._engine.begin() as connection:
            result = connection.execute(statement.values(reserved_by=None, lease_until=None))
        return int(result.rowcount or 0)

    def _lapsed(self) -> ColumnElement[bool]:
        return or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until < self.clock())

    def finish(self, row_id: int, status: str, error: str | None = None) -> None:
        """``sending`` → ``sent``, ``failed`` or ``blocked`` (with the reason)."""
        values: dict[str, Any] = {"status": status, "error": error[:300] if error else None}
        if status == "sent":
            values["sent_at"] = self.clock()
        self._move(row_id, "sending", **values)

    def release(self, row_id: int, send_at: dt.datetime, error: str) -> None:
        """``sending`` → ``pending`` at ``send_at``: the send was refused before delivery."""
        values = {"send_at": send_at, "error": error[:300], "reserved_by": None}
        self._move(row_id, "sending", status="pending", **values)

    def postpone(self, row_id: int, send_at: dt.datetime, reason: str) -> None:
        """A pending row waits until ``send_at`` (its channel is not running now)."""
        self._move(row_id, "pending", send_at=send_at, error=reason[:300], reserved_by=None)

    def drop(self, row_id: int, reason: str) -> None:
        """``pending`` → ``dropped`` (expired, or no longer wanted)."""
        self._move(row_id, "pending", status="dropped", error=reason[:300])

    def _move(self, row_id: int, from_status: str, **values: Any) -> bool:
        with self._engine.begin() as connection:
            result = connection.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == row_id, OutboxMessage.status == from_status)
                .values(**values)
            )
        return bool(result.rowcount)

    def drop_pending(self, reason: str, **key: Any) -> int:
        """Drops the pending rows matching ``key`` columns (e.g. a cancelled session's)."""
        with self._engine.begin() as connection:
            result = connection.execute(
                update(OutboxMessage)
                .where(OutboxMessage.status == "pending", *_matching(key))
                .values(status="dropped", error=reason)
            )
        return int(result.rowcount or 0)

    def recover_in_flight(self, resend: tuple[str, ...] = (), *, everything: bool = False) -> int:
        """Rows left ``sending`` by a worker that died (its lease lapsed); at start-up and after.

        Kinds in ``resend`` go back to ``pending`` (sent again: at most the one in
        flight is repeated); the others become ``unknown`` and are never resent.
        Rows of a living worker (its lease still runs) are left alone, unless
        ``everything`` (the only process of a SQLite database, starting).
        """
        self.unreserve(everything=everything)
        lapsed = and_(OutboxMessage.status == "sending", true() if everything else self._lapsed())
        with self._engine.begin() as connection:
            if resend:
                again = connection.execute(
                    update(OutboxMessage)
                    .where(lapsed, OutboxMessage.kind.in_(resend))
                    .values(
                        status="pending",
                        reserved_by=None,
                        lease_until=None,
                        error="in flight when the service stopped",
                    )
                )
                if again.rowcount:
                    log.warning(
                        "%d message(s) were being sent when the service stopped; sending them "
                        "again (one may arrive twice)",
                        again.rowcount,
                    )
            result = connection.execute(
                update(OutboxMessage)
                .where(lapsed)
                .values(status="unknown", error="in flight when the service stopped")
            )
        count = int(result.rowcount or 0)
        if count:
            log.warning(
                "%d reminder(s) were being sent when the service stopped; they may or may not "
                "have arrived and are not sent again (at most once)",
                count,
            )
        return count

    def prune(self, before: dt.datetime) -> int:
        """Deletes finished rows due before ``before`` (pending ones stay); returns how many."""
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(OutboxMessage).where(
                    OutboxMessage.status.not_in(("pending", "sending")),
                    OutboxMessage.send_at < before,
                )
            )
        return int(result.rowcount or 0)

    def counts(self, **key: Any) -> dict[str, int]:
        """How many rows are in each state (optionally only those matching ``key`` columns)."""
        query = select(OutboxMessage.status, func.count()).where(*_matching(key))
        with self._engine.connect() as connection:
            rows = connection.execute(query.group_by(OutboxMessage.status)).all()
        return {status: count for status, count in rows}


def _matching(key: Mapping[str, Any]) -> list[ColumnElement[bool]]:
    """Conditions on outbox columns: each equals its value, or is one of a list or tuple."""
    columns = [getattr(OutboxMessage, name) for name in key]
    return [
        column.in_(value) if isinstance(value, list | tuple) else column == value
        for column, value in zip(columns, key.values(), strict=True)
    ]
