"""Reminder planning benchmark: one day's deadline reminders for 100,000 members.

Run with `make bench-reminders`. For each database (a fresh SQLite file, and a
fresh PostgreSQL database `coopbot_bench` on 127.0.0.1:5432 when one answers):

1. setup (not part of the target): migrate; 100,000 members with random
   profiles (VAT period, cooperative type, province; consent given), each
   subscribed to all 10 rules (the 7 of scheduler/deadlines.yml and 3 more);
2. pick the busiest Vietnam-local day of 2027 for these rules and members;
3. measured step: the planner, its clock at 00:00:30 that day, plans that day
   (`DeadlinePlanner.plan(until=next midnight)`): computing the slots and
   enqueuing every reminder into the outbox (INSERT ... SELECT per slot);
4. figures: reminders enqueued, seconds, duplicates (rows minus distinct
   unique keys), a second run over the same day (must add 0), the time for the
   worker's first batch at 08:00, peak RSS during the step, database size.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, func, insert, literal, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.clock import VIETNAM
from bot.store.db import Member, OutboxMessage, ReminderSubscription, create_db_engine, upgrade_db
from bot.store.outbox import Outbox
from scheduler.deadlines import Rule, load_rules
from scheduler.planner import DeadlinePlanner, deadline_slots

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_BENCH_DB = "coopbot_bench"
COOP_TYPES = ("htx_nong_nghiep", "htx_cong_nghiep", "htx_thuong_mai", "htx_van_tai", "to_hop_tac")
PROVINCES = ("ha_noi", "hue", "da_nang", "ho_chi_minh", "can_tho", "an_giang", "nghe_an")
EXTRA_RULES = (
    {
        "id": "bao_cao_thang_15",
        "title": "Báo cáo tình hình hoạt động tháng (thử nghiệm)",
        "basis": [{"refs": [{"doc": "17/2023/QH15"}]}],
        "recurrence": {"kind": "monthly", "day": 15},
    },
    {
        "id": "bao_cao_quy_thu",
        "title": "Báo cáo quý (thử nghiệm)",
        "basis": [{"refs": [{"doc": "17/2023/QH15"}]}],
        "recurrence": {"kind": "quarterly"},
    },
    {
        "id": "bao_cao_nam_3103",
        "title": "Báo cáo năm 31/03 (thử nghiệm)",
        "basis": [{"refs": [{"doc": "17/2023/QH15"}]}],
        "recurrence": {"kind": "annual", "month": 3, "day": 31},
    },
)


class PeakRss:
    """Samples this process's resident memory every 20 ms."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakRss:
        self.start = self.process.memory_info().rss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


def mb(value: float) -> str:
    return f"{value / 1e6:,.0f} MB"


def all_rules() -> list[Rule]:
    return [*load_rules(), *(Rule.model_validate(r) for r in EXTRA_RULES)]


def profiles(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "vat_period": rng.choice(("monthly", "quarterly")),
            "coop_type": rng.choice(COOP_TYPES),
            "province": rng.choice(PROVINCES),
        }
        for _ in range(count)
    ]


def member_row(
    now: dt.datetime, user: str, channel: str = "telegram", **fields: Any
) -> dict[str, Any]:
    """A ``members`` row for a bulk insert: an active member who was asked about reminders."""
    return {
        "channel": channel,
        "external_id": user,
        "chat_id": user,
        "display_name": None,
        "role": "member",
        "consent_reminders": False,
        "consent_broadcasts": True,
        "reminders_asked": True,
        "active": True,
        "created_at": now,
        "updated_at": now,
        "last_seen_at": now,
        **fields,
    }


def insert_members(connection: Any, rows: list[dict[str, Any]]) -> None:
    """Inserts ``member_row`` rows 10,000 at a time."""
    for start in range(0, len(rows), 10_000):
        connection.execute(insert(Member), rows[start : start + 10_000])


def setup(engine: Engine, people: list[dict[str, Any]], rules: list[Rule]) -> None:
    upgrade_db(engine)
    now = dt.datetime.now(dt.UTC)
    rows = [
        member_row(
            now,
            f"u{i}",
            "telegram" if i % 2 else "zalo",
            display_name=f"Thành viên {i}",
            coop_role="thanh_vien",
            consent_reminders=True,
            **profile,
        )
        for i, profile in enumerate(people)
    ]
    with engine.begin() as connection:
        insert_members(connection, rows)
        for rule in rules:
            connection.execute(
                insert(ReminderSubscription).from_select(
                    ["member_id", "rule_id", "created_at"],
                    select(Member.id, literal(rule.id), literal(now)),
                )
            )


def busiest_day(rules: list[Rule], people: list[dict[str, Any]]) -> tuple[dt.date, int]:
    share = {rule.id: sum(rule.applies(p) for p in people) / len(people) for rule in rules}
    start = dt.datetime(2027, 1, 1, tzinfo=VIETNAM)
    end = dt.datetime(2028, 1, 1, tzinfo=VIETNAM)
    weight: Counter[dt.date] = Counter()
    slots: Counter[dt.date] = Counter()
    for slot in deadline_slots(rules, start, end):
        day = slot.send_at.astimezone(VIETNAM).date()
        weight[day] += share[slot.due.rule.id]  # type: ignore[assignment]
        slots[day] += 1
    day = max(weight, key=lambda d: (weight[d], d))
    return day, slots[day]


def database_size(engine: Engine, path: Path | None) -> tuple[int, int | None]:
    if path is not None:
        with engine.begin() as connection:
            connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return path.stat().st_size, None
    with engine.connect() as connection:
        total = connection.scalar(text("select pg_database_size(current_database())"))
        outbox = connection.scalar(text("select pg_total_relation_size('outbox')"))
    return int(total or 0), int(outbox or 0)


@contextmanager
def sqlite_database() -> Iterator[tuple[Engine, Path]]:
    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as folder:
        path = Path(folder) / "bench.db"
        engine = create_db_engine(f"sqlite:///{path}")
        try:
            yield engine, path
        finally:
            engine.dispose()


@contextmanager
def postgres_database() -> Iterator[Engine]:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}"))
            connection.execute(text(f"CREATE DATABASE {PG_BENCH_DB}"))
        engine = create_db_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_BENCH_DB}")
        try:
            yield engine
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f"DROP DATABASE IF EXISTS {PG_BENCH_DB}"))
    finally:
        admin.dispose()


def measure(name: str, engine: Engine, path: Path | None, members: int, seed: int) -> None:
    rules = all_rules()
    people = profiles(members, seed)
    began = time.perf_counter()
    setup(engine, people, rules)
    setup_s = time.perf_counter() - began
    print(
        f"{name}: {members:,} members, {len(rules)} rules, {members * len(rules):,} "
        f"subscriptions (setup {setup_s:.1f} s)"
    )
    day, slot_count = busiest_day(rules, people)
    midnight = dt.datetime.combine(day, dt.time(0, 0), VIETNAM)
    next_midnight = midnight + dt.timedelta(days=1)
    clock_at = [midnight + dt.timedelta(seconds=30)]

    def clock() -> dt.datetime:
        return clock_at[0].astimezone(dt.UTC)

    outbox = Outbox(engine, clock)
    planner = DeadlinePlanner(engine, outbox, rules, clock)
    planner.mark_planned_until(midnight)
    size_before, _ = database_size(engine, path)
    with PeakRss() as rss:
        began = time.perf_counter()
        result = planner.plan(until=next_midnight)
        elapsed = time.perf_counter() - began
    with engine.connect() as connection:
        rows = connection.scalar(select(func.count()).select_from(OutboxMessage)) or 0
        keys = (
            connection.scalar(
                select(func.count()).select_from(
                    select(
                        OutboxMessage.member_id,
                        OutboxMessage.kind,
                        OutboxMessage.ref,
                        OutboxMessage.occurrence,
                        OutboxMessage.slot,
                    )
                    .distinct()
                    .subquery()
                )
            )
            or 0
        )
    planner.mark_planned_until(midnight)
    began = time.perf_counter()
    again = planner.plan(until=next_midnight)
    again_s = time.perf_counter() - began
    clock_at[0] = midnight + dt.timedelta(hours=8, seconds=1)
    began = time.perf_counter()
    batch = outbox.due(200)
    batch_ms = (time.perf_counter() - began) * 1000
    size_after, outbox_size = database_size(engine, path)

    print(f"  day                 {day:%d/%m/%Y} ({slot_count} reminder slots)")
    print(
        f"  enqueue one day     {result.enqueued:,} reminders in {elapsed:.1f} s "
        f"({result.enqueued / max(elapsed, 1e-9):,.0f}/s)  target <= 30 s"
    )
    print(f"  rows in the outbox  {rows:,}; duplicates {rows - keys}")
    print(f"  planning again      added {again.enqueued} in {again_s:.1f} s")
    print(f"  first due batch     {len(batch)} rows in {batch_ms:.0f} ms")
    print(
        f"  peak RSS            +{mb(rss.peak - rss.start)} during the step "
        f"(process peak {mb(rss.peak)})"
    )
    if path is not None:
        print(
            f"  database size       {mb(size_after)} (the day's outbox rows: "
            f"+{mb(size_after - size_before)})"
        )
    else:
        print(f"  database size       {mb(size_after)} (outbox table {mb(outbox_size or 0)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    for name in args.databases.split(","):
        if name == "sqlite":
            with sqlite_database() as (engine, path):
                measure("sqlite", engine, path, args.members, args.seed)
        elif name == "postgres":
            try:
                with postgres_database() as engine:
                    measure("postgres", engine, None, args.members, args.seed)
            except OperationalError as exc:
                print(f"postgres: skipped, no server at {PG_ADMIN_URL}: {exc.orig}")
        else:
            parser.error(f"unknown database {name!r}")


if __name__ == "__main__":
    main()
